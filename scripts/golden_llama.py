#!/usr/bin/python3
"""Golden logits for Llama-family models, from an independent pure-PyTorch forward pass.

For each variant below this writes a tiny Hugging Face checkpoint with seeded random weights and the logits
of a fixed token list:

    tests/fixtures/tiny_<name>/{config.json, model.safetensors (or two shards + model.safetensors.index.json),
                                golden_tokens.txt, golden_logits.npy}

config.json carries the fields, spellings and defaults that transformers' save_pretrained writes for
LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM (sorted keys, indent 2). The forward is written
from the math and Hugging Face's conventions, without importing transformers:

    x = embed_tokens[tokens]
    per layer:  h = input_layernorm(x)                               RMSNorm: h / sqrt(mean(h²) + eps) · w
                q, k, v = q_proj(h), k_proj(h), v_proj(h)           nn.Linear, weight [out, in]
                q, k = rope(q), rope(k)                              rotate-half: pairs (i, i + D/2)
                a = softmax(q kᵀ / sqrt(D) + mask) v                 query head h reads kv head h / (H / Hkv)
                x = x + o_proj(a)                                    mask: j <= i, and j > i - W with a window
                x = x + down(silu(gate(m)) · up(m)),  m = post_attention_layernorm(x)
    logits = lm_head(norm(x))                                        lm_head = embed_tokens when tied

Biases: Llama's attention_bias puts one on q, k, v and o; Qwen2 always has one on q, k, v and never on o.
Windows: Mistral's sliding_window applies to every layer; Qwen2's only with use_sliding_window and only to
layers >= max_window_layers; Llama has none. RoPE frequencies follow rope_theta and, with rope_scaling
{"rope_type": "llama3"}, Llama 3.1's smooth interpolation between scaled low and unscaled high frequencies.

The forward runs in float64 on the stored weights (float32, or bfloat16 widened exactly), so the golden
logits carry only the rounding of the final cast to float32. Needs Debian's python3-torch (1.13) and numpy:
run /usr/bin/python3 scripts/golden_llama.py from the repository root. Rerunning gives the same bytes.
"""

import json
import math
import pathlib
import struct

import numpy as np
import torch
import torch.nn.functional as F

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
ARCH = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"}

# Each variant is kept to about 100 KB. Sizes are deliberately not powers of two.
VARIANTS = [
    # GQA (4 query heads on 2 kv heads), untied head, Llama 3.1 rope scaling, a 72-token sequence past
    # original_max_position_embeddings 64. With D = 8 and theta 1e4 the wavelengths 2π/inv_freq are 6.3,
    # 63, 628 and 6283: one in each band (high: unscaled, medium: smoothed with factor 0.35, low: / 8).
    dict(name="llama3_gqa", family="llama", hidden=32, heads=4, kv_heads=2, head_dim=8, inter=64, layers=2,
         vocab=80, max_pos=128, theta=10000.0, eps=1e-5, tied=False, bias=False, tokens=72, seed=101,
         rope_scaling={"factor": 8.0, "high_freq_factor": 2.0, "low_freq_factor": 0.5,
                       "original_max_position_embeddings": 64, "rope_type": "llama3"},
         bos=76, eos=[77, 78, 79], version="4.45.2"),
    # MHA, tied embeddings, attention_bias on q, k, v and o, head dim 16. Written as transformers 4.40 did:
    # no head_dim and no mlp_bias in config.json, so the loader's defaults are exercised.
    dict(name="llama_tied_bias", family="llama", hidden=32, heads=2, kv_heads=2, head_dim=None, inter=48,
         layers=2, vocab=64, max_pos=64, theta=10000.0, eps=1e-6, tied=True, bias=True, tokens=20, seed=102,
         bos=1, eos=2, version="4.40.0"),
    # MQA (one kv head for four query heads), weights stored as BF16, Llama 3's rope_theta.
    dict(name="llama_mqa_bf16", family="llama", hidden=32, heads=4, kv_heads=1, head_dim=8, inter=40, layers=2,
         vocab=72, max_pos=64, theta=500000.0, eps=1e-5, tied=False, bias=False, tokens=24, seed=103,
         bos=1, eos=2, version="4.45.2", dtype="bfloat16"),
    # head_dim 12 given explicitly, unlike hidden / heads = 6; the weights split over two shard files.
    dict(name="llama_head_dim_sharded", family="llama", hidden=24, heads=4, kv_heads=2, head_dim=12, inter=40,
         layers=2, vocab=64, max_pos=64, theta=10000.0, eps=1e-5, tied=False, bias=False, tokens=18, seed=104,
         bos=1, eos=2, version="4.45.2", shards=2),
    # Mistral: sliding_window 6 on every layer, shorter than the 24-token sequence.
    dict(name="mistral_window", family="mistral", hidden=32, heads=4, kv_heads=2, head_dim=8, inter=56, layers=2,
         vocab=64, max_pos=64, theta=10000.0, eps=1e-5, tied=False, bias=False, tokens=24, seed=105,
         bos=1, eos=2, version="4.45.2", sliding_window=6),
    # Qwen2: bias on q, k, v only, tied, use_sliding_window with max_window_layers 1: layer 0 sees the whole
    # sequence, layers 1 and 2 a window of 5. No bos_token_id (Qwen2Config has none by default).
    dict(name="qwen2_window", family="qwen2", hidden=32, heads=4, kv_heads=2, head_dim=None, inter=40, layers=3,
         vocab=64, max_pos=64, theta=1000000.0, eps=1e-6, tied=True, bias=True, tokens=20, seed=106,
         bos=None, eos=63, version="4.45.2", sliding_window=5, use_sliding_window=True, max_window_layers=1),
]


def head_dim_of(v):
    return v["head_dim"] if v["head_dim"] is not None else v["hidden"] // v["heads"]


def config_json(v):
    """config.json as save_pretrained writes it for the variant's family and transformers version."""
    c = {
        "architectures": [ARCH[v["family"]]],
        "attention_dropout": 0.0,
        "eos_token_id": v["eos"],
        "hidden_act": "silu",
        "hidden_size": v["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": v["inter"],
        "max_position_embeddings": v["max_pos"],
        "model_type": v["family"],
        "num_attention_heads": v["heads"],
        "num_hidden_layers": v["layers"],
        "num_key_value_heads": v["kv_heads"],
        "rms_norm_eps": v["eps"],
        "rope_theta": v["theta"],
        "tie_word_embeddings": v["tied"],
        "torch_dtype": v.get("dtype", "float32"),
        "transformers_version": v["version"],
        "use_cache": True,
        "vocab_size": v["vocab"],
    }
    if v["bos"] is not None:  # PretrainedConfig's default is None, and the diff against it omits None
        c["bos_token_id"] = v["bos"]
    if v["family"] == "llama":
        c["attention_bias"] = v["bias"]
        c["pretraining_tp"] = 1
        c["rope_scaling"] = v.get("rope_scaling")
        if v["version"] >= "4.45":  # LlamaConfig writes head_dim and mlp_bias since 4.41 / 4.45
            c["head_dim"] = head_dim_of(v)
            c["mlp_bias"] = False
    elif v["family"] == "mistral":
        c["head_dim"] = head_dim_of(v)
        c["sliding_window"] = v.get("sliding_window")
    elif v["family"] == "qwen2":
        c["max_window_layers"] = v["max_window_layers"]
        c["rope_scaling"] = None
        c["sliding_window"] = v["sliding_window"]
        c["use_sliding_window"] = v["use_sliding_window"]
    return c


def make_weights(v):
    """Name -> float32 tensor in LlamaForCausalLM's state-dict order, nn.Linear weights [out, in].

    Scales are chosen so that every part shows in the logits: q and k at twice the 1/sqrt(fan_in) of the
    other projections make attention peaked, so a wrong position, mask or rotation moves the result; biases
    and norm gains are far from 0 and 1.
    """
    g = torch.Generator().manual_seed(v["seed"])
    C, I, V = v["hidden"], v["inter"], v["vocab"]
    H, Hkv, D = v["heads"], v["kv_heads"], head_dim_of(v)
    qkv_bias = v["bias"]
    o_bias = v["bias"] and v["family"] == "llama"

    def normal(shape, std):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std

    def linear(out, inp, gain=1.0):
        return normal((out, inp), gain / math.sqrt(inp))

    w = {"model.embed_tokens.weight": normal((V, C), 1.0)}
    for l in range(v["layers"]):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = 1.0 + normal((C,), 0.2)
        w[p + "self_attn.q_proj.weight"] = linear(H * D, C, 2.0)
        if qkv_bias:
            w[p + "self_attn.q_proj.bias"] = normal((H * D,), 0.5)
        w[p + "self_attn.k_proj.weight"] = linear(Hkv * D, C, 2.0)
        if qkv_bias:
            w[p + "self_attn.k_proj.bias"] = normal((Hkv * D,), 0.5)
        w[p + "self_attn.v_proj.weight"] = linear(Hkv * D, C)
        if qkv_bias:
            w[p + "self_attn.v_proj.bias"] = normal((Hkv * D,), 0.5)
        w[p + "self_attn.o_proj.weight"] = linear(C, H * D)
        if o_bias:
            w[p + "self_attn.o_proj.bias"] = normal((C,), 0.5)
        w[p + "mlp.gate_proj.weight"] = linear(I, C)
        w[p + "mlp.up_proj.weight"] = linear(I, C)
        w[p + "mlp.down_proj.weight"] = linear(C, I)
        w[p + "post_attention_layernorm.weight"] = 1.0 + normal((C,), 0.2)
    w["model.norm.weight"] = 1.0 + normal((C,), 0.2)
    if not v["tied"]:  # save_pretrained drops the tied head: it is the same storage as embed_tokens
        w["lm_head.weight"] = linear(V, C)
    return w


def inv_freq_of(v):
    """[D/2] rotary frequencies: theta^(-2i/D), then Llama 3.1's rescaling when rope_scaling asks for it."""
    D = head_dim_of(v)
    inv = 1.0 / (v["theta"] ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    rs = v.get("rope_scaling")
    if rs is None:
        return inv
    assert rs["rope_type"] == "llama3"
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old_context = rs["original_max_position_embeddings"]
    low_freq_wavelen, high_freq_wavelen = old_context / low, old_context / high
    out = []
    for f in inv.tolist():
        wavelen = 2 * math.pi / f
        if wavelen < high_freq_wavelen:  # high frequency: kept
            out.append(f)
        elif wavelen > low_freq_wavelen:  # low frequency: stretched by factor
            out.append(f / factor)
        else:  # in between: interpolate between the two
            smooth = (old_context / wavelen - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return torch.tensor(out, dtype=torch.float64)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope(x, positions, inv_freq):
    """x [heads, T, D] rotated by angle position · inv_freq[i] in the plane of components i and i + D/2."""
    freqs = positions.to(torch.float64)[:, None] * inv_freq[None, :]  # [T, D/2]
    emb = torch.cat((freqs, freqs), dim=-1).to(x.dtype)  # [T, D]
    return x * emb.cos() + rotate_half(x) * emb.sin()


def rope_by_pairs(x, positions, inv_freq):
    """The same rotation written as complex multiplication on (x_i, x_{i+D/2}): a check on rope()."""
    half = x.shape[-1] // 2
    z = torch.complex(x[..., :half].to(torch.float64), x[..., half:].to(torch.float64))
    angle = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    z = z * torch.polar(torch.ones_like(angle), angle)
    return torch.cat((z.real, z.imag), dim=-1).to(x.dtype)


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def linear(x, p, name):
    y = x @ p[name + ".weight"].T
    return y + p[name + ".bias"] if name + ".bias" in p else y


def window_of(v, layer):
    """Sliding window W of a layer (query i sees key j iff i - W < j <= i), or None for full causal."""
    if v["family"] == "mistral":
        return v.get("sliding_window")
    if v["family"] == "qwen2" and v["use_sliding_window"] and layer >= v["max_window_layers"]:
        return v["sliding_window"]
    return None


def forward(v, w, tokens, dtype):
    """logits [T, V] of the variant's *ForCausalLM on tokens at positions 0 .. T-1."""
    p = {name: t.to(dtype) for name, t in w.items()}
    T, C = len(tokens), v["hidden"]
    H, Hkv, D = v["heads"], v["kv_heads"], head_dim_of(v)
    positions = torch.arange(T)
    inv_freq = inv_freq_of(v)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]

    x = p["model.embed_tokens.weight"][torch.tensor(tokens, dtype=torch.long)]  # [T, C]
    for l in range(v["layers"]):
        pre = f"model.layers.{l}."
        h = rms_norm(x, p[pre + "input_layernorm.weight"], v["eps"])
        q = linear(h, p, pre + "self_attn.q_proj").reshape(T, H, D).transpose(0, 1)  # [H, T, D]
        k = linear(h, p, pre + "self_attn.k_proj").reshape(T, Hkv, D).transpose(0, 1)  # [Hkv, T, D]
        val = linear(h, p, pre + "self_attn.v_proj").reshape(T, Hkv, D).transpose(0, 1)  # [Hkv, T, D]
        q, k = rope(q, positions, inv_freq), rope(k, positions, inv_freq)
        k = k.repeat_interleave(H // Hkv, dim=0)  # [H, T, D]: query head h reads kv head h // (H / Hkv)
        val = val.repeat_interleave(H // Hkv, dim=0)
        visible = j <= i
        W = window_of(v, l)
        if W is not None:
            visible = visible & (j > i - W)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(D)  # [H, T, T]
        scores = scores.masked_fill(~visible, float("-inf"))
        a = (torch.softmax(scores, dim=-1) @ val).transpose(0, 1).reshape(T, H * D)  # [T, H·D]
        x = x + linear(a, p, pre + "self_attn.o_proj")

        m = rms_norm(x, p[pre + "post_attention_layernorm.weight"], v["eps"])
        gate = linear(m, p, pre + "mlp.gate_proj")
        up = linear(m, p, pre + "mlp.up_proj")
        x = x + linear(F.silu(gate) * up, p, pre + "mlp.down_proj")
    x = rms_norm(x, p["model.norm.weight"], v["eps"])
    head = p["model.embed_tokens.weight"] if v["tied"] else p["lm_head.weight"]
    return x @ head.T  # [T, V]


def bf16_bits(t):
    """float32 tensor -> uint16 bfloat16 bits, round to nearest even (no NaN in these weights)."""
    u = t.contiguous().numpy().astype("<f4").view("<u4").astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype("<u2")


def tensor_bytes(t, dtype):
    if dtype == "BF16":
        return bf16_bits(t).tobytes()
    return t.contiguous().numpy().astype("<f4").tobytes()


def write_safetensors(path, names, tensors, dtype):
    """8-byte little-endian header length, JSON header padded with spaces to 8 bytes, raw data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(names):
        data = tensor_bytes(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return offset


def read_safetensors(path):
    """name -> float64 tensor; F32 and BF16 (widened exactly: the 16 bits are the top of a float32)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        chunk = raw[8 + n + begin : 8 + n + end]
        if info["dtype"] == "BF16":
            values = (np.frombuffer(chunk, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            assert info["dtype"] == "F32"
            values = np.frombuffer(chunk, dtype="<f4")
        out[name] = torch.from_numpy(values.astype(np.float64).reshape(info["shape"]))
    return out


def write_checkpoint(v, out_dir, weights):
    """model.safetensors, or HF's sharded layout: contiguous runs of the state dict, then the index."""
    dtype = "BF16" if v.get("dtype") == "bfloat16" else "F32"
    names = list(weights)  # state-dict order, as save_pretrained fills shards
    shards = v.get("shards", 1)
    if shards == 1:
        write_safetensors(out_dir / "model.safetensors", names, weights, dtype)
        return [out_dir / "model.safetensors"]
    files, weight_map, total = [], {}, 0
    for s in range(shards):
        part = names[len(names) * s // shards : len(names) * (s + 1) // shards]
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        total += write_safetensors(out_dir / file, part, weights, dtype)
        weight_map.update({name: file for name in part})
        files.append(out_dir / file)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return files


def check_rope():
    """rope() against an independent formulation, and the llama3 bands against values worked by hand."""
    v = VARIANTS[0]
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 9, head_dim_of(v), generator=g, dtype=torch.float64)
    pos = torch.arange(60, 69)
    inv = inv_freq_of(v)
    assert torch.allclose(rope(x, pos, inv), rope_by_pairs(x, pos, inv), atol=1e-12)
    # D = 8, theta 1e4, factor 8, low 0.5, high 2, original context 64: wavelengths 6.3 (< 32, kept),
    # 62.8 (between 32 and 128, smoothed), 628 and 6283 (> 128, divided by 8).
    smooth = (64 / (2 * math.pi / 0.1) - 0.5) / 1.5
    expected = [1.0, (1 - smooth) * 0.1 / 8 + smooth * 0.1, 0.01 / 8, 0.001 / 8]
    assert torch.allclose(inv, torch.tensor(expected, dtype=torch.float64), rtol=1e-12), inv


def main():
    check_rope()
    for v in VARIANTS:
        out_dir = FIXTURES / f"tiny_{v['name']}"
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.glob("model*.safetensors*"):
            stale.unlink()
        weights = make_weights(v)
        (out_dir / "config.json").write_text(json.dumps(config_json(v), indent=2, sort_keys=True) + "\n")
        files = write_checkpoint(v, out_dir, weights)

        # The golden forward reads the weights back from the files, so it checks them as the C++ side sees them.
        loaded = {}
        for f in files:
            loaded.update(read_safetensors(f))
        assert loaded.keys() == weights.keys()
        if v.get("dtype") == "bfloat16":
            assert all(torch.equal(loaded[k], weights[k].to(torch.bfloat16).to(torch.float64)) for k in weights)
        else:
            assert all(torch.equal(loaded[k], weights[k].to(torch.float64)) for k in weights)

        g = torch.Generator().manual_seed(v["seed"] + 1000)
        tokens = torch.randint(0, v["vocab"], (v["tokens"],), generator=g).tolist()
        logits64 = forward(v, loaded, tokens, torch.float64)
        logits32 = forward(v, loaded, tokens, torch.float32).to(torch.float64)
        # Attention must matter: the window, positions and mask have to move these logits.
        assert logits64.abs().max() > 1.0

        (out_dir / "golden_tokens.txt").write_text(" ".join(map(str, tokens)) + "\n")
        np.save(out_dir / "golden_logits.npy", logits64.numpy().astype("<f4"))

        size = sum(f.stat().st_size for f in out_dir.iterdir())
        print(f"tiny_{v['name']}: T {len(tokens)}, logits [{len(tokens)}, {v['vocab']}] max |logit| "
              f"{logits64.abs().max():.3f}; float32 vs float64 torch max |diff| "
              f"{(logits32 - logits64).abs().max():.2e}; {size} bytes")


if __name__ == "__main__":
    main()

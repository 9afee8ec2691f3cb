#!/usr/bin/env python3
"""Golden logits for the CPU GPT-2, from an independent pure-PyTorch forward pass.

Builds a tiny GPT-2 with seeded random weights, writes it as a Hugging Face checkpoint (config.json and a
hand-written F32 model.safetensors in Conv1D layout, names without the "transformer." prefix, with the
h.N.attn.bias causal buffers that real checkpoints carry) and the logits of a fixed token list:

    tests/fixtures/tiny_gpt2/{config.json, model.safetensors, golden_tokens.txt, golden_logits.npy}

The forward runs in float64 on the float32 weights, so the golden logits carry only the rounding of the
final cast; tests/model/test_gpt2_cpu.cpp compares the C++ reference against them. Needs python3-torch
(Debian 12 ships 1.13) and numpy. Run from the repository root; rerunning gives the same bytes.
"""

import json
import math
import pathlib
import struct

import numpy as np
import torch
import torch.nn.functional as F

# Head dim 32: the smallest the GPU attention kernels take, so the GPU model can run this checkpoint too.
N_LAYER, N_HEAD, N_EMBD, N_POSITIONS, VOCAB = 2, 2, 64, 64, 96
EPS = 1e-5
STDDEV = 0.1
SEED = 1234
N_TOKENS = 20
OUT_DIR = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tiny_gpt2"


def make_weights():
    """Name -> float32 tensor, Hugging Face GPT2Model names and shapes (Conv1D weights are [in, out])."""
    g = torch.Generator().manual_seed(SEED)
    C = N_EMBD

    def normal(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * STDDEV

    def gain(n):
        return 1.0 + normal(n)

    w = {"wte.weight": normal(VOCAB, C), "wpe.weight": normal(N_POSITIONS, C)}
    for l in range(N_LAYER):
        h = f"h.{l}."
        w[h + "ln_1.weight"], w[h + "ln_1.bias"] = gain(C), normal(C)
        w[h + "attn.c_attn.weight"], w[h + "attn.c_attn.bias"] = normal(C, 3 * C), normal(3 * C)
        w[h + "attn.c_proj.weight"], w[h + "attn.c_proj.bias"] = normal(C, C), normal(C)
        w[h + "ln_2.weight"], w[h + "ln_2.bias"] = gain(C), normal(C)
        w[h + "mlp.c_fc.weight"], w[h + "mlp.c_fc.bias"] = normal(C, 4 * C), normal(4 * C)
        w[h + "mlp.c_proj.weight"], w[h + "mlp.c_proj.bias"] = normal(4 * C, C), normal(C)
        # The causal-mask buffer that GPT2Attention registers and real checkpoints store; loaders skip it.
        w[h + "attn.bias"] = torch.tril(torch.ones(N_POSITIONS, N_POSITIONS)).view(1, 1, N_POSITIONS, N_POSITIONS)
    w["ln_f.weight"], w["ln_f.bias"] = gain(C), normal(C)
    return w


def forward(w, tokens, dtype):
    """logits [T, V] of GPT2LMHeadModel with the LM head tied to wte, written out op by op."""
    p = {name: t.to(dtype) for name, t in w.items()}
    T, C, H = len(tokens), N_EMBD, N_HEAD
    D = C // H
    idx = torch.tensor(tokens, dtype=torch.long)

    x = p["wte.weight"][idx] + p["wpe.weight"][:T]  # [T, C]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))  # query i sees keys j <= i
    for l in range(N_LAYER):
        h = f"h.{l}."
        a = F.layer_norm(x, (C,), p[h + "ln_1.weight"], p[h + "ln_1.bias"], EPS)
        qkv = a @ p[h + "attn.c_attn.weight"] + p[h + "attn.c_attn.bias"]  # [T, 3C]
        q, k, v = (t.reshape(T, H, D).transpose(0, 1) for t in qkv.split(C, dim=-1))  # [H, T, D] each
        scores = q @ k.transpose(-1, -2) / math.sqrt(D)  # [H, T, T]
        scores = scores.masked_fill(~causal, float("-inf"))
        y = torch.softmax(scores, dim=-1) @ v  # [H, T, D]
        y = y.transpose(0, 1).reshape(T, C)
        x = x + y @ p[h + "attn.c_proj.weight"] + p[h + "attn.c_proj.bias"]

        m = F.layer_norm(x, (C,), p[h + "ln_2.weight"], p[h + "ln_2.bias"], EPS)
        m = F.gelu(m @ p[h + "mlp.c_fc.weight"] + p[h + "mlp.c_fc.bias"], approximate="tanh")
        x = x + m @ p[h + "mlp.c_proj.weight"] + p[h + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], EPS)
    return x @ p["wte.weight"].T  # [T, V]


def write_safetensors(path, tensors):
    """8-byte little-endian header length, JSON header padded with spaces to 8 bytes, raw F32 data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = tensors[name].contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw[8 + n + begin : 8 + n + end], dtype="<f4").reshape(info["shape"]).copy())
    return out


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    weights = make_weights()
    config = {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "activation_function": "gelu_new",
        "n_embd": N_EMBD,
        "n_head": N_HEAD,
        "n_layer": N_LAYER,
        "n_positions": N_POSITIONS,
        "n_ctx": N_POSITIONS,
        "vocab_size": VOCAB,
        "layer_norm_epsilon": EPS,
        "bos_token_id": VOCAB - 1,
        "eos_token_id": VOCAB - 1,
        "tie_word_embeddings": True,
    }
    (OUT_DIR / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    write_safetensors(OUT_DIR / "model.safetensors", weights)

    # The golden forward reads the weights back from the file, so it checks the file as the C++ side sees it.
    loaded = read_safetensors(OUT_DIR / "model.safetensors")
    assert loaded.keys() == weights.keys() and all(torch.equal(loaded[k], weights[k]) for k in weights)

    g = torch.Generator().manual_seed(SEED + 1)
    tokens = torch.randint(0, VOCAB, (N_TOKENS,), generator=g).tolist()
    logits64 = forward(loaded, tokens, torch.float64)
    logits32 = forward(loaded, tokens, torch.float32).to(torch.float64)

    (OUT_DIR / "golden_tokens.txt").write_text(" ".join(map(str, tokens)) + "\n")
    np.save(OUT_DIR / "golden_logits.npy", logits64.numpy().astype("<f4"))

    print(f"tokens: {tokens}")
    print(f"logits [{N_TOKENS}, {VOCAB}]: max |logit| {logits64.abs().max():.4f}, std {logits64.std():.4f}")
    print(f"float32 torch vs float64 torch: max |diff| {(logits32 - logits64).abs().max():.3e}")
    for f in sorted(OUT_DIR.iterdir()):
        print(f"{f.relative_to(OUT_DIR.parent.parent.parent)}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()

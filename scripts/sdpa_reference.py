#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention timed on the CUDA GPU: the reference figure `vkattn bench attention`
is compared with (scripts/gpu-check.sh runs both on the same machine).

Prints one JSON object per case on stdout, with the fields of `vkattn bench attention --json` where they mean
the same (median_ms, min_ms, flops, gflops: 4·H·L²·D multiply-adds counted twice, halved when causal).

    python3 scripts/sdpa_reference.py --heads 32 --len 4096 --dim 128 --dtype f16
"""
import argparse
import json
import statistics
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--len", type=int, default=4096, help="L = Lq = Lk")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--dtype", choices=["f16", "f32"], default="f16")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()

    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print(json.dumps({"bench": "sdpa", "error": f"no torch: {e}"}))
        return 1
    if not torch.cuda.is_available():
        print(json.dumps({"bench": "sdpa", "error": "torch sees no CUDA device"}))
        return 1

    dev = torch.device("cuda")
    dtype = torch.float16 if args.dtype == "f16" else torch.float32
    B, H, L, D = args.batch, args.heads, args.len, args.dim
    gen = torch.Generator(device=dev).manual_seed(1)
    # The same value ranges as vkattn bench: Q, K uniform in [-2, 2), V in [-1, 1).
    q = (torch.rand(B, H, L, D, device=dev, generator=gen) * 4 - 2).to(dtype)
    k = (torch.rand(B, H, L, D, device=dev, generator=gen) * 4 - 2).to(dtype)
    v = (torch.rand(B, H, L, D, device=dev, generator=gen) * 2 - 1).to(dtype)

    for causal in (False, True):
        for _ in range(args.warmup):
            F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        torch.cuda.synchronize()
        times = []
        for _ in range(args.reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        flops = 4.0 * B * H * L * L * D / (2 if causal else 1)
        med = statistics.median(times)
        print(json.dumps({
            "bench": "attention",
            "impl": "torch sdpa",
            "device": torch.cuda.get_device_name(dev),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "flash_sdp_enabled": torch.backends.cuda.flash_sdp_enabled(),
            "dtype": args.dtype,
            "batch": B, "heads": H, "kv_heads": H, "lq": L, "lk": L, "dim": D,
            "causal": causal,
            "reps": args.reps,
            "clock": "cuda events",
            "median_ms": med,
            "min_ms": min(times),
            "flops": flops,
            "gflops": flops / (med * 1e6),
        }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

// top_k: the sampler's candidates from a row of logits x [V] f32: the k largest values outside the ids in
// skip [n_skip] (ascending, distinct), by decreasing value, ties by increasing id, NaNs never chosen; x at each
// skipped id (the tokens a repeat penalty will change); and the lowest index of a NaN anywhere in the row.
// A decode step then reads back a few hundred bytes instead of V floats (ops/top_k.hpp).
//
// One workgroup, every pass a strided sweep of the row. The first writes an order-preserving 32-bit key of
// each value into keys [V] (0 for a NaN or a skipped id: no number has key 0). The k-th largest value is then
// found exactly by radix selection on the keys: four passes of 8 bits, most significant first, each a 256-bin
// histogram in shared memory of the keys that share the bits chosen so far. That leaves a threshold key and
// how many of the values at it are wanted: those with the lowest ids. When fewer are wanted than there are,
// four more passes select among them the same way on the inverted id (~id: the lowest ids largest). The k
// chosen are gathered in any order and ranked in shared memory by (key descending, id ascending), a total
// order, so the output is the same on every device. k = 1 (greedy) needs none of that: one sweep (top_1).
//
// llvmpipe ends every loop of an invocation once all its loops together have run 65,535 iterations (gallivm's
// LP_MAX_TGSI_LOOP_ITERATIONS), silently: each invocation here runs about 10 V / WG + 3,000 of them, which
// is why ops/top_k.cpp takes WG = 128 and V <= kTopKMaxVocab.
//
// Output words: [0] how many were chosen, n <= k; [1] the lowest NaN index (0xFFFFFFFF: none);
// [2, 2 + n) ids; [2 + k, 2 + k + n) their values' bits; [2 + 2k, 2 + 2k + n_skip) the skipped values' bits.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "model_params.h"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
const uint K_MAX = 256;  // ops::kTopKMax

layout(std430, binding = 0) readonly buffer XBuf { float x[]; };
layout(std430, binding = 1) readonly buffer SkipBuf { uint skip[]; };
layout(std430, binding = 2) writeonly buffer OutBuf { uint outw[]; };
layout(std430, binding = 3) coherent buffer KeyBuf { uint keys[]; };  // [V] scratch
layout(push_constant) uniform Push { TopKParams p; };

shared uint hist[256];
shared uint s_prefix;     // the bits chosen so far (of the key, then of the inverted id)
shared uint s_remaining;  // how many of the values that share them are still wanted
shared uint s_value;      // the value threshold: every key above it is chosen
shared uint s_id;         // the inverted-id threshold among the keys equal to s_value
shared bool s_done;       // both thresholds known
shared uint s_nan;        // the lowest NaN index
shared uint s_count;      // values gathered so far
shared uint sel_key[K_MAX];
shared uint sel_id[K_MAX];
shared uint best_key[WG];  // k = 1: each invocation's best
shared uint best_id[WG];

// A larger float has a larger key. -0 takes +0's key: they compare equal, so they tie (the lower id first).
// No number has key 0 (that would be the NaN 0xFFFFFFFF).
uint order_key(float v) {
    uint u = floatBitsToUint(v);
    if (u == 0x80000000u) u = 0u;
    return (u & 0x80000000u) != 0u ? ~u : u | 0x80000000u;
}

// The digit of id i (with key `key`) in pass q, or 256 when it is out of the running: q < 4 takes 8 bits of
// the key (from the top) among the keys sharing the bits chosen so far; q >= 4 8 bits of the inverted id among
// the ids whose key is the value threshold.
uint digit(uint q, uint i, uint key) {
    if (key == 0u) return 256u;
    const uint shift = 24u - 8u * (q % 4u);
    uint bits = key;
    if (q >= 4u) {
        if (key != s_value) return 256u;
        bits = ~i;
    }
    const bool same_prefix = q % 4u == 0u || (bits >> (shift + 8u)) == (s_prefix >> (shift + 8u));
    return same_prefix ? (bits >> shift) & 255u : 256u;
}

bool is_skipped(uint i) {  // binary search of the ascending skip list
    uint lo = 0, hi = p.n_skip;
    while (lo < hi) {
        const uint mid = (lo + hi) / 2;
        const uint s = skip[mid];
        if (s == i) return true;
        if (s < i) lo = mid + 1; else hi = mid;
    }
    return false;
}

// k = 1 (greedy, the usual decode): one sweep, each invocation keeping its largest key (the first, i.e. lowest,
// id on ties: its ids ascend), then the invocations' bests compared by (key, id) in shared memory.
void top_1(uint t) {
    uint bk = 0u, bi = 0xFFFFFFFFu;
    for (uint i = t; i < p.V; i += WG) {
        const float v = x[p.x_offset + i];
        if (isnan(v)) {
            atomicMin(s_nan, i);
            continue;
        }
        const uint key = order_key(v);
        if (key > bk && !is_skipped(i)) {
            bk = key;
            bi = i;
        }
    }
    best_key[t] = bk;
    best_id[t] = bi;
    barrier();  // every invocation's best and NaN → the pick
    if (t == 0) {
        for (uint s = 1; s < WG; ++s) {
            if (best_key[s] > bk || (best_key[s] == bk && best_id[s] < bi)) {
                bk = best_key[s];
                bi = best_id[s];
            }
        }
        outw[0] = bk != 0u ? 1u : 0u;  // none when every value is NaN or skipped
        outw[1] = s_nan;
        if (bk != 0u) {
            outw[2] = bi;
            outw[3] = floatBitsToUint(x[p.x_offset + bi]);
        }
    }
    for (uint j = t; j < p.n_skip; j += WG) outw[4 + j] = floatBitsToUint(x[p.x_offset + skip[j]]);
}

void main() {
    const uint t = gl_LocalInvocationID.x;
    if (t == 0) {
        s_prefix = 0u;
        s_remaining = p.k;
        s_value = 0u;
        s_id = 0u;
        s_done = false;
        s_nan = 0xFFFFFFFFu;
        s_count = 0u;
    }
    barrier();  // set → the sweeps' atomics
    if (p.k == 1u) {  // uniform
        top_1(t);
        return;
    }
    // The keys, and the first NaN.
    for (uint i = t; i < p.V; i += WG) {
        const float v = x[p.x_offset + i];
        if (isnan(v)) atomicMin(s_nan, i);
        keys[i] = isnan(v) ? 0u : order_key(v);
    }
    memoryBarrierBuffer();
    barrier();  // every key written → the skipped ones cleared
    for (uint j = t; j < p.n_skip; j += WG) keys[skip[j]] = 0u;
    memoryBarrierBuffer();
    barrier();  // keys final → the passes

    for (uint q = 0; q < 8u; ++q) {
        for (uint b = t; b < 256u; b += WG) hist[b] = 0u;
        barrier();  // zeroed → counted
        for (uint i = t; i < p.V; i += WG) {
            const uint d = digit(q, i, keys[i]);
            if (d < 256u) atomicAdd(hist[d], 1u);
        }
        barrier();  // counted → scanned
        if (t == 0) {
            if (q == 0u) {
                uint eligible = 0u;
                for (uint b = 0; b < 256u; ++b) eligible += hist[b];
                s_done = eligible <= p.k;  // every eligible value: thresholds 0 (every key is above 0)
            }
            if (!s_done) {
                // The bins from the top hold at least s_remaining values in all, so the walk stops at a bin.
                uint remaining = s_remaining;
                uint d = 255u;
                while (hist[d] < remaining) remaining -= hist[d--];
                s_prefix |= d << (24u - 8u * (q % 4u));
                s_remaining = remaining;
                if (q == 3u) {
                    s_value = s_prefix;
                    s_prefix = 0u;
                    s_done = hist[d] == remaining;  // every value at the threshold is wanted: id threshold 0
                } else if (q == 7u) {
                    s_id = s_prefix;
                    s_done = true;
                }
            }
        }
        barrier();  // the digit chosen → read by all
        if (s_done) break;  // uniform: read by all after the barrier
    }
    const uint value_threshold = s_value, id_threshold = s_id;

    // Gather the chosen: keys above the value threshold, and keys at it whose inverted id is at or above the
    // id threshold. That is min(k, eligible) values.
    for (uint i = t; i < p.V; i += WG) {
        const uint key = keys[i];
        if (key > value_threshold || (key != 0u && key == value_threshold && ~i >= id_threshold)) {
            const uint slot = atomicAdd(s_count, 1u);
            if (slot < K_MAX) {
                sel_key[slot] = key;
                sel_id[slot] = i;
            }
        }
    }
    barrier();  // gathered → ranked

    const uint n = min(s_count, p.k);  // s_count is min(k, eligible) already; min guards the arrays
    for (uint e = t; e < n; e += WG) {
        const uint key = sel_key[e], id = sel_id[e];
        uint rank = 0;
        for (uint j = 0; j < n; ++j) rank += uint(sel_key[j] > key || (sel_key[j] == key && sel_id[j] < id));
        outw[2 + rank] = id;
        outw[2 + p.k + rank] = floatBitsToUint(x[p.x_offset + id]);
    }
    for (uint j = t; j < p.n_skip; j += WG) outw[2 + 2 * p.k + j] = floatBitsToUint(x[p.x_offset + skip[j]]);
    if (t == 0) {
        outw[0] = n;
        outw[1] = s_nan;
    }
}

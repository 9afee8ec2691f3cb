// GPT-2's tensors, written once. gpt2_schema() walks a Gpt2Params (host floats or device buffers) in the
// order GPT2LMHeadModel lists its tensors, handing each member to `visit` with its TensorSpec.
#pragma once

#include "model/schema.hpp"

#include <vkattn/model/gpt2_weights.hpp>

#include <string>
#include <type_traits>
#include <vector>

namespace vkattn::model {

// visit(member, spec) for every tensor of the model, wte first and ln_f.bias last. A non-const `params` has
// its layers resized to n_layer first; a const one must already have n_layer of them.
template <typename Params, typename Visit>
void gpt2_schema(const Gpt2Config& c, Params& params, Visit&& visit) {
    const int64_t C = c.n_embd, V = c.vocab_size, P = c.n_positions;
    if constexpr (!std::is_const_v<Params>) params.layers.resize(size_t(c.n_layer));
    visit(params.wte, TensorSpec{"wte.weight", {V, C}, Role::embedding, -1});
    visit(params.wpe, TensorSpec{"wpe.weight", {P, C}, Role::embedding, -1});
    for (int l = 0; l < c.n_layer; ++l) {
        auto& b = params.layers[size_t(l)];
        const std::string h = "h." + std::to_string(l) + ".";
        visit(b.ln_1_w, TensorSpec{h + "ln_1.weight", {C}, Role::norm_gain, l});
        visit(b.ln_1_b, TensorSpec{h + "ln_1.bias", {C}, Role::norm_bias, l});
        visit(b.attn_w, TensorSpec{h + "attn.c_attn.weight", {C, 3 * C}, Role::weight, l});
        visit(b.attn_b, TensorSpec{h + "attn.c_attn.bias", {3 * C}, Role::bias, l});
        visit(b.attn_proj_w, TensorSpec{h + "attn.c_proj.weight", {C, C}, Role::weight, l});
        visit(b.attn_proj_b, TensorSpec{h + "attn.c_proj.bias", {C}, Role::bias, l});
        visit(b.ln_2_w, TensorSpec{h + "ln_2.weight", {C}, Role::norm_gain, l});
        visit(b.ln_2_b, TensorSpec{h + "ln_2.bias", {C}, Role::norm_bias, l});
        visit(b.fc_w, TensorSpec{h + "mlp.c_fc.weight", {C, 4 * C}, Role::weight, l});
        visit(b.fc_b, TensorSpec{h + "mlp.c_fc.bias", {4 * C}, Role::bias, l});
        visit(b.fc_proj_w, TensorSpec{h + "mlp.c_proj.weight", {4 * C, C}, Role::weight, l});
        visit(b.fc_proj_b, TensorSpec{h + "mlp.c_proj.bias", {C}, Role::bias, l});
        // h.N.attn.bias (the causal mask) and h.N.attn.masked_bias are buffers, not weights: never read.
    }
    visit(params.ln_f_w, TensorSpec{"ln_f.weight", {C}, Role::norm_gain, -1});
    visit(params.ln_f_b, TensorSpec{"ln_f.bias", {C}, Role::norm_bias, -1});
}

// An untied LM head, when a checkpoint has one (usually it is a copy of wte, and dropped).
inline TensorSpec gpt2_lm_head_spec(const Gpt2Config& c) {
    return {"lm_head.weight", {int64_t(c.vocab_size), int64_t(c.n_embd)}, Role::weight, -1};
}

// The table alone, for sizes and counts.
inline std::vector<TensorSpec> gpt2_tensor_specs(const Gpt2Config& c) {
    Gpt2Params<char> none;
    std::vector<TensorSpec> out;
    gpt2_schema(c, none, [&](char&, TensorSpec s) { out.push_back(std::move(s)); });
    return out;
}

// Throws vkattn::Error naming the first tensor of w whose size is not what w.config implies.
void gpt2_check_sizes(const Gpt2Weights& w);

}  // namespace vkattn::model

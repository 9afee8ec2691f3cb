// LanguageModel::forward_with_attention: the attention probabilities of chosen layers out of a model run, on the
// GPU (three kernels, the softmax output copied out inside the step's command buffer) against the CPU reference,
// for GPT-2 and Llama-family fixtures with grouped-query attention and sliding windows; the mask's exact zeros,
// rows summing to one, a decode step after a prefill, and the refusals.
#include "catch.hpp"
#include "model/llama_fixtures.hpp"
#include "support.hpp"

#include <vkattn/error.hpp>
#include <vkattn/model/language_model.hpp>
#include <vkattn/model/llama_gpu.hpp>
#include <vkattn/model/llama_weights.hpp>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

using namespace vkattn;
using vkattn::test::error_message;
using vkattn::test::fixture;

namespace {

// The fixtures: GPT-2 (2 layers, 2 heads); Llama 3 with GQA (4 query heads over 2 kv heads, llama3 RoPE scaling);
// Mistral with a 6-token window on every layer and GQA; Qwen2 with a 5-token window from layer max_window_layers = 1
// on (Hugging Face's Qwen2: layer 0 sees every position).
struct Case {
    const char* dir;
    int window;        // the sliding window of layers first_windowed and up; 0: none
    int first_windowed;
};
constexpr Case k_cases[] = {
    {"tiny_gpt2", 0, 0}, {"tiny_llama3_gqa", 0, 0}, {"tiny_mistral_window", 6, 0}, {"tiny_qwen2_window", 5, 1}};

std::vector<int> some_tokens(int n, int V) {
    std::vector<int> t(size_t(n), 0);
    for (int i = 0; i < n; ++i) t[size_t(i)] = (i * 37 + 11) % V;
    return t;
}

std::vector<int> all_layers(int n) {
    std::vector<int> l(static_cast<size_t>(n), 0);
    std::iota(l.begin(), l.end(), 0);
    return l;
}

// Checks the mask and the normalisation of one layer's probabilities [H, Lq, Lk]: query i sits at position
// Lk - Lq + i and sees key j iff j <= that position and (window W > 0) j > position - W. Hidden keys must be
// exactly 0 (what the attention map leaves blank), visible ones positive, and each row must sum to 1.
void check_rows(const model::LayerAttention& a, int window) {
    REQUIRE(a.probs.size() == size_t(a.H) * size_t(a.Lq) * size_t(a.Lk));
    for (int h = 0; h < a.H; ++h) {
        for (int i = 0; i < a.Lq; ++i) {
            const int pos = a.Lk - a.Lq + i;
            double sum = 0;
            for (int j = 0; j < a.Lk; ++j) {
                const float p = a.probs[(size_t(h) * size_t(a.Lq) + size_t(i)) * size_t(a.Lk) + size_t(j)];
                const bool visible = j <= pos && (window == 0 || j > pos - window);
                INFO("layer " << a.layer << " head " << h << " query " << i << " key " << j << ": p = " << p);
                if (visible) {
                    REQUIRE(p > 0);
                } else {
                    REQUIRE(p == 0);
                }
                sum += p;
            }
            INFO("layer " << a.layer << " head " << h << " query " << i);
            // fp32 exp and a sum of at most Lk terms: within a few ulp of 1.
            REQUIRE(std::abs(sum - 1) <= 1e-5);
        }
    }
}

model::ModelOptions on_gpu(bool fused) {
    model::ModelOptions o;
    o.context = &test::gpu();
    o.fused_attention = fused;
    return o;
}

}  // namespace

TEST_CASE("forward_with_attention: every layer's probabilities on the GPU match the CPU reference",
          "[gpu][model][capture]") {
    for (const Case& c : k_cases) {
        for (const bool fused : {true, false}) {
            INFO(c.dir << (fused ? ", fused attention elsewhere" : ", three kernels everywhere"));
            const auto gpu = model::open_model(fixture(c.dir), model::Backend::vulkan, on_gpu(fused));
            const auto cpu = model::open_model(fixture(c.dir), model::Backend::cpu);
            const model::ModelInfo& info = gpu->info();
            const std::vector<int> tokens = some_tokens(13, info.vocab_size);  // longer than every window
            const std::vector<int> layers = all_layers(info.n_layer);

            const std::vector<float> plain = gpu->forward(tokens);
            gpu->reset();
            const model::ForwardAttention g = gpu->forward_with_attention(tokens, layers);
            const model::ForwardAttention r = cpu->forward_with_attention(tokens, layers);
            CHECK(gpu->position() == 13);
            CHECK(cpu->position() == 13);

            // Capturing changes nothing but the kernels of the captured layers: fp32 either way.
            const auto same_logits = test::compare(g.logits, plain, 1e-4, 1e-4);
            INFO("logits with and without the capture: " << same_logits.describe());
            CHECK(same_logits.ok);
            CHECK(test::compare(g.logits, r.logits, 1e-4, 1e-4).ok);

            REQUIRE(g.attention.size() == layers.size());
            REQUIRE(r.attention.size() == layers.size());
            for (size_t i = 0; i < layers.size(); ++i) {
                const model::LayerAttention &a = g.attention[i], &b = r.attention[i];
                CHECK(a.layer == layers[i]);
                CHECK(b.layer == layers[i]);
                CHECK((a.H == info.n_head && a.Lq == 13 && a.Lk == 13));
                CHECK((b.H == a.H && b.Lq == a.Lq && b.Lk == a.Lk));
                // fp32 GPU against the reference's double softmax, on residual streams that agree to ~1e-6 over
                // these 2-3 layer models: a few ulp of 1 per probability.
                const auto cmp = test::compare(a.probs, b.probs, 1e-5, 1e-4);
                INFO("layer " << a.layer << ": " << cmp.describe());
                CHECK(cmp.ok);
                const int window = a.layer >= c.first_windowed ? c.window : 0;
                check_rows(a, window);
                check_rows(b, window);
            }
        }
    }
}

TEST_CASE("forward_with_attention: a decode step after a prefill captures [H, 1, pos + 1]", "[gpu][model][capture]") {
    for (const char* dir : {"tiny_gpt2", "tiny_llama3_gqa", "tiny_mistral_window"}) {
        INFO(dir);
        const auto gpu = model::open_model(fixture(dir), model::Backend::vulkan, on_gpu(true));
        const auto cpu = model::open_model(fixture(dir), model::Backend::cpu);
        const int V = gpu->vocab_size(), H = gpu->info().n_head, window = gpu->info().window;
        const std::vector<int> tokens = some_tokens(9, V);
        const std::span<const int> prefill(tokens.data(), 8), step(tokens.data() + 8, 1);
        const std::vector<int> layer1 = {1}, both = {1, 0};  // any order: returned as asked

        // Prefill without a capture, then one token capturing both layers.
        gpu->forward(prefill);
        cpu->forward(prefill);
        const model::ForwardAttention g = gpu->forward_with_attention(step, both, false);
        const model::ForwardAttention r = cpu->forward_with_attention(step, both, false);
        CHECK(g.logits.size() == size_t(V));
        REQUIRE(g.attention.size() == 2);
        CHECK(g.attention[0].layer == 1);
        CHECK(g.attention[1].layer == 0);
        for (size_t i = 0; i < 2; ++i) {
            const model::LayerAttention& a = g.attention[i];
            CHECK((a.H == H && a.Lq == 1 && a.Lk == 9));
            check_rows(a, window);
            const auto cmp = test::compare(a.probs, r.attention[i].probs, 1e-5, 1e-4);
            INFO(cmp.describe());
            CHECK(cmp.ok);
        }

        // The same row as the last query of a 9-token prefill that captures layer 1.
        gpu->reset();
        const model::ForwardAttention full = gpu->forward_with_attention(tokens, layer1);
        const model::LayerAttention& f = full.attention.at(0);
        std::vector<float> last_rows;  // [H, 9]: query 8 of each head
        for (int h = 0; h < H; ++h) {
            const auto row = f.probs.begin() + std::ptrdiff_t((size_t(h) * 9 + 8) * 9);
            last_rows.insert(last_rows.end(), row, row + 9);
        }
        CHECK(test::compare(g.attention[0].probs, last_rows, 1e-5, 1e-4).ok);
    }
}

TEST_CASE("forward_with_attention refuses a bad layer before it changes anything", "[gpu][model][capture]") {
    const auto gpu = model::open_model(fixture("tiny_llama3_gqa"), model::Backend::vulkan, on_gpu(true));
    const auto cpu = model::open_model(fixture("tiny_gpt2"), model::Backend::cpu);
    for (model::LanguageModel* m : {gpu.get(), cpu.get()}) {
        INFO(m->description());
        const std::vector<int> tokens = {1, 2, 3};
        m->forward(tokens);
        const std::vector<int> past = {2}, negative = {-1}, twice = {0, 1, 0};
        VKATTN_REQUIRE_CONTAINS(error_message([&] { m->forward_with_attention(tokens, past); }),
                                "layer 2 does not exist: the model has 2 layers (0 to 1)");
        VKATTN_REQUIRE_CONTAINS(error_message([&] { m->forward_with_attention(tokens, negative); }),
                                "layer -1 does not exist");
        VKATTN_REQUIRE_CONTAINS(error_message([&] { m->forward_with_attention(tokens, twice); }),
                                "layer 0 is asked for twice");
        // Also with no tokens: the layers are checked first.
        VKATTN_REQUIRE_CONTAINS(error_message([&] { m->forward_with_attention({}, past); }), "layer 2 does not exist");
        CHECK(m->position() == 3);

        // The model goes on from where it was; no layers is a plain forward.
        const model::ForwardAttention none = m->forward_with_attention(tokens, {});
        CHECK(none.attention.empty());
        CHECK(none.logits.size() == 3 * size_t(m->vocab_size()));
        CHECK(m->position() == 6);
    }
}

TEST_CASE("a capture larger than the device heap is refused before anything runs", "[gpu][model][capture]") {
    // 32 query heads of head dim 2 over one kv head: a tiny model whose capture of N tokens, 4 · 32 · N² bytes, is
    // made to exceed whatever heap this device has, while its weights, KV cache and activations stay small.
    model::LlamaConfig c;
    c.hidden_size = 64;
    c.intermediate_size = 16;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 32;
    c.num_key_value_heads = 1;
    c.head_dim = 2;
    c.vocab_size = 16;
    const uint64_t heap = test::gpu().device().device_heap_bytes;
    const int N = int(std::sqrt(double(heap) / (4.0 * 32))) + 2;
    REQUIRE(model::capture_bytes(1, 32, N, N) > heap);
    c.max_position_embeddings = N;
    const model::LlamaWeights w = model::synthetic_llama(c, 5);
    model::LlamaGpu gpu(test::gpu(), w);
    REQUIRE(gpu.max_context() >= N);
    const std::vector<int> tokens = some_tokens(N, c.vocab_size), layer0 = {0};
    std::vector<model::LayerAttention> attention;
    VKATTN_REQUIRE_CONTAINS(error_message([&] { gpu.forward(tokens, false, layer0, &attention); }),
                            "capturing the attention of 1 layer over " + std::to_string(N) + " queries");
    CHECK(gpu.position() == 0);
    CHECK(attention.empty());
    // A step that fits captures as usual.
    const std::vector<int> few(tokens.begin(), tokens.begin() + 5);
    CHECK(gpu.forward(few, false, layer0, &attention).size() == 16);
    REQUIRE(attention.size() == 1);
    CHECK((attention[0].H == 32 && attention[0].Lq == 5 && attention[0].Lk == 5));
}

TEST_CASE("a LanguageModel that cannot capture says so", "[cpu][model][capture]") {
    struct Plain final : model::LanguageModel {
        std::vector<float> forward(std::span<const int>, bool) override { return {}; }
        void reset() override {}
        int position() const override { return 0; }
        uint64_t weight_bytes() const override { return 0; }
    } plain;
    const std::vector<int> tokens = {1};
    VKATTN_REQUIRE_CONTAINS(error_message([&] { plain.forward_with_attention(tokens, {}); }),
                            "cannot capture attention weights");
    CHECK(model::capture_bytes(12, 12, 1024, 1024) == 12ull * 12 * 1024 * 1024 * 4);
}

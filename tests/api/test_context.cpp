// Context lifetime: tensors and models share the device core, so outliving the Context is harmless.
#include "catch.hpp"
#include "support.hpp"

#include <vkattn/context.hpp>
#include <vkattn/model/gpt2_gpu.hpp>
#include <vkattn/model/gpt2_loader.hpp>
#include <vkattn/tensor.hpp>

#include <memory>
#include <optional>

using namespace vkattn;

TEST_CASE("a Tensor outlives its Context and still reads, writes and frees its buffer", "[gpu][context]") {
    const std::vector<float> data = test::random_values(37, 1);
    std::optional<Tensor> t;
    {
        Context ctx;
        t.emplace(ctx, std::vector<int64_t>{37}, data);
    }  // the Context is gone; the device core lives on in the tensor
    CHECK(t->download() == data);
    const std::vector<float> twice = test::random_values(37, 2);
    t->upload(twice);
    CHECK(t->download() == twice);
    Tensor moved = std::move(*t);
    t.reset();
    CHECK(moved.download() == twice);
}

TEST_CASE("a GPU model outlives its Context", "[gpu][context]") {
    model::Gpt2Config c;
    c.n_layer = 1;
    c.n_head = 2;
    c.n_embd = 64;
    c.vocab_size = 50;
    c.n_positions = 16;
    const model::Gpt2Weights w = model::synthetic_gpt2(c, 3);
    std::unique_ptr<model::Gpt2Gpu> gpu;
    std::vector<float> before;
    {
        Context ctx;
        gpu = std::make_unique<model::Gpt2Gpu>(ctx, w);
        before = gpu->forward(std::vector<int>{1, 2, 3});
    }
    gpu->reset();
    CHECK(gpu->forward(std::vector<int>{1, 2, 3}) == before);
}

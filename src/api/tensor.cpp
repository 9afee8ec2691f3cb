#include "api/format.hpp"
#include "cpu/half.hpp"
#include "ops/runtime.hpp"

#include <vkattn/error.hpp>

#include <string>

namespace vkattn {
namespace {

int64_t count(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) throw Error("tensor shape " + dims_str(shape) + " has a negative dimension");
        if (d != 0 && n > (int64_t(1) << 40) / d) throw Error("tensor shape " + dims_str(shape) + " is too large");
        n *= d;
    }
    return n;
}

std::vector<int64_t> row_major(const std::vector<int64_t>& shape) {
    std::vector<int64_t> strides(shape.size(), 1);
    for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
    return strides;
}

}  // namespace

float round_to_dtype(float x, DType t) {
    if (t == DType::bf16) return cpu::bf16_to_float(cpu::float_to_bf16(x));
    return t == DType::f16 ? cpu::half_to_float(cpu::float_to_half(x)) : x;
}

TensorView::TensorView(const Tensor& t) : tensor(&t), shape(t.shape()), strides(row_major(t.shape())) {}

TensorView::TensorView(const Tensor& t, std::vector<int64_t> shape_, std::vector<int64_t> strides_, int64_t offset_)
    : tensor(&t), offset(offset_), shape(std::move(shape_)), strides(std::move(strides_)) {}

Tensor::Tensor(Context& ctx, std::vector<int64_t> shape, DType dtype) {
    if (dtype == DType::f16 && !ctx.device().storage_16bit) {
        throw Error("f16 tensors need 16-bit storage buffers (storageBuffer16BitAccess), which " + ctx.device().name +
                    " does not have; use f32");
    }
    ctx_ = &ctx;
    numel_ = count(shape);
    shape_ = std::move(shape);
    dtype_ = dtype;
    storage_ = std::make_unique<ops::DeviceBuffer>();
    storage_->runtime = ops::shared_runtime(ctx);
    storage_->buffer = vk::Buffer(storage_->runtime->device(), uint64_t(numel_) * dtype_size(dtype));
}

Tensor::Tensor(Context& ctx, std::vector<int64_t> shape, std::span<const float> data, DType dtype)
    : Tensor(ctx, std::move(shape), dtype) {
    upload(data);
}

Tensor::~Tensor() = default;
Tensor::Tensor(Tensor&&) noexcept = default;
Tensor& Tensor::operator=(Tensor&&) noexcept = default;

void Tensor::upload(std::span<const float> data) {
    if (int64_t(data.size()) != numel_) {
        throw Error("upload of " + std::to_string(data.size()) + " values into a tensor of shape " +
                    dims_str(shape_) + " (" + std::to_string(numel_) + " elements)");
    }
    vk::Device& dev = storage_->runtime->device();
    if (dtype_ == DType::f32) {
        dev.upload(storage_->buffer, 0, data.data(), data.size_bytes());
        return;
    }
    std::vector<uint16_t> half(data.size());
    const bool bf16 = dtype_ == DType::bf16;
    for (size_t i = 0; i < data.size(); ++i) half[i] = bf16 ? cpu::float_to_bf16(data[i]) : cpu::float_to_half(data[i]);
    dev.upload(storage_->buffer, 0, half.data(), half.size() * 2);
}

std::vector<float> Tensor::download() const {
    vk::Device& dev = storage_->runtime->device();
    std::vector<float> out(static_cast<size_t>(numel_));
    if (dtype_ == DType::f32) {
        dev.download(storage_->buffer, 0, out.data(), out.size() * 4);
        return out;
    }
    std::vector<uint16_t> half(out.size());
    dev.download(storage_->buffer, 0, half.data(), half.size() * 2);
    const bool bf16 = dtype_ == DType::bf16;
    for (size_t i = 0; i < out.size(); ++i) out[i] = bf16 ? cpu::bf16_to_float(half[i]) : cpu::half_to_float(half[i]);
    return out;
}

void Tensor::fill_zero() { storage_->runtime->device().fill_zero(storage_->buffer); }

const std::vector<int64_t>& Tensor::shape() const { return shape_; }
DType Tensor::dtype() const { return dtype_; }
int64_t Tensor::numel() const { return numel_; }
uint64_t Tensor::bytes() const { return uint64_t(numel_) * dtype_size(dtype_); }
Context& Tensor::context() const { return *ctx_; }

}  // namespace vkattn

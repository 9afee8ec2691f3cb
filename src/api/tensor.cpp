#include "api/context_impl.hpp"
#include "api/format.hpp"
#include "cpu/half.hpp"

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

Tensor::Tensor(Context& ctx, std::vector<int64_t> shape, DType dtype) : impl_(std::make_unique<Impl>()) {
    if (dtype == DType::f16 && !ctx.device().storage_16bit) {
        throw Error("f16 tensors need 16-bit storage buffers (storageBuffer16BitAccess), which " + ctx.device().name +
                    " does not have; use f32");
    }
    impl_->ctx = &ctx;
    impl_->numel = count(shape);
    impl_->shape = std::move(shape);
    impl_->dtype = dtype;
    impl_->buffer = vk::Buffer(ctx.impl().device, uint64_t(impl_->numel) * dtype_size(dtype));
}

Tensor::Tensor(Context& ctx, std::vector<int64_t> shape, std::span<const float> data, DType dtype)
    : Tensor(ctx, std::move(shape), dtype) {
    upload(data);
}

Tensor::~Tensor() = default;
Tensor::Tensor(Tensor&&) noexcept = default;
Tensor& Tensor::operator=(Tensor&&) noexcept = default;

void Tensor::upload(std::span<const float> data) {
    if (int64_t(data.size()) != impl_->numel) {
        throw Error("upload of " + std::to_string(data.size()) + " values into a tensor of shape " +
                    dims_str(impl_->shape) + " (" + std::to_string(impl_->numel) + " elements)");
    }
    vk::Device& dev = impl_->ctx->impl().device;
    if (impl_->dtype == DType::f32) {
        dev.upload(impl_->buffer, 0, data.data(), data.size_bytes());
        return;
    }
    std::vector<uint16_t> half(data.size());
    const bool bf16 = impl_->dtype == DType::bf16;
    for (size_t i = 0; i < data.size(); ++i) half[i] = bf16 ? cpu::float_to_bf16(data[i]) : cpu::float_to_half(data[i]);
    dev.upload(impl_->buffer, 0, half.data(), half.size() * 2);
}

std::vector<float> Tensor::download() const {
    vk::Device& dev = impl_->ctx->impl().device;
    std::vector<float> out(size_t(impl_->numel));
    if (impl_->dtype == DType::f32) {
        dev.download(impl_->buffer, 0, out.data(), out.size() * 4);
        return out;
    }
    std::vector<uint16_t> half(out.size());
    dev.download(impl_->buffer, 0, half.data(), half.size() * 2);
    const bool bf16 = impl_->dtype == DType::bf16;
    for (size_t i = 0; i < out.size(); ++i) out[i] = bf16 ? cpu::bf16_to_float(half[i]) : cpu::half_to_float(half[i]);
    return out;
}

void Tensor::fill_zero() { impl_->ctx->impl().device.fill_zero(impl_->buffer); }

const std::vector<int64_t>& Tensor::shape() const { return impl_->shape; }
DType Tensor::dtype() const { return impl_->dtype; }
int64_t Tensor::numel() const { return impl_->numel; }
uint64_t Tensor::bytes() const { return uint64_t(impl_->numel) * dtype_size(impl_->dtype); }
Context& Tensor::context() const { return *impl_->ctx; }

}  // namespace vkattn

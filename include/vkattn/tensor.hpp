// Device tensors: a shape, a storage type and a buffer on the Context's device. Copies are explicit.
#pragma once

#include <vkattn/dtype.hpp>
#include <vkattn/export.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace vkattn {

class Context;
class Tensor;

namespace ops {
struct DeviceBuffer;
struct Internal;
}  // namespace ops

// A strided window onto a tensor's elements: offset and strides in elements, row-major by default.
// Attention takes views so that Q, K and V can be slices of one fused QKV buffer.
struct VKATTN_API TensorView {
    const Tensor* tensor = nullptr;
    int64_t offset = 0;
    std::vector<int64_t> shape;
    std::vector<int64_t> strides;

    TensorView() = default;
    TensorView(const Tensor& t);  // NOLINT: a whole tensor is a view of itself
    TensorView(const Tensor& t, std::vector<int64_t> shape, std::vector<int64_t> strides, int64_t offset = 0);
};

class VKATTN_API Tensor {
public:
    // Uninitialised device storage for the shape; every dimension >= 0.
    Tensor(Context& ctx, std::vector<int64_t> shape, DType dtype = DType::f32);
    // Device storage filled from host floats (converted to dtype); data.size() must equal the element count.
    Tensor(Context& ctx, std::vector<int64_t> shape, std::span<const float> data, DType dtype = DType::f32);
    ~Tensor();
    Tensor(Tensor&&) noexcept;
    Tensor& operator=(Tensor&&) noexcept;
    Tensor(const Tensor&) = delete;
    Tensor& operator=(const Tensor&) = delete;

    void upload(std::span<const float> data);
    std::vector<float> download() const;
    void fill_zero();

    const std::vector<int64_t>& shape() const;
    DType dtype() const;
    int64_t numel() const;
    uint64_t bytes() const;
    // The Context the tensor was made in, valid only while that Context lives. The tensor itself keeps the
    // device alive: after its Context is gone it can still be read, written and destroyed.
    Context& context() const;

private:
    friend struct ops::Internal;  // vkattn's own layers reach the buffer through src/ops/runtime.hpp
    Context* ctx_ = nullptr;
    std::vector<int64_t> shape_;
    DType dtype_ = DType::f32;
    int64_t numel_ = 0;
    std::unique_ptr<ops::DeviceBuffer> storage_;  // holds the device core alive
};

}  // namespace vkattn

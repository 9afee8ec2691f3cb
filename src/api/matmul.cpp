#include "ops/runtime.hpp"
#include "api/format.hpp"
#include "ops/matmul.hpp"

#include <vkattn/error.hpp>
#include <vkattn/matmul.hpp>

#include <string>

namespace vkattn {
void matmul(Context& ctx, const Tensor& x, const Tensor& w, Tensor& y, const Tensor* bias) {
    if (x.shape().size() != 2 || w.shape().size() != 2 || y.shape().size() != 2) {
        throw Error("matmul takes 2-D tensors: x " + dims_str(x.shape()) + ", w " + dims_str(w.shape()) + ", y " + dims_str(y.shape()));
    }
    const int64_t M = x.shape()[0], K = x.shape()[1], N = w.shape()[1];
    if (w.shape()[0] != K) {
        throw Error("matmul: x is " + dims_str(x.shape()) + " so w must have " + std::to_string(K) + " rows, got " +
                    dims_str(w.shape()));
    }
    if (y.shape() != std::vector<int64_t>{M, N}) {
        throw Error("matmul: y must be [" + std::to_string(M) + ", " + std::to_string(N) + "], got " + dims_str(y.shape()));
    }
    if (x.dtype() != DType::f32 || y.dtype() != DType::f32) throw Error("matmul: x and y must be f32");
    if (bias != nullptr && (bias->shape() != std::vector<int64_t>{N} || bias->dtype() != DType::f32)) {
        throw Error("matmul: bias must be f32 [" + std::to_string(N) + "], got " + dims_str(bias->shape()));
    }
    for (int64_t d : {M, N, K}) {
        if (d < 1 || d > int64_t(UINT32_MAX)) throw Error("matmul: dimension " + std::to_string(d) + " out of range");
    }
    ops::MatmulEpilogue ep;
    if (bias != nullptr) ep.bias = &ops::buffer(*bias);
    ops::runtime(ctx).run([&](ops::Encoder& enc) {
        ops::record_matmul(enc, ops::matrix(ops::buffer(x), DType::f32, uint32_t(M), uint32_t(K)),
                           ops::matrix(ops::buffer(w), w.dtype(), uint32_t(K), uint32_t(N)), false,
                           ops::matrix(ops::buffer(y), DType::f32, uint32_t(M), uint32_t(N)), ep);
    });
}

}  // namespace vkattn

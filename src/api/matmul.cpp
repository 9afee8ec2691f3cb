#include "ops/runtime.hpp"
#include "api/format.hpp"
#include "ops/matmul.hpp"

#include <vkattn/error.hpp>
#include <vkattn/matmul.hpp>

#include <string>

namespace vkattn {
namespace {

// y = x · w (w [K, N]) or x · wᵀ (w [N, K]), each shape checked and named in the message.
void run_matmul(Context& ctx, const Tensor& x, const Tensor& w, Tensor& y, const Tensor* bias, bool transposed) {
    const char* what = transposed ? "matmul_nt" : "matmul";
    if (x.shape().size() != 2 || w.shape().size() != 2 || y.shape().size() != 2) {
        throw Error(std::string(what) + " takes 2-D tensors: x " + dims_str(x.shape()) + ", w " +
                    dims_str(w.shape()) + ", y " + dims_str(y.shape()));
    }
    const int64_t M = x.shape()[0], K = x.shape()[1], N = w.shape()[transposed ? 0 : 1];
    if (w.shape()[transposed ? 1 : 0] != K) {
        throw Error(std::string(what) + ": x is " + dims_str(x.shape()) + " so w must have " + std::to_string(K) +
                    (transposed ? " columns, got " : " rows, got ") + dims_str(w.shape()));
    }
    if (y.shape() != std::vector<int64_t>{M, N}) {
        throw Error(std::string(what) + ": y must be [" + std::to_string(M) + ", " + std::to_string(N) + "], got " +
                    dims_str(y.shape()));
    }
    if (x.dtype() != DType::f32 || y.dtype() != DType::f32) throw Error(std::string(what) + ": x and y must be f32");
    if (bias != nullptr && (bias->shape() != std::vector<int64_t>{N} || bias->dtype() != DType::f32)) {
        throw Error(std::string(what) + ": bias must be f32 [" + std::to_string(N) + "], got " +
                    dims_str(bias->shape()));
    }
    for (int64_t d : {M, N, K}) {
        if (d < 1 || d > int64_t(UINT32_MAX)) {
            throw Error(std::string(what) + ": dimension " + std::to_string(d) + " out of range");
        }
    }
    ops::MatmulEpilogue ep;
    if (bias != nullptr) ep.bias = &ops::buffer(*bias);
    const uint32_t rows = uint32_t(transposed ? N : K), cols = uint32_t(transposed ? K : N);
    ops::runtime(ctx).run([&](ops::Encoder& enc) {
        ops::record_matmul(enc, ops::matrix(ops::buffer(x), DType::f32, uint32_t(M), uint32_t(K)),
                           ops::matrix(ops::buffer(w), w.dtype(), rows, cols), transposed,
                           ops::matrix(ops::buffer(y), DType::f32, uint32_t(M), uint32_t(N)), ep);
    });
}

}  // namespace

void matmul(Context& ctx, const Tensor& x, const Tensor& w, Tensor& y, const Tensor* bias) {
    run_matmul(ctx, x, w, y, bias, false);
}

void matmul_nt(Context& ctx, const Tensor& x, const Tensor& w, Tensor& y, const Tensor* bias) {
    run_matmul(ctx, x, w, y, bias, true);
}

}  // namespace vkattn

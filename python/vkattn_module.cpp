// The Python module `vkattn`: attention, its three stages and the CPU reference on numpy float32 / float16 arrays,
// the Vulkan devices and contexts, and language models (vkattn.Model: forward, tokenize, generate). Errors are
// vkattn.Error (a ValueError) with the C++ library's one-line message; a failed Vulkan call is vkattn.VulkanError,
// also a RuntimeError.
//
// Arrays: Q [B, H, Lq, D] or [H, Lq, D]; K, V [B, Hkv, Lk, D] or [Hkv, Lk, D]; results keep Q's rank (the stages
// keep their first argument's). Non-contiguous arrays are copied; float64 and integer arrays are refused rather
// than converted, so that no precision or time is lost silently.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vkattn/attention.hpp>
#include <vkattn/context.hpp>
#include <vkattn/error.hpp>
#include <vkattn/model/generate.hpp>
#include <vkattn/model/language_model.hpp>
#include <vkattn/reference.hpp>
#include <vkattn/tensor.hpp>

#include <atomic>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace py = pybind11;
using vkattn::DType;
using vkattn::Error;

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Contexts. A Python Context owns a vkattn::Context until close(); calls on it are serialised by its mutex and run
// with the GIL released. The default context is created on first use and destroyed at interpreter exit.

struct ContextBox {
    std::unique_ptr<vkattn::Context> ctx;
    std::mutex mutex;
    int models = 0;  // vkattn.Model objects running on this context (changed with the GIL held)

    vkattn::Context& get() {
        if (!ctx) throw Error("this vkattn.Context is closed");
        return *ctx;
    }
};
using ContextPtr = std::shared_ptr<ContextBox>;

ContextPtr& default_slot() {
    static ContextPtr slot;
    return slot;
}

// device=: an index or a name substring, as ContextOptions::device takes it ("" for None: the environment's choice).
std::string device_choice(const std::optional<py::object>& device) {
    if (!device || device->is_none()) return "";
    if (py::isinstance<py::bool_>(*device)) throw Error("device must be an index or a name substring, got a bool");
    if (py::isinstance<py::int_>(*device)) {
        const long long index = device->cast<long long>();
        if (index < 0) throw Error("device index must be >= 0, got " + std::to_string(index));
        return std::to_string(index);
    }
    if (py::isinstance<py::str>(*device)) return device->cast<std::string>();
    throw Error("device must be an index (int) or a name substring (str), got " +
                std::string(py::str(py::type::of(*device).attr("__name__"))));
}

ContextPtr make_context(std::optional<py::object> device, std::optional<bool> validation, bool profile) {
    vkattn::ContextOptions options;
    options.device = device_choice(device);
    options.validation = validation;
    options.profile = profile;
    auto c = std::make_shared<ContextBox>();
    py::gil_scoped_release release;
    c->ctx = std::make_unique<vkattn::Context>(options);
    return c;
}

ContextPtr default_context() {
    if (!default_slot() || !default_slot()->ctx) {
        // The GIL is released while the device opens: another thread may have set the slot meanwhile.
        ContextPtr made = make_context(std::nullopt, std::nullopt, false);
        if (!default_slot() || !default_slot()->ctx) default_slot() = std::move(made);
    }
    return default_slot();
}

// Destroys the default context's device (a Python reference to it sees it closed) and forgets it.
// A context that models still run on is only forgotten here: the last of them destroys it.
void close_default() {
    ContextPtr slot = std::exchange(default_slot(), nullptr);
    if (!slot || slot->models > 0) return;
    py::gil_scoped_release release;
    std::lock_guard lock(slot->mutex);
    slot->ctx.reset();
}

// Context.close(): refused while a vkattn.Model runs on the context (the model's buffers live on its device).
void close_context(ContextBox& c) {
    if (c.models > 0) {
        throw Error("this vkattn.Context is used by " + std::to_string(c.models) + " vkattn.Model" +
                    (c.models == 1 ? "" : "s") + "; close the model" + (c.models == 1 ? "" : "s") + " first");
    }
    py::gil_scoped_release release;
    std::lock_guard lock(c.mutex);
    c.ctx.reset();
}

ContextPtr resolve(const std::optional<ContextPtr>& context) {
    if (context && *context) return *context;
    return default_context();
}

py::dict device_dict(const vkattn::DeviceInfo& d) {
    py::dict r;
    r["index"] = d.index;
    r["name"] = d.name;
    r["type"] = d.type;
    r["vendor"] = d.vendor;
    r["vendor_id"] = d.vendor_id;
    r["device_id"] = d.device_id;
    r["driver"] = d.driver;
    r["api_version"] = d.api_version;
    r["subgroup_size"] = d.subgroup_size;
    r["max_shared_memory"] = d.max_shared_memory;
    r["max_workgroup_size"] = py::make_tuple(d.max_workgroup_size[0], d.max_workgroup_size[1], d.max_workgroup_size[2]);
    r["max_workgroup_invocations"] = d.max_workgroup_invocations;
    r["max_workgroup_count"] =
        py::make_tuple(d.max_workgroup_count[0], d.max_workgroup_count[1], d.max_workgroup_count[2]);
    r["max_storage_buffer_range"] = d.max_storage_buffer_range;
    r["min_storage_buffer_offset_alignment"] = d.min_storage_buffer_offset_alignment;
    r["max_memory_allocation"] = d.max_memory_allocation;
    r["device_heap_bytes"] = d.device_heap_bytes;
    r["unified_memory"] = d.unified_memory;
    r["fp16_arithmetic"] = d.fp16_arithmetic;
    r["storage_16bit"] = d.storage_16bit;
    r["shader_int64"] = d.shader_int64;
    r["cooperative_matrix"] = d.cooperative_matrix;
    r["matmul_f16_path"] = d.matmul_f16_path;
    r["coopmat_shape"] = py::make_tuple(d.coopmat_shape[0], d.coopmat_shape[1], d.coopmat_shape[2]);
    r["coopmat_note"] = d.coopmat_note;
    r["subgroup_arithmetic"] = d.subgroup_arithmetic;
    r["timestamps"] = d.timestamps;
    r["timestamp_period_ns"] = d.timestamp_period_ns;
    r["portability_subset"] = d.portability_subset;
    r["usable"] = d.usable;
    r["unusable_reason"] = d.unusable_reason;
    return r;
}

// ---------------------------------------------------------------------------------------------------------------
// numpy arrays in and out.

std::string shape_str(const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}

std::string type_name(const py::handle& obj) { return py::str(py::type::of(obj).attr("__name__")); }

// A host array as float32 in C order (a copy when the input is float16 or not contiguous), with its storage type.
struct HostArray {
    py::array_t<float> data;  // keeps the floats alive while the GIL is released
    std::vector<int64_t> shape;
    DType dtype = DType::f32;

    std::span<const float> span() const { return {data.data(), size_t(data.size())}; }
    int64_t dim(size_t i) const { return shape[i]; }
};

// "float64", "int32", "bool": numpy's name of a dtype.
std::string numpy_name(const py::dtype& dt) { return py::str(dt.attr("name")).cast<std::string>(); }

py::module_ numpy() { return py::module_::import("numpy"); }

// Q, K, V, scores, probs: float32 or float16 numpy arrays, nothing else.
HostArray float_array(const py::handle& obj, const char* name, bool f32_only = false) {
    if (!py::isinstance<py::array>(obj)) {
        throw Error(std::string(name) + " must be a numpy array, got " + type_name(obj));
    }
    const auto arr = py::reinterpret_borrow<py::array>(obj);
    const py::dtype dt = arr.dtype();
    HostArray h;
    if (dt.kind() == 'f' && dt.itemsize() == 4) {
        h.dtype = DType::f32;
    } else if (!f32_only && dt.kind() == 'f' && dt.itemsize() == 2) {
        h.dtype = DType::f16;
    } else {
        throw Error(std::string(name) + " must be " + (f32_only ? "float32" : "float32 or float16") + ", got " +
                    numpy_name(dt) + " (convert with .astype(numpy.float32))");
    }
    h.data = numpy().attr("ascontiguousarray")(arr, "float32").cast<py::array_t<float>>();
    h.shape.assign(arr.shape(), arr.shape() + arr.ndim());
    return h;
}

// The additive mask [Lq, Lk]: a float array added to the scaled scores, or a bool array where True means "may
// attend" (PyTorch's boolean attn_mask), turned into 0 / -inf.
HostArray additive_mask(const py::handle& obj) {
    if (!py::isinstance<py::array>(obj)) throw Error("mask must be a numpy array, got " + type_name(obj));
    auto arr = py::reinterpret_borrow<py::array>(obj);
    const char kind = arr.dtype().kind();
    py::object converted;
    if (kind == 'b') {
        converted = numpy().attr("where")(arr, 0.0f, -INFINITY);
    } else if (kind == 'f') {
        converted = arr;
    } else {
        throw Error("mask must be a float array (added to the scores; -inf hides a key) or a bool array (True: may "
                    "attend), got " + numpy_name(arr.dtype()));
    }
    HostArray h;
    h.data = numpy().attr("ascontiguousarray")(converted, "float32").cast<py::array_t<float>>();
    h.shape.assign(arr.shape(), arr.shape() + arr.ndim());
    return h;
}

// The key-padding mask [B, Lk] ([Lk] is [1, Lk]): bool or numbers, True / nonzero marks a padded key (as in
// PyTorch's key_padding_mask), stored as 1 / 0.
HostArray key_padding_mask(const py::handle& obj) {
    if (!py::isinstance<py::array>(obj)) throw Error("key_padding must be a numpy array, got " + type_name(obj));
    auto arr = py::reinterpret_borrow<py::array>(obj);
    const char kind = arr.dtype().kind();
    if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f') {
        throw Error("key_padding must be a bool or numeric array (True / nonzero: padded), got " +
                    numpy_name(arr.dtype()));
    }
    py::object flags = arr.attr("__ne__")(0);
    HostArray h;
    h.data = numpy().attr("ascontiguousarray")(flags, "float32").cast<py::array_t<float>>();
    h.shape.assign(arr.shape(), arr.shape() + arr.ndim());
    if (h.shape.size() == 1) h.shape.insert(h.shape.begin(), 1);
    return h;
}

// A float32 numpy array of the shape holding the values, as float16 when asked.
py::array to_numpy(const std::vector<float>& values, const std::vector<int64_t>& shape, DType dtype) {
    std::vector<py::ssize_t> dims(shape.begin(), shape.end());
    py::array_t<float> out(dims);
    if (!values.empty()) std::memcpy(out.mutable_data(), values.data(), values.size() * sizeof(float));
    if (dtype == DType::f16) return out.attr("astype")("float16").cast<py::array>();
    return out;
}

// [H, L, X] -> [1, H, L, X]; [B, H, L, X] unchanged; other ranks are left for the library to refuse.
std::vector<int64_t> as_4d(const std::vector<int64_t>& s) {
    if (s.size() == 3) return {1, s[0], s[1], s[2]};
    return s;
}

std::vector<int64_t> with_last(std::vector<int64_t> s, int64_t last) {
    if (!s.empty()) s.back() = last;
    return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Arguments shared by attention, its stages and the reference.

struct Options {
    float scale = 0;  // 0: 1 / sqrt(D)
    bool causal = false;
    int window = 0;
    std::optional<HostArray> mask;
    std::optional<HostArray> key_padding;
};

float checked_scale(const std::optional<double>& scale) {
    if (!scale) return 0;
    if (!(*scale > 0)) {
        throw Error("scale must be > 0 (None: 1 / sqrt(D)), got " + std::string(py::str(py::float_(*scale))));
    }
    if (!std::isfinite(float(*scale))) throw Error("attention scale must be finite");
    return float(*scale);
}

int checked_window(const std::optional<long long>& window) {
    if (!window) return 0;
    if (*window < 0) throw Error("window must be >= 0 (0 disables it), got " + std::to_string(*window));
    if (*window > INT32_MAX) throw Error("window " + std::to_string(*window) + " is too large");
    return int(*window);
}

Options options(const std::optional<double>& scale, bool causal, const std::optional<long long>& window,
                const py::object& mask, const py::object& key_padding) {
    Options o;
    o.scale = checked_scale(scale);
    o.causal = causal;
    o.window = checked_window(window);
    if (!mask.is_none()) o.mask = additive_mask(mask);
    if (!key_padding.is_none()) o.key_padding = key_padding_mask(key_padding);
    return o;
}

vkattn::AttentionImpl parse_impl(const std::string& impl) {
    if (impl == "fused") return vkattn::AttentionImpl::fused;
    if (impl == "naive") return vkattn::AttentionImpl::naive;
    throw Error("impl must be fused or naive, got '" + impl + "'");
}

void check_same_dtype(const HostArray& a, const char* an, const HostArray& b, const char* bn) {
    if (a.dtype != b.dtype) {
        throw Error(std::string(an) + " is " + std::string(vkattn::dtype_name(a.dtype)) + " but " + bn + " is " +
                    std::string(vkattn::dtype_name(b.dtype)) + "; Q, K, V and the output share one dtype");
    }
}

// Device tensors for one call: the masks as the library wants them, destroyed before the call returns.
struct DeviceMasks {
    std::optional<vkattn::Tensor> mask, key_padding;

    DeviceMasks(vkattn::Context& ctx, const Options& o) {
        if (o.mask) mask.emplace(ctx, o.mask->shape, o.mask->span());
        if (o.key_padding) key_padding.emplace(ctx, o.key_padding->shape, o.key_padding->span());
    }
    vkattn::AttentionParams params(const Options& o) const {
        vkattn::AttentionParams p;
        p.scale = o.scale;
        p.causal = o.causal;
        p.window = o.window;
        p.additive_mask = mask ? &*mask : nullptr;
        p.key_padding_mask = key_padding ? &*key_padding : nullptr;
        return p;
    }
};

// Q, K, V: rank 3 or 4, no empty dimension (the library's words, without the strides of our own copies).
void check_view(const HostArray& a, const char* name) {
    if (a.shape.size() != 3 && a.shape.size() != 4) {
        throw Error(std::string(name) + " must be [B, heads, L, D] or [heads, L, D], got shape " + shape_str(a.shape));
    }
    for (int64_t x : a.shape) {
        if (x < 1) throw Error(std::string(name) + " has an empty dimension: shape " + shape_str(a.shape));
        if (x > INT32_MAX) throw Error("attention dimension " + std::to_string(x) + " is too large");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The GPU entry points.

py::array attention(const py::object& q_obj, const py::object& k_obj, const py::object& v_obj, bool causal,
                    std::optional<double> scale, std::optional<long long> window, const py::object& mask,
                    const py::object& key_padding, const std::string& impl, std::optional<ContextPtr> context) {
    const HostArray q = float_array(q_obj, "Q"), k = float_array(k_obj, "K"), v = float_array(v_obj, "V");
    check_same_dtype(q, "Q", k, "K");
    check_same_dtype(q, "Q", v, "V");
    check_view(q, "Q");
    check_view(k, "K");
    check_view(v, "V");
    const Options o = options(scale, causal, window, mask, key_padding);
    const vkattn::AttentionImpl which = parse_impl(impl);
    const ContextPtr c = resolve(context);
    std::vector<float> result;
    {
        py::gil_scoped_release release;
        std::lock_guard lock(c->mutex);
        vkattn::Context& ctx = c->get();
        vkattn::Tensor tq(ctx, q.shape, q.span(), q.dtype), tk(ctx, k.shape, k.span(), k.dtype),
            tv(ctx, v.shape, v.span(), v.dtype), out(ctx, q.shape, q.dtype);
        const DeviceMasks masks(ctx, o);
        vkattn::AttentionParams p = masks.params(o);
        p.impl = which;
        vkattn::attention(ctx, tq, tk, tv, out, p);
        result = out.download();
    }
    return to_numpy(result, q.shape, q.dtype);
}

py::array attention_scores(const py::object& q_obj, const py::object& k_obj, std::optional<double> scale,
                           std::optional<ContextPtr> context) {
    const HostArray q = float_array(q_obj, "Q"), k = float_array(k_obj, "K");
    check_same_dtype(q, "Q", k, "K");
    vkattn::AttentionParams p;
    p.scale = checked_scale(scale);
    check_view(q, "Q");
    check_view(k, "K");
    const std::vector<int64_t> q4 = as_4d(q.shape), k4 = as_4d(k.shape);
    const std::vector<int64_t> shape4 = {q4[0], q4[1], q4[2], k4[2]};
    const ContextPtr c = resolve(context);
    std::vector<float> result;
    {
        py::gil_scoped_release release;
        std::lock_guard lock(c->mutex);
        vkattn::Context& ctx = c->get();
        vkattn::Tensor tq(ctx, q.shape, q.span(), q.dtype), tk(ctx, k.shape, k.span(), k.dtype);
        vkattn::Tensor scores(ctx, shape4);
        vkattn::attention_scores(ctx, tq, tk, scores, p);
        result = scores.download();
    }
    return to_numpy(result, with_last(q.shape, k4[2]), DType::f32);
}

py::array attention_softmax(const py::object& scores_obj, bool causal, std::optional<long long> window,
                            const py::object& mask, const py::object& key_padding, std::optional<ContextPtr> context) {
    const HostArray s = float_array(scores_obj, "scores", true);
    if (s.shape.size() != 3 && s.shape.size() != 4) {
        throw Error("scores must be [B, H, Lq, Lk] or [H, Lq, Lk], got " + shape_str(s.shape));
    }
    const Options o = options(std::nullopt, causal, window, mask, key_padding);
    const ContextPtr c = resolve(context);
    std::vector<float> result;
    {
        py::gil_scoped_release release;
        std::lock_guard lock(c->mutex);
        vkattn::Context& ctx = c->get();
        vkattn::Tensor scores(ctx, as_4d(s.shape), s.span());
        const DeviceMasks masks(ctx, o);
        vkattn::attention_softmax(ctx, scores, scores, masks.params(o));
        result = scores.download();
    }
    return to_numpy(result, s.shape, DType::f32);
}

py::array attention_values(const py::object& probs_obj, const py::object& v_obj, std::optional<ContextPtr> context) {
    const HostArray p = float_array(probs_obj, "probs", true), v = float_array(v_obj, "V");
    if (p.shape.size() != 3 && p.shape.size() != 4) {
        throw Error("probs must be [B, H, Lq, Lk] or [H, Lq, Lk], got " + shape_str(p.shape));
    }
    check_view(v, "V");
    const std::vector<int64_t> out_shape = with_last(p.shape, v.shape.back());
    const ContextPtr c = resolve(context);
    std::vector<float> result;
    {
        py::gil_scoped_release release;
        std::lock_guard lock(c->mutex);
        vkattn::Context& ctx = c->get();
        vkattn::Tensor probs(ctx, as_4d(p.shape), p.span()), tv(ctx, v.shape, v.span(), v.dtype);
        vkattn::Tensor out(ctx, out_shape, v.dtype);
        vkattn::attention_values(ctx, probs, tv, out);
        result = out.download();
    }
    return to_numpy(result, out_shape, v.dtype);
}

// ---------------------------------------------------------------------------------------------------------------
// The CPU reference: the same checks as the GPU path (in its words), except that any D is allowed.

py::array reference_attention(const py::object& q_obj, const py::object& k_obj, const py::object& v_obj, bool causal,
                              std::optional<double> scale, std::optional<long long> window, const py::object& mask,
                              const py::object& key_padding) {
    const HostArray q = float_array(q_obj, "Q"), k = float_array(k_obj, "K"), v = float_array(v_obj, "V");
    check_same_dtype(q, "Q", k, "K");
    check_same_dtype(q, "Q", v, "V");
    check_view(q, "Q");
    check_view(k, "K");
    check_view(v, "V");
    const std::vector<int64_t> q4 = as_4d(q.shape), k4 = as_4d(k.shape), v4 = as_4d(v.shape);
    // The library's one validation, shared with the GPU path (same checks, same words).
    vkattn::check_attention_shapes(q.shape, k.shape, v.shape);
    const Options o = options(scale, causal, window, mask, key_padding);
    const std::vector<int64_t> mask_want = {q4[2], k4[2]}, kp_want = {q4[0], k4[2]};
    if (o.mask && o.mask->shape != mask_want) {
        throw Error("the additive mask must be f32 [Lq, Lk] = " + shape_str(mask_want) + ", got f32 " +
                    shape_str(o.mask->shape));
    }
    if (o.key_padding && o.key_padding->shape != kp_want) {
        throw Error("the key-padding mask must be f32 [B, Lk] = " + shape_str(kp_want) + ", got f32 " +
                    shape_str(o.key_padding->shape));
    }
    const vkattn::reference::AttentionShape shape{int(q4[0]), int(q4[1]), int(k4[1]), int(q4[2]), int(k4[2]),
                                                  int(q4[3])};
    vkattn::reference::AttentionOptions ro;
    ro.scale = o.scale;
    ro.causal = o.causal;
    ro.window = o.window;
    if (o.mask) ro.additive_mask = o.mask->span();
    if (o.key_padding) ro.key_padding_mask = o.key_padding->span();
    std::vector<float> result;
    {
        py::gil_scoped_release release;
        result = vkattn::reference::attention(shape, q.span(), k.span(), v.span(), ro);
    }
    return to_numpy(result, q.shape, DType::f32);
}

py::array reference_matmul(const py::object& x_obj, const py::object& w_obj, const py::object& bias_obj) {
    const HostArray x = float_array(x_obj, "x", true), w = float_array(w_obj, "w", true);
    if (x.shape.size() != 2 || w.shape.size() != 2 || x.shape[1] != w.shape[0]) {
        throw Error("matmul needs x [M, K] and w [K, N], got x " + shape_str(x.shape) + " and w " + shape_str(w.shape));
    }
    for (int64_t d : {x.shape[0], x.shape[1], w.shape[1]}) {
        if (d > INT32_MAX) throw Error("matmul dimension " + std::to_string(d) + " is too large");
    }
    std::optional<HostArray> bias;
    if (!bias_obj.is_none()) {
        bias = float_array(bias_obj, "bias", true);
        if (bias->shape != std::vector<int64_t>{w.shape[1]}) {
            throw Error("bias must be [N] = [" + std::to_string(w.shape[1]) + "], got " + shape_str(bias->shape));
        }
    }
    const int M = int(x.shape[0]), K = int(x.shape[1]), N = int(w.shape[1]);
    std::vector<float> y;
    {
        py::gil_scoped_release release;
        y = vkattn::reference::matmul(M, K, N, x.span(), w.span(),
                                      bias ? bias->span() : std::span<const float>{});
    }
    return to_numpy(y, {M, N}, DType::f32);
}

// ---------------------------------------------------------------------------------------------------------------
// Language models. A Python Model owns a vkattn::model::LanguageModel until close(); calls on it are serialised by
// its mutex and run with the GIL released. With context=, it runs on that vkattn.Context, which cannot be closed
// while the model lives; otherwise it owns a Context of its own, made from device=.

namespace mdl = vkattn::model;

struct ModelBox {
    std::unique_ptr<mdl::LanguageModel> lm;
    ContextPtr shared;  // context=: kept open while the model lives
    std::string backend, dtype, impl;
    // What does not change while the model is open, read with the GIL held and without the lock.
    mdl::ModelInfo info;
    mdl::SpecialTokens special;
    std::string description;
    std::atomic<bool> closed{false};
    std::mutex mutex;
    std::atomic<std::thread::id> generating{};  // the thread inside generate(): its on_token may not call back in

    ModelBox() = default;
    ModelBox(const ModelBox&) = delete;
    ModelBox& operator=(const ModelBox&) = delete;
    ~ModelBox() { release(); }

    // Frees the model (with the GIL held: it is the last reference, or close() holds the lock).
    void release() {
        closed = true;
        lm.reset();
        if (shared) --shared->models;
        shared.reset();
    }
};

// Runs f(model) holding the model's lock, with the GIL released.
template <class F>
auto with_model(ModelBox& m, const char* what, F&& f) {
    if (m.generating.load() == std::this_thread::get_id()) {
        throw Error(std::string("Model.") + what + " was called from generate's on_token callback; the model is busy "
                    "generating (collect the tokens and call it afterwards)");
    }
    py::gil_scoped_release release;
    std::lock_guard lock(m.mutex);
    if (!m.lm) throw Error("this vkattn.Model is closed");
    return f(*m.lm);
}

// Text from the library (UTF-8, or bytes a token left invalid) as a Python str; invalid bytes become U+FFFD.
py::str text_to_python(std::string_view text) {
    PyObject* s = PyUnicode_DecodeUTF8(text.data(), py::ssize_t(text.size()), "replace");
    if (s == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(s);
}

// Token ids from a Python int or a sequence of ints (a list, a tuple, a numpy integer array); bool, float and
// str entries are refused, an id beyond the C int range gets the library's out-of-range message.
std::vector<int> token_ids(const py::handle& obj, const char* name, int vocab) {
    const auto one = [&](const py::handle& item, size_t i) {
        if (py::isinstance<py::bool_>(item) || PyBool_Check(item.ptr()) ||
            (py::hasattr(item, "dtype") && py::str(item.attr("dtype").attr("kind")).cast<std::string>() == "b")) {
            throw Error(std::string(name) + " holds token ids (ints), but entry " + std::to_string(i) + " is a bool");
        }
        PyObject* index = PyNumber_Index(item.ptr());
        if (index == nullptr) {
            PyErr_Clear();
            throw Error(std::string(name) + " holds token ids (ints), but entry " + std::to_string(i) + " is a " +
                        type_name(item));
        }
        int overflow = 0;
        const long long v = PyLong_AsLongLongAndOverflow(index, &overflow);
        std::string shown = py::str(index);
        Py_DECREF(index);
        if (overflow != 0 || v < INT_MIN || v > INT_MAX) {
            throw Error("token " + shown + " at index " + std::to_string(i) +
                        " is out of range: the vocabulary has V = " + std::to_string(vocab) + " tokens");
        }
        return int(v);
    };
    if (py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj)) {
        throw Error(std::string(name) + " must be token ids (ints), got a " + type_name(obj) +
                    "; turn text into ids with Model.tokenize");
    }
    std::vector<int> ids;
    if (PyIndex_Check(obj.ptr()) && !py::isinstance<py::sequence>(obj)) {
        ids.push_back(one(obj, 0));
        return ids;
    }
    if (!py::isinstance<py::iterable>(obj)) {
        throw Error(std::string(name) + " must be a token id or a sequence of token ids, got " + type_name(obj));
    }
    if (py::isinstance<py::array>(obj) && py::reinterpret_borrow<py::array>(obj).ndim() != 1) {
        throw Error(std::string(name) + " must be one-dimensional, got an array of shape " +
                    py::str(obj.attr("shape")).cast<std::string>());
    }
    size_t i = 0;
    for (const py::handle item : obj) ids.push_back(one(item, i++));
    return ids;
}

DType parse_weights(const std::string& dtype) {
    if (dtype == "f32") return DType::f32;
    if (dtype == "f16") return DType::f16;
    if (dtype == "bf16") return DType::bf16;
    throw Error("dtype must be f32, f16 or bf16, got '" + dtype.substr(0, 40) + "'");
}

// model=: a str, or an os.PathLike such as pathlib.Path.
std::string model_spec(const py::object& model) {
    if (py::isinstance<py::str>(model)) return model.cast<std::string>();
    if (py::hasattr(model, "__fspath__")) {
        const py::object path = py::module_::import("os").attr("fspath")(model);
        if (py::isinstance<py::str>(path)) return path.cast<std::string>();
    }
    throw Error("model must be a model directory (str or os.PathLike) or 'synthetic[:...]', got " + type_name(model));
}

std::unique_ptr<ModelBox> open_model(const py::object& model, const std::string& backend, const std::string& dtype,
                                     const std::optional<std::string>& impl, std::optional<py::object> device,
                                     std::optional<ContextPtr> context) {
    const std::string spec = model_spec(model);
    const mdl::Backend which = mdl::parse_backend(backend);
    mdl::ModelOptions options;
    options.weights = parse_weights(dtype);
    options.fused_attention = parse_impl(impl.value_or("fused")) == vkattn::AttentionImpl::fused;
    const bool has_device = device && !device->is_none();
    const bool has_context = context && *context;
    if (which == mdl::Backend::cpu) {
        // As the CLI does: options that set up the GPU model are refused, not ignored, on the CPU reference.
        for (const auto& [given, name] : {std::pair{impl.has_value(), "impl"}, std::pair{has_device, "device"},
                                          std::pair{has_context, "context"}}) {
            if (given) {
                throw Error(std::string(name) + "= sets up the GPU model and cannot be used with backend='cpu': the "
                            "CPU reference runs its own attention on the host");
            }
        }
    }
    if (has_device && has_context) {
        throw Error("give device= or context=, not both: a vkattn.Context has chosen its device already");
    }
    auto box = std::make_unique<ModelBox>();
    box->backend = backend;
    box->dtype = dtype;
    box->impl = which == mdl::Backend::cpu ? "" : impl.value_or("fused");
    if (has_context) {
        box->shared = *context;
        options.context = &box->shared->get();  // raises on a closed context
        ++box->shared->models;
    } else {
        options.context_options.device = device_choice(device);
    }
    {
        py::gil_scoped_release release;
        box->lm = mdl::open_model(spec, which, options);
    }
    box->info = box->lm->info();
    box->special = box->lm->special_tokens();
    box->description = box->lm->description();
    return box;
}

void check_open(const ModelBox& m) {
    if (m.closed) throw Error("this vkattn.Model is closed");
}

py::dict info_dict(const ModelBox& m) {
    check_open(m);
    const mdl::ModelInfo& i = m.info;
    py::dict r;
    r["family"] = i.family;
    r["variant"] = i.variant;
    r["source"] = i.source;
    r["synthetic"] = i.synthetic;
    r["n_layer"] = i.n_layer;
    r["n_head"] = i.n_head;
    r["n_kv_head"] = i.n_kv_head;
    r["head_dim"] = i.head_dim;
    r["hidden"] = i.hidden;
    r["intermediate"] = i.intermediate;
    r["vocab_size"] = i.vocab_size;
    r["context_length"] = i.context_length;
    r["window"] = i.window;
    r["parameters"] = i.parameters;
    r["tokenizer"] = i.tokenizer;
    py::dict bytes;
    for (const auto& w : i.weight_bytes) bytes[py::str(std::string(vkattn::dtype_name(w.dtype)))] = w.bytes;
    r["weight_bytes"] = bytes;
    r["cache_bytes_per_token"] = i.cache_bytes_per_token;
    r["summary"] = i.summary();
    const mdl::SpecialTokens& special = m.special;
    r["bos_token_id"] = special.bos ? py::object(py::int_(*special.bos)) : py::object(py::none());
    r["eos_token_ids"] = special.eos;
    return r;
}

py::array model_forward(ModelBox& m, const py::object& tokens, bool all_logits) {
    check_open(m);
    const int V = m.info.vocab_size;
    const std::vector<int> ids = token_ids(tokens, "tokens", V);
    if (ids.empty()) throw Error("tokens is empty; forward needs at least one token");
    std::vector<float> logits = with_model(m, "forward", [&](mdl::LanguageModel& lm) {
        return lm.forward(ids, all_logits);
    });
    return to_numpy(logits, {int64_t(logits.size() / size_t(V)), V}, DType::f32);
}

const mdl::Tokenizer& model_tokenizer(const mdl::LanguageModel& lm, const std::string& what) {
    if (lm.tokenizer() == nullptr) {
        throw Error(what + " needs a tokenizer (tokenizer files in a model directory), and " + lm.info().source +
                    " has none");
    }
    return *lm.tokenizer();
}

// What generate() returns.
struct Generation {
    std::vector<int> tokens;
    std::optional<std::string> text;  // None without a tokenizer
    std::string stop_reason;
    int prompt_tokens = 0;
    int decode_steps = 0;
    double prefill_ms = 0, decode_ms = 0;
    uint64_t seed = 0;
};

Generation model_generate(ModelBox& m, const py::object& prompt, int max_tokens, float temperature, int top_k,
                          float top_p, float min_p, float repeat_penalty, int repeat_last_n,
                          std::optional<uint64_t> seed, const std::vector<std::string>& stop, bool stop_at_eos,
                          const py::object& on_token) {
    mdl::GenerateOptions g;
    if (!seed) {
        std::random_device rd;  // a fresh seed per call, returned so that the call can be repeated
        seed = (uint64_t(rd()) << 32 | rd()) & ((uint64_t(1) << 53) - 1);
    }
    g.sampling = {temperature, top_k, top_p, *seed, min_p, repeat_penalty, repeat_last_n};
    g.max_tokens = max_tokens;
    g.stop = stop;
    g.stop_at_eos = stop_at_eos;
    mdl::Sampler check(g.sampling);  // bad sampling options fail before anything runs
    const bool text_prompt = py::isinstance<py::str>(prompt);
    std::string text;
    std::vector<int> ids;
    if (text_prompt) {
        text = prompt.cast<std::string>();
    } else {
        check_open(m);
        ids = token_ids(prompt, "prompt", m.info.vocab_size);
    }
    if (!on_token.is_none() && !PyCallable_Check(on_token.ptr())) {
        throw Error("on_token must be a callable f(id, text), got " + type_name(on_token));
    }
    mdl::TokenCallback callback;
    if (!on_token.is_none()) {
        callback = [&on_token](int id, std::string_view piece) {
            py::gil_scoped_acquire gil;
            on_token(id, text_to_python(piece));
        };
    }
    mdl::GenerateResult r;
    bool has_tokenizer = false;
    with_model(m, "generate", [&](mdl::LanguageModel& lm) {
        has_tokenizer = lm.tokenizer() != nullptr;
        if (text_prompt) {
            ids = model_tokenizer(lm, "a text prompt").encode(text);
            if (ids.empty() && lm.special_tokens().bos) ids.push_back(*lm.special_tokens().bos);  // start of text
            if (ids.empty()) throw Error("the prompt is empty and the model has no beginning-of-sequence token");
        }
        m.generating = std::this_thread::get_id();
        try {
            r = mdl::generate(lm, ids, g, callback);
        } catch (...) {
            m.generating = std::thread::id();
            throw;
        }
        m.generating = std::thread::id();
        return 0;
    });
    Generation out;
    out.tokens = std::move(r.tokens);
    if (has_tokenizer) out.text = std::move(r.text);
    out.stop_reason = mdl::stop_reason_name(r.reason);
    out.prompt_tokens = r.prompt_tokens;
    out.decode_steps = r.decode_steps;
    out.prefill_ms = r.prefill_ms;
    out.decode_ms = r.decode_ms;
    out.seed = *seed;
    return out;
}

// "<vkattn.Model gpt2: 2 layers, ...; gpt2 on vulkan (llvmpipe ...), f32 weights, fused attention; position 0>";
// the position is left out while another call runs (a repr never waits).
std::string model_repr(ModelBox& m) {
    if (m.closed) return "<vkattn.Model closed>";
    std::string position;
    if (m.generating.load() != std::this_thread::get_id()) {
        std::unique_lock lock(m.mutex, std::try_to_lock);
        if (lock.owns_lock() && m.lm) position = "; position " + std::to_string(m.lm->position());
    }
    return "<vkattn.Model " + m.info.summary() + "; " + m.description + position + ">";
}

// close(): frees the model's weights and KV cache now.
void model_close(ModelBox& m) {
    if (m.generating.load() == std::this_thread::get_id()) {
        throw Error("Model.close was called from generate's on_token callback; close the model after generate returns");
    }
    std::unique_ptr<mdl::LanguageModel> gone;
    {
        py::gil_scoped_release release;
        std::lock_guard lock(m.mutex);
        m.closed = true;
        gone = std::move(m.lm);
        gone.reset();
    }
    m.release();
}

}  // namespace

PYBIND11_MODULE(vkattn, m) {
    m.doc() =
        "vkattn: scaled dot-product attention on Vulkan devices, on numpy float32 / float16 arrays.\n\n"
        "Q is [B, H, Lq, D] or [H, Lq, D]; K and V are [B, Hkv, Lk, D] or [Hkv, Lk, D] with H a multiple of Hkv.\n"
        "causal=True is bottom-right aligned (query i sees keys j <= i + Lk - Lq, the KV-cache convention),\n"
        "unlike PyTorch's is_causal, which is top-left aligned when Lq != Lk.\n\n"
        "vkattn.Model(path_or_synthetic) runs GPT-2 and Llama-family models: forward, tokenize, generate.";
    m.attr("__version__") = VKATTN_VERSION_STRING;

    // ValueError: vkattn::Error means the arguments (shapes, dtypes, options) or the device cannot do what was
    // asked, and says what was expected; VulkanError, a failed Vulkan call, is also a RuntimeError.
    // Never destroyed: a static's destructor would run after the interpreter is gone.
    static auto& error = *new py::exception<Error>(m, "Error", PyExc_ValueError);
    static auto& vulkan_error = *new py::exception<vkattn::VulkanError>(
        m, "VulkanError", py::make_tuple(error, py::handle(PyExc_RuntimeError)));
    error.doc() = "vkattn's error: bad arguments or an unmet device requirement, with a one-line message.";
    vulkan_error.doc() = "A Vulkan call failed (also a RuntimeError).";
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const vkattn::VulkanError& e) {
            PyErr_SetString(vulkan_error.ptr(), e.what());
        } catch (const Error& e) {
            PyErr_SetString(error.ptr(), e.what());
        }
    });

    py::class_<ContextBox, ContextPtr>(m, "Context",
                                      "A Vulkan device and its queue. Tensors of a call live only during the call.\n"
                                      "device: index or name substring (None: $VKATTN_DEVICE, then the best);\n"
                                      "validation: the Khronos validation layer (None: on when VKATTN_VALIDATION=1);\n"
                                      "profile: time every dispatch (see last_timings).\n"
                                      "close() (or a with block) frees the device at once.")
        .def(py::init(&make_context), py::kw_only(), py::arg("device") = py::none(),
             py::arg("validation") = py::none(), py::arg("profile") = false)
        .def_property_readonly("device", [](ContextBox& c) { return device_dict(c.get().device()); })
        .def_property_readonly("validation", [](ContextBox& c) { return c.get().validation(); })
        .def_property(
            "profiling", [](ContextBox& c) { return c.get().profiling(); },
            [](ContextBox& c, bool on) {
                std::lock_guard lock(c.mutex);
                c.get().set_profiling(on);
            })
        .def_property_readonly(
            "last_timings",
            [](ContextBox& c) {
                std::lock_guard lock(c.mutex);
                py::list r;
                for (const auto& t : c.get().last_timings()) r.append(py::make_tuple(t.name, t.ms));
                return r;
            },
            "(kernel name, milliseconds) of each dispatch of the last call made with profiling on")
        .def_property_readonly("device_memory_bytes", [](ContextBox& c) { return c.get().device_memory_bytes(); })
        .def_property_readonly("peak_device_memory_bytes",
                               [](ContextBox& c) { return c.get().peak_device_memory_bytes(); })
        .def("reset_peak_memory", [](ContextBox& c) { c.get().reset_peak_memory(); })
        .def_property_readonly(
            "warnings", [](ContextBox& c) { return c.get().warnings(); },
            "one line for each kernel that failed its self-check against the CPU reference on this device, so\n"
            "that another ran in its place (the library prints nothing)")
        .def_property_readonly("closed", [](ContextBox& c) { return !c.ctx; })
        .def("close", &close_context,
             "Destroys the device context now; later calls with it raise vkattn.Error. Closing twice is fine;\n"
             "closing a context that a vkattn.Model runs on raises vkattn.Error (close the model first).")
        .def("__enter__", [](ContextPtr c) { return c; })
        .def("__exit__",
             [](ContextBox& c, const py::object&, const py::object&, const py::object&) { close_context(c); })
        .def("__repr__", [](ContextBox& c) {
            if (!c.ctx) return std::string("<vkattn.Context closed>");
            return "<vkattn.Context device='" + c.ctx->device().name + "' validation=" +
                   (c.ctx->validation() ? "True" : "False") + ">";
        });

    m.def(
        "devices",
        [] {
            std::vector<vkattn::DeviceInfo> list;
            {
                py::gil_scoped_release release;
                list = vkattn::Context::devices();
            }
            py::list r;
            for (const auto& d : list) r.append(device_dict(d));
            return r;
        },
        "Every device the Vulkan loader lists, usable or not, as dicts (the fields of vkattn::DeviceInfo).");
    m.def("default_context", &default_context,
          "The context used when a call gets no context=: created on first use with the environment's choices.");
    m.def(
        "close_default_context", [] { close_default(); },
        "Destroys the default context (it is created again on next use); also done at interpreter exit.");

    const char* mask_doc =
        "causal: query i sees keys j <= i + (Lk - Lq) (bottom-right, the KV-cache convention);\n"
        "window: at most this many most recent keys (None or 0: no window);\n"
        "mask: [Lq, Lk] float (added to the scaled scores) or bool (True: may attend, as PyTorch's attn_mask);\n"
        "key_padding: [B, Lk] (or [Lk] when B = 1) bool or numbers, True / nonzero: a padded key.\n"
        "A query that sees no key gets zeros.";
    m.def("attention", &attention,
          (std::string("softmax(mask(scale · Q Kᵀ)) V on the device, as Q's shape and dtype.\n"
                       "scale: None is 1 / sqrt(D); impl: 'fused' (no Lq × Lk buffer) or 'naive' (the three stages);\n") +
           mask_doc)
              .c_str(),
          py::arg("q"), py::arg("k"), py::arg("v"), py::kw_only(), py::arg("causal") = false,
          py::arg("scale") = py::none(), py::arg("window") = py::none(), py::arg("mask") = py::none(),
          py::arg("key_padding") = py::none(), py::arg("impl") = "fused", py::arg("context") = py::none());
    m.def("attention_scores", &attention_scores,
          "scale · Q Kᵀ as float32 [B, H, Lq, Lk] ([H, Lq, Lk] for a 3-D Q); no mask is applied here.",
          py::arg("q"), py::arg("k"), py::kw_only(), py::arg("scale") = py::none(), py::arg("context") = py::none());
    m.def("attention_softmax", &attention_softmax,
          (std::string("The attention matrix: softmax over keys of the masked float32 scores, same shape.\n") +
           mask_doc)
              .c_str(),
          py::arg("scores"), py::kw_only(), py::arg("causal") = false, py::arg("window") = py::none(),
          py::arg("mask") = py::none(), py::arg("key_padding") = py::none(), py::arg("context") = py::none());
    m.def("attention_values", &attention_values,
          "probs [B, H, Lq, Lk] float32 · V [B, Hkv, Lk, D], as V's dtype, [.., H, Lq, D] with probs' rank.",
          py::arg("probs"), py::arg("v"), py::kw_only(), py::arg("context") = py::none());

    py::module_ ref = m.def_submodule("reference", "The CPU reference (in double): the oracle for the device results.");
    ref.def("attention", &reference_attention,
            (std::string("vkattn.attention computed on the CPU in double, returned as float32 whatever Q's dtype\n"
                         "(so that it can judge a float16 result). Any D. Same arguments and masks:\n") +
             mask_doc)
                .c_str(),
            py::arg("q"), py::arg("k"), py::arg("v"), py::kw_only(), py::arg("causal") = false,
            py::arg("scale") = py::none(), py::arg("window") = py::none(), py::arg("mask") = py::none(),
            py::arg("key_padding") = py::none());
    ref.def("matmul", &reference_matmul, "y [M, N] = x [M, K] · w [K, N] (+ bias [N]), float32 arrays.",
            py::arg("x"), py::arg("w"), py::arg("bias") = py::none());
    // `import vkattn.reference` and `from vkattn.reference import attention` work too.
    py::module_::import("sys").attr("modules")["vkattn.reference"] = ref;

    // ---------------------------------------------------------------------------------------------------------
    // Language models.
    py::class_<Generation>(m, "GenerateResult",
                           "What Model.generate returns: the new token ids (an end-of-sequence id is not included),\n"
                           "their text (None without a tokenizer), why it stopped ('max_tokens', 'eos', 'stop_string',\n"
                           "'context_full'), the counts and timings, and the sampler seed used.")
        .def_readonly("tokens", &Generation::tokens)
        .def_property_readonly("text", [](const Generation& g) -> py::object {
            if (!g.text) return py::none();
            return text_to_python(*g.text);
        })
        .def_readonly("stop_reason", &Generation::stop_reason)
        .def_readonly("prompt_tokens", &Generation::prompt_tokens)
        .def_readonly("decode_steps", &Generation::decode_steps, "single-token forwards after the prompt's")
        .def_readonly("prefill_ms", &Generation::prefill_ms)
        .def_readonly("decode_ms", &Generation::decode_ms)
        .def_readonly("seed", &Generation::seed, "the sampler seed: seed= when given, else the random one drawn")
        .def("__repr__", [](const Generation& g) {
            std::string r = "<vkattn.GenerateResult " + std::to_string(g.tokens.size()) + " tokens, stop_reason='" +
                            g.stop_reason + "'";
            if (g.text) r += ", text=" + py::repr(text_to_python(*g.text)).cast<std::string>();
            return r + ">";
        });

    py::class_<ModelBox>(m, "Model",
                         "A language model (GPT-2 or a Llama-family model: Llama, Mistral, Qwen2) for inference, on\n"
                         "a Vulkan device or on the CPU reference.\n\n"
                         "model: a Hugging Face directory (config.json, model.safetensors or its index, the tokenizer\n"
                         "  files when present), or 'synthetic' (GPT-2 small's shape), 'synthetic:LAYERS,HEADS,EMBD' or\n"
                         "  'synthetic:NAME' (a published model's shape, e.g. 'synthetic:smollm2-135m'), seeded weights;\n"
                         "backend: 'vulkan' (the GPU model) or 'cpu' (the reference);\n"
                         "dtype: weight storage, 'f32', 'f16' or 'bf16' (Llama family);\n"
                         "impl: GPU attention, 'fused' (default) or 'naive' (three kernels);\n"
                         "device: index or name substring (None: $VKATTN_DEVICE, then the best), or\n"
                         "context: a vkattn.Context to run on (it cannot be closed while the model lives).\n"
                         "impl, device and context set up the GPU model and are refused with backend='cpu'.\n\n"
                         "The model keeps a KV cache: forward and generate append to it; reset() empties it.\n"
                         "close() (or a with block) frees the weights and the cache at once.")
        .def(py::init(&open_model), py::arg("model"), py::kw_only(), py::arg("backend") = "vulkan",
             py::arg("dtype") = "f32", py::arg("impl") = py::none(), py::arg("device") = py::none(),
             py::arg("context") = py::none())
        .def("forward", &model_forward, py::arg("tokens"), py::arg("all_logits") = true,
             "Appends tokens (ids, or one id) after the cached ones and returns float32 logits [T, V] for each\n"
             "new position, or [1, V] for the last one when all_logits is False. An id outside [0, V) or a context\n"
             "beyond context_length raises vkattn.Error and leaves the cache as it was.")
        .def(
            "reset", [](ModelBox& b) { with_model(b, "reset", [](mdl::LanguageModel& lm) { lm.reset(); }); },
            "Empties the KV cache: the next forward or generate starts at position 0.")
        .def_property_readonly(
            "position",
            [](ModelBox& b) { return with_model(b, "position", [](mdl::LanguageModel& lm) { return lm.position(); }); },
            "Tokens in the KV cache: the position of the next token.")
        .def(
            "tokenize",
            [](ModelBox& b, const std::string& text, bool add_special_tokens) {
                return with_model(b, "tokenize", [&](mdl::LanguageModel& lm) {
                    return model_tokenizer(lm, "Model.tokenize").encode(text, add_special_tokens);
                });
            },
            py::arg("text"), py::arg("add_special_tokens") = true,
            "Text to token ids as Hugging Face's encode does (a BOS is added when the tokenizer adds one, unless\n"
            "add_special_tokens is False). Needs the model directory's tokenizer.")
        .def(
            "detokenize",
            [](ModelBox& b, const py::object& ids, bool skip_special_tokens) {
                check_open(b);
                const std::vector<int> list = token_ids(ids, "ids", b.info.vocab_size);
                const std::string text = with_model(b, "detokenize", [&](mdl::LanguageModel& lm) {
                    return model_tokenizer(lm, "Model.detokenize").decode(list, skip_special_tokens);
                });
                return text_to_python(text);
            },
            py::arg("ids"), py::arg("skip_special_tokens") = false,
            "Token ids to text as Hugging Face's decode does; bytes that are not valid UTF-8 become U+FFFD.")
        .def(
            "generate",
            [](ModelBox& b, const py::object& prompt, int max_tokens, float temperature, int top_k, float top_p,
               float min_p, float repeat_penalty, int repeat_last_n, std::optional<uint64_t> seed,
               const py::object& stop, bool stop_at_eos, const py::object& on_token) {
                std::vector<std::string> stops;
                if (py::isinstance<py::str>(stop)) {
                    stops.push_back(stop.cast<std::string>());
                } else if (!stop.is_none()) {
                    stops = stop.cast<std::vector<std::string>>();
                }
                return model_generate(b, prompt, max_tokens, temperature, top_k, top_p, min_p, repeat_penalty,
                                      repeat_last_n, seed, stops, stop_at_eos, on_token);
            },
            py::arg("prompt"), py::kw_only(), py::arg("max_tokens") = 50, py::arg("temperature") = 0.8f,
            py::arg("top_k") = 40, py::arg("top_p") = 0.95f, py::arg("min_p") = 0.05f, py::arg("repeat_penalty") = 1.0f,
            py::arg("repeat_last_n") = 64, py::arg("seed") = py::none(), py::arg("stop") = py::none(),
            py::arg("stop_at_eos") = true, py::arg("on_token") = py::none(),
            "Runs the prompt (text, tokenized with the model's tokenizer, or token ids) after what the KV cache\n"
            "holds and samples up to max_tokens new tokens; returns a vkattn.GenerateResult. The defaults are the\n"
            "CLI's: temperature 0.8 (0: greedy), top_k 40 (0: all), top_p 0.95 (1: all), min_p 0.05 (0: all),\n"
            "repeat_penalty 1 (off) over the last repeat_last_n tokens, and a random seed (returned in the result)\n"
            "unless seed is given.\n"
            "Stops early at an end-of-sequence id (unless stop_at_eos is False), at a stop string (str or list;\n"
            "needs a tokenizer) or when the context is full. on_token(id, text) is called for each new token with\n"
            "the text that became complete (whole characters), then once with id -1 for text held to the end.\n"
            "Call reset() first to start a fresh sequence.")
        .def_property_readonly("info", &info_dict,
                               "The model's shape (ModelInfo: family, variant, layers, heads, widths, vocab_size,\n"
                               "context_length, window, parameters, tokenizer, weight_bytes per dtype, KV-cache\n"
                               "bytes per token), its summary line and its special tokens.")
        .def_property_readonly("vocab_size", [](const ModelBox& b) { check_open(b); return b.info.vocab_size; })
        .def_property_readonly("context_length",
                               [](const ModelBox& b) { check_open(b); return b.info.context_length; })
        .def_property_readonly("description", [](const ModelBox& b) { check_open(b); return b.description; })
        .def_readonly("backend", &ModelBox::backend)
        .def_readonly("dtype", &ModelBox::dtype)
        .def_property_readonly("impl", [](const ModelBox& b) -> py::object {
            if (b.impl.empty()) return py::none();
            return py::str(b.impl);
        }, "'fused' or 'naive' on vulkan; None on the CPU reference")
        .def_property_readonly("closed", [](const ModelBox& b) { return b.closed.load(); })
        .def("close", &model_close, "Frees the weights and the KV cache now; later calls raise vkattn.Error.")
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__",
             [](ModelBox& b, const py::object&, const py::object&, const py::object&) { model_close(b); })
        .def("__repr__", &model_repr);

    // The default context goes before the interpreter does, not in a static destructor after it.
    py::module_::import("atexit").attr("register")(py::cpp_function([] { close_default(); }));
}

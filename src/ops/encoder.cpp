#include "ops/encoder.hpp"

#include <vkattn/error.hpp>

#include <algorithm>
#include <string>

namespace vkattn::ops {
namespace {

struct Extent {
    uint64_t begin = UINT64_MAX;  // elements
    uint64_t end = 0;
};

// Elements [begin, end) that the slice z of a view touches.
Extent slice_extent(const TensorRef& v, uint32_t H, uint32_t z) {
    const uint32_t b = z / H;
    const uint32_t h = z % H;
    const uint32_t heads = uint32_t(v.shape[1]);
    const uint32_t hv = heads == H ? h : h / (H / heads);
    const uint64_t start = v.offset + uint64_t(b) * v.stride[0] + uint64_t(hv) * v.stride[1];
    return {start, start + uint64_t(v.shape[2] - 1) * v.stride[2] + uint64_t(v.shape[3])};
}

Extent chunk_extent(const TensorRef& v, uint32_t H, uint32_t z0, uint32_t z1) {
    Extent e;
    for (uint32_t z = z0; z < z1; ++z) {
        const Extent s = slice_extent(v, H, z);
        e.begin = std::min(e.begin, s.begin);
        e.end = std::max(e.end, s.end);
    }
    return e;
}

uint64_t binding_bytes(const vk::Device& device, const TensorRef& v, const Extent& e) {
    const uint64_t align = device.info().min_storage_buffer_offset_alignment;
    const uint64_t es = dtype_size(v.dtype);
    const uint64_t start = (e.begin * es) / align * align;
    return e.end * es - start;
}

}  // namespace

TensorRef contiguous(const vk::Buffer& buffer, DType dtype, std::array<int64_t, 4> shape) {
    TensorRef r;
    r.buffer = &buffer;
    r.dtype = dtype;
    r.shape = shape;
    r.stride = {shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1};
    return r;
}

BoundView bind_view(const vk::Device& device, const TensorRef& v, uint32_t H, uint32_t z0, uint32_t z1) {
    const Extent e = chunk_extent(v, H, z0, z1);
    const uint64_t align = device.info().min_storage_buffer_offset_alignment;
    const uint64_t es = dtype_size(v.dtype);
    const uint64_t start = (e.begin * es) / align * align;
    uint64_t range = (e.end * es - start + 3) / 4 * 4;  // std430 arrays of 16-bit elements end on a word
    range = std::min(range, v.buffer->size() - start);
    BoundView out;
    out.binding = {v.buffer->get(), start, range};
    out.offset = uint32_t(v.offset - start / es);  // modulo 2^32 by design, see encoder.hpp
    return out;
}

glsl::ViewParams view_params(const BoundView& bound, const TensorRef& v) {
    return {bound.offset, uint32_t(v.stride[0]), uint32_t(v.stride[1]), uint32_t(v.stride[2])};
}

std::vector<std::pair<uint32_t, uint32_t>> plan_chunks(const vk::Device& device, uint32_t Z, uint32_t H,
                                                       std::span<const TensorRef* const> views, const char* what) {
    const DeviceInfo& info = device.info();
    const uint64_t max_range = info.max_storage_buffer_range;
    const uint32_t max_z = info.max_workgroup_count[2];
    for (const TensorRef* v : views) {
        const Extent whole = chunk_extent(*v, H, 0, Z);
        if (whole.end >= (uint64_t(1) << 32)) {
            throw Error(std::string(what) + ": a tensor of " + std::to_string(whole.end) +
                        " elements is beyond the 2^32 elements vkattn's kernels index");
        }
    }
    std::vector<std::pair<uint32_t, uint32_t>> chunks;
    uint32_t z0 = 0;
    while (z0 < Z) {
        uint32_t z1 = z0;
        std::vector<Extent> ext(views.size());
        while (z1 < Z && z1 - z0 < max_z) {
            bool fits = true;
            std::vector<Extent> next = ext;
            for (size_t i = 0; i < views.size(); ++i) {
                const Extent s = slice_extent(*views[i], H, z1);
                next[i].begin = std::min(next[i].begin, s.begin);
                next[i].end = std::max(next[i].end, s.end);
                if (binding_bytes(device, *views[i], next[i]) > max_range) fits = false;
            }
            if (!fits) break;
            ext = std::move(next);
            ++z1;
        }
        if (z1 == z0) {
            for (const TensorRef* v : views) {
                const uint64_t bytes = binding_bytes(device, *v, chunk_extent(*v, H, z0, z0 + 1));
                if (bytes > max_range) {
                    throw Error(std::string(what) + ": one head's slice needs a " + std::to_string(bytes) +
                                "-byte binding, over the device's maxStorageBufferRange of " +
                                std::to_string(max_range) + " bytes (" + info.name + ")");
                }
            }
        }
        chunks.emplace_back(z0, z1);
        z0 = z1;
    }
    return chunks;
}

vk::Binding bind_whole(const vk::Device& device, const vk::Buffer& buffer, const char* what) {
    const uint64_t max_range = device.info().max_storage_buffer_range;
    if (buffer.size() > max_range) {
        throw Error(std::string(what) + " of " + std::to_string(buffer.size()) +
                    " bytes exceeds the device's maxStorageBufferRange of " + std::to_string(max_range) + " bytes");
    }
    return {buffer.get(), 0, buffer.size()};
}

}  // namespace vkattn::ops

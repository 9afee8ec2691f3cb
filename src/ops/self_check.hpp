// Trust, then verify: kernels that only some drivers run (the cooperative-matrix ones, which CI sees emulated and
// one NVIDIA GPU saw for real) check themselves on a small case against the CPU reference (vkattn::reference) the
// first time a pipeline is used on a device. A kernel that disagrees is not used there again: its callers take
// the scalar kernels, and the device records a one-line warning naming the kernel and the error
// (Context::warnings(); the library never prints).
#pragma once

#include "vulkan/device.hpp"

#include <vkattn/reference.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vkattn::ops {

// The CPU reference the checks compare with: vkattn::reference's attention and matmul. Their implementation is in
// the api layer, which ops may not call, so api hands them over (Context's constructor, before it makes the
// Runtime); check_reference() throws an internal error if nothing was handed over.
struct CheckReference {
    decltype(&reference::attention) attention = nullptr;
    decltype(&reference::matmul) matmul = nullptr;
};
void set_check_reference(const CheckReference& reference);
CheckReference check_reference();

// Whether the pipeline `key` (see pipeline_key) may be used on the device. The first call per key runs `check`, which returns "" when the kernel's result is within its error bound of the reference, else
// what it saw (one line); a vkattn::Error that `check` throws counts as a failure with its message. Cached per key;
// a failure adds the warning "<key> failed its self-check against the CPU reference: <what>; using the scalar
// kernels on this device". Call with the device's lock held (any recording holds it).
bool self_checked(vk::Device& device, const std::string& key, const std::function<std::string()>& check);

// A pipeline key: the kernel's name and its specialization constants, e.g. "flash_coopmat_f16 128,64,16,16,16,4,32,32".
std::string pipeline_key(const std::string& name, const std::vector<uint32_t>& spec);

// One line on a check's outcome: "" when every element of got is within atol + rtol · |ref| of ref (NaN where ref is
// NaN), else the worst element, its two values and the bound.
std::string compare_for_self_check(const std::vector<float>& got, const std::vector<float>& ref, double atol,
                                   double rtol);

// A check's inputs: n pseudo-random values n / 64 for integers n in [-64, 64], exact in fp16 and fp32 (so the
// reference sees what the kernel sees), the same on every device for a seed; f16 holds them as fp16 bits, padded to
// whole 4-byte words.
struct CheckValues {
    std::vector<float> f32;
    std::vector<uint16_t> f16;
};
CheckValues check_values(size_t n, uint32_t seed);
// The first n fp16 values of h as floats (exactly).
std::vector<float> halves_to_floats(const std::vector<uint16_t>& h, size_t n);

// For tests: while on, the automatic choices treat every device as having cooperative matrices and run the
// emulated kernels (flash_coopmat_emu_f16, matmul_coopmat_emu_*), self-checks included.
void emulate_coopmat_for_testing(bool on);
bool coopmat_emulated_for_testing();

// For tests: while on, every self-check sees its kernel's result corrupted (its first element moved by 1), so the
// check fails and the fallback and its warning can be tested.
void corrupt_self_checks_for_testing(bool on);
bool self_checks_corrupted_for_testing();

// For tests: the emulation hook on for a scope, and both hooks off at its end whatever happens.
struct CoopmatTestScope {
    CoopmatTestScope() { emulate_coopmat_for_testing(true); }
    ~CoopmatTestScope() {
        emulate_coopmat_for_testing(false);
        corrupt_self_checks_for_testing(false);
    }
    CoopmatTestScope(const CoopmatTestScope&) = delete;
    CoopmatTestScope& operator=(const CoopmatTestScope&) = delete;
};

}  // namespace vkattn::ops

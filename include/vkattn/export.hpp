// VKATTN_API marks what libvkattn exports: the classes and functions of the public headers (include/vkattn/).
// The library is compiled with hidden visibility (-fvisibility=hidden -fvisibility-inlines-hidden), so that
// everything else in it (its layers, the Vulkan engine, nlohmann::json and other third-party code) stays
// internal to a shared libvkattn.so. One header for static and shared builds: on ELF and Mach-O the attribute
// is harmless in a static library; on Windows a static build defines VKATTN_STATIC (CMake sets it for users).
// VKATTN_LOCAL keeps a member of an exported class internal (a pimpl's Impl with out-of-line functions).
#pragma once

#if defined(_WIN32)
#if defined(VKATTN_STATIC)
#define VKATTN_API
#elif defined(VKATTN_BUILDING)  // compiling libvkattn itself
#define VKATTN_API __declspec(dllexport)
#else
#define VKATTN_API __declspec(dllimport)
#endif
#define VKATTN_LOCAL
#elif defined(__GNUC__) || defined(__clang__)
#define VKATTN_API __attribute__((visibility("default")))
#define VKATTN_LOCAL __attribute__((visibility("hidden")))
#else
#define VKATTN_API
#define VKATTN_LOCAL
#endif

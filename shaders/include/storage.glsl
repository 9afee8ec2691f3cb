// Element type of Q, K, V and O buffers: fp32, or fp16 storage (VKATTN_F16=1) with fp32 arithmetic.
// Only the StorageBuffer16BitAccess capability is needed for fp16: loads convert to float at once.
#if VKATTN_F16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM float16_t
#define TO_ELEM(x) float16_t(x)
#else
#define ELEM float
#define TO_ELEM(x) (x)
#endif

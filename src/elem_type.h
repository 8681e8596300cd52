// Element types of Q, K, V and the output, and scalar conversions to and
// from float. Kernels widen BF16/F16 inputs to f32 when they pack them and
// narrow the output when they write it (round to nearest even).
#ifndef SDPA_SRC_ELEM_TYPE_H_
#define SDPA_SRC_ELEM_TYPE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace sdpa {

enum class ElemType { kF32, kBF16, kF16 };

inline size_t ElemBytes(ElemType type) {
  return type == ElemType::kF32 ? 4 : 2;
}

inline uint32_t BitsOf(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return bits;
}

inline float FloatOf(uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, sizeof(x));
  return x;
}

inline float F32FromBF16Bits(uint16_t bits) {
  return FloatOf(static_cast<uint32_t>(bits) << 16);
}

// Round to nearest even; NaN stays NaN (quiet), infinities stay infinite.
inline uint16_t BF16BitsFromF32(float x) {
  const uint32_t bits = BitsOf(x);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  }
  const uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

// IEEE binary16, subnormals, infinities and NaN included.
inline float F32FromF16Bits(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude =
        static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) {  // infinity or NaN
    return FloatOf(sign | 0x7F800000u | (mantissa << 13));
  }
  return FloatOf(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// Round to nearest even, overflow to infinity, underflow through subnormals.
inline uint16_t F16BitsFromF32(float x) {
  const uint32_t bits = BitsOf(x);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return sign | 0x7E00u;   // NaN
  if (magnitude >= 0x477FF000u) return sign | 0x7C00u;  // rounds to >= 65520
  if (magnitude < 0x38800000u) {  // below 2^-14: subnormal or zero
    // Scale to units of 2^-24 and let the FPU round to nearest even.
    const float units = FloatOf(magnitude) * 16777216.0f;
    const float rounded = units + 8388608.0f - 8388608.0f;
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(rounded));
  }
  const uint32_t rounding = 0xFFFu + ((magnitude >> 13) & 1u);
  return static_cast<uint16_t>(sign |
                               ((magnitude - 0x38000000u + rounding) >> 13));
}

// Element `index` (in elements) of `base` as float.
inline float LoadElem(const void* base, int64_t index, ElemType type) {
  switch (type) {
    case ElemType::kF32:
      return static_cast<const float*>(base)[index];
    case ElemType::kBF16:
      return F32FromBF16Bits(static_cast<const uint16_t*>(base)[index]);
    case ElemType::kF16:
      return F32FromF16Bits(static_cast<const uint16_t*>(base)[index]);
  }
  return 0.0f;
}

inline void StoreElem(void* base, int64_t index, ElemType type, float x) {
  switch (type) {
    case ElemType::kF32:
      static_cast<float*>(base)[index] = x;
      return;
    case ElemType::kBF16:
      static_cast<uint16_t*>(base)[index] = BF16BitsFromF32(x);
      return;
    case ElemType::kF16:
      static_cast<uint16_t*>(base)[index] = F16BitsFromF32(x);
      return;
  }
}

}  // namespace sdpa

#endif  // SDPA_SRC_ELEM_TYPE_H_

#include "src/dispatch.h"

#include <hwy/targets.h>

#if HWY_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

#include <cctype>
#include <cstring>

#include "sdpa/sdpa.h"

namespace sdpa {

// Defined in kernels/attention.cc, next to HWY_EXPORT: the table entry of one
// Highway target (with bf16_dot, its variant with BF16 dot products), or
// nullptr when it was not compiled.
const KernelTable* KernelsForHwyTarget(int64_t hwy_target, bool bf16_dot);

namespace {

struct IsaInfo {
  uint64_t isa;
  int64_t hwy_target;  // 0: not a target of this architecture
  const char* name;
  // Highway's target plus AVX512_BF16, which Highway 1.0.3 has no target for
  // (its later AVX3_ZEN4 target is named after the same CPUs).
  bool bf16_dot = false;
};

// CPUID leaf 7, subleaf 1, EAX bit 5: AVX512_BF16. The OS's support for the
// AVX-512 state is Highway's AVX3 check, which the ISA also needs.
bool CpuHasAvx512Bf16() {
#if HWY_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return false;
  return (eax >> 5) & 1;
#else
  return false;
#endif
}

// Most capable first, so BestIsa is the first match (AVX3_ZEN4 only where
// its dot products pay: CpuRunsBf16DotsFast).
constexpr IsaInfo kIsas[] = {
#if HWY_ARCH_X86
    {SDPA_ISA_AVX3_ZEN4, HWY_AVX3, "AVX3_ZEN4", /*bf16_dot=*/true},
    {SDPA_ISA_AVX3_DL, HWY_AVX3_DL, "AVX3_DL"},
    {SDPA_ISA_AVX3, HWY_AVX3, "AVX3"},
    {SDPA_ISA_AVX2, HWY_AVX2, "AVX2"},
    {SDPA_ISA_SSE4, HWY_SSE4, "SSE4"},
    {SDPA_ISA_SSSE3, HWY_SSSE3, "SSSE3"},
#else
    {SDPA_ISA_AVX3_ZEN4, 0, "AVX3_ZEN4", /*bf16_dot=*/true},
    {SDPA_ISA_AVX3_DL, 0, "AVX3_DL"},
    {SDPA_ISA_AVX3, 0, "AVX3"},
    {SDPA_ISA_AVX2, 0, "AVX2"},
    {SDPA_ISA_SSE4, 0, "SSE4"},
    {SDPA_ISA_SSSE3, 0, "SSSE3"},
#endif
#if HWY_ARCH_ARM_A64
    {SDPA_ISA_SVE2_128, HWY_SVE2_128, "SVE2_128"},
    {SDPA_ISA_SVE_256, HWY_SVE_256, "SVE_256"},
    {SDPA_ISA_SVE2, HWY_SVE2, "SVE2"},
    {SDPA_ISA_SVE, HWY_SVE, "SVE"},
    {SDPA_ISA_NEON, HWY_NEON, "NEON"},
#else
    {SDPA_ISA_SVE2_128, 0, "SVE2_128"},
    {SDPA_ISA_SVE_256, 0, "SVE_256"},
    {SDPA_ISA_SVE2, 0, "SVE2"},
    {SDPA_ISA_SVE, 0, "SVE"},
    {SDPA_ISA_NEON, 0, "NEON"},
#endif
    {SDPA_ISA_SCALAR, HWY_BASELINE_SCALAR, "SCALAR"},
};

const IsaInfo* Find(uint64_t isa) {
  for (const IsaInfo& info : kIsas) {
    if (info.isa == isa) return &info;
  }
  return nullptr;
}

}  // namespace

uint64_t AvailableIsas() {
  const int64_t supported = hwy::SupportedTargets();
  // Highway 1.0.3 on Arm: SupportedTargets() sets the process-wide chosen
  // target from the CPU flags alone, before it adds SVE_256/SVE2_128 by
  // vector length, and leaves the final Update to its caller (as
  // HWY_DYNAMIC_DISPATCH's first call does). Without this, any Highway user
  // in the process (the benchmarks, the application) would dispatch to SVE2
  // instead of SVE2_128/SVE_256 after any sdpa call. Elsewhere it sets what
  // the first HWY_DYNAMIC_DISPATCH would set anyway.
  hwy::GetChosenTarget().Update(supported);
  uint64_t isas = 0;
  for (const IsaInfo& info : kIsas) {
    if (info.hwy_target == 0) continue;
    // SCALAR always runs; the others need CPU support and compiled code.
    const bool cpu_ok = (info.hwy_target == HWY_BASELINE_SCALAR ||
                         (supported & info.hwy_target) != 0) &&
                        (!info.bf16_dot || CpuHasAvx512Bf16());
    if (cpu_ok &&
        KernelsForHwyTarget(info.hwy_target, info.bf16_dot) != nullptr) {
      isas |= info.isa;
    }
  }
  return isas;
}

uint64_t BestIsa(uint64_t isas) {
  for (const IsaInfo& info : kIsas) {
    if ((isas & info.isa) == 0) continue;
    if (info.bf16_dot && (isas & ~info.isa) != 0 && !CpuRunsBf16DotsFast()) {
      continue;
    }
    return info.isa;
  }
  return 0;
}

// One vdpbf16ps (32 products, 64 flops) against two 16-lane FMAs (64 flops):
// AMD's cores with AVX512_BF16 (Zen 4, Zen 5) issue the dot at twice the
// FMA's flop rate, and AVX3_ZEN4's BF16 prefill runs 1.3-1.4x AVX3's. An
// Intel Xeon measured here (AVX512_BF16 and AMX, family 6) issues it at half
// the FMA's rate: there AVX3_ZEN4's BF16 prefill ran at 0.73x AVX3's speed
// (sdpa_bench B1 H8 T2048 D128 BF16, one core: 113.7 against 156.5
// GFLOP/s) and decoding within the noise of it. A CPUID rule rather than a
// timing at start-up, so a machine always picks the same code.
bool CpuRunsBf16DotsFast() {
#if HWY_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
  unsigned max_leaf = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &max_leaf, &ebx, &ecx, &edx)) return false;
  char vendor[13] = {};
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  return std::strcmp(vendor, "AuthenticAMD") == 0;
#else
  return false;
#endif
}

const char* IsaName(uint64_t isa) {
  const IsaInfo* info = Find(isa);
  return info ? info->name : "unknown";
}

uint64_t IsaFromName(const char* name) {
  if (name == nullptr) return 0;
  for (const IsaInfo& info : kIsas) {
    const char* a = info.name;
    const char* b = name;
    while (*a && *b &&
           std::toupper(static_cast<unsigned char>(*a)) ==
               std::toupper(static_cast<unsigned char>(*b))) {
      ++a;
      ++b;
    }
    if (*a == '\0' && *b == '\0') return info.isa;
  }
  return 0;
}

const KernelTable* KernelsFor(uint64_t isa) {
  const IsaInfo* info = Find(isa);
  if (info == nullptr || info->hwy_target == 0) return nullptr;
  return KernelsForHwyTarget(info->hwy_target, info->bf16_dot);
}

}  // namespace sdpa

// Which ISA a context gets by default (src/dispatch.h): the most capable,
// except AVX3_ZEN4 where the CPU's BF16 dot products are slower than its
// FMAs, decided from CPUID's vendor.
#include "src/dispatch.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "sdpa/sdpa.h"

namespace {

TEST(BestIsa, MostCapableButAvx3Zen4OnlyWhereItsDotsPay) {
  const bool fast = sdpa::CpuRunsBf16DotsFast();
  EXPECT_EQ(sdpa::BestIsa(0), 0u);
  EXPECT_EQ(sdpa::BestIsa(SDPA_ISA_SCALAR), SDPA_ISA_SCALAR);
  EXPECT_EQ(sdpa::BestIsa(SDPA_ISA_SCALAR | SDPA_ISA_SSE4 | SDPA_ISA_AVX2),
            SDPA_ISA_AVX2);
  EXPECT_EQ(sdpa::BestIsa(SDPA_ISA_SCALAR | SDPA_ISA_AVX2 | SDPA_ISA_AVX3 |
                          SDPA_ISA_AVX3_ZEN4),
            fast ? SDPA_ISA_AVX3_ZEN4 : SDPA_ISA_AVX3);
  // Alone, it is still the best there is.
  EXPECT_EQ(sdpa::BestIsa(SDPA_ISA_AVX3_ZEN4), SDPA_ISA_AVX3_ZEN4);
}

// The vendor read from CPUID, checked against the kernel's account of it.
// (Elsewhere there is no AVX512_BF16; under qemu-user, /proc/cpuinfo may be
// the x86 host's.)
TEST(CpuRunsBf16DotsFast, OnAmdCpusOnly) {
#if !defined(__x86_64__) && !defined(__i386__)
  EXPECT_FALSE(sdpa::CpuRunsBf16DotsFast());
  GTEST_SKIP() << "not x86";
#endif
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, vendor;
  while (vendor.empty() && std::getline(cpuinfo, line)) {
    if (line.rfind("vendor_id", 0) == 0) {
      vendor = line.substr(line.find(':') + 1);
      vendor.erase(0, vendor.find_first_not_of(" \t"));
    }
  }
  if (vendor.empty()) GTEST_SKIP() << "no vendor_id in /proc/cpuinfo";
  EXPECT_EQ(sdpa::CpuRunsBf16DotsFast(), vendor == "AuthenticAMD") << vendor;
}

}  // namespace

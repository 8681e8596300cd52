#include "src/kernels/workspace.h"

#include <cstdlib>
#include <new>

namespace sdpa {
namespace {

struct Scratch {
  float* data = nullptr;
  size_t floats = 0;
  ~Scratch() { std::free(data); }
};

}  // namespace

float* ThreadScratch(size_t floats) {
  thread_local Scratch scratch;
  if (floats > scratch.floats) {
    constexpr size_t kAlign = 64;
    if (floats > (static_cast<size_t>(-1) - kAlign) / sizeof(float)) {
      throw std::bad_alloc();
    }
    const size_t bytes =
        (floats * sizeof(float) + kAlign - 1) / kAlign * kAlign;
    void* fresh = std::aligned_alloc(kAlign, bytes);
    if (fresh == nullptr) throw std::bad_alloc();
    std::free(scratch.data);
    scratch.data = static_cast<float*>(fresh);
    scratch.floats = bytes / sizeof(float);
  }
  return scratch.data;
}

}  // namespace sdpa

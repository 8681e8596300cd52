// Input and output buffers of one shape, allocated and filled once, and a
// spot check of an output against double precision.
#ifndef SDPA_BENCHMARKS_INPUTS_H_
#define SDPA_BENCHMARKS_INPUTS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "benchmarks/shapes.h"
#include "sdpa/sdpa.h"

namespace sdpa_bench {

// Uninitialised floats aligned to 64 bytes (a cache line, any vector width).
class FloatBuffer {
 public:
  FloatBuffer() = default;
  explicit FloatBuffer(size_t count);
  float* data() const { return data_.get(); }
  size_t size() const { return count_; }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float[], Free> data_;
  size_t count_ = 0;
};

// Q [B, Hq, Tq, Dk], K [B, Hkv, Tk, Dk], V [B, Hkv, Tk, Dv] and
// out [B, Hq, Tq, Dv], contiguous BHSD, inputs uniform in [-1, 1).
// For a BF16 shape the library reads q16, k16, v16 (BF16 elements, two to a
// float slot) and q, k, v hold the same values widened, for the check.
struct Inputs {
  Shape shape;
  FloatBuffer q, k, v, out;
  FloatBuffer q16, k16, v16;
  sdpa_tensor q_tensor, k_tensor, v_tensor, out_tensor;
  sdpa_attention_args args;  // points at the tensors above; scale 1/sqrt(Dk)
};

// The inputs of `shape`. Benchmarks of the same shape run one after another
// (see the registration order), so only the latest shape's buffers are kept:
// a call with the same dimensions returns them as they are, a call with
// others frees them first. The pointer stays valid until the next call.
Inputs* InputsFor(const Shape& shape);

// Fills the output with NaN, so that a check after one call proves the call
// wrote what was checked.
void PoisonOutput(Inputs* inputs);

// Compares a few output rows (first, middle and last query of the first and
// last head) with the same rows computed in double precision from the
// inputs. Returns "" when they agree to `tolerance` (absolute; outputs lie in
// [-1, 1]), else what differs. A benchmark of a wrong result is worthless.
std::string CheckSampledRows(const Inputs& inputs, double tolerance);

}  // namespace sdpa_bench

#endif  // SDPA_BENCHMARKS_INPUTS_H_

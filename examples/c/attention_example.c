/* A C99 caller of libsdpa: one causal attention call on a small problem,
 * checked against a naive double-precision attention written here from the
 * definition in sdpa.h. Exits 0 when every output and logsumexp agrees to
 * 1e-5, 1 otherwise. Built as C on purpose: it proves the header and the
 * libraries work for plain C consumers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "sdpa/sdpa.h"

enum { kBatch = 1, kHeads = 2, kQueries = 5, kKeys = 7, kDim = 16 };

static const double kTolerance = 1e-5;

/* Deterministic values in [-1, 1): no dependence on the C library's rand(). */
static float NextValue(uint32_t* state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)((*state >> 8) * (2.0 / 16777216.0) - 1.0);
}

/* A contiguous [batch, heads, seq, dim] tensor over `data`. */
static sdpa_tensor MakeTensor(float* data, int64_t batch, int64_t heads,
                              int64_t seq, int64_t dim) {
  sdpa_tensor t;
  t.data = data;
  t.dtype = SDPA_DTYPE_F32;
  t.shape[0] = batch;
  t.shape[1] = heads;
  t.shape[2] = seq;
  t.shape[3] = dim;
  t.strides[3] = 1;
  t.strides[2] = dim;
  t.strides[1] = seq * dim;
  t.strides[0] = heads * seq * dim;
  return t;
}

/* Naive attention of one query row with SDPA_CAUSAL_BOTTOM_RIGHT: query i
 * sees keys j <= i + kKeys - kQueries. Writes kDim outputs; returns the lse. */
static double ReferenceRow(const float* q_row, const float* k_head,
                           const float* v_head, int query, double* out_row) {
  const double scale = 1.0 / sqrt((double)kDim);
  const int last_visible = query + kKeys - kQueries;
  double scores[kKeys];
  double max_score = -INFINITY, sum = 0.0;
  int j, d;
  for (j = 0; j <= last_visible && j < kKeys; ++j) {
    double dot = 0.0;
    for (d = 0; d < kDim; ++d) dot += (double)q_row[d] * k_head[j * kDim + d];
    scores[j] = dot * scale;
    if (scores[j] > max_score) max_score = scores[j];
  }
  for (d = 0; d < kDim; ++d) out_row[d] = 0.0;
  for (j = 0; j <= last_visible && j < kKeys; ++j) {
    const double p = exp(scores[j] - max_score);
    sum += p;
    for (d = 0; d < kDim; ++d) out_row[d] += p * v_head[j * kDim + d];
  }
  for (d = 0; d < kDim; ++d) out_row[d] /= sum;
  return max_score + log(sum);
}

int main(void) {
  static float q[kBatch * kHeads * kQueries * kDim];
  static float k[kBatch * kHeads * kKeys * kDim];
  static float v[kBatch * kHeads * kKeys * kDim];
  static float out[kBatch * kHeads * kQueries * kDim];
  static float lse[kBatch * kHeads * kQueries];
  sdpa_tensor q_t, k_t, v_t, out_t, lse_t;
  sdpa_attention_args args = {0};
  sdpa_context_options options = {0};
  sdpa_context* context = NULL;
  sdpa_status status;
  uint32_t seed = 12345u;
  double max_error = 0.0;
  int mismatches = 0; /* NaN never compares below the tolerance: counted */
  size_t i;
  int bh, row, d;

  for (i = 0; i < sizeof q / sizeof q[0]; ++i) q[i] = NextValue(&seed);
  for (i = 0; i < sizeof k / sizeof k[0]; ++i) k[i] = NextValue(&seed);
  for (i = 0; i < sizeof v / sizeof v[0]; ++i) v[i] = NextValue(&seed);
  q_t = MakeTensor(q, kBatch, kHeads, kQueries, kDim);
  k_t = MakeTensor(k, kBatch, kHeads, kKeys, kDim);
  v_t = MakeTensor(v, kBatch, kHeads, kKeys, kDim);
  out_t = MakeTensor(out, kBatch, kHeads, kQueries, kDim);
  lse_t = MakeTensor(lse, kBatch, kHeads, kQueries, 1);

  /* A context owns the thread pool: create once, reuse for many calls. */
  options.struct_size = sizeof options;
  options.num_threads = 0; /* all hardware threads */
  options.isa = 0;         /* best the CPU has */
  status = sdpa_context_create(&options, &context);
  if (status != SDPA_OK) {
    fprintf(stderr, "sdpa_context_create: %s: %s\n", sdpa_status_string(status),
            sdpa_last_error());
    return 1;
  }

  args.struct_size = sizeof args;
  args.q = &q_t;
  args.k = &k_t;
  args.v = &v_t;
  args.out = &out_t;
  args.lse = &lse_t;
  args.scale = 0.0f; /* 1/sqrt(kDim) */
  args.causal = SDPA_CAUSAL_BOTTOM_RIGHT;
  args.window_left = -1;
  args.window_right = -1;
  status = sdpa_attention(context, &args);
  if (status != SDPA_OK) {
    fprintf(stderr, "sdpa_attention: %s: %s\n", sdpa_status_string(status),
            sdpa_last_error());
    sdpa_context_destroy(context);
    return 1;
  }

  for (bh = 0; bh < kBatch * kHeads; ++bh) {
    for (row = 0; row < kQueries; ++row) {
      double expected[kDim];
      const size_t out_offset = ((size_t)bh * kQueries + row) * kDim;
      const double expected_lse =
          ReferenceRow(q + out_offset, k + (size_t)bh * kKeys * kDim,
                       v + (size_t)bh * kKeys * kDim, row, expected);
      const double lse_error = fabs(lse[bh * kQueries + row] - expected_lse);
      if (lse_error > max_error) max_error = lse_error;
      if (!(lse_error < kTolerance)) ++mismatches;
      for (d = 0; d < kDim; ++d) {
        const double error = fabs(out[out_offset + d] - expected[d]);
        if (error > max_error) max_error = error;
        if (!(error < kTolerance)) ++mismatches;
      }
    }
  }

  printf("sdpa %u.%u.%u on %s, %d threads: max abs error %.3g\n",
         (unsigned)(sdpa_version() >> 16),
         (unsigned)(sdpa_version() >> 8 & 255),
         (unsigned)(sdpa_version() & 255),
         sdpa_isa_name(sdpa_context_isa(context)),
         (int)sdpa_context_num_threads(context), max_error);
  sdpa_context_destroy(context);
  if (mismatches != 0) {
    fprintf(stderr, "FAILED: %d values off by %g or more (or NaN)\n",
            mismatches, kTolerance);
    return 1;
  }
  printf("OK\n");
  return 0;
}

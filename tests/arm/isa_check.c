/* Asserts which ISA libsdpa picks on the CPU it runs on, so that a change in
 * dispatch (or in what qemu emulates) fails loudly instead of silently testing
 * another code path. Public C API only, linked like a user would link it.
 *
 * Environment (all optional; unset = not checked, only printed):
 *   SDPA_EXPECT_ISA        name of the ISA the default context must run
 *   SDPA_EXPECT_ISAS       comma-separated names: exactly sdpa_available_isas()
 *   SDPA_EXPECT_SVE_BYTES  the SVE vector length in bytes (0: no SVE)
 *
 * It also runs one small attention problem on every available ISA through the
 * public API and compares it with a double-precision reference, as a smoke
 * test of the code paths the kernel suites exercise in depth. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__) && defined(__aarch64__)
#include <sys/prctl.h>
#ifndef PR_SVE_GET_VL
#define PR_SVE_GET_VL 51
#endif
#ifndef PR_SVE_VL_LEN_MASK
#define PR_SVE_VL_LEN_MASK 0xffff
#endif
#endif

#include "sdpa/sdpa.h"

static int failures = 0;

static void fail(const char* what) {
  fprintf(stderr, "FAIL: %s\n", what);
  ++failures;
}

/* The SVE vector length of this thread in bytes, 0 without SVE. */
static long sve_bytes(void) {
#if defined(__linux__) && defined(__aarch64__)
  const int vl = prctl(PR_SVE_GET_VL, 0, 0, 0, 0);
  return vl < 0 ? 0 : (long)(vl & PR_SVE_VL_LEN_MASK);
#else
  return 0;
#endif
}

static void isa_list(uint64_t isas, char* text, size_t size) {
  text[0] = '\0';
  for (int bit = 63; bit >= 0; --bit) { /* most capable first */
    const uint64_t isa = (uint64_t)1 << bit;
    if (!(isas & isa)) continue;
    if (text[0] != '\0') strncat(text, ",", size - strlen(text) - 1);
    strncat(text, sdpa_isa_name(isa), size - strlen(text) - 1);
  }
}

/* Parses "A,B,C" into ISA bits via sdpa_isa_name; 0 on an unknown name. */
static uint64_t parse_isas(const char* names) {
  uint64_t isas = 0;
  char buffer[256];
  snprintf(buffer, sizeof buffer, "%s", names);
  for (char* name = strtok(buffer, ", "); name; name = strtok(NULL, ", ")) {
    uint64_t found = 0;
    for (int bit = 0; bit < 64; ++bit) {
      const uint64_t isa = (uint64_t)1 << bit;
      if (strcmp(sdpa_isa_name(isa), name) == 0) found = isa;
    }
    if (!found) {
      fprintf(stderr, "unknown ISA name \"%s\"\n", name);
      return 0;
    }
    isas |= found;
  }
  return isas;
}

enum { B = 1, H = 2, TQ = 5, TK = 37, D = 16 };

/* One causal problem on a context; returns the max abs error vs double. */
static double run_one(sdpa_context* context) {
  static float q[B * H * TQ * D], k[B * H * TK * D], v[B * H * TK * D];
  static float out[B * H * TQ * D];
  unsigned state = 12345u;
  for (int i = 0; i < B * H * TQ * D; ++i) {
    state = state * 1103515245u + 12345u;
    q[i] = (float)((state >> 8) % 2001) / 1000.0f - 1.0f;
  }
  for (int i = 0; i < B * H * TK * D; ++i) {
    state = state * 1103515245u + 12345u;
    k[i] = (float)((state >> 8) % 2001) / 1000.0f - 1.0f;
    state = state * 1103515245u + 12345u;
    v[i] = (float)((state >> 8) % 2001) / 1000.0f - 1.0f;
  }
  sdpa_tensor tq = {
      q, SDPA_DTYPE_F32, {B, H, TQ, D}, {H * TQ * D, TQ * D, D, 1}};
  sdpa_tensor tk = {
      k, SDPA_DTYPE_F32, {B, H, TK, D}, {H * TK * D, TK * D, D, 1}};
  sdpa_tensor tv = {
      v, SDPA_DTYPE_F32, {B, H, TK, D}, {H * TK * D, TK * D, D, 1}};
  sdpa_tensor to = {
      out, SDPA_DTYPE_F32, {B, H, TQ, D}, {H * TQ * D, TQ * D, D, 1}};
  sdpa_attention_args args;
  memset(&args, 0, sizeof args);
  args.struct_size = sizeof args;
  args.q = &tq;
  args.k = &tk;
  args.v = &tv;
  args.out = &to;
  args.causal = SDPA_CAUSAL_BOTTOM_RIGHT;
  args.window_left = -1;
  args.window_right = -1;
  const sdpa_status status = sdpa_attention(context, &args);
  if (status != SDPA_OK) {
    fprintf(stderr, "sdpa_attention: %s: %s\n", sdpa_status_string(status),
            sdpa_last_error());
    return INFINITY;
  }
  double max_error = 0;
  const double scale = 1.0 / sqrt((double)D);
  for (int h = 0; h < H; ++h) {
    for (int i = 0; i < TQ; ++i) {
      const int last = i + TK - TQ; /* bottom-right diagonal */
      double scores[TK], max_score = -INFINITY, sum = 0;
      for (int j = 0; j <= last; ++j) {
        double s = 0;
        for (int d = 0; d < D; ++d) {
          s += (double)q[(h * TQ + i) * D + d] * k[(h * TK + j) * D + d];
        }
        scores[j] = s * scale;
        if (scores[j] > max_score) max_score = scores[j];
      }
      for (int j = 0; j <= last; ++j) sum += exp(scores[j] - max_score);
      for (int d = 0; d < D; ++d) {
        double o = 0;
        for (int j = 0; j <= last; ++j) {
          o += exp(scores[j] - max_score) / sum * v[(h * TK + j) * D + d];
        }
        const double error = fabs(o - out[(h * TQ + i) * D + d]);
        if (!(error <= max_error)) max_error = error; /* NaN sticks */
      }
    }
  }
  return max_error;
}

int main(void) {
  char text[256], message[512];
  const uint64_t available = sdpa_available_isas();
  isa_list(available, text, sizeof text);
  const char* qemu_cpu = getenv("QEMU_CPU");
  printf("QEMU_CPU:          %s\n", qemu_cpu ? qemu_cpu : "(unset)");
  printf("SVE vector bytes:  %ld\n", sve_bytes());
  printf("available ISAs:    %s\n", text);

  sdpa_context* best = sdpa_default_context();
  const uint64_t chosen = sdpa_context_isa(best);
  printf("default context:   %s\n", sdpa_isa_name(chosen));
  if (best == NULL || chosen == 0) fail("no default context");

  const char* expect_isa = getenv("SDPA_EXPECT_ISA");
  if (expect_isa && strcmp(expect_isa, sdpa_isa_name(chosen)) != 0) {
    snprintf(message, sizeof message,
             "the default context runs %s, expected %s", sdpa_isa_name(chosen),
             expect_isa);
    fail(message);
  }
  const char* expect_isas = getenv("SDPA_EXPECT_ISAS");
  if (expect_isas) {
    const uint64_t expected = parse_isas(expect_isas);
    if (expected != available) {
      snprintf(message, sizeof message,
               "sdpa_available_isas() is %s, expected %s", text, expect_isas);
      fail(message);
    }
  }
  const char* expect_bytes = getenv("SDPA_EXPECT_SVE_BYTES");
  if (expect_bytes && atol(expect_bytes) != sve_bytes()) {
    snprintf(message, sizeof message,
             "the emulated CPU has %ld-byte SVE vectors, expected %s: check "
             "QEMU_CPU and qemu's defaults",
             sve_bytes(), expect_bytes);
    fail(message);
  }

  /* Every available ISA, explicitly; then the default context. */
  for (int bit = 0; bit < 64; ++bit) {
    const uint64_t isa = (uint64_t)1 << bit;
    if (!(available & isa)) continue;
    sdpa_context_options options;
    memset(&options, 0, sizeof options);
    options.struct_size = sizeof options;
    options.num_threads = 2;
    options.isa = isa;
    sdpa_context* context = NULL;
    const sdpa_status status = sdpa_context_create(&options, &context);
    if (status != SDPA_OK) {
      snprintf(message, sizeof message, "sdpa_context_create(%s): %s: %s",
               sdpa_isa_name(isa), sdpa_status_string(status),
               sdpa_last_error());
      fail(message);
      continue;
    }
    if (sdpa_context_isa(context) != isa) fail("context runs another ISA");
    const double error = run_one(context);
    printf("%-9s max |error| vs double: %.3g\n", sdpa_isa_name(isa), error);
    if (!(error <= 1e-5)) fail("result differs from the double reference");
    sdpa_context_destroy(context);
  }
  const double error = run_one(NULL);
  if (!(error <= 1e-5)) fail("default context: result differs from double");

  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("OK\n");
  return 0;
}

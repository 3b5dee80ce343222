/*
 * peak_bf16.c: the AVX512_BF16 dot-product peak next to the fp32 FMA peak,
 * one thread, interleaved trials (docs/precision.md, "What is not done").
 *
 *   bench_peak_bf16 [--trials N]
 *
 * Both loops run 24 independent zmm accumulators: `vfmadd231ps` (16 lanes,
 * 32 FLOPs) and `vdpbf16ps` (16 lanes of two bf16 products added to an fp32
 * accumulator, 64 FLOPs). The trials alternate FMA and bf16 so that the
 * machine's noise falls on both; the best trial of each is the estimate of
 * its ceiling (as peak.c). The bf16 loop is compiled with a target
 * attribute and runs only where __builtin_cpu_supports("avx512bf16").
 *
 * Output: one JSON line,
 *   {"fma_gflops": 74.0, "bf16_gflops": 39.8, "ratio": 0.54, "trials": N}
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <immintrin.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* clang-format off */
#define ACC(X) \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) \
  X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)
/* clang-format on */
#define DECL(k) __m512 acc##k = _mm512_set1_ps((float)(k) * 1e-3f);
#define SUM(k) s = _mm512_add_ps(s, acc##k);

__attribute__((target("avx512f"))) static float fma_loop(uint64_t iters) {
  __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
#define STEP(k) acc##k = _mm512_fmadd_ps(acc##k, a, b);
  ACC(DECL)
  for (uint64_t i = 0; i < iters; i++) {
    ACC(STEP)
  }
#undef STEP
  __m512 s = _mm512_setzero_ps();
  ACC(SUM)
  return _mm512_reduce_add_ps(s);
}

/* bf16 0.5 times bf16 ~6e-8: the accumulators grow by ~6e-8 per step. */
__attribute__((target("avx512f,avx512bf16"))) static float bf16_loop(uint64_t iters) {
  __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f00), b = (__m512bh)_mm512_set1_epi16(0x3380);
#define STEP(k) acc##k = _mm512_dpbf16_ps(acc##k, a, b);
  ACC(DECL)
  for (uint64_t i = 0; i < iters; i++) {
    ACC(STEP)
  }
#undef STEP
  __m512 s = _mm512_setzero_ps();
  ACC(SUM)
  return _mm512_reduce_add_ps(s);
}

int main(int argc, char **argv) {
  int trials = 8;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--trials") == 0 && i + 1 < argc)
      trials = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_peak_bf16 [--trials N]\n");
      return 2;
    }
  }
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bf16")) {
    printf("{\"fma_gflops\": null, \"bf16_gflops\": null, \"note\": \"no avx512bf16\"}\n");
    return 0;
  }
  const uint64_t iters = 10000000;
  double best_fma = 0, best_bf16 = 0;
  volatile float sink = 0;
  for (int t = 0; t < trials; t++) {
    double t0 = now_s();
    sink += fma_loop(iters);
    double t1 = now_s();
    sink += bf16_loop(iters);
    double t2 = now_s();
    double fma = (double)iters * 24 * 32 / (t1 - t0) / 1e9;
    double bf = (double)iters * 24 * 64 / (t2 - t1) / 1e9;
    best_fma = fma > best_fma ? fma : best_fma;
    best_bf16 = bf > best_bf16 ? bf : best_bf16;
  }
  printf("{\"fma_gflops\": %.1f, \"bf16_gflops\": %.1f, \"ratio\": %.2f, \"trials\": %d}\n",
         best_fma, best_bf16, best_bf16 / best_fma, trials);
  return 0;
}

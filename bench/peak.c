/*
 * peak.c: the FMA peak of this machine, in GFLOP/s, for 1..N threads.
 *
 *   peak [--threads 1,2] [--seconds S] [--trials N] [--isa avx2]
 *
 * Each thread runs a loop of fused multiply-adds on 24 independent vector
 * accumulators (an FMA has a latency of 4 cycles and two FMA units issue two
 * per cycle, so at least 8 independent chains are needed to keep both busy;
 * 24 leaves no doubt). One FMA of a 16-float vector counts 32 FLOPs. The
 * accumulators converge to a fixed point (acc = acc * a + b with |a| < 1), so
 * no denormals or infinities slow anything down.
 *
 * The AVX-512 loop is compiled with a target attribute and chosen at run time
 * (__builtin_cpu_supports), with AVX2+FMA and scalar fallbacks, so the file
 * builds with plain -O2; --isa avx2 takes the AVX2 loop on an AVX-512 CPU
 * (the ceiling of an x86-64-v3 build here: docs/targets.md). Each trial runs all threads for about
 * --seconds (after one shorter untimed trial). The peak for each thread count is the best trial:
 * the machine is shared and noisy, and other processes only ever lower a trial's rate, so the
 * maximum is the estimate of the ceiling (the median is printed beside it).
 *
 * Output: one JSON line per thread count,
 *   {"threads": 1, "isa": "avx512f", "gflops": 229.1, "median": 221.0, "trials": [..]}
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <immintrin.h>

#define NACC 24
#define MAX_THREADS 256
#define MAX_TRIALS 64

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Each kernel runs `iters` iterations of NACC FMAs and returns a value that
   depends on every accumulator, so nothing is optimized away. Returns the
   FLOPs done through *flops. */
__attribute__((target("avx512f"))) static float fma_avx512(uint64_t iters, double *flops) {
  __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  /* 24 named accumulators (an array tempts the compiler to keep some in
     memory); without -ffast-math it may not reassociate the chains. */
  /* clang-format off */
#define ACC(X) \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) \
  X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)
/* clang-format on */
#define DECL(k) __m512 acc##k = _mm512_set1_ps((float)(k) * 1e-3f);
#define STEP(k) acc##k = _mm512_fmadd_ps(acc##k, a, b);
#define SUM(k) s = _mm512_add_ps(s, acc##k);
  ACC(DECL)
  for (uint64_t i = 0; i < iters; i++) {
    ACC(STEP)
  }
  __m512 s = _mm512_setzero_ps();
  ACC(SUM)
#undef ACC
#undef DECL
#undef STEP
#undef SUM
  *flops = (double)iters * NACC * 16 * 2;
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma_avx2(uint64_t iters, double *flops) {
  __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  /* 12 named accumulators, as above (an array of them stayed in memory:
     a fifth of the peak); 12 of the 16 ymm registers, 8 are needed. */
  /* clang-format off */
#define ACC(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
/* clang-format on */
#define DECL(k) __m256 acc##k = _mm256_set1_ps((float)(k) * 1e-3f);
#define STEP(k) acc##k = _mm256_fmadd_ps(acc##k, a, b);
#define SUM(k) s = _mm256_add_ps(s, acc##k);
  ACC(DECL)
  for (uint64_t i = 0; i < iters; i++) {
    ACC(STEP)
  }
  __m256 s = _mm256_setzero_ps();
  ACC(SUM)
#undef ACC
#undef DECL
#undef STEP
#undef SUM
  float out[8], r = 0;
  _mm256_storeu_ps(out, s);
  for (int k = 0; k < 8; k++)
    r += out[k];
  *flops = (double)iters * 12 * 8 * 2;
  return r;
}

static float fma_scalar(uint64_t iters, double *flops) {
  float acc[8];
  for (int k = 0; k < 8; k++)
    acc[k] = (float)k * 1e-3f;
  for (uint64_t i = 0; i < iters; i++)
    for (int k = 0; k < 8; k++)
      acc[k] = acc[k] * 0.999999f + 1e-7f;
  *flops = (double)iters * 8 * 2;
  return acc[0] + acc[7];
}

typedef float (*kernel_fn)(uint64_t, double *);

typedef struct {
  kernel_fn kernel;
  uint64_t iters;
  pthread_barrier_t *barrier;
  double flops, seconds;
  float sink;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  pthread_barrier_wait(w->barrier);
  double t0 = now_s();
  w->sink = w->kernel(w->iters, &w->flops);
  w->seconds = now_s() - t0;
  return NULL;
}

/* All threads start together; the rate is the sum of the threads' FLOPs over
   the slowest thread's time (what a parallel layer would see). */
static double run_trial(kernel_fn kernel, int nthreads, uint64_t iters) {
  pthread_t tid[MAX_THREADS];
  worker w[MAX_THREADS];
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
  for (int t = 0; t < nthreads; t++) {
    w[t] = (worker){.kernel = kernel, .iters = iters, .barrier = &barrier};
    if (pthread_create(&tid[t], NULL, work, &w[t]) != 0) {
      fprintf(stderr, "peak: pthread_create failed\n");
      exit(1);
    }
  }
  double flops = 0, secs = 0;
  for (int t = 0; t < nthreads; t++) {
    pthread_join(tid[t], NULL);
    flops += w[t].flops;
    secs = w[t].seconds > secs ? w[t].seconds : secs;
    if (w[t].sink == 12345.f) /* never true; keeps the result alive */
      putchar(' ');
  }
  pthread_barrier_destroy(&barrier);
  return flops / secs / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *threads_list = "1,2";
  double seconds = 0.2;
  int trials = 10;
  bool avx2_only = false;
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--threads") == 0 && v)
      threads_list = v, i++;
    else if (strcmp(argv[i], "--seconds") == 0 && v)
      seconds = atof(v), i++;
    else if (strcmp(argv[i], "--trials") == 0 && v)
      trials = atoi(v), i++;
    else if (strcmp(argv[i], "--isa") == 0 && v && strcmp(v, "avx2") == 0)
      avx2_only = true, i++;
    else {
      fprintf(stderr, "usage: peak [--threads 1,2] [--seconds S] [--trials N] [--isa avx2]\n");
      return 1;
    }
  }
  if (trials < 1 || trials > MAX_TRIALS || seconds <= 0) {
    fprintf(stderr, "peak: --trials must be 1..%d and --seconds > 0\n", MAX_TRIALS);
    return 1;
  }

  kernel_fn kernel = fma_scalar;
  const char *isa = "scalar";
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && !avx2_only)
    kernel = fma_avx512, isa = "avx512f";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    kernel = fma_avx2, isa = "avx2+fma";

  /* Calibrate on one thread: iterations for about `seconds`. */
  double flops;
  uint64_t iters = 1u << 16;
  for (;;) {
    double t0 = now_s();
    kernel(iters, &flops);
    double dt = now_s() - t0;
    if (dt > 0.02 || iters > (1ull << 40)) {
      iters = (uint64_t)(iters * (seconds / (dt > 1e-9 ? dt : 1e-9)));
      break;
    }
    iters *= 4;
  }
  if (iters < 1)
    iters = 1;

  char list[256];
  snprintf(list, sizeof list, "%s", threads_list);
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    int n = atoi(tok);
    if (n < 1 || n > MAX_THREADS) {
      fprintf(stderr, "peak: bad thread count '%s'\n", tok);
      return 1;
    }
    double r[MAX_TRIALS], sorted[MAX_TRIALS];
    run_trial(kernel, n, iters / 4 + 1); /* untimed: wake the cores up */
    for (int t = 0; t < trials; t++)
      r[t] = sorted[t] = run_trial(kernel, n, iters);
    qsort(sorted, (size_t)trials, sizeof *sorted, cmp_double);
    printf("{\"threads\": %d, \"isa\": \"%s\", \"gflops\": %.2f, \"median\": %.2f, "
           "\"trials\": [",
           n, isa, sorted[trials - 1], sorted[trials / 2]);
    for (int t = 0; t < trials; t++)
      printf(t ? ", %.2f" : "%.2f", r[t]);
    printf("]}\n");
    fflush(stdout);
  }
  return 0;
}

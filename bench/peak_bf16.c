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
 * A third loop, where the CPU has AVX512-VNNI, runs `vpdpbusd` with 16
 * accumulators (16 lanes of four u8 x s8 products added to an int32 accumulator:
 * 128 int8 OPs), the instruction of the int8 kernel (backend/int8.c).
 *
 * Where the CPU has AMX (CPUID: AMX-TILE, AMX-BF16, AMX-INT8) and Linux
 * grants the tile state, two more loops run the tile multiplies that
 * backend/amx.c uses, as it uses them: four 16 x 16 accumulator tiles, two
 * A and two B tiles reloaded from L1 each step (tileloadd), four
 * `tdpbf16ps` (16 x 16 x 32 bf16 products, 16,384 FLOPs each) or `tdpbusd`
 * (16 x 16 x 64 u8 x s8 products, 32,768 int8 OPs each) per step.
 *
 * Output: one JSON line,
 *   {"fma_gflops": 74.0, "bf16_gflops": 39.8, "ratio": 0.54, "vnni_gops": 160.0,
 *    "amx_bf16_gflops": 2500.0, "amx_int8_gops": 5000.0, "trials": N}
 * (the amx fields null where there is no AMX, vnni_gops where no VNNI).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* clang-format off */
#define ACC(X) \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) \
  X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)
#define ACC16(X) \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
/* clang-format on */
#define DECL(k) __m512 acc##k = _mm512_set1_ps(1e-3f * (float)(k));
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

/* u8 1 times s8 1, four per lane: the accumulators grow by 4 per step.
   16 accumulators, not 24: with 24 GCC 12 copies accumulators between
   registers (vmovdqa32) inside the loop, which took half the measured peak
   on Zen 4 (217 GOP/s against 470 with 16). */
#define IDECL(k) __m512i iacc##k = _mm512_set1_epi32(k);
#define ISUM(k) s = _mm512_add_epi32(s, iacc##k);
__attribute__((target("avx512f,avx512vnni"))) static int vnni_loop(uint64_t iters) {
  __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1);
#define STEP(k) iacc##k = _mm512_dpbusd_epi32(iacc##k, a, b);
  ACC16(IDECL)
  for (uint64_t i = 0; i < iters; i++) {
    ACC16(STEP)
  }
#undef STEP
  __m512i s = _mm512_setzero_si512();
  ACC16(ISUM)
  return _mm512_reduce_add_epi32(s);
}

/* ---------------------------------------------------------------- AMX */

/* CPUID.(7,0).EDX bits 22, 24, 25 (AMX-BF16, AMX-TILE, AMX-INT8), and
   Linux's permission for the tile state (arch_prctl ARCH_REQ_XCOMP_PERM). */
static int have_amx(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || (d & 0x3400000u) != 0x3400000u)
    return 0;
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

static unsigned char amx_a[2][1024] __attribute__((aligned(64)));
static unsigned char amx_b[2][1024] __attribute__((aligned(64)));
static float amx_c[256] __attribute__((aligned(64)));

/* Palette 1, tiles 0-7 of 16 rows x 64 bytes. */
__attribute__((target("amx-tile"))) static void amx_config(void) {
  static unsigned char cfg[64] __attribute__((aligned(64)));
  cfg[0] = 1;
  for (int t = 0; t < 8; t++)
    cfg[16 + 2 * t] = 64, cfg[48 + t] = 16;
  _tile_loadconfig(cfg);
}

#define AMX_STEP(OP)                                                                               \
  _tile_loadd(4, amx_a[0], 64);                                                                    \
  _tile_loadd(5, amx_a[1], 64);                                                                    \
  _tile_loadd(6, amx_b[0], 64);                                                                    \
  _tile_loadd(7, amx_b[1], 64);                                                                    \
  OP(0, 4, 6);                                                                                     \
  OP(1, 5, 6);                                                                                     \
  OP(2, 4, 7);                                                                                     \
  OP(3, 5, 7);

/* int8: tdpbusd, else tdpbf16ps (a predictable branch per step). */
__attribute__((target("amx-tile,amx-bf16,amx-int8"))) static float amx_loop(uint64_t iters,
                                                                            int int8) {
  amx_config();
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (uint64_t i = 0; i < iters; i++) {
    if (int8) {
      AMX_STEP(_tile_dpbusd)
    } else {
      AMX_STEP(_tile_dpbf16ps)
    }
  }
  _tile_stored(0, amx_c, 64);
  _tile_release();
  return amx_c[0];
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
  const uint64_t iters = 10000000, amx_iters = 200000;
  int amx = have_amx(), vnni = __builtin_cpu_supports("avx512vnni");
  memset(amx_a, 1, sizeof amx_a); /* bf16 0x0101 and u8 1: tiny products */
  memset(amx_b, 1, sizeof amx_b);
  double best_fma = 0, best_bf16 = 0, best_vnni = 0, best_amx16 = 0, best_amx8 = 0;
  volatile float sink = 0;
  volatile int isink = 0;
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
    if (vnni) {
      t0 = now_s();
      isink += vnni_loop(iters);
      t1 = now_s();
      double v = (double)iters * 16 * 128 / (t1 - t0) / 1e9;
      best_vnni = v > best_vnni ? v : best_vnni;
    }
    if (amx) {
      t0 = now_s();
      sink += amx_loop(amx_iters, 0);
      t1 = now_s();
      sink += amx_loop(amx_iters, 1);
      t2 = now_s();
      double a16 = (double)amx_iters * 4 * 16384 / (t1 - t0) / 1e9;
      double a8 = (double)amx_iters * 4 * 32768 / (t2 - t1) / 1e9;
      best_amx16 = a16 > best_amx16 ? a16 : best_amx16;
      best_amx8 = a8 > best_amx8 ? a8 : best_amx8;
    }
  }
  char a16[32] = "null", a8[32] = "null", vn[32] = "null";
  if (vnni)
    snprintf(vn, sizeof vn, "%.1f", best_vnni);
  if (amx) {
    snprintf(a16, sizeof a16, "%.1f", best_amx16);
    snprintf(a8, sizeof a8, "%.1f", best_amx8);
  }
  printf("{\"fma_gflops\": %.1f, \"bf16_gflops\": %.1f, \"ratio\": %.2f, \"vnni_gops\": %s, "
         "\"amx_bf16_gflops\": %s, \"amx_int8_gops\": %s, \"trials\": %d}\n",
         best_fma, best_bf16, best_bf16 / best_fma, vn, a16, a8, trials);
  return 0;
}

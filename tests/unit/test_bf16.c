/*
 * test_bf16.c: --precision=bf16 (backend/bf16.c, docs/precision.md).
 *
 * rounding: be_bf16_round against a plain reference written here from the
 * definition (the two bf16 neighbours of x, the nearer one, the one with an
 * even last bit on a tie, computed in double), on special values, ties,
 * subnormals, overflow, NaN payloads, and 2^22 random bit patterns.
 *
 * kernels: every conv and linear kernel (NCHW conv, 1x1 GEMM, blocked
 * direct conv, grouped and depthwise convs, linear) compiled with
 * precision bf16 on weights that are already bf16 values (rounded by the
 * reference), so the .so's rounding changes nothing and the output must
 * match ref_ops.c at the fp32 bound: a weight read from the wrong place or
 * widened wrongly shows. The weight bytes must be about half of fp32's.
 * Winograd layers hold the transformed weights in bf16, which are not bf16
 * values of the originals: checked at the documented 2e-2 * max|ref| (they
 * use F(2x2) under bf16: F(4x4) gave 4.2% here, F(2x2) 0.25%).
 *
 * amx, dpbf16: the AMX conv (backend/amx.c) and its vdpbf16ps variant
 * (dpbf16, the same file: --tune amx=0, or a CPU such as znver4 with
 * AVX512_BF16 and no AMX) on many shapes, inputs and weights bf16 values,
 * at the fp32 bound; skipped on a CPU without AMX-BF16 / AVX512_BF16. The
 * dpbf16 code is checked to contain vdpbf16ps and no tile instruction.
 *
 * blob: external weights of one precision are refused by a .so of the other.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backend/backend_internal.h"
#include "backend_harness.h"
#include "passes/passes.h"

/* ---------------------------------------------------------------- rounding */

static uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float float_of(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* The reference: NaN -> some NaN; otherwise the nearer of the bf16 values
   just below and above |x| in magnitude (truncation, and truncation plus
   one unit of the 16th bit, which carries into the exponent or to infinity
   as it should), ties to the one whose lowest kept bit is 0. */
static uint16_t ref_round(float x) {
  if (isnan(x))
    return 0x7fc0;
  uint32_t u = bits_of(x);
  uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
  if ((u & 0xffffu) == 0 || isinf(x))
    return lo;
  double dx = fabs((double)x);
  double dlo = fabs((double)float_of((uint32_t)lo << 16));
  /* past the largest finite value, hi stands for 2^128 (the value with an
     unbounded exponent; rounding to it means overflow to infinity) */
  double dhi =
      (hi & 0x7f80) == 0x7f80 ? ldexp(1.0, 128) : fabs((double)float_of((uint32_t)hi << 16));
  double elo = dx - dlo, ehi = dhi - dx;
  if (elo < ehi)
    return lo;
  if (ehi < elo)
    return hi;
  return (lo & 1) ? hi : lo;
}

static void check_round(float x) {
  uint16_t got = be_bf16_round(x), want = ref_round(x);
  if (isnan(x)) {
    float w = be_bf16_widen(got);
    cr_assert(isnan(w), "NaN 0x%08x rounded to 0x%04x, not a NaN", bits_of(x), got);
    cr_assert_eq(got >> 15, bits_of(x) >> 31, "NaN 0x%08x lost its sign", bits_of(x));
    return;
  }
  cr_assert_eq(got, want, "%.9g (0x%08x): got 0x%04x, reference 0x%04x", x, bits_of(x), got, want);
}

Test(rounding, special_values_ties_and_overflow) {
  const uint32_t cases[] = {
      0x00000000, 0x80000000,             /* +-0 */
      0x3f800000, 0xbf800000,             /* +-1 */
      0x3f808000,                         /* 1 + 2^-8: tie, down to even 1.0 */
      0x3f818000,                         /* 1 + 3*2^-8: tie, up to even 1 + 2^-6 */
      0x3f808001, 0x3f807fff,             /* just above / below the tie */
      0xbf818000,                         /* negative tie */
      0x7f800000, 0xff800000,             /* +-inf */
      0x7f7fffff, 0xff7fffff,             /* largest finite: rounds to +-inf */
      0x7f7f7fff,                         /* just below the top tie: stays finite */
      0x7f7f8000,                         /* tie at the top: the even one is inf */
      0x00000001, 0x00008000, 0x00018000, /* subnormals, ties among them */
      0x007fffff,                         /* largest subnormal: to the smallest normal */
      0x7f800001, 0xff800001,             /* NaN whose payload is all in the low half */
      0x7fc00000, 0x7fffffff, 0xffc00000, /* quiet NaNs */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_round(float_of(cases[i]));
  cr_assert_eq(be_bf16_round(float_of(0x3f808000)), 0x3f80);
  cr_assert_eq(be_bf16_round(float_of(0x3f818000)), 0x3f82);
  cr_assert_eq(be_bf16_round(float_of(0x7f7fffff)), 0x7f80);
}

Test(rounding, random_bit_patterns_match_reference) {
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < (1 << 22); i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    uint32_t u = (uint32_t)(s >> 16);
    if (i & 1) /* half of them on or next to a tie */
      u = (u & 0xffff0000u) | (0x8000u + (uint32_t)(i % 5) - 2u);
    check_round(float_of(u));
  }
}

Test(rounding, widen_is_exact_and_the_array_form_agrees) {
  for (uint32_t h = 0; h < 0x10000; h++) {
    float f = be_bf16_widen((uint16_t)h);
    cr_assert_eq(bits_of(f), h << 16);
    if (!isnan(f))
      cr_assert_eq(be_bf16_round(f), h, "0x%04x does not round to itself", h);
  }
  float src[5] = {1.0f, float_of(0x3f808000), -3.5f, INFINITY, float_of(0x7f7fffff)};
  uint16_t dst[5];
  be_bf16_round_array(src, dst, 5);
  for (int i = 0; i < 5; i++)
    cr_assert_eq(dst[i], ref_round(src[i]));
}

/* ----------------------------------------------------------------- kernels */

/* Every conv and linear weight of g rounded to bf16 by the reference. */
static int64_t round_weights(Graph *g) {
  int64_t n16 = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if ((n->op != OP_CONV2D && n->op != OP_LINEAR) || !n->params[P_WEIGHT])
      continue;
    Param *p = n->params[P_WEIGHT];
    for (int64_t k = 0; k < param_numel(p); k++)
      p->data[k] = float_of((uint32_t)ref_round(p->data[k]) << 16);
    n16 += param_numel(p);
  }
  return n16;
}

static Node *gconv(Graph *g, Node *x, int64_t oc, int64_t k, int64_t s, int64_t p, int64_t groups) {
  Node *c = op1(g, OP_CONV2D, x);
  c->attr.out_channels = oc, c->attr.groups = groups;
  c->attr.kernel[0] = c->attr.kernel[1] = k;
  c->attr.stride[0] = c->attr.stride[1] = s;
  for (int i = 0; i < 4; i++)
    c->attr.pad[i] = p;
  return fin(g, c);
}

/* One of each kernel that reads a conv or linear weight. */
static Graph *every_weight_kernel(void) {
  Graph *g = ir_graph_new("bf16_kernels");
  Node *x = input3(g, "x", 3, 17, 19);
  Node *a = conv(g, x, 10, 5, 5, 1, 2);   /* 10 channels: NCHW conv */
  Node *b = conv(g, a, 12, 1, 1, 1, 0);   /* NCHW 1x1: the GEMM */
  Node *c = conv(g, b, 32, 3, 3, 1, 1);   /* to NCHW16c */
  Node *d = conv(g, c, 48, 3, 3, 2, 1);   /* blocked direct, stride 2 */
  Node *e = conv(g, d, 48, 1, 1, 1, 0);   /* blocked pointwise */
  Node *f = gconv(g, e, 48, 3, 1, 1, 12); /* grouped, Cg 4 */
  Node *h = gconv(g, f, 48, 3, 1, 1, 48); /* depthwise */
  h->epi.act.kind = ACT_RELU;
  Node *fl = fin(g, op1(g, OP_FLATTEN, h));
  Node *fc = op1(g, OP_LINEAR, fl);
  fc->attr.out_features = 37;
  fin(g, fc);
  output(g, b);
  output(g, h);
  output(g, fc);
  return g;
}

/* Compiles g (after the layout pass) with precision bf16 for cpu (NULL:
   the host's), checks the weight bytes against fp32's, runs batch 2 and
   compares at rtol. */
static void check_bf16(Graph *g, const char *cpu, bool winograd, double rtol, int64_t n16) {
  pass_layout(g);
  ir_compact(g);
  cr_assert_eq(ir_verify(g, stderr), 0);
  int64_t all = 0;
  for (int i = 0; i < g->params.len; i++)
    all += param_numel(GRAPH_PARAM(g, i));
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  BackendOptions o = opts_for(l.so);
  o.precision = PRECISION_BF16;
  o.target_cpu = cpu;
  o.tune.winograd = winograd;
  o.tune.amx = 0; /* the widening path; AMX and dpbf16 (activations rounded too) below */
  o.tune.dpbf16 = 0;
  cr_assert_eq(compile(g, &o), 0);
  lib_open(&l, l.so);
  uint64_t wb = l.info()->weight_bytes;
  uint64_t want = (uint64_t)(n16 * 2 + (all - n16) * 4);
  cr_log_info("weights: %llu bytes (fp32: %llu)", (unsigned long long)wb,
              (unsigned long long)all * 4);
  if (!winograd) /* each tensor padded to 64 bytes */
    cr_assert(wb >= want && wb <= want + 64 * (uint64_t)g->params.len,
              "weight bytes %llu, expected %llu + padding", (unsigned long long)wb,
              (unsigned long long)want);
  run_and_compare(&l, g, 2, 1, rtol, NULL);
}

Test(kernels, every_weight_kernel_reads_bf16_weights_exactly) {
  Graph *g = every_weight_kernel();
  check_bf16(g, NULL, false, 1e-5, round_weights(g));
}

/* The widening path on a target without AVX-512 (AVX2: vpmovzxwd on ymm). */
Test(kernels, every_weight_kernel_on_x86_64_v3_without_avx512) {
  Graph *g = every_weight_kernel();
  check_bf16(g, "x86-64-v3", false, 1e-5, round_weights(g));
}

/* ResNet-sized 3x3 layers by Winograd (F(2x2) under bf16, also where fp32
   takes F(4x4)): the transformed weights are rounded, so the bound is the
   documented one. */
Test(kernels, winograd_layers_within_the_documented_bound) {
  Graph *g = ir_graph_new("bf16_winograd");
  Node *x = conv(g, input3(g, "x", 64, 28, 28), 64, 1, 1, 1, 0);
  Node *a = conv(g, x, 64, 3, 3, 1, 1);
  Node *y = conv(g, input3(g, "y", 128, 14, 14), 128, 1, 1, 1, 0);
  Node *b = conv(g, y, 128, 3, 3, 1, 1);
  output(g, a);
  output(g, b);
  check_bf16(g, NULL, true, 2e-2, round_weights(g));
}

/* ------------------------------------------------------------- AMX tiles */

/* One conv on its own input (C x H x W, read through an identity conv,
   so the conv under test reads NCHW16c): k x k, stride s, pad p
   (top/left; bottom/right p2), dilation d; with a residual input and ReLU
   when res. */
static void amx_conv(Graph *g, const char *name, int64_t C, int64_t H, int64_t W, int64_t oc,
                     int64_t k, int64_t s, int64_t p, int64_t p2, int64_t d, bool res) {
  Node *r = NULL;
  if (res) { /* a blocked residual input, made first: nodes run in order */
    char rname[64];
    snprintf(rname, sizeof rname, "%s_res", name);
    int64_t OH = (H + p + p2 - d * (k - 1) - 1) / s + 1,
            OW = (W + p + p2 - d * (k - 1) - 1) / s + 1;
    r = conv(g, input3(g, rname, oc, OH, OW), oc, 1, 1, 1, 0);
  }
  Node *c = conv_geo(g, identity_conv(g, input3(g, name, C, H, W)), oc, k, s, p, p2, d);
  if (r) {
    add_residual(g, c, r);
    c->epi.act.kind = ACT_RELU;
  }
  output(g, c);
}

/* tmpdir_new, plan, compile g with --precision=bf16 for cpu (NULL: the
   host's), AMX and dpbf16 on or off, as emit (a .so, or assembly at
   l->dir/net.s), and open the .so. */
static void build_bf16(Lib *l, Graph *g, const char *cpu, bool amx, bool dp, EmitKind emit) {
  if (!l->dir[0])
    tmpdir_new(l);
  plan(g);
  char s[160];
  snprintf(s, sizeof s, "%s/net.s", l->dir);
  BackendOptions o = opts_for(emit == EMIT_ASM ? s : l->so);
  o.emit = emit;
  o.precision = PRECISION_BF16;
  o.target_cpu = cpu;
  o.tune.amx = amx;
  o.tune.dpbf16 = dp;
  cr_assert_eq(compile(g, &o), 0, "backend_compile failed");
  if (emit == EMIT_SO)
    lib_open(l, l->so);
}

/* How many lines of l->dir/net.s name the instruction mnemonic. */
static int asm_count(const Lib *l, const char *mnemonic) {
  char path[160], line[512];
  snprintf(path, sizeof path, "%s/net.s", l->dir);
  FILE *f = fopen(path, "r");
  cr_assert(f, "no %s", path);
  int n = 0;
  while (fgets(line, sizeof line, f))
    n += strstr(line, mnemonic) != NULL;
  fclose(f);
  return n;
}

/* g compiled with --precision=bf16 on inputs and weights that are bf16
   values, for cpu (NULL: the host) with AMX on or off; its nconv convs
   must all be on `kernel` (counted for the host only) and match the
   reference at the fp32 bound on 2 threads, batch 2. dpbf16's assembly
   must have vdpbf16ps and no tile multiply. */
static void check_dot(Graph *g, int nconv, const char *kernel, const char *cpu, bool amx) {
  pass_layout(g);
  ir_compact(g);
  cr_assert_eq(ir_verify(g, stderr), 0);
  round_weights(g);
  Lib l = {0};
  if (strcmp(kernel, "dpbf16") == 0) {
    build_bf16(&l, g, cpu, amx, true, EMIT_ASM);
    int dp = asm_count(&l, "vdpbf16ps"), tiles = asm_count(&l, "tdpbf16ps");
    cr_log_info("%s: %d vdpbf16ps, %d tdpbf16ps", cpu ? cpu : "host", dp, tiles);
    cr_assert(dp >= 16 && tiles == 0, "vdpbf16ps %d, tdpbf16ps %d", dp, tiles);
  }
  build_bf16(&l, g, cpu, amx, true, EMIT_SO);
  if (!cpu)
    cr_assert_eq(count_kernel_amx(g, PRECISION_BF16, amx, kernel), nconv, "every conv on %s",
                 kernel);
  float **in = make_inputs(g, 2);
  for (int i = 0; i < g->ninputs; i++)
    for (int64_t k = 0; k < shape_numel(&g->inputs[i].node->shape) * 2; k++)
      in[i][k] = float_of((uint32_t)ref_round(in[i][k]) << 16);
  run_and_compare(&l, g, 2, 2, 1e-5, in);
}

/* The fixed shapes: 11 convs through identity convs (21 in all). */
static Graph *fixed_convs(void) {
  Graph *g = ir_graph_new("bf16_dot");
  amx_conv(g, "a", 16, 9, 11, 16, 3, 1, 1, 1, 1, false);  /* C padded to 32, one block */
  amx_conv(g, "b", 48, 7, 7, 80, 1, 1, 0, 0, 1, true);    /* 1x1, odd block count, residual */
  amx_conv(g, "c", 64, 15, 13, 32, 3, 2, 1, 1, 1, false); /* stride 2: phase planes */
  amx_conv(g, "d", 32, 12, 10, 48, 3, 1, 2, 2, 2, true);  /* dilation 2 */
  amx_conv(g, "e", 16, 23, 21, 64, 7, 2, 3, 3, 1, false); /* 7x7 stride 2 */
  amx_conv(g, "f", 32, 14, 14, 32, 1, 2, 0, 0, 1, false); /* 1x1 stride 2: one plane */
  amx_conv(g, "h", 32, 6, 40, 96, 5, 1, 2, 1, 1, false);  /* 5x5, asymmetric pad, wide */
  amx_conv(g, "i", 48, 57, 5, 16, 3, 1, 0, 0, 1, false);  /* tall: many bands */
  /* stems on NCHW graph inputs: the kernel columns folded into the sum */
  output(g, conv_geo(g, input3(g, "s1", 3, 29, 31), 64, 7, 2, 3, 3, 1));
  output(g, conv_geo(g, input3(g, "s2", 3, 20, 18), 32, 3, 1, 1, 1, 1));
  output(g, conv_geo(g, input3(g, "s3", 1, 12, 12), 16, 5, 1, 0, 0, 1));
  return g;
}

/* 24 convs of random geometry (seeded): rectangular kernels 1-5, strides
   1-3 per axis, asymmetric padding, dilation 1-2, 16-112 input channels
   through an identity conv or 1-10 on the NCHW input, 16-112 outputs;
   *n: the convs in all. */
static Graph *random_convs(int *n) {
  Graph *g = ir_graph_new("bf16_dot_random");
  uint32_t r = 2024;
#define RND(n) ((r = r * 1664525u + 1013904223u), (int64_t)((r >> 8) % (uint32_t)(n)))
  for (int i = 0; i < 24; i++) {
    int64_t kh = 1 + RND(5), kw = 1 + RND(5), sh = 1 + RND(3), sw = 1 + RND(3);
    int64_t dh = 1 + RND(2), dw = 1 + RND(2), H = 4 + RND(20), W = 4 + RND(20);
    int64_t small = RND(3) == 0, C = small ? 1 + RND(10) : 16 * (1 + RND(7));
    if (small && C * kw > 32)
      C = 32 / kw;
    int64_t pad[4] = {RND(kh), RND(kw), RND(kh), RND(kw)};
    if (H + pad[0] + pad[2] < dh * (kh - 1) + 1 || W + pad[1] + pad[3] < dw * (kw - 1) + 1) {
      i--;
      continue;
    }
    char name[8];
    snprintf(name, sizeof name, "x%d", i);
    Node *x = input3(g, name, C, H, W);
    if (!small)
      x = identity_conv(g, x);
    Node *c = op1(g, OP_CONV2D, x);
    c->attr.out_channels = 16 * (1 + RND(7));
    c->attr.kernel[0] = kh, c->attr.kernel[1] = kw;
    c->attr.stride[0] = sh, c->attr.stride[1] = sw;
    c->attr.dilation[0] = dh, c->attr.dilation[1] = dw;
    memcpy(c->attr.pad, pad, sizeof pad);
    output(g, fin(g, c));
  }
#undef RND
  *n = 0;
  for (int i = 0; i < g->nodes.len; i++)
    *n += GRAPH_NODE(g, i)->op == OP_CONV2D;
  return g;
}

/* The convs of fixed_convs on AMX (amx.c) with --precision=bf16, on inputs
   and weights that are bf16 values (rounded by the reference): every
   product is then exact in fp32 and the output must match ref_ops.c at
   the fp32 bound, on 2 threads, batch 2. */
Test(amx, every_conv_shape_matches_the_reference) {
  if (!host_has("amx-tile,amx-bf16"))
    cr_skip_test("this CPU has no AMX-BF16");
  check_dot(fixed_convs(), 21, "amx", NULL, true);
}

Test(amx, random_conv_geometries_match_the_reference) {
  if (!host_has("amx-tile,amx-bf16"))
    cr_skip_test("this CPU has no AMX-BF16");
  int n;
  Graph *g = random_convs(&n);
  check_dot(g, n, "amx", NULL, true);
}

/* The same convs by vdpbf16ps (dpbf16) with AMX off: products exact, sums
   in fp32, the fp32 bound. */
Test(dpbf16, every_conv_shape_matches_the_reference) {
  if (!host_has("avx512bf16"))
    cr_skip_test("this CPU has no AVX512_BF16");
  check_dot(fixed_convs(), 21, "dpbf16", NULL, false);
}

Test(dpbf16, random_conv_geometries_match_the_reference) {
  if (!host_has("avx512bf16"))
    cr_skip_test("this CPU has no AVX512_BF16");
  int n;
  Graph *g = random_convs(&n);
  check_dot(g, n, "dpbf16", NULL, false);
}

/* For Zen 4 (znver4: AVX512_BF16, no AMX) with the default tuning the
   probe finds vdpbf16ps and no tiles: dpbf16's code, which runs on this
   host too when it has AVX512_BF16 (Zen 4's other extensions are a subset
   of Sapphire Rapids'). */
Test(dpbf16, znver4_gets_vdpbf16ps) {
  if (!host_has("avx512bf16,avx512vbmi2,gfni"))
    cr_skip_test("this CPU cannot run znver4 code with AVX512_BF16");
  check_dot(fixed_convs(), 21, "dpbf16", "znver4", true);
}

/* On a dpbf16 target the 3x3 stride-1 convs Winograd accepts run there
   (kernels.c): F(4x4) from 28x28 with its transformed weights kept fp32
   (rounded to bf16 they cost 4% of max|out|), F(2x2) at 14x14 with bf16
   ones. The weight bytes say which was stored; the outputs must hold the
   documented bound (the 1x1 convs in front round their inputs). */
Test(dpbf16, winograd_takes_its_convs_with_f4x4_weights_in_fp32) {
  if (!host_has("avx512bf16"))
    cr_skip_test("this CPU has no AVX512_BF16");
  Graph *g = ir_graph_new("bf16_dp_winograd");
  Node *a = conv(g, identity_conv(g, input3(g, "x", 64, 28, 28)), 64, 3, 3, 1, 1);
  Node *b = conv(g, identity_conv(g, input3(g, "y", 128, 14, 14)), 128, 3, 3, 1, 1);
  output(g, a);
  output(g, b);
  pass_layout(g);
  ir_compact(g);
  cr_assert_eq(ir_verify(g, stderr), 0);
  /* identity 1x1 weights bf16 (dpbf16), F(4x4) 64x64x36 fp32, F(2x2)
     128x128x16 bf16, biases fp32 */
  uint64_t want =
      (64 * 64 + 128 * 128) * 2 + 64 * 64 * 36 * 4 + 128 * 128 * 16 * 2 + (64 + 128) * 2 * 4;
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  BackendOptions o = opts_for(l.so);
  o.precision = PRECISION_BF16;
  o.tune.amx = 0;
  o.tune.winograd = true; /* as cnncc -O2 */
  cr_assert_eq(compile(g, &o), 0);
  lib_open(&l, l.so);
  uint64_t wb = l.info()->weight_bytes;
  cr_assert(wb >= want && wb <= want + 64 * (uint64_t)g->params.len,
            "weight bytes %llu, expected %llu + padding", (unsigned long long)wb,
            (unsigned long long)want);
  run_and_compare(&l, g, 2, 1, 2e-2, NULL);
}

/* A squeeze-excitation gate fused into the 1x1 conv that reads it
   (passes/fuse_gate.c), under bf16: AMX and dpbf16 multiply each
   16-channel vector by its gate as they convert the band, the widening
   kernel multiplies the weights. Inputs and weights are bf16 values and
   the gates powers of two (1/8 to 2), so every product stays exact: the
   fp32 bound, every path the host has (0 widening, 1 dpbf16, 2 AMX). */
Test(amx, a_gate_fused_into_a_conv_is_applied_on_every_path) {
  static const char *kernel[3] = {"direct16", "dpbf16", "amx"};
  for (int path = 0; path < 3; path++) {
    if ((path == 1 && !host_has("avx512bf16")) || (path == 2 && !host_has("amx-tile,amx-bf16")))
      continue;
    Graph *g = ir_graph_new("bf16_gate");
    gated_conv1x1(g, 64, 11, 6, 48);
    round_weights(g);
    Lib l = {0};
    build_bf16(&l, g, NULL, path == 2, path == 1, EMIT_SO);
    if (path) /* the host's choice when it has the path */
      cr_assert_eq(count_kernel_amx(g, PRECISION_BF16, path == 2, kernel[path]), 2,
                   "both convs on %s", kernel[path]);
    float **in = make_inputs(g, 2);
    for (int64_t k = 0; k < 2 * 64 * 11 * 6; k++)
      in[0][k] = float_of((uint32_t)ref_round(in[0][k]) << 16);
    for (int64_t k = 0; k < 2 * 64; k++)
      in[1][k] = ldexpf(1.0f, (int)(k % 5) - 3);
    run_and_compare(&l, g, 2, 2, 1e-5, in);
  }
}

/* ------------------------------------------------------------ the blob */

/* An fp32 weights file does not load into a bf16 .so, nor the other way
   round (the build id hashes the precision); each loads into its own. */
Test(blob, external_weights_of_the_other_precision_are_refused) {
  Graph *g = ir_graph_new("bf16_blob");
  Node *c = conv(g, input3(g, "x", 3, 8, 8), 4, 3, 3, 1, 1);
  output(g, c);
  plan(g);
  Lib l[2];
  memset(l, 0, sizeof l);
  char w[2][200], err[512];
  for (int k = 0; k < 2; k++) {
    tmpdir_new(&l[k]);
    BackendOptions o = opts_for(l[k].so);
    o.external_weights = true;
    o.precision = k ? PRECISION_BF16 : PRECISION_FP32;
    cr_assert_eq(compile(g, &o), 0);
    lib_open(&l[k], l[k].so);
    snprintf(w[k], sizeof w[k], "%s.weights", l[k].so);
  }
  for (int k = 0; k < 2; k++) {
    cr_assert_null(l[k].create(w[1 - k], err, sizeof err), "%s blob loaded", k ? "fp32" : "bf16");
    cr_assert(strstr(err, "another network or build"), "%s", err);
    cnn_model *m = l[k].create(w[k], err, sizeof err);
    cr_assert(m, "%s", err);
    l[k].destroy(m);
  }
  for (int k = 0; k < 2; k++)
    lib_close(&l[k]);
  ir_graph_free(g);
}

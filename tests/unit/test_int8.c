/*
 * test_int8.c: --precision=int8's kernel (backend/int8.c, docs/precision.md).
 *
 * kernels: each case gives a quantized layer (Node.quant set here, as the
 * quantize pass would) weights and an input that are already on the int8
 * grids: every output channel's weights are integers in [-127, 127] times a
 * power of two, with one of them +-127 (so the per-channel scale the
 * packer derives is exactly that power of two), and the input values are
 * (q - z) * s for integer q in [0, 255] and the layer's own s (a power of
 * two) and z. Quantization is then the identity and the int32 products
 * exact, so the .so must match the plain fp32 reference (ref_ops.c) at the
 * fp32 bound (1e-5): a weight or input byte read from the wrong place, a
 * wrong zero-point correction or a wrong padding value shows. Cases: an
 * NCHW input with stride, padding and a channel count that is not a
 * multiple of 16 (the scalar quantizer, NCHW stores of a partial block);
 * a blocked input (the vector quantizer, taps in (kh, kw, c) order) with a
 * fused ReLU; a linear layer. The blocked input comes from an fp32 1x1
 * identity conv, which copies the grid values exactly.
 *
 * target: without AVX512-VNNI (x86-64-v3) the vpmaddwd path gives the
 * same exact results; a CPU without AVX2 is refused with a message.
 *
 * calibration: the entropy method's choice (driver/calibrate.c) on
 * histograms whose answer is known: a uniform one keeps its whole range
 * (its quantization loses nothing, clipping piles mass on the end bins);
 * a bulk near 0 with rare far outliers is clipped to near the bulk.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backend/backend_internal.h"
#include "backend_harness.h"
#include "driver/driver.h"
#include "passes/passes.h"

static uint32_t rng = 12345;
static int next_int(int lo, int hi) { /* uniform in [lo, hi] */
  rng = rng * 1664525u + 1013904223u;
  return lo + (int)((rng >> 8) % (uint32_t)(hi - lo + 1));
}

/* n's weights on the int8 grid: integers times 2^-(5 + oc % 3), one +-127
   per output channel. */
static void grid_weights(Node *n) {
  Param *p = n->params[P_WEIGHT];
  int64_t oc = p->dims[0], k = param_numel(p) / oc;
  for (int64_t o = 0; o < oc; o++) {
    float s = ldexpf(1.0f, -(5 + (int)(o % 3)));
    for (int64_t i = 0; i < k; i++)
      p->data[o * k + i] = (float)next_int(-127, 127) * s;
    p->data[o * k + next_int(0, (int)k - 1)] = (o % 2 ? 127.0f : -127.0f) * s;
  }
}

static void mark(Node *n, float s, int z) { n->quant = true, n->qscale = s, n->qzero = z; }

/* in (numel values per sample, batch samples) on the grid of (s, z). */
static void grid_input(float *in, int64_t numel, float s, int z) {
  for (int64_t i = 0; i < numel; i++)
    in[i] = (float)(next_int(0, 255) - z) * s;
}

static Graph *int8_cases(void) {
  Graph *g = ir_graph_new("int8_kernels");
  Node *x = input3(g, "x", 3, 17, 19);
  Node *a = conv(g, x, 10, 5, 5, 2, 2); /* NCHW in, NCHW out, 10 channels */
  grid_weights(a);
  mark(a, 0.125f, 100);
  Node *y = input3(g, "y", 32, 9, 11);
  Node *id = conv(g, y, 32, 1, 1, 1, 0); /* fp32 identity: y, blocked */
  Param *w = id->params[P_WEIGHT];
  memset(w->data, 0, sizeof(float) * (size_t)param_numel(w));
  for (int i = 0; i < 32; i++)
    w->data[i * 32 + i] = 1.0f;
  memset(id->params[P_BIAS]->data, 0, 32 * sizeof(float));
  Node *b = conv(g, id, 48, 3, 3, 1, 1); /* blocked in and out, ReLU */
  b->epi.act.kind = ACT_RELU;
  grid_weights(b);
  mark(b, 0.25f, 7);
  Node *v = input1(g, "v", 70);
  Node *fc = op1(g, OP_LINEAR, v);
  fc->attr.out_features = 37;
  fin(g, fc);
  grid_weights(fc);
  mark(fc, 0.0625f, 200);
  output(g, a);
  output(g, b);
  output(g, fc);
  return g;
}

/* int8_cases compiled for cpu (NULL: the host) with the vpdpbusd or
   vpmaddwd kernel (AMX off), run on grid values: exact. */
static void grid_cases(const char *cpu) {
  Graph *g = int8_cases();
  pass_layout(g);
  ir_compact(g);
  cr_assert_eq(ir_verify(g, stderr), 0);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_CONV2D), 2, "b must read a blocked input");
  Lib l = {0};
  lib_build_for(&l, g, PRECISION_INT8, cpu, false); /* int8.c's kernel; AMX tiles below */
  float **in = make_inputs(g, 2);
  const float s[3] = {0.125f, 0.25f, 0.0625f};
  const int z[3] = {100, 7, 200};
  for (int i = 0; i < 3; i++)
    grid_input(in[i], 2 * shape_numel(&g->inputs[i].node->shape), s[i], z[i]);
  run_and_compare(&l, g, 2, 1, 1e-5, in);
}

Test(kernels, quantized_layers_on_grid_values_match_fp32_exactly) {
  if (!host_has("avx512vnni"))
    cr_skip_test("this host has no AVX512-VNNI");
  grid_cases(NULL);
}

/* Without VNNI (x86-64-v3: AVX2) the products go through vpmaddwd on
   bytes widened to 16 bits: the same exact sums. */
Test(kernels, the_avx2_path_matches_fp32_exactly) {
  if (!host_has("avx2"))
    cr_skip_test("this host has no AVX2");
  grid_cases("x86-64-v3");
}

/* The AMX kernel (amx.c, tdpbusd) on shapes of its own: every quantized
   conv reads an NCHW16c input on the grid through an identity conv (fp32,
   exact) and must match the fp32 reference exactly, as above. Cases:
   channel counts that are not multiples of 64 (the buffer pads to 64),
   stride 2 (phase planes), dilation, 7x7, 1x1 stride 2, an odd block
   count with a residual and ReLU; and stems of 1 and 3 channels on the
   NCHW input (kernel columns folded into the sum). */
Test(kernels, amx_tiles_on_grid_values_match_fp32_exactly) {
  if (!host_has("amx-tile,amx-int8"))
    cr_skip_test("this host has no AMX-INT8");
  static const struct {
    int64_t C, H, W, oc, k, s, p, p2, d;
  } cs[] = {{16, 9, 11, 16, 3, 1, 1, 1, 1},
            {48, 7, 7, 80, 1, 1, 0, 0, 1},
            {64, 15, 13, 32, 3, 2, 1, 1, 1},
            {32, 12, 10, 48, 3, 1, 2, 2, 2},
            {16, 23, 21, 64, 7, 2, 3, 3, 1},
            {96, 14, 14, 32, 1, 2, 0, 0, 1},
            /* stems, read from the NCHW input: kernel columns folded */
            {3, 29, 31, 64, 7, 2, 3, 3, 1},
            {3, 20, 18, 32, 3, 1, 1, 1, 1},
            {1, 12, 12, 16, 5, 1, 0, 0, 1}};
  enum { N = sizeof cs / sizeof cs[0] };
  Graph *g = ir_graph_new("int8_amx");
  float sc[N];
  int zp[N];
  for (int i = 0; i < N; i++) {
    char name[8];
    snprintf(name, sizeof name, "x%d", i);
    Node *r = NULL; /* case 1: a residual, an fp32 conv's output added exactly; made first */
    if (i == 1)
      r = conv(g, input3(g, "r", cs[i].oc, 7, 7), cs[i].oc, 1, 1, 1, 0);
    Node *x = input3(g, name, cs[i].C, cs[i].H, cs[i].W);
    if (cs[i].C >= 16)
      x = identity_conv(g, x);
    Node *c = conv_geo(g, x, cs[i].oc, cs[i].k, cs[i].s, cs[i].p, cs[i].p2, cs[i].d);
    sc[i] = ldexpf(1.0f, -(2 + i % 3)), zp[i] = 10 + 30 * i; /* in [0, 255] */
    grid_weights(c);
    mark(c, sc[i], zp[i]);
    if (r) {
      add_residual(g, c, r);
      c->epi.act.kind = ACT_RELU;
    }
    output(g, c);
  }
  pass_layout(g);
  ir_compact(g);
  cr_assert_eq(ir_verify(g, stderr), 0);
  cr_assert_eq(count_kernel(g, PRECISION_INT8, "amx"), N, "every quantized conv on amx.c");
  Lib l = {0};
  lib_build_for(&l, g, PRECISION_INT8, NULL, true);
  float **in = make_inputs(g, 2);
  for (int i = 0; i < g->ninputs; i++) {
    const char *nm = g->inputs[i].name;
    int c = nm[0] == 'x' ? nm[1] - '0' : -1; /* "r" stays random: fp32 */
    if (c >= 0)
      grid_input(in[i], 2 * shape_numel(&g->inputs[i].node->shape), sc[c], zp[c]);
  }
  run_and_compare(&l, g, 2, 2, 1e-5, in);
}

/* A quantized split 1x1 conv (fold-1x1's merged siblings) writing its two
   channel ranges into the slices of an elided concat, on an NCHW and a
   blocked input, with vpdpbusd and (where the host has it) AMX: exact. */
Test(kernels, split_convs_store_into_their_slices_exactly) {
  bool amx = host_has("amx-tile,amx-int8");
  if (!host_has("avx512vnni"))
    cr_skip_test("this host has no AVX512-VNNI");
  for (int run = 0; run < 3; run++) { /* NCHW; blocked; blocked on AMX */
    bool blocked = run > 0;
    if (run == 2 && !amx)
      break;
    Graph *g = ir_graph_new("int8_split");
    Node *a = identity_conv(g, input3(g, "x", 32, 9, 7));
    Node *sc = conv(g, a, 48, 1, 1, 1, 0);
    sc->split = true;
    sc->epi.act.kind = ACT_RELU;
    grid_weights(sc);
    mark(sc, 0.125f, 30);
    split_into_elided_concat(g, a, sc, blocked);
    if (run == 2)
      cr_assert_eq(count_kernel(g, PRECISION_INT8, "amx"), 1, "the split conv on amx.c");
    Lib l = {0};
    lib_build_for(&l, g, PRECISION_INT8, NULL, run == 2);
    float **in = make_inputs(g, 2);
    grid_input(in[0], 2 * 32 * 9 * 7, 0.125f, 30);
    run_and_compare(&l, g, 2, 2, 1e-5, in);
  }
}

/* A squeeze-excitation gate fused into the quantized 1x1 conv that reads
   it (passes/fuse_gate.c): the kernel multiplies each 16-channel vector by
   its gate before quantizing. Inputs are multiples of 4 grid steps and the
   gates 1, 1/2 or 1/4, so x * gate stays on the grid: exact, with the
   vpdpbusd kernel and (where the host has it) on AMX tiles. */
Test(kernels, a_gate_fused_into_a_quantized_conv_is_applied_exactly) {
  if (!host_has("avx512vnni"))
    cr_skip_test("this host has no AVX512-VNNI");
  for (int amx = 0; amx < 1 + host_has("amx-tile,amx-int8"); amx++) {
    Graph *g = ir_graph_new("int8_gate");
    Node *c = gated_conv1x1(g, 48, 7, 9, 32);
    grid_weights(c);
    mark(c, 0.125f, 128);
    if (amx) /* the host's choice; with amx off the conv is int8.c's */
      cr_assert_eq(count_kernel(g, PRECISION_INT8, "amx"), 1, "the gated conv on amx.c");
    Lib l = {0};
    lib_build_for(&l, g, PRECISION_INT8, NULL, amx);
    float **in = make_inputs(g, 2);
    for (int64_t i = 0; i < 2 * 48 * 7 * 9; i++)
      in[0][i] = (float)(4 * next_int(-32, 31)) * 0.125f;
    for (int64_t i = 0; i < 2 * 48; i++)
      in[1][i] = ldexpf(1.0f, -next_int(0, 2));
    run_and_compare(&l, g, 2, 2, 1e-5, in);
  }
}

/* SSE4.2 (x86-64-v2) has neither: refused with a message, exit 1. */
Test(target, a_cpu_without_avx2_is_refused) {
  Graph *g = int8_cases();
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  BackendOptions o = opts_for(l.so);
  o.precision = PRECISION_INT8;
  o.target_cpu = "x86-64-v2";
  cr_assert_eq(compile(g, &o), 1);
  lib_close(&l);
  ir_graph_free(g);
}

/* ------------------------------------------------------------ calibration */

#define NB 4096

Test(calibration, entropy_keeps_a_uniform_range) {
  static int64_t h[NB];
  for (int i = 0; i < NB; i++)
    h[i] = 1000;
  double lo, hi;
  calib_clip_entropy(h, NB, -1.0, 3.0, &lo, &hi);
  cr_assert_float_eq(lo, -1.0, 1e-9);
  cr_assert_float_eq(hi, 3.0, 1e-9);
}

/* A ReLU-like tensor: exponentially falling counts over the first eighth
   of [0, 8], and 3 values in the last bin: the range ends near the bulk,
   inside [0, 2], keeping all but the outliers (and their end bin). */
Test(calibration, entropy_clips_rare_outliers) {
  static int64_t h[NB];
  int64_t total = 0, kept = 0;
  for (int i = 0; i < NB / 8; i++)
    total += h[i] = (int64_t)(1e6 * exp(-i / 64.0));
  h[NB - 1] = 3, total += 3;
  double lo, hi;
  calib_clip_entropy(h, NB, 0.0, 8.0, &lo, &hi);
  cr_assert_float_eq(lo, 0.0, 1e-9);
  cr_assert(hi > 0.25 && hi < 2.0, "hi %g", hi);
  for (int i = 0; i < NB && (i + 1) * 8.0 / NB <= hi; i++)
    kept += h[i];
  cr_assert(kept >= total * 0.999, "kept %lld of %lld", (long long)kept, (long long)total);
}

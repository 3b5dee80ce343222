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
 * target: a CPU without AVX512-VNNI is refused with a message.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "backend/backend_internal.h"
#include "backend_harness.h"
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

Test(kernels, quantized_layers_on_grid_values_match_fp32_exactly) {
  char *feat = backend_host_features();
  bool vnni = strstr(feat, "+avx512vnni") != NULL;
  free(feat);
  if (!vnni)
    cr_skip_test("this host has no AVX512-VNNI");
  Graph *g = int8_cases();
  pass_layout(g);
  ir_compact(g);
  cr_assert_eq(ir_verify(g, stderr), 0);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_CONV2D), 2, "b must read a blocked input");
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  BackendOptions o = opts_for(l.so);
  o.precision = PRECISION_INT8;
  o.tune.amx = 0; /* int8.c's kernel; AMX tiles below */
  cr_assert_eq(compile(g, &o), 0);
  lib_open(&l, l.so);
  float **in = make_inputs(g, 2);
  const float s[3] = {0.125f, 0.25f, 0.0625f};
  const int z[3] = {100, 7, 200};
  for (int i = 0; i < 3; i++)
    grid_input(in[i], 2 * shape_numel(&g->inputs[i].node->shape), s[i], z[i]);
  run_and_compare(&l, g, 2, 1, 1e-5, in);
}

/* The AMX kernel (amx.c, tdpbusd) on shapes of its own: every quantized
   conv reads an NCHW16c input on the grid through an identity conv (fp32,
   exact) and must match the fp32 reference exactly, as above. Cases:
   channel counts that are not multiples of 64 (the buffer pads to 64),
   stride 2 (phase planes), dilation, 7x7, 1x1 stride 2, an odd block
   count with a residual and ReLU. */
Test(kernels, amx_tiles_on_grid_values_match_fp32_exactly) {
  char *feat = backend_host_features();
  bool amx = strstr(feat, "+amx-tile") && strstr(feat, "+amx-int8");
  free(feat);
  if (!amx)
    cr_skip_test("this host has no AMX-INT8");
  static const struct {
    int64_t C, H, W, oc, k, s, p, p2, d;
  } cs[] = {{16, 9, 11, 16, 3, 1, 1, 1, 1},  {48, 7, 7, 80, 1, 1, 0, 0, 1},
            {64, 15, 13, 32, 3, 2, 1, 1, 1}, {32, 12, 10, 48, 3, 1, 2, 2, 2},
            {16, 23, 21, 64, 7, 2, 3, 3, 1}, {96, 14, 14, 32, 1, 2, 0, 0, 1}};
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
    Node *x = identity_conv(g, input3(g, name, cs[i].C, cs[i].H, cs[i].W));
    Node *c = conv_geo(g, x, cs[i].oc, cs[i].k, cs[i].s, cs[i].p, cs[i].p2, cs[i].d);
    sc[i] = ldexpf(1.0f, -(2 + i % 3)), zp[i] = 10 + 40 * i;
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
  tmpdir_new(&l);
  plan(g);
  BackendOptions o = opts_for(l.so);
  o.precision = PRECISION_INT8;
  cr_assert_eq(compile(g, &o), 0);
  lib_open(&l, l.so);
  float **in = make_inputs(g, 2);
  for (int i = 0; i < g->ninputs; i++) {
    const char *nm = g->inputs[i].name;
    int c = nm[0] == 'x' ? nm[1] - '0' : -1; /* "r" stays random: fp32 */
    if (c >= 0)
      grid_input(in[i], 2 * shape_numel(&g->inputs[i].node->shape), sc[c], zp[c]);
  }
  run_and_compare(&l, g, 2, 2, 1e-5, in);
}

Test(target, a_cpu_without_vnni_is_refused) {
  Graph *g = int8_cases();
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  BackendOptions o = opts_for(l.so);
  o.precision = PRECISION_INT8;
  o.target_cpu = "x86-64-v3";
  cr_assert_eq(compile(g, &o), 1);
  lib_close(&l);
  ir_graph_free(g);
}

/*
 * test_activations.c: the accuracy of every activation (backend/activation.c)
 * against its float64 definition (ref_ops.c's ref_act), element by element.
 *
 * One graph applies each activation twice to the same million inputs: as
 * an activation op (the NCHW elementwise kernel: a scalar loop that LLVM
 * vectorizes) and as the epilogue of a depthwise 1x1 conv with weight 1 and
 * bias 0 on the blocked layout (backend/grouped.c: be_act on <16 x float>
 * accumulators). The inputs sweep [-20, 20] finely, then every magnitude
 * from 1e-30 to 3e38 of both signs, and the special values (0, -0, the
 * kinks of clamp and hardswish, where expf overflows, +-inf, NaN).
 *
 * For each activation and path it prints the largest error in units in the
 * last place of the float32 result (ulp of the float64 value rounded to
 * float), the largest relative and absolute errors, and where; and fails
 * above the bound of each activation: 0 ulp for relu and clamp, 1 and 2
 * for hardsigmoid and hardswish (PyTorch's own order of operations, which
 * these follow, rounds twice), and a few ulp for those built on exp and
 * erfc. Results below 1e-30 (far left tails) are held to an absolute
 * error instead (TINY). NaN must give NaN
 * and +-inf what the definition gives (hardswish, computed in PyTorch's
 * order, overflows to inf above FLT_MAX / 6 as PyTorch's does).
 * docs/spec.md ("Activations") quotes these figures.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend_harness.h"
#include "passes/passes.h"
#include "ref_ops.h"

#define P 65536 /* pixels per channel; 16 channels: 2^20 inputs */
#define N (16 * P)

typedef struct {
  const char *what;
  Op op;
  Act act;
  double max_ulp;   /* the bound */
  double left_tail; /* below this x, the relative error bound tail_rel instead */
  double tail_rel;
  /* Without FMA, a*x + b rounds twice: near its zero the error is not
     relative but absolute, at most half an ulp of b plus half an ulp of
     a*x; this bound replaces max_ulp on such a CPU. */
  double no_fma_abs;
} Case;

static const Case cases[] = {
    {.what = "relu", .op = OP_RELU, .act = {.kind = ACT_RELU}},
    {.what = "relu6 (clamp 0..6)", .op = OP_CLAMP, .act = {.kind = ACT_CLAMP, .a = 0, .b = 6}},
    {.what = "clamp -1.5..2", .op = OP_CLAMP, .act = {.kind = ACT_CLAMP, .a = -1.5f, .b = 2}},
    {.what = "clamp min 0.25 only",
     .op = OP_CLAMP,
     .act = {.kind = ACT_CLAMP, .a = 0.25f, .b = INFINITY}},
    {.what = "sigmoid", .op = OP_SIGMOID, .act = {.kind = ACT_SIGMOID}, .max_ulp = 4},
    {.what = "hardsigmoid (PyTorch)",
     .op = OP_HARDSIGMOID,
     .act = {.kind = ACT_HARDSIGMOID, .a = 1.0f / 6, .b = 0.5f},
     .max_ulp = 1},
    {.what = "hardsigmoid 0.2, 0.5 (ONNX)",
     .op = OP_HARDSIGMOID,
     .act = {.kind = ACT_HARDSIGMOID, .a = 0.2f, .b = 0.5f},
     .max_ulp = 1,
     .no_fma_abs = 6e-8},
    {.what = "hardswish", .op = OP_HARDSWISH, .act = {.kind = ACT_HARDSWISH}, .max_ulp = 2},
    {.what = "silu", .op = OP_SILU, .act = {.kind = ACT_SILU}, .max_ulp = 4},
    {.what = "gelu (erf)", .op = OP_GELU, .act = {.kind = ACT_GELU}, .max_ulp = 8},
    /* The tanh form's left tail is exp(2u), u = sqrt(2/pi) (x + 0.044715 x^3):
       the float rounding of u (2 ulp) becomes a relative error of |2u| * 1.2e-7
       there (1e-5 at x = -9, where the result is 1e-31; 11 ulp at x = -3).
       PyTorch's own 1 + tanh(u) loses every digit there. */
    {.what = "gelu (tanh)",
     .op = OP_GELU,
     .act = {.kind = ACT_GELU_TANH},
     .max_ulp = 8,
     .left_tail = -2,
     .tail_rel = 2e-5},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* The inputs: a fine grid, a sweep of magnitudes, the special values. */
static void fill_inputs(float *x) {
  static const float special[] = {0.0f, -0.0f, 3.0f, -3.0f, 6.0f, -6.0f, 2.0f, -1.5f, 0.25f, -88.0f,
                                  -88.8f, 88.7f, -103.0f, -104.5f, 17.0f, -17.0f, 1e-45f, -1e-45f,
                                  /* the bounds of backend/activation.c's sigmoid: where
                                     1 + exp(-|x|) becomes 1, where the result is 0 (-87),
                                     the clamp of |x| (91) */
                                  20.5f, -20.5f, -86.9f, -87.1f, -90.9f, -91.1f, 90.9f, 91.1f,
                                  104.7f, -104.7f, FLT_MIN, FLT_MAX, -FLT_MAX, INFINITY, -INFINITY,
                                  NAN};
  int ns = (int)(sizeof special / sizeof special[0]);
  int64_t grid = N / 2, k = 0;
  for (; k < grid; k++)
    x[k] = (float)(-20.0 + 40.0 * (double)k / (double)(grid - 1));
  int64_t mags = N - grid - ns;
  for (int64_t i = 0; i < mags; i++, k++) {
    double e = -30.0 + (38.5 + 30.0) * (double)(i / 2) / (double)(mags / 2);
    x[k] = (float)((i % 2 ? -1.0 : 1.0) * pow(10.0, e));
  }
  for (int i = 0; i < ns; i++)
    x[k++] = special[i];
}

/* The node computing case c on x: the activation op. */
static Node *act_op(Graph *g, Node *x, const Case *c) {
  Node *n = op1(g, c->op, x);
  n->attr.clamp_min = c->act.a;
  n->attr.clamp_max = c->act.b;
  n->attr.hs_alpha = c->act.a;
  n->attr.hs_beta = c->act.b;
  n->attr.gelu_tanh = c->act.kind == ACT_GELU_TANH;
  if (c->op == OP_CLAMP && c->act.b == INFINITY)
    n->attr.clamp_max = INFINITY;
  fin(g, n);
  Act a = ir_node_act(n);
  cr_assert(ir_act_eq(&a, &c->act), "%s: the op's activation is not the case's", c->what);
  return n;
}

/* A depthwise 1x1 conv, weight 1 and bias 0, with the case's epilogue. */
static Node *act_epilogue(Graph *g, Node *x, const Case *c) {
  Node *n = op1(g, OP_CONV2D, x);
  n->attr.out_channels = 16, n->attr.groups = 16;
  n->attr.kernel[0] = n->attr.kernel[1] = 1;
  fin(g, n);
  for (int i = 0; i < 16; i++) {
    n->params[P_WEIGHT]->data[i] = 1;
    n->params[P_BIAS]->data[i] = 0;
  }
  n->epi.act = c->act;
  return n;
}

/* The spacing of floats at the float rounding of v (>= the smallest
   denormal). */
static double ulp_at(double v) {
  float f = fabsf((float)v);
  if (isinf(f))
    f = FLT_MAX;
  return (double)nextafterf(f, INFINITY) - (double)f;
}

/* Results below TINY in magnitude (sigmoid, silu and gelu far in their
   left tails, beyond x = -69) come from exp(x) in or near float's
   denormals, whose relative precision is gone: there only the absolute
   error counts. (PyTorch's sigmoid and silu are exactly 0 below x = -88.7.) */
#define TINY 1e-30
#define TINY_ABS 1e-36

typedef struct {
  double ulp, rel, abs, tiny_abs, tail_rel;
  float at_ulp;
} Err;

static void measure(const Case *c, const float *x, const float *y, const char *path, Err *e) {
  *e = (Err){0};
  for (int64_t i = 0; i < N; i++) {
    double ref = ref_act(&c->act, x[i]);
    /* hardswish is (x * relu6(x + 3)) / 6 in PyTorch's order: x * 6
       overflows to inf above FLT_MAX / 6, there as here */
    if (c->act.kind == ACT_HARDSWISH && x[i] > 0 && isinf(x[i] * 6.0f))
      ref = x[i] * 6.0f;
    if (isnan(ref) || isnan(y[i])) {
      cr_assert(isnan(ref) && isnan(y[i]), "%s, %s: x = %g gives %g, the definition %g", c->what,
                path, (double)x[i], (double)y[i], ref);
      continue;
    }
    if (isinf((float)ref) || isinf(y[i])) {
      cr_assert_eq((float)ref, y[i], "%s, %s: x = %g gives %g, the definition %g", c->what, path,
                   (double)x[i], (double)y[i], ref);
      continue;
    }
    double d = fabs((double)y[i] - ref), u = d / ulp_at(ref);
    bool tail = c->tail_rel > 0 && x[i] < c->left_tail;
    if (fabs(ref) < (tail ? FLT_MIN : TINY)) { /* where exp(x) is denormal */
      cr_assert_leq(d, TINY_ABS, "%s, %s: x = %g gives %g, the definition %g", c->what, path,
                    (double)x[i], (double)y[i], ref);
      if (d > e->tiny_abs)
        e->tiny_abs = d;
      continue;
    }
    if (tail) {
      double r = d / fabs(ref);
      cr_assert_leq(r, c->tail_rel, "%s, %s: x = %g gives %g, the definition %g", c->what, path,
                    (double)x[i], (double)y[i], ref);
      if (r > e->tail_rel)
        e->tail_rel = r;
      continue;
    }
    if (u > e->ulp) {
      e->ulp = u;
      e->at_ulp = x[i];
    }
    if (fabs(ref) >= FLT_MIN && d / fabs(ref) > e->rel)
      e->rel = d / fabs(ref);
    if (d > e->abs)
      e->abs = d;
  }
}

/* Every activation as an op and as an epilogue, compiled for cpu (NULL:
   the host's, which has FMA), against float64. */
static void check_all_activations(const char *cpu, bool fma) {
  Graph *g = ir_graph_new("activations");
  Node *flat = input3(g, "x", 1, 16, P);
  Node *blk = input3(g, "xb", 16, 1, P);
  for (int i = 0; i < NCASES; i++)
    output(g, act_op(g, flat, &cases[i]));
  for (int i = 0; i < NCASES; i++)
    output(g, act_epilogue(g, blk, &cases[i]));
  pass_layout(g);
  ir_compact(g);
  cr_assert_eq(ir_verify(g, stderr), 0);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_CONV2D), NCASES, "the epilogues run blocked");

  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  BackendOptions o = opts_for(l.so);
  o.target_cpu = cpu;
  cr_assert_eq(compile(g, &o), 0);
  lib_open(&l, l.so);
  cnn_model *m = l.create(NULL, NULL, 0);
  cr_assert(m);
  float *x = malloc(sizeof(float) * N);
  fill_inputs(x);
  float **out = make_outputs(g, 1);
  const float *ins[2] = {x, x};
  cr_assert_eq(l.run(m, 1, ins, out), 0, "%s", l.last_error(m));
  for (int i = 0; i < NCASES; i++) {
    const Case *c = &cases[i];
    Err op, ep;
    measure(c, x, out[i], "op", &op);
    measure(c, x, out[NCASES + i], "epilogue", &ep);
    printf("activation %-28s %s op: %.2f ulp (at x = %g), rel %.3g, abs %.3g (below 1e-30: %.2g)",
           c->what, cpu ? cpu : "host", op.ulp, (double)op.at_ulp, op.rel, op.abs, op.tiny_abs);
    if (c->tail_rel > 0)
      printf(" (x < %g: rel %.3g)", c->left_tail, op.tail_rel);
    printf("; epilogue (vector): %.2f ulp (at x = %g), rel %.3g, abs %.3g (below 1e-30: %.2g)",
           ep.ulp, (double)ep.at_ulp, ep.rel, ep.abs, ep.tiny_abs);
    if (c->tail_rel > 0)
      printf(" (x < %g: rel %.3g)", c->left_tail, ep.tail_rel);
    printf("\n");
    if (!fma && c->no_fma_abs > 0) {
      cr_expect_leq(op.abs, c->no_fma_abs, "%s as an op: abs %.3g (bound %g without FMA)", c->what,
                    op.abs, c->no_fma_abs);
      cr_expect_leq(ep.abs, c->no_fma_abs, "%s as an epilogue: abs %.3g (bound %g without FMA)",
                    c->what, ep.abs, c->no_fma_abs);
      continue;
    }
    cr_expect_leq(op.ulp, c->max_ulp, "%s as an op: %.2f ulp at x = %g (bound %g)", c->what, op.ulp,
                  (double)op.at_ulp, c->max_ulp);
    cr_expect_leq(ep.ulp, c->max_ulp, "%s as an epilogue: %.2f ulp at x = %g (bound %g)", c->what,
                  ep.ulp, (double)ep.at_ulp, c->max_ulp);
  }
  fflush(stdout);
  free(x);
  free_bufs(out, g->noutputs);
  l.destroy(m);
  lib_close(&l);
  ir_graph_free(g);
}

Test(activations, every_activation_is_within_its_ulp_bound_of_float64_on_both_paths,
     .timeout = 300) {
  check_all_activations(NULL, true);
}

/* A CPU without FMA (x86-64-v2): the polynomials as multiply and add, and
   GELU's exact square by Dekker's product instead of an fma. */
Test(activations, every_activation_within_its_bound_on_a_cpu_without_fma, .timeout = 300) {
  check_all_activations("x86-64-v2", false);
}

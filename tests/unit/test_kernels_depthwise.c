/*
 * test_kernels_depthwise.c: the depthwise kernel (backend/depthwise.c)
 * against the plain reference (ref_ops.c).
 *
 * Depthwise convs (groups = channels) of 3x3, 5x5 and 7x7, stride 1 and 2,
 * symmetric, asymmetric and no padding, dilation, planes narrower than a
 * register tile and of one pixel, heights that the row groups do not
 * divide (a last group of fewer rows), borders on every side; bias,
 * residual add and every activation in the epilogue (each regime reached:
 * compare() checks); a batch of three on two threads; register tiles of
 * 1, 3 and 4 rows (--tune depthwise.rows); the AVX2 target. Tolerance
 * 1e-5 of max |ref| (an output sums at most 49 products). Every case
 * runs with --tune depthwise=2 (the 5x5s and 7x7s too), one with the
 * default choice.
 */
#include <criterion/criterion.h>

#include "backend/backend_internal.h"
#include "backend_harness.h"
#include "passes/passes.h"

static Node *dwconv(Graph *g, Node *x, int64_t k, int64_t s, const int64_t pad[4], int64_t d) {
  Node *c = op1(g, OP_CONV2D, x);
  int64_t ch = x->shape.d[0];
  c->attr.out_channels = ch, c->attr.groups = ch;
  c->attr.kernel[0] = c->attr.kernel[1] = k;
  c->attr.stride[0] = c->attr.stride[1] = s;
  c->attr.dilation[0] = c->attr.dilation[1] = d;
  for (int i = 0; i < 4; i++)
    c->attr.pad[i] = pad[i];
  c->attr.has_bias = true;
  return fin(g, c);
}

static const int64_t P0[4] = {0, 0, 0, 0}, P1[4] = {1, 1, 1, 1}, P2[4] = {2, 2, 2, 2},
                     P3[4] = {3, 3, 3, 3}, PA[4] = {0, 2, 1, 0};

/* The shapes of the mobile networks' depthwise convs, small. */
static Graph *dw_shapes(void) {
  Graph *g = ir_graph_new("dw_shapes");
  Node *x = input3(g, "x", 16, 23, 29);
  Node *a = conv(g, x, 32, 1, 1, 1, 0); /* blocked producer */
  Node *d1 = dwconv(g, a, 3, 1, P1, 1); /* 3x3 s1: 23 rows, a last group of 1 */
  d1->epi.act = (Act){.kind = ACT_CLAMP, .a = 0, .b = 6};
  Node *d2 = dwconv(g, d1, 3, 2, P1, 1); /* 3x3 s2: 12x15 */
  Node *d3 = dwconv(g, a, 5, 1, P2, 1);  /* 5x5 s1 */
  add_residual(g, d3, a);                /* + residual */
  Node *d4 = dwconv(g, d3, 5, 2, P2, 1); /* 5x5 s2 */
  Node *d5 = dwconv(g, a, 7, 1, P3, 1);  /* ConvNeXt's 7x7 */
  Node *d6 = dwconv(g, a, 3, 1, P0, 1);  /* no padding: 21x27 */
  Node *d7 = dwconv(g, a, 3, 2, PA, 1);  /* asymmetric padding */
  Node *d8 = dwconv(g, a, 3, 1, P2, 2);  /* dilation 2 */
  Node *y = input3(g, "y", 16, 4, 3);    /* narrower than a tile */
  Node *b = conv(g, y, 16, 1, 1, 1, 0);
  Node *e1 = dwconv(g, b, 3, 1, P1, 1);
  Node *e2 = dwconv(g, b, 5, 2, P2, 1);  /* 2x2 */
  Node *e3 = dwconv(g, e2, 3, 2, P1, 1); /* one pixel */
  Node *outs[] = {d2, d4, d5, d6, d7, d8, e1, e3};
  for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
    output(g, outs[i]);
  return g;
}

Test(depthwise, the_depthwise_convs_take_the_depthwise_kernel) {
  Graph *g = dw_shapes();
  pass_layout(g);
  ir_compact(g);
  Tuning t;
  tuning_defaults(&t);
  BeConfig cf = {.target = {.avx512 = true}, .tune = &t};
  BeChoice *ch = calloc((size_t)g->next_id, sizeof *ch);
  char err[256];
  cr_assert(be_choose_kernels(&cf, g, ch, err, sizeof err), "%s", err);
  /* the default (depthwise=1): the 3x3 stride-1s; the others on the
     small-group kernel */
  int ndw = 0, n3 = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (n->op == OP_CONV2D && n->attr.groups > 1) {
      bool k3 = n->attr.kernel[0] == 3 && n->attr.stride[0] == 1;
      cr_expect_str_eq(ch[n->id].impl->name, k3 ? "depthwise16" : "grouped16", "%s", n->name);
      ndw++, n3 += k3;
    }
  }
  cr_assert_eq(ndw, 11);
  cr_assert_eq(n3, 4);
  t.depthwise = 2; /* --tune depthwise=2: all of them */
  cr_assert(be_choose_kernels(&cf, g, ch, err, sizeof err), "%s", err);
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (n->op == OP_CONV2D && n->attr.groups > 1)
      cr_expect_str_eq(ch[n->id].impl->name, "depthwise16", "%s", n->name);
  }
  t.depthwise = 0; /* --tune depthwise=0: the small-group kernel instead */
  cr_assert(be_choose_kernels(&cf, g, ch, err, sizeof err), "%s", err);
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (n->op == OP_CONV2D && n->attr.groups > 1)
      cr_expect_str_eq(ch[n->id].impl->name, "grouped16", "%s", n->name);
  }
  free(ch);
  ir_graph_free(g);
}

/* depthwise=2: the 5x5s and 7x7s on the depthwise kernel too. */
static const char *const all[] = {"depthwise=2", NULL};

Test(depthwise, shapes_strides_borders_and_dilation_match_reference) {
  check_blocked_tuned(dw_shapes(), 1, 1, NULL, all);
}

Test(depthwise, with_the_default_kernel_choice_matches_reference) {
  check_blocked(dw_shapes(), 1, 1, NULL);
}

Test(depthwise, a_batch_of_three_on_two_threads_matches_reference) {
  check_blocked_tuned(dw_shapes(), 3, 2, NULL, all);
}

Test(depthwise, register_tiles_of_one_three_and_four_rows_match_reference) {
  const char *r1[] = {"depthwise=2", "depthwise.rows=1", NULL};
  const char *r3[] = {"depthwise=2", "depthwise.rows=3", "depthwise.tile=5", NULL};
  const char *r4[] = {"depthwise=2", "depthwise.rows=4", "depthwise.tile=7", NULL};
  check_blocked_tuned(dw_shapes(), 1, 1, NULL, r1);
  check_blocked_tuned(dw_shapes(), 1, 1, NULL, r3);
  check_blocked_tuned(dw_shapes(), 2, 2, NULL, r4);
}

Test(depthwise, for_x86_64_v3_without_avx512_matches_reference) {
  check_blocked_tuned(dw_shapes(), 2, 2, "x86-64-v3", all);
}

/* Every activation in the epilogue, 3x3 stride 1 and 5x5 stride 2, with a
   residual on the first; the weights scaled to reach every regime. */
Test(depthwise, every_activation_in_the_epilogue_matches_reference_in_every_regime) {
  Graph *g = ir_graph_new("dw_acts");
  Node *x = input3(g, "x", 16, 9, 13);
  Node *a = conv(g, x, 32, 1, 1, 1, 0);
  scale_weight(a, 2);
  for (int i = 0; i < harness_nacts; i++) {
    Node *d = dwconv(g, a, 3, 1, P1, 1);
    scale_weight(d, 1.5f);
    add_residual(g, d, a);
    d->epi.act = harness_acts[i];
    output(g, d);
    Node *e = dwconv(g, a, 5, 2, P2, 1);
    scale_weight(e, 1.5f);
    e->epi.act = harness_acts[i];
    output(g, e);
  }
  check_blocked_tuned(g, 1, 2, NULL, all);
}

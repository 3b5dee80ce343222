/*
 * test_kernels_grouped.c: grouped convs on the blocked layout
 * (backend/grouped.c).
 *
 * Grouped convs whose groups have Cg = 1, 2, 4 or 8 input and output
 * channels stay blocked: ResNeXt's groups of 4 and 8, depthwise convs,
 * stride 2, padding, dilation, wide kernels, bias, residual + ReLU
 * epilogue, and one fed from the NCHW image (a reorder to blocked in
 * front); other group sizes over windows of input blocks on the direct
 * kernel (backend/blocked.c). Tolerance: 1e-5 of max |ref| as for the other convs (each output
 * sums at most Cg*KH*KW = 72 products).
 */
#include <criterion/criterion.h>

#include "backend_harness.h"
#include "passes/passes.h"

static Node *gconv(Graph *g, Node *x, int64_t oc, int64_t kh, int64_t kw, int64_t s, int64_t p,
                   int64_t groups) {
  Node *c = op1(g, OP_CONV2D, x);
  c->attr.out_channels = oc, c->attr.groups = groups;
  c->attr.kernel[0] = kh, c->attr.kernel[1] = kw;
  c->attr.stride[0] = c->attr.stride[1] = s;
  for (int i = 0; i < 4; i++)
    c->attr.pad[i] = p;
  return fin(g, c);
}

static Graph *grouped_convs(void) {
  Graph *g = ir_graph_new("grouped_convs");
  Node *x = input3(g, "x", 32, 19, 23);
  Node *g0 = gconv(g, x, 32, 3, 3, 1, 1, 8); /* Cg 4 on the NCHW input: reorder */
  Node *a = conv(g, g0, 64, 1, 1, 1, 0);
  Node *g1 = gconv(g, a, 64, 3, 3, 1, 1, 16); /* Cg 4, ReLU */
  g1->epi.act.kind = ACT_RELU;
  Node *sc = conv(g, a, 64, 1, 1, 2, 0);      /* 64x10x12 */
  Node *g2 = gconv(g, g1, 64, 3, 3, 2, 1, 8); /* Cg 8, stride 2: 64x10x12 */
  add_residual(g, g2, sc);
  g2->epi.act.kind = ACT_RELU;
  Node *d1 = gconv(g, g2, 64, 3, 3, 1, 1, 64); /* depthwise */
  Node *d2 = gconv(g, d1, 64, 5, 5, 2, 2, 64); /* depthwise 5x5 stride 2 */
  Node *g3 = gconv(g, g2, 64, 3, 5, 1, 2, 32); /* Cg 2, 3x5, dilation 2 */
  g3->attr.dilation[1] = 2;
  g3->attr.pad[0] = g3->attr.pad[2] = 1;
  g3->attr.pad[1] = 3, g3->attr.pad[3] = 4;
  char err[128];
  cr_assert(ir_infer_shape(g, g3, err, sizeof err), "%s", err);
  Node *g4 = gconv(g, g0, 32, 1, 1, 1, 0, 4); /* Cg 8, 1x1 */
  /* Rows wider than a tile: a loop of interior tiles. */
  Node *y = input3(g, "y", 16, 6, 101);
  Node *b = conv(g, y, 16, 1, 1, 1, 0);
  Node *w1 = gconv(g, b, 16, 3, 3, 1, 1, 4);  /* Cg 4 */
  Node *w2 = gconv(g, w1, 16, 3, 3, 2, 1, 2); /* Cg 8, stride 2 */
  output(g, d2);
  output(g, g3);
  output(g, g4);
  output(g, w2);
  return g;
}

Test(grouped, small_group_and_depthwise_convs_stay_blocked_and_match_reference) {
  Graph *g = grouped_convs();
  pass_layout(g);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_CONV2D), 12);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_REORDER), 1, "input x, once");
  cr_assert_eq(count_layout(g, LAYOUT_NCHW, OP_REORDER), 4, "the four outputs");
  ir_graph_free(g);
  check_blocked(grouped_convs(), 1, 1, NULL);
}

Test(grouped, convs_batch_of_three_on_two_threads_match_reference) {
  check_blocked(grouped_convs(), 3, 2, NULL);
}

Test(grouped, convs_for_x86_64_v3_without_avx512_match_reference) {
  check_blocked(grouped_convs(), 2, 2, "x86-64-v3");
}

Test(grouped, convs_for_x86_64_v2_sse_without_fma_match_reference) {
  check_blocked(grouped_convs(), 2, 2, "x86-64-v2");
}

/* Groups of any other size, with 16-multiple channel counts, run blocked
   on the direct kernel over a window of input blocks per output block
   (ir_conv_window_groups, backend/blocked.c): 3 channels per group; 4 in
   and 8 out; RegNetX's 24 (a window of 2 or 3 blocks), stride 2, with a
   residual and ReLU; 12 (1x1); 8 in and 16 out; 40 in and 20 out, 3x5
   with dilation. */
static Graph *window_groups(void) {
  Graph *g = ir_graph_new("window_groups");
  Node *x = identity_conv(g, input3(g, "x", 48, 9, 11));
  output(g, gconv(g, x, 48, 3, 3, 1, 1, 16));
  output(g, gconv(g, x, 96, 3, 3, 1, 1, 12));
  Node *y = identity_conv(g, input3(g, "y", 96, 13, 10));
  Node *sc = conv(g, y, 96, 1, 1, 2, 0);
  Node *r24 = gconv(g, y, 96, 3, 3, 2, 1, 4);
  add_residual(g, r24, sc);
  r24->epi.act.kind = ACT_RELU;
  output(g, r24);
  output(g, gconv(g, y, 96, 1, 1, 1, 0, 8));
  output(g, gconv(g, x, 96, 3, 3, 1, 1, 6));
  Node *z = identity_conv(g, input3(g, "z", 80, 7, 12));
  Node *d = gconv(g, z, 32, 3, 5, 1, 2, 2);
  d->attr.dilation[1] = 2;
  d->attr.pad[1] = d->attr.pad[3] = 4;
  char err[128];
  cr_assert(ir_infer_shape(g, d, err, sizeof err), "%s", err);
  output(g, d);
  return g;
}

Test(grouped, other_group_shapes_run_blocked_over_input_windows_and_match_reference) {
  Graph *g = window_groups();
  pass_layout(g);
  int nwin = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    if (n->op == OP_CONV2D && n->attr.groups > 1) {
      cr_assert(ir_conv_window_groups(n, 16), "'%s' has window groups", n->name);
      cr_assert_eq(n->layout, LAYOUT_NCHW16C);
      nwin++;
    }
  }
  cr_assert_eq(nwin, 6);
  cr_assert_eq(count_kernel(g, PRECISION_FP32, "direct16"), 10,
               "the six, the shortcut, three identities");
  ir_graph_free(g);
  check_blocked(window_groups(), 2, 2, NULL);
  check_blocked(window_groups(), 1, 1, "x86-64-v3");
  check_blocked(window_groups(), 1, 1, "x86-64-v2");
}

/* A split grouped conv writing two slices into an elided concat. */
Test(grouped, split_grouped_conv_writes_its_slices_into_an_elided_concat) {
  Graph *g = ir_graph_new("gsplit");
  Node *x = input3(g, "x", 16, 9, 7);
  Node *a = conv(g, x, 48, 3, 3, 1, 1);
  Node *s = gconv(g, a, 48, 3, 3, 1, 1, 12);
  s->split = true;
  s->epi.act.kind = ACT_RELU;
  split_into_elided_concat(g, a, s, true);
  check_graph_opts(g, 2, 2, 1e-5);
}

/* Depthwise convs (MobileNet's 3x3 stride 1 and 2, 5x5) with every
   activation in the epilogue, weights scaled to reach every regime. */
static Graph *dw_acts(void) {
  Graph *g = ir_graph_new("dw_acts");
  Node *x = input3(g, "x", 32, 12, 13);
  Node *a = conv(g, x, 32, 1, 1, 1, 0);
  for (int i = 0; i < harness_nacts; i++) {
    int k = i % 3 == 2 ? 5 : 3, s = i % 3 == 1 ? 2 : 1;
    Node *d = gconv(g, a, 32, k, k, s, k / 2, 32);
    scale_weight(d, 2.5f);
    d->epi.act = harness_acts[i];
    output(g, d);
  }
  return g;
}

Test(grouped, depthwise_convs_apply_every_activation_epilogue_in_every_regime) {
  Graph *g = dw_acts();
  pass_layout(g);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_CONV2D), harness_nacts + 1);
  ir_graph_free(g);
  check_blocked(dw_acts(), 1, 2, NULL);
}

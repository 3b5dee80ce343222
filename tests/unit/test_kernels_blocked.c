/*
 * test_kernels_blocked.c: the blocked layout (NCHW16c, backend/blocked.c).
 *
 * These graphs go through passes/layout.c (blocked convs, pools, affine and
 * elementwise ops, reorders) before the local planner, so the kernels of
 * backend/blocked.c are compared with the same plain C reference
 * (backend_harness.h, check_blocked).
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "backend_harness.h"
#include "passes/passes.h"

/* First layer on the NCHW image (3 channels, 7x7 stride 2), 3x3 convs with
   16, 48 (3 blocks: odd tile groups) and 32 channels on odd sizes, a
   strided 1x1 and a 1x1 with a residual and ReLU: borders, remainders. */
static Graph *blocked_convs(void) {
  Graph *g = ir_graph_new("blocked_convs");
  Node *x = input3(g, "image", 3, 29, 23);
  Node *c1 = conv(g, x, 32, 7, 7, 2, 3);  /* 32x15x12 */
  Node *c2 = conv(g, c1, 48, 3, 3, 1, 1); /* 48x15x12 */
  Node *c3 = conv(g, c2, 16, 1, 1, 2, 0); /* 16x8x6 */
  Node *c4 = conv(g, c3, 32, 3, 3, 1, 1); /* 32x8x6 */
  Node *sc = conv(g, c1, 32, 1, 1, 2, 0); /* 32x8x6 */
  Node *c5 = conv(g, c4, 32, 1, 1, 1, 0);
  add_residual(g, c5, sc);
  c5->epi.act.kind = ACT_RELU;
  Node *c6 = conv(g, c2, 16, 3, 5, 2, 2); /* kernel 3x5: taps outside both edges */
  c6->attr.dilation[1] = 2;
  c6->attr.pad[1] = c6->attr.pad[3] = 3;
  char err[128];
  cr_assert(ir_infer_shape(g, c6, err, sizeof err), "%s", err);
  output(g, c5);
  output(g, c6);
  return g;
}

Test(blocked, convs_with_borders_strides_dilation_residual_match_reference) {
  Graph *g = blocked_convs();
  pass_layout(g);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_CONV2D), 7);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW, OP_REORDER), 2, "both outputs back to NCHW");
  ir_graph_free(g);
  check_blocked(blocked_convs(), 1, 1, NULL);
}

Test(blocked, convs_batch_of_three_on_two_threads_match_reference) {
  check_blocked(blocked_convs(), 3, 2, NULL);
}

Test(blocked, convs_for_x86_64_v3_without_avx512_match_reference) {
  check_blocked(blocked_convs(), 2, 2, "x86-64-v3");
}

/* x86-64-v2: SSE4.2, 4 lanes, no FMA: the 2-pixel register tiles, products
   by multiply and add (llvm.fmuladd, not fmaf calls). */
Test(blocked, convs_for_x86_64_v2_sse_without_fma_match_reference) {
  check_blocked(blocked_convs(), 2, 2, "x86-64-v2");
}

/* A ResNet 3x3 layer at full size (64 -> 64 channels at 56x56, ReLU) on the
   blocked kernel, as -O1 and above compile it: one thread, then two, each
   run into fresh NaN-filled outputs. Speed is measured by bench/, not by a
   unit test on a shared machine. */
Test(blocked, a_resnet_3x3_conv_at_56x56_matches_reference_on_one_and_two_threads) {
  Graph *g = ir_graph_new("conv3x3");
  Node *x = input3(g, "x", 64, 56, 56);
  Node *c = op1(g, OP_CONV2D, x);
  c->attr.out_channels = 64;
  c->attr.kernel[0] = c->attr.kernel[1] = 3;
  for (int i = 0; i < 4; i++)
    c->attr.pad[i] = 1;
  fin(g, c);
  c->epi.act.kind = ACT_RELU;
  output(g, c);
  pass_layout(g);
  ir_compact(g);
  cr_assert_eq(ir_verify(g, stderr), 0);
  cr_assert_eq(c->layout, LAYOUT_NCHW16C);
  Lib l = {0};
  lib_build(&l, g);
  cnn_model *m = l.create(NULL, NULL, 0);
  cr_assert(m);
  float **in = make_inputs(g, 1);
  for (int th = 1; th <= 2; th++) {
    float **out = make_outputs(g, 1);
    cr_assert_eq(l.threads(m, th), 0);
    cr_assert_eq(l.run(m, 1, (const float *const *)in, out), 0, "%s", l.last_error(m));
    compare(g, 1, in, out, 1e-5);
    free_bufs(out, g->noutputs);
  }
  free_bufs(in, g->ninputs);
  l.destroy(m);
  lib_close(&l);
  ir_graph_free(g);
}

/* Long pointwise convs (rows of tiles, a short last row), 7-wide rows, a
   pointwise conv on a 7x7 plane (one row of 49 pixels: tiles of 13 and a
   last one of 10) and a grouped conv with 32 channels per group. */
static Graph *blocked_gemm(void) {
  Graph *g = ir_graph_new("blocked_gemm");
  Node *x = input3(g, "x", 32, 31, 17);
  Node *a = conv(g, x, 64, 1, 1, 1, 0);
  Node *b = conv(g, a, 16, 1, 1, 1, 0);
  Node *c = conv(g, b, 64, 3, 3, 2, 1); /* 64x16x9 */
  Node *d = op1(g, OP_CONV2D, c);
  d->attr.out_channels = 64, d->attr.groups = 2;
  d->attr.kernel[0] = d->attr.kernel[1] = 3;
  for (int i = 0; i < 4; i++)
    d->attr.pad[i] = 1;
  fin(g, d);
  Node *y = input3(g, "y", 32, 7, 7);
  Node *e = conv(g, y, 64, 3, 3, 1, 1);
  Node *f = conv(g, e, 64, 3, 3, 1, 1);
  Node *h = conv(g, f, 96, 1, 1, 1, 0);
  output(g, d);
  output(g, h);
  return g;
}

Test(blocked, pointwise_grouped_and_7_wide_convs_match_reference) {
  Graph *g = blocked_gemm();
  pass_layout(g);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_CONV2D), 7);
  ir_graph_free(g);
  check_blocked(blocked_gemm(), 2, 2, NULL);
}

/* Strided 1x1 convs whose tiles span whole output rows (backend/blocked.c,
   RH > 1): ResNet's downsample shape (64 -> 64 from 13x14 to 7x7, with a
   residual and ReLU: rows 2, 2, 2 and a last item of 1), a 3-wide output
   (one item of 3 rows), a 6-wide one read row-major (640 channels, a
   1.3 MB input) and a stride-3 one on the NCHW image (one channel per
   block; rows 2, 2, 2, 1). */
static Graph *blocked_strided_1x1(void) {
  Graph *g = ir_graph_new("blocked_strided_1x1");
  Node *x = input3(g, "x", 32, 13, 14);
  Node *a = conv(g, x, 64, 3, 3, 1, 1); /* 64x13x14 */
  Node *r = conv(g, a, 64, 3, 3, 2, 1); /* 64x7x7, created first: d reads it */
  Node *d = conv(g, a, 64, 1, 1, 2, 0);
  add_residual(g, d, r);
  d->epi.act.kind = ACT_RELU;
  Node *e = conv(g, d, 64, 3, 3, 1, 1); /* 64x7x7 */
  Node *f = conv(g, a, 32, 1, 1, 3, 0); /* 32x5x5 */
  Node *h = conv(g, f, 32, 1, 1, 2, 0); /* 32x3x3 */
  Node *y = conv(g, input3(g, "y", 16, 24, 21), 640, 1, 1, 1, 0);
  Node *w = conv(g, y, 64, 1, 1, 4, 0);                         /* 64x6x6 */
  Node *v = conv(g, input3(g, "z", 3, 19, 16), 32, 1, 1, 3, 0); /* 32x7x6 from NCHW */
  output(g, e);
  output(g, h);
  output(g, w);
  output(g, v);
  return g;
}

Test(blocked, strided_1x1_convs_with_multi_row_tiles_match_reference) {
  Graph *g = blocked_strided_1x1();
  pass_layout(g);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_CONV2D), 9);
  ir_graph_free(g);
  check_blocked(blocked_strided_1x1(), 1, 1, NULL);
  check_blocked(blocked_strided_1x1(), 3, 2, NULL);
  check_blocked(blocked_strided_1x1(), 2, 2, "x86-64-v3"); /* 6-pixel tiles: 2 rows of 3 */
}

/* Everything after a blocked conv stays blocked: pools, affine ops,
   elementwise ops, concat; a flatten for a linear and the outputs get a
   reorder; a 1x1-pixel tensor needs none. */
static Graph *blocked_ops(void) {
  Graph *g = ir_graph_new("blocked_ops");
  Node *x = input3(g, "x", 16, 13, 12);
  Node *c = conv(g, x, 32, 3, 3, 1, 1);
  Node *mp = op1(g, OP_MAXPOOL, c);
  mp->attr.kernel[0] = mp->attr.kernel[1] = 3;
  mp->attr.stride[0] = mp->attr.stride[1] = 2;
  mp->attr.pad[0] = mp->attr.pad[1] = mp->attr.pad[2] = mp->attr.pad[3] = 1;
  mp->attr.ceil_mode = true;
  fin(g, mp);
  Node *ap = op1(g, OP_AVGPOOL, c);
  ap->attr.kernel[0] = ap->attr.kernel[1] = 3;
  ap->attr.stride[0] = ap->attr.stride[1] = 2;
  ap->attr.pad[0] = ap->attr.pad[1] = ap->attr.pad[2] = ap->attr.pad[3] = 1;
  ap->attr.ceil_mode = true;
  ap->attr.count_include_pad = false;
  fin(g, ap);
  Node *bn = fin(g, op1(g, OP_BATCHNORM, mp));
  Node *ss = fin(g, op1(g, OP_SCALESHIFT, ap));
  ss->epi.act.kind = ACT_RELU;
  Node *two[2] = {bn, ss};
  Node *sum = fin(g, op(g, OP_ADD, two, 2));
  Node *mean = fin(g, op(g, OP_MEAN, two, 2));
  Node *cat2[2] = {sum, mean};
  Node *cat = fin(g, op(g, OP_CONCAT, cat2, 2));
  Node *r = fin(g, op1(g, OP_RELU, cat));
  Node *gp = op1(g, OP_ADAPTIVE_AVGPOOL, r);
  gp->attr.out_hw[0] = 3, gp->attr.out_hw[1] = 2;
  fin(g, gp);
  Node *fl = fin(g, op1(g, OP_FLATTEN, gp));
  Node *fc = op1(g, OP_LINEAR, fl);
  fc->attr.out_features = 10;
  fin(g, fc);
  Node *g1 = op1(g, OP_ADAPTIVE_AVGPOOL, r);
  fin(g, g1);
  Node *fl1 = fin(g, op1(g, OP_FLATTEN, g1));
  Node *fc1 = op1(g, OP_LINEAR, fl1);
  fc1->attr.out_features = 5;
  fin(g, fc1);
  output(g, fc);
  output(g, fc1);
  output(g, cat);
  return g;
}

Test(blocked, pools_affine_eltwise_concat_and_reorders_match_reference) {
  Graph *g = blocked_ops();
  pass_layout(g);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_MAXPOOL), 1);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_CONCAT), 1);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_ADAPTIVE_AVGPOOL), 2);
  /* to NCHW: before the 3x2 pool's flatten and for the concat output; the
     1x1 pool's output is the same bytes in both layouts. */
  cr_assert_eq(count_layout(g, LAYOUT_NCHW, OP_REORDER), 2);
  ir_graph_free(g);
  check_blocked(blocked_ops(), 2, 2, NULL);
}

/* A split 1x1 conv writing its two channel ranges into two slices placed
   in a concat that needs no kernel (fold-1x1 + concat-elim, by hand). */
Test(blocked, split_conv_writes_its_slices_into_an_elided_concat) {
  for (int blocked = 0; blocked < 2; blocked++) {
    Graph *g = ir_graph_new("split");
    Node *x = input3(g, "x", 16, 9, 7);
    Node *a = conv(g, x, 32, 3, 3, 1, 1);
    Node *s = conv(g, a, 48, 1, 1, 1, 0);
    s->split = true;
    s->epi.act.kind = ACT_RELU;
    split_into_elided_concat(g, a, s, blocked);
    check_graph_opts(g, 2, 2, 1e-5);
  }
}

/* Every activation on the blocked layout: in the direct conv's epilogue
   (3x3, and a 1x1 GEMM row with a residual), as an op after a blocked
   conv (it stays blocked: no reorder), and in the blocked scale-shift's
   epilogue; weights scaled so each reaches every regime. */
static Graph *blocked_acts(void) {
  Graph *g = ir_graph_new("blocked_acts");
  Node *x = input3(g, "x", 16, 9, 13);
  Node *c0 = conv(g, x, 32, 3, 3, 1, 1);
  for (int i = 0; i < harness_nacts; i++) {
    Node *c = conv(g, c0, 16, 3, 3, 1, 1);
    scale_weight(c, 0.25f);
    c->epi.act = harness_acts[i];
    output(g, c);
    Node *p = conv(g, c0, 32, 1, 1, 1, 0);
    scale_weight(p, 1.5f);
    add_residual(g, p, c0);
    p->epi.act = harness_acts[i];
    output(g, p);
    Node *q = conv(g, c0, 16, 1, 1, 1, 0);
    scale_weight(q, 1.5f);
    output(g, act_node(g, q, &harness_acts[i]));
    Node *s = fin(g, op1(g, OP_SCALESHIFT, c0));
    scale_weight(s, 3);
    s->epi.act = harness_acts[i];
    output(g, s);
  }
  return g;
}

Test(blocked, every_activation_in_epilogues_and_as_ops_matches_reference_in_every_regime) {
  Graph *g = blocked_acts();
  pass_layout(g);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_SCALESHIFT), harness_nacts);
  int nacts = 0;
  for (int i = 0; i < g->nodes.len; i++)
    nacts += (ir_ops[GRAPH_NODE(g, i)->op].flags & OPF_ACT) &&
             GRAPH_NODE(g, i)->layout == LAYOUT_NCHW16C;
  cr_assert_eq(nacts, harness_nacts, "every activation op follows its blocked conv");
  ir_graph_free(g);
  check_blocked(blocked_acts(), 1, 2, NULL);
}

Test(blocked, every_activation_epilogue_for_x86_64_v3_without_avx512_matches_reference) {
  Graph *g = ir_graph_new("blocked_acts_v3");
  Node *x = input3(g, "x", 16, 7, 9);
  Node *c0 = conv(g, x, 16, 3, 3, 1, 1);
  for (int i = 0; i < harness_nacts; i++) {
    Node *c = conv(g, c0, 16, 3, 3, 1, 1);
    scale_weight(c, 0.3f);
    c->epi.act = harness_acts[i];
    output(g, c);
  }
  check_blocked(g, 1, 1, "x86-64-v3");
}

Test(blocked, every_activation_epilogue_for_x86_64_v2_without_fma_matches_reference) {
  Graph *g = ir_graph_new("blocked_acts_v2");
  Node *x = input3(g, "x", 16, 7, 9);
  Node *c0 = conv(g, x, 16, 3, 3, 1, 1);
  for (int i = 0; i < harness_nacts; i++) {
    Node *c = conv(g, c0, 16, 3, 3, 1, 1);
    scale_weight(c, 0.3f);
    c->epi.act = harness_acts[i];
    output(g, c);
  }
  check_blocked(g, 1, 1, "x86-64-v2");
}

/* Squeeze-excitation on the blocked layout: global pool, 1x1 reduce with
   SiLU, 1x1 expand with sigmoid, gate * x; the gate [32, 1, 1] needs no
   reorder and the mul stays blocked, also by a [C] vector. */
static Graph *blocked_se(void) {
  Graph *g = ir_graph_new("blocked_se");
  Node *x = input3(g, "x", 16, 9, 11);
  Node *c = conv(g, x, 32, 3, 3, 1, 1);
  Node *pool = fin(g, op1(g, OP_ADAPTIVE_AVGPOOL, c));
  Node *r = conv(g, pool, 8, 1, 1, 1, 0);
  scale_weight(r, 8);
  r->epi.act = (Act){.kind = ACT_SILU};
  Node *e = conv(g, r, 32, 1, 1, 1, 0);
  scale_weight(e, 4);
  e->epi.act = (Act){.kind = ACT_SIGMOID};
  Node *ec[2] = {e, c};
  Node *m = fin(g, op(g, OP_MUL, ec, 2));
  Node *flat = fin(g, op1(g, OP_FLATTEN, e));
  Node *cf[2] = {c, flat};
  Node *m2 = fin(g, op(g, OP_MUL, cf, 2));
  output(g, m);
  output(g, m2);
  return g;
}

Test(blocked, squeeze_excitation_gate_times_a_blocked_tensor_matches_reference) {
  Graph *g = blocked_se();
  pass_layout(g);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_MUL), 2);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_REORDER), 0, "no reorder into the gate");
  ir_graph_free(g);
  check_blocked(blocked_se(), 2, 2, NULL);
}

/* The gate read by the next conv (passes/fuse_gate.c): an SE block whose
   mul feeds a 1x1 projection (48 -> 32, with a residual and ReLU, as
   MobileNetV3's) and a strided 1x1 (48 -> 16, RegNet's shortcut shape),
   each gate its own; a mul read by a 3x3 conv and one that is a graph
   output stay. The gates go from 0.1 to 0.9 (sigmoid of a wide range) so
   a missing or misplaced factor shows. */
static Graph *gated_convs(void) {
  Graph *g = ir_graph_new("gated_convs");
  Node *x = input3(g, "x", 16, 9, 11);
  Node *c = conv(g, x, 48, 3, 3, 1, 1);
  Node *gate[3];
  for (int i = 0; i < 3; i++) {
    Node *r = conv(g, fin(g, op1(g, OP_ADAPTIVE_AVGPOOL, c)), 8, 1, 1, 1, 0);
    scale_weight(r, 8);
    r->epi.act = (Act){.kind = ACT_RELU};
    gate[i] = conv(g, r, 48, 1, 1, 1, 0);
    scale_weight(gate[i], 4);
    gate[i]->epi.act = (Act){.kind = ACT_SIGMOID};
  }
  Node *m[3];
  for (int i = 0; i < 3; i++) {
    Node *in[2] = {i == 1 ? gate[i] : c, i == 1 ? c : gate[i]};
    m[i] = fin(g, op(g, OP_MUL, in, 2));
  }
  Node *sc = conv(g, x, 32, 1, 1, 1, 0);
  Node *proj = conv(g, m[0], 32, 1, 1, 1, 0);
  add_residual(g, proj, sc);
  proj->epi.act.kind = ACT_RELU;
  output(g, proj);
  output(g, conv(g, m[1], 16, 1, 1, 2, 0));
  output(g, conv(g, m[2], 16, 3, 3, 1, 1)); /* 3x3: the mul stays */
  Node *m3in[2] = {c, gate[0]};
  output(g, fin(g, op(g, OP_MUL, m3in, 2))); /* an output: stays */
  return g;
}

static int count_gated(const Graph *g) {
  int n = 0;
  for (int i = 0; i < g->nodes.len; i++)
    n += !GRAPH_NODE(g, i)->dead && GRAPH_NODE(g, i)->epi.gate >= 0;
  return n;
}

Test(blocked, a_gate_applied_as_the_next_1x1_conv_reads_matches_reference) {
  Graph *g = gated_convs();
  pass_layout(g);
  pass_fuse_gate(g);
  cr_assert_eq(count_gated(g), 2, "the two 1x1 readers take their gates");
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_MUL), 2, "the 3x3's and the output's stay");
  ir_graph_free(g);
  check_blocked(gated_convs(), 3, 2, NULL);
}

Test(blocked, a_gated_conv_for_x86_64_v3_and_v2_matches_reference) {
  check_blocked(gated_convs(), 1, 1, "x86-64-v3");
  check_blocked(gated_convs(), 2, 1, "x86-64-v2");
}

/* ShuffleNetV2's unit on the blocked layout: 64 channels in two chunks of
   32 (block aligned: blocked views), the branch, concat, shuffle(2) (the
   blocked gather), a conv after it; a slice not on a block boundary
   (channels 8..23: its input is reordered to NCHW) and a shuffle of 48
   channels in 3 groups. */
static Graph *blocked_shuffle(void) {
  Graph *g = ir_graph_new("blocked_shuffle");
  Node *x = input3(g, "x", 16, 7, 9);
  Node *c = conv(g, x, 64, 3, 3, 1, 1);
  Node *x1 = op1(g, OP_SLICE, c), *x2 = op1(g, OP_SLICE, c);
  x1->attr.chunks = x2->attr.chunks = 2;
  x2->attr.chunk_index = 1;
  fin(g, x1);
  fin(g, x2);
  Node *b = conv(g, x2, 32, 1, 1, 1, 0);
  Node *cat2[2] = {x1, b};
  Node *cat = fin(g, op(g, OP_CONCAT, cat2, 2));
  Node *sh = op1(g, OP_CHANNEL_SHUFFLE, cat);
  sh->attr.groups = 2;
  fin(g, sh);
  output(g, conv(g, sh, 32, 3, 3, 1, 1));
  Node *odd = op1(g, OP_SLICE, c);
  odd->attr.slice_begin = 8, odd->attr.slice_end = 24;
  output(g, conv(g, fin(g, odd), 16, 1, 1, 1, 0));
  Node *c48 = conv(g, x, 48, 1, 1, 1, 0);
  Node *sh3 = op1(g, OP_CHANNEL_SHUFFLE, c48);
  sh3->attr.groups = 3;
  output(g, fin(g, sh3));
  return g;
}

Test(blocked, chunks_concat_and_channel_shuffle_stay_blocked_and_match_reference) {
  Graph *g = blocked_shuffle();
  pass_layout(g);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_SLICE), 2, "the two aligned chunks");
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_CHANNEL_SHUFFLE), 2);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW, OP_SLICE), 1, "channels 8..23");
  ir_graph_free(g);
  check_blocked(blocked_shuffle(), 2, 2, NULL);
}

/* ConvNeXt's block on the blocked layout: depthwise 7x7 -> layernorm ->
   pointwise_linear (4x) -> GELU -> pointwise_linear -> + input; the
   layernorm stays blocked between blocked convs (no reorder), and the
   [out, in] weights of the 1x1 convs pack as [out, in, 1, 1] ones. */
static Graph *blocked_convnext(void) {
  Graph *g = ir_graph_new("blocked_convnext");
  Node *x = input3(g, "x", 16, 9, 11);
  Node *c = conv(g, x, 32, 3, 3, 1, 1);
  Node *dw = op1(g, OP_CONV2D, c);
  dw->attr.out_channels = 32, dw->attr.groups = 32;
  dw->attr.kernel[0] = dw->attr.kernel[1] = 7;
  for (int i = 0; i < 4; i++)
    dw->attr.pad[i] = 3;
  fin(g, dw);
  Node *ln = op1(g, OP_LAYERNORM, dw);
  ln->attr.eps = 1e-6f;
  fin(g, ln);
  Node *p1 = op1(g, OP_CONV2D, ln);
  p1->attr.out_channels = 128, p1->attr.linear_weight = true;
  p1->attr.kernel[0] = p1->attr.kernel[1] = 1;
  fin(g, p1);
  scale_weight(p1, 8);
  p1->epi.act = (Act){.kind = ACT_GELU};
  Node *p2 = op1(g, OP_CONV2D, p1);
  p2->attr.out_channels = 32, p2->attr.linear_weight = true;
  p2->attr.kernel[0] = p2->attr.kernel[1] = 1;
  fin(g, p2);
  add_residual(g, p2, c);
  output(g, p2);
  return g;
}

Test(blocked, convnext_block_with_layernorm_stays_blocked_and_matches_reference) {
  Graph *g = blocked_convnext();
  pass_layout(g);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_LAYERNORM), 1);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_CONV2D), 4);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW, OP_REORDER), 1, "only the output");
  ir_graph_free(g);
  check_blocked(blocked_convnext(), 2, 2, NULL);
}

/* Global average pooling of a 112x112 plane of one value per channel (a
   conv with zeroed weights: its bias) gives that value: the blocked
   kernel's sums must not drift as one float running sum does (~1e-4 of
   the value; it failed EfficientNet's e2e test). */
static Graph *blocked_large_avgpool(void) {
  Graph *g = ir_graph_new("blocked_apool_large");
  Node *x = input3(g, "x", 16, 112, 112);
  Node *c = conv(g, x, 32, 1, 1, 1, 0);
  scale_weight(c, 0);
  output(g, fin(g, op1(g, OP_ADAPTIVE_AVGPOOL, c)));
  return g;
}

Test(blocked, global_avgpool_of_a_large_constant_plane_is_the_constant) {
  Graph *g = blocked_large_avgpool();
  pass_layout(g);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_ADAPTIVE_AVGPOOL), 1);
  ir_graph_free(g);
  check_blocked(blocked_large_avgpool(), 2, 2, NULL);
}

/* Adaptive and global max pooling after a blocked conv stay blocked. */
static Graph *blocked_maxpools(void) {
  Graph *g = ir_graph_new("blocked_amax");
  Node *x = input3(g, "x", 16, 10, 7);
  Node *c = conv(g, x, 32, 3, 3, 1, 1);
  Node *a = op1(g, OP_ADAPTIVE_MAXPOOL, c);
  a->attr.out_hw[0] = 4, a->attr.out_hw[1] = 3;
  output(g, fin(g, a));
  output(g, fin(g, op1(g, OP_ADAPTIVE_MAXPOOL, c)));
  return g;
}

Test(blocked, adaptive_and_global_max_pooling_match_reference) {
  Graph *g = blocked_maxpools();
  pass_layout(g);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_ADAPTIVE_MAXPOOL), 2);
  ir_graph_free(g);
  check_blocked(blocked_maxpools(), 2, 2, NULL);
}

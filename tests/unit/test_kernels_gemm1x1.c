/*
 * test_kernels_gemm1x1.c: the register-tiled GEMM of NCHW 1x1 convs
 * (backend/gemm1x1.c), against ref_ops.c through backend_harness.h.
 */
#include <criterion/criterion.h>

#include "backend_harness.h"
#include "passes/passes.h"

/* 1x1 stride-1 convs whose output stays NCHW (channels not a multiple of
   16) run as a register-tiled GEMM (backend/gemm1x1.c): SqueezeNet's
   512 -> 1000 classifier on 13x13 (tail of 9 pixels, a last tile of fewer
   rows) with ReLU, 10 channels on 7 pixels with a residual and ReLU, fewer
   channels than a tile (3), 17 channels on exactly 16 pixels, and one
   behind a blocked conv (its input reordered to NCHW). */
static Graph *nchw_gemm(void) {
  Graph *g = ir_graph_new("nchw_gemm");
  Node *x = input3(g, "x", 512, 13, 13);
  Node *a = conv(g, x, 1000, 1, 1, 1, 0);
  a->epi.act.kind = ACT_RELU;
  Node *y = input3(g, "y", 24, 1, 7);
  Node *r = input3(g, "r", 10, 1, 7);
  Node *b = conv(g, y, 10, 1, 1, 1, 0);
  add_residual(g, b, r);
  b->epi.act.kind = ACT_RELU;
  Node *z = input3(g, "z", 5, 3, 3);
  Node *c = conv(g, z, 3, 1, 1, 1, 0);
  Node *u = input3(g, "u", 16, 4, 4);
  Node *d = conv(g, u, 17, 1, 1, 1, 0);
  Node *v = input3(g, "v", 16, 9, 11);
  Node *e = conv(g, conv(g, v, 32, 3, 3, 1, 1), 10, 1, 1, 1, 0); /* 99 pixels */
  e->epi.act.kind = ACT_RELU;
  output(g, a);
  output(g, b);
  output(g, c);
  output(g, d);
  output(g, e);
  return g;
}

Test(nchw_gemm, pointwise_convs_with_odd_channels_and_pixels_match_reference) {
  Graph *g = nchw_gemm();
  pass_layout(g);
  cr_assert_eq(count_layout(g, LAYOUT_NCHW16C, OP_CONV2D), 1);
  ir_graph_free(g);
  check_blocked(nchw_gemm(), 1, 1, NULL);
}

Test(nchw_gemm, batch_of_two_on_two_threads_matches_reference) {
  check_blocked(nchw_gemm(), 2, 2, NULL);
}

Test(nchw_gemm, x86_64_v3_without_avx512_matches_reference) {
  check_blocked(nchw_gemm(), 2, 2, "x86-64-v3");
}

Test(nchw_gemm, x86_64_v2_sse_without_fma_matches_reference) {
  check_blocked(nchw_gemm(), 2, 2, "x86-64-v2");
}

/* Every activation in the GEMM's epilogue (masked tail vectors included:
   7x5 pixels), weights scaled so the outputs spread over about +-12. */
Test(nchw_gemm, every_activation_epilogue_matches_reference_in_every_regime) {
  Graph *g = ir_graph_new("gemm_acts");
  Node *x = input3(g, "x", 24, 7, 5);
  for (int i = 0; i < harness_nacts; i++) {
    Node *c = conv(g, x, 10, 1, 1, 1, 0);
    scale_weight(c, 7);
    c->epi.act = harness_acts[i];
    output(g, c);
  }
  check_blocked(g, 1, 1, NULL);
}

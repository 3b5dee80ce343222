/*
 * test_kernels_nchw.c: every op's kernel on the plain NCHW layout (no
 * passes run: the graphs are compiled as built), against ref_ops.c, and
 * a small net of most ops at batch 3, -O0 and -O3 for a portable CPU.
 * How a test builds, compiles, runs and compares a graph, and the
 * tolerance: backend_harness.h.
 */
#include <criterion/criterion.h>

#include "backend_harness.h"

/* ------------------------------------------------------------------- conv2d */

Test(backend, conv2d_with_bias_and_same_padding_matches_reference) {
  Graph *g = ir_graph_new("conv");
  Node *x = input3(g, "image", 3, 11, 13);
  Node *c = op1(g, OP_CONV2D, x);
  c->attr.out_channels = 8;
  c->attr.kernel[0] = c->attr.kernel[1] = 3;
  for (int i = 0; i < 4; i++)
    c->attr.pad[i] = 1;
  fin(g, c);
  output(g, c);
  check_graph(g);
}

Test(backend, conv2d_with_groups_stride_asymmetric_padding_and_dilation_matches_reference) {
  Graph *g = ir_graph_new("conv");
  Node *x = input3(g, "image", 6, 17, 15);
  Node *c = op1(g, OP_CONV2D, x);
  c->attr.out_channels = 9;
  c->attr.groups = 3;
  c->attr.kernel[0] = 3, c->attr.kernel[1] = 2;
  c->attr.stride[0] = 2, c->attr.stride[1] = 3;
  c->attr.pad[0] = 2, c->attr.pad[1] = 0, c->attr.pad[2] = 1, c->attr.pad[3] = 3;
  c->attr.dilation[0] = 2, c->attr.dilation[1] = 3;
  fin(g, c);
  output(g, c);
  check_graph(g);
}

Test(backend, depthwise_conv2d_with_stride_two_matches_reference) {
  Graph *g = ir_graph_new("dw");
  Node *x = input3(g, "image", 8, 14, 14);
  Node *c = op1(g, OP_CONV2D, x);
  c->attr.out_channels = 8;
  c->attr.groups = 8;
  c->attr.kernel[0] = c->attr.kernel[1] = 3;
  c->attr.stride[0] = c->attr.stride[1] = 2;
  for (int i = 0; i < 4; i++)
    c->attr.pad[i] = 1;
  fin(g, c);
  output(g, c);
  check_graph(g);
}

Test(backend, conv2d_without_bias_with_residual_and_relu_epilogue_matches_reference) {
  Graph *g = ir_graph_new("res");
  Node *x = input3(g, "image", 4, 9, 9);
  Node *r = input3(g, "shortcut", 6, 9, 9);
  Node *c = op1(g, OP_CONV2D, x);
  c->attr.out_channels = 6;
  c->attr.has_bias = false;
  c->attr.kernel[0] = c->attr.kernel[1] = 3;
  for (int i = 0; i < 4; i++)
    c->attr.pad[i] = 1;
  fin(g, c);
  add_residual(g, c, r);
  c->epi.act.kind = ACT_RELU;
  output(g, c);
  check_graph(g);
}

Test(backend, large_first_layer_conv_with_7x7_kernel_matches_reference) {
  Graph *g = ir_graph_new("stem");
  Node *x = input3(g, "image", 3, 40, 40);
  Node *c = op1(g, OP_CONV2D, x);
  c->attr.out_channels = 16;
  c->attr.kernel[0] = c->attr.kernel[1] = 7;
  c->attr.stride[0] = c->attr.stride[1] = 2;
  for (int i = 0; i < 4; i++)
    c->attr.pad[i] = 3;
  fin(g, c);
  output(g, c);
  check_graph(g);
}

Test(backend, pointwise_conv2d_on_a_small_plane_with_residual_matches_reference) {
  Graph *g = ir_graph_new("pw");
  Node *x = input3(g, "x", 32, 7, 7);
  Node *r = input3(g, "r", 24, 7, 7);
  Node *c = op1(g, OP_CONV2D, x);
  c->attr.out_channels = 24;
  c->attr.groups = 2;
  c->attr.kernel[0] = c->attr.kernel[1] = 1;
  fin(g, c);
  add_residual(g, c, r);
  c->epi.act.kind = ACT_RELU;
  output(g, c);
  check_graph_opts(g, 2, 2, 1e-5);
}

/* ------------------------------------------------------- per-channel affine */

Test(backend, batchnorm_and_scaleshift_match_reference) {
  Graph *g = ir_graph_new("bn");
  Node *x = input3(g, "image", 5, 7, 6);
  Node *b = fin(g, op1(g, OP_BATCHNORM, x));
  b->attr.eps = 1e-3f;
  Node *s = fin(g, op1(g, OP_SCALESHIFT, b));
  s->epi.act.kind = ACT_RELU;
  output(g, b);
  output(g, s);
  check_graph(g);
}

Test(backend, batchnorm_on_a_feature_vector_matches_reference) {
  Graph *g = ir_graph_new("bn1d");
  Node *x = input1(g, "features", 37);
  Node *b = fin(g, op1(g, OP_BATCHNORM, x));
  output(g, b);
  check_graph(g);
}

/* -------------------------------------------------------------- elementwise */

Test(backend, relu_scale_add_and_mean_of_three_inputs_match_reference) {
  Graph *g = ir_graph_new("elt");
  Node *a = input3(g, "a", 3, 50, 61); /* > one 4096-element chunk */
  Node *b = input3(g, "b", 3, 50, 61);
  Node *c = input3(g, "c", 3, 50, 61);
  Node *r = fin(g, op1(g, OP_RELU, a));
  Node *s = op1(g, OP_SCALE, b);
  s->attr.scale = 0.37f;
  fin(g, s);
  Node *abc[3] = {r, s, c};
  Node *add = fin(g, op(g, OP_ADD, abc, 3));
  Node *mean = fin(g, op(g, OP_MEAN, abc, 3));
  mean->epi.act.kind = ACT_RELU;
  output(g, add);
  output(g, mean);
  check_graph_opts(g, 1, 2, 1e-5);
}

Test(backend, relu_running_in_place_matches_reference) {
  Graph *g = ir_graph_new("inplace");
  Node *x = input3(g, "x", 4, 10, 10);
  Node *s = op1(g, OP_SCALE, x);
  s->attr.scale = -2.0f;
  fin(g, s);
  Node *r = fin(g, op1(g, OP_RELU, s));
  Node *r2 = fin(g, op1(g, OP_SCALE, r));
  /* relu writes over its input; a second elementwise op too. */
  s->mem = (Mem){.kind = MEM_ARENA, .offset = 0};
  r->mem = (Mem){.kind = MEM_ALIAS, .alias_of = s};
  r2->mem = (Mem){.kind = MEM_ARENA, .offset = 0};
  g->arena_bytes = 4 * 10 * 10 * 4;
  output(g, r2);
  check_graph(g);
}

/* ------------------------------------------------------------------ pooling */

Test(backend, maxpool_with_ceil_mode_padding_and_dilation_matches_reference) {
  Graph *g = ir_graph_new("maxpool");
  Node *x = input3(g, "x", 3, 14, 13);
  output(g, pool(g, OP_MAXPOOL, x, 3, 2, 0, true, true)); /* AlexNet/GoogLeNet style */
  output(g, pool(g, OP_MAXPOOL, x, 3, 2, 1, true, true)); /* last window would start in padding */
  output(g, pool(g, OP_MAXPOOL, x, 2, 2, 0, false, true));
  Node *d = op1(g, OP_MAXPOOL, x);
  d->attr.kernel[0] = 3, d->attr.kernel[1] = 2;
  d->attr.stride[0] = 1, d->attr.stride[1] = 2;
  d->attr.pad[0] = 2, d->attr.pad[1] = 1, d->attr.pad[2] = 1, d->attr.pad[3] = 0;
  d->attr.dilation[0] = 2, d->attr.dilation[1] = 2;
  d->attr.ceil_mode = true;
  output(g, fin(g, d));
  check_graph(g);
}

Test(backend, avgpool_with_ceil_mode_and_count_include_pad_both_ways_matches_reference) {
  Graph *g = ir_graph_new("avgpool");
  Node *x = input3(g, "x", 4, 15, 16);
  output(g, pool(g, OP_AVGPOOL, x, 3, 2, 1, true, true));
  output(g, pool(g, OP_AVGPOOL, x, 3, 2, 1, true, false));
  output(g, pool(g, OP_AVGPOOL, x, 3, 2, 1, false, true));
  output(g, pool(g, OP_AVGPOOL, x, 3, 2, 1, false, false));
  output(g, pool(g, OP_AVGPOOL, x, 2, 2, 0, true, true));
  output(g, pool(g, OP_AVGPOOL, x, 3, 1, 1, false, false)); /* Inception's branch pool */
  check_graph(g);
}

Test(backend, adaptive_avgpool_with_non_divisible_sizes_matches_reference) {
  Graph *g = ir_graph_new("apool");
  Node *x = input3(g, "x", 3, 10, 7);
  Node *a = op1(g, OP_ADAPTIVE_AVGPOOL, x);
  a->attr.out_hw[0] = 4, a->attr.out_hw[1] = 3;
  output(g, fin(g, a));
  Node *b = op1(g, OP_ADAPTIVE_AVGPOOL, x);
  b->attr.out_hw[0] = 1, b->attr.out_hw[1] = 1; /* global pooling */
  output(g, fin(g, b));
  Node *c = op1(g, OP_ADAPTIVE_AVGPOOL, x);
  c->attr.out_hw[0] = 13, c->attr.out_hw[1] = 9; /* larger than the input */
  output(g, fin(g, c));
  check_graph(g);
}

/* The mean of a large plane of one value is that value: summed in one
   float running sum, 112x112 copies of a value that float cannot hold
   exactly drift by ~1e-4 of it (EfficientNet's squeeze-excitation pools
   112x112 SiLU outputs of similar size; the drift failed its e2e test).
   The conv's weights are zeroed: each channel is its bias. */
Test(backend, global_avgpool_of_a_large_constant_plane_is_the_constant) {
  Graph *g = ir_graph_new("apool_large");
  Node *x = input3(g, "x", 4, 112, 112);
  Node *c = conv(g, x, 8, 1, 1, 1, 0);
  scale_weight(c, 0);
  output(g, fin(g, op1(g, OP_ADAPTIVE_AVGPOOL, c)));
  Node *b = op1(g, OP_ADAPTIVE_AVGPOOL, c);
  b->attr.out_hw[0] = 2, b->attr.out_hw[1] = 3;
  output(g, fin(g, b));
  check_graph(g);
}

/* ---------------------------------------------------------------- lrn, fc */

Test(backend, local_response_norm_matches_reference) {
  Graph *g = ir_graph_new("lrn");
  Node *x = input3(g, "x", 9, 5, 6);
  Node *a = op1(g, OP_LRN, x);
  a->attr.lrn_size = 5, a->attr.alpha = 1e-2f, a->attr.beta = 0.75f, a->attr.k = 2.0f;
  output(g, fin(g, a));
  Node *b = op1(g, OP_LRN, x);
  b->attr.lrn_size = 4, b->attr.alpha = 0.3f, b->attr.beta = 0.5f, b->attr.k = 1.0f;
  output(g, fin(g, b));
  check_graph(g);
}

Test(backend, linear_on_a_rank3_input_flattens_it_and_matches_reference) {
  Graph *g = ir_graph_new("fc");
  Node *x = input3(g, "x", 8, 5, 7);
  Node *a = op1(g, OP_LINEAR, x);
  a->attr.out_features = 33;
  output(g, fin(g, a));
  Node *f = fin(g, op1(g, OP_FLATTEN, x));
  Node *b = op1(g, OP_LINEAR, f);
  b->attr.out_features = 10;
  b->attr.has_bias = false;
  fin(g, b);
  b->epi.act.kind = ACT_RELU;
  output(g, b);
  check_graph(g);
}

/* ------------------------------------------------------ concat and softmax */

Test(backend, concat_of_three_inputs_along_channels_matches_reference) {
  Graph *g = ir_graph_new("cat");
  Node *a = input3(g, "a", 2, 5, 5), *b = input3(g, "b", 3, 5, 5), *c = input3(g, "c", 1, 5, 5);
  Node *ra = fin(g, op1(g, OP_RELU, a));
  Node *abc[3] = {ra, b, c};
  output(g, fin(g, op(g, OP_CONCAT, abc, 3)));
  check_graph_opts(g, 1, 2, 1e-5);
}

Test(backend, concat_whose_inputs_already_live_in_their_slices_matches_reference) {
  Graph *g = ir_graph_new("cat_elim");
  Node *x = input3(g, "x", 3, 6, 6);
  Node *a = op1(g, OP_CONV2D, x);
  a->attr.out_channels = 4;
  a->attr.kernel[0] = a->attr.kernel[1] = 1;
  fin(g, a);
  Node *b = op1(g, OP_CONV2D, x);
  b->attr.out_channels = 5;
  b->attr.kernel[0] = b->attr.kernel[1] = 3;
  for (int i = 0; i < 4; i++)
    b->attr.pad[i] = 1;
  fin(g, b);
  Node *ab[2] = {a, b};
  Node *cat = fin(g, op(g, OP_CONCAT, ab, 2));
  cat->mem = (Mem){.kind = MEM_ARENA, .offset = 0};
  a->mem = (Mem){.kind = MEM_ALIAS, .alias_of = cat, .offset = 0};
  b->mem = (Mem){.kind = MEM_ALIAS, .alias_of = cat, .offset = 4 * 36 * 4};
  g->arena_bytes = 9 * 36 * 4 + 64;
  output(g, cat);
  check_graph(g);
}

Test(backend, softmax_over_features_and_over_channels_matches_reference) {
  Graph *g = ir_graph_new("softmax");
  Node *f = input1(g, "logits", 1000);
  Node *s = op1(g, OP_SCALE, f);
  s->attr.scale = 30.0f; /* large values: needs the max subtraction */
  output(g, fin(g, op1(g, OP_SOFTMAX, fin(g, s))));
  Node *x = input3(g, "x", 7, 3, 4);
  output(g, fin(g, op1(g, OP_SOFTMAX, x)));
  check_graph(g);
}

/* -------------------------------------------------------------- small nets */

Test(backend, small_net_with_batch_of_three_matches_reference_per_sample) {
  check_graph_opts(small_net(), 3, 1, 1e-5);
}

/* Builds g with options o (output set here), runs 2 samples, compares. */
static void check_with_options(Graph *g, BackendOptions o) {
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  o.output = l.so;
  cr_assert_eq(compile(g, &o), 0);
  lib_open(&l, l.so);
  char err[256];
  cnn_model *m = l.create(NULL, err, sizeof err);
  cr_assert(m, "%s", err);
  float **in = make_inputs(g, 2), **out = make_outputs(g, 2);
  cr_assert_eq(l.run(m, 2, (const float *const *)in, out), 0);
  compare(g, 2, in, out, 1e-5);
  free_bufs(in, g->ninputs);
  free_bufs(out, g->noutputs);
  l.destroy(m);
  lib_close(&l);
  ir_graph_free(g);
}

Test(backend, small_net_compiled_at_O0_matches_reference) {
  BackendOptions o = opts_for(NULL);
  o.opt_level = 0;
  check_with_options(small_net(), o);
}

Test(backend, small_net_compiled_at_O3_for_a_portable_cpu_matches_reference) {
  BackendOptions o = opts_for(NULL);
  o.opt_level = 3;
  o.target_cpu = "x86-64";
  check_with_options(small_net(), o);
}

/* ------------------------------------------------------------ activations */

/* Every activation as an op (the elementwise kernel), on inputs spread to
   [-12, 12] so that each reaches every regime (the harness checks). */
Test(backend, every_activation_op_matches_reference_in_every_regime) {
  Graph *g = ir_graph_new("acts");
  Node *x = input3(g, "x", 3, 20, 37);
  Node *s = op1(g, OP_SCALE, x);
  s->attr.scale = 12;
  fin(g, s);
  for (int i = 0; i < harness_nacts; i++)
    output(g, act_node(g, s, &harness_acts[i]));
  check_graph(g);
}

/* An activation op writing over its input (in place), after another. */
Test(backend, activation_ops_running_in_place_match_reference) {
  Graph *g = ir_graph_new("acts_inplace");
  Node *x = input3(g, "x", 4, 10, 10);
  Node *s = op1(g, OP_SCALE, x);
  s->attr.scale = 8;
  fin(g, s);
  Node *h = act_node(g, s, &(Act){.kind = ACT_HARDSWISH});
  Node *c = act_node(g, h, &(Act){.kind = ACT_CLAMP, .a = -0.2f, .b = 5});
  s->mem = (Mem){.kind = MEM_ARENA, .offset = 0};
  h->mem = (Mem){.kind = MEM_ALIAS, .alias_of = s};
  c->mem = (Mem){.kind = MEM_ALIAS, .alias_of = s};
  g->arena_bytes = 4 * 10 * 10 * 4;
  output(g, c);
  check_graph(g);
}

/* Every activation in the epilogue of a conv (with and without a residual
   add before it) and of a linear layer, weights scaled so the outputs
   spread over about +-12. */
Test(backend, conv2d_and_linear_apply_every_activation_epilogue_in_every_regime) {
  Graph *g = ir_graph_new("conv_acts");
  Node *x = input3(g, "image", 4, 9, 11);
  Node *r = input3(g, "res", 6, 9, 11);
  Node *f = input1(g, "features", 40);
  for (int i = 0; i < harness_nacts; i++) {
    Node *c = conv(g, x, 6, 3, 3, 1, 1);
    scale_weight(c, 6);
    if (i % 2)
      add_residual(g, c, r);
    c->epi.act = harness_acts[i];
    output(g, c);
    Node *l = op1(g, OP_LINEAR, f);
    l->attr.out_features = 64;
    fin(g, l);
    scale_weight(l, 5);
    l->epi.act = harness_acts[i];
    output(g, l);
  }
  check_graph(g);
}

/* A grouped 1x1 conv (the NCHW kernel's pointwise rows) with an
   activation, and the elementwise and affine kernels with every one. */
Test(backend, pointwise_conv_elementwise_and_affine_ops_apply_every_activation_epilogue) {
  Graph *g = ir_graph_new("elt_acts");
  Node *x = input3(g, "x", 4, 10, 10), *y = input3(g, "y", 4, 10, 10);
  Node *a = op1(g, OP_SCALE, x), *b = op1(g, OP_SCALE, y);
  a->attr.scale = b->attr.scale = 16;
  fin(g, a);
  fin(g, b);
  Node *pw = op1(g, OP_CONV2D, a);
  pw->attr.out_channels = 4, pw->attr.groups = 2;
  pw->attr.kernel[0] = pw->attr.kernel[1] = 1;
  fin(g, pw);
  scale_weight(pw, 2);
  pw->epi.act = (Act){.kind = ACT_GELU};
  output(g, pw);
  Node *ab[2] = {a, b};
  for (int i = 0; i < harness_nacts; i++) {
    Node *s = fin(g, op(g, OP_ADD, ab, 2));
    s->epi.act = harness_acts[i];
    output(g, s);
    Node *t = fin(g, op1(g, OP_SCALESHIFT, a));
    scale_weight(t, 8); /* the scale */
    t->epi.act = harness_acts[i];
    output(g, t);
  }
  Node *m = fin(g, op(g, OP_MEAN, ab, 2));
  m->epi.act = (Act){.kind = ACT_SILU};
  output(g, m);
  Node *bn = fin(g, op1(g, OP_BATCHNORM, a));
  bn->epi.act = (Act){.kind = ACT_HARDSWISH};
  output(g, bn);
  check_graph(g);
}

/* ------------------------------------------------------ mul and parameter */

/* mul of one shape, and by one value per channel ([C, 1, 1] and [C], as
   either input: squeeze-excitation's gate comes first in torchvision),
   with an activation epilogue; a parameter op's tensor as an output and as
   a layer scale. */
Test(backend, mul_of_one_shape_and_per_channel_and_parameter_ops_match_reference) {
  Graph *g = ir_graph_new("mul");
  Node *x = input3(g, "x", 6, 7, 9), *y = input3(g, "y", 6, 7, 9);
  Node *gate = input3(g, "gate", 6, 1, 1), *vec = input1(g, "vec", 6);
  Node *xy[2] = {x, y}, *gx[2] = {gate, x}, *xv[2] = {x, vec}, *vx[2] = {vec, x};
  output(g, fin(g, op(g, OP_MUL, xy, 2)));
  Node *m = fin(g, op(g, OP_MUL, gx, 2));
  m->epi.act = (Act){.kind = ACT_CLAMP, .a = -0.2f, .b = 0.3f};
  output(g, m);
  output(g, fin(g, op(g, OP_MUL, xv, 2)));
  output(g, fin(g, op(g, OP_MUL, vx, 2)));
  Node *p = op(g, OP_PARAMETER, NULL, 0);
  p->attr.param_shape = (Shape){3, {6, 1, 1}};
  fin(g, p);
  Node *px[2] = {p, x};
  output(g, fin(g, op(g, OP_MUL, px, 2)));
  Node *q = op(g, OP_PARAMETER, NULL, 0);
  q->attr.param_shape = (Shape){3, {2, 3, 5}};
  output(g, fin(g, q));
  check_graph_opts(g, 2, 2, 1e-5);
}

/* A per-channel mul writing over its big input (in place). */
Test(backend, mul_by_a_gate_running_in_place_matches_reference) {
  Graph *g = ir_graph_new("mul_inplace");
  Node *x = input3(g, "x", 4, 10, 10), *gate = input3(g, "gate", 4, 1, 1);
  Node *s = op1(g, OP_SCALE, x);
  s->attr.scale = 3;
  fin(g, s);
  Node *sg[2] = {s, gate};
  Node *m = fin(g, op(g, OP_MUL, sg, 2));
  s->mem = (Mem){.kind = MEM_ARENA, .offset = 0};
  m->mem = (Mem){.kind = MEM_ALIAS, .alias_of = s};
  g->arena_bytes = 4 * 10 * 10 * 4;
  output(g, m);
  check_graph(g);
}

/* ------------------------------------------- slices, chunks, channel shuffle */

static Node *slice(Graph *g, Node *x, int64_t begin, int64_t end) {
  Node *s = op1(g, OP_SLICE, x);
  s->attr.slice_begin = begin, s->attr.slice_end = end;
  return fin(g, s);
}

static Node *chunk(Graph *g, Node *x, int64_t chunks, int64_t index) {
  Node *s = op1(g, OP_SLICE, x);
  s->attr.chunks = chunks, s->attr.chunk_index = index;
  return fin(g, s);
}

static Node *shuffle(Graph *g, Node *x, int64_t groups) {
  Node *s = op1(g, OP_CHANNEL_SHUFFLE, x);
  s->attr.groups = groups;
  return fin(g, s);
}

/* ShuffleNetV2's unit on NCHW: x.chunk(2) (views, no copy), a branch on
   the second half, concat, channel_shuffle(2); a slice of a graph input;
   torch.chunk's short last chunk (10 channels in 3: 4, 4, 2); a shuffle in
   5 groups. */
Test(backend, slices_chunks_and_channel_shuffle_match_reference) {
  Graph *g = ir_graph_new("shuffle");
  Node *x = input3(g, "x", 10, 5, 6);
  Node *c = conv(g, x, 10, 1, 1, 1, 0);
  Node *x1 = chunk(g, c, 2, 0), *x2 = chunk(g, c, 2, 1);
  cr_assert_eq(x2->attr.slice_begin, 5);
  Node *b = conv(g, x2, 5, 3, 3, 1, 1);
  Node *cat2[2] = {x1, b};
  output(g, shuffle(g, fin(g, op(g, OP_CONCAT, cat2, 2)), 2));
  output(g, conv(g, slice(g, x, 3, 7), 4, 1, 1, 1, 0));
  Node *last = chunk(g, c, 3, 2);
  cr_assert_eq(last->shape.d[0], 2);
  output(g, conv(g, last, 3, 1, 1, 1, 0));
  output(g, shuffle(g, c, 5));
  check_graph_opts(g, 2, 2, 1e-5);
}

/* ---------------------------------------- layernorm and pointwise_linear */

static Node *layernorm(Graph *g, Node *x, float eps) {
  Node *n = op1(g, OP_LAYERNORM, x);
  n->attr.eps = eps;
  return fin(g, n);
}

/* A 1x1 conv whose weight has nn.Linear's shape [out, in] (the spec's
   pointwise_linear). */
static Node *pointwise_linear(Graph *g, Node *x, int64_t out) {
  Node *n = op1(g, OP_CONV2D, x);
  n->attr.out_channels = out;
  n->attr.kernel[0] = n->attr.kernel[1] = 1;
  n->attr.linear_weight = true;
  fin(g, n);
  cr_assert_eq(n->params[P_WEIGHT]->rank, 2);
  return n;
}

/* LayerNorm over channels: 45 pixels (a masked last vector of 13), exactly
   16 pixels, a vector of features, 768 channels of one pixel (ConvNeXt's
   head), on inputs with an offset (the mean matters); ConvNeXt's
   norm -> pointwise_linear -> GELU -> pointwise_linear on NCHW. */
Test(backend, layernorm_over_channels_and_pointwise_linear_match_reference) {
  Graph *g = ir_graph_new("layernorm");
  Node *x = input3(g, "x", 7, 5, 9);
  Node *s = op1(g, OP_SCALESHIFT, x);
  fin(g, s);
  output(g, layernorm(g, s, 1e-6f));
  output(g, layernorm(g, input3(g, "y", 20, 4, 4), 1e-5f));
  output(g, layernorm(g, input1(g, "f", 37), 1e-3f));
  output(g, layernorm(g, input3(g, "head", 768, 1, 1), 1e-6f));
  Node *ln = layernorm(g, s, 1e-6f);
  Node *p1 = pointwise_linear(g, ln, 28);
  scale_weight(p1, 15);
  p1->epi.act = (Act){.kind = ACT_GELU};
  output(g, pointwise_linear(g, p1, 7));
  check_graph_opts(g, 2, 2, 1e-5);
}

/* Adaptive max pooling with non-divisible bins, global max pooling, and a
   bin size larger than the input, as the average's test. */
Test(backend, adaptive_maxpool_with_non_divisible_sizes_matches_reference) {
  Graph *g = ir_graph_new("amax");
  Node *x = input3(g, "x", 3, 10, 7);
  int64_t sizes[3][2] = {{4, 3}, {1, 1}, {13, 9}};
  for (int i = 0; i < 3; i++) {
    Node *a = op1(g, OP_ADAPTIVE_MAXPOOL, x);
    a->attr.out_hw[0] = sizes[i][0], a->attr.out_hw[1] = sizes[i][1];
    output(g, fin(g, a));
  }
  check_graph(g);
}

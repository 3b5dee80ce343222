/*
 * test_backend.c: the backend and runtime against the reference ops, through
 * the helpers of backend_harness.h (how a test builds, compiles, runs and
 * compares a graph, and the tolerance, are stated there).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend_harness.h"
#include "passes/passes.h"

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
  c->epi.act = ACT_RELU;
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
  c->epi.act = ACT_RELU;
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
  s->epi.act = ACT_RELU;
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
  mean->epi.act = ACT_RELU;
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
  b->epi.act = ACT_RELU;
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

Test(backend, one_and_two_threads_give_identical_results) {
  Graph *g = small_net();
  Lib l = {0};
  lib_build(&l, g);
  char err[256];
  cnn_model *m = l.create(NULL, err, sizeof err);
  cr_assert(m, "%s", err);
  float **in = make_inputs(g, 2), **o1 = make_outputs(g, 2), **o2 = make_outputs(g, 2);
  cr_assert_eq(l.threads(m, 1), 0);
  cr_assert_eq(l.run(m, 2, (const float *const *)in, o1), 0);
  cr_assert_eq(l.threads(m, 2), 0);
  for (int rep = 0; rep < 20; rep++)
    cr_assert_eq(l.run(m, 2, (const float *const *)in, o2), 0);
  for (int i = 0; i < g->noutputs; i++)
    cr_assert(memcmp(o1[i], o2[i],
                     sizeof(float) * 2 * (size_t)shape_numel(&g->outputs[i].node->shape)) == 0,
              "output %d differs between 1 and 2 threads", i);
  cr_assert_eq(l.threads(m, 0), 0);
  cr_assert_eq(l.run(m, 2, (const float *const *)in, o2), 0);
  free_bufs(in, g->ninputs);
  free_bufs(o1, g->noutputs);
  free_bufs(o2, g->noutputs);
  l.destroy(m);
  lib_close(&l);
  ir_graph_free(g);
}

Test(backend, info_describes_the_network) {
  Graph *g = small_net();
  Lib l = {0};
  lib_build(&l, g);
  const cnn_info *info = l.info();
  cr_assert_eq(info->abi_version, CNN_ABI_VERSION);
  cr_assert_str_eq(info->name, "smallnet");
  cr_assert_str_eq(info->compiler, "cnncc test");
  cr_assert_eq(info->num_inputs, 1);
  cr_assert_eq(info->num_outputs, 2);
  cr_assert_str_eq(info->inputs[0].name, "image");
  cr_assert_eq(info->inputs[0].rank, 4);
  cr_assert(info->inputs[0].dims[0] == 1 && info->inputs[0].dims[1] == 3 &&
            info->inputs[0].dims[2] == 32 && info->inputs[0].dims[3] == 32);
  cr_assert_eq(info->outputs[0].rank, 2);
  cr_assert(info->outputs[0].dims[0] == 1 && info->outputs[0].dims[1] == 10);
  cr_assert_eq(info->num_params, ir_graph_param_count(g, true));
  cr_assert_eq(info->macs, ir_graph_macs(g));
  cr_assert_eq(info->arena_bytes, (uint64_t)g->arena_bytes);
  uint64_t wb = 0;
  for (int i = 0; i < g->params.len; i++)
    wb += (uint64_t)(param_numel(GRAPH_PARAM(g, i)) * 4 + 63) / 64 * 64;
  cr_assert_eq(info->weight_bytes, wb);
  lib_close(&l);
  ir_graph_free(g);
}

/* ------------------------------------------------------------ the .so file */

Test(backend, shared_object_exports_only_the_six_abi_functions_and_needs_only_libc) {
  Graph *g = small_net();
  Lib l = {0};
  lib_build(&l, g);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s'", l.so);
  char *out = run_cmd(cmd);
  static const char *want[] = {"cnn_get_info",        "cnn_create",     "cnn_run",
                               "cnn_set_num_threads", "cnn_last_error", "cnn_destroy"};
  int found = 0, lines = 0;
  for (char *s = strtok(out, "\n"); s; s = strtok(NULL, "\n")) {
    const char *name = strrchr(s, ' ');
    name = name ? name + 1 : s;
    bool ok = false;
    for (int i = 0; i < 6; i++)
      if (!strcmp(name, want[i]))
        ok = true;
    cr_expect(ok, "unexpected exported symbol: %s", s);
    found += ok;
    lines++;
  }
  cr_assert_eq(found, 6, "exports:\n%d lines, %d ABI functions", lines, found);
  free(out);
  snprintf(cmd, sizeof cmd, "ldd '%s'", l.so);
  out = run_cmd(cmd);
  for (char *s = strtok(out, "\n"); s; s = strtok(NULL, "\n"))
    cr_expect(strstr(s, "linux-vdso") || strstr(s, "libc.so") || strstr(s, "libm.so") ||
                  strstr(s, "libpthread.so") || strstr(s, "ld-linux"),
              "unexpected dependency: %s", s);
  free(out);
  /* The stack is not executable. */
  snprintf(cmd, sizeof cmd, "readelf -lW '%s' | grep GNU_STACK", l.so);
  out = run_cmd(cmd);
  cr_expect(strstr(out, "RW ") && !strstr(out, "RWE"), "GNU_STACK: %s", out);
  free(out);
  lib_close(&l);
  ir_graph_free(g);
}

Test(backend, cnn_run_with_null_pointers_or_batch_zero_returns_an_error) {
  Graph *g = small_net();
  Lib l = {0};
  lib_build(&l, g);
  cnn_model *m = l.create(NULL, NULL, 0);
  cr_assert(m);
  float **in = make_inputs(g, 1), **out = make_outputs(g, 1);
  cr_assert_eq(l.run(m, 0, (const float *const *)in, out), CNN_EINVAL);
  cr_assert(strstr(l.last_error(m), "batch"), "%s", l.last_error(m));
  cr_assert_eq(l.run(m, -3, (const float *const *)in, out), CNN_EINVAL);
  cr_assert_eq(l.run(m, 1, NULL, out), CNN_EINVAL);
  cr_assert_eq(l.run(m, 1, (const float *const *)in, NULL), CNN_EINVAL);
  float *nul[2] = {NULL, NULL};
  cr_assert_eq(l.run(m, 1, (const float *const *)in, nul), CNN_EINVAL);
  cr_assert(strstr(l.last_error(m), "outputs[0]"), "%s", l.last_error(m));
  cr_assert_eq(l.run(NULL, 1, (const float *const *)in, out), CNN_ESTATE);
  cr_assert_eq(l.threads(m, -1), CNN_EINVAL);
  cr_assert_eq(l.threads(NULL, 1), CNN_ESTATE);
  cr_assert_eq(l.run(m, 1, (const float *const *)in, out), CNN_OK);
  cr_assert_str_eq(l.last_error(m), "");
  cr_assert(l.last_error(NULL) && *l.last_error(NULL));
  free_bufs(in, g->ninputs);
  free_bufs(out, g->noutputs);
  l.destroy(m);
  l.destroy(NULL);
  lib_close(&l);
  ir_graph_free(g);
}

/* ---------------------------------------------------------- weight blobs */

Test(backend, external_weights_load_from_the_blob_and_match_reference) {
  Graph *g = small_net();
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  BackendOptions o = opts_for(l.so);
  o.external_weights = true;
  cr_assert_eq(compile(g, &o), 0);
  char wpath[160];
  snprintf(wpath, sizeof wpath, "%s.weights", l.so);
  cr_assert(access(wpath, R_OK) == 0, "no %s", wpath);
  lib_open(&l, l.so);
  char err[256];
  cr_assert_null(l.create(NULL, err, sizeof err), "create without a blob must fail");
  cr_assert(strstr(err, "external weights"), "%s", err);
  cnn_model *m = l.create(wpath, err, sizeof err);
  cr_assert(m, "%s", err);
  float **in = make_inputs(g, 2), **out = make_outputs(g, 2);
  cr_assert_eq(l.run(m, 2, (const float *const *)in, out), 0);
  compare(g, 2, in, out, 1e-5);
  free_bufs(in, g->ninputs);
  free_bufs(out, g->noutputs);
  l.destroy(m);
  cr_assert_null(l.create("/nonexistent/file.weights", err, sizeof err));
  cr_assert(strstr(err, "/nonexistent/file.weights"), "%s", err);
  /* A truncated copy is refused. */
  char trunc[200];
  snprintf(trunc, sizeof trunc, "%s/trunc.weights", l.dir);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "head -c 100 '%s' > '%s'", wpath, trunc);
  cr_assert_eq(system(cmd), 0);
  cr_assert_null(l.create(trunc, err, sizeof err));
  cr_assert(strstr(err, "truncated"), "%s", err);
  lib_close(&l);
  ir_graph_free(g);
}

Test(backend, weights_blob_of_another_network_is_refused) {
  /* Two graphs: the second differs in one layer's width. */
  Graph *g1 = small_net();
  Graph *g2 = ir_graph_new("smallnet");
  Node *x = input3(g2, "image", 3, 32, 32);
  Node *c = op1(g2, OP_CONV2D, x);
  c->attr.out_channels = 8;
  c->attr.kernel[0] = c->attr.kernel[1] = 3;
  fin(g2, c);
  output(g2, c);

  Lib l1 = {0}, l2 = {0};
  tmpdir_new(&l1);
  tmpdir_new(&l2);
  plan(g1);
  plan(g2);
  BackendOptions o1 = opts_for(l1.so), o2 = opts_for(l2.so);
  o1.external_weights = o2.external_weights = true;
  cr_assert_eq(compile(g1, &o1), 0);
  cr_assert_eq(compile(g2, &o2), 0);
  lib_open(&l1, l1.so);
  char w2[160], err[512];
  snprintf(w2, sizeof w2, "%s.weights", l2.so);
  cr_assert_null(l1.create(w2, err, sizeof err));
  cr_assert(strstr(err, "another network or build"), "%s", err);
  /* Recompiling the same graph gives the same build id: its blob loads. */
  Lib l3 = {0};
  tmpdir_new(&l3);
  BackendOptions o3 = opts_for(l3.so);
  o3.external_weights = true;
  cr_assert_eq(compile(g1, &o3), 0);
  char w3[160];
  snprintf(w3, sizeof w3, "%s.weights", l3.so);
  cnn_model *m = l1.create(w3, err, sizeof err);
  cr_assert(m, "%s", err);
  l1.destroy(m);
  lib_close(&l1);
  lib_close(&l2);
  lib_close(&l3);
  ir_graph_free(g1);
  ir_graph_free(g2);
}

/* ------------------------------------------------------------ error paths */

Test(backend, missing_output_directory_is_a_user_error_and_writes_nothing) {
  Graph *g = small_net();
  plan(g);
  BackendOptions o = opts_for("/tmp/cnncc-no-such-dir-for-sure/net.so");
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  Diag *d = diag_new(f, false);
  cr_assert_eq(backend_compile(g, &o, d), 1);
  diag_free(d);
  fclose(f);
  cr_assert(strstr(text, "does not exist"), "%s", text);
  free(text);
  ir_graph_free(g);
}

Test(backend, unplanned_graph_is_an_internal_error) {
  Graph *g = small_net();
  Lib l = {0};
  tmpdir_new(&l);
  BackendOptions o = opts_for(l.so);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  Diag *d = diag_new(f, false);
  cr_assert_eq(backend_compile(g, &o, d), 2);
  diag_free(d);
  fclose(f);
  cr_assert(strstr(text, "no planned storage"), "%s", text);
  free(text);
  cr_assert(access(l.so, F_OK) != 0, "a failed compile left %s", l.so);
  lib_close(&l);
  ir_graph_free(g);
}

Test(backend, failed_link_reports_the_linker_and_leaves_no_output) {
  Graph *g = small_net();
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  BackendOptions o = opts_for(l.so);
  o.runtime_lib = "/dev/null"; /* exists, but is no library */
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  Diag *d = diag_new(f, false);
  cr_assert_eq(backend_compile(g, &o, d), 1);
  diag_free(d);
  fclose(f);
  cr_assert(strstr(text, "linking"), "%s", text);
  free(text);
  DIR *dir = opendir(l.dir);
  struct dirent *e;
  int files = 0;
  while ((e = readdir(dir)))
    files += e->d_name[0] != '.';
  closedir(dir);
  cr_assert_eq(files, 0, "temporary files left behind in %s", l.dir);
  lib_close(&l);
  ir_graph_free(g);
}

Test(backend, llvm_ir_assembly_and_object_can_be_emitted) {
  Graph *g = small_net();
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  static const struct {
    EmitKind k;
    const char *name, *needle;
  } kinds[] = {{EMIT_LLVM, "net.ll", "define hidden void @cnnrt_forward"},
               {EMIT_ASM, "net.s", "cnnrt_forward:"},
               {EMIT_OBJ, "net.o", NULL}};
  for (int i = 0; i < 3; i++) {
    char path[200];
    snprintf(path, sizeof path, "%s/%s", l.dir, kinds[i].name);
    BackendOptions o = opts_for(path);
    o.emit = kinds[i].k;
    cr_assert_eq(compile(g, &o), 0, "%s", kinds[i].name);
    struct stat st;
    cr_assert(stat(path, &st) == 0 && st.st_size > 0, "%s", path);
    if (kinds[i].needle) {
      char cmd[512];
      snprintf(cmd, sizeof cmd, "grep -c '%s' '%s'", kinds[i].needle, path);
      char *out = run_cmd(cmd);
      cr_assert(atoi(out) > 0, "%s lacks %s", path, kinds[i].needle);
      free(out);
    }
  }
  lib_close(&l);
  ir_graph_free(g);
}

/* ------------------------------------------------------------ measurements */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Not a pass/fail speed test: prints compile time and GFLOP/s of a ResNet
   3x3 layer (64 -> 64 channels at 56x56) so regressions are visible. */
Test(backend, a_resnet_3x3_conv_compiles_and_runs_at_a_measured_speed) {
  Graph *g = ir_graph_new("conv3x3");
  Node *x = input3(g, "x", 64, 56, 56);
  Node *c = op1(g, OP_CONV2D, x);
  c->attr.out_channels = 64;
  c->attr.kernel[0] = c->attr.kernel[1] = 3;
  for (int i = 0; i < 4; i++)
    c->attr.pad[i] = 1;
  fin(g, c);
  c->epi.act = ACT_RELU;
  output(g, c);
  pass_layout(g); /* the blocked kernel, as -O1 and above compile it */
  ir_compact(g);
  Lib l = {0};
  double t0 = now_s();
  lib_build(&l, g);
  double tc = now_s() - t0;
  cnn_model *m = l.create(NULL, NULL, 0);
  cr_assert(m);
  float **in = make_inputs(g, 1), **out = make_outputs(g, 1);
  double flops = 2.0 * (double)ir_graph_macs(g);
  for (int th = 1; th <= 2; th++) {
    l.threads(m, th);
    l.run(m, 1, (const float *const *)in, out);
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
      double t = now_s();
      l.run(m, 1, (const float *const *)in, out);
      t = now_s() - t;
      if (t < best)
        best = t;
    }
    fprintf(stderr,
            "[measure] conv 64->64 3x3 56x56: compile %.0f ms, %d thread%s: "
            "%.2f ms, %.1f GFLOP/s\n",
            tc * 1e3, th, th > 1 ? "s" : "", best * 1e3, flops / best / 1e9);
  }
  compare(g, 1, in, out, 1e-5);
  free_bufs(in, g->ninputs);
  free_bufs(out, g->noutputs);
  l.destroy(m);
  lib_close(&l);
  ir_graph_free(g);
}

/* ------------------------------------------- the blocked layout (NCHW16c)

   These graphs go through passes/layout.c (blocked convs, pools, affine and
   elementwise ops, reorders) before the local planner, so the kernels of
   backend/blocked.c are compared with the same plain C reference. */

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
  c5->epi.act = ACT_RELU;
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
  ss->epi.act = ACT_RELU;
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
    s->epi.act = ACT_RELU;
    Node *sl[2];
    int64_t begin[2] = {0, 16}, cnt[2] = {16, 32};
    for (int i = 0; i < 2; i++) {
      sl[i] = op1(g, OP_SLICE, s);
      sl[i]->attr.slice_begin = begin[i];
      sl[i]->shape = (Shape){3, {cnt[i], 9, 7}};
    }
    Node *other = conv(g, a, 16, 1, 1, 1, 0);
    Node *in3[3] = {sl[1], other, sl[0]};
    Node *cat = fin(g, op(g, OP_CONCAT, in3, 3));
    output(g, other);
    output(g, cat);
    if (blocked) {
      pass_layout(g);
      ir_compact(g);
      cr_assert_eq(s->layout, LAYOUT_NCHW16C);
      cr_assert_eq(cat->layout, LAYOUT_NCHW16C);
    }
    /* cat at 0: [sl1 (32) | other (16) | sl0 (16)], then the rest. */
    int64_t plane = 9 * 7 * 4;
    cat->mem = (Mem){.kind = MEM_ARENA, .offset = 0};
    sl[1]->mem = (Mem){.kind = MEM_ALIAS, .alias_of = cat, .offset = 0};
    other->mem = (Mem){.kind = MEM_ALIAS, .alias_of = cat, .offset = 32 * plane};
    sl[0]->mem = (Mem){.kind = MEM_ALIAS, .alias_of = cat, .offset = 48 * plane};
    cat->elided = true;
    g->arena_bytes = (64 * plane + 63) & ~(int64_t)63;
    Lib l = {0};
    tmpdir_new(&l);
    plan(g);
    BackendOptions o = opts_for(l.so);
    cr_assert_eq(compile(g, &o), 0);
    lib_open(&l, l.so);
    cnn_model *m = l.create(NULL, NULL, 0);
    cr_assert(m);
    cr_assert_eq(l.threads(m, 2), 0);
    float **in = make_inputs(g, 2), **out = make_outputs(g, 2);
    cr_assert_eq(l.run(m, 2, (const float *const *)in, out), 0);
    compare(g, 2, in, out, 1e-5);
    free_bufs(in, g->ninputs);
    free_bufs(out, g->noutputs);
    l.destroy(m);
    lib_close(&l);
    ir_graph_free(g);
  }
}

/* ------------------------------------------------ grouped convs (grouped.c)
   Grouped convs whose groups have Cg = 1, 2, 4 or 8 input and output
   channels stay blocked (backend/grouped.c): ResNeXt's groups of 4 and 8,
   depthwise convs, stride 2, padding, dilation, wide kernels, bias,
   residual + ReLU epilogue, and one fed from the NCHW image (a reorder to
   blocked in front). Tolerance: 1e-5 of max |ref| as for the other convs
   (each output sums at most Cg*KH*KW = 72 products). */

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
  g1->epi.act = ACT_RELU;
  Node *sc = conv(g, a, 64, 1, 1, 2, 0);      /* 64x10x12 */
  Node *g2 = gconv(g, g1, 64, 3, 3, 2, 1, 8); /* Cg 8, stride 2: 64x10x12 */
  add_residual(g, g2, sc);
  g2->epi.act = ACT_RELU;
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

/* Groups the kernel does not take stay NCHW: 3 channels per group, and
   4 input but 8 output channels per group. */
Test(grouped, other_group_shapes_stay_nchw_and_match_reference) {
  for (int v = 0; v < 2; v++) {
    Graph *g = ir_graph_new("grouped_nchw");
    Node *x = input3(g, "x", 48, 9, 11);
    Node *c = gconv(g, x, v ? 96 : 48, 3, 3, 1, 1, v ? 12 : 16);
    output(g, c);
    pass_layout(g);
    cr_assert_eq(c->layout, LAYOUT_NCHW);
    ir_graph_free(g);
  }
  Graph *g = ir_graph_new("grouped_nchw");
  Node *x = input3(g, "x", 48, 9, 11);
  output(g, gconv(g, x, 96, 3, 3, 1, 1, 12));
  check_blocked(g, 1, 1, NULL);
}

/* A split grouped conv writing two slices into an elided concat. */
Test(grouped, split_grouped_conv_writes_its_slices_into_an_elided_concat) {
  Graph *g = ir_graph_new("gsplit");
  Node *x = input3(g, "x", 16, 9, 7);
  Node *a = conv(g, x, 48, 3, 3, 1, 1);
  Node *s = gconv(g, a, 48, 3, 3, 1, 1, 12);
  s->split = true;
  s->epi.act = ACT_RELU;
  Node *sl[2];
  int64_t begin[2] = {0, 16}, cnt[2] = {16, 32};
  for (int i = 0; i < 2; i++) {
    sl[i] = op1(g, OP_SLICE, s);
    sl[i]->attr.slice_begin = begin[i];
    sl[i]->shape = (Shape){3, {cnt[i], 9, 7}};
  }
  Node *other = conv(g, a, 16, 1, 1, 1, 0);
  Node *in3[3] = {sl[1], other, sl[0]};
  Node *cat = fin(g, op(g, OP_CONCAT, in3, 3));
  output(g, other);
  output(g, cat);
  pass_layout(g);
  ir_compact(g);
  cr_assert_eq(s->layout, LAYOUT_NCHW16C);
  cr_assert_eq(cat->layout, LAYOUT_NCHW16C);
  int64_t plane = 9 * 7 * 4;
  cat->mem = (Mem){.kind = MEM_ARENA, .offset = 0};
  sl[1]->mem = (Mem){.kind = MEM_ALIAS, .alias_of = cat, .offset = 0};
  other->mem = (Mem){.kind = MEM_ALIAS, .alias_of = cat, .offset = 32 * plane};
  sl[0]->mem = (Mem){.kind = MEM_ALIAS, .alias_of = cat, .offset = 48 * plane};
  cat->elided = true;
  g->arena_bytes = (64 * plane + 63) & ~(int64_t)63;
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  BackendOptions o = opts_for(l.so);
  cr_assert_eq(compile(g, &o), 0);
  lib_open(&l, l.so);
  cnn_model *m = l.create(NULL, NULL, 0);
  cr_assert(m);
  cr_assert_eq(l.threads(m, 2), 0);
  float **in = make_inputs(g, 2), **out = make_outputs(g, 2);
  cr_assert_eq(l.run(m, 2, (const float *const *)in, out), 0);
  compare(g, 2, in, out, 1e-5);
  free_bufs(in, g->ninputs);
  free_bufs(out, g->noutputs);
  l.destroy(m);
  lib_close(&l);
  ir_graph_free(g);
}

/* ------------------------------------------------- Winograd (winograd.c)

   3x3 stride-1 convs on the blocked layout with BackendOptions.winograd
   set: F(4x4,3x3) from 28x28 outputs, F(2x2,3x3) below, for >= 64 input
   channels (CNNCC_WINOGRAD_MIN_IC / _MIN_HW lower that here, and
   CNNCC_WINOGRAD_M forces one m). The bound the docs state is
   1e-3 * max|ref|; these random-data layers stay within 1e-4. The
   transformed weights are larger than the 3x3 ones, which shows in
   cnn_info.weight_bytes: that is how the tests see the path was taken.
   The graph inputs go through a 1x1 conv first: a conv on a graph input
   reads it as NCHW (the first-layer kernel). */

static Node *blocked_input(Graph *g, const char *name, int64_t c, int64_t h, int64_t w) {
  return conv(g, input3(g, name, c, h, w), c, 1, 1, 1, 0);
}

/* extra: how many more floats the transformed weights take (0: none may). */
static void check_wino(Graph *g, int64_t batch, int threads, const char *cpu, int64_t extra) {
  pass_layout(g);
  ir_compact(g);
  cr_assert_eq(ir_verify(g, stderr), 0);
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  BackendOptions o = opts_for(l.so);
  o.target_cpu = cpu;
  o.winograd = 1;
  cr_assert_eq(compile(g, &o), 0);
  lib_open(&l, l.so);
  const cnn_info *info = l.info();
  uint64_t param_bytes = 0;
  for (int i = 0; i < g->params.len; i++)
    param_bytes += (uint64_t)param_numel(GRAPH_PARAM(g, i)) * 4;
  uint64_t pad = 64 * (uint64_t)g->params.len;
  cr_assert_geq(info->weight_bytes, param_bytes + 4 * (uint64_t)extra,
                "Winograd path not taken? %llu %llu", (unsigned long long)info->weight_bytes,
                (unsigned long long)param_bytes);
  cr_assert_leq(info->weight_bytes, param_bytes + 4 * (uint64_t)extra + pad,
                "Winograd path taken?");
  char err[256];
  cnn_model *m = l.create(NULL, err, sizeof err);
  cr_assert(m, "%s", err);
  cr_assert_eq(l.threads(m, threads), 0);
  float **in = make_inputs(g, batch), **out = make_outputs(g, batch);
  cr_assert_eq(l.run(m, batch, (const float *const *)in, out), 0, "%s", l.last_error(m));
  compare(g, batch, in, out, 1e-4);
  free_bufs(in, g->ninputs);
  free_bufs(out, g->noutputs);
  l.destroy(m);
  lib_close(&l);
  ir_graph_free(g);
}

/* F(4x4): odd 29x31 plane (partial tiles at the bottom and right), 48
   output channels (3 blocks: one block per tile group), residual + ReLU;
   then an unpadded conv with bias only (27x29 output: F(2x2)). */
static Graph *wino_f4(void) {
  Graph *g = ir_graph_new("wino_f4");
  Node *x = blocked_input(g, "x", 64, 29, 31);
  Node *r = blocked_input(g, "r", 48, 29, 31);
  Node *a = conv(g, x, 48, 3, 3, 1, 1);
  add_residual(g, a, r);
  a->epi.act = ACT_RELU;
  Node *b = conv(g, x, 64, 3, 3, 1, 0);
  output(g, a);
  output(g, b);
  return g;
}

Test(winograd, f4x4_with_partial_tiles_residual_relu_and_no_padding_matches_reference) {
  check_wino(wino_f4(), 1, 1, NULL, 27 * 64 * 48 + 7 * 64 * 64);
}

Test(winograd, f4x4_batch_of_two_on_two_threads_matches_reference) {
  check_wino(wino_f4(), 2, 2, NULL, 27 * 64 * 48 + 7 * 64 * 64);
}

Test(winograd, f4x4_for_x86_64_v3_without_avx512_matches_reference) {
  check_wino(wino_f4(), 1, 2, "x86-64-v3", 27 * 64 * 48 + 7 * 64 * 64);
}

/* F(2x2): 512 -> 32 channels on 14x14 (the late ResNet/VGG stages), and
   64 -> 64 on an odd 17x15 plane. */
static Graph *wino_f2(void) {
  Graph *g = ir_graph_new("wino_f2");
  Node *x = blocked_input(g, "x", 512, 14, 14);
  Node *a = conv(g, x, 32, 3, 3, 1, 1);
  Node *y = blocked_input(g, "y", 64, 17, 15);
  Node *b = conv(g, y, 64, 3, 3, 1, 1);
  b->epi.act = ACT_RELU;
  output(g, a);
  output(g, b);
  return g;
}

Test(winograd, f2x2_with_512_channels_and_odd_planes_matches_reference) {
  check_wino(wino_f2(), 1, 2, NULL, 7 * (512 * 32 + 64 * 64));
}

/* 32 channels, each m forced on a small odd plane (CNNCC_WINOGRAD_* are
   read per compilation): a chain of two Winograd convs, residual + ReLU. */
static Graph *wino_small(void) {
  Graph *g = ir_graph_new("wino_small");
  Node *x = blocked_input(g, "x", 32, 9, 11);
  Node *a = conv(g, x, 32, 3, 3, 1, 1);
  Node *b = conv(g, a, 32, 3, 3, 1, 1);
  add_residual(g, b, x);
  b->epi.act = ACT_RELU;
  output(g, b);
  return g;
}

Test(winograd, forced_f2x2_and_f4x4_on_16_channels_match_reference) {
  setenv("CNNCC_WINOGRAD_MIN_IC", "32", 1);
  setenv("CNNCC_WINOGRAD_MIN_HW", "1", 1);
  setenv("CNNCC_WINOGRAD_M", "2", 1);
  check_wino(wino_small(), 2, 2, NULL, 7 * (32 * 32 * 2));
  setenv("CNNCC_WINOGRAD_M", "4", 1);
  check_wino(wino_small(), 1, 1, NULL, 27 * (32 * 32 * 2));
  unsetenv("CNNCC_WINOGRAD_M");
  unsetenv("CNNCC_WINOGRAD_MIN_IC");
  unsetenv("CNNCC_WINOGRAD_MIN_HW");
}

/* The cost rule keeps small layers on the direct kernel: 32 input
   channels, and a 7x7 plane. */
Test(winograd, small_layers_stay_direct) {
  Graph *g = ir_graph_new("wino_none");
  Node *x = blocked_input(g, "x", 32, 30, 30);
  output(g, conv(g, x, 64, 3, 3, 1, 1));
  Node *y = blocked_input(g, "y", 128, 7, 7);
  output(g, conv(g, y, 64, 3, 3, 1, 1));
  check_wino(g, 1, 1, NULL, 0);
}

/* Tight scratch budgets (one input block per V buffer, so M accumulates
   over several runs of channels; one tile group per item) and chunks of
   several register tiles, as the tuning variables allow. */
Test(winograd, small_buffers_and_multi_tile_chunks_match_reference) {
  setenv("CNNCC_WINOGRAD_VKB", "16", 1);
  setenv("CNNCC_WINOGRAD_MKB", "1", 1);
  setenv("CNNCC_WINOGRAD_NS", "3", 1);
  check_wino(wino_f4(), 1, 2, NULL, 27 * 64 * 48 + 7 * 64 * 64);
  check_wino(wino_f2(), 1, 1, NULL, 7 * (512 * 32 + 64 * 64));
  unsetenv("CNNCC_WINOGRAD_VKB");
  unsetenv("CNNCC_WINOGRAD_MKB");
  unsetenv("CNNCC_WINOGRAD_NS");
}

/* ------------------------------------------------------ NCHW 1x1 conv GEMM */

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
  a->epi.act = ACT_RELU;
  Node *y = input3(g, "y", 24, 1, 7);
  Node *r = input3(g, "r", 10, 1, 7);
  Node *b = conv(g, y, 10, 1, 1, 1, 0);
  add_residual(g, b, r);
  b->epi.act = ACT_RELU;
  Node *z = input3(g, "z", 5, 3, 3);
  Node *c = conv(g, z, 3, 1, 1, 1, 0);
  Node *u = input3(g, "u", 16, 4, 4);
  Node *d = conv(g, u, 17, 1, 1, 1, 0);
  Node *v = input3(g, "v", 16, 9, 11);
  Node *e = conv(g, conv(g, v, 32, 3, 3, 1, 1), 10, 1, 1, 1, 0); /* 99 pixels */
  e->epi.act = ACT_RELU;
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

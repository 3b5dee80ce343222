/*
 * test_kernels_linear.c: linear layers over the rows of a batch
 * (backend/linear.c) and the batched tail that runs them once per group of
 * samples (backend/codegen.c, runtime/runtime.c): every sample compared
 * with ref_ops.c at batches that fill a group of 8, pass it and leave a
 * rest, on 1 and 2 threads, and each sample the same bits as alone in a
 * batch of 1; which graphs get a tail (the generated cnnrt_tail_tile).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_harness.h"

/* A tail of three linear layers (K = 37, 70, 33: whole vectors of 32 and
   a rest), a ReLU epilogue, a residual add, a separate activation op and a
   softmax, after a conv front; outputs the softmax and a linear. */
static Graph *tail_net(void) {
  Graph *g = ir_graph_new("tailnet");
  Node *x = input3(g, "image", 3, 9, 7);
  Node *c = conv(g, x, 5, 3, 3, 2, 1); /* 5 x 5 x 4 = 100 features */
  Node *f = fin(g, op1(g, OP_FLATTEN, c));
  Node *a = op1(g, OP_LINEAR, f);
  a->attr.out_features = 70;
  fin(g, a);
  a->epi.act.kind = ACT_RELU;
  Node *b = op1(g, OP_LINEAR, a);
  b->attr.out_features = 33;
  fin(g, b);
  Node *s = fin(g, op1(g, OP_SIGMOID, b));
  Node *d = op1(g, OP_LINEAR, s);
  d->attr.out_features = 33;
  d->attr.has_bias = false;
  fin(g, d);
  add_residual(g, d, b);
  Node *sm = fin(g, op1(g, OP_SOFTMAX, d));
  output(g, sm);
  output(g, b);
  return g;
}

/* Runs g (compiled for cpu, NULL: the host) at each batch on 1 and 2
   threads; compares with the reference and each sample with its output
   alone. */
static void check_batches_for(Graph *g, const char *cpu, const int64_t *batches, int nb) {
  Lib l = {0};
  lib_build_for(&l, g, PRECISION_FP32, cpu, true);
  char err[256];
  cnn_model *m = l.create(NULL, err, sizeof err);
  cr_assert(m, "cnn_create: %s", err);
  int64_t maxb = 0;
  for (int i = 0; i < nb; i++)
    maxb = batches[i] > maxb ? batches[i] : maxb;
  float **in = make_inputs(g, maxb), **alone = make_outputs(g, maxb);
  for (int64_t s = 0; s < maxb; s++) {
    const float *ins[8];
    float *outs[8];
    for (int i = 0; i < g->ninputs; i++)
      ins[i] = in[i] + s * shape_numel(&g->inputs[i].node->shape);
    for (int i = 0; i < g->noutputs; i++)
      outs[i] = alone[i] + s * shape_numel(&g->outputs[i].node->shape);
    cr_assert_eq(l.run(m, 1, ins, outs), 0, "%s", l.last_error(m));
  }
  for (int i = 0; i < nb; i++)
    for (int t = 1; t <= 2; t++) {
      cr_assert_eq(l.threads(m, t), 0);
      float **out = make_outputs(g, batches[i]);
      cr_assert_eq(l.run(m, batches[i], (const float *const *)in, out), 0, "%s", l.last_error(m));
      compare(g, batches[i], in, out, 1e-5);
      for (int o = 0; o < g->noutputs; o++) {
        size_t n = (size_t)(batches[i] * shape_numel(&g->outputs[o].node->shape));
        cr_assert(!memcmp(out[o], alone[o], n * sizeof(float)),
                  "output %d at batch %lld, %d threads: not the bits of batch 1", o,
                  (long long)batches[i], t);
      }
      free_bufs(out, g->noutputs);
    }
  free_bufs(in, g->ninputs);
  free_bufs(alone, g->noutputs);
  l.destroy(m);
  lib_close(&l);
  ir_graph_free(g);
}

static void check_batches(Graph *g, const int64_t *batches, int nb) {
  check_batches_for(g, NULL, batches, nb);
}

/* Feature counts around the blocks of 16 of the packed weight and K not a
   multiple of 4 or 16: x (K = 45) -> a: 181 features (12 blocks, the last
   one of 5), bias, clamp epilogue -> d: 112 (7 whole blocks), bias -> b:
   5 (one partial block), no bias, plus the residual e: 5 features on x.
   With 1 and 2 threads the blocks split into whole register tiles and
   every narrower rest tile (linear.c: F, F/2, ..., 1). */
static Graph *blocks_net(void) {
  Graph *g = ir_graph_new("blocks");
  Node *x = input1(g, "x", 45);
  Node *a = op1(g, OP_LINEAR, x);
  a->attr.out_features = 181;
  fin(g, a);
  scale_weight(a, 4.0f); /* both bounds of the clamp reached */
  a->epi.act = (Act){.kind = ACT_CLAMP, .a = -1, .b = 1.5f};
  Node *d = op1(g, OP_LINEAR, a);
  d->attr.out_features = 112;
  fin(g, d);
  Node *e = op1(g, OP_LINEAR, x);
  e->attr.out_features = 5;
  fin(g, e);
  Node *b = op1(g, OP_LINEAR, d);
  b->attr.out_features = 5;
  b->attr.has_bias = false;
  fin(g, b);
  add_residual(g, b, e);
  output(g, b);
  output(g, a);
  return g;
}

/* Every rest of a group of 8 (1-7 samples: each its own register tile),
   whole groups and a group plus one. */
static const int64_t every_rest[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16};

Test(linear, partial_feature_blocks_and_every_rest_of_a_group_match_reference) {
  check_batches(blocks_net(), every_rest, 10);
}

/* The register tiles of AVX2 (6 samples) and SSE (2 samples, no FMA). */
Test(linear, partial_feature_blocks_match_reference_on_avx2_and_sse) {
  if (!host_has("avx2,fma"))
    cr_skip_test("this host has no AVX2");
  check_batches_for(blocks_net(), "x86-64-v3", every_rest, 10);
  check_batches_for(blocks_net(), "x86-64-v2", every_rest, 10);
}

Test(linear, batched_tail_matches_reference_and_batch_one_at_every_batch) {
  const int64_t batches[] = {1, 3, 8, 11, 19};
  check_batches(tail_net(), batches, 5);
}

Test(linear, small_net_with_a_linear_and_softmax_tail_matches_at_batches_of_8_and_9) {
  const int64_t batches[] = {8, 9};
  check_batches(small_net(), batches, 2);
}

/* A linear layer straight on a host input: the head copies the input into
   the slot. */
Test(linear, linear_on_a_host_input_in_the_tail_matches_reference) {
  Graph *g = ir_graph_new("hostin");
  Node *x = input1(g, "x", 45);
  Node *a = op1(g, OP_LINEAR, x);
  a->attr.out_features = 17;
  output(g, fin(g, a));
  const int64_t batches[] = {1, 8, 10};
  check_batches(g, batches, 3);
}

/* The generated tail tile: 8 with a linear tail, 0 without one. */
static int tail_tile_of(Graph *g) {
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  char path[200];
  snprintf(path, sizeof path, "%s/net.ll", l.dir);
  BackendOptions o = opts_for(path);
  o.emit = EMIT_LLVM;
  cr_assert_eq(compile(g, &o), 0);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "sed -n 's/^@cnnrt_tail_tile = .* i32 \\([0-9]*\\).*/\\1/p' '%s'",
           path);
  char *out = run_cmd(cmd);
  cr_assert(out[0], "no cnnrt_tail_tile in %s", path);
  int t = atoi(out);
  free(out);
  lib_close(&l);
  ir_graph_free(g);
  return t;
}

Test(linear, a_network_gets_a_batched_tail_only_when_it_ends_in_linear_layers) {
  cr_expect_eq(tail_tile_of(tail_net()), 8);
  cr_expect_eq(tail_tile_of(small_net()), 8);
  Graph *g = ir_graph_new("convonly");
  Node *x = input3(g, "image", 3, 8, 8);
  output(g, conv(g, x, 4, 3, 3, 1, 1));
  cr_expect_eq(tail_tile_of(g), 0);
}

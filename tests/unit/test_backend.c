/*
 * test_backend.c: what is left of the backend tests while they move to one
 * file per subject: the host ABI of a compiled .so, and a ResNet 3x3 conv.
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

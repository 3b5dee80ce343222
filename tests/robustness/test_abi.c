/*
 * test_abi.c: the host ABI (runtime/cnn.h) of a .so that backend_compile
 * writes from a graph built here (small_net of tests/unit/backend_harness.h):
 * the .so exports only the ABI functions and needs only libc; cnn_get_info
 * describes the network; cnn_run refuses NULL pointers and batch zero;
 * external weights load from their blob, and a blob of another network is
 * refused; one and two threads give identical results.
 *
 * test_runtime.c abuses the same ABI through models compiled by the cnncc
 * command; these tests build their graphs with the IR API, so they can
 * compare cnn_info with the graph and outputs with the reference ops.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_harness.h"

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
  /* Every parameter as PyTorch lays it out, but a linear's weight packed
     in blocks of 16 features (backend/linear.c: N rounded up to 16). */
  uint64_t wb = 0;
  for (int i = 0; i < g->params.len; i++) {
    const Param *p = GRAPH_PARAM(g, i);
    int64_t n = param_numel(p);
    for (int j = 0; j < g->nodes.len; j++) {
      const Node *nd = GRAPH_NODE(g, j);
      if (nd->op == OP_LINEAR && nd->params[P_WEIGHT] == p)
        n = n / nd->shape.d[0] * ((nd->shape.d[0] + 15) / 16 * 16);
    }
    wb += (uint64_t)(n * 4 + 63) / 64 * 64;
  }
  cr_assert_eq(info->weight_bytes, wb);
  lib_close(&l);
  ir_graph_free(g);
}

/* ------------------------------------------------------------ the .so file */

Test(backend, shared_object_exports_only_the_eight_abi_functions_and_needs_only_libc) {
  Graph *g = small_net();
  Lib l = {0};
  lib_build(&l, g);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s'", l.so);
  char *out = run_cmd(cmd);
  static const char *want[] = {
      "cnn_get_info",   "cnn_create",  "cnn_run",         "cnn_set_num_threads",
      "cnn_last_error", "cnn_destroy", "cnn_set_profile", "cnn_set_batch_parallel"};
  int found = 0, lines = 0;
  for (char *s = strtok(out, "\n"); s; s = strtok(NULL, "\n")) {
    const char *name = strrchr(s, ' ');
    name = name ? name + 1 : s;
    bool ok = false;
    for (int i = 0; i < 8; i++)
      if (!strcmp(name, want[i]))
        ok = true;
    cr_expect(ok, "unexpected exported symbol: %s", s);
    found += ok;
    lines++;
  }
  cr_assert_eq(found, 8, "exports:\n%d lines, %d ABI functions", lines, found);
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

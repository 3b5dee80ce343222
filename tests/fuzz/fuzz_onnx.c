/*
 * fuzz_onnx.c: libFuzzer target for the ONNX frontend and the passes.
 *
 * One input is the bytes of an ONNX model. It goes through everything
 * cnncc does before the LLVM backend:
 *
 *   onnx_load_memory -> ir_verify -> passes_run (-O2, ir_verify after every
 *   pass) -> ir_print
 *
 * A rejected model must come back as NULL with at least one error; an
 * accepted one must verify before and after every pass. Graphs too large to
 * run the passes on quickly stop after the frontend (as in fuzz_spec.c).
 *
 * Seeds: the models of Debian's libonnx-testdata (tools/fuzz.sh copies them
 * into the corpus; the replay test runs them in every build) and
 * tests/fuzz/regressions/onnx.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "ir/ir.h"
#include "passes/passes.h"

#define FUZZ_MAX_PARAM_ELEMS ((int64_t)1 << 22)
#define FUZZ_MAX_NODES 300

static FILE *sink;

/* libFuzzer's entry points (it declares them itself). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  sink = fopen("/dev/null", "w");
  if (!sink)
    abort();
  return 0;
}

static bool small(const Graph *g) {
  int64_t n = 0;
  for (int i = 0; i < g->params.len; i++)
    n += param_numel(GRAPH_PARAM(g, i));
  return n <= FUZZ_MAX_PARAM_ELEMS && g->nodes.len <= FUZZ_MAX_NODES;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Diag *d = diag_new(sink, false);
  Graph *g = onnx_load_memory(data, size, "fuzz.onnx", NULL, d);
  if (!g && diag_error_count(d) == 0) {
    fprintf(stderr, "onnx_load_memory returned NULL without an error\n");
    __builtin_trap();
  }
  if (g && diag_error_count(d) != 0) {
    fprintf(stderr, "onnx_load_memory returned a graph after an error\n");
    __builtin_trap();
  }
#ifdef CNNCC_FUZZ_REPLAY
  fprintf(stderr, "  %s%s\n", g ? "accepted" : "rejected",
          g && !small(g) ? " (too large for the passes)" : "");
#endif
  if (g && small(g)) {
    if (ir_verify(g, stderr) != 0) {
      fprintf(stderr, "the ONNX frontend built a graph that does not verify\n");
      __builtin_trap();
    }
    PassOptions po = {.opt_level = 2, .print_out = sink, .verify = true};
    passes_run(g, &po);
    ir_print(g, sink);
  }
  ir_graph_free(g);
  diag_free(d);
  return 0;
}

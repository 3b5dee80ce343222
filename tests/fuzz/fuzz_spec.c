/*
 * fuzz_spec.c: libFuzzer target for the spec frontend and the passes.
 *
 * One input is the text of a spec. It goes through everything cnncc does
 * before the LLVM backend:
 *
 *   spec_load_string -> weights_init_deterministic -> ir_verify
 *     -> passes_run (-O2, ir_verify after every pass) -> ir_print
 *
 * Rejected specs must come back as NULL with at least one error and nothing
 * leaked; accepted ones must verify before and after every pass. A failed
 * verification is a bug in the frontend or a pass, so it traps. An accepted
 * spec must also write back (spec_write, --emit=spec) as a flat spec that
 * loads as the same graph, modulo names (check_written).
 *
 * Includes are resolved against examples/ (the harness chdirs there), so the
 * zoo specs, which include blocks/NAME.yaml, work as seeds.
 *
 * Graphs with more than FUZZ_MAX_PARAM_ELEMS parameter values or
 * FUZZ_MAX_NODES nodes stop after the frontend: filling and folding hundreds
 * of MB, or verifying a ResNet-164 after every pass (seconds under ASan),
 * per input would make fuzzing slow and hit libFuzzer's memory limit without
 * testing anything new (the size checks themselves are in the frontend,
 * which still runs).
 *
 * Built two ways (tests/fuzz/CMakeLists.txt): with -fsanitize=fuzzer as a
 * libFuzzer binary, and with replay_main.c as a plain program that runs the
 * seeds and regressions/ in every build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
  if (chdir(CNNCC_SOURCE_DIR "/examples") != 0) {
    perror("chdir " CNNCC_SOURCE_DIR "/examples");
    abort();
  }
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

/* g written as a spec loads back as the same graph, modulo names, with its
   parameters under the names the writer gave them. */
static void check_written(Graph *g) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  Diag *d = diag_new(sink, false);
  NamedParam *params;
  int n;
  bool ok = spec_write(g, NULL, f, &params, &n, d);
  fclose(f);
  if (!ok) {
    fprintf(stderr, "an accepted spec cannot be written back\n");
    __builtin_trap();
  }
  Graph *r = spec_load_string("written.yaml", text, d);
  if (!r) {
    fprintf(stderr, "the written spec is rejected:\n%s\n", text);
    __builtin_trap();
  }
  char *a = ir_print_modulo_names(g), *b = ir_print_modulo_names(r);
  if (strcmp(a, b) != 0 || n != r->params.len) {
    fprintf(stderr, "the written spec is another graph:\n%s\n--- was:\n%s\n--- now:\n%s\n", text, a,
            b);
    __builtin_trap();
  }
  for (int i = 0; i < n; i++)
    if (strcmp(params[i].name, GRAPH_PARAM(r, i)->name) != 0) {
      fprintf(stderr, "parameter %d is '%s', not '%s'\n", i, GRAPH_PARAM(r, i)->name,
              params[i].name);
      __builtin_trap();
    }
  free(a);
  free(b);
  ir_graph_free(r);
  diag_free(d);
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = 0;

  Diag *d = diag_new(sink, false);
  Graph *g = spec_load_string("fuzz.yaml", text, d);
  if (!g && diag_error_count(d) == 0) {
    fprintf(stderr, "spec_load_string returned NULL without an error\n");
    __builtin_trap();
  }
  if (g && diag_error_count(d) != 0) {
    fprintf(stderr, "spec_load_string returned a graph after an error\n");
    __builtin_trap();
  }
#ifdef CNNCC_FUZZ_REPLAY
  fprintf(stderr, "  %s%s\n", g ? "accepted" : "rejected",
          g && !small(g) ? " (too large for the passes)" : "");
#endif
  if (g && small(g)) {
    weights_init_deterministic(g, 1);
    if (ir_verify(g, stderr) != 0) {
      fprintf(stderr, "the frontend built a graph that does not verify\n");
      __builtin_trap();
    }
    check_written(g);
    PassOptions po = {.opt_level = 2, .print_out = sink, .verify = true};
    passes_run(g, &po);
    ir_print(g, sink);
  }
  ir_graph_free(g);
  diag_free(d);
  free(text);
  return 0;
}

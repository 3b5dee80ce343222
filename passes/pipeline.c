/*
 * pipeline.c: the list of passes and the order they run in.
 *
 * A plain table, as QBE's driver keeps a plain list of calls: each pass has
 * a name (for --passes and --print-after), the lowest optimization level at
 * which it runs by default, and a one-line summary for --help. Memory
 * planning is not optional (the backend needs addresses): it always runs
 * last, in its naive form at -O0 unless named explicitly. Under
 * --precision=int8 (g->quant set) the quantize pass runs just before the
 * layout pass's place in the list, whatever is selected.
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

const PassInfo passes_all[] = {
    {"fuse-bn", pass_fuse_bn, 1,
     "fold batchnorm into the preceding conv/linear; others become scale-shifts"},
    {"fold-linear", pass_fold_linear, 1,
     "fold scale / scale-shift ops into the adjacent conv or linear layer"},
    {"fuse-epilogue", pass_fuse_epilogue, 1,
     "fuse residual adds and relus into the producing kernel's epilogue"},
    {"fold-shuffle", pass_fold_shuffle, 2,
     "fold channel shuffles into the convs around them, or into the concat before them"},
    {"fold-1x1", pass_fold_1x1, 2,
     "merge sibling 1x1 convs reading one tensor into one split conv"},
    /* Exact for every input: the kernels store the padded outputs of a
       one-group conv as 0 (Attrs.padded_from), so no 0 * inf = NaN reaches
       real outputs (tests/difftest/regressions/inf_through_padded_channels.*). */
    {"pad-channels", pass_pad_channels, 2,
     "pad channel counts to a multiple of 16 with zero weights, for the blocked kernels"},
    {"layout", pass_layout, 1,
     "put activations in the channel-blocked layout (NCHW16c) the fast kernels use"},
    {"fuse-gate", pass_fuse_gate, 2,
     "apply a squeeze-excitation gate as the next 1x1 conv reads its input"},
    {"concat-elim", pass_concat_elim, 2,
     "let producers write straight into their slice of a concat"},
    {"plan-memory", pass_plan_memory, 1,
     "place activations in one arena by liveness, greedy by size, in place where possible"},
};
const int passes_count = (int)(sizeof passes_all / sizeof passes_all[0]);

const PassInfo *passes_lookup(const char *name) {
  for (int i = 0; i < passes_count; i++)
    if (strcmp(passes_all[i].name, name) == 0)
      return &passes_all[i];
  return NULL;
}

static bool selected(const PassInfo *p, const PassOptions *o) {
  if (o->only) {
    for (int i = 0; i < o->nonly; i++)
      if (strcmp(o->only[i], p->name) == 0)
        return true;
    return false;
  }
  return o->opt_level >= p->min_opt;
}

static void after(Graph *g, const char *name, const PassOptions *o) {
  if (o->verify) {
    int bad = ir_verify(g, stderr);
    CHECK(bad == 0, "IR invalid after pass '%s': %d problems", name, bad);
  }
  if (o->print_after && (strcmp(o->print_after, "all") == 0 || strcmp(o->print_after, name) == 0)) {
    FILE *out = o->print_out ? o->print_out : stdout;
    fprintf(out, "; after %s\n", name);
    ir_print(g, out);
  }
}

void passes_run(Graph *g, const PassOptions *o) {
  bool planned = false;
  if (!g->macs_orig)
    g->macs_orig = ir_graph_macs(g);
  for (int i = 0; i < passes_count; i++) {
    const PassInfo *p = &passes_all[i];
    if (p->fn == pass_layout && g->quant) { /* int8 only: not a table row */
      pass_quantize(g);
      after(g, "quantize", o);
    }
    if (!selected(p, o))
      continue;
    p->fn(g);
    ir_compact(g);
    if (p->fn == pass_plan_memory)
      planned = true;
    after(g, p->name, o);
  }
  if (!planned) {
    pass_plan_memory_naive(g);
    after(g, "plan-memory", o);
  }
}

/*
 * passes.h: the optimization passes; the map of passes/.
 *
 * Every pass is one file with one entry point of the same signature,
 * void pass_NAME(Graph *g), a contract comment and an opening paragraph.
 * The pipeline is the plain list in passes/pipeline.c:
 *
 *   passes/pipeline.c       the list, the order, --passes and --print-after
 *   passes/fuse_bn.c        batchnorm folded into conv/linear, else scale-shift
 *   passes/fold_linear.c    scale / scale-shift folded into a neighbouring layer
 *   passes/fuse_epilogue.c  residual adds and ReLUs into the producer's epilogue
 *   passes/fold_shuffle.c   channel shuffles folded into weights and concats
 *   passes/fold_1x1.c       sibling 1x1 convs merged into one split conv
 *   passes/pad_channels.c   channel counts padded to a multiple of 16 (zeros)
 *   passes/quantize.c       int8: which conv/linear layers, their input scale
 *   passes/layout.c         NCHW16c where the kernels support it, reorders
 *   passes/fuse_gate.c      a channel gate (mul) applied by the conv reading it
 *   passes/concat_elim.c    producers write into their slice of a concat
 *   passes/plan_memory.c    every tensor placed in one arena by liveness
 *
 * A new pass: a file here with its contract, a line below, a row in
 * pipeline.c, golden cases in tests/passes/NAME/ (docs/design.md).
 */
#ifndef CNNCC_PASSES_H
#define CNNCC_PASSES_H

#include <stdbool.h>
#include <stdio.h>

#include "../ir/ir.h"

typedef void (*PassFn)(Graph *g);

/* A min_opt above every -O level: the pass runs only when --passes names it. */
enum { PASS_NAMED_ONLY = 4 };

typedef struct {
  const char *name; /* as on the command line: "fuse-bn", "plan-memory" */
  PassFn fn;
  int min_opt;         /* runs by default at -O<min_opt> and above, or PASS_NAMED_ONLY */
  const char *summary; /* one line for --help */
} PassInfo;

extern const PassInfo passes_all[];
extern const int passes_count;
const PassInfo *passes_lookup(const char *name);

typedef struct {
  int opt_level;
  const char *const *only; /* --passes=a,b,c: exactly these, in table order; NULL: by opt level */
  int nonly;
  const char *print_after; /* pass name, "all", or NULL */
  FILE *print_out;
  bool verify; /* run ir_verify after every pass; a problem is an internal error (exit 2) */
} PassOptions;

/* Runs the pipeline. Memory planning always runs last (naive at -O0). */
void passes_run(Graph *g, const PassOptions *o);

/* ------------------------------------------------------------------ passes */

/* fuse_bn.c: BN folded into conv/linear weights, or turned into SCALESHIFT. */
void pass_fuse_bn(Graph *g);
/* fuse_epilogue.c: residual add and ReLU into the producer's epilogue. */
void pass_fuse_epilogue(Graph *g);
/* fold_linear.c: scale/scale-shift folded into an adjacent conv/linear. */
void pass_fold_linear(Graph *g);
/* fold_shuffle.c: channel shuffles removed: the tensor stored in another
   channel order that its readers absorb (conv weights, slice ranges). */
void pass_fold_shuffle(Graph *g);
/* fold_1x1.c: sibling 1x1 convs merged into one split conv + slices. */
void pass_fold_1x1(Graph *g);
/* pad_channels.c: classes of tensors padded to a multiple of 16 channels,
   zero weights, views of the first C channels for other readers. */
void pass_pad_channels(Graph *g);
/* quantize.c: --precision=int8 (g->quant): calibration outputs, or the
   quantized layers and their input scale and zero point. */
void pass_quantize(Graph *g);
/* layout.c: NCHW16c where the kernels support it, reorders where needed. */
void pass_layout(Graph *g);
/* concat_elim.c: concat inputs placed in their slices; concats elided. */
void pass_concat_elim(Graph *g);
/* fuse_gate.c: mul(x, per-channel s) read by a 1x1 NCHW16c conv: the conv
   reads x and applies s (Node.epi.gate). */
void pass_fuse_gate(Graph *g);
/* plan_memory.c: assigns Node.mem for every node; sets g->arena_bytes,
   naive_bytes, lower_bound_bytes. */
void pass_plan_memory(Graph *g);
/* The -O0 variant: every tensor its own slot (no reuse). */
void pass_plan_memory_naive(Graph *g);

#endif

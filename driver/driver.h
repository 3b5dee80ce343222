/*
 * driver.h: the cnncc command; the map of driver/.
 *
 *   driver/main.c      main: the stages in order (frontend, weights, passes,
 *                      backend), each one call, one exit status
 *   driver/options.c   the command line: the option table, --help, parsing
 *                      into Options (every flag's checks and messages)
 *   driver/report.c    what the driver prints itself: --summary, --stats,
 *                      --emit=ir/dot
 *   driver/header.c    the typed C header of a network (--emit=header,
 *                      --header FILE)
 *   driver/emit_spec.c --emit=spec: the spec writer's text and the weights
 *                      writer's file, under the same parameter names
 *   driver/targets.c   --target: a triple's runtime, the cross linker
 *                      (ld.lld) and C library, --list-targets
 *   driver/progress.c  the one-line status display (progress.h)
 *   driver/calibrate.c --precision=int8 --calibrate FILE: the calibration
 *                      inputs and the activation ranges measured on them
 *
 * The driver is the only place that reads the command line and the
 * environment for the compiler (CC, CNNCC_RUNTIME, TMPDIR, CNNCC_PROGRESS,
 * CNNCC_RUNTIME_DIR, CNNCC_LLD, CNNCC_TARGET_LIBDIR):
 * the stages get everything through their options structs.
 */
#ifndef CNNCC_DRIVER_H
#define CNNCC_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "backend/backend.h"
#include "frontend/frontend.h"
#include "ir/ir.h"
#include "passes/passes.h"

#define EXIT_USER 1
#define EXIT_INTERNAL 2

/* Everything the command line says. */
typedef struct {
  const char *spec, *output, *weights;
  uint64_t seed;
  bool external_weights, summary, stats, verbose, quiet;
  const char *progress; /* --progress=WHEN; NULL: $CNNCC_PROGRESS, else auto */
  int opt;
  int winograd;            /* -1: by -O level; 0 off; 1 on */
  Tuning tune;             /* --tune KEY=VALUE, over the defaults */
  Precision precision;     /* --precision=fp32|bf16|int8 */
  const char *calibrate;   /* --calibrate FILE (int8) */
  double calib_percentile; /* --calibrate-method: 0 minmax, else P (99.99); */
  bool calib_entropy;      /* ... or entropy (calib_percentile then unused) */
  const char *passes, *print_after, *target_cpu, *target_features;
  const char *target_triple; /* --target, as backend_targets() spells it; NULL: host */
  EmitKind emit;
  bool emit_ir, emit_dot, emit_spec;
  bool emit_header;          /* --emit=header: the typed C header instead of code */
  const char *header;        /* --header FILE: the header too, beside the output */
  OnnxInputShape shapes[16]; /* --input-shape NAME=CxHxW (ONNX models) */
  int nshapes;
} Options;

/* ---------------------------------------------------------------- options.c */

/* Parses argv into o (defaults first). Returns 0 to go on, or an exit code
   + 1 (1: exit 0 after --help and the like; 2: a user error, reported). */
int options_parse(int argc, char **argv, Options *o, Diag *d);
/* --passes=a,b,c into po (names checked); --print-after's pass checked. */
bool options_passes(const Options *o, PassOptions *po, Diag *d);
/* The output file name when -o is not given: SPEC's base name + the
   extension of the output kind (into buf). */
const char *options_default_output(const Options *o, char *buf, size_t n);
/* cnn_info.compiler: "cnncc VERSION (LLVM X) -On target=TRIPLE cpu=CPU"
   and whatever else changed the generated code (malloc'd). */
char *options_compiler_ident(const Options *o);

/* -------------------------------------------------------------- calibrate.c */

/* --calibrate FILE: float32 values (.npy '<f4' or raw), a positive multiple
   of numel (the input's size); *data malloc'd, *nsamples inputs. */
bool calib_load(const char *path, int64_t numel, float **data, int64_t *nsamples, Diag *d);
/* Runs the calibration build `so` (plan->collect's outputs) on every input
   and fills plan->lo/hi: the range seen, or (0 < pct < 100) clipped to its
   (100 - pct)-th and pct-th percentiles, or (entropy) calib_clip_entropy. */
bool calib_measure(const char *so, QuantPlan *plan, const float *data, int64_t n, int64_t numel,
                   double pct, bool entropy, Diag *d);
/* The entropy method's choice for one tensor: given its histogram h of
   nbins equal bins over [lo, hi], the range [lo*f, hi*f] (f in (0, 1],
   so 0 stays inside) whose 256 quantization levels lose the least
   information: the smallest Kullback-Leibler divergence between the
   clipped histogram (the mass outside added to its end bins) and that
   histogram quantized to 256 levels. *flo, *fhi: the chosen range. */
void calib_clip_entropy(const int64_t *h, int nbins, double lo, double hi, double *flo,
                        double *fhi);

/* ---------------------------------------------------------------- targets.c */

/* Whether triple (NULL: the host's) is another machine's. */
bool targets_is_cross(const char *triple);
/* The runtime library for triple (into buf); NULL for a cross triple whose
   runtime was not built. */
const char *targets_runtime(const char *triple, char *buf, size_t n);
/* ld.lld (into buf), or NULL. */
const char *targets_lld(char *buf, size_t n);
/* The directory of a cross triple's libc.so and libm.so, or NULL. */
const char *targets_libdir(const char *triple);
/* Fills bo's runtime_lib, and for a cross .so its lld and target_libdir;
   false (reported: what to install) when one is missing. */
bool targets_check_link(const Options *o, BackendOptions *bo, char *rtbuf, size_t rtn, char *lldbuf,
                        size_t lldn, Diag *d);
/* --list-targets: each triple, its CPUs, and whether its runtime is here. */
void targets_list(FILE *out);

/* ----------------------------------------------------------------- report.c */

/* Kernel launches per sample (*convs of them convolutions). */
int report_count_kernels(const Graph *g, int *convs);
/* --summary: the per-layer table and totals. */
void report_summary(const Graph *g, FILE *out);
/* --stats: what each pass did, and kernels before/after (kernels0, convs0
   counted before the passes). */
void report_stats(const Graph *g, int kernels0, int convs0, FILE *out);
/* --stats: the lines recorded from index `from` on (the backend's, after
   the passes' lines and the kernel counts). */
void report_stats_since(const Graph *g, int from, FILE *out);
/* --emit=ir or dot to path ("-": stdout); false (reported) if it cannot be
   written. */
bool report_write_graph(const Graph *g, bool dot, const char *path, Diag *d);

/* ----------------------------------------------------------------- header.c */

/* The typed C header of g (after the passes) to path ("-": stdout),
   written whole or not at all; false (reported) if it cannot be written. */
bool header_write(const Graph *g, const char *path, Diag *d);

/* -------------------------------------------------------------- emit_spec.c */

typedef struct Progress Progress;
/* The weights file written beside a spec: OUT with its extension replaced
   by .safetensors ("net.yaml" -> "net.safetensors", "net" ->
   "net.safetensors"), into buf. */
const char *emit_spec_weights_path(const char *output, char *buf, size_t n);
/* Before any work: neither file --emit=spec writes is the input spec or the
   --weights file, and they are two files. false: reported. */
bool emit_spec_check(const Options *o, Diag *d);
/* --emit=spec: g (weights bound, before the passes) as a spec at o->output
   and its weights beside it, both or neither; `-o -`: the spec alone to
   stdout. Returns the exit status. */
int emit_spec_write(const Graph *g, const Options *o, Progress *prog, Diag *d);

#endif

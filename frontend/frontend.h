/*
 * frontend.h: spec files and weights into the graph IR; the map of frontend/.
 *
 *   frontend/spec.c         YAML spec -> AST with source positions (libyaml)
 *   frontend/expr.c         the small expression language of block parameters
 *   frontend/lower.c        AST -> Graph: blocks, repetition, names, shapes
 *   frontend/safetensors.c  safetensors reader (header JSON via jansson)
 *   frontend/weights.c      binding tensors to parameters; deterministic init
 *
 * User errors go through a Diag and make the entry point return NULL/false;
 * nothing here calls exit().
 */
#ifndef CNNCC_FRONTEND_H
#define CNNCC_FRONTEND_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "../ir/ir.h"
#include "../support/diag.h"
#include "../support/progress.h"

/* ---------------------------------------------------------- spec + lower */

/* Parse and lower a spec file into a graph with inferred shapes and
   parameters created (data NULL). NULL on error (reported through d). */
Graph *spec_load_file(const char *path, Diag *d);
/* Same from a string; `name` is used as the file name in diagnostics and for
   resolving includes relative to the current directory. */
Graph *spec_load_string(const char *name, const char *text, Diag *d);

/* ------------------------------------------------------------ safetensors */

typedef enum { ST_F32, ST_F64, ST_F16, ST_BF16, ST_OTHER } StDtype;

typedef struct {
  const char *name;
  StDtype dtype;
  const char *dtype_name; /* as in the header, e.g. "F32" */
  int rank;
  int64_t shape[8];
  const unsigned char *data; /* points into the mapped file */
  uint64_t nbytes;
} StTensor;

typedef struct StFile StFile;
/* Open and validate (header length in bounds, JSON well-formed, offsets
   inside the data area, no overlaps, sizes consistent with dtype and shape,
   no duplicate names). NULL on error with a message in err. */
StFile *st_open(const char *path, char *err, size_t errlen);
/* The same checks on a file already in memory (e.g. a fuzzer's input).
   The bytes are not copied: they must outlive the StFile. */
StFile *st_open_mem(const void *bytes, size_t size, char *err, size_t errlen);
void st_close(StFile *f);
int st_count(const StFile *f);
const StTensor *st_tensor(const StFile *f, int i);
const StTensor *st_find(const StFile *f, const char *name);
/* Convert to float32 into dst (numel floats). */
void st_to_f32(const StTensor *t, float *dst);
/* Convert elements [first, first + n) into dst[0, n): a large tensor in
   pieces (weights_load reports its progress between them). */
void st_to_f32_range(const StTensor *t, float *dst, uint64_t first, uint64_t n);

/* ---------------------------------------------------------------- weights */

/* Bind every parameter of g from the file; every missing, unexpected and
   mis-shaped tensor is reported (all of them, not just the first). Tensors
   named "*.num_batches_tracked" are ignored. */
bool weights_load(Graph *g, const char *path, Diag *d);
/* The same, reporting "reading weights" to `progress` (bytes converted out
   of the parameters' total) as it copies; NULL: silent. */
bool weights_load_progress(Graph *g, const char *path, Diag *d, const ProgressHook *progress);
/* Fill every parameter deterministically from `seed` (documented in
   docs/spec.md): conv/linear weights and biases uniform in +-1/sqrt(fan_in)
   (PyTorch's default bounds), BN weight 1, bias 0, mean 0, var 1. The values
   of one parameter depend only on the seed and its name. */
void weights_init_deterministic(Graph *g, uint64_t seed);

#endif

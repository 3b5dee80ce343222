/*
 * frontend.h: spec files and weights into the graph IR; the map of frontend/.
 *
 * frontend/ has one room per kind of input, each with an internal header
 * that is the map of its files and calls no other room; every room produces
 * the same IR (ir/ir.h), and this header declares the entry points the
 * driver calls.
 *
 *   frontend/spec/      the YAML spec language (spec_internal.h)
 *     load.c            the entry points: the spec and its includes through
 *                       the steps below
 *     yaml.c            YAML text -> YNode tree with line:col (libyaml)
 *     parse.c           YNode tree -> AST (every key checked)
 *     check.c           block instances resolved against their blocks
 *     lower.c           AST -> Graph: blocks, repetition, names, shapes
 *     expr.c            the small expression language of block parameters
 *     ops.c             the op table of the language, with attributes
 *     synonyms.c        an unknown op: other frameworks' names, misspellings
 *     errors.c          spec_error: repeats dropped, at most 50 errors
 *     write.c           a graph back into the language (--emit=spec)
 *   frontend/weights/   parameter values (weights_internal.h)
 *     safetensors.c     safetensors reader (header JSON via jansson)
 *     weights.c         binding tensors to parameters; deterministic init
 *     st_write.c        safetensors writer (--emit=spec's weights)
 *   frontend/onnx/      ONNX models, weights included (onnx_internal.h)
 *     model.c           the file, decoded by protobuf-c; tensors, external data
 *     values.c          every ONNX value by name: a constant or an IR node
 *     fold.c            constant folding of the shape arithmetic
 *     patterns.c        an exporter's subgraph for one layer, made that layer
 *     products.c        SiLU, hardswish, GELU written as products
 *     match.c           the patterns' machinery
 *     ops.c             the op table: op, opsets, lowering
 *     lower.c           the layers and the arithmetic into IR nodes
 *     act.c             the activations and LayerNormalization
 *     layout.c          Transpose (channels-last views), Slice, Split, shuffle
 *     node.c            what every lowering is made of
 *     load.c            the entry points
 *
 * User errors go through a Diag and make the entry point return NULL/false;
 * nothing here calls exit() (only running out of memory ends the process,
 * in the x-allocators of support/check.h).
 */
#ifndef CNNCC_FRONTEND_H
#define CNNCC_FRONTEND_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "../ir/ir.h"
#include "../support/diag.h"
#include "../support/progress.h"

/* A parameter and the name a written spec gives it (spec_write), which is
   the name its tensor has in the weights written beside that spec
   (weights_save). */
typedef struct {
  const char *name;
  const Param *param;
} NamedParam;

/* ------------------------------------------------ the spec language (spec/) */

/* Parse and lower a spec file into a graph with inferred shapes and
   parameters created (data NULL). NULL on error (reported through d). */
Graph *spec_load_file(const char *path, Diag *d);
/* Same from a string; `name` is used as the file name in diagnostics and for
   resolving includes relative to the current directory. */
Graph *spec_load_string(const char *name, const char *text, Diag *d);

/* Write g, as a frontend made it (before any pass), as a flat spec to `out`:
   a header (`comment`'s lines as YAML comments, then `cnncc: 1`, the name,
   the inputs, the outputs when they are not the default), then one layer per
   line. Layer names are made valid and unique by the rule of docs/spec.md,
   "Written specs"; attributes are written where they differ from their
   defaults. *params (in g's arena) gets every parameter of g, in layer order,
   under the name the written spec gives it (*nparams of them), so that
   weights saved under those names bind every parameter of the written spec.
   false if the language cannot express a layer of g (every one reported,
   naming it); nothing is written then. */
bool spec_write(const Graph *g, const char *comment, FILE *out, NamedParam **params, int *nparams,
                Diag *d);

/* --------------------------------------------------------- weights (weights/) */

/* Bind every parameter of g from the file; every missing, unexpected and
   mis-shaped tensor is counted, and the first DIAG_MAX_ERRORS are reported
   (not just the first one), then how many more there were. Tensors named
   "*.num_batches_tracked" are ignored. */
bool weights_load(Graph *g, const char *path, Diag *d);
/* The same, reporting "reading weights" to `progress` (bytes converted out
   of the parameters' total) as it copies; NULL: silent. */
bool weights_load_progress(Graph *g, const char *path, Diag *d, const ProgressHook *progress);
/* Fill every parameter deterministically from `seed` (documented in
   docs/spec.md): conv/linear weights and biases uniform in +-1/sqrt(fan_in)
   (PyTorch's default bounds), BN weight 1, bias 0, mean 0, var 1. The values
   of one parameter depend only on the seed and its name. */
void weights_init_deterministic(Graph *g, uint64_t seed);
/* Write the values of n parameters (bound: data set) to a safetensors file
   at `path`, each as an F32 tensor under its NamedParam name, atomically (a
   temporary file beside it, renamed when complete: on failure nothing is
   left behind). Reports "writing weights" to `progress` (bytes written;
   NULL: silent). false on an error (reported). */
bool weights_save(const char *path, const NamedParam *params, int n, Diag *d,
                  const ProgressHook *progress);

/* ------------------------------------------------------------ ONNX (onnx/) */

/* A graph input's per-sample shape given on the command line
   (--input-shape NAME=3x224x224), for inputs whose ONNX shape is symbolic
   or missing beyond the batch. */
typedef struct {
  const char *name;
  int rank; /* 1 or 3 */
  int64_t dims[3];
} OnnxInputShape;

typedef struct {
  const OnnxInputShape *shapes;
  int nshapes;
} OnnxOptions;

/* Whether the file is an ONNX model, by its content: a protobuf ModelProto
   starts with a field key, and a spec is text. false if it cannot be read
   (the spec reader then reports that). */
bool onnx_file_sniff(const char *path);
/* Reads an ONNX model into a graph with inferred shapes and every parameter
   bound from the model's initializers. NULL after a reported error. */
Graph *onnx_load_file(const char *path, const OnnxOptions *o, Diag *d);
/* The same from a model in memory (the bytes are not copied); `name` names
   it in messages. External data cannot be read this way. */
Graph *onnx_load_memory(const void *bytes, size_t size, const char *name, const OnnxOptions *o,
                        Diag *d);

#endif

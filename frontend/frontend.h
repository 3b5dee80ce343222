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
 *   frontend/weights/   parameter values (weights_internal.h)
 *     safetensors.c     safetensors reader (header JSON via jansson)
 *     weights.c         binding tensors to parameters; deterministic init
 *   frontend/onnx/      ONNX models, weights included (onnx_internal.h)
 *     model.c           the file, decoded by protobuf-c; tensors, external data
 *     values.c          every ONNX value by name: a constant or an IR node
 *     fold.c            constant folding of the shape arithmetic
 *     ops.c             the op table: op, opsets, lowering
 *     lower.c           each supported op into IR nodes
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

/* ------------------------------------------------ the spec language (spec/) */

/* Parse and lower a spec file into a graph with inferred shapes and
   parameters created (data NULL). NULL on error (reported through d). */
Graph *spec_load_file(const char *path, Diag *d);
/* Same from a string; `name` is used as the file name in diagnostics and for
   resolving includes relative to the current directory. */
Graph *spec_load_string(const char *name, const char *text, Diag *d);

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

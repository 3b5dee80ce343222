/*
 * onnx_internal.h: the ONNX room of the frontend; its map.
 *
 *   model.c   the file: read (mmap), decoded by protobuf-c (code generated at
 *             build time from Debian's onnx.proto), the opset checked;
 *             TensorProto -> OxConst (raw_data, typed fields, external data
 *             beside the model, mmapped)
 *   values.c  the small form the lowering works on: every ONNX value by name,
 *             either a constant (OxConst, folded) or a tensor computed at run
 *             time (an IR node); graph inputs and outputs
 *   patterns.c  subgraphs an exporter writes for one layer (torch's
 *             LocalResponseNorm, LayerNorm at opsets < 17, channel shuffle),
 *             replaced by that layer's op
 *   products.c  the patterns that are products (x * sigmoid(x) = SiLU,
 *             x * hardsigmoid(x) = hardswish, GELU's erf and tanh forms),
 *             recognized from their factors in any order; and
 *             Clip(alpha * x + beta, 0, 1) = HardSigmoid
 *   match.c   the patterns' machinery: who writes and who reads each
 *             value, a group of nodes replaced by one
 *   fold.c    constant folding of the shape arithmetic exporters emit
 *             (Shape, Gather, Unsqueeze, Concat, Slice, Cast, ...), with the
 *             batch size as a symbolic element
 *   ops.c     the op table: each ONNX op with its opsets and its lowering
 *   lower.c   the lowering of the layers (conv, pools, linear, elementwise
 *             arithmetic, views of whole tensors)
 *   act.c     the lowering of the activations and of LayerNormalization
 *   layout.c  the lowering of what moves axes or channels: Transpose to
 *             channels-last and back, Slice and Split of the channels,
 *             the channel shuffle, Unsqueeze/Squeeze of a vector
 *   node.c    what every lowering is made of: its inputs as tensors or
 *             constants, IR nodes named after the ONNX node, shapes
 *             inferred, weights bound, outputs defined
 *   load.c    onnx_load_file: model -> inputs -> patterns -> every
 *             unsupported op at once -> nodes in order (fold or lower) ->
 *             outputs
 *
 * Call graph (one way only): load -> patterns -> products -> match; load
 * -> ops -> lower, act, layout -> node -> fold -> values -> model.
 *
 * An ONNX tensor computed at run time has the batch as its first dimension;
 * the IR's shapes are per sample, so a [N, C, H, W] tensor is the IR shape
 * [C, H, W] and [N, F] is [F]. An ONNX axis k of such a tensor is IR axis
 * k - 1; an op over the batch axis is not supported. Constants (weights,
 * shape arithmetic) are OxConsts: float32 or int64, any rank; an int64
 * element may be the symbolic batch size (Shape of a run-time tensor), so
 * `x.view(x.size(0), -1)` folds to a Reshape to [batch, -1], a flatten.
 *
 * Two views of a run-time tensor exist without an IR node of their own:
 * a Transpose that keeps the batch first gives the same IR node with its
 * axes permuted (OxValue.perm: torch's permute(0, 2, 3, 1) to channels-last
 * around ConvNeXt's LayerNorm and Linear layers), read by the elementwise
 * ops, LayerNormalization and MatMul, until a Transpose back; and a vector
 * [N, C] unsqueezed to [N, C, 1, 1] (OxValue.vec_ones), read by Mul as a
 * gate of one value per channel. Every other op takes plain tensors only.
 */
#ifndef CNNCC_ONNX_INTERNAL_H
#define CNNCC_ONNX_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "../frontend.h"
#include "onnx.pb-c.h"

#define OX_MIN_OPSET 1
#define OX_MAX_OPSET 17
#define OX_MAX_RANK 8
#define OX_MAX_ERRORS 50

/* ------------------------------------------------------------- constants */

typedef enum { OX_F32, OX_I64 } OxDtype;

/* A constant tensor. f or i holds numel values (row-major); batch, if not
   NULL, marks the i64 elements that stand for the symbolic batch size. */
typedef struct {
  OxDtype dtype;
  int rank;
  int64_t dims[OX_MAX_RANK];
  int64_t numel;
  float *f;
  int64_t *i;
  unsigned char *batch;
} OxConst;

/* ------------------------------------------------------------------ values */

typedef enum {
  OXV_CONST,  /* known at compile time */
  OXV_TENSOR, /* computed at run time: an IR node, batch first */
  OXV_FAILED, /* the output of a node that was reported: its readers are
                 skipped, so one error does not cascade */
} OxKind;

typedef struct OxValue {
  const char *name;
  OxKind kind;
  OxConst c;  /* OXV_CONST */
  Node *node; /* OXV_TENSOR: its IR node (shape per sample) */
  /* OXV_TENSOR made by a Pad that the next conv or pool absorbs: the
     padding (top, left, bottom, right) and its value, not yet applied. */
  bool padded;
  int64_t pads[4];
  float pad_value;
  bool nonneg; /* OXV_TENSOR: known >= 0 (a ReLU's output) */
  /* OXV_TENSOR of rank 4: permuted, ONNX axis k of the value is axis
     perm[k] of the IR node's [N, C, H, W] (perm[0] is always 0: the batch
     stays first). Not permuted: perm is the identity. */
  bool permuted;
  unsigned char perm[4];
  int vec_ones;                    /* OXV_TENSOR of IR rank 1: its ONNX shape is [N, F] followed
                                      by this many 1s (an unsqueezed vector) */
  const Onnx__NodeProto *producer; /* NULL: graph input or initializer */
  int uses;                        /* in the uses table only: the count */
} OxValue;

/* Rank of a run-time tensor with the batch: 4 for [N, C, H, W], 2 for
   [N, F] (plus vec_ones). */
int ox_rank(const OxValue *v);
/* Its ONNX dims with the batch as 1 (permuted as the value is); returns the
   rank. */
int ox_dims(const OxValue *v, int64_t *dims);
/* The ONNX axis that holds its channels (features): 1, or where perm put
   them. */
int ox_channel_axis(const OxValue *v);

/* ------------------------------------------------------------------ context */

typedef struct OxModel OxModel;

typedef struct OxCtx {
  Diag *d;
  const char *path; /* the model file, for messages */
  Graph *g;
  Arena *a; /* the graph's arena: names, constants */
  OxModel *model;
  int64_t opset; /* of the default domain */
  const OnnxOptions *opts;
  struct OxTable *values;        /* name -> OxValue */
  struct OxTable *uses;          /* name -> how many nodes and graph outputs read it */
  struct OxTable *ir_names;      /* IR node names taken */
  int64_t static_batch;          /* the graph inputs' fixed first dimension, or 0 */
  int64_t fold_limit;            /* most values one folded constant may hold (fold.c) */
  const Onnx__NodeProto **nodes; /* the graph's nodes in order, as patterns.c left
                                    them (NULL: removed) */
  int nnodes;
  const Onnx__NodeProto *node; /* being lowered (messages) */
  int errors;
} OxCtx;

/* ---------------------------------------------------------------- model.c */

/* Reads and decodes the file; NULL after a reported error. */
OxModel *ox_model_read(OxCtx *cx, const char *path);
/* The same from bytes in memory (not copied: they must outlive the model). */
OxModel *ox_model_from_memory(OxCtx *cx, const void *bytes, size_t size);
void ox_model_free(OxModel *m);
const Onnx__ModelProto *ox_model_proto(const OxModel *m);
/* The opset of the default domain ("" or "ai.onnx"); -1 after an error. */
int64_t ox_model_opset(OxCtx *cx, const OxModel *m);
/* A TensorProto's value (float32 or int64; other types are an error that
   names `what`). Data comes from raw_data, the typed fields, or external
   data relative to the model's folder. */
bool ox_tensor_const(OxCtx *cx, const Onnx__TensorProto *t, const char *what, OxConst *out);

/* ---------------------------------------------------------------- values.c */

/* "model.onnx: error: node 'NAME' (OP): ..." for the node being lowered,
   "model.onnx: error: ..." without one. Returns false. */
bool ox_error(OxCtx *cx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ox_note(OxCtx *cx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A name for messages: the node's name, else its first output. */
const char *ox_node_label(const Onnx__NodeProto *n);

void ox_values_init(OxCtx *cx);
void ox_values_free(OxCtx *cx);
OxValue *ox_value(OxCtx *cx, const char *name);
/* A new value named `name`; false (reported) if one exists already. */
OxValue *ox_value_new(OxCtx *cx, const char *name, OxKind kind);
/* Readers of a value: counted once before lowering (ox_use), read by the
   lowerings that fold a node into its only reader. */
void ox_use(OxCtx *cx, const char *name);
int ox_uses(OxCtx *cx, const char *name);
/* IR node names: whether one is taken, and taking it. */
bool ox_name_taken(OxCtx *cx, const char *name);
void ox_name_claim(OxCtx *cx, const char *name);
/* Input k of node n, or NULL if absent (optional inputs: "" or past the
   end); a missing value is reported. */
OxValue *ox_input(OxCtx *cx, const Onnx__NodeProto *n, int k, bool *ok);

/* Constants: allocate (arena), element access, make. */
bool ox_const_alloc(OxCtx *cx, OxConst *c, OxDtype dt, int rank, const int64_t *dims);
double ox_const_get(const OxConst *c, int64_t k);
/* A float as an int64, NaN as 0 and beyond +-2^62 clamped (shape
   arithmetic on hostile constants must not overflow). */
int64_t ox_to_int(double v);
/* The constant as int64s (float ones truncated), e.g. an axes or shape
   input; false (reported) if any element is the batch and !allow_batch. */
bool ox_const_ints(OxCtx *cx, OxConst *c, bool allow_batch, const char *what);

/* Attributes of the node being lowered. */
const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *n, const char *name);
int64_t ox_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def);
float ox_attr_float(const Onnx__NodeProto *n, const char *name, float def);
/* A list of ints into out (at most max); returns the count, def_n (with the
   defaults already in out) if absent, -1 if longer than max. */
int ox_attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *out, int max, int def_n);
/* A string attribute, or def. */
const char *ox_attr_string(OxCtx *cx, const Onnx__NodeProto *n, const char *name, const char *def);

/* Opsets before 7 broadcast the second operand of Add, Sub, Mul, Div and
   Gemm's C only with the attribute broadcast=1, aligned at `axis` (not at
   the end, as numpy and opset 7 do): b with its dims placed so, for an
   operand of rank_a. A copy; the data are shared. */
OxConst ox_legacy_operand(OxCtx *cx, const Onnx__NodeProto *n, int rank_a, const OxConst *b);

/* ------------------------------------------------------------------ fold.c */

/* Whether op_type is evaluated at compile time when its inputs are known. */
bool ox_foldable(const char *op_type);
/* Evaluates n (every input a constant, but Shape's) into its outputs. */
bool ox_fold(OxCtx *cx, const Onnx__NodeProto *n);

/* ------------------------------------------------------------------ node.c */

/* Input k as a run-time tensor of rank `want` (4: [N, C, H, W], 2: [N, F],
   0: either), plain: not a permuted or unsqueezed view, and not padded
   unless n is a Conv, a pool or a Pad (which absorb the padding). */
OxValue *ox_tensor_in(OxCtx *cx, const Onnx__NodeProto *n, int k, int want, bool *ok);
/* The same for the ops that read a view as it is (the elementwise ops,
   LayerNormalization, MatMul, Transpose, ...): any rank, permuted or not. */
OxValue *ox_view_in(OxCtx *cx, const Onnx__NodeProto *n, int k, bool *ok);
/* Input k as a constant (NULL if absent and optional). */
OxConst *ox_const_in(OxCtx *cx, const Onnx__NodeProto *n, int k, const char *what, bool optional,
                     bool *ok);
/* A new IR node for n, named after it (plus ".suffix"), made unique. */
Node *ox_node(OxCtx *cx, const Onnx__NodeProto *n, Op op, Node *const *in, int nin,
              const char *suffix);
/* The same named `base` (made unique). */
Node *ox_node_named(OxCtx *cx, Op op, const char *base, Node *const *in, int nin);
/* Shape inference of x (creating its parameters); its message becomes the
   ONNX node's. */
bool ox_infer(OxCtx *cx, Node *x);
/* "[1, 2, 3]" (in the arena). */
const char *ox_dims_text(OxCtx *cx, int rank, const int64_t *d);
/* Copies c into parameter `slot` of x (created by ox_infer), which must
   have as many values (same_shape: and the same dims); scale multiplies
   every value. */
bool ox_bind(OxCtx *cx, Node *x, int slot, const OxConst *c, const char *what, bool same_shape,
             float scale);
/* Output k of n is the run-time tensor x, a view as `like` is (its perm and
   vec_ones; NULL: plain). *made (if not NULL) is its value, NULL when the
   output is unnamed. false on an error. */
bool ox_out(OxCtx *cx, const Onnx__NodeProto *n, int k, Node *x, const OxValue *like,
            OxValue **made);
/* Output 0 of n is x itself (no node): its copy under the output's name
   into *made (NULL if unnamed), for the caller to adjust. */
bool ox_alias(OxCtx *cx, const Onnx__NodeProto *n, const OxValue *x, OxValue **made);
/* The outputs of n from index k on must be unused. */
bool ox_no_outputs_from(OxCtx *cx, const Onnx__NodeProto *n, int k, const char *what);

/* ---------------------------------------------------- lower.c, act.c, layout.c */

typedef bool (*OxLowerFn)(OxCtx *cx, const Onnx__NodeProto *n);

/* One lowering per op family; each checks the attributes and inputs of its
   op at the model's opset and reports what it cannot express. */
bool ox_lower_conv(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_batchnorm(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_pool(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_global_pool(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_lrn(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_reduce(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_gemm(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_matmul(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_flatten(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_reshape(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_concat(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_add(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_sum_mean(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_mul_div(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_softmax(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_neg(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_identity(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_pad(OxCtx *cx, const Onnx__NodeProto *n);
/* act.c */
bool ox_lower_relu(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_clip(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_sigmoid(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_hardsigmoid(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_hardswish(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_silu(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_gelu(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_layernorm(OxCtx *cx, const Onnx__NodeProto *n);
/* layout.c */
bool ox_lower_transpose(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_slice(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_split(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_unsqueeze(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_squeeze(OxCtx *cx, const Onnx__NodeProto *n);
bool ox_lower_channel_shuffle(OxCtx *cx, const Onnx__NodeProto *n);
/* ----------------------------------------------------------------- match.c */

/* The machinery of the patterns: the graph's nodes as the patterns leave
   them (NULL or removed: gone), who writes each value and how many read
   it. */
typedef struct OxPat {
  OxCtx *cx;
  const Onnx__NodeProto **nodes; /* cx->nodes */
  int n;
  bool *removed;
  struct OxPatValue *tab;
  size_t cap;
} OxPat;
/* Starts on cx->nodes; ox_pat_end leaves the removed nodes NULL there. */
void ox_pat_begin(OxPat *p, OxCtx *cx);
void ox_pat_end(OxPat *p);
/* The index of the node that writes value `name`, or -1. */
int ox_pat_producer(const OxPat *p, const char *name);
/* Node i if it is a live node of op `op` in the default domain with the
   inputs a pattern reads (input[0], and input[1] of a binary op), else NULL. */
const Onnx__NodeProto *ox_pat_node(const OxPat *p, int i, const char *op);
/* How many inputs of live nodes (and graph outputs) read value `name`. */
int ox_pat_readers(const OxPat *p, const char *name);
/* A scalar constant (an initializer or a Constant node's value). */
bool ox_pat_scalar(const OxPat *p, const char *name, double *v);
/* Whether every value that the nodes of group[] write, but the anchor's,
   is read by nodes of the group only, and the group's nodes are distinct. */
bool ox_pat_closed(const OxPat *p, int anchor, const int *group, int ng);
/* Replaces group[] (the anchor one of them) by one node of `op` in domain
   OX_DOMAIN_CNNCC (or the default one if !internal), reading in[] (NULL:
   an absent optional input), writing the anchor's output, named after its
   module; the other nodes of the group are removed. */
Onnx__NodeProto *ox_pat_replace(OxPat *p, int anchor, const int *group, int ng, const char *op,
                                bool internal, const char *const *in, int nin);
/* Attributes for the node ox_pat_replace made. */
void ox_pat_attr_int(OxPat *p, Onnx__NodeProto *x, const char *name, int64_t v);
void ox_pat_attr_float(OxPat *p, Onnx__NodeProto *x, const char *name, double v);
void ox_pat_attr_string(OxPat *p, Onnx__NodeProto *x, const char *name, const char *v);
/* Whether v is within relative 1e-5 of want (an exporter's float32 of a
   constant such as sqrt(2)). */
bool ox_pat_near(double v, double want);

/* -------------------------------------------------------------- patterns.c */

/* Replaces the known multi-node patterns in cx->nodes; returns how many. */
int ox_patterns(OxCtx *cx);

/* -------------------------------------------------------------- products.c */

/* The products (SiLU, hardswish, GELU's erf and tanh forms) anchored at
   node i (a Mul or a Div), or a HardSigmoid written out (at a Clip); whether
   one was replaced. */
bool ox_products(OxPat *p, int i);

/* ------------------------------------------------------------------- ops.c */

/* The domain of the nodes patterns.c and products.c make for what they
   recognize (Silu, Gelu, ChannelShuffle, ...): ops that ONNX does not have
   (or not at every opset), read at any opset. */
#define OX_DOMAIN_CNNCC "cnncc"

typedef struct {
  const char *op_type;
  int since, until; /* opsets of the default domain this row serves */
  OxLowerFn lower;  /* NULL: folded only (all inputs must be constants) */
  bool internal;    /* a row of domain OX_DOMAIN_CNNCC, any opset */
} OxOpInfo;

/* The row of op_type at opset, or NULL. */
const OxOpInfo *ox_op_find(const char *domain, const char *op_type, int64_t opset);
/* Whether op_type exists in the table at some opset (for messages). */
bool ox_op_known(const char *op_type);
/* For an op that cnncc reads only as a piece of a recognized pattern (Erf
   in GELU, Pow in LayerNorm, ...): which; else NULL. */
const char *ox_op_part_of(const char *op_type);

#endif

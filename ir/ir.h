/*
 * ir.h: cnncc's graph IR, the map of the ir/ layer.
 *
 * A network is a Graph of Nodes. As in ggml, the node is also the tensor it
 * produces: op, inputs, attributes, parameters, the inferred per-sample shape,
 * the source location it came from and, after memory planning, where it lives.
 *
 * Shapes are per sample (the batch dimension is implicit and handled by the
 * runtime): rank 3 is [C, H, W], rank 1 is [F]. Layout is NCHW unless a pass
 * says otherwise (Node.layout).
 *
 * Nodes are kept in g->nodes in a valid execution order (every input before
 * its users). Passes that rewrite the graph keep that order or call
 * ir_toposort(). Dead nodes are marked, not freed (all memory is in g->arena);
 * ir_compact() drops them.
 *
 * Files:
 *   ir/ops.def   the op table (X-macro)
 *   ir/arena.c   arena allocator, string helpers
 *   ir/graph.c   construction, shape inference, verifier, counters
 *   ir/print.c   stable textual printer (the format pass tests diff)
 *   ir/dot.c     Graphviz output (cnncc --emit=dot)
 */
#ifndef CNNCC_IR_H
#define CNNCC_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../support/check.h"
#include "../support/diag.h"

/* ---------------------------------------------------------------- arena.c */

typedef struct Arena Arena;
Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t n); /* zeroed, 16-byte aligned */
void *arena_alloc_aligned(Arena *a, size_t n, size_t align);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Growable array of pointers, memory from an arena. */
typedef struct {
  void **items;
  int len, cap;
} PtrVec;
void ptrvec_push(Arena *a, PtrVec *v, void *p);

/* ------------------------------------------------------------- the op table */

enum {
  OPF_WEIGHTS = 1 << 0,
  OPF_VIEW = 1 << 1,
  OPF_ELTWISE = 1 << 2,
  OPF_LINEAR = 1 << 3,
  OPF_SOURCE = 1 << 4,
  OPF_NOSPEC = 1 << 5,
  OPF_ACT = 1 << 6,
};

typedef enum {
#define OP(e, name, mn, mx, fl) OP_##e,
#include "ops.def"
#undef OP
  OP_COUNT_
} Op;

typedef struct {
  const char *name;
  int min_inputs, max_inputs; /* max -1: unbounded */
  unsigned flags;
} OpInfo;

extern const OpInfo ir_ops[OP_COUNT_];

/* ------------------------------------------------------------------ tensors */

#define IR_MAX_RANK 4
typedef struct {
  int rank; /* 1 ([F]) or 3 ([C,H,W]) per sample */
  int64_t d[IR_MAX_RANK];
} Shape;

int64_t shape_numel(const Shape *s);
bool shape_eq(const Shape *a, const Shape *b);
/* "3x224x224" into buf; returns buf. */
char *shape_str(const Shape *s, char *buf, size_t n);

typedef enum {
  LAYOUT_NCHW = 0, /* plain per-sample [C][H][W] */
  LAYOUT_NCHW16C,  /* [C/16][H][W][16], reserved for the fast kernels */
} Layout;

/*
 * A parameter tensor (weights, bias, BN statistics). `name` is the full
 * hierarchical name as in a PyTorch state_dict ("layer1.0.conv1.weight").
 * `data` holds rank/dims floats once weights are bound (the weights reader).
 * `trainable` is false for BN running statistics (PyTorch buffers), which
 * cnn_info.num_params does not count.
 */
typedef struct {
  const char *name;
  int rank;
  int64_t dims[IR_MAX_RANK];
  float *data;
  bool trainable;
  SrcLoc loc;
  int64_t blob_offset; /* byte offset in the packed weight blob (backend) */
} Param;

int64_t param_numel(const Param *p);

/* Parameter slots, by op (index into Node.params). */
enum { P_WEIGHT = 0, P_BIAS = 1, P_MEAN = 2, P_VAR = 3 };
/* SCALESHIFT: params[0] = per-channel scale, params[1] = per-channel shift. */
enum { P_SCALE = 0, P_SHIFT = 1 };
#define IR_MAX_PARAMS 4

/*
 * Attributes. One struct for all ops; each op uses the fields listed here.
 * 2-vectors are [h, w]; pad is [top, left, bottom, right]. ir_attrs_init
 * sets the defaults (stride 1, eps 1e-5, clamp bounds open, ...).
 *   CONV2D:   out_channels, kernel, stride, pad, dilation, groups, has_bias,
 *             linear_weight (the weight is nn.Linear's [out, in], not
 *             [out, in, 1, 1]: a 1x1 ungrouped conv that stands for a
 *             Linear applied to every pixel's channels, the spec's
 *             pointwise_linear; same numbers, same memory order),
 *             padded_from (set by pad-channels: output channels
 *             [padded_from, out_channels) are padding, which the kernel
 *             stores as exactly 0, by a select after the epilogue, whatever
 *             its input holds; 0: no padding)
 *   BATCHNORM: eps
 *   LAYERNORM: eps (over the channels of each pixel, as ConvNeXt's
 *             LayerNorm2d; over the features of a vector; params weight
 *             and bias [C])
 *   MAXPOOL:  kernel, stride, pad, dilation, ceil_mode
 *   AVGPOOL:  kernel, stride, pad, ceil_mode, count_include_pad
 *   ADAPTIVE_AVGPOOL, ADAPTIVE_MAXPOOL: out_hw (PyTorch's bins)
 *   LRN:      lrn_size, alpha, beta, k   (PyTorch LocalResponseNorm)
 *   LINEAR:   out_features, has_bias     (input of any rank, flattened)
 *   CONCAT:   axis (0 = channels, the only one supported)
 *   SCALE:    scale (y = scale * x)
 *   SOFTMAX:  axis (0 = channels/features)
 *   DROPOUT:  p (ignored at inference)
 *   CLAMP:    clamp_min, clamp_max (-inf / +inf: no bound on that side)
 *   HARDSIGMOID: hs_alpha, hs_beta (max(0, min(1, alpha*x + beta)))
 *   GELU:     gelu_tanh (the tanh approximation instead of erf)
 *   CHANNEL_SHUFFLE: groups (torchvision's channel_shuffle: view as
 *             [groups, C/groups], transpose, flatten: output channel
 *             j*groups + i is input channel i*(C/groups) + j)
 *   SLICE:    channels [slice_begin, slice_end) of a [C, H, W] input: a
 *             view (its storage is the input's, at an offset; in the
 *             blocked layout only when it starts and ends on a block, else
 *             the layout pass reorders its input). chunks > 0: chunk
 *             number chunk_index of torch.chunk(x, chunks, dim=1) instead;
 *             shape inference then sets slice_begin and slice_end. The
 *             spec's slice and chunk, and fold-1x1's slices of a split
 *             conv (Node.split: those own storage).
 *   PARAMETER: param_shape (its one parameter, named by the node itself)
 */
typedef struct {
  int64_t out_channels;
  int64_t kernel[2], stride[2], pad[4], dilation[2];
  int64_t groups;
  int64_t padded_from;
  bool has_bias;
  bool linear_weight;
  float eps;
  bool ceil_mode, count_include_pad;
  int64_t out_hw[2];
  int64_t lrn_size;
  float alpha, beta, k;
  int64_t out_features;
  int axis;
  float scale;
  float p;
  int64_t slice_begin, slice_end;
  int64_t chunks, chunk_index;
  float clamp_min, clamp_max;
  float hs_alpha, hs_beta;
  int gelu_tanh;
  Shape param_shape;
} Attrs;

/* Every attribute at its default (the values a spec leaves out). */
void ir_attrs_init(Attrs *a);

/*
 * An activation with its parameters: what an activation op computes
 * (ir_node_act) and the last step of a fused epilogue. Definitions as
 * PyTorch's (backend/activation.c emits them, tests/unit/ref_ops.c is the
 * reference):
 *   ACT_RELU         max(x, 0)
 *   ACT_CLAMP        min(max(x, a), b)         ReLU6: a = 0, b = 6; a bound
 *                                              may be -inf / +inf (none)
 *   ACT_SIGMOID      1 / (1 + exp(-x))
 *   ACT_HARDSIGMOID  max(0, min(1, a*x + b))   PyTorch's Hardsigmoid:
 *                                              a = 1/6, b = 1/2, computed as
 *                                              relu6(x + 3) / 6
 *   ACT_HARDSWISH    x * relu6(x + 3) / 6
 *   ACT_SILU         x * sigmoid(x)            (swish)
 *   ACT_GELU         x * Phi(x) = x/2 * (1 + erf(x / sqrt(2)))
 *   ACT_GELU_TANH    x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
 * NaN in gives NaN out. a and b are 0 for the kinds without parameters, so
 * two equal activations compare equal field by field (ir_act_eq).
 */
typedef enum {
  ACT_NONE = 0,
  ACT_RELU,
  ACT_CLAMP,
  ACT_SIGMOID,
  ACT_HARDSIGMOID,
  ACT_HARDSWISH,
  ACT_SILU,
  ACT_GELU,
  ACT_GELU_TANH,
} ActKind;
typedef struct {
  ActKind kind;
  float a, b;
} Act;

/*
 * Fused epilogue of a producing kernel (set by passes/fuse_*.c; the backend
 * applies it on the accumulators before the store):
 *   y = act( conv(x [* in[gate]]) [+ in[residual]] ), in that order.
 * residual is an index into Node.in (or -1); act.kind is ACT_NONE when
 * there is no activation. gate (passes/fuse_gate.c; or -1) is the one
 * fusion on the way in: a conv whose input in[0] is [C,H,W] reads it
 * multiplied by in[gate], [C,1,1], one factor per input channel (a
 * squeeze-excitation gate), as the kernel loads it.
 */
typedef struct {
  int residual; /* -1: none */
  int gate;     /* -1: none */
  Act act;
} Epilogue;

/*
 * Where a tensor lives at run time (set by passes/plan_memory.c, read by the
 * backend).
 *   MEM_NONE   not planned yet
 *   MEM_INPUT  the host's input buffer number `index`
 *   MEM_ARENA  arena + offset (bytes, 64-aligned)
 *   MEM_ALIAS  inside another tensor: alias_of's storage + offset bytes
 *              (views, concat slices)
 * A split node (below) has no storage of its own (MEM_NONE); its SLICE
 * users each have theirs.
 */
typedef enum { MEM_NONE = 0, MEM_INPUT, MEM_ARENA, MEM_ALIAS } MemKind;
typedef struct {
  MemKind kind;
  int index;      /* MEM_INPUT */
  int64_t offset; /* MEM_ARENA, MEM_ALIAS: bytes */
  struct Node *alias_of;
  bool fixed; /* placed by a pass before planning (concat-elim);
                 the planner keeps it */
} Mem;

typedef struct Node Node;
struct Node {
  int id; /* unique, stable across passes (printer uses it) */
  Op op;
  const char *name; /* hierarchical, e.g. "layer1.0.conv1"; unique */
  Node **in;
  int nin;
  Attrs attr;
  Param *params[IR_MAX_PARAMS];
  int nparams;
  Epilogue epi;
  Shape shape; /* inferred output shape per sample */
  Layout layout;
  Mem mem;
  SrcLoc loc;
  /* split: the node's output is only ever read through its SLICE users,
     which partition its channels in order; each slice has storage of its
     own (planned separately, possibly inside a concat) and the kernel writes
     every channel range straight to its slice's address. Set by fold-1x1.
     The layout pass blocks a split conv (NCHW16c) only when every slice
     starts and ends on a 16-channel block; otherwise it stays NCHW.
     elided: the node needs no kernel because its inputs were already
     written in place (a concat whose producers write into their slices). */
  bool split, elided;
  bool dead; /* removed by a pass; dropped by ir_compact() */
  int order; /* position in g->nodes after ir_compact/toposort */
  /* --precision=int8 (passes/quantize.c, backend/int8.c): the conv or
     linear computes in int8 when quant is set; its input is quantized to
     u8 as q = clamp(rint(x / qscale) + qzero, 0, 255). */
  bool quant;
  float qscale;
  int32_t qzero;
};

/* Graph inputs and outputs as the host ABI sees them. */
typedef struct {
  const char *name;
  Node *node;
} GraphIO;

typedef struct {
  const char *pass;
  char *text; /* "merged 27 sibling 1x1 convs into 9" */
} PassStat;

/* --precision=int8's calibration (passes/quantize.c, driver/calibrate.c).
   collect: the quantize pass appends the input tensor of every conv and
   linear it could quantize to names[] (graph inputs too, with
   output[i] = -1; the others become graph outputs, output[i] their index)
   so a calibration run can read them. Otherwise lo[i]..hi[i] is the
   calibrated range of tensor names[i], and the pass quantizes the nodes
   that read one. */
typedef struct QuantPlan {
  bool collect;
  int n, cap;
  const char **names;
  int *output;
  float *lo, *hi;
} QuantPlan;

typedef struct Graph {
  Arena *arena;
  const char *name; /* network name from the spec */
  const char *spec_file;
  PtrVec nodes;  /* Node*, execution order */
  PtrVec params; /* Param*, in definition order */
  GraphIO *inputs, *outputs;
  int ninputs, noutputs;
  int next_id;
  uint64_t num_params_orig; /* trainable parameter count before any folding */
  uint64_t macs_orig;       /* MACs per sample before the passes (0: not
                               recorded; passes_run sets it): pad-channels
                               adds work that is not the network's */
  int64_t arena_bytes;      /* set by memory planning */
  int64_t naive_bytes, lower_bound_bytes;
  PtrVec stats; /* PassStat* */
  /* Pooling may pad each side by up to the kernel size - 1 (every window
     still holds an input element), as ONNX allows; false: at most half
     the kernel, PyTorch's rule, which the spec language follows. */
  bool pool_pads_below_kernel;
  QuantPlan *quant; /* --precision=int8 (not owned); NULL otherwise */
} Graph;

#define GRAPH_NODE(g, i) ((Node *)(g)->nodes.items[i])
#define GRAPH_PARAM(g, i) ((Param *)(g)->params.items[i])

/* ---------------------------------------------------------------- graph.c */

Graph *ir_graph_new(const char *name);
void ir_graph_free(Graph *g);

/* A new node appended to g->nodes, attrs defaulted (stride 1, dilation 1,
   groups 1, eps 1e-5, epi.residual -1, ...); inputs copied. */
Node *ir_node_new(Graph *g, Op op, const char *name, Node *const *in, int nin, SrcLoc loc);
/* A parameter owned by node n in slot `slot`, shape given, data NULL. */
Param *ir_param_new(Graph *g, Node *n, int slot, const char *name, int rank, const int64_t *dims,
                    bool trainable);

/* Infer n->shape from its inputs and attributes, creating/shaping its params
   if n->nparams == 0 (the input channels come from the input's shape).
   On a user-facing error returns false and writes a message (no location,
   no trailing newline) into err. */
bool ir_infer_shape(Graph *g, Node *n, char *err, size_t errlen);

/* Where a shape-inference error lies, so the frontend can point at the
   offending token of the spec. */
typedef enum {
  IR_AT_NODE,   /* the node as a whole */
  IR_AT_INPUT,  /* input `index` (into n->in) */
  IR_AT_INPUTS, /* the number of inputs (the `in:` list) */
  IR_AT_ATTR,   /* attribute `attr`, named by its spec key ("kernel",
                   "stride", "pad", "groups", "out", "max", "alpha", ...:
                   the key of the op's row in the spec attribute table); `index`
                   is the list item at fault (the axis of a [h, w] pair,
                   the side of a 4-value pad) or -1 */
} IrErrAt;

typedef struct {
  IrErrAt at;
  int index;
  const char *attr;
  char msg[512];  /* no location, no trailing newline */
  char note[256]; /* a hint to show after it, or "" */
} IrShapeError;

/* ir_infer_shape with a structured error. in_names (optional, one per
   input) is how messages name each input, e.g. "'conv3'" or "the previous
   layer 'conv3'"; NULL: "'<node name>'". */
bool ir_infer_shape_at(Graph *g, Node *n, const char *const *in_names, IrShapeError *e);

/* Structural checks (arity, order, shapes consistent with attributes, names
   unique, params present with data). Returns the number of problems, each
   printed to `out` if non-NULL. The driver runs it after every pass. */
int ir_verify(const Graph *g, FILE *out);

/* Whether n is one of the graph's outputs (its value must stay visible). */
bool ir_is_graph_output(const Graph *g, const Node *n);
/* The SLICE users of a split node (Node.split), in channel order: a
   malloc'd array of *count nodes, or NULL and 0 for a node that is not
   split. */
Node **ir_split_slices(const Graph *g, const Node *n, int *count);
/* The "small groups" rule: a grouped conv whose groups have Cg input and
   as many output channels, Cg < block and Cg dividing block, with channel
   counts that are multiples of block. Then output block b (block channels)
   holds block/Cg whole groups whose inputs are exactly input block b, lane
   for lane, and the conv runs on the blocked layout (passes/layout.c keeps
   it blocked, backend/grouped.c computes it). */
bool ir_conv_small_groups(const Node *n, int block);
/* The "window groups" rule: any other grouped conv whose input and output
   channel counts are multiples of block but whose groups are not (RegNetX's
   groups of 24). Output block b then reads the input blocks that its
   groups' input channels span (a window of whole blocks; weights outside
   an output channel's group are zero): backend/blocked.c computes it on
   the blocked layout, reading a blocked input. */
bool ir_conv_window_groups(const Node *n, int block);
/* Users of each node: fills counts[id] (array of g->next_id ints). */
void ir_count_users(const Graph *g, int *counts);
/* Replace every use of `from` by `to` (inputs and graph outputs). */
void ir_replace_uses(Graph *g, Node *from, Node *to);
/* Drop dead nodes and renumber Node.order. */
void ir_compact(Graph *g);
/* Stable topological sort (keeps the current order where it is valid). */
void ir_toposort(Graph *g);

/* The activation an activation op (OPF_ACT: relu, clamp, sigmoid, ...)
   computes, with its parameters from n's attributes; ACT_NONE for any
   other op. */
Act ir_node_act(const Node *n);
bool ir_act_eq(const Act *x, const Act *y);
/* "relu", "clamp(0,6)", "hardsigmoid(0.166667,0.5)", "gelu(tanh)": how the
   printer and --emit=dot show an activation (into buf; returns buf). */
char *ir_act_str(const Act *a, char *buf, size_t n);

/* Multiply-accumulates per sample of one node / the whole graph (conv and
   linear; others count 0, as torchinfo and the REFERENCE table do). */
uint64_t ir_node_macs(const Node *n);
uint64_t ir_graph_macs(const Graph *g);
/* Parameters currently held by the graph (after folding), and trainable
   parameters as PyTorch counts them. */
uint64_t ir_graph_param_count(const Graph *g, bool trainable_only);

/* Record a statistic line for `cnncc --stats`. */
void ir_stat(Graph *g, const char *pass, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------- print.c */

/* The stable textual form: one line per live node, e.g.
 *   %5 conv2d "layer1.0.conv1" (%4) out=64 k=1x1 s=1x1 p=0,0,0,0 bias=0 -> 64x56x56
 * Deterministic: no pointers, no floats beyond %g of attributes. */
void ir_print(const Graph *g, FILE *out);

/* ir_print's text with every name emptied and ids numbered in execution
   order (malloc'd): equal for two graphs that differ only in names, e.g. a
   spec and the same spec written back (--emit=spec). */
char *ir_print_modulo_names(Graph *g);

/* ------------------------------------------------------------------ dot.c */

/* Graphviz source of the graph: fused kernels as one box, concat slices as
   labelled edges, clusters by the first component of the names. */
void ir_print_dot(const Graph *g, FILE *out);

#endif

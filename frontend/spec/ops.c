/*
 * ops.c: the ops of the spec language and their attributes.
 *
 * The spec language offers every op of ir/ops.def that is not OPF_NOSPEC,
 * under its IR name (ir_ops[op].name): the names are not repeated here.
 * What this file adds is one row per op, its attributes: for each, the key
 * in the spec, the kind of value it takes (lower.c converts by kind), whether
 * it is required, the Attrs field the value goes to (by offsetof, checked
 * against the field's type at compile time) and any further rule on the
 * value. Lowering is driven by these rows: it converts each value by its
 * kind into its field, with no code for any one key.
 *
 * An alias is another name for an op with some attributes fixed by the
 * name; aliases are listed explicitly (global_avgpool is adaptive_avgpool
 * with out 1x1).
 *
 * Lists of names (the "did you mean" of an unknown op) take the ops in
 * ops.def order, each followed by its aliases.
 */
#include <string.h>

#include "spec_internal.h"

/* clang-format 14 and 19 lay out the macros below differently (a space in
   `T *:`, braces on a line of their own): both keep them as written. */
/* clang-format off */
/* The offset of Attrs field `f`, which must have type T: a compile error
   otherwise, so a row cannot send a value into a field of another type. */
#define FIELD(f, T) _Generic(&((Attrs *)0)->f, T *: offsetof(Attrs, f))
typedef int64_t Pair[2];
typedef int64_t Pad[4];

#define REQUIRED true
#define OPTIONAL false
/* One attribute row per kind, with the field type the kind writes. */
#define ATTR_INT(key, req, f) {key, AK_INT, req, FIELD(f, int64_t), AR_NONE}
#define ATTR_INDEX(key, req, f) {key, AK_INDEX, req, FIELD(f, int64_t), AR_NONE}
#define ATTR_PAIR(key, req, f) {key, AK_PAIR, req, FIELD(f, Pair), AR_NONE}
#define ATTR_PAD(key, f) {key, AK_PAD, OPTIONAL, FIELD(f, Pad), AR_NONE}
#define ATTR_BOOL(key, f) {key, AK_BOOL, OPTIONAL, FIELD(f, bool), AR_NONE}
#define ATTR_FLOAT(key, req, f, rule) {key, AK_FLOAT, req, FIELD(f, float), rule}
#define ATTR_AXIS(key, f) {key, AK_AXIS, OPTIONAL, FIELD(f, int), AR_NONE}
/* A pool's stride: when not given, the kernel's. */
#define ATTR_POOL_STRIDE(key, f) {key, AK_PAIR, OPTIONAL, FIELD(f, Pair), AR_KERNEL_IF_ABSENT}
/* A tensor shape, [C, H, W] or [F]. */
#define ATTR_SHAPE(key, req, f) {key, AK_SHAPE, req, FIELD(f, Shape), AR_NONE}
/* One of a list of words; the field gets its index. */
#define ATTR_CHOICE(key, f, words) {key, AK_CHOICE, OPTIONAL, FIELD(f, int), AR_NONE, words}
/* clang-format on */

/* gelu's `approximate`, as torch.nn.GELU spells it: index 1 is tanh. */
static const char *const gelu_forms[] = {"none", "tanh", NULL};

/* One row per op of the spec language, indexed by Op (a row's .op is its
   index); an OPF_NOSPEC op has none. */
static const SpecOp rows[OP_COUNT_] = {
    [OP_CONV2D] = {.op = OP_CONV2D,
                   .attrs =
                       {
                           ATTR_INT("out", REQUIRED, out_channels),
                           ATTR_PAIR("kernel", REQUIRED, kernel),
                           ATTR_PAIR("stride", OPTIONAL, stride),
                           ATTR_PAD("pad", pad),
                           ATTR_PAIR("dilation", OPTIONAL, dilation),
                           ATTR_INT("groups", OPTIONAL, groups),
                           ATTR_BOOL("bias", has_bias),
                       }},
    [OP_BATCHNORM] = {.op = OP_BATCHNORM, .attrs = {ATTR_FLOAT("eps", OPTIONAL, eps, AR_POSITIVE)}},
    [OP_RELU] = {.op = OP_RELU},
    [OP_CLAMP] = {.op = OP_CLAMP,
                  .attrs =
                      {
                          ATTR_FLOAT("min", OPTIONAL, clamp_min, AR_NONE),
                          ATTR_FLOAT("max", OPTIONAL, clamp_max, AR_NONE),
                      }},
    [OP_SIGMOID] = {.op = OP_SIGMOID},
    [OP_HARDSIGMOID] = {.op = OP_HARDSIGMOID,
                        .attrs =
                            {
                                ATTR_FLOAT("alpha", OPTIONAL, hs_alpha, AR_NONE),
                                ATTR_FLOAT("beta", OPTIONAL, hs_beta, AR_NONE),
                            }},
    [OP_HARDSWISH] = {.op = OP_HARDSWISH},
    [OP_SILU] = {.op = OP_SILU},
    [OP_GELU] = {.op = OP_GELU, .attrs = {ATTR_CHOICE("approximate", gelu_tanh, gelu_forms)}},
    [OP_MAXPOOL] = {.op = OP_MAXPOOL,
                    .attrs =
                        {
                            ATTR_PAIR("kernel", REQUIRED, kernel),
                            ATTR_POOL_STRIDE("stride", stride),
                            ATTR_PAD("pad", pad),
                            ATTR_PAIR("dilation", OPTIONAL, dilation),
                            ATTR_BOOL("ceil_mode", ceil_mode),
                        }},
    [OP_AVGPOOL] = {.op = OP_AVGPOOL,
                    .attrs =
                        {
                            ATTR_PAIR("kernel", REQUIRED, kernel),
                            ATTR_POOL_STRIDE("stride", stride),
                            ATTR_PAD("pad", pad),
                            ATTR_BOOL("ceil_mode", ceil_mode),
                            ATTR_BOOL("count_include_pad", count_include_pad),
                        }},
    [OP_ADAPTIVE_AVGPOOL] = {.op = OP_ADAPTIVE_AVGPOOL,
                             .attrs = {ATTR_PAIR("out", REQUIRED, out_hw)}},
    [OP_ADAPTIVE_MAXPOOL] = {.op = OP_ADAPTIVE_MAXPOOL,
                             .attrs = {ATTR_PAIR("out", REQUIRED, out_hw)}},
    [OP_LRN] = {.op = OP_LRN,
                .attrs =
                    {
                        ATTR_INT("size", REQUIRED, lrn_size),
                        ATTR_FLOAT("alpha", OPTIONAL, alpha, AR_NONE),
                        ATTR_FLOAT("beta", OPTIONAL, beta, AR_NONE),
                        ATTR_FLOAT("k", OPTIONAL, k, AR_NONE),
                    }},
    [OP_LAYERNORM] = {.op = OP_LAYERNORM, .attrs = {ATTR_FLOAT("eps", OPTIONAL, eps, AR_POSITIVE)}},
    [OP_LINEAR] = {.op = OP_LINEAR,
                   .attrs =
                       {
                           ATTR_INT("out", REQUIRED, out_features),
                           ATTR_BOOL("bias", has_bias),
                       }},
    [OP_FLATTEN] = {.op = OP_FLATTEN},
    [OP_SLICE] = {.op = OP_SLICE,
                  .attrs =
                      {
                          ATTR_INDEX("begin", OPTIONAL, slice_begin),
                          ATTR_INT("end", REQUIRED, slice_end),
                      }},
    [OP_DROPOUT] = {.op = OP_DROPOUT, .attrs = {ATTR_FLOAT("p", OPTIONAL, p, AR_PROBABILITY)}},
    [OP_CONCAT] = {.op = OP_CONCAT, .attrs = {ATTR_AXIS("axis", axis)}},
    [OP_CHANNEL_SHUFFLE] = {.op = OP_CHANNEL_SHUFFLE,
                            .attrs = {ATTR_INT("groups", REQUIRED, groups)}},
    [OP_ADD] = {.op = OP_ADD},
    [OP_MEAN] = {.op = OP_MEAN},
    [OP_SCALE] = {.op = OP_SCALE, .attrs = {ATTR_FLOAT("factor", REQUIRED, scale, AR_NONE)}},
    [OP_MUL] = {.op = OP_MUL},
    [OP_PARAMETER] = {.op = OP_PARAMETER, .attrs = {ATTR_SHAPE("shape", REQUIRED, param_shape)}},
    [OP_SOFTMAX] = {.op = OP_SOFTMAX, .attrs = {ATTR_AXIS("axis", axis)}},
};

/* global_avgpool: PyTorch's AdaptiveAvgPool2d(1), the head of most nets;
   global_maxpool: AdaptiveMaxPool2d(1) */
static void out_1x1(Attrs *a) { a->out_hw[0] = a->out_hw[1] = 1; }
/* relu6: torch.nn.ReLU6, clamp to [0, 6] (MobileNetV2) */
static void zero_to_six(Attrs *a) {
  a->clamp_min = 0;
  a->clamp_max = 6;
}

/* pointwise_linear: nn.Linear on each pixel's channels (ConvNeXt's pwconv,
   applied to a channels-last tensor), a 1x1 conv with nn.Linear's weight */
static void linear_per_pixel(Attrs *a) {
  a->kernel[0] = a->kernel[1] = 1;
  a->linear_weight = true;
}

/* Other names for ops, each with the attributes its name implies. */
static const SpecOp aliases[] = {
    {.op = OP_ADAPTIVE_AVGPOOL, .alias = "global_avgpool", .implied = out_1x1},
    {.op = OP_ADAPTIVE_MAXPOOL, .alias = "global_maxpool", .implied = out_1x1},
    {.op = OP_CLAMP, .alias = "relu6", .implied = zero_to_six},
    {.op = OP_CONV2D,
     .alias = "pointwise_linear",
     .attrs = {ATTR_INT("out", REQUIRED, out_channels), ATTR_BOOL("bias", has_bias)},
     .implied = linear_per_pixel},
    /* chunk: torch.chunk(x, chunks, dim=1)[index], a slice */
    {.op = OP_SLICE,
     .alias = "chunk",
     .attrs = {ATTR_INT("chunks", REQUIRED, chunks), ATTR_INDEX("index", REQUIRED, chunk_index)}},
};
#define NALIASES ((int)(sizeof aliases / sizeof aliases[0]))

/* The row of op o, which the spec language offers. */
static const SpecOp *row(Op o) {
  CHECK(rows[o].op == o,
        "op '%s' of ir/ops.def has no row in frontend/spec/ops.c (or is it OPF_NOSPEC?)",
        ir_ops[o].name);
  return &rows[o];
}

static bool offered(Op o) { return !(ir_ops[o].flags & OPF_NOSPEC); }

const SpecOp *spec_op_find(const char *name) {
  for (int o = 0; o < OP_COUNT_; o++)
    if (offered(o) && strcmp(ir_ops[o].name, name) == 0)
      return row(o);
  for (int i = 0; i < NALIASES; i++)
    if (strcmp(aliases[i].alias, name) == 0)
      return &aliases[i];
  return NULL;
}

const char *spec_op_name(const SpecOp *op) { return op->alias ? op->alias : ir_ops[op->op].name; }

const AttrSpec *spec_op_attr(const SpecOp *op, const char *key) {
  for (int j = 0; j < SPEC_MAX_ATTRS && op->attrs[j].key; j++)
    if (strcmp(op->attrs[j].key, key) == 0)
      return &op->attrs[j];
  return NULL;
}

int spec_op_names(Arena *a, const char ***names) {
  *names = arena_alloc(a, sizeof(char *) * (OP_COUNT_ + NALIASES));
  int n = 0;
  for (int o = 0; o < OP_COUNT_; o++) {
    if (!offered(o))
      continue;
    (*names)[n++] = spec_op_name(row(o));
    for (int i = 0; i < NALIASES; i++)
      if (aliases[i].op == (Op)o)
        (*names)[n++] = aliases[i].alias;
  }
  return n;
}

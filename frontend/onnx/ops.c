/*
 * ops.c: the ONNX ops cnncc reads, with the opsets each row serves.
 *
 * A row names an op of the default domain, the first and last opset whose
 * definition it implements (the lowering reads the opset where the
 * versions differ: Clip's bounds, Softmax's axis, Unsqueeze's axes, ...),
 * and its lowering; rows without one are folded (their inputs must be
 * constants, except Shape's), and a foldable op with a lowering (Transpose,
 * Slice, Unsqueeze, ...) is folded when its inputs are constants and
 * lowered when one is computed at run time. The internal rows are the ops
 * of domain cnncc that patterns.c and products.c make for what they
 * recognize, at any opset. docs/onnx.md has the same table for users.
 */
#include <string.h>

#include "onnx_internal.h"

#define ALL OX_MIN_OPSET, OX_MAX_OPSET
/* clang-format 14 and 19 disagree on a braced macro body: kept as written. */
/* clang-format off */
#define INTERNAL(op, fn) {op, OX_MIN_OPSET, OX_MAX_OPSET, fn, true}
/* clang-format on */

static const OxOpInfo ops[] = {
    /* layers */
    {"Conv", ALL, ox_lower_conv, false},
    {"BatchNormalization", ALL, ox_lower_batchnorm, false},
    {"MaxPool", ALL, ox_lower_pool, false},
    {"AveragePool", ALL, ox_lower_pool, false},
    {"GlobalAveragePool", ALL, ox_lower_global_pool, false},
    {"GlobalMaxPool", ALL, ox_lower_global_pool, false},
    {"LRN", ALL, ox_lower_lrn, false},
    {"LayerNormalization", 17, OX_MAX_OPSET, ox_lower_layernorm, false},
    {"ReduceMean", ALL, ox_lower_reduce, false},
    {"ReduceMax", ALL, ox_lower_reduce, false},
    {"Gemm", ALL, ox_lower_gemm, false},
    {"MatMul", ALL, ox_lower_matmul, false},
    /* activations */
    {"Relu", ALL, ox_lower_relu, false},
    {"Clip", ALL, ox_lower_clip, false},
    {"Sigmoid", ALL, ox_lower_sigmoid, false},
    {"HardSigmoid", ALL, ox_lower_hardsigmoid, false},
    {"HardSwish", 14, OX_MAX_OPSET, ox_lower_hardswish, false},
    {"Softmax", ALL, ox_lower_softmax, false},
    /* elementwise */
    {"Add", ALL, ox_lower_add, false},
    {"Sub", ALL, ox_lower_add, false},
    {"Mul", ALL, ox_lower_mul_div, false},
    {"Div", ALL, ox_lower_mul_div, false},
    {"Sum", ALL, ox_lower_sum_mean, false},
    {"Mean", ALL, ox_lower_sum_mean, false},
    {"Neg", ALL, ox_lower_neg, false},
    {"Concat", ALL, ox_lower_concat, false},
    /* views, channel moves and no-ops at inference */
    {"Flatten", ALL, ox_lower_flatten, false},
    {"Reshape", ALL, ox_lower_reshape, false},
    {"Transpose", ALL, ox_lower_transpose, false},
    {"Slice", ALL, ox_lower_slice, false},
    {"Split", ALL, ox_lower_split, false},
    {"Unsqueeze", ALL, ox_lower_unsqueeze, false},
    {"Squeeze", ALL, ox_lower_squeeze, false},
    {"Identity", ALL, ox_lower_identity, false},
    {"Dropout", ALL, ox_lower_identity, false},
    {"Pad", ALL, ox_lower_pad, false},
    /* shape arithmetic: folded */
    {"Constant", ALL, NULL, false},
    {"Shape", ALL, NULL, false},
    {"Gather", ALL, NULL, false},
    {"Cast", ALL, NULL, false},
    {"ConstantOfShape", 9, OX_MAX_OPSET, NULL, false},
    {"Sqrt", ALL, NULL, false},
    {"Equal", ALL, NULL, false},
    {"Where", 9, OX_MAX_OPSET, NULL, false},
    {"Range", 11, OX_MAX_OPSET, NULL, false},
    /* what patterns.c and products.c recognize (domain cnncc) */
    INTERNAL("Silu", ox_lower_silu),
    INTERNAL("HardSwish", ox_lower_hardswish),
    INTERNAL("Gelu", ox_lower_gelu),
    INTERNAL("LayerNormalization", ox_lower_layernorm),
    INTERNAL("ChannelShuffle", ox_lower_channel_shuffle),
};

/* Ops read only inside a recognized pattern, and which. */
static const struct {
  const char *op, *pattern;
} parts[] = {
    {"Erf", "GELU, x * 0.5 * (1 + Erf(x / sqrt(2)))"},
    {"Tanh", "GELU's tanh form, x * 0.5 * (1 + Tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))"},
    {"Pow", "LayerNorm as torch writes it before opset 17 (ReduceMean, Sub, Pow 2, ReduceMean, "
            "Add eps, Sqrt, Div), or GELU's tanh form (x^3)"},
    {"Gelu", "GELU's erf or tanh form (the Gelu op is opset 20, above the opsets cnncc reads)"},
};

const OxOpInfo *ox_op_find(const char *domain, const char *op_type, int64_t opset) {
  bool internal = domain && strcmp(domain, OX_DOMAIN_CNNCC) == 0;
  if (domain && *domain && strcmp(domain, "ai.onnx") != 0 && !internal)
    return NULL;
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (strcmp(ops[i].op_type, op_type) == 0 && ops[i].internal == internal &&
        (internal || (opset >= ops[i].since && opset <= ops[i].until)))
      return &ops[i];
  return NULL;
}

bool ox_op_known(const char *op_type) {
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (strcmp(ops[i].op_type, op_type) == 0 && !ops[i].internal)
      return true;
  return false;
}

const char *ox_op_part_of(const char *op_type) {
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
    if (strcmp(parts[i].op, op_type) == 0)
      return parts[i].pattern;
  return NULL;
}

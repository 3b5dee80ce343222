/*
 * ops.c: the ONNX ops cnncc reads, with the opsets each row serves.
 *
 * A row names an op of the default domain, the first and last opset whose
 * definition it implements (the lowering reads the opset where the
 * versions differ: Clip's bounds, Softmax's axis, Unsqueeze's axes, ...),
 * and its lowering; rows without one are folded (their inputs must be
 * constants, except Shape's). docs/onnx.md has the same table for users.
 */
#include <string.h>

#include "onnx_internal.h"

#define ALL OX_MIN_OPSET, OX_MAX_OPSET

static const OxOpInfo ops[] = {
    /* layers */
    {"Conv", ALL, ox_lower_conv},
    {"BatchNormalization", ALL, ox_lower_batchnorm},
    {"MaxPool", ALL, ox_lower_pool},
    {"AveragePool", ALL, ox_lower_pool},
    {"GlobalAveragePool", ALL, ox_lower_global_pool},
    {"GlobalMaxPool", ALL, ox_lower_global_pool},
    {"LRN", ALL, ox_lower_lrn},
    {"ReduceMean", ALL, ox_lower_reduce},
    {"ReduceMax", ALL, ox_lower_reduce},
    {"Gemm", ALL, ox_lower_gemm},
    {"MatMul", ALL, ox_lower_matmul},
    /* activations */
    {"Relu", ALL, ox_lower_relu},
    {"Clip", ALL, ox_lower_clip},
    {"Softmax", ALL, ox_lower_softmax},
    /* elementwise */
    {"Add", ALL, ox_lower_add},
    {"Sub", ALL, ox_lower_add},
    {"Mul", ALL, ox_lower_mul_div},
    {"Div", ALL, ox_lower_mul_div},
    {"Sum", ALL, ox_lower_sum_mean},
    {"Mean", ALL, ox_lower_sum_mean},
    {"Concat", ALL, ox_lower_concat},
    /* views and no-ops at inference */
    {"Flatten", ALL, ox_lower_flatten},
    {"Reshape", ALL, ox_lower_reshape},
    {"Identity", ALL, ox_lower_identity},
    {"Dropout", ALL, ox_lower_identity},
    {"Pad", ALL, ox_lower_pad},
    /* shape arithmetic: folded */
    {"Constant", ALL, NULL},
    {"Shape", ALL, NULL},
    {"Gather", ALL, NULL},
    {"Unsqueeze", ALL, NULL},
    {"Squeeze", ALL, NULL},
    {"Slice", ALL, NULL},
    {"Cast", ALL, NULL},
    {"ConstantOfShape", 9, OX_MAX_OPSET, NULL},
    {"Transpose", ALL, NULL},
    {"Neg", ALL, ox_lower_neg},
    {"Sqrt", ALL, NULL},
    {"Equal", ALL, NULL},
    {"Where", 9, OX_MAX_OPSET, NULL},
    {"Range", 11, OX_MAX_OPSET, NULL},
};

const OxOpInfo *ox_op_find(const char *domain, const char *op_type, int64_t opset) {
  if (domain && *domain && strcmp(domain, "ai.onnx") != 0)
    return NULL;
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (strcmp(ops[i].op_type, op_type) == 0 && opset >= ops[i].since && opset <= ops[i].until)
      return &ops[i];
  return NULL;
}

bool ox_op_known(const char *op_type) {
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (strcmp(ops[i].op_type, op_type) == 0)
      return true;
  return false;
}

/*
 * ops.c: the ops of the spec language and their attributes.
 */
#include <string.h>

#include "spec_internal.h"

const SpecOp spec_ops[] = {
    {"conv2d",
     OP_CONV2D,
     {{"out", AK_INT, true},
      {"kernel", AK_PAIR, true},
      {"stride", AK_PAIR, false},
      {"pad", AK_PAD, false},
      {"dilation", AK_PAIR, false},
      {"groups", AK_INT, false},
      {"bias", AK_BOOL, false}}},
    {"batchnorm", OP_BATCHNORM, {{"eps", AK_FLOAT, false}}},
    {"relu", OP_RELU, {{0}}},
    {"maxpool",
     OP_MAXPOOL,
     {{"kernel", AK_PAIR, true},
      {"stride", AK_PAIR, false},
      {"pad", AK_PAD, false},
      {"dilation", AK_PAIR, false},
      {"ceil_mode", AK_BOOL, false}}},
    {"avgpool",
     OP_AVGPOOL,
     {{"kernel", AK_PAIR, true},
      {"stride", AK_PAIR, false},
      {"pad", AK_PAD, false},
      {"ceil_mode", AK_BOOL, false},
      {"count_include_pad", AK_BOOL, false}}},
    {"adaptive_avgpool", OP_ADAPTIVE_AVGPOOL, {{"out", AK_PAIR, true}}},
    {"global_avgpool", OP_ADAPTIVE_AVGPOOL, {{0}}},
    {"lrn",
     OP_LRN,
     {{"size", AK_INT, true},
      {"alpha", AK_FLOAT, false},
      {"beta", AK_FLOAT, false},
      {"k", AK_FLOAT, false}}},
    {"linear", OP_LINEAR, {{"out", AK_INT, true}, {"bias", AK_BOOL, false}}},
    {"flatten", OP_FLATTEN, {{0}}},
    {"dropout", OP_DROPOUT, {{"p", AK_FLOAT, false}}},
    {"concat", OP_CONCAT, {{"axis", AK_AXIS, false}}},
    {"add", OP_ADD, {{0}}},
    {"mean", OP_MEAN, {{0}}},
    {"scale", OP_SCALE, {{"factor", AK_FLOAT, true}}},
    {"softmax", OP_SOFTMAX, {{"axis", AK_AXIS, false}}},
    {NULL, 0, {{0}}},
};

const SpecOp *spec_op_find(const char *name) {
  for (const SpecOp *o = spec_ops; o->name; o++)
    if (strcmp(o->name, name) == 0)
      return o;
  return NULL;
}

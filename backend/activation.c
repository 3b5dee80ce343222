/*
 * activation.c: the activations (ir.h's Act) as LLVM IR, on a float or a
 * <16 x float>: the one helper every kernel's epilogue and every
 * activation op's kernel call, so each activation is written once.
 */
#include "backend_internal.h"

static bool is_vector(LLVMValueRef x) {
  return LLVMGetTypeKind(LLVMTypeOf(x)) == LLVMVectorTypeKind;
}

LLVMValueRef be_act(BeCtx *c, const Act *a, LLVMValueRef x) {
  switch (a->kind) {
  case ACT_NONE:
    return x;
  case ACT_RELU:
    return is_vector(x) ? be_vrelu(c, x) : be_relu(c, x);
  default:
    break;
  }
  CHECK(false, "activation kind %d has no code", (int)a->kind);
  return x;
}

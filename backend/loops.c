/*
 * loops.c: the small vocabulary the kernels are written in.
 *
 * Kernels are emitted straight through the LLVM-C builder; these helpers keep
 * that readable: i64 arithmetic with nsw flags (so SCEV can reason about
 * indices and the loop vectorizer sees simple strides), float helpers with
 * the right fast-math flags (fmuladd so FMAs form; reassociation only where a
 * reduction is meant to be vectorized), counted loops with a phi induction
 * variable, if/else, and scalar variables as entry-block allocas that SROA
 * turns into SSA values at -O1 and above.
 */
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"

LLVMValueRef be_i64(BeCtx *c, int64_t v) {
  return LLVMConstInt(c->t_i64, (unsigned long long)v, 1);
}
LLVMValueRef be_i32(BeCtx *c, int32_t v) {
  return LLVMConstInt(c->t_i32, (unsigned long long)(int64_t)v, 1);
}
LLVMValueRef be_f32(BeCtx *c, float v) { return LLVMConstReal(c->t_f32, v); }

LLVMValueRef be_add(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildNSWAdd(c->b, a, b, "");
}
LLVMValueRef be_sub(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildNSWSub(c->b, a, b, "");
}
LLVMValueRef be_mul(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildNSWMul(c->b, a, b, "");
}
LLVMValueRef be_sdiv(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSDiv(c->b, a, b, "");
}
LLVMValueRef be_srem(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSRem(c->b, a, b, "");
}
LLVMValueRef be_smin(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef lt = LLVMBuildICmp(c->b, LLVMIntSLT, a, b, "");
  return LLVMBuildSelect(c->b, lt, a, b, "");
}
LLVMValueRef be_smax(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef gt = LLVMBuildICmp(c->b, LLVMIntSGT, a, b, "");
  return LLVMBuildSelect(c->b, gt, a, b, "");
}
LLVMValueRef be_addk(BeCtx *c, LLVMValueRef a, int64_t k) {
  return k == 0 ? a : be_add(c, a, be_i64(c, k));
}
LLVMValueRef be_mulk(BeCtx *c, LLVMValueRef a, int64_t k) {
  return k == 1 ? a : be_mul(c, a, be_i64(c, k));
}

/* ------------------------------------------------------------------- floats */

static LLVMValueRef with_fmf(LLVMValueRef v, LLVMFastMathFlags f) {
  if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v))
    LLVMSetFastMathFlags(v, f);
  return v;
}

LLVMValueRef be_fadd(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFAdd(c->b, a, b, "");
}
LLVMValueRef be_fadd_r(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return with_fmf(LLVMBuildFAdd(c->b, a, b, ""),
                  LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
}
LLVMValueRef be_fmul(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return with_fmf(LLVMBuildFMul(c->b, a, b, ""), LLVMFastMathAllowContract);
}
LLVMValueRef be_fsub(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFSub(c->b, a, b, "");
}
LLVMValueRef be_fdiv(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFDiv(c->b, a, b, "");
}

LLVMValueRef be_intrinsic(BeCtx *c, const char *name, LLVMTypeRef *tys, int ntys,
                          LLVMValueRef *args, int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, tys, (size_t)ntys);
  LLVMTypeRef fty = LLVMIntrinsicGetType(c->ctx, id, tys, (size_t)ntys);
  return LLVMBuildCall2(c->b, fty, fn, args, (unsigned)nargs, "");
}

/* A float intrinsic overloaded on the type of its first argument. */
static LLVMValueRef intrinsic(BeCtx *c, const char *name, int nargs, LLVMValueRef *args) {
  LLVMTypeRef ty = LLVMTypeOf(args[0]);
  return be_intrinsic(c, name, &ty, 1, args, nargs);
}

LLVMValueRef be_fmuladd(BeCtx *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc) {
  LLVMValueRef args[3] = {a, b, acc};
  return intrinsic(c, "llvm.fmuladd", 3, args);
}

LLVMValueRef be_fcall1(BeCtx *c, const char *name, LLVMValueRef x) {
  return intrinsic(c, name, 1, &x);
}
LLVMValueRef be_fcall2(BeCtx *c, const char *name, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef args[2] = {x, y};
  return intrinsic(c, name, 2, args);
}

LLVMValueRef be_fmax_nan(BeCtx *c, LLVMValueRef m, LLVMValueRef x) {
  /* PyTorch's max pooling: x > m or x is NaN. A NaN wins, and keeps
     winning: "x unordered-greater than m" would also take a finite x
     after a NaN m, and lose it. */
  LLVMValueRef gt = LLVMBuildFCmp(c->b, LLVMRealOGT, x, m, "");
  LLVMValueRef nan = LLVMBuildFCmp(c->b, LLVMRealUNO, x, x, "");
  return LLVMBuildSelect(c->b, LLVMBuildOr(c->b, gt, nan, ""), x, m, "");
}

LLVMValueRef be_fmax_r(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef gt = with_fmf(LLVMBuildFCmp(c->b, LLVMRealOGT, a, b, ""),
                             LLVMFastMathNoNaNs | LLVMFastMathNoSignedZeros);
  return with_fmf(LLVMBuildSelect(c->b, gt, a, b, ""),
                  LLVMFastMathNoNaNs | LLVMFastMathNoSignedZeros);
}

LLVMValueRef be_relu(BeCtx *c, LLVMValueRef x) {
  /* x < 0 ? 0 : x keeps NaN, like torch.relu. */
  LLVMValueRef neg = LLVMBuildFCmp(c->b, LLVMRealOLT, x, be_f32(c, 0), "");
  return LLVMBuildSelect(c->b, neg, be_f32(c, 0), x, "");
}

LLVMValueRef be_sitofp(BeCtx *c, LLVMValueRef i) { return LLVMBuildSIToFP(c->b, i, c->t_f32, ""); }

/* --------------------------------------------------------------- addressing */

LLVMValueRef be_fptr(BeCtx *c, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(c->b, c->t_f32, base, &idx, 1, "");
}

LLVMValueRef be_ld(BeCtx *c, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_f32, be_fptr(c, base, idx), "");
  LLVMSetAlignment(v, 4);
  return v;
}

void be_st(BeCtx *c, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v) {
  LLVMValueRef s = LLVMBuildStore(c->b, v, be_fptr(c, base, idx));
  LLVMSetAlignment(s, 4);
}

LLVMValueRef be_table_i64(BeCtx *c, const char *name, const int64_t *v, int n) {
  LLVMValueRef *el = malloc(sizeof(LLVMValueRef) * (size_t)n);
  for (int i = 0; i < n; i++)
    el[i] = be_i64(c, v[i]);
  LLVMValueRef init = LLVMConstArray2(c->t_i64, el, (uint64_t)n);
  free(el);
  LLVMValueRef g = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
  return g;
}

LLVMValueRef be_ld_i64(BeCtx *c, LLVMValueRef table, LLVMValueRef idx) {
  LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, c->t_i64, table, &idx, 1, "");
  return LLVMBuildLoad2(c->b, c->t_i64, p, "");
}

/* ------------------------------------------------------------------ vectors */

LLVMValueRef be_vsplat(BeCtx *c, LLVMValueRef scalar) {
  if (LLVMIsAConstant(scalar) && !LLVMIsAInstruction(scalar)) {
    LLVMValueRef el[16];
    for (int i = 0; i < 16; i++)
      el[i] = scalar;
    return LLVMConstVector(el, 16);
  }
  LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(scalar), 16); /* t_v16 for a float */
  LLVMValueRef v = LLVMBuildInsertElement(c->b, LLVMGetPoison(vt), scalar, be_i32(c, 0), "");
  LLVMValueRef zero = LLVMConstNull(LLVMVectorType(c->t_i32, 16));
  return LLVMBuildShuffleVector(c->b, v, LLVMGetPoison(vt), zero, "");
}

LLVMValueRef be_vld(BeCtx *c, LLVMValueRef base, LLVMValueRef idx, unsigned align) {
  LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_v16, be_fptr(c, base, idx), "");
  LLVMSetAlignment(v, align);
  return v;
}

void be_vst(BeCtx *c, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v, unsigned align) {
  LLVMValueRef s = LLVMBuildStore(c->b, v, be_fptr(c, base, idx));
  LLVMSetAlignment(s, align);
}

LLVMValueRef be_vbcast(BeCtx *c, LLVMValueRef base, LLVMValueRef idx) {
  return be_vsplat(c, be_ld(c, base, idx));
}

bool be_bcast_by_lane(const BeTarget *t) { return t->arch == BE_AARCH64; }

LLVMValueRef be_vld4(BeCtx *c, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef v = LLVMBuildLoad2(c->b, LLVMVectorType(c->t_f32, 4), be_fptr(c, base, idx), "");
  LLVMSetAlignment(v, 16);
  return v;
}

LLVMValueRef be_vlane(BeCtx *c, LLVMValueRef v4, int lane) {
  LLVMValueRef m[16];
  for (int i = 0; i < 16; i++)
    m[i] = be_i32(c, lane);
  return LLVMBuildShuffleVector(c->b, v4, LLVMGetPoison(LLVMTypeOf(v4)), LLVMConstVector(m, 16),
                                "");
}

/* llvm.fma where the target has FMA instructions; elsewhere (SSE) llvm.fma
   would be a call of libm's fmaf per lane, so a multiply and an add
   (llvm.fmuladd, which the backend fuses where it can). */
LLVMValueRef be_vfma(BeCtx *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc) {
  LLVMValueRef args[3] = {a, b, acc};
  return intrinsic(c, c->cfg->target.fma ? "llvm.fma" : "llvm.fmuladd", 3, args);
}

LLVMValueRef be_square_error(BeCtx *c, LLVMValueRef a, LLVMValueRef aa) {
  if (c->cfg->target.fma) {
    LLVMValueRef args[3] = {a, a, LLVMBuildFNeg(c->b, aa, "")};
    return intrinsic(c, "llvm.fma", 3, args);
  }
  /* Veltkamp's split a = hi + lo (hi has 12 significant bits, so hi*hi,
     hi*lo and lo*lo are exact), then Dekker: a*a - aa =
     ((hi*hi - aa) + 2*hi*lo) + lo*lo, with plain IEEE operations (no
     contraction). |a| <= 17 here (gelu), far from overflow. */
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef k =
      LLVMConstReal(LLVMGetTypeKind(t) == LLVMVectorTypeKind ? LLVMGetElementType(t) : t, 4097.0);
  if (LLVMGetTypeKind(t) == LLVMVectorTypeKind) {
    unsigned n = LLVMGetVectorSize(t);
    LLVMValueRef el[64];
    for (unsigned i = 0; i < n && i < 64; i++)
      el[i] = k;
    k = LLVMConstVector(el, n);
  }
  LLVMBuilderRef b = c->b;
  LLVMValueRef g = LLVMBuildFMul(b, a, k, "");
  LLVMValueRef hi = LLVMBuildFSub(b, g, LLVMBuildFSub(b, g, a, ""), "");
  LLVMValueRef lo = LLVMBuildFSub(b, a, hi, "");
  LLVMValueRef e = LLVMBuildFSub(b, LLVMBuildFMul(b, hi, hi, ""), aa, "");
  LLVMValueRef hl = LLVMBuildFMul(b, hi, lo, "");
  e = LLVMBuildFAdd(b, e, LLVMBuildFAdd(b, hl, hl, ""), "");
  return LLVMBuildFAdd(b, e, LLVMBuildFMul(b, lo, lo, ""), "");
}

/* <16 x i1> with the first m lanes set. */
static LLVMValueRef lane_mask(BeCtx *c, int m) {
  LLVMTypeRef t_i1 = LLVMInt1TypeInContext(c->ctx);
  LLVMValueRef el[16];
  for (int i = 0; i < 16; i++)
    el[i] = LLVMConstInt(t_i1, i < m, 0);
  return LLVMConstVector(el, 16);
}

LLVMValueRef be_vld_masked(BeCtx *c, LLVMValueRef base, LLVMValueRef idx, int m) {
  if (m == 16)
    return be_vld(c, base, idx, 4);
  LLVMTypeRef tys[2] = {c->t_v16, c->t_ptr};
  LLVMValueRef args[4] = {be_fptr(c, base, idx), be_i32(c, 4), lane_mask(c, m),
                          LLVMConstNull(c->t_v16)};
  return be_intrinsic(c, "llvm.masked.load", tys, 2, args, 4);
}

void be_vst_masked(BeCtx *c, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v, int m) {
  if (m == 16) {
    be_vst(c, base, idx, v, 4);
    return;
  }
  LLVMTypeRef tys[2] = {c->t_v16, c->t_ptr};
  LLVMValueRef args[4] = {v, be_fptr(c, base, idx), be_i32(c, 4), lane_mask(c, m)};
  be_intrinsic(c, "llvm.masked.store", tys, 2, args, 4);
}

LLVMValueRef be_vrelu(BeCtx *c, LLVMValueRef x) {
  LLVMValueRef zero = LLVMConstNull(c->t_v16);
  LLVMValueRef neg = LLVMBuildFCmp(c->b, LLVMRealOLT, x, zero, "");
  return LLVMBuildSelect(c->b, neg, zero, x, "");
}

LLVMValueRef be_var(BeCtx *c, LLVMTypeRef t, const char *name) {
  LLVMBuilderRef eb = LLVMCreateBuilderInContext(c->ctx);
  LLVMValueRef first = LLVMGetFirstInstruction(c->entry);
  if (first)
    LLVMPositionBuilderBefore(eb, first);
  else
    LLVMPositionBuilderAtEnd(eb, c->entry);
  LLVMValueRef v = LLVMBuildAlloca(eb, t, name);
  LLVMDisposeBuilder(eb);
  return v;
}

/* -------------------------------------------------------------------- loops */

void be_for(BeCtx *c, BeLoop *l, LLVMValueRef lo, LLVMValueRef hi, const char *name) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
  l->header = LLVMAppendBasicBlockInContext(c->ctx, c->fn, name);
  l->body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "body");
  l->exit = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "done");
  LLVMBuildBr(c->b, l->header);
  LLVMPositionBuilderAtEnd(c->b, l->header);
  l->iv = LLVMBuildPhi(c->b, c->t_i64, name);
  LLVMAddIncoming(l->iv, &lo, &pre, 1);
  LLVMValueRef more = LLVMBuildICmp(c->b, LLVMIntSLT, l->iv, hi, "");
  LLVMBuildCondBr(c->b, more, l->body, l->exit);
  LLVMPositionBuilderAtEnd(c->b, l->body);
}

void be_for_end(BeCtx *c, BeLoop *l) {
  LLVMValueRef next = be_add(c, l->iv, be_i64(c, 1));
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
  LLVMBuildBr(c->b, l->header);
  LLVMAddIncoming(l->iv, &next, &latch, 1);
  /* Keep blocks in source order: the exit after everything of the body. */
  LLVMMoveBasicBlockAfter(l->exit, latch);
  LLVMPositionBuilderAtEnd(c->b, l->exit);
}

void be_if(BeCtx *c, BeIf *f, LLVMValueRef cond) {
  f->then_bb = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "then");
  f->else_bb = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "else");
  f->end_bb = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "endif");
  f->has_else = false;
  LLVMBuildCondBr(c->b, cond, f->then_bb, f->else_bb);
  LLVMPositionBuilderAtEnd(c->b, f->then_bb);
}

void be_else(BeCtx *c, BeIf *f) {
  LLVMBuildBr(c->b, f->end_bb);
  LLVMMoveBasicBlockAfter(f->else_bb, LLVMGetInsertBlock(c->b));
  LLVMPositionBuilderAtEnd(c->b, f->else_bb);
  f->has_else = true;
}

void be_endif(BeCtx *c, BeIf *f) {
  LLVMBuildBr(c->b, f->end_bb);
  if (!f->has_else) {
    LLVMMoveBasicBlockAfter(f->else_bb, LLVMGetInsertBlock(c->b));
    LLVMPositionBuilderAtEnd(c->b, f->else_bb);
    LLVMBuildBr(c->b, f->end_bb);
  }
  LLVMMoveBasicBlockAfter(f->end_bb, LLVMGetInsertBlock(c->b));
  LLVMPositionBuilderAtEnd(c->b, f->end_bb);
}

/* ---------------------------------------------------------------- functions */

void be_add_enum_attr(BeCtx *c, LLVMValueRef fn, unsigned idx, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(c->ctx, kind, 0));
}

static void add_str_attr(BeCtx *c, LLVMValueRef fn, const char *k, const char *v) {
  LLVMAddAttributeAtIndex(
      fn, LLVMAttributeFunctionIndex,
      LLVMCreateStringAttribute(c->ctx, k, (unsigned)strlen(k), v, (unsigned)strlen(v)));
}

void be_func_attrs(BeCtx *c, LLVMValueRef fn) {
  be_add_enum_attr(c, fn, LLVMAttributeFunctionIndex, "nounwind");
  if (c->cfg->target.cpu && *c->cfg->target.cpu)
    add_str_attr(c, fn, "target-cpu", c->cfg->target.cpu);
  if (c->cfg->target.features && *c->cfg->target.features)
    add_str_attr(c, fn, "target-features", c->cfg->target.features);
}

void be_func_begin(BeCtx *c, LLVMValueRef fn) {
  c->fn = fn;
  c->entry = LLVMAppendBasicBlockInContext(c->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(c->b, c->entry);
}

/*
 * linear.c: a fully connected layer (OP_LINEAR on NCHW) over the rows of a
 * batch, so that each weight row is read from memory once per batch of
 * samples instead of once per sample.
 *
 *   out[b][j] = bias[j] + sum_k W[j][k] * in[b][k]     b < nb, j < N, k < K
 *
 * with W as PyTorch lays it out ([N][K], not packed). The batch comes at
 * run time: nb rows whose tensors are `stride` floats apart (the samples'
 * slots of the batched tail, codegen.c), passed after the kernel's pointers
 * (cnnrt.h: two more entries of ptrs, read as integers); a per-sample
 * launch passes nb = 1.
 *
 * Work items are the N output features, as the GEMV it replaces
 * (nchw.c), so threads split the weight rows between them. For each
 * feature j the rows go in register tiles of R samples (AVX-512: 8, then
 * tiles of 4, 2 and 1 for the rest): the weight row streams once through
 * the tile (from memory for the first tile, from the cache for the next),
 * each 16-float weight vector loaded once and multiplied into the R rows'
 * accumulators.
 *
 * The summation order of one output is fixed and does not depend on nb,
 * on the tile the row falls in or on the threads: U = 2 vector
 * accumulators over k (k = 32i and 32i + 16), fused multiply-adds in k
 * order, their sum, a horizontal sum in a fixed tree (lanes 8-15 onto 0-7,
 * then 4, 2, 1), then the K % 16 last products one by one in k order, then
 * the bias and the epilogue. A sample's result is therefore the same bits
 * in a batch of 1 or of 8 (docs/abi.md).
 */
#include <stdlib.h>

#include "backend_internal.h"

#define LIN_U 2 /* vector accumulators per row */

typedef struct {
  int64_t N, K, KV; /* features, inputs, inputs in whole vectors of 16 * LIN_U */
  int R;            /* rows per register tile */
} LinPlan;

static void plan_of(const BeConfig *cf, const Node *n, LinPlan *p) {
  p->N = n->shape.d[0];
  p->K = shape_numel(&n->in[0]->shape);
  p->KV = p->K / (16 * LIN_U) * (16 * LIN_U);
  /* R x U accumulators + U weight vectors: AVX-512 8 x 2 + 2 of 32 zmm;
     AVX2 and NEON (a <16 x float> is 2 or 4 registers) 2 x 2 + 2; SSE 1. */
  int regs = be_v16_regs(&cf->target);
  p->R = regs >= 32 ? 8 : regs >= 8 ? 2 : 1;
}

bool be_linear_rows_accepts(const BeConfig *cf, const Node *n) {
  (void)cf;
  return n->op == OP_LINEAR && n->layout == LAYOUT_NCHW && !n->split && n->nin >= 1 &&
         n->shape.rank == 1;
}

int64_t be_work_linear_rows(const BeConfig *cf, const Node *n) {
  (void)cf;
  return n->shape.d[0];
}

/* Horizontal sum of 16 lanes in a fixed order: 8 + 8, 4 + 4, 2 + 2, 1 + 1. */
static LLVMValueRef hsum(BeCtx *c, LLVMValueRef v) {
  for (int w = 8; w >= 1; w /= 2) {
    LLVMValueRef lo[8], hi[8];
    for (int i = 0; i < w; i++) {
      lo[i] = be_i32(c, i);
      hi[i] = be_i32(c, w + i);
    }
    LLVMValueRef a = LLVMBuildShuffleVector(c->b, v, v, LLVMConstVector(lo, (unsigned)w), "");
    LLVMValueRef b = LLVMBuildShuffleVector(c->b, v, v, LLVMConstVector(hi, (unsigned)w), "");
    v = LLVMBuildFAdd(c->b, a, b, "");
  }
  return LLVMBuildExtractElement(c->b, v, be_i32(c, 0), "");
}

static LLVMValueRef sfma(BeCtx *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc) {
  if (!c->cfg->target.fma)
    return LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, a, b, ""), acc, "");
  LLVMValueRef args[3] = {a, b, acc};
  return be_intrinsic(c, "llvm.fma", &c->t_f32, 1, args, 3);
}

/* Feature j for the `rows` samples from row0: the register tile. */
static void emit_tile(BeCtx *c, KArgs *k, const LinPlan *p, LLVMValueRef j, LLVMValueRef row0,
                      int rows) {
  LLVMValueRef w = k->par[P_WEIGHT];
  LLVMValueRef wrow = be_mulk(c, j, p->K);
  LLVMValueRef xrow[8], acc[8][LIN_U];
  for (int r = 0; r < rows; r++) {
    xrow[r] = be_mul(c, be_addk(c, row0, r), k->stride);
    for (int u = 0; u < LIN_U; u++) {
      acc[r][u] = be_var(c, c->t_v16, "acc");
      LLVMBuildStore(c->b, LLVMConstNull(c->t_v16), acc[r][u]);
    }
  }
  if (p->KV > 0) {
    BeLoop kl;
    be_for(c, &kl, be_i64(c, 0), be_i64(c, p->KV / (16 * LIN_U)), "kv");
    for (int u = 0; u < LIN_U; u++) {
      LLVMValueRef kk = be_addk(c, be_mulk(c, kl.iv, 16 * LIN_U), 16 * u);
      LLVMValueRef wv = be_wvld(c, k, w, be_add(c, wrow, kk), 4);
      for (int r = 0; r < rows; r++) {
        LLVMValueRef xv = be_vld(c, k->in[0], be_add(c, xrow[r], kk), 4);
        LLVMValueRef a = LLVMBuildLoad2(c->b, c->t_v16, acc[r][u], "");
        LLVMBuildStore(c->b, be_vfma(c, wv, xv, a), acc[r][u]);
      }
    }
    be_for_end(c, &kl);
  }
  LLVMValueRef sum[8];
  for (int r = 0; r < rows; r++) {
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_v16, acc[r][0], "");
    for (int u = 1; u < LIN_U; u++)
      v = LLVMBuildFAdd(c->b, v, LLVMBuildLoad2(c->b, c->t_v16, acc[r][u], ""), "");
    sum[r] = be_var(c, c->t_f32, "sum");
    LLVMBuildStore(c->b, hsum(c, v), sum[r]);
  }
  if (p->K > p->KV) {
    BeLoop kl;
    be_for(c, &kl, be_i64(c, p->KV), be_i64(c, p->K), "k");
    LLVMValueRef ws = be_wld(c, k, w, be_add(c, wrow, kl.iv));
    for (int r = 0; r < rows; r++) {
      LLVMValueRef xs = be_ld(c, k->in[0], be_add(c, xrow[r], kl.iv));
      LLVMValueRef a = LLVMBuildLoad2(c->b, c->t_f32, sum[r], "");
      LLVMBuildStore(c->b, sfma(c, ws, xs, a), sum[r]);
    }
    be_for_end(c, &kl);
  }
  LLVMValueRef bias = k->n->nparams > P_BIAS ? k->par[P_BIAS] : NULL;
  LLVMValueRef bj = bias ? be_ld(c, bias, j) : NULL;
  for (int r = 0; r < rows; r++) {
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_f32, sum[r], "");
    if (bj)
      v = LLVMBuildFAdd(c->b, v, bj, "");
    LLVMValueRef oi = be_add(c, xrow[r], j);
    if (k->res)
      v = LLVMBuildFAdd(c->b, v, be_ld(c, k->res, oi), "");
    be_st(c, k->out, oi, be_act(c, &k->n->epi.act, v));
  }
}

/* For each feature of [lo, hi): tiles of R rows while they fill, then one
   tile each of R/2, R/4, ..., 1 rows as the rest needs them. */
void be_emit_linear_rows(BeCtx *c, KArgs *k) {
  LinPlan p;
  plan_of(c->cfg, k->n, &p);
  LLVMValueRef row = be_var(c, c->t_i64, "row");
  BeLoop jl;
  be_for(c, &jl, k->lo, k->hi, "j");
  LLVMBuildStore(c->b, be_i64(c, 0), row);
  /* whole tiles: rows [0, nb - nb % R) */
  LLVMValueRef full = be_mulk(c, be_sdiv(c, k->nb, be_i64(c, p.R)), p.R);
  BeLoop tl;
  be_for(c, &tl, be_i64(c, 0), be_sdiv(c, k->nb, be_i64(c, p.R)), "tile");
  emit_tile(c, k, &p, jl.iv, be_mulk(c, tl.iv, p.R), p.R);
  be_for_end(c, &tl);
  LLVMBuildStore(c->b, full, row);
  for (int rows = p.R / 2; rows >= 1; rows /= 2) {
    LLVMValueRef r0 = LLVMBuildLoad2(c->b, c->t_i64, row, "");
    BeIf f;
    be_if(c, &f, LLVMBuildICmp(c->b, LLVMIntSGE, be_sub(c, k->nb, r0), be_i64(c, rows), ""));
    emit_tile(c, k, &p, jl.iv, r0, rows);
    LLVMBuildStore(c->b, be_addk(c, r0, rows), row);
    be_endif(c, &f);
  }
  be_for_end(c, &jl);
}

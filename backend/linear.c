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
 * It runs every linear layer (a linear's output is rank 1, NCHW, never
 * split; the scalar GEMV nchw.c had for them is gone). Work items are the
 * N output features, so threads split the weight rows between them. The register
 * tile is F features x R samples (AVX-512: 2 x 8; AVX2 and NEON 2 x 2; SSE
 * 1 x 1): each 16-float weight vector is loaded once for the R samples,
 * each input vector once for the F features. The samples go in tiles of R
 * while they fill, then in one tile each of R/2, R/4, ..., 1 for the rest;
 * a weight row streams from memory for the first tile, from the cache for
 * the others.
 *
 * The summation order of one output is fixed and does not depend on nb,
 * on the tile the output falls in or on the threads: one vector
 * accumulator over k (fused multiply-adds of 16 lanes, in k order), a
 * horizontal sum in a fixed tree (lanes 8-15 onto 0-7, then 4, 2, 1), then
 * the K % 16 last products one by one in k order, then the bias, the
 * residual and the activation. A sample's result is therefore the same
 * bits in a batch of 1 or of 8 (docs/abi.md).
 */
#include <stdlib.h>

#include "backend_internal.h"

#define LIN_U 1 /* vector accumulators per output */

typedef struct {
  int64_t N, K, KV; /* features, inputs, inputs in whole vectors of 16 * LIN_U */
  int R;            /* rows (samples) per register tile */
  int F;            /* features per register tile */
} LinPlan;

static void plan_of(const BeConfig *cf, const Node *n, LinPlan *p) {
  p->N = n->shape.d[0];
  p->K = shape_numel(&n->in[0]->shape);
  p->KV = p->K / (16 * LIN_U) * (16 * LIN_U);
  /* F x R x U accumulators + F weight vectors: AVX-512 2 x 8 + 2 of 32
     zmm (each input vector feeds two fmas); AVX2 and NEON (a <16 x float>
     is 2 or 4 registers) 2 x 2 + 2; SSE 1 x 1 + 1. */
  int regs = be_v16_regs(&cf->target);
  p->R = regs >= 32 ? 8 : regs >= 8 ? 2 : 1;
  p->F = regs >= 8 ? 2 : 1;
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

/* The sums of features j .. j + nf - 1 for `rows` samples from row0 (the
   register tile), into sum[f][r]: the vector part, then the rest. */
static void tile_sums(BeCtx *c, KArgs *k, const LinPlan *p, LLVMValueRef j, int nf,
                      LLVMValueRef *xrow, int rows, LLVMValueRef sum[2][8]) {
  LLVMValueRef w = k->par[P_WEIGHT];
  LLVMValueRef wrow[2], acc[2][8][LIN_U];
  for (int f = 0; f < nf; f++) {
    wrow[f] = be_mulk(c, be_addk(c, j, f), p->K);
    for (int r = 0; r < rows; r++)
      for (int u = 0; u < LIN_U; u++) {
        acc[f][r][u] = be_var(c, c->t_v16, "acc");
        LLVMBuildStore(c->b, LLVMConstNull(c->t_v16), acc[f][r][u]);
      }
  }
  if (p->KV > 0) {
    BeLoop kl;
    be_for(c, &kl, be_i64(c, 0), be_i64(c, p->KV / (16 * LIN_U)), "kv");
    for (int u = 0; u < LIN_U; u++) {
      LLVMValueRef kk = be_addk(c, be_mulk(c, kl.iv, 16 * LIN_U), 16 * u);
      LLVMValueRef wv[2];
      for (int f = 0; f < nf; f++)
        wv[f] = be_wvld(c, k, w, be_add(c, wrow[f], kk), 4);
      for (int r = 0; r < rows; r++) {
        LLVMValueRef xv = be_vld(c, k->in[0], be_add(c, xrow[r], kk), 4);
        for (int f = 0; f < nf; f++) {
          LLVMValueRef a = LLVMBuildLoad2(c->b, c->t_v16, acc[f][r][u], "");
          LLVMBuildStore(c->b, be_vfma(c, wv[f], xv, a), acc[f][r][u]);
        }
      }
    }
    be_for_end(c, &kl);
  }
  for (int f = 0; f < nf; f++)
    for (int r = 0; r < rows; r++) {
      LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_v16, acc[f][r][0], "");
      for (int u = 1; u < LIN_U; u++)
        v = LLVMBuildFAdd(c->b, v, LLVMBuildLoad2(c->b, c->t_v16, acc[f][r][u], ""), "");
      sum[f][r] = be_var(c, c->t_f32, "sum");
      LLVMBuildStore(c->b, hsum(c, v), sum[f][r]);
    }
  if (p->K > p->KV) {
    BeLoop kl;
    be_for(c, &kl, be_i64(c, p->KV), be_i64(c, p->K), "k");
    for (int f = 0; f < nf; f++) {
      LLVMValueRef ws = be_wld(c, k, w, be_add(c, wrow[f], kl.iv));
      for (int r = 0; r < rows; r++) {
        LLVMValueRef xs = be_ld(c, k->in[0], be_add(c, xrow[r], kl.iv));
        LLVMValueRef a = LLVMBuildLoad2(c->b, c->t_f32, sum[f][r], "");
        LLVMBuildStore(c->b, sfma(c, ws, xs, a), sum[f][r]);
      }
    }
    be_for_end(c, &kl);
  }
}

/* Features j .. j + nf - 1 for the `rows` samples from row0: sums, bias,
   epilogue, stores. */
static void emit_tile(BeCtx *c, KArgs *k, const LinPlan *p, LLVMValueRef j, int nf,
                      LLVMValueRef row0, int rows) {
  LLVMValueRef xrow[8], sum[2][8];
  for (int r = 0; r < rows; r++)
    xrow[r] = be_mul(c, be_addk(c, row0, r), k->stride);
  tile_sums(c, k, p, j, nf, xrow, rows, sum);
  LLVMValueRef bias = k->n->nparams > P_BIAS ? k->par[P_BIAS] : NULL;
  for (int f = 0; f < nf; f++) {
    LLVMValueRef jf = be_addk(c, j, f);
    LLVMValueRef bj = bias ? be_ld(c, bias, jf) : NULL;
    for (int r = 0; r < rows; r++) {
      LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_f32, sum[f][r], "");
      if (bj)
        v = LLVMBuildFAdd(c->b, v, bj, "");
      LLVMValueRef oi = be_add(c, xrow[r], jf);
      if (k->res)
        v = LLVMBuildFAdd(c->b, v, be_ld(c, k->res, oi), "");
      be_st(c, k->out, oi, be_act(c, &k->n->epi.act, v));
    }
  }
}

/* Features j .. j + nf - 1 over all nb samples: tiles of R rows while
   they fill, then one tile each of R/2, R/4, ..., 1 rows as the rest needs
   them. */
static void emit_rows(BeCtx *c, KArgs *k, const LinPlan *p, LLVMValueRef j, int nf) {
  LLVMValueRef row = be_var(c, c->t_i64, "row");
  LLVMValueRef ntiles = be_sdiv(c, k->nb, be_i64(c, p->R));
  BeLoop tl;
  be_for(c, &tl, be_i64(c, 0), ntiles, "tile");
  emit_tile(c, k, p, j, nf, be_mulk(c, tl.iv, p->R), p->R);
  be_for_end(c, &tl);
  LLVMBuildStore(c->b, be_mulk(c, ntiles, p->R), row);
  for (int rows = p->R / 2; rows >= 1; rows /= 2) {
    LLVMValueRef r0 = LLVMBuildLoad2(c->b, c->t_i64, row, "");
    BeIf f;
    be_if(c, &f, LLVMBuildICmp(c->b, LLVMIntSGE, be_sub(c, k->nb, r0), be_i64(c, rows), ""));
    emit_tile(c, k, p, j, nf, r0, rows);
    LLVMBuildStore(c->b, be_addk(c, r0, rows), row);
    be_endif(c, &f);
  }
}

/* The features of [lo, hi) F at a time, then the rest one at a time. */
void be_emit_linear_rows(BeCtx *c, KArgs *k) {
  LinPlan p;
  plan_of(c->cfg, k->n, &p);
  LLVMValueRef npairs = be_sdiv(c, be_sub(c, k->hi, k->lo), be_i64(c, p.F));
  BeLoop jl;
  be_for(c, &jl, be_i64(c, 0), npairs, "jf");
  emit_rows(c, k, &p, be_add(c, k->lo, be_mulk(c, jl.iv, p.F)), p.F);
  be_for_end(c, &jl);
  if (p.F > 1) {
    BeLoop rl;
    be_for(c, &rl, be_add(c, k->lo, be_mulk(c, npairs, p.F)), k->hi, "j");
    emit_rows(c, k, &p, rl.iv, 1);
    be_for_end(c, &rl);
  }
}

/*
 * linear.c: a fully connected layer (OP_LINEAR on NCHW) over the rows of a
 * batch, so that each weight is read from memory once per batch of samples
 * instead of once per sample.
 *
 *   out[b][j] = bias[j] + sum_k W[j][k] * in[b][k]     b < nb, j < N, k < K
 *
 * The batch comes at run time: nb rows whose tensors are `stride` floats
 * apart (the samples' slots of the batched tail, codegen.c), passed after
 * the kernel's pointers (cnnrt.h: two more entries of ptrs, read as
 * integers); a per-sample launch passes nb = 1. It runs every linear layer
 * (a linear's output is rank 1, NCHW, never split), in one of two kernels:
 *
 * fp32 weights (kernel "blocks" in --stats and the profile): the weight is
 * packed at compile time (be_pack_linear, blob.c) in column blocks of 16
 * features, [ceil(N/16)][K][16], lane l of (b, k) = W[16 b + l][k], the
 * features past N zero. Work items are the blocks, so threads split them.
 * A register tile is F blocks x r samples, F r vector accumulators (one
 * per block and sample, 16 features each); for each k in order it loads
 * the F weight vectors once and fmas each with every sample's in[k]
 * broadcast (AArch64: four inputs loaded at once, fma by lane). So a
 * weight vector is read once per tile of samples and the inputs are single
 * floats: nothing per sample but the accumulators. Samples go in tiles of
 * R (AVX-512: 8; AVX2: 6; NEON: 4; SSE: 2), the nb % R rest in one tile of
 * its size; F depends on r (AVX-512 F (r + 1) <= 18 of 32 zmm, F <= 4: 2
 * at r = 8, 3 at 4, 4 at 1; --tune linear.tile sets F at r = R), the
 * blocks of [lo, hi) in tiles of F, then of F/2, ..., 1 for the rest. Then
 * per block and sample the bias, the residual and the activation on the
 * 16 lanes, and a store (masked for the last block when N % 16 != 0).
 *
 * bf16 weights (--precision=bf16, kernel "rows"): W as PyTorch lays it out, in
 * bf16, widened as loaded (bf16.c). Work items are the N features; a
 * register tile of F features x R samples (AVX-512: 2 x 8; AVX2 and NEON
 * 2 x 2; SSE 1 x 1), each weight vector loaded once for the R samples,
 * each input vector once for the F features; samples in tiles of R, then
 * R/2, ..., 1 for the rest.
 *
 * The summation order of one output is fixed and does not depend on nb,
 * on the tile the output falls in or on the threads, so a sample's result
 * is the same bits in a batch of 1 or of 8 (docs/abi.md):
 *   fp32: one accumulator lane per output, fused multiply-adds in k order
 *   from 0 (k = 0, 1, ..., K - 1: no horizontal sum), then the bias, the
 *   residual and the activation;
 *   bf16: one vector accumulator over k (fmas of 16 lanes, in k order), a
 *   horizontal sum in a fixed tree (lanes 8-15 onto 0-7, then 4, 2, 1),
 *   then the K % 16 last products one by one in k order, then the bias,
 *   the residual and the activation.
 */
#include <stdlib.h>

#include "backend_internal.h"

/* ------------------------------------------ bf16: the weight as PyTorch's */

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

/* ------------------------------------- fp32: the weight in column blocks */

#define LB_R 8 /* samples per register tile, at most */
#define LB_F 4 /* feature blocks per register tile, at most */

typedef struct {
  int64_t N, K, NB; /* features, inputs, feature blocks of 16 (the last one padded) */
  int R;            /* samples per full register tile */
  int F[LB_R + 1];  /* feature blocks per register tile of r samples, r <= R */
  int step;         /* inputs per load of the samples: 4 by lane (NEON), else 1 */
} BlkPlan;

static void blk_plan(const BeConfig *cf, const Node *n, BlkPlan *p) {
  p->N = n->shape.d[0];
  p->K = shape_numel(&n->in[0]->shape);
  p->NB = be_cdiv(p->N, 16);
  /* A tile of F blocks x r samples holds F r accumulators and F weight
     vectors, plus a broadcast: F (r + 1) registers. AVX-512 (32 zmm):
     F (r + 1) <= 18, F <= 4, so r = 8 -> F = 2, 4 -> 3, 1 or 2 -> 4: fewer
     weight streams than the 32 registers allow were as fast or faster
     (Zen 4, one thread, a 2048 -> 1000 layer from L3: r = 8 0.045 ms per
     sample at F = 2 against 0.050 at F = 3, 0.075 at F = 1; r = 1 and 2
     within noise of F = 4 to 8). AVX2 and NEON (a <16 x float> is 2 or 4
     registers: 8 of them): 7, F = 3 at r = 1, 2 at 2, 1 from 3 on; AVX2
     r <= 6 (12 + 2 + 1 of 16 ymm; the VGG-16 classifier at batch 8 on
     Zen 4 as x86-64-v3: 5.9 ms per sample against 6.9 at r <= 4), NEON
     r <= 4 (it also holds 4 inputs of each sample: 16 + 4 + 4 of 32 q);
     SSE (4): 3, r <= 2, F = 1. */
  int regs = be_v16_regs(&cf->target);
  int budget = regs >= 32 ? 18 : regs * 7 / 8;
  p->step = be_bcast_by_lane(&cf->target) ? 4 : 1;
  p->R = regs >= 32 ? 8 : regs >= 8 ? (p->step == 4 ? 4 : 6) : 2;
  for (int r = 1; r <= p->R; r++) {
    int f = budget / (r + 1);
    p->F[r] = f < 1 ? 1 : f > LB_F ? LB_F : f;
  }
  if (cf->tune->linear_tile > 0)
    p->F[p->R] = cf->tune->linear_tile;
}

bool be_linear_blocks_accepts(const BeConfig *cf, const Node *n) {
  return be_linear_rows_accepts(cf, n) && cf->precision != PRECISION_BF16;
}

int64_t be_work_linear_blocks(const BeConfig *cf, const Node *n) {
  BlkPlan p;
  blk_plan(cf, n, &p);
  return p.NB;
}

int64_t be_packed_numel_linear(const BeConfig *cf, const Node *n) {
  BlkPlan p;
  blk_plan(cf, n, &p);
  return p.NB * p.K * 16;
}

/* [N][K] -> [NB][K][16]: lane l of (b, k) is W[16 b + l][k], 0 past N. */
float *be_pack_linear(const BeConfig *cf, const Node *n) {
  BlkPlan p;
  blk_plan(cf, n, &p);
  const Param *w = n->params[P_WEIGHT];
  CHECK(p.N * p.K == param_numel(w), "weight '%s' of '%s'", w->name, n->name);
  float *dst = xmalloc((size_t)(p.NB * p.K * 16) * sizeof(float));
  for (int64_t b = 0; b < p.NB; b++)
    for (int64_t l = 0; l < 16; l++) {
      int64_t j = b * 16 + l;
      for (int64_t kk = 0; kk < p.K; kk++)
        dst[(b * p.K + kk) * 16 + l] = j < p.N ? w->data[j * p.K + kk] : 0.0f;
    }
  return dst;
}

/* The tile being emitted: blocks jb .. jb + nf - 1, `rows` samples whose
   tensors start at xrow[r], the accumulator variables. */
typedef struct {
  KArgs *k;
  LLVMValueRef jb, xrow[LB_R], wb[LB_F], acc[LB_F][LB_R];
  int nf, rows;
} BlkTile;

/* Inputs k0 .. k0 + step - 1 into every accumulator, in k order. */
static void blk_steps(BeCtx *c, BlkTile *t, LLVMValueRef k0, int step) {
  LLVMValueRef x = t->k->in[0], W = t->k->par[P_WEIGHT];
  LLVMValueRef a[LB_F][LB_R], x4[LB_R];
  for (int f = 0; f < t->nf; f++)
    for (int r = 0; r < t->rows; r++)
      a[f][r] = LLVMBuildLoad2(c->b, c->t_v16, t->acc[f][r], "");
  if (step == 4)
    for (int r = 0; r < t->rows; r++) { /* the slots are only 4-byte aligned */
      x4[r] = LLVMBuildLoad2(c->b, LLVMVectorType(c->t_f32, 4),
                             be_fptr(c, x, be_add(c, t->xrow[r], k0)), "");
      LLVMSetAlignment(x4[r], 4);
    }
  for (int l = 0; l < step; l++) {
    LLVMValueRef kk = be_addk(c, k0, l), wv[LB_F];
    for (int f = 0; f < t->nf; f++)
      wv[f] = be_vld(c, W, be_add(c, t->wb[f], be_mulk(c, kk, 16)), 64);
    for (int r = 0; r < t->rows; r++) {
      LLVMValueRef xb =
          step == 4 ? be_vlane(c, x4[r], l) : be_vbcast(c, x, be_add(c, t->xrow[r], kk));
      for (int f = 0; f < t->nf; f++)
        a[f][r] = be_vfma(c, wv[f], xb, a[f][r]);
    }
  }
  for (int f = 0; f < t->nf; f++)
    for (int r = 0; r < t->rows; r++)
      LLVMBuildStore(c->b, a[f][r], t->acc[f][r]);
}

/* Bias, residual, activation and store of block f of the tile, its first
   m features (m < 16: the last block of N). */
static void blk_store(BeCtx *c, BlkTile *t, int f, int m) {
  KArgs *k = t->k;
  LLVMValueRef j = be_mulk(c, be_addk(c, t->jb, f), 16);
  LLVMValueRef bias =
      k->n->nparams > P_BIAS && k->par[P_BIAS] ? be_vld_masked(c, k->par[P_BIAS], j, m) : NULL;
  for (int r = 0; r < t->rows; r++) {
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_v16, t->acc[f][r], "");
    if (bias)
      v = LLVMBuildFAdd(c->b, v, bias, "");
    LLVMValueRef oi = be_add(c, t->xrow[r], j);
    if (k->res)
      v = LLVMBuildFAdd(c->b, v, be_vld_masked(c, k->res, oi, m), "");
    be_vst_masked(c, k->out, oi, be_act(c, &k->n->epi.act, v), m);
  }
}

/* The register tile of blocks jb .. jb + nf - 1 and samples row0 ..
   row0 + rows - 1: sums over k, then the epilogue. */
static void blk_tile(BeCtx *c, KArgs *k, const BlkPlan *p, LLVMValueRef jb, int nf,
                     LLVMValueRef row0, int rows) {
  BlkTile t = {.k = k, .jb = jb, .nf = nf, .rows = rows};
  for (int r = 0; r < rows; r++)
    t.xrow[r] = be_mul(c, be_addk(c, row0, r), k->stride);
  for (int f = 0; f < nf; f++) {
    t.wb[f] = be_mulk(c, be_addk(c, jb, f), p->K * 16);
    for (int r = 0; r < rows; r++) {
      t.acc[f][r] = be_var(c, c->t_v16, "acc");
      LLVMBuildStore(c->b, LLVMConstNull(c->t_v16), t.acc[f][r]);
    }
  }
  int64_t KS = p->K / p->step * p->step;
  BeLoop kl;
  if (KS > 0) {
    be_for(c, &kl, be_i64(c, 0), be_i64(c, KS / p->step), "k");
    blk_steps(c, &t, be_mulk(c, kl.iv, p->step), p->step);
    be_for_end(c, &kl);
  }
  if (p->K > KS) {
    be_for(c, &kl, be_i64(c, KS), be_i64(c, p->K), "krest");
    blk_steps(c, &t, kl.iv, 1);
    be_for_end(c, &kl);
  }
  int m = (int)(p->N - (p->NB - 1) * 16); /* features of the last block */
  for (int f = 0; f < nf; f++) {
    if (m == 16) {
      blk_store(c, &t, f, 16);
      continue;
    }
    BeIf last;
    be_if(c, &last, LLVMBuildICmp(c->b, LLVMIntEQ, be_addk(c, jb, f), be_i64(c, p->NB - 1), ""));
    blk_store(c, &t, f, m);
    be_else(c, &last);
    blk_store(c, &t, f, 16);
    be_endif(c, &last);
  }
}

/* Blocks [lo, hi) for the `rows` samples from row0: tiles of F[rows]
   blocks, then tiles of F/2, F/4, ..., 1 blocks for the rest. */
static void blk_rows(BeCtx *c, KArgs *k, const BlkPlan *p, LLVMValueRef row0, int rows) {
  LLVMValueRef jb = be_var(c, c->t_i64, "jb");
  LLVMBuildStore(c->b, k->lo, jb);
  for (int nf = p->F[rows]; nf >= 1; nf /= 2) {
    LLVMValueRef j0 = LLVMBuildLoad2(c->b, c->t_i64, jb, "");
    LLVMValueRef ntiles = be_sdiv(c, be_sub(c, k->hi, j0), be_i64(c, nf));
    BeLoop jl;
    be_for(c, &jl, be_i64(c, 0), ntiles, "jb");
    blk_tile(c, k, p, be_add(c, j0, be_mulk(c, jl.iv, nf)), nf, row0, rows);
    be_for_end(c, &jl);
    LLVMBuildStore(c->b, be_add(c, j0, be_mulk(c, ntiles, nf)), jb);
  }
}

/* The samples in tiles of R, then the rest (nb % R) in one tile of its
   size, each tile over the blocks [lo, hi). */
void be_emit_linear_blocks(BeCtx *c, KArgs *k) {
  BlkPlan p;
  blk_plan(c->cfg, k->n, &p);
  LLVMValueRef ntiles = be_sdiv(c, k->nb, be_i64(c, p.R));
  BeLoop tl;
  be_for(c, &tl, be_i64(c, 0), ntiles, "rows");
  blk_rows(c, k, &p, be_mulk(c, tl.iv, p.R), p.R);
  be_for_end(c, &tl);
  LLVMValueRef row0 = be_mulk(c, ntiles, p.R), rest = be_sub(c, k->nb, row0);
  for (int rows = 1; rows < p.R; rows++) {
    BeIf f;
    be_if(c, &f, LLVMBuildICmp(c->b, LLVMIntEQ, rest, be_i64(c, rows), ""));
    blk_rows(c, k, &p, row0, rows);
    be_endif(c, &f);
  }
}

/*
 * depthwise.c: depthwise convolution (groups = channels, one input and one
 * output channel per group) on the blocked layout NCHW16c.
 *
 * MobileNet's, EfficientNet's, ShuffleNet's and ConvNeXt's 3x3, 5x5 and
 * 7x7 depthwise convs, stride 1 or 2 (by default only the 3x3 stride-1
 * ones come here: elsewhere grouped.c's one-row kernel measured as fast
 * or faster; --tune depthwise=2 takes them all). Each output channel reads only its
 * own input channel, so the 16 channels of a block are the 16 lanes of a
 * vector and there is no reduction across lanes: output vector (oh, ow) of
 * block b is the sum over (kh, kw) of w[b][kh][kw] * x[b][ih][iw], one fma
 * per tap, weights packed as [b][kh][kw][16].
 *
 * Register tile: R output rows x T output pixels of one block, R*T vector
 * accumulators. The tile walks the input rows its R rows read ((R-1)*sh +
 * (KH-1)*dh + 1 rows, unrolled), and in each row the input columns its T
 * pixels read; every input vector is loaded once and fed to every (row,
 * pixel, tap) of the tile that reads it: up to R*KW fmas per load for
 * stride 1 (R rows share each input row; a row-at-a-time kernel loads each
 * input vector KH times per output row). The KH*KW weight vectors are
 * loaded once per work item (LLVM keeps them in registers or folds them
 * into the fmas as memory operands). The epilogue (bias, residual add, any
 * activation) runs on the accumulators before the one store.
 *
 * Borders: along a row, interior tiles (every tap inside the input) run in
 * a loop and the edge tiles have constant positions, their taps in the
 * padding not emitted (tiles.c). Along the height, the row groups whose
 * input rows all lie inside the input are emitted without checks; the
 * others (the first and last one or two) load a clamped row and select
 * zero for the rows in the padding. A last row group with fewer than R
 * rows has its own code.
 *
 * The depthwise convs are memory bound (9 fmas per 64-byte vector in and
 * out, for a 3x3 stride-1 conv): CNN_PROFILE prints their GB/s, and
 * docs/performance.md compares them with the bandwidth bench/ measures.
 *
 * Work item: (block) x (row group), item = b * NRG + rg.
 */
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"

#define DW_MAX_ACC 32
#define DW_MAX_TAPS 64

bool be_conv_depthwise_accepts(const BeConfig *cf, const Node *n) {
  if (!cf->tune->depthwise || n->op != OP_CONV2D || n->layout != LAYOUT_NCHW16C || n->split)
    return false;
  int64_t c = n->shape.d[0];
  /* depthwise=1: 3x3 stride 1, where the row tiles measured 8% faster
     than grouped.c's one-row kernel; stride 2 measured equal or slower,
     5x5 and 7x7 slower (their 25-49 weight vectors do not fit beside the
     accumulators): docs/performance.md. depthwise=2: every depthwise conv. */
  const Attrs *a = &n->attr;
  int64_t taps = a->kernel[0] * a->kernel[1];
  bool chosen = cf->tune->depthwise >= 2 ? taps <= DW_MAX_TAPS
                                         : taps <= 9 && a->stride[0] == 1 && a->stride[1] == 1;
  return a->groups == c && n->in[0]->shape.d[0] == c && c % 16 == 0 &&
         n->in[0]->layout == LAYOUT_NCHW16C && chosen;
}

typedef struct {
  int64_t IH, IW, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw, NB;
  int R, T;         /* register tile: rows x pixels */
  int64_t NRG;      /* row groups */
  int64_t RL;       /* rows of the last row group (<= R) */
  int64_t rgA, rgB; /* row groups whose input rows are all inside: [rgA, rgB] */
} DPlan;

static void dplan(const BeConfig *cf, const Node *n, DPlan *p) {
  const Attrs *a = &n->attr;
  const Shape *is = &n->in[0]->shape;
  memset(p, 0, sizeof *p);
  p->IH = is->d[1], p->IW = is->d[2];
  p->OH = n->shape.d[1], p->OW = n->shape.d[2];
  p->KH = a->kernel[0], p->KW = a->kernel[1];
  p->sh = a->stride[0], p->sw = a->stride[1];
  p->pt = a->pad[0], p->pl = a->pad[1];
  p->dh = a->dilation[0], p->dw = a->dilation[1];
  p->NB = n->shape.d[0] / 16;
  /* Accumulators within the 32 zmm registers besides the weights and an
     input vector or two (the weights of a 3x3 fit beside 20 accumulators;
     larger kernels' weights come from L1 as fma memory operands). With
     16-register AVX2 a vector takes two registers: one row of 4 pixels. */
  int budget = cf->target.avx512 ? (p->KH * p->KW <= 9 ? 20 : 24) : 4;
  /* 3 rows of 6 pixels for a 3x3 (18 accumulators, 9 weights): measured
     the fastest of 1-4 rows on MobileNetV2's and EfficientNet's shapes. */
  int R = cf->tune->depthwise_rows > 0 ? cf->tune->depthwise_rows : p->KH * p->KW <= 9 ? 3 : 1;
  if (!cf->target.avx512 && cf->tune->depthwise_rows <= 0)
    R = 1;
  if (R > p->OH)
    R = (int)p->OH;
  int Tmax = cf->tune->depthwise_tile > 0 ? cf->tune->depthwise_tile : budget / R;
  if (Tmax < 1)
    Tmax = 1;
  if (R * Tmax > DW_MAX_ACC)
    Tmax = DW_MAX_ACC / R;
  p->R = R;
  p->T = (int)be_cdiv(p->OW, be_cdiv(p->OW, Tmax)); /* balanced tiles */
  p->NRG = be_cdiv(p->OH, R);
  p->RL = p->OH - (p->NRG - 1) * R;
  /* Interior row groups: rows oh0 .. oh0+R-1 read input rows
     oh0*sh - pt .. (oh0+R-1)*sh - pt + (KH-1)*dh. */
  p->rgA = p->NRG, p->rgB = -1;
  for (int64_t rg = 0; rg < p->NRG; rg++) {
    int64_t rows = rg == p->NRG - 1 ? p->RL : R;
    int64_t lo = rg * R * p->sh - p->pt,
            hi = (rg * R + rows - 1) * p->sh - p->pt + (p->KH - 1) * p->dh;
    if (lo >= 0 && hi < p->IH) {
      if (rg < p->rgA)
        p->rgA = rg;
      p->rgB = rg;
    }
  }
}

int64_t be_work_conv_depthwise(const BeConfig *cf, const Node *n) {
  DPlan p;
  dplan(cf, n, &p);
  return p.NB * p.NRG;
}

/* One row group being emitted. */
typedef struct {
  DPlan *p;
  KArgs *k;
  int rows;             /* rows of this variant (R, or RL for the last group) */
  bool checked;         /* input rows may lie in the padding */
  LLVMValueRef ob, oh0; /* block, first output row */
  LLVMValueRef xblk;    /* input index of block ob's plane */
  LLVMValueRef bias;
  LLVMValueRef wb; /* weight index of block ob */
  LLVMValueRef wv[DW_MAX_TAPS];
  bool wvolatile, xvolatile;
} DRows;

static bool col_ok(const DPlan *p, int64_t ow, int64_t kw) {
  int64_t iw = ow * p->sw - p->pl + kw * p->dw;
  return iw >= 0 && iw < p->IW;
}

/* Tap t's weight vector: a volatile load at its use, which x86 folds into
   the fma as a memory operand (plain loads would be hoisted and merged by
   LLVM and kept in registers, spilling the accumulators). */
static LLVMValueRef weight(BeCtx *c, DRows *r, int64_t t) {
  if (!r->wvolatile)
    return r->wv[t];
  LLVMValueRef w = be_wvld(c, r->k, r->k->par[P_WEIGHT], be_addk(c, r->wb, t * 16), 64);
  LLVMSetVolatile(w, 1);
  return w;
}

/* The input vectors of input row j of the tile (ih = oh0*sh - pt + j) and
   their fmas into acc. */
static void tile_row(BeCtx *c, DRows *r, LLVMValueRef ow0, int64_t ow0c, int w, int64_t j,
                     LLVMValueRef acc[][DW_MAX_ACC]) {
  DPlan *p = r->p;
  KArgs *k = r->k;
  /* which (row, kh) pairs read this input row */
  int rr[DW_MAX_ACC], khs[DW_MAX_ACC], npair = 0;
  for (int q = 0; q < r->rows; q++) {
    int64_t d = j - q * p->sh;
    if (d >= 0 && d % p->dh == 0 && d / p->dh < p->KH)
      rr[npair] = q, khs[npair++] = (int)(d / p->dh);
  }
  if (!npair)
    return;
  LLVMValueRef ih = be_addk(c, be_mulk(c, r->oh0, p->sh), j - p->pt), valid = NULL;
  if (r->checked) {
    LLVMValueRef ge = LLVMBuildICmp(c->b, LLVMIntSGE, ih, be_i64(c, 0), "");
    LLVMValueRef lt = LLVMBuildICmp(c->b, LLVMIntSLT, ih, be_i64(c, p->IH), "");
    valid = LLVMBuildAnd(c->b, ge, lt, "");
    ih = be_smin(c, be_smax(c, ih, be_i64(c, 0)), be_i64(c, p->IH - 1));
  }
  LLVMValueRef col0 = be_addk(c, be_mulk(c, ow0, p->sw), -p->pl);
  LLVMValueRef xrow = be_add(c, r->xblk, be_mulk(c, be_add(c, be_mulk(c, ih, p->IW), col0), 16));
  int64_t nrel = (int64_t)(w - 1) * p->sw + (p->KW - 1) * p->dw + 1;
  for (int64_t rel = 0; rel < nrel; rel++) {
    LLVMValueRef x = NULL;
    for (int64_t kw = 0; kw < p->KW; kw++) {
      int64_t d = rel - kw * p->dw;
      if (d < 0 || d % p->sw)
        continue;
      int64_t q = d / p->sw;
      if (q >= w || (ow0c >= 0 && !col_ok(p, ow0c + q, kw)))
        continue;
      if (!x) {
        x = be_vld(c, k->in[0], be_addk(c, xrow, rel * 16), 64);
        if (r->xvolatile)
          LLVMSetVolatile(x, 1);
        if (valid)
          x = LLVMBuildSelect(c->b, valid, x, LLVMConstNull(c->t_v16), "");
      }
      for (int i = 0; i < npair; i++)
        acc[rr[i]][q] = be_vfma(c, weight(c, r, khs[i] * p->KW + kw), x, acc[rr[i]][q]);
    }
  }
}

static void emit_dtile(BeCtx *c, void *ctx, LLVMValueRef ow0, int64_t ow0c, int w) {
  DRows *r = ctx;
  DPlan *p = r->p;
  KArgs *k = r->k;
  LLVMValueRef acc[DW_MAX_ACC][DW_MAX_ACC];
  for (int q = 0; q < r->rows; q++)
    for (int t = 0; t < w; t++)
      acc[q][t] = r->bias;
  int64_t nj = (int64_t)(r->rows - 1) * p->sh + (p->KH - 1) * p->dh + 1;
  for (int64_t j = 0; j < nj; j++)
    tile_row(c, r, ow0, ow0c, w, j, acc);
  LLVMValueRef blk = be_mulk(c, r->ob, p->OH * p->OW);
  for (int q = 0; q < r->rows; q++) {
    LLVMValueRef pix = be_add(c, be_mulk(c, be_addk(c, r->oh0, q), p->OW), ow0);
    LLVMValueRef base = be_mulk(c, be_add(c, blk, pix), 16);
    for (int t = 0; t < w; t++) {
      LLVMValueRef v = acc[q][t], idx = be_addk(c, base, t * 16);
      if (k->res)
        v = be_fadd(c, v, be_vld(c, k->res, idx, 64));
      v = be_act(c, &k->n->epi.act, v);
      be_vst(c, k->out, idx, v, 64);
    }
  }
}

static void emit_rows(BeCtx *c, DRows *r, int rows, bool checked) {
  DPlan *p = r->p;
  r->rows = rows, r->checked = checked;
  int64_t owA, owB;
  be_interior_cols(p->IW, p->KW, p->sw, p->pl, p->dw, &owA, &owB);
  be_emit_row_tiles(c, p->OW, p->T, owA, owB, emit_dtile, r);
}

/* rg in [lo, hi] as an i1. */
static LLVMValueRef in_range(BeCtx *c, LLVMValueRef rg, int64_t lo, int64_t hi) {
  LLVMValueRef a = LLVMBuildICmp(c->b, LLVMIntSGE, rg, be_i64(c, lo), "");
  LLVMValueRef b = LLVMBuildICmp(c->b, LLVMIntSLE, rg, be_i64(c, hi), "");
  return LLVMBuildAnd(c->b, a, b, "");
}

/* The full-height row groups: unchecked inside [rgA, rgB], checked elsewhere. */
static void emit_full_groups(BeCtx *c, DRows *r, LLVMValueRef rg) {
  DPlan *p = r->p;
  int64_t last_full = p->RL == p->R ? p->NRG - 1 : p->NRG - 2;
  int64_t a = p->rgA, b = p->rgB < last_full ? p->rgB : last_full;
  if (a > b) {
    emit_rows(c, r, p->R, true);
    return;
  }
  BeIf f;
  be_if(c, &f, in_range(c, rg, a, b));
  emit_rows(c, r, p->R, false);
  if (a > 0 || b < last_full) {
    be_else(c, &f);
    emit_rows(c, r, p->R, true);
  }
  be_endif(c, &f);
}

void be_emit_conv_depthwise(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  DPlan P;
  dplan(c->cfg, n, &P);
  DPlan *p = &P;
  DRows r = {.p = p, .k = k};
  LLVMValueRef W = k->par[P_WEIGHT], bias = n->nparams > P_BIAS ? k->par[P_BIAS] : NULL;
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "item");
  r.ob = be_sdiv(c, it.iv, be_i64(c, p->NRG));
  LLVMValueRef rg = be_sub(c, it.iv, be_mulk(c, r.ob, p->NRG));
  r.oh0 = be_mulk(c, rg, p->R);
  r.xblk = be_mulk(c, r.ob, p->IH * p->IW * 16);
  r.bias = bias ? be_vld(c, bias, be_mulk(c, r.ob, 16), 64) : LLVMConstNull(c->t_v16);
  r.wb = be_mulk(c, r.ob, p->KH * p->KW * 16);
  r.wvolatile = c->cfg->tune->depthwise_mode & 1;
  r.xvolatile = c->cfg->tune->depthwise_mode & 2;
  if (!r.wvolatile)
    for (int64_t t = 0; t < p->KH * p->KW; t++)
      r.wv[t] = be_wvld(c, k, W, be_addk(c, r.wb, t * 16), 64);
  if (p->RL != p->R) {
    BeIf last;
    be_if(c, &last, LLVMBuildICmp(c->b, LLVMIntEQ, rg, be_i64(c, p->NRG - 1), ""));
    bool inside = p->NRG - 1 >= p->rgA && p->NRG - 1 <= p->rgB;
    emit_rows(c, &r, (int)p->RL, !inside);
    be_else(c, &last);
    emit_full_groups(c, &r, rg);
    be_endif(c, &last);
  } else {
    emit_full_groups(c, &r, rg);
  }
  be_for_end(c, &it);
}

/* [b][kh][kw][16]: lane l of (kh, kw) is channel b*16+l's tap. */
float *be_pack_conv_depthwise(const BeConfig *cf, const Node *n) {
  const Param *w = n->params[P_WEIGHT];
  int64_t C = n->shape.d[0], KH = n->attr.kernel[0], KW = n->attr.kernel[1];
  CHECK(C * KH * KW == param_numel(w), "weight '%s' of '%s'", w->name, n->name);
  float *dst = xmalloc((size_t)(C * KH * KW) * sizeof(float));
  for (int64_t b = 0; b < C / 16; b++)
    for (int64_t t = 0; t < KH * KW; t++)
      for (int64_t l = 0; l < 16; l++)
        dst[(b * KH * KW + t) * 16 + l] = w->data[(b * 16 + l) * KH * KW + t];
  return dst;
}

/*
 * grouped.c: grouped and depthwise convolution on the blocked layout NCHW16c
 * when a group has fewer than 16 channels (ResNeXt's 32 groups of 4 and 8
 * channels, depthwise convs).
 *
 * Applies when every group has as many input as output channels, Cg, and Cg
 * divides 16 (1, 2, 4, 8); then output block ob (channels ob*16 .. +15)
 * holds 16/Cg whole groups whose input channels are exactly input block ob,
 * lane for lane. passes/layout.c blocks such a conv (and gives it a blocked
 * input); ir_conv_small_groups (ir/graph.c) is the rule both sides use.
 *
 * Arithmetic. Output lane l (group l/Cg, channel m = l%Cg within the group)
 * sums over the Cg input channels of its group; written as Cg "rotations"
 * r = 0..Cg-1, lane l takes input lane rot_r(l) = (l/Cg)*Cg + (m+r)%Cg of
 * the same pixel's input vector, times the packed weight
 *   wp[ob][kh][kw][r][l] = W[ob*16+l][(m+r)%Cg][kh][kw].
 * Rotation 0 is the identity (the depthwise conv has only it); the others
 * are constant shufflevector masks (an in-lane vpermilps for Cg <= 4, a
 * vpermps for Cg = 8).
 *
 * Register tile: T output pixels of one output row of one block, T vector
 * accumulators. For every valid kh (a loop, range from a constant table as
 * in blocked.c), every rotation r (unrolled) loads the KW weight vectors of
 * (kh, r) and walks the input columns the tile touches: each input vector
 * is loaded and rotated once and fed to every (pixel, kw) that reads it
 * (KW/stride fmas per shuffle). Borders as in blocked.c: interior tiles are
 * a loop without checks; the tiles at the row ends have constant positions
 * and the taps in the padding are not emitted. The epilogue (bias, residual
 * add, ReLU) runs on the accumulators before the one store; a split output
 * (slices on block boundaries) is written segment by segment.
 *
 * Volatile input loads: the same input vector is read once per rotation;
 * plain loads would be merged by GVN and all T+2 input vectors of a tile
 * kept live across the rotations next to the T accumulators, which spills
 * (190 GFLOP/s at stage 1 of ResNeXt-50). Marked volatile, every load
 * stays where it is emitted (still folded into the vpermps/fma as a memory
 * operand) and the tile runs without spills (224 GFLOP/s).
 *
 * Work item: (output block) x (output row), item = ob * OH + oh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"

bool be_conv_grouped_accepts(const BeConfig *cf, const Node *n) {
  return n->layout == LAYOUT_NCHW16C && ir_conv_small_groups(n, 16);
}

typedef struct {
  int64_t C, IH, IW, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw, Cg, NB;
  int T;
} GPlan;

static void gplan(const BeConfig *cf, const Node *n, GPlan *p) {
  bool avx512 = cf->target.avx512;
  const Attrs *a = &n->attr;
  const Shape *is = &n->in[0]->shape;
  memset(p, 0, sizeof *p);
  p->C = n->shape.d[0], p->IH = is->d[1], p->IW = is->d[2];
  p->OH = n->shape.d[1], p->OW = n->shape.d[2];
  p->KH = a->kernel[0], p->KW = a->kernel[1];
  p->sh = a->stride[0], p->sw = a->stride[1];
  p->pt = a->pad[0], p->pl = a->pad[1];
  p->dh = a->dilation[0], p->dw = a->dilation[1];
  p->Cg = p->C / a->groups;
  p->NB = p->C / 16;
  /* T accumulators + KW weights + a rotated input + a shuffle index.
     Measured on znver5 (ResNeXt-50): stride 1 rows of 56 and 28 run best
     in tiles of 19 and 14 (T = 24: 224 GFLOP/s; 10: 210, 7: 190, 28: 200);
     a stride-2 row of 28 in tiles of 7 (125 GFLOP/s; 14: 110). */
  int64_t Tmax = (p->sw > 1 ? 8 : 24) - (p->KW > 3 ? p->KW - 3 : 0);
  if (Tmax < 4)
    Tmax = 4;
  if (!avx512) /* 16 ymm registers, two per 16-float vector (NEON: 32 q,
                  four); SSE (16 xmm, four): 2 pixels */
    Tmax = be_v16_regs(&cf->target) >= 8 ? 4 : 2;
  if (cf->tune->grouped_tile > 0)
    Tmax = cf->tune->grouped_tile; /* at most 64: GRow.acc */
  p->T = (int)be_cdiv(p->OW, be_cdiv(p->OW, Tmax));
}

int64_t be_work_conv_grouped(const BeConfig *cf, const Node *n) {
  GPlan p;
  gplan(cf, n, &p);
  return p.NB * p.OH;
}

typedef struct {
  GPlan *p;
  KArgs *k;
  LLVMValueRef oh, kh0, kh1;
  LLVMValueRef xblk;              /* input index of block ob's first element */
  LLVMValueRef wob;               /* weight index of block ob */
  LLVMValueRef obase, oblk, rblk; /* output pointer, block in it, residual block */
  LLVMValueRef bias;
  LLVMValueRef mask[16]; /* rotation r's shuffle mask (NULL: identity) */
  LLVMValueRef acc[64];
} GRow;

static bool gcol_valid(const GPlan *p, int64_t ow, int64_t kw) {
  int64_t iw = ow * p->sw - p->pl + kw * p->dw;
  return iw >= 0 && iw < p->IW;
}

/* One tile of w pixels from ow0 (ow0c >= 0: a constant, taps in the
   padding skipped). */
static void emit_gtile(BeCtx *c, GRow *r, LLVMValueRef ow0, int64_t ow0c, int w) {
  GPlan *p = r->p;
  KArgs *k = r->k;
  LLVMValueRef x = k->in[0], W = k->par[P_WEIGHT];
  for (int q = 0; q < w; q++)
    LLVMBuildStore(c->b, r->bias, r->acc[q]);

  BeLoop kh;
  be_for(c, &kh, r->kh0, r->kh1, "kh");
  LLVMValueRef ih =
      be_add(c, be_addk(c, be_mulk(c, r->oh, p->sh), -p->pt), be_mulk(c, kh.iv, p->dh));
  LLVMValueRef colbase = be_addk(c, be_mulk(c, ow0, p->sw), -p->pl);
  LLVMValueRef xcol =
      be_add(c, be_add(c, r->xblk, be_mulk(c, ih, p->IW * 16)), be_mulk(c, colbase, 16));
  LLVMValueRef wkh = be_add(c, r->wob, be_mulk(c, kh.iv, p->KW * p->Cg * 16));
  LLVMValueRef accv[64];
  for (int q = 0; q < w; q++)
    accv[q] = LLVMBuildLoad2(c->b, c->t_v16, r->acc[q], "");
  int64_t nrel = (int64_t)(w - 1) * p->sw + (p->KW - 1) * p->dw + 1;
  LLVMValueRef *wv = malloc(sizeof *wv * (size_t)p->KW);
  for (int64_t rot = 0; rot < p->Cg; rot++) {
    memset(wv, 0, sizeof *wv * (size_t)p->KW);
    for (int64_t rel = 0; rel < nrel; rel++) {
      LLVMValueRef pv = NULL;
      for (int64_t kw = 0; kw < p->KW; kw++) {
        int64_t d = rel - kw * p->dw;
        if (d < 0 || d % p->sw)
          continue;
        int64_t q = d / p->sw;
        if (q >= w || (ow0c >= 0 && !gcol_valid(p, ow0c + q, kw)))
          continue;
        if (!pv) {
          pv = be_vld(c, x, be_addk(c, xcol, rel * 16), 64);
          LLVMSetVolatile(pv, 1); /* see "Volatile input loads" above */
          if (r->mask[rot])
            pv = LLVMBuildShuffleVector(c->b, pv, LLVMGetPoison(c->t_v16), r->mask[rot], "");
        }
        if (!wv[kw])
          wv[kw] = be_vld(c, W, be_addk(c, wkh, (kw * p->Cg + rot) * 16), 64);
        accv[q] = be_vfma(c, wv[kw], pv, accv[q]);
      }
    }
  }
  free(wv);
  for (int q = 0; q < w; q++)
    LLVMBuildStore(c->b, accv[q], r->acc[q]);
  be_for_end(c, &kh);

  LLVMValueRef pix0 = be_add(c, be_mulk(c, r->oh, p->OW), ow0);
  LLVMValueRef obase = be_mulk(c, be_add(c, be_mulk(c, r->oblk, p->OH * p->OW), pix0), 16);
  LLVMValueRef rbase = NULL;
  if (k->res)
    rbase = be_mulk(c, be_add(c, be_mulk(c, r->rblk, p->OH * p->OW), pix0), 16);
  for (int q = 0; q < w; q++) {
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_v16, r->acc[q], "");
    if (k->res)
      v = be_fadd(c, v, be_vld(c, k->res, be_addk(c, rbase, q * 16), 64));
    v = be_act(c, &k->n->epi.act, v);
    be_vst(c, r->obase, be_addk(c, obase, q * 16), v, 64);
  }
}

static void gtile_cb(BeCtx *c, void *r, LLVMValueRef ow0, int64_t ow0c, int w) {
  emit_gtile(c, r, ow0, ow0c, w);
}

/* A row: constant edge tiles, a loop of unchecked interior tiles. */
static void emit_grow(BeCtx *c, GRow *r) {
  GPlan *p = r->p;
  int64_t owA, owB;
  be_interior_cols(p->IW, p->KW, p->sw, p->pl, p->dw, &owA, &owB);
  be_emit_row_tiles(c, p->OW, p->T, owA, owB, gtile_cb, r);
}

void be_emit_conv_grouped(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  GPlan P;
  gplan(c->cfg, n, &P);
  GPlan *p = &P;
  GRow r = {.p = p, .k = k};
  for (int q = 0; q < p->T; q++)
    r.acc[q] = be_var(c, c->t_v16, "acc");
  for (int64_t rot = 0; rot < p->Cg; rot++) {
    if (rot == 0) {
      r.mask[rot] = NULL;
      continue;
    }
    LLVMValueRef m[16];
    for (int l = 0; l < 16; l++)
      m[l] = be_i32(c, (int32_t)((l / p->Cg) * p->Cg + (l % p->Cg + rot) % p->Cg));
    r.mask[rot] = LLVMConstVector(m, 16);
  }

  LLVMValueRef tkh0, tkh1;
  be_kh_tables(c, "convg", p->IH, p->OH, p->KH, p->sh, p->pt, p->dh, &tkh0, &tkh1);

  LLVMValueRef bias = n->nparams > P_BIAS ? k->par[P_BIAS] : NULL;
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "item");
  LLVMValueRef ob = be_sdiv(c, it.iv, be_i64(c, p->OH));
  r.oh = be_sub(c, it.iv, be_mulk(c, ob, p->OH));
  r.kh0 = be_ld_i64(c, tkh0, r.oh);
  r.kh1 = be_ld_i64(c, tkh1, r.oh);
  r.xblk = be_mulk(c, ob, p->IH * p->IW * 16);
  r.wob = be_mulk(c, ob, p->KH * p->KW * p->Cg * 16);
  r.bias = bias ? be_vld(c, bias, be_mulk(c, ob, 16), 64) : LLVMConstNull(c->t_v16);
  r.rblk = ob;
  be_split_out(c, k, ob, 16, &r.obase, &r.oblk);
  emit_grow(c, &r);
  be_for_end(c, &it);
}

/* [ob][kh][kw][rot][16]: lane l of rotation rot is input channel
   (l%Cg + rot)%Cg of output channel ob*16+l's group. */
float *be_pack_conv_grouped(const BeConfig *cf, const Node *n) {
  const Param *w = n->params[P_WEIGHT];
  int64_t OC = n->shape.d[0], Cg = OC / n->attr.groups;
  int64_t KH = n->attr.kernel[0], KW = n->attr.kernel[1];
  int64_t total = OC * Cg * KH * KW;
  CHECK(total == param_numel(w), "weight '%s' of '%s'", w->name, n->name);
  float *dst = xmalloc((size_t)total * sizeof(float));
  const float *src = w->data;
  for (int64_t ob = 0; ob < OC / 16; ob++)
    for (int64_t kh = 0; kh < KH; kh++)
      for (int64_t kw = 0; kw < KW; kw++)
        for (int64_t rot = 0; rot < Cg; rot++)
          for (int64_t l = 0; l < 16; l++) {
            int64_t oc = ob * 16 + l, j = (l % Cg + rot) % Cg;
            int64_t d = (((ob * KH + kh) * KW + kw) * Cg + rot) * 16 + l;
            dst[d] = src[((oc * Cg + j) * KH + kh) * KW + kw];
          }
  return dst;
}

/*
 * blocked.c: kernels on the channel-blocked layout NCHW16c.
 *
 * A blocked tensor [C][H][W] is stored as [C/16][H][W][16]: the 16 channels
 * of one pixel are one <16 x float> vector (passes/layout.c only blocks
 * tensors whose channel count is a multiple of 16, so there is no padding).
 *
 * Convolution (the time of a CNN) is a direct convolution with a register
 * tile of OCB output-channel blocks x T output pixels of one row: OCB*T
 * vector accumulators. Weights are packed at compile time, as the blob is
 * written (be_pack_conv_blocked), as [oc/16][ic/BI][kh][kw][BI][16 oc],
 * BI = 16 for a blocked input and 1 for an NCHW one (the first layer reads
 * the image directly). For every
 * input-channel block, kh, kw (unrolled) and input channel of the block
 * (unrolled), the tile loads OCB weight vectors and, per pixel, broadcasts
 * one input float into OCB fmas. The epilogue (bias, residual, ReLU) runs on
 * the accumulators before the one store.
 *
 * Borders: along a row, pixels whose taps are all inside the input are
 * computed by a loop of full tiles without any check; the few tiles at the
 * left and right edges have constant positions, so the taps that fall into
 * the padding are simply not emitted. Along the height, the valid kh range
 * of each output row comes from a constant table.
 *
 * A 1x1 stride-1 unpadded conv (a GEMM) sees its H*W pixels as one long
 * row, cut into rows of up to 8 tiles so that both threads get work.
 *
 * Groups: a tile stays in one group when each group's channels are whole
 * blocks. Groups of any other size (RegNetX's 24; ir_conv_window_groups)
 * take one block per tile: output block ob reads the input blocks its
 * groups' input channels span, a window of whole blocks (a block of
 * outputs from groups g0..g1 reads input channels g0*ICg .. (g1+1)*ICg,
 * rounded out to blocks), with zero weights where an input channel is not
 * in the output channel's group. The packing keeps each block's window
 * contiguous, so the tile's loop is the ungrouped one over fewer blocks;
 * the windows' starts, sizes and weight offsets are constant tables. A
 * zero weight is not enough where the input is infinite (0 * inf = NaN,
 * which PyTorch never computes: the difftest campaign's seed 7068), so
 * each input channel's fmas are masked to the output lanes of its group
 * (a select the target folds into a masked fma; the masks are a table).
 * For 24-channel groups a block's window is 2 or 3 blocks: 1.3-2x the
 * multiply-adds of the group itself, on the fast kernel.
 *
 * Work items (the runtime splits them in contiguous chunks):
 *   conv2d            (oc group of OCB blocks) x (output row), or
 *                     (row) x (oc group) where that reads less (conv_plan)
 *   pooling           (channel block) x (output row)
 *   layernorm         output row (all channels)
 *   affine, concat,   channel block
 *   mul by channel,
 *   channel_shuffle
 *   reorder           channel block
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"

/* act(v + res[idx]) on a vector (idx a float index, 64-byte aligned). */
static LLVMValueRef vepi(BeCtx *c, KArgs *k, LLVMValueRef v, LLVMValueRef idx) {
  if (k->res)
    v = be_fadd(c, v, be_vld(c, k->res, idx, 64));
  return be_act(c, &k->n->epi.act, v);
}

/* ------------------------------------------------------------- conv plan */

typedef struct {
  int64_t IC, IH, IW, OC, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw, G, ICg, OCg;
  int BI;            /* 16: blocked input; 1: NCHW input */
  bool pw;           /* pointwise: pixels flattened into rows of R */
  int64_t NB;        /* output blocks */
  int OCB, T;        /* register tile: blocks x pixels */
  int64_t NG;        /* tile groups of OCB blocks */
  int64_t R, RL, NR; /* row length, last row's length, rows */
  int64_t RH;        /* output rows per (virtual) row: > 1 for a small strided 1x1 conv */
  bool rowmajor;     /* work items row-major (row, group) instead of (group, row) */
  int64_t prefetch;  /* weight prefetch distance in floats, 0: none */
  bool win;          /* window groups (ir_conv_window_groups): OCB 1 */
} ConvPlan;

/* Window groups: the input blocks output block ob reads, [*lo, *lo + *n). */
static void conv_window(const ConvPlan *p, int64_t ob, int64_t *lo, int64_t *n) {
  int64_t g0 = ob * 16 / p->OCg, g1 = (ob * 16 + 15) / p->OCg;
  *lo = g0 * p->ICg / 16;
  *n = ((g1 + 1) * p->ICg + 15) / 16 - *lo;
}

/* Window groups: whether input channel ic is in output channel oc's group
   (else its weight is 0 and its fma masked off). */
static bool same_group(const ConvPlan *p, int64_t oc, int64_t ic) {
  return oc / p->OCg == ic / p->ICg;
}

/* The register tile: output blocks per tile (p->OCB) and the most pixels
   (returned), from the register budget and the --tune conv.ocb / conv.tile
   values. */
static int conv_register_tile(const BeConfig *cf, ConvPlan *p, bool one) {
  bool avx512 = cf->target.avx512;
  int64_t gb = p->OCg / 16; /* blocks per group: a tile stays in one group */
  /* Register budget: OCB*T accumulators + OCB weights (the broadcast is a
     memory operand of the fma) within 32 zmm; with 16-register AVX2 a
     16-float vector takes two ymm registers: one block of 6 pixels (12
     ymm accumulators). Other targets by their budget of 16-float values
     (be_v16_regs):
       SSE (4 of them in 16 xmm): 2 pixels, 8 xmm accumulators + 4 weights
         + the broadcast + the product (no FMA: mulps then addps); 3 pixels
         spill accumulators in the inner loop;
       NEON (8 in 32 q registers), broadcasts by lane: 5 pixels, 20
         accumulators + 5 inputs of 4 channels + 4 weights (6 would need
         34); an NCHW input (the first layer) broadcasts each input from a
         scalar load, also one register per pixel: 5 pixels too (a 7x7
         stride-2 first layer's inner loop: 10 stack accesses per 124
         fmla at 5, 49 per 152 at 6). */
  static const int ocbs[] = {2, 3, 4, 1};
  static const int tmax512[] = {12, 8, 6, 24};
  int tune_t = cf->tune->conv_tile, tune_ocb = cf->tune->conv_ocb;
  int Tmax = 6;
retry:
  for (int i = 0; i < 4; i++) {
    int ocb = ocbs[i];
    if ((!avx512 || p->win) && ocb > 1)
      continue;
    if (tune_ocb && ocb != tune_ocb)
      continue;
    if (p->NB % ocb || (!p->win && gb % ocb))
      continue;
    p->OCB = ocb;
    Tmax = avx512 ? tmax512[i] : be_v16_regs(&cf->target) >= 8 ? 6 : 2;
    if (be_bcast_by_lane(&cf->target))
      Tmax = 5;
    /* A GEMM (1x1 stride 1) streams its weights once per tile: 14 pixels
       (28 accumulators + 2 weights of 32 zmm) load fewer weight bytes per
       fma than 12. Measured (ResNet-50, one thread, fastest of 40): the 7x7
       1x1 convs of the last stage 175-194 -> 194-213 GFLOP/s, the 56x56
       ones ~205 -> ~220; not for the other convs (the 3-channel first
       layer loses: 150 -> 120). */
    if (avx512 && ocb == 2 && one)
      Tmax = 14;
    break;
  }
  if (!p->OCB) { /* conv.ocb does not divide this layer's blocks */
    tune_ocb = 0;
    goto retry;
  }
  if (tune_t > 0)
    Tmax = tune_t < 32 ? tune_t : 32; /* RowCtx.acc holds 32 per block */
  return Tmax;
}

/* The order of the work items (p->rowmajor). */
static void conv_order(const BeConfig *cf, ConvPlan *p, bool one) {
  /* Group-major (a group's rows in a row) reads the group's input once per
     group, its weights once; row-major (a row's groups in a row) reads the
     input once, the weights once per row.
     Take the cheaper: the input-heavy 1x1 convs (ResNet's 256->64 at
     56x56: 6.5 MB against 5 MB) go row-major, the weight-heavy 3x3 convs
     stay group-major. Row-major also gives each thread its own rows,
     which the next layer's items of the same rows then find in its cache.
     Measured (ResNet-50, all 1x1 stride-1 convs row-major): sum of the
     per-layer fastest times 21.4-23.2 -> 20.6 ms with 2 threads, 34.8-37.9
     -> 32.7-33.5 ms with one. The strided 1x1 convs (ResNet's
     downsample, 256->512 from 56x56: a 3.2 MB input read by 16 groups)
     too: 2.06 -> 1.41 ms on that one, one thread; there a tensor of at
     most 1 MB (L2) counts once however often it is read, which keeps the
     last stage's (1024->2048 from 14x14: 8 MB of weights, a 0.8 MB
     input) group-major. --tune conv.order: 0 group-major, 1 row-major,
     2 (default) the cheaper for unpadded 1x1 convs, 3 the cheaper for
     every conv. */
  int order = cf->tune->conv_order;
  double in_g = (double)p->ICg * p->IH * p->IW * 4, in_all = (double)p->IC * p->IH * p->IW * 4;
  double w_all = (double)p->OC * p->ICg * p->KH * p->KW * 4;
  double nr = p->NR, ng = p->NG;
  if (one && !p->pw) { /* re-reads of what stays in L2 are cheap */
    nr = w_all <= 1 << 20 ? 1 : nr;
    ng = in_g <= 1 << 20 ? 1 : ng;
  }
  bool cheaper = in_all + nr * w_all < ng * in_g + w_all;
  p->rowmajor = p->NR > 1 && p->NG > 1 &&
                (order == 1 || (order == 2 && one && cheaper) || (order == 3 && cheaper));
}

static void conv_plan(const BeConfig *cf, const Node *n, ConvPlan *p) {
  const Attrs *a = &n->attr;
  const Shape *is = &n->in[0]->shape;
  memset(p, 0, sizeof *p);
  p->IC = is->d[0], p->IH = is->d[1], p->IW = is->d[2];
  p->OC = n->shape.d[0], p->OH = n->shape.d[1], p->OW = n->shape.d[2];
  p->KH = a->kernel[0], p->KW = a->kernel[1];
  p->sh = a->stride[0], p->sw = a->stride[1];
  p->pt = a->pad[0], p->pl = a->pad[1];
  p->dh = a->dilation[0], p->dw = a->dilation[1];
  p->G = a->groups, p->ICg = p->IC / p->G, p->OCg = p->OC / p->G;
  p->BI = n->in[0]->layout == LAYOUT_NCHW16C ? 16 : 1;
  p->win = ir_conv_window_groups(n, 16);
  bool one = p->KH == 1 && p->KW == 1 && !a->pad[0] && !a->pad[1] && !a->pad[2] && !a->pad[3];
  p->pw = one && p->sh == 1 && p->sw == 1;
  p->RH = 1;
  p->NB = p->OC / 16;
  int Tmax = conv_register_tile(cf, p, one);
  p->NG = p->NB / p->OCB;
  /* Weights stream once per tile group (a late-stage layer's 9 MB come
     from memory): prefetch 4 KB ahead of the weight loads. Measured,
     one thread, A/B in one session: GoogLeNet 12.8 -> 11.4 ms (fastest of
     30), ResNet-50's layer4.0.conv2 1.45-1.53 -> 1.30-1.33 ms.
     --tune conv.prefetch=FLOATS (default 1024) overrides, 0 turns it off. */
  p->prefetch = cf->tune->conv_prefetch;
  if (p->pw) {
    int64_t P = p->OH * p->OW, R = (int64_t)Tmax * 8;
    if (P <= R + R / 2) {
      p->R = p->RL = P;
      p->NR = 1;
    } else {
      p->R = R;
      p->NR = be_cdiv(P, R);
      p->RL = P - (p->NR - 1) * R;
    }
  } else {
    /* A strided 1x1 conv (ResNet's downsample) has no padding either: a
       tile may span whole output rows, each one sh input rows down (7x7
       outputs: 2 rows, 14 pixels, instead of 7). */
    if (one && p->OW * 2 <= Tmax)
      p->RH = Tmax / p->OW < p->OH ? Tmax / p->OW : p->OH;
    p->R = p->RH * p->OW;
    p->NR = be_cdiv(p->OH, p->RH);
    p->RL = (p->OH - (p->NR - 1) * p->RH) * p->OW;
  }
  /* Balance the tiles of a row: T = ceil(W / ceil(W / Tmax)). */
  int64_t W = p->R;
  p->T = (int)be_cdiv(W, be_cdiv(W, Tmax));
  if (p->pw && p->NR > 1)
    p->T = Tmax;
  conv_order(cf, p, one);
}

int64_t be_work_conv_blocked(const BeConfig *cf, const Node *n) {
  ConvPlan p;
  conv_plan(cf, n, &p);
  return p.NG * p.NR;
}

/* Everything one row of tiles needs. */
typedef struct {
  ConvPlan *p;
  KArgs *k;
  LLVMValueRef og, row;    /* tile group, (virtual) row */
  LLVMValueRef kh0, kh1;   /* valid kh range of this row (non-pw) */
  LLVMValueRef xgrp;       /* input index of the group's first channel plane */
  LLVMValueRef nicb;       /* input blocks (or channels, NCHW) the tile reads */
  LLVMValueRef mtab, mch0; /* window groups: lane masks, the window's first */
  LLVMValueRef mch;        /* ... and this input block's first */
  LLVMValueRef gch;        /* the gate's index of the input block's first channel */
  LLVMValueRef wob[4];     /* weight index of each block's first element */
  LLVMValueRef obase[4];   /* output pointer of each block (split aware) */
  LLVMValueRef oblk[4];    /* block index within that pointer's tensor */
  LLVMValueRef bias[4];    /* bias vector or zero */
  LLVMValueRef acc[4][32]; /* allocas */
} RowCtx;

/* A prefetch of base[idx] into all cache levels (llvm.prefetch, read). */
static void prefetch(BeCtx *c, const KArgs *k, LLVMValueRef base, LLVMValueRef idx) {
  LLVMTypeRef tys[] = {c->t_ptr};
  LLVMValueRef args[] = {be_wptr(c, k, base, idx), be_i32(c, 0), be_i32(c, 3), be_i32(c, 1)};
  be_intrinsic(c, "llvm.prefetch", tys, 1, args, 4);
}

/* Is input column (ow*sw - pl + kw*dw) inside the image? */
static bool col_valid(const ConvPlan *p, int64_t ow, int64_t kw) {
  if (p->pw || p->RH > 1)
    return true; /* flattened pixels or whole rows of a 1x1 conv, no padding */
  int64_t iw = ow * p->sw - p->pl + kw * p->dw;
  return iw >= 0 && iw < p->IW;
}

/* Pixel q of a tile, tap column kw: its input column, relative to the tile's
   first one (row q / OW of a tile of RH whole rows, sh input rows apart). */
static int64_t pix_off(const ConvPlan *p, int64_t q, int64_t kw) {
  if (p->RH > 1)
    return q / p->OW * p->sh * p->IW + q % p->OW * p->sw + kw * p->dw;
  return q * p->sw + kw * p->dw;
}

/* The taps of column kw of the kernel for the tile's w pixels, over the
   BI input channels of a block: OCB weight vectors per channel, one
   broadcast input per pixel, OCB*w fmas. With broadcasts by lane (NEON),
   the loop steps over 4 channels at a time: one <4 x float> load per pixel
   gives the 4 channels' inputs, each channel's fmas take their lane (fmla
   by element); per 4 channels 4*OCB weight and w input loads feed
   16*OCB*w lane-fmas. */
static void emit_taps(BeCtx *c, RowCtx *r, LLVMValueRef *wkh, LLVMValueRef xcol, int64_t kw,
                      int64_t ow0c, int w) {
  ConvPlan *p = r->p;
  LLVMValueRef x = r->k->in[0], W = r->k->par[P_WEIGHT];
  int OCB = p->OCB;
  int64_t pixstride = p->BI == 16 ? 16 : 1;
  int step = p->BI == 16 && be_bcast_by_lane(&c->cfg->target) ? 4 : 1;
  BeLoop ic;
  LLVMValueRef ici = be_i64(c, 0);
  if (p->BI > 1) {
    be_for(c, &ic, be_i64(c, 0), be_i64(c, p->BI / step), "ici");
    ici = ic.iv;
  }
  LLVMValueRef accv[4][32], xv[32];
  for (int j = 0; j < OCB; j++)
    for (int q = 0; q < w; q++)
      accv[j][q] = LLVMBuildLoad2(c->b, c->t_v16, r->acc[j][q], "");
  if (step > 1) {
    LLVMValueRef xk = be_add(c, xcol, be_mulk(c, ici, step));
    for (int q = 0; q < w; q++)
      if (ow0c < 0 || col_valid(p, ow0c + q, kw))
        xv[q] = be_vld4(c, x, be_addk(c, xk, pix_off(p, q, kw) * pixstride));
  }
  for (int l = 0; l < step; l++) {
    LLVMValueRef ch = be_addk(c, be_mulk(c, ici, step), l);
    LLVMValueRef wv[4];
    for (int j = 0; j < OCB; j++)
      wv[j] = be_wvld(c, r->k, W,
                      be_add(c, be_addk(c, wkh[j], kw * p->BI * 16), be_mulk(c, ch, 16)), 64);
    if (r->k->gate) { /* input channel ch's gate, on its OCB weights */
      LLVMValueRef gv = be_vbcast(c, r->k->gate, be_add(c, r->gch, ch));
      for (int j = 0; j < OCB; j++)
        wv[j] = be_fmul(c, wv[j], gv);
    }
    if (p->prefetch)
      for (int j = 0; j < OCB; j++)
        prefetch(c, r->k, W,
                 be_add(c, be_addk(c, wkh[j], kw * p->BI * 16 + p->prefetch), be_mulk(c, ch, 16)));
    LLVMValueRef xk = step > 1 ? NULL : be_add(c, xcol, ici);
    LLVMValueRef mask = NULL; /* window groups: the lanes of ch's group */
    if (p->win) {
      LLVMValueRef bits = be_ld_i64(c, r->mtab, be_add(c, r->mch, ch));
      bits = LLVMBuildTrunc(c->b, bits, LLVMIntTypeInContext(c->ctx, 16), "");
      mask = LLVMBuildBitCast(c->b, bits, LLVMVectorType(c->t_i1, 16), "lanes");
    }
    for (int q = 0; q < w; q++) {
      if (ow0c >= 0 && !col_valid(p, ow0c + q, kw))
        continue;
      int64_t off = pix_off(p, q, kw) * pixstride;
      LLVMValueRef xb = step > 1 ? be_vlane(c, xv[q], l) : be_vbcast(c, x, be_addk(c, xk, off));
      for (int j = 0; j < OCB; j++) {
        LLVMValueRef f = be_vfma(c, wv[j], xb, accv[j][q]);
        accv[j][q] = mask ? LLVMBuildSelect(c->b, mask, f, accv[j][q], "") : f;
      }
    }
  }
  for (int j = 0; j < OCB; j++)
    for (int q = 0; q < w; q++)
      LLVMBuildStore(c->b, accv[j][q], r->acc[j][q]);
  if (p->BI > 1)
    be_for_end(c, &ic);
}

/* One tile: w pixels from ow0 (a value; ow0c >= 0 when it is a constant, and
   then taps outside the image are skipped). */
static void emit_tile(BeCtx *c, RowCtx *r, LLVMValueRef ow0, int64_t ow0c, int w) {
  ConvPlan *p = r->p;
  KArgs *k = r->k;
  int OCB = p->OCB;
  for (int j = 0; j < OCB; j++)
    for (int q = 0; q < w; q++)
      LLVMBuildStore(c->b, r->bias[j], r->acc[j][q]);

  int64_t XH = p->pw ? 1 : p->IH, XW = p->pw ? p->IH * p->IW : p->IW;
  BeLoop icb;
  be_for(c, &icb, be_i64(c, 0), r->nicb, "icb");
  /* Index of input channel block icb (its first channel for NCHW). */
  LLVMValueRef xplane = be_add(c, r->xgrp, be_mulk(c, icb.iv, XH * XW * p->BI));
  if (k->gate)
    r->gch = be_mulk(c, icb.iv, p->BI);
  if (p->win)
    r->mch = be_add(c, r->mch0, be_mulk(c, icb.iv, 16));
  LLVMValueRef wicb[4];
  for (int j = 0; j < OCB; j++)
    wicb[j] = be_add(c, r->wob[j], be_mulk(c, icb.iv, p->KH * p->KW * p->BI * 16));
  BeLoop kh;
  LLVMValueRef khv;
  if (p->pw) {
    khv = be_i64(c, 0);
  } else {
    be_for(c, &kh, r->kh0, r->kh1, "kh");
    khv = kh.iv;
  }
  LLVMValueRef xrow = xplane, wkh[4];
  if (!p->pw) {
    LLVMValueRef ih =
        be_add(c, be_addk(c, be_mulk(c, r->row, p->sh * p->RH), -p->pt), be_mulk(c, khv, p->dh));
    xrow = be_add(c, xplane, be_mulk(c, ih, XW * (p->BI == 16 ? 16 : 1)));
  }
  for (int j = 0; j < OCB; j++)
    wkh[j] = be_add(c, wicb[j], be_mulk(c, khv, p->KW * p->BI * 16));
  /* Pixel column base: (ow0*sw - pl) in input columns; a pointwise row is
     a run of the flattened pixels. */
  LLVMValueRef colbase =
      p->pw ? be_add(c, be_mulk(c, r->row, p->R), ow0) : be_addk(c, be_mulk(c, ow0, p->sw), -p->pl);
  int64_t pixstride = p->BI == 16 ? 16 : 1;
  LLVMValueRef xcol = be_add(c, xrow, be_mulk(c, colbase, pixstride));
  /* The innermost step is the register tile itself: OCB weight loads, a
     broadcast per pixel, OCB*T fmas; the 16 input channels of a block are
     a loop around it (not unrolled: a small body keeps the scheduler from
     hoisting loads until the accumulators spill, and compile time low). */
  for (int64_t kw = 0; kw < p->KW; kw++) {
    bool any = false;
    for (int q = 0; q < w; q++)
      any |= ow0c < 0 || col_valid(p, ow0c + q, kw);
    if (any)
      emit_taps(c, r, wkh, xcol, kw, ow0c, w);
  }
  if (!p->pw)
    be_for_end(c, &kh);
  be_for_end(c, &icb);

  /* Epilogue and store: out[(blk*OH*OW + pix)*16]. */
  LLVMValueRef pix0 = be_add(c, be_mulk(c, r->row, p->R), ow0); /* R: OW unless pw or RH > 1 */
  for (int j = 0; j < OCB; j++) {
    LLVMValueRef obase = be_mulk(c, be_add(c, be_mulk(c, r->oblk[j], p->OH * p->OW), pix0), 16);
    LLVMValueRef rbase = NULL;
    LLVMValueRef ob = be_addk(c, be_mulk(c, r->og, OCB), j);
    if (k->res)
      rbase = be_mulk(c, be_add(c, be_mulk(c, ob, p->OH * p->OW), pix0), 16);
    for (int q = 0; q < w; q++) {
      LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_v16, r->acc[j][q], "");
      if (k->res)
        v = be_fadd(c, v, be_vld(c, k->res, be_addk(c, rbase, q * 16), 64));
      v = be_act(c, &k->n->epi.act, v);
      v = be_zero_padded_block(c, k->n, ob, v);
      be_vst(c, r->obase[j], be_addk(c, obase, q * 16), v, 64);
    }
  }
}

static void tile_cb(BeCtx *c, void *r, LLVMValueRef ow0, int64_t ow0c, int w) {
  emit_tile(c, r, ow0, ow0c, w);
}

/* A row of W pixels (flattened pixels of a pointwise conv have no border). */
static void emit_row(BeCtx *c, RowCtx *r, int64_t W) {
  ConvPlan *p = r->p;
  int64_t owA = 0, owB = W - 1;
  if (!p->pw && p->RH == 1)
    be_interior_cols(p->IW, p->KW, p->sw, p->pl, p->dw, &owA, &owB);
  be_emit_row_tiles(c, W, p->T, owA, owB, tile_cb, r);
}

/* Window groups: the tile's window (first input channel's index, blocks,
   weight offset, lane masks) from constant tables, for output block ob0. */
static void window_tables(BeCtx *c, const ConvPlan *p, RowCtx *r, LLVMValueRef ob0) {
  int64_t *t = xmalloc(sizeof(int64_t) * 4 * (size_t)p->NB), woff = 0, nm = 0;
  for (int64_t ob = 0; ob < p->NB; ob++) {
    int64_t lo, nb;
    conv_window(p, ob, &lo, &nb);
    t[ob] = lo * 16 * p->IH * p->IW, t[p->NB + ob] = nb, t[2 * p->NB + ob] = woff;
    t[3 * p->NB + ob] = nm;
    woff += nb * p->KH * p->KW * 256, nm += nb * 16;
  }
  int64_t *m = xmalloc(sizeof(int64_t) * (size_t)nm), *mi = m;
  for (int64_t ob = 0; ob < p->NB; ob++) {
    int64_t lo, nb;
    conv_window(p, ob, &lo, &nb);
    for (int64_t ic = lo * 16; ic < (lo + nb) * 16; ic++, mi++) {
      *mi = 0;
      for (int l = 0; l < 16; l++)
        *mi |= (int64_t)same_group(p, ob * 16 + l, ic) << l;
    }
  }
  r->xgrp = be_ld_i64(c, be_table_i64(c, "conv16.win.x", t, (int)p->NB), ob0);
  r->nicb = be_ld_i64(c, be_table_i64(c, "conv16.win.n", t + p->NB, (int)p->NB), ob0);
  r->wob[0] = be_ld_i64(c, be_table_i64(c, "conv16.win.w", t + 2 * p->NB, (int)p->NB), ob0);
  r->mch0 = be_ld_i64(c, be_table_i64(c, "conv16.win.mo", t + 3 * p->NB, (int)p->NB), ob0);
  r->mtab = be_table_i64(c, "conv16.win.m", m, (int)nm);
  free(t);
  free(m);
}

void be_emit_conv_blocked(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  ConvPlan P;
  conv_plan(c->cfg, n, &P);
  ConvPlan *p = &P;
  RowCtx r = {.p = p, .k = k};
  for (int j = 0; j < p->OCB; j++)
    for (int q = 0; q < p->T; q++)
      r.acc[j][q] = be_var(c, c->t_v16, "acc");

  LLVMValueRef tkh0 = NULL, tkh1 = NULL;
  if (!p->pw)
    be_kh_tables(c, "conv16", p->IH, p->OH, p->KH, p->sh, p->pt, p->dh, &tkh0, &tkh1);

  LLVMValueRef bias = n->nparams > P_BIAS ? k->par[P_BIAS] : NULL;
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "item");
  if (p->rowmajor) {
    r.row = be_sdiv(c, it.iv, be_i64(c, p->NG));
    r.og = be_sub(c, it.iv, be_mulk(c, r.row, p->NG));
  } else {
    r.og = be_sdiv(c, it.iv, be_i64(c, p->NR));
    r.row = be_sub(c, it.iv, be_mulk(c, r.og, p->NR));
  }
  if (!p->pw) { /* RH > 1: a 1x1 unpadded conv, every row's range is 0..1 */
    r.kh0 = be_ld_i64(c, tkh0, r.row);
    r.kh1 = be_ld_i64(c, tkh1, r.row);
  }
  /* The tile's group: all its blocks are in one conv group (or, window
     groups, its one block's window of input blocks). */
  LLVMValueRef ob0 = be_mulk(c, r.og, p->OCB);
  int64_t plane = p->IH * p->IW;
  if (p->win) {
    window_tables(c, p, &r, ob0);
  } else {
    LLVMValueRef grp = be_sdiv(c, ob0, be_i64(c, p->OCg / 16));
    r.xgrp = be_mulk(c, grp, p->ICg * plane); /* same in both layouts (ICg%16==0 if blocked) */
    r.nicb = be_i64(c, p->ICg / p->BI);
  }
  for (int j = 0; j < p->OCB; j++) {
    LLVMValueRef ob = be_addk(c, ob0, j);
    if (!p->win)
      r.wob[j] = be_mulk(c, ob, p->ICg * p->KH * p->KW * 16);
    r.bias[j] = bias ? be_vld(c, bias, be_mulk(c, ob, 16), 64) : LLVMConstNull(c->t_v16);
    be_split_out(c, k, ob, 16, &r.obase[j], &r.oblk[j]);
  }
  if ((p->pw || p->RH > 1) && p->NR > 1 && p->RL != p->R) {
    BeIf last;
    be_if(c, &last, LLVMBuildICmp(c->b, LLVMIntEQ, r.row, be_i64(c, p->NR - 1), ""));
    emit_row(c, &r, p->RL);
    be_else(c, &last);
    emit_row(c, &r, p->R);
    be_endif(c, &last);
  } else {
    emit_row(c, &r, p->R);
  }
  be_for_end(c, &it);
}

/* ----------------------------------------------------------- weight packing */

/* Window groups: the packed floats of all blocks' windows. */
static int64_t window_numel(const ConvPlan *p) {
  int64_t total = 0;
  for (int64_t ob = 0; ob < p->NB; ob++) {
    int64_t lo, nb;
    conv_window(p, ob, &lo, &nb);
    total += nb * p->KH * p->KW * 256;
  }
  return total;
}

int64_t be_packed_numel_conv_blocked(const BeConfig *cf, const Node *n) {
  ConvPlan p;
  conv_plan(cf, n, &p);
  return p.win ? window_numel(&p) : param_numel(n->params[P_WEIGHT]);
}

/* [ob][window block j][kh][kw][16 ic][16 oc], zero where ic is not in
   oc's group. */
static float *pack_window(const ConvPlan *p, const float *src) {
  float *dst = xcalloc((size_t)window_numel(p), sizeof(float));
  float *d = dst;
  for (int64_t ob = 0; ob < p->NB; ob++) {
    int64_t lo, nb;
    conv_window(p, ob, &lo, &nb);
    for (int64_t j = 0; j < nb; j++)
      for (int64_t t = 0; t < p->KH * p->KW; t++)
        for (int64_t ici = 0; ici < 16; ici++, d += 16)
          for (int64_t l = 0; l < 16; l++) {
            int64_t oc = ob * 16 + l, ic = (lo + j) * 16 + ici;
            if (same_group(p, oc, ic))
              d[l] = src[(oc * p->ICg + ic % p->ICg) * p->KH * p->KW + t];
          }
  }
  return dst;
}

float *be_pack_conv_blocked(const BeConfig *cf, const Node *n) {
  const Param *w = n->params[P_WEIGHT];
  int64_t OC = n->shape.d[0], ICg = n->in[0]->shape.d[0] / n->attr.groups;
  int64_t KH = n->attr.kernel[0], KW = n->attr.kernel[1];
  int64_t BI = n->in[0]->layout == LAYOUT_NCHW16C ? 16 : 1, NICB = ICg / BI;
  int64_t total = OC * ICg * KH * KW;
  CHECK(total == param_numel(w), "weight '%s' of '%s'", w->name, n->name);
  ConvPlan p;
  conv_plan(cf, n, &p);
  if (p.win)
    return pack_window(&p, w->data);
  float *dst = xmalloc((size_t)total * sizeof(float));
  const float *src = w->data;
  for (int64_t ob = 0; ob < OC / 16; ob++)
    for (int64_t icb = 0; icb < NICB; icb++)
      for (int64_t kh = 0; kh < KH; kh++)
        for (int64_t kw = 0; kw < KW; kw++)
          for (int64_t ici = 0; ici < BI; ici++)
            for (int64_t l = 0; l < 16; l++) {
              int64_t d = ((((ob * NICB + icb) * KH + kh) * KW + kw) * BI + ici) * 16 + l;
              int64_t s = (((ob * 16 + l) * ICg + icb * BI + ici) * KH + kh) * KW + kw;
              dst[d] = src[s];
            }
  return dst;
}

/* ------------------------------------------------------------------ pooling */

int64_t be_work_blocks_rows(const BeConfig *cf, const Node *n) {
  return n->shape.d[0] / 16 * n->shape.d[1];
}
int64_t be_work_blocks(const BeConfig *cf, const Node *n) { return n->shape.d[0] / 16; }
int64_t be_work_rows(const BeConfig *cf, const Node *n) { return n->shape.d[1]; }

/* Max and average pooling, one output row of one channel block per item. */
void be_emit_pool_blocked(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  const Attrs *a = &n->attr;
  const Shape *is = &n->in[0]->shape;
  int64_t IH = is->d[1], IW = is->d[2];
  int64_t OH = n->shape.d[1], OW = n->shape.d[2];
  int64_t KH = a->kernel[0], KW = a->kernel[1];
  int64_t sh = a->stride[0], sw = a->stride[1];
  int64_t pt = a->pad[0], pl = a->pad[1], pb = a->pad[2], pr = a->pad[3];
  int64_t dh = a->dilation[0], dw = a->dilation[1];
  bool isavg = n->op == OP_AVGPOOL, cip = a->count_include_pad;
  LLVMValueRef tdiv = NULL;
  if (isavg) {
    int64_t *wdiv = be_pool_col_divisors(IW, OW, KW, sw, pl, pr, cip);
    tdiv = be_table_i64(c, "pool16.wdiv", wdiv, (int)OW);
    free(wdiv);
  }
  LLVMValueRef acc = be_var(c, c->t_v16, "acc");
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "row");
  LLVMValueRef cb = be_sdiv(c, it.iv, be_i64(c, OH));
  LLVMValueRef oh = be_sub(c, it.iv, be_mulk(c, cb, OH));
  LLVMValueRef xplane = be_mulk(c, cb, IH * IW * 16);
  LLVMValueRef h0 = be_addk(c, be_mulk(c, oh, sh), -pt);
  LLVMValueRef hdiv = NULL;
  if (isavg) {
    LLVMValueRef h1 = be_smin(c, be_addk(c, h0, KH), be_i64(c, IH + pb));
    hdiv = cip ? be_sub(c, h1, h0)
               : be_sub(c, be_smin(c, h1, be_i64(c, IH)), be_smax(c, h0, be_i64(c, 0)));
  }
  BeLoop ow;
  be_for(c, &ow, be_i64(c, 0), be_i64(c, OW), "ow");
  LLVMBuildStore(c->b, be_vsplat(c, be_f32(c, isavg ? 0.0f : -INFINITY)), acc);
  LLVMValueRef w0 = be_addk(c, be_mulk(c, ow.iv, sw), -pl);
  BeLoop kh;
  be_for(c, &kh, be_i64(c, 0), be_i64(c, KH), "kh");
  LLVMValueRef ih = be_add(c, h0, be_mulk(c, kh.iv, dh));
  BeIf inh;
  be_if(c, &inh, LLVMBuildICmp(c->b, LLVMIntULT, ih, be_i64(c, IH), ""));
  {
    BeLoop kw;
    be_for(c, &kw, be_i64(c, 0), be_i64(c, KW), "kw");
    LLVMValueRef iw = be_add(c, w0, be_mulk(c, kw.iv, dw));
    BeIf inw;
    be_if(c, &inw, LLVMBuildICmp(c->b, LLVMIntULT, iw, be_i64(c, IW), ""));
    LLVMValueRef xi =
        be_mulk(c, be_add(c, be_add(c, xplane, be_mulk(c, ih, IW * 16)), be_mulk(c, iw, 16)), 1);
    LLVMValueRef xv = be_vld(c, k->in[0], xi, 64);
    LLVMValueRef cur = LLVMBuildLoad2(c->b, c->t_v16, acc, "");
    LLVMBuildStore(c->b, isavg ? be_fadd(c, cur, xv) : be_fmax_nan(c, cur, xv), acc);
    be_endif(c, &inw);
    be_for_end(c, &kw);
  }
  be_endif(c, &inh);
  be_for_end(c, &kh);
  LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_v16, acc, "");
  if (isavg) {
    LLVMValueRef d = be_smax(c, be_mul(c, hdiv, be_ld_i64(c, tdiv, ow.iv)), be_i64(c, 1));
    v = be_fdiv(c, v, be_vsplat(c, be_sitofp(c, d)));
  }
  LLVMValueRef yi = be_mulk(c, be_add(c, be_mulk(c, it.iv, OW), ow.iv), 16);
  be_vst(c, k->out, yi, vepi(c, k, v, yi), 64);
  be_for_end(c, &ow);
  be_for_end(c, &it);
}

/* Adaptive average or max pooling over PyTorch's bins, a vector of 16
   channels at a time; averages accumulate in double (as nchw.c's
   adaptive_pool, which says why). */
static void adaptive_pool_blocked(BeCtx *c, KArgs *k, bool max) {
  const Node *n = k->n;
  const Shape *is = &n->in[0]->shape;
  int64_t IH = is->d[1], IW = is->d[2];
  int64_t OH = n->shape.d[1], OW = n->shape.d[2];
  LLVMValueRef tws, twe;
  be_adaptive_bins(c, IW, OW, &tws, &twe);
  LLVMTypeRef at = max ? c->t_v16 : LLVMVectorType(LLVMDoubleTypeInContext(c->ctx), 16);
  LLVMValueRef acc = be_var(c, at, "acc");
  LLVMValueRef none = max ? be_vsplat(c, be_f32(c, -INFINITY)) : LLVMConstNull(at);
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "row");
  LLVMValueRef cb = be_sdiv(c, it.iv, be_i64(c, OH));
  LLVMValueRef oh = be_sub(c, it.iv, be_mulk(c, cb, OH));
  LLVMValueRef xplane = be_mulk(c, cb, IH * IW * 16);
  LLVMValueRef h0 = be_sdiv(c, be_mulk(c, oh, IH), be_i64(c, OH));
  LLVMValueRef h1 = be_sdiv(c, be_addk(c, be_mulk(c, oh, IH), IH + OH - 1), be_i64(c, OH));
  BeLoop ow;
  be_for(c, &ow, be_i64(c, 0), be_i64(c, OW), "ow");
  LLVMValueRef w0 = be_ld_i64(c, tws, ow.iv), w1 = be_ld_i64(c, twe, ow.iv);
  LLVMBuildStore(c->b, none, acc);
  BeLoop ih;
  be_for(c, &ih, h0, h1, "ih");
  LLVMValueRef xrow = be_add(c, xplane, be_mulk(c, ih.iv, IW * 16));
  BeLoop iw;
  be_for(c, &iw, w0, w1, "iw");
  LLVMValueRef cur = LLVMBuildLoad2(c->b, at, acc, "");
  LLVMValueRef xv = be_vld(c, k->in[0], be_add(c, xrow, be_mulk(c, iw.iv, 16)), 64);
  LLVMBuildStore(
      c->b, max ? be_fmax_nan(c, cur, xv) : be_fadd(c, cur, LLVMBuildFPExt(c->b, xv, at, "")), acc);
  be_for_end(c, &iw);
  be_for_end(c, &ih);
  LLVMValueRef v = LLVMBuildLoad2(c->b, at, acc, "");
  if (!max) {
    LLVMValueRef cnt = be_mul(c, be_sub(c, h1, h0), be_sub(c, w1, w0));
    v = be_fdiv(c, LLVMBuildFPTrunc(c->b, v, c->t_v16, ""), be_vsplat(c, be_sitofp(c, cnt)));
  }
  LLVMValueRef yi = be_mulk(c, be_add(c, be_mulk(c, it.iv, OW), ow.iv), 16);
  be_vst(c, k->out, yi, vepi(c, k, v, yi), 64);
  be_for_end(c, &ow);
  be_for_end(c, &it);
}

void be_emit_adaptive_avgpool_blocked(BeCtx *c, KArgs *k) { adaptive_pool_blocked(c, k, false); }
void be_emit_adaptive_maxpool_blocked(BeCtx *c, KArgs *k) { adaptive_pool_blocked(c, k, true); }

/* ------------------------------------------------------ batchnorm, scale-shift */

void be_emit_affine_blocked(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int64_t HW = n->shape.d[1] * n->shape.d[2];
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "cb");
  LLVMValueRef pi = be_mulk(c, it.iv, 16);
  LLVMValueRef s, t;
  if (n->op == OP_BATCHNORM) {
    LLVMValueRef var = be_vld(c, k->par[P_VAR], pi, 64);
    LLVMValueRef rstd =
        be_fdiv(c, be_vsplat(c, be_f32(c, 1.0f)),
                be_fcall1(c, "llvm.sqrt", be_fadd(c, var, be_vsplat(c, be_f32(c, n->attr.eps)))));
    s = be_fmul(c, be_vld(c, k->par[P_WEIGHT], pi, 64), rstd);
    t = be_fsub(c, be_vld(c, k->par[P_BIAS], pi, 64),
                be_fmul(c, be_vld(c, k->par[P_MEAN], pi, 64), s));
  } else {
    s = be_vld(c, k->par[P_SCALE], pi, 64);
    t = be_vld(c, k->par[P_SHIFT], pi, 64);
  }
  LLVMValueRef base = be_mulk(c, it.iv, HW * 16);
  BeLoop i;
  be_for(c, &i, be_i64(c, 0), be_i64(c, HW), "p");
  LLVMValueRef idx = be_add(c, base, be_mulk(c, i.iv, 16));
  LLVMValueRef v = be_vfma(c, be_vld(c, k->in[0], idx, 64), s, t);
  be_vst(c, k->out, idx, vepi(c, k, v, idx), 64);
  be_for_end(c, &i);
  be_for_end(c, &it);
}

/* ---------------------------------------------------------------------- mul */

/* mul by one value per channel on NCHW16c: one channel block per item, its
   16 values one vector (the small input, [C, 1, 1] or [C], is the same
   bytes in either layout). */
void be_emit_mul_blocked(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int big = be_mul_big_input(n);
  int64_t HW = n->shape.d[1] * n->shape.d[2];
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "cb");
  LLVMValueRef gate = be_vld(c, k->in[1 - big], be_mulk(c, it.iv, 16), 4);
  LLVMValueRef base = be_mulk(c, it.iv, HW * 16);
  BeLoop i;
  be_for(c, &i, be_i64(c, 0), be_i64(c, HW), "p");
  LLVMValueRef idx = be_add(c, base, be_mulk(c, i.iv, 16));
  LLVMValueRef v = be_fmul(c, be_vld(c, k->in[big], idx, 64), gate);
  be_vst(c, k->out, idx, vepi(c, k, v, idx), 64);
  be_for_end(c, &i);
  be_for_end(c, &it);
}

/* ------------------------------------------------------------------- concat */

/* As the NCHW concat, in units of 16-channel blocks (each contiguous). */
void be_emit_concat_blocked(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int64_t U = n->shape.d[1] * n->shape.d[2] * 16;
  int64_t off = 0;
  for (int i = 0; i < n->nin; i++) {
    int64_t Bi = n->in[i]->shape.d[0] / 16;
    LLVMValueRef a = be_smax(c, k->lo, be_i64(c, off));
    LLVMValueRef b = be_smin(c, k->hi, be_i64(c, off + Bi));
    LLVMValueRef dst = be_fptr(c, k->out, be_mulk(c, a, U));
    LLVMValueRef src = be_fptr(c, k->in[i], be_mulk(c, be_addk(c, a, -off), U));
    LLVMValueRef go = LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, a, b, ""),
                                   LLVMBuildICmp(c->b, LLVMIntNE, dst, src, ""), "");
    BeIf f;
    be_if(c, &f, go);
    LLVMBuildMemMove(c->b, dst, 64, src, 64, be_mulk(c, be_sub(c, b, a), U * 4));
    be_endif(c, &f);
    off += Bi;
  }
}

/* ---------------------------------------------------------------- layernorm */

/* The sum of v's 16 lanes (in any order). */
static LLVMValueRef hsum(BeCtx *c, LLVMValueRef v) {
  LLVMTypeRef t = c->t_v16;
  LLVMValueRef args[2] = {be_f32(c, 0.0f), v};
  LLVMValueRef s = be_intrinsic(c, "llvm.vector.reduce.fadd", &t, 1, args, 2);
  if (LLVMCanValueUseFastMathFlags(s))
    LLVMSetFastMathFlags(s, LLVMFastMathAllowReassoc);
  return s;
}

/* LayerNorm over the channels of each pixel on NCHW16c: one output row per
   item; per pixel, the channel blocks summed as vectors, then their lanes
   (mean, then the mean of squared deviations), then normalized. */
void be_emit_layernorm_blocked(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int64_t C = n->shape.d[0], NB = C / 16, W = n->shape.d[2], HW = n->shape.d[1] * W;
  LLVMValueRef acc = be_var(c, c->t_v16, "acc");
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "row");
  BeLoop w;
  be_for(c, &w, be_i64(c, 0), be_i64(c, W), "w");
  LLVMValueRef pix = be_mulk(c, be_add(c, be_mulk(c, it.iv, W), w.iv), 16);
  LLVMBuildStore(c->b, LLVMConstNull(c->t_v16), acc);
  BeLoop b1;
  be_for(c, &b1, be_i64(c, 0), be_i64(c, NB), "b");
  LLVMValueRef xv = be_vld(c, k->in[0], be_add(c, be_mulk(c, b1.iv, HW * 16), pix), 64);
  LLVMBuildStore(c->b, be_fadd(c, LLVMBuildLoad2(c->b, c->t_v16, acc, ""), xv), acc);
  be_for_end(c, &b1);
  LLVMValueRef mean = be_vsplat(
      c, be_fmul(c, hsum(c, LLVMBuildLoad2(c->b, c->t_v16, acc, "")), be_f32(c, 1.0f / (float)C)));
  LLVMBuildStore(c->b, LLVMConstNull(c->t_v16), acc);
  BeLoop b2;
  be_for(c, &b2, be_i64(c, 0), be_i64(c, NB), "b");
  LLVMValueRef d =
      be_fsub(c, be_vld(c, k->in[0], be_add(c, be_mulk(c, b2.iv, HW * 16), pix), 64), mean);
  LLVMBuildStore(c->b, be_fmuladd(c, d, d, LLVMBuildLoad2(c->b, c->t_v16, acc, "")), acc);
  be_for_end(c, &b2);
  LLVMValueRef var =
      be_fmul(c, hsum(c, LLVMBuildLoad2(c->b, c->t_v16, acc, "")), be_f32(c, 1.0f / (float)C));
  LLVMValueRef rstd =
      be_vsplat(c, be_fdiv(c, be_f32(c, 1.0f),
                           be_fcall1(c, "llvm.sqrt", be_fadd(c, var, be_f32(c, n->attr.eps)))));
  BeLoop b3;
  be_for(c, &b3, be_i64(c, 0), be_i64(c, NB), "b");
  LLVMValueRef idx = be_add(c, be_mulk(c, b3.iv, HW * 16), pix);
  LLVMValueRef y = be_fmul(c, be_fsub(c, be_vld(c, k->in[0], idx, 64), mean), rstd);
  LLVMValueRef pi = be_mulk(c, b3.iv, 16);
  y = be_vfma(c, y, be_vld(c, k->par[P_WEIGHT], pi, 64), be_vld(c, k->par[P_BIAS], pi, 64));
  be_vst(c, k->out, idx, y, 64);
  be_for_end(c, &b3);
  be_for_end(c, &w);
  be_for_end(c, &it);
}

/* ---------------------------------------------------------- channel shuffle */

/* One output block per item: lane l of output channel o = b*16 + l comes
   from input channel src(o) (be_emit_nchw_channel_shuffle), whose element
   of pixel p is at src/16 * HW*16 + p*16 + src%16: a constant table of
   those offsets at p = 0, then a gather of 16 floats per pixel. */
void be_emit_channel_shuffle_blocked(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int64_t C = n->shape.d[0], HW = n->shape.d[1] * n->shape.d[2], G = n->attr.groups;
  int64_t *src = xmalloc(sizeof(int64_t) * (size_t)C);
  for (int64_t o = 0; o < C; o++) {
    int64_t s = (o % G) * (C / G) + o / G;
    src[o] = s / 16 * HW * 16 + s % 16;
  }
  LLVMValueRef table = be_table_i64(c, "shuffle16.src", src, (int)C);
  free(src);
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "cb");
  LLVMValueRef off[16];
  for (int l = 0; l < 16; l++)
    off[l] = be_ld_i64(c, table, be_addk(c, be_mulk(c, it.iv, 16), l));
  LLVMValueRef obase = be_mulk(c, it.iv, HW * 16);
  BeLoop p;
  be_for(c, &p, be_i64(c, 0), be_i64(c, HW), "p");
  LLVMValueRef pix = be_mulk(c, p.iv, 16);
  LLVMValueRef v = LLVMGetPoison(c->t_v16);
  for (int l = 0; l < 16; l++)
    v = LLVMBuildInsertElement(c->b, v, be_ld(c, k->in[0], be_add(c, off[l], pix)), be_i32(c, l),
                               "");
  be_vst(c, k->out, be_add(c, obase, pix), v, 64);
  be_for_end(c, &p);
  be_for_end(c, &it);
}

/* ------------------------------------------------------------------ reorder */

int64_t be_work_reorder(const BeConfig *cf, const Node *n) { return n->shape.d[0] / 16; }

void be_emit_reorder(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int64_t HW = n->shape.d[1] * n->shape.d[2];
  bool to_blocked = n->layout == LAYOUT_NCHW16C;
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "cb");
  LLVMValueRef bbase = be_mulk(c, it.iv, HW * 16); /* both: block cb starts here */
  BeLoop p;
  be_for(c, &p, be_i64(c, 0), be_i64(c, HW), "p");
  LLVMValueRef bi = be_add(c, bbase, be_mulk(c, p.iv, 16));
  LLVMValueRef pi = be_add(c, bbase, p.iv); /* channel cb*16 + l at pi + l*HW */
  if (to_blocked) {
    LLVMValueRef v = LLVMGetPoison(c->t_v16);
    for (int l = 0; l < 16; l++)
      v = LLVMBuildInsertElement(c->b, v, be_ld(c, k->in[0], be_addk(c, pi, l * HW)), be_i32(c, l),
                                 "");
    be_vst(c, k->out, bi, v, 64);
  } else {
    LLVMValueRef v = be_vld(c, k->in[0], bi, 64);
    for (int l = 0; l < 16; l++)
      be_st(c, k->out, be_addk(c, pi, l * HW), LLVMBuildExtractElement(c->b, v, be_i32(c, l), ""));
  }
  be_for_end(c, &p);
  be_for_end(c, &it);
}

/*
 * int8.c: --precision=int8 (docs/precision.md): the conv and linear layers
 * that passes/quantize.c marked (Node.quant) computed with AVX512-VNNI
 * vpdpbusd: u8 activations times s8 weights, summed in int32.
 *
 * One kernel serves both ops (a linear is a 1x1 conv of a 1x1 image with
 * K = in_features channels), both input layouts (NCHW or NCHW16c) and both
 * output layouts. Work item: one output row (all output channels); a
 * linear has one. Per tile of up to BE_INT8_TILE pixels of the row:
 *
 *   1. quantize: the tile's im2col rows, q = clamp(rint(x / s) + z, 0, 255)
 *      into a stack buffer [pixel][Kp] of bytes (Kp = K rounded up to 4;
 *      taps outside the image read 0.0, which is exactly z);
 *   2. multiply: per block of 16 output channels, one int32 accumulator
 *      vector per pixel; per 4 k's, the 64 weight bytes of the block
 *      (16 channels x 4 k's) and the pixel's 4 input bytes broadcast:
 *      acc = vpdpbusd(acc, x4, w) (16 x 4 products, no saturation);
 *   3. dequantize and epilogue: y = (acc - z * sum_k w[oc][k]) * s * sw[oc]
 *      + bias[oc], then the fused residual add and activation in fp32, and
 *      the store in the output's layout.
 *
 * Weights (be_pack_int8, at compile time): per output channel symmetric,
 * sw[oc] = max|w[oc]| / 127, q = rint(w / sw) in [-127, 127]. The packed
 * parameter is bytes in a float-typed blob entry:
 *   [OCB][Kp/4][16][4] s8 weights, then OCB*16 floats s*sw[oc], OCB*16
 *   int32 z*sum_k q[oc][k], OCB*16 floats bias (0 past OC and without one).
 * Activations between layers stay fp32: a quantized layer quantizes its
 * input itself and dequantizes its output (the first step; keeping u8 in
 * the arena and requantizing in the epilogue is the next).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"

#define BE_INT8_TILE 8   /* pixels per tile: accumulators in registers */
#define BE_INT8_BLOCKS 2 /* output blocks per tile (AVX-512) */

typedef struct {
  int64_t C, IH, IW, OC, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw;
  int64_t K, Kp, OCB;
  bool in_blocked, out_blocked;
} Geo;

static void geo(const Node *n, Geo *g) {
  memset(g, 0, sizeof *g);
  g->KH = g->KW = g->IH = g->IW = g->OH = g->OW = g->sh = g->sw = g->dh = g->dw = 1;
  if (n->op == OP_LINEAR) {
    g->C = shape_numel(&n->in[0]->shape);
    g->OC = n->shape.d[0];
  } else {
    const Attrs *a = &n->attr;
    g->C = n->in[0]->shape.d[0], g->IH = n->in[0]->shape.d[1], g->IW = n->in[0]->shape.d[2];
    g->OC = n->shape.d[0], g->OH = n->shape.d[1], g->OW = n->shape.d[2];
    g->KH = a->kernel[0], g->KW = a->kernel[1], g->sh = a->stride[0], g->sw = a->stride[1];
    g->ph = a->pad[0], g->pw = a->pad[1], g->dh = a->dilation[0], g->dw = a->dilation[1];
    g->in_blocked = n->in[0]->layout == LAYOUT_NCHW16C;
    g->out_blocked = n->layout == LAYOUT_NCHW16C;
  }
  g->K = g->C * g->KH * g->KW;
  g->Kp = (g->K + 3) / 4 * 4;
  g->OCB = (g->OC + 15) / 16;
}

/* Where tap (c, kh, kw) sits in a pixel's K bytes: (c, kh, kw) order for
   an NCHW input, (kh, kw, c) for a blocked one, whose 16 channels of a
   pixel are contiguous and quantize as one vector. */
static int64_t kpos(const Geo *g, int64_t c, int64_t kh, int64_t kw) {
  return g->in_blocked ? (kh * g->KW + kw) * g->C + c : (c * g->KH + kh) * g->KW + kw;
}

bool be_int8_accepts(const BeConfig *cf, const Node *n) {
  return cf->precision == PRECISION_INT8 && n->quant && (n->op == OP_LINEAR || n->attr.groups == 1);
}

int64_t be_work_int8(const BeConfig *cf, const Node *n) {
  return n->op == OP_LINEAR ? 1 : n->shape.d[1];
}

int64_t be_packed_numel_int8(const BeConfig *cf, const Node *n) {
  Geo g;
  geo(n, &g);
  return g.OCB * 16 * g.Kp / 4 + g.OCB * 16 * 3;
}

float be_int8_weight_row(const float *w, int64_t K, int8_t *q) {
  float amax = 0;
  for (int64_t k = 0; k < K; k++)
    amax = fmaxf(amax, fabsf(w[k]));
  float sw = amax > 0 && isfinite(amax) ? amax / 127.0f : 1.0f;
  for (int64_t k = 0; k < K; k++) {
    float r = rintf(w[k] / sw);
    q[k] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r == r ? (int)r : 0); /* NaN: 0 */
  }
  return sw;
}

void be_int8_pack(const Node *n, int64_t K, float *dst, int64_t wbytes, int64_t nmeta,
                  int64_t (*pos)(const void *ctx, int64_t oc, int64_t i), const void *ctx) {
  int64_t OC = n->shape.d[0];
  int8_t *wq = (int8_t *)dst, *row = xmalloc((size_t)K);
  float *scale = dst + wbytes / 4, *bias = scale + 2 * nmeta;
  int32_t *zpw = (int32_t *)(scale + nmeta);
  const float *w = n->params[P_WEIGHT]->data;
  const Param *pb = n->nparams > P_BIAS ? n->params[P_BIAS] : NULL;
  CHECK(param_numel(n->params[P_WEIGHT]) == OC * K, "int8 weight of '%s'", n->name);
  for (int64_t oc = 0; oc < OC; oc++) {
    float sw = be_int8_weight_row(w + oc * K, K, row);
    int64_t sum = 0;
    for (int64_t i = 0; i < K; i++) { /* i: PyTorch's (c, kh, kw) order */
      wq[pos(ctx, oc, i)] = row[i];
      sum += row[i];
    }
    scale[oc] = n->qscale * sw;
    zpw[oc] = (int32_t)(n->qzero * sum);
    bias[oc] = pb && pb->data ? pb->data[oc] : 0.0f;
  }
  free(row);
}

/* Weight i of output channel oc in [OCB][Kp/4][16][4]. */
static int64_t wpos(const void *ctx, int64_t oc, int64_t i) {
  const Geo *g = ctx;
  int64_t k = kpos(g, i / (g->KH * g->KW), i / g->KW % g->KH, i % g->KW);
  return (((oc / 16) * (g->Kp / 4) + k / 4) * 16 + oc % 16) * 4 + k % 4;
}

float *be_pack_int8(const BeConfig *cf, const Node *n) {
  Geo g;
  geo(n, &g);
  float *dst = xcalloc((size_t)be_packed_numel_int8(cf, n), sizeof(float));
  be_int8_pack(n, g.K, dst, g.OCB * 16 * g.Kp, g.OCB * 16, wpos, &g);
  return dst;
}

/* ------------------------------------------------------------ the kernel */

static LLVMTypeRef v16i32(BeCtx *c) { return LLVMVectorType(c->t_i32, 16); }

static LLVMValueRef bptr(BeCtx *c, LLVMValueRef base, LLVMValueRef byte) {
  return LLVMBuildInBoundsGEP2(c->b, c->t_i8, base, &byte, 1, "");
}

LLVMValueRef be_int8_quant_byte(BeCtx *c, const Node *n, LLVMValueRef x) {
  LLVMValueRef r = be_fcall1(c, "llvm.rint", be_fmul(c, x, be_f32(c, 1.0f / n->qscale)));
  r = be_fcall2(c, "llvm.maxnum", r, be_f32(c, (float)-n->qzero));
  r = be_fcall2(c, "llvm.minnum", r, be_f32(c, (float)(255 - n->qzero)));
  LLVMValueRef q = LLVMBuildFPToSI(c->b, r, c->t_i32, "");
  q = LLVMBuildAdd(c->b, q, be_i32(c, n->qzero), "");
  return LLVMBuildTrunc(c->b, q, c->t_i8, "");
}

/* 0 <= v < n, as one unsigned compare. */
static LLVMValueRef in_range(BeCtx *c, LLVMValueRef v, int64_t n) {
  return LLVMBuildICmp(c->b, LLVMIntULT, v, be_i64(c, n), "");
}

/* The input row and column of tap (kh, kw) for output pixel (oh, ow), and
   whether it lies inside the input (else it is padding). */
static LLVMValueRef tap_at(BeCtx *c, const Geo *g, LLVMValueRef oh, LLVMValueRef ow,
                           LLVMValueRef kh, LLVMValueRef kw, LLVMValueRef *ih, LLVMValueRef *iw) {
  *ih = be_add(c, be_mulk(c, oh, g->sh), be_addk(c, be_mulk(c, kh, g->dh), -g->ph));
  *iw = be_add(c, be_mulk(c, ow, g->sw), be_addk(c, be_mulk(c, kw, g->dw), -g->pw));
  return LLVMBuildAnd(c->b, in_range(c, *ih, g->IH), in_range(c, *iw, g->IW), "");
}

LLVMValueRef be_int8_quant_vec(BeCtx *c, const Node *n, LLVMValueRef x) {
  LLVMValueRef r =
      be_fcall1(c, "llvm.rint", be_fmul(c, x, be_vsplat(c, be_f32(c, 1.0f / n->qscale))));
  r = be_fcall2(c, "llvm.maxnum", r, be_vsplat(c, be_f32(c, (float)-n->qzero)));
  r = be_fcall2(c, "llvm.minnum", r, be_vsplat(c, be_f32(c, (float)(255 - n->qzero))));
  LLVMTypeRef tv = LLVMVectorType(c->t_i32, 16);
  LLVMValueRef q = LLVMBuildFPToSI(c->b, r, tv, "");
  LLVMValueRef z =
      LLVMBuildInsertElement(c->b, LLVMGetPoison(tv), be_i32(c, n->qzero), be_i32(c, 0), "");
  z = LLVMBuildShuffleVector(c->b, z, LLVMGetPoison(tv), LLVMConstNull(tv), "");
  return LLVMBuildTrunc(c->b, LLVMBuildAdd(c->b, q, z, ""), LLVMVectorType(c->t_i8, 16), "");
}

/* Step 1, blocked input: per tap (kh, kw), per channel block, 16 floats
   quantized as one vector into buf[t * Kp + (kh * KW + kw) * C + c]. */
static void quantize_pixel_blocked(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf,
                                   LLVMValueRef oh, LLVMValueRef ow, int t) {
  BeLoop kh, kw, cb;
  be_for(c, &kh, be_i64(c, 0), be_i64(c, g->KH), "kh");
  be_for(c, &kw, be_i64(c, 0), be_i64(c, g->KW), "kw");
  LLVMValueRef ih, iw, inside = tap_at(c, g, oh, ow, kh.iv, kw.iv, &ih, &iw);
  LLVMValueRef pix =
      LLVMBuildSelect(c->b, inside, be_add(c, be_mulk(c, ih, g->IW), iw), be_i64(c, 0), "");
  LLVMValueRef kb =
      be_addk(c, be_mulk(c, be_add(c, be_mulk(c, kh.iv, g->KW), kw.iv), g->C), t * g->Kp);
  be_for(c, &cb, be_i64(c, 0), be_i64(c, g->C / 16), "cb");
  LLVMValueRef idx = be_mulk(c, be_add(c, be_mulk(c, cb.iv, g->IH * g->IW), pix), 16);
  LLVMValueRef x =
      LLVMBuildSelect(c->b, inside, be_gate_block(c, k, cb.iv, be_vld(c, k->in[0], idx, 4)),
                      LLVMConstNull(c->t_v16), "");
  LLVMValueRef st = LLVMBuildStore(c->b, be_int8_quant_vec(c, k->n, x),
                                   bptr(c, buf, be_add(c, kb, be_mulk(c, cb.iv, 16))));
  LLVMSetAlignment(st, 1);
  be_for_end(c, &cb);
  be_for_end(c, &kw);
  be_for_end(c, &kh);
}

/* Step 1 for pixel ow of row oh: its Kp bytes at buf[t * Kp]. */
static void quantize_pixel(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf, LLVMValueRef oh,
                           LLVMValueRef ow, int t) {
  for (int64_t p = g->K; p < g->Kp; p++) /* the pad k's: weight 0 */
    LLVMBuildStore(c->b, LLVMConstInt(c->t_i8, (unsigned long long)k->n->qzero, false),
                   bptr(c, buf, be_i64(c, t * g->Kp + p)));
  if (g->in_blocked) {
    quantize_pixel_blocked(c, k, g, buf, oh, ow, t);
    return;
  }
  BeLoop ci, kh, kw;
  be_for(c, &ci, be_i64(c, 0), be_i64(c, g->C), "ci");
  be_for(c, &kh, be_i64(c, 0), be_i64(c, g->KH), "kh");
  be_for(c, &kw, be_i64(c, 0), be_i64(c, g->KW), "kw");
  LLVMValueRef ih, iw, inside = tap_at(c, g, oh, ow, kh.iv, kw.iv, &ih, &iw);
  LLVMValueRef idx =
      be_add(c, be_mulk(c, ci.iv, g->IH * g->IW), be_add(c, be_mulk(c, ih, g->IW), iw));
  idx = LLVMBuildSelect(c->b, inside, idx, be_i64(c, 0), "");
  LLVMValueRef x = LLVMBuildSelect(c->b, inside, be_ld(c, k->in[0], idx), be_f32(c, 0), "");
  LLVMValueRef kk = be_add(c, be_mulk(c, be_add(c, be_mulk(c, ci.iv, g->KH), kh.iv), g->KW), kw.iv);
  LLVMBuildStore(c->b, be_int8_quant_byte(c, k->n, x), bptr(c, buf, be_addk(c, kk, t * g->Kp)));
  be_for_end(c, &kw);
  be_for_end(c, &kh);
  be_for_end(c, &ci);
}

/* Pixel (oh, ow) of channel (or block) ch in an NCHW (NCHW16c) tensor of
   the output's height and width. */
static LLVMValueRef out_idx(BeCtx *c, const Geo *g, LLVMValueRef ch, LLVMValueRef oh,
                            LLVMValueRef ow) {
  LLVMValueRef i = be_add(c, be_mulk(c, be_add(c, be_mulk(c, ch, g->OH), oh), g->OW), ow);
  return g->out_blocked ? be_mulk(c, i, 16) : i;
}

/* Step 3's store of pixel ow, channels [ob*16, ob*16 + 16) (those < OC),
   into the output or, for a split conv (fold-1x1), the slices. */
static void store_block(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef oh, LLVMValueRef ow,
                        LLVMValueRef ob, LLVMValueRef v) {
  const Act *act = &k->n->epi.act;
  LLVMValueRef base, local;
  if (g->out_blocked) {
    if (k->res)
      v = be_fadd(c, v, be_vld(c, k->res, out_idx(c, g, ob, oh, ow), 4));
    be_split_out(c, k, ob, 16, &base, &local);
    be_vst(c, base, out_idx(c, g, local, oh, ow),
           be_zero_padded_block(c, k->n, ob, be_act(c, act, v)), 4);
    return;
  }
  for (int l = 0; l < 16; l++) {
    LLVMValueRef oc = be_addk(c, be_mulk(c, ob, 16), l);
    BeIf f;
    if (g->OC % 16)
      be_if(c, &f, LLVMBuildICmp(c->b, LLVMIntSLT, oc, be_i64(c, g->OC), ""));
    LLVMValueRef x = LLVMBuildExtractElement(c->b, v, be_i32(c, l), "");
    if (k->res)
      x = be_fadd(c, x, be_ld(c, k->res, out_idx(c, g, oc, oh, ow)));
    be_split_out(c, k, oc, 1, &base, &local);
    be_st(c, base, out_idx(c, g, local, oh, ow),
          be_zero_padded_channel(c, k->n, oc, be_act(c, act, x)));
    if (g->OC % 16)
      be_endif(c, &f);
  }
}

/* acc + the 16 dot products of 4 u8 (x, per channel 4 bytes) by 4 s8 (w):
   vpdpbusd with AVX512-VNNI; else exact in 16-bit pieces: both widened to
   i16 (no vpmaddubsw: its i16 pair sums saturate at 2 * 255 * 127),
   vpmaddwd into i32 pair sums, adjacent pairs added. The same sums either
   way: integer arithmetic without overflow. */
static LLVMValueRef dot4(BeCtx *c, LLVMValueRef acc, LLVMValueRef x, LLVMValueRef w) {
  if (c->cfg->target.vnni) {
    LLVMValueRef args[3] = {acc, x, w};
    return be_intrinsic(c, "llvm.x86.avx512.vpdpbusd.512", NULL, 0, args, 3);
  }
  LLVMTypeRef b64 = LLVMVectorType(c->t_i8, 64);
  LLVMTypeRef h64 = LLVMVectorType(LLVMInt16TypeInContext(c->ctx), 64);
  LLVMValueRef xh = LLVMBuildZExt(c->b, LLVMBuildBitCast(c->b, x, b64, ""), h64, "");
  LLVMValueRef wh = LLVMBuildSExt(c->b, LLVMBuildBitCast(c->b, w, b64, ""), h64, "");
  LLVMValueRef part[4], idx[32];
  for (int q = 0; q < 4; q++) { /* bytes [16q, 16q + 16): channels 4q..4q+3 */
    for (int i = 0; i < 16; i++)
      idx[i] = be_i32(c, 16 * q + i);
    LLVMValueRef m = LLVMConstVector(idx, 16);
    LLVMValueRef a[2] = {LLVMBuildShuffleVector(c->b, xh, xh, m, ""),
                         LLVMBuildShuffleVector(c->b, wh, wh, m, "")};
    part[q] = be_intrinsic(c, "llvm.x86.avx2.pmadd.wd", NULL, 0, a, 2); /* 8 x i32 */
  }
  for (int i = 0; i < 16; i++)
    idx[i] = be_i32(c, i);
  LLVMValueRef lo = LLVMBuildShuffleVector(c->b, part[0], part[1], LLVMConstVector(idx, 16), "");
  LLVMValueRef hi = LLVMBuildShuffleVector(c->b, part[2], part[3], LLVMConstVector(idx, 16), "");
  for (int i = 0; i < 32; i++)
    idx[i] = be_i32(c, i);
  LLVMValueRef all = LLVMBuildShuffleVector(c->b, lo, hi, LLVMConstVector(idx, 32), "");
  LLVMValueRef ev[16], od[16];
  for (int i = 0; i < 16; i++)
    ev[i] = be_i32(c, 2 * i), od[i] = be_i32(c, 2 * i + 1);
  LLVMValueRef even = LLVMBuildShuffleVector(c->b, all, all, LLVMConstVector(ev, 16), "");
  LLVMValueRef odd = LLVMBuildShuffleVector(c->b, all, all, LLVMConstVector(od, 16), "");
  return LLVMBuildAdd(c->b, acc, LLVMBuildAdd(c->b, even, odd, ""), "");
}

/* Steps 2 and 3 for the w pixels from ow0, quantized in buf, and the nblk
   output blocks from ob: per 4 k's, nblk weight vectors, and per pixel one
   broadcast of its 4 bytes used by all nblk blocks. */
static void multiply_blocks(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf,
                            LLVMValueRef (*acc)[BE_INT8_TILE], LLVMValueRef oh, LLVMValueRef ow0,
                            int w, LLVMValueRef ob, int nblk) {
  LLVMTypeRef tv = v16i32(c);
  LLVMValueRef wq = k->par[P_WEIGHT], zero = LLVMConstNull(tv), wv[BE_INT8_BLOCKS];
  int64_t K4 = g->Kp / 4, nb = g->OCB * 16;
  for (int j = 0; j < nblk; j++)
    for (int t = 0; t < w; t++)
      LLVMBuildStore(c->b, zero, acc[j][t]);
  BeLoop k4;
  be_for(c, &k4, be_i64(c, 0), be_i64(c, K4), "k4");
  for (int j = 0; j < nblk; j++) {
    LLVMValueRef wb = be_mulk(c, be_add(c, be_mulk(c, be_addk(c, ob, j), K4), k4.iv), 64);
    wv[j] = LLVMBuildLoad2(c->b, tv, bptr(c, wq, wb), "");
    LLVMSetAlignment(wv[j], 64);
  }
  for (int t = 0; t < w; t++) {
    LLVMValueRef xb = be_addk(c, be_mulk(c, k4.iv, 4), t * g->Kp);
    LLVMValueRef x4 = LLVMBuildLoad2(c->b, c->t_i32, bptr(c, buf, xb), "");
    LLVMSetAlignment(x4, 4);
    LLVMValueRef xv = LLVMBuildInsertElement(c->b, LLVMGetPoison(tv), x4, be_i32(c, 0), "");
    xv = LLVMBuildShuffleVector(c->b, xv, LLVMGetPoison(tv), zero, "");
    for (int j = 0; j < nblk; j++)
      LLVMBuildStore(c->b, dot4(c, LLVMBuildLoad2(c->b, tv, acc[j][t], ""), xv, wv[j]), acc[j][t]);
  }
  be_for_end(c, &k4);
  LLVMValueRef meta = bptr(c, wq, be_i64(c, nb * g->Kp));
  for (int j = 0; j < nblk; j++) {
    LLVMValueRef obj = be_addk(c, ob, j), o16 = be_mulk(c, obj, 16);
    LLVMValueRef sc = be_vld(c, meta, o16, 64), bs = be_vld(c, meta, be_addk(c, o16, 2 * nb), 64);
    LLVMValueRef zw = LLVMBuildLoad2(c->b, tv, be_fptr(c, meta, be_addk(c, o16, nb)), "");
    LLVMSetAlignment(zw, 64);
    for (int t = 0; t < w; t++) {
      LLVMValueRef a = LLVMBuildSub(c->b, LLVMBuildLoad2(c->b, tv, acc[j][t], ""), zw, "");
      LLVMValueRef v = be_fadd(c, be_fmul(c, LLVMBuildSIToFP(c->b, a, c->t_v16, ""), sc), bs);
      store_block(c, k, g, oh, be_addk(c, ow0, t), obj, v);
    }
  }
}

/* Every output block for the w pixels from ow0: in pairs on AVX-512 (16
   accumulators of 32 registers; a broadcast feeds two vpdpbusd), one at a
   time on AVX2 (its 16 registers hold 8 accumulators). */
static void multiply_tile(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf,
                          LLVMValueRef (*acc)[BE_INT8_TILE], LLVMValueRef oh, LLVMValueRef ow0,
                          int w) {
  int nblk = c->cfg->target.avx512 && g->OCB >= 2 ? BE_INT8_BLOCKS : 1;
  BeLoop ob;
  be_for(c, &ob, be_i64(c, 0), be_i64(c, g->OCB / nblk), "ob");
  multiply_blocks(c, k, g, buf, acc, oh, ow0, w, be_mulk(c, ob.iv, nblk), nblk);
  be_for_end(c, &ob);
  if (g->OCB % nblk)
    multiply_blocks(c, k, g, buf, acc, oh, ow0, w, be_i64(c, g->OCB / nblk * nblk),
                    (int)(g->OCB % nblk));
}

void be_emit_int8(BeCtx *c, KArgs *k) {
  Geo g;
  geo(k->n, &g);
  int T = g.OW < BE_INT8_TILE ? (int)g.OW : BE_INT8_TILE;
  LLVMValueRef buf = be_var(c, LLVMArrayType2(c->t_i8, (uint64_t)(T * g.Kp)), "qbuf");
  LLVMSetAlignment(buf, 64);
  LLVMValueRef acc[BE_INT8_BLOCKS][BE_INT8_TILE];
  for (int j = 0; j < BE_INT8_BLOCKS; j++)
    for (int t = 0; t < T; t++)
      acc[j][t] = be_var(c, v16i32(c), "acc");
  int64_t nfull = g.OW / T, rem = g.OW % T;
  BeLoop row, tile;
  be_for(c, &row, k->lo, k->hi, "oh");
  be_for(c, &tile, be_i64(c, 0), be_i64(c, nfull), "tile");
  LLVMValueRef ow0 = be_mulk(c, tile.iv, T);
  for (int t = 0; t < T; t++)
    quantize_pixel(c, k, &g, buf, row.iv, be_addk(c, ow0, t), t);
  multiply_tile(c, k, &g, buf, acc, row.iv, ow0, T);
  be_for_end(c, &tile);
  if (rem) {
    for (int t = 0; t < rem; t++)
      quantize_pixel(c, k, &g, buf, row.iv, be_i64(c, nfull * T + t), t);
    multiply_tile(c, k, &g, buf, acc, row.iv, be_i64(c, nfull * T), (int)rem);
  }
  be_for_end(c, &row);
}

/*
 * nchw.c: one specialized kernel per op instance on the plain NCHW layout:
 * every op has one here, the generic path that the blocked and register-
 * tiled kernels (blocked.c, grouped.c, winograd.c, gemm1x1.c) improve on.
 *
 * Work items (the runtime splits [0, work) into contiguous chunks):
 *   conv2d, maxpool, avgpool,        one output row of one channel
 *   adaptive_avgpool/maxpool         (item = c * OH + oh); a pointwise conv
 *                                    (1x1, stride 1, unpadded): one channel
 *                                    plane
 *   batchnorm, scaleshift, lrn,      one channel plane
 *   concat, channel_shuffle
 *   relu and the other activations,  a chunk of BE_CHUNK elements (any layout)
 *   add, mean, scale, mul of one
 *   shape, parameter
 *   mul by one value per channel     one channel plane
 *   layernorm                        16 pixels (all channels)
 *   softmax                          one spatial position (all channels)
 *
 * Shapes, strides, padding and dilation are compile-time constants. The
 * convolution is a direct convolution written as saxpys: for an output row,
 * for each (input channel, kh, kw) whose input row is inside the image, a
 * contiguous run of output columns (the valid range for that kw comes from a
 * constant table computed here, so the inner loop has no bounds checks) is
 * updated with w * x; LLVM vectorizes that loop at -O2. Rows start from the
 * bias and the epilogue (residual add, ReLU) runs while the row is in L1.
 * Pooling uses the same row/valid-range structure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"

#define BE_CHUNK 4096 /* elements per work item of the elementwise ops */

/* ------------------------------------------------------------ small helpers */

static int64_t chw(const Shape *s, int i) {
  /* C, H, W of a shape; rank 1 [F] reads as [F, 1, 1]. */
  if (s->rank == 3)
    return s->d[i];
  return i == 0 ? s->d[0] : 1;
}

static int64_t ceil_div(int64_t a, int64_t b) {
  /* b > 0, a any sign */
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* For a sliding window along W: the output columns ow for which the input
   column ow*stride - pad + kw*dil is inside [0, in). */
static void valid_cols(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, int64_t dil,
                       int64_t *lo, int64_t *hi) {
  for (int64_t kw = 0; kw < k; kw++) {
    int64_t off = kw * dil - pad;
    int64_t a = ceil_div(-off, stride);
    int64_t b = floor_div(in - 1 - off, stride) + 1;
    if (a < 0)
      a = 0;
    if (b > out)
      b = out;
    if (b < a)
      b = a;
    lo[kw] = a;
    hi[kw] = b;
  }
}

/* y = act(v + res[idx]): the fused epilogue on one value. */
static LLVMValueRef epi_value(BeCtx *c, KArgs *k, LLVMValueRef v, LLVMValueRef idx) {
  if (k->res)
    v = be_fadd(c, v, be_ld(c, k->res, idx));
  return be_act(c, &k->n->epi.act, v);
}

bool be_has_epilogue(const Node *n) { return n->epi.residual >= 0 || n->epi.act.kind != ACT_NONE; }

/* The epilogue over out[start, start + len), in place. */
static void epi_range_at(BeCtx *c, KArgs *k, LLVMValueRef out, LLVMValueRef start, int64_t len) {
  if (!be_has_epilogue(k->n))
    return;
  BeLoop l;
  be_for(c, &l, be_i64(c, 0), be_i64(c, len), "epi");
  LLVMValueRef idx = be_add(c, start, l.iv);
  be_st(c, out, idx, epi_value(c, k, be_ld(c, out, idx), idx));
  be_for_end(c, &l);
}

static void epi_range(BeCtx *c, KArgs *k, LLVMValueRef start, int64_t len) {
  epi_range_at(c, k, k->out, start, len);
}

/* out[start + i] = v for i in [0, len) */
static void fill_range(BeCtx *c, LLVMValueRef base, LLVMValueRef start, int64_t len,
                       LLVMValueRef v) {
  BeLoop l;
  be_for(c, &l, be_i64(c, 0), be_i64(c, len), "fill");
  be_st(c, base, be_add(c, start, l.iv), v);
  be_for_end(c, &l);
}

int64_t be_work_nchw_rows(const BeConfig *cf, const Node *n) {
  return n->shape.d[0] * n->shape.d[1];
}

/* A 1x1, stride-1, unpadded convolution sees each channel plane as one
   long row: y[oc][p] += w[oc][ic] * x[ic][p] over all H*W pixels, which
   keeps 7x7 and 14x14 layers vectorizing well. */
static bool conv_is_pointwise(const Node *n) {
  const Attrs *a = &n->attr;
  return a->kernel[0] == 1 && a->kernel[1] == 1 && a->stride[0] == 1 && a->stride[1] == 1 &&
         !a->pad[0] && !a->pad[1] && !a->pad[2] && !a->pad[3];
}

int64_t be_work_nchw_conv(const BeConfig *cf, const Node *n) {
  return conv_is_pointwise(n) ? n->shape.d[0] : be_work_nchw_rows(cf, n);
}

void be_emit_nchw_conv(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  const Attrs *a = &n->attr;
  const Shape *is = &n->in[0]->shape;
  int64_t C = is->d[0], IH = is->d[1], IW = is->d[2];
  int64_t OC = n->shape.d[0], OH = n->shape.d[1], OW = n->shape.d[2];
  int64_t KH = a->kernel[0], KW = a->kernel[1];
  int64_t G = a->groups, ICg = C / G, OCg = OC / G;
  if (conv_is_pointwise(n)) {
    IW = OW = IH * IW; /* one row per plane (must match be_work_nchw_conv) */
    IH = OH = 1;
  }
  LLVMValueRef x = k->in[0], w = k->par[P_WEIGHT];
  LLVMValueRef bias = n->nparams > P_BIAS ? k->par[P_BIAS] : NULL;

  int64_t *lo = malloc(sizeof(int64_t) * 2 * (size_t)KW), *hi = lo + KW;
  valid_cols(IW, OW, KW, a->stride[1], a->pad[1], a->dilation[1], lo, hi);
  LLVMValueRef tlo = be_table_i64(c, "conv.ow_lo", lo, (int)KW);
  LLVMValueRef thi = be_table_i64(c, "conv.ow_hi", hi, (int)KW);
  free(lo);

  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "row");
  LLVMValueRef oc = be_sdiv(c, it.iv, be_i64(c, OH));
  LLVMValueRef oh = be_sub(c, it.iv, be_mulk(c, oc, OH));
  /* The output row: in the node's tensor, or (split) in the slice that
     holds channel oc. */
  LLVMValueRef ybase, ocl;
  be_split_out(c, k, oc, 1, &ybase, &ocl);
  LLVMValueRef yrow = be_mulk(c, be_add(c, be_mulk(c, ocl, OH), oh), OW);
  fill_range(c, ybase, yrow, OW, bias ? be_ld(c, bias, oc) : be_f32(c, 0));

  LLVMValueRef icbase = be_mulk(c, be_sdiv(c, oc, be_i64(c, OCg)), ICg);
  LLVMValueRef wbase = be_mulk(c, oc, ICg * KH * KW);
  LLVMValueRef ihbase = be_addk(c, be_mulk(c, oh, a->stride[0]), -a->pad[0]);

  BeLoop ic;
  be_for(c, &ic, be_i64(c, 0), be_i64(c, ICg), "ic");
  LLVMValueRef xplane = be_mulk(c, be_add(c, icbase, ic.iv), IH * IW);
  LLVMValueRef wic = be_add(c, wbase, be_mulk(c, ic.iv, KH * KW));
  BeLoop kh;
  be_for(c, &kh, be_i64(c, 0), be_i64(c, KH), "kh");
  LLVMValueRef ih = be_add(c, ihbase, be_mulk(c, kh.iv, a->dilation[0]));
  BeIf inside;
  be_if(c, &inside, LLVMBuildICmp(c->b, LLVMIntULT, ih, be_i64(c, IH), ""));
  {
    LLVMValueRef xrow = be_add(c, xplane, be_mulk(c, ih, IW));
    LLVMValueRef wrow = be_add(c, wic, be_mulk(c, kh.iv, KW));
    BeLoop kw;
    be_for(c, &kw, be_i64(c, 0), be_i64(c, KW), "kw");
    LLVMValueRef wv = be_wld(c, k, w, be_add(c, wrow, kw.iv));
    LLVMValueRef xb = be_addk(c, be_add(c, xrow, be_mulk(c, kw.iv, a->dilation[1])), -a->pad[1]);
    BeLoop ow;
    be_for(c, &ow, be_ld_i64(c, tlo, kw.iv), be_ld_i64(c, thi, kw.iv), "ow");
    LLVMValueRef yi = be_add(c, yrow, ow.iv);
    LLVMValueRef xv = be_ld(c, x, be_add(c, xb, be_mulk(c, ow.iv, a->stride[1])));
    be_st(c, ybase, yi, be_fmuladd(c, wv, xv, be_ld(c, ybase, yi)));
    be_for_end(c, &ow);
    be_for_end(c, &kw);
  }
  be_endif(c, &inside);
  be_for_end(c, &kh);
  be_for_end(c, &ic);

  epi_range_at(c, k, ybase, yrow, OW);
  if (n->attr.padded_from > 0 && n->attr.padded_from < OC) { /* pad-channels: exactly 0 */
    BeIf pad;
    be_if(c, &pad, LLVMBuildICmp(c->b, LLVMIntSGE, oc, be_i64(c, n->attr.padded_from), ""));
    fill_range(c, ybase, yrow, OW, be_f32(c, 0));
    be_endif(c, &pad);
  }
  be_for_end(c, &it);
}

/* ------------------------------------------------------------------ pooling */

void be_emit_nchw_maxpool(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  const Attrs *a = &n->attr;
  const Shape *is = &n->in[0]->shape;
  int64_t IH = is->d[1], IW = is->d[2];
  int64_t OH = n->shape.d[1], OW = n->shape.d[2];
  int64_t KH = a->kernel[0], KW = a->kernel[1];

  int64_t *lo = malloc(sizeof(int64_t) * 2 * (size_t)KW), *hi = lo + KW;
  valid_cols(IW, OW, KW, a->stride[1], a->pad[1], a->dilation[1], lo, hi);
  LLVMValueRef tlo = be_table_i64(c, "maxpool.ow_lo", lo, (int)KW);
  LLVMValueRef thi = be_table_i64(c, "maxpool.ow_hi", hi, (int)KW);
  free(lo);

  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "row");
  LLVMValueRef ch = be_sdiv(c, it.iv, be_i64(c, OH));
  LLVMValueRef oh = be_sub(c, it.iv, be_mulk(c, ch, OH));
  LLVMValueRef yrow = be_mulk(c, it.iv, OW);
  fill_range(c, k->out, yrow, OW, be_f32(c, -INFINITY));
  LLVMValueRef xplane = be_mulk(c, ch, IH * IW);
  LLVMValueRef ihbase = be_addk(c, be_mulk(c, oh, a->stride[0]), -a->pad[0]);
  BeLoop kh;
  be_for(c, &kh, be_i64(c, 0), be_i64(c, KH), "kh");
  LLVMValueRef ih = be_add(c, ihbase, be_mulk(c, kh.iv, a->dilation[0]));
  BeIf inside;
  be_if(c, &inside, LLVMBuildICmp(c->b, LLVMIntULT, ih, be_i64(c, IH), ""));
  {
    LLVMValueRef xrow = be_add(c, xplane, be_mulk(c, ih, IW));
    BeLoop kw;
    be_for(c, &kw, be_i64(c, 0), be_i64(c, KW), "kw");
    LLVMValueRef xb = be_addk(c, be_add(c, xrow, be_mulk(c, kw.iv, a->dilation[1])), -a->pad[1]);
    BeLoop ow;
    be_for(c, &ow, be_ld_i64(c, tlo, kw.iv), be_ld_i64(c, thi, kw.iv), "ow");
    LLVMValueRef yi = be_add(c, yrow, ow.iv);
    LLVMValueRef xv = be_ld(c, k->in[0], be_add(c, xb, be_mulk(c, ow.iv, a->stride[1])));
    be_st(c, k->out, yi, be_fmax_nan(c, be_ld(c, k->out, yi), xv));
    be_for_end(c, &ow);
    be_for_end(c, &kw);
  }
  be_endif(c, &inside);
  be_for_end(c, &kh);
  epi_range(c, k, yrow, OW);
  be_for_end(c, &it);
}

/*
 * Average pooling as PyTorch's cpu_avg_pool computes it: the window
 * [start, start + k) is first clipped to the input plus the trailing padding
 * (its size is the count_include_pad divisor), then to the input (the
 * divisor without padding). Both factor into a row part and a column part;
 * the column part is a constant table.
 */
void be_emit_nchw_avgpool(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  const Attrs *a = &n->attr;
  const Shape *is = &n->in[0]->shape;
  int64_t IH = is->d[1], IW = is->d[2];
  int64_t OH = n->shape.d[1], OW = n->shape.d[2];
  int64_t KH = a->kernel[0], KW = a->kernel[1];
  int64_t sh = a->stride[0], sw = a->stride[1];
  int64_t pt = a->pad[0], pl = a->pad[1], pb = a->pad[2], pr = a->pad[3];
  bool cip = a->count_include_pad;

  int64_t *lo = malloc(sizeof(int64_t) * 2 * (size_t)KW), *hi = lo + KW;
  valid_cols(IW, OW, KW, sw, pl, 1, lo, hi);
  int64_t *wdiv = be_pool_col_divisors(IW, OW, KW, sw, pl, pr, cip);
  LLVMValueRef tlo = be_table_i64(c, "avgpool.ow_lo", lo, (int)KW);
  LLVMValueRef thi = be_table_i64(c, "avgpool.ow_hi", hi, (int)KW);
  LLVMValueRef tdiv = be_table_i64(c, "avgpool.wdiv", wdiv, (int)OW);
  free(lo);
  free(wdiv);

  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "row");
  LLVMValueRef ch = be_sdiv(c, it.iv, be_i64(c, OH));
  LLVMValueRef oh = be_sub(c, it.iv, be_mulk(c, ch, OH));
  LLVMValueRef yrow = be_mulk(c, it.iv, OW);
  fill_range(c, k->out, yrow, OW, be_f32(c, 0));
  LLVMValueRef xplane = be_mulk(c, ch, IH * IW);
  LLVMValueRef h0 = be_addk(c, be_mulk(c, oh, sh), -pt);
  LLVMValueRef h1 = be_smin(c, be_addk(c, h0, KH), be_i64(c, IH + pb));
  LLVMValueRef hdiv;
  if (cip)
    hdiv = be_sub(c, h1, h0);
  else
    hdiv = be_sub(c, be_smin(c, h1, be_i64(c, IH)), be_smax(c, h0, be_i64(c, 0)));

  BeLoop kh;
  be_for(c, &kh, be_i64(c, 0), be_i64(c, KH), "kh");
  LLVMValueRef ih = be_add(c, h0, kh.iv);
  BeIf inside;
  be_if(c, &inside, LLVMBuildICmp(c->b, LLVMIntULT, ih, be_i64(c, IH), ""));
  {
    LLVMValueRef xrow = be_add(c, xplane, be_mulk(c, ih, IW));
    BeLoop kw;
    be_for(c, &kw, be_i64(c, 0), be_i64(c, KW), "kw");
    LLVMValueRef xb = be_addk(c, be_add(c, xrow, kw.iv), -pl);
    BeLoop ow;
    be_for(c, &ow, be_ld_i64(c, tlo, kw.iv), be_ld_i64(c, thi, kw.iv), "ow");
    LLVMValueRef yi = be_add(c, yrow, ow.iv);
    LLVMValueRef xv = be_ld(c, k->in[0], be_add(c, xb, be_mulk(c, ow.iv, sw)));
    be_st(c, k->out, yi, be_fadd(c, be_ld(c, k->out, yi), xv));
    be_for_end(c, &ow);
    be_for_end(c, &kw);
  }
  be_endif(c, &inside);
  be_for_end(c, &kh);

  BeLoop ow;
  be_for(c, &ow, be_i64(c, 0), be_i64(c, OW), "div");
  LLVMValueRef d = be_mul(c, hdiv, be_ld_i64(c, tdiv, ow.iv));
  d = be_smax(c, d, be_i64(c, 1)); /* empty window: the sum is 0 */
  LLVMValueRef yi = be_add(c, yrow, ow.iv);
  LLVMValueRef v = be_fdiv(c, be_ld(c, k->out, yi), be_sitofp(c, d));
  be_st(c, k->out, yi, epi_value(c, k, v, yi));
  be_for_end(c, &ow);
  be_for_end(c, &it);
}

/* Adaptive average or max pooling over PyTorch's bins (a NaN wins the
   max, as in max pooling). Averages accumulate in double: one float
   running sum over a 112x112 bin drifts by ~1e-4 of the mean (every add
   rounds at the size of the whole sum; tests/unit: a constant plane), and
   float row sums are still less exact than PyTorch's pairwise sums, which
   EfficientNet's squeeze-excitation gates amplify: B3's e2e test at batch
   2 reached 8.6e-5 of its 1e-4 tolerance with float row sums, 2.8e-5 in
   double (PyTorch's own float32 error: 6e-6). */
static void adaptive_pool(BeCtx *c, KArgs *k, bool max) {
  const Node *n = k->n;
  const Shape *is = &n->in[0]->shape;
  int64_t IH = is->d[1], IW = is->d[2];
  int64_t OH = n->shape.d[1], OW = n->shape.d[2];

  LLVMValueRef tws, twe;
  be_adaptive_bins(c, IW, OW, &tws, &twe);

  LLVMTypeRef at = max ? c->t_f32 : LLVMDoubleTypeInContext(c->ctx);
  LLVMValueRef sum = be_var(c, at, max ? "max" : "sum");
  LLVMValueRef none = max ? be_f32(c, -INFINITY) : LLVMConstNull(at);
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "row");
  LLVMValueRef ch = be_sdiv(c, it.iv, be_i64(c, OH));
  LLVMValueRef oh = be_sub(c, it.iv, be_mulk(c, ch, OH));
  LLVMValueRef yrow = be_mulk(c, it.iv, OW);
  LLVMValueRef xplane = be_mulk(c, ch, IH * IW);
  LLVMValueRef h0 = be_sdiv(c, be_mulk(c, oh, IH), be_i64(c, OH));
  LLVMValueRef h1 = be_sdiv(c, be_addk(c, be_mulk(c, oh, IH), IH + OH - 1), be_i64(c, OH));
  BeLoop ow;
  be_for(c, &ow, be_i64(c, 0), be_i64(c, OW), "ow");
  LLVMValueRef w0 = be_ld_i64(c, tws, ow.iv), w1 = be_ld_i64(c, twe, ow.iv);
  LLVMBuildStore(c->b, none, sum);
  BeLoop ih;
  be_for(c, &ih, h0, h1, "ih");
  LLVMValueRef xrow = be_add(c, xplane, be_mulk(c, ih.iv, IW));
  BeLoop iw;
  be_for(c, &iw, w0, w1, "iw");
  LLVMValueRef s = LLVMBuildLoad2(c->b, at, sum, "");
  LLVMValueRef xv = be_ld(c, k->in[0], be_add(c, xrow, iw.iv));
  LLVMBuildStore(
      c->b, max ? be_fmax_nan(c, s, xv) : be_fadd(c, s, LLVMBuildFPExt(c->b, xv, at, "")), sum);
  be_for_end(c, &iw);
  be_for_end(c, &ih);
  LLVMValueRef v = LLVMBuildLoad2(c->b, at, sum, "");
  if (!max) {
    LLVMValueRef cnt = be_mul(c, be_sub(c, h1, h0), be_sub(c, w1, w0));
    v = be_fdiv(c, LLVMBuildFPTrunc(c->b, v, c->t_f32, ""), be_sitofp(c, cnt));
  }
  LLVMValueRef yi = be_add(c, yrow, ow.iv);
  be_st(c, k->out, yi, epi_value(c, k, v, yi));
  be_for_end(c, &ow);
  be_for_end(c, &it);
}

void be_emit_nchw_adaptive_avgpool(BeCtx *c, KArgs *k) { adaptive_pool(c, k, false); }
void be_emit_nchw_adaptive_maxpool(BeCtx *c, KArgs *k) { adaptive_pool(c, k, true); }

/* ------------------------------------------------------- per-channel affine */

int64_t be_work_nchw_channels(const BeConfig *cf, const Node *n) { return chw(&n->shape, 0); }

/* y = x * s[c] + t[c] over channel planes; batchnorm derives s and t from
   its statistics (once per channel per call: negligible). */
void be_emit_nchw_affine(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int64_t HW = shape_numel(&n->shape) / chw(&n->shape, 0);
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "ch");
  LLVMValueRef s, t;
  if (n->op == OP_BATCHNORM) {
    LLVMValueRef var = be_ld(c, k->par[P_VAR], it.iv);
    LLVMValueRef rstd = be_fdiv(c, be_f32(c, 1),
                                be_fcall1(c, "llvm.sqrt", be_fadd(c, var, be_f32(c, n->attr.eps))));
    s = be_fmul(c, be_ld(c, k->par[P_WEIGHT], it.iv), rstd);
    t = be_fsub(c, be_ld(c, k->par[P_BIAS], it.iv), be_fmul(c, be_ld(c, k->par[P_MEAN], it.iv), s));
  } else {
    s = be_ld(c, k->par[P_SCALE], it.iv);
    t = be_ld(c, k->par[P_SHIFT], it.iv);
  }
  LLVMValueRef base = be_mulk(c, it.iv, HW);
  BeLoop i;
  be_for(c, &i, be_i64(c, 0), be_i64(c, HW), "i");
  LLVMValueRef idx = be_add(c, base, i.iv);
  LLVMValueRef v = be_fmuladd(c, be_ld(c, k->in[0], idx), s, t);
  be_st(c, k->out, idx, epi_value(c, k, v, idx));
  be_for_end(c, &i);
  be_for_end(c, &it);
}

/* -------------------------------------------------------------- elementwise */

int64_t be_work_chunks(const BeConfig *cf, const Node *n) {
  return (shape_numel(&n->shape) + BE_CHUNK - 1) / BE_CHUNK;
}

void be_emit_eltwise(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int64_t N = shape_numel(&n->shape);
  LLVMValueRef e0 = be_mulk(c, k->lo, BE_CHUNK);
  LLVMValueRef e1 = be_smin(c, be_mulk(c, k->hi, BE_CHUNK), be_i64(c, N));
  BeLoop i;
  be_for(c, &i, e0, e1, "i");
  LLVMValueRef v = be_ld(c, k->in[0], i.iv);
  Act act = ir_node_act(n); /* an activation op's own activation */
  v = be_act(c, &act, v);
  switch (n->op) {
  case OP_SCALE:
    v = be_fmul(c, v, be_f32(c, n->attr.scale));
    break;
  case OP_MUL: /* inputs of one shape (be_mul_same_shape) */
    v = be_fmul(c, v, be_ld(c, k->in[1], i.iv));
    break;
  case OP_ADD:
  case OP_MEAN:
    for (int j = 1; j < n->nin; j++)
      v = be_fadd(c, v, be_ld(c, k->in[j], i.iv));
    if (n->op == OP_MEAN)
      v = be_fdiv(c, v, be_f32(c, (float)n->nin));
    break;
  default:
    break;
  }
  be_st(c, k->out, i.iv, epi_value(c, k, v, i.iv));
  be_for_end(c, &i);
}

/* ---------------------------------------------------------------------- mul */

bool be_mul_same_shape(const BeConfig *cf, const Node *n) {
  return shape_eq(&n->in[0]->shape, &n->in[1]->shape);
}

/* The input of mul n that has n's shape (the other holds one value per
   channel). */
int be_mul_big_input(const Node *n) { return shape_eq(&n->in[0]->shape, &n->shape) ? 0 : 1; }

/* mul with one value per channel (squeeze-excitation's gate, a layer
   scale): one channel plane per item, times its channel's value. */
void be_emit_nchw_mul_channels(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int big = be_mul_big_input(n);
  int64_t HW = shape_numel(&n->shape) / chw(&n->shape, 0);
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "ch");
  LLVMValueRef gate = be_ld(c, k->in[1 - big], it.iv);
  LLVMValueRef base = be_mulk(c, it.iv, HW);
  BeLoop i;
  be_for(c, &i, be_i64(c, 0), be_i64(c, HW), "i");
  LLVMValueRef idx = be_add(c, base, i.iv);
  LLVMValueRef v = be_fmul(c, be_ld(c, k->in[big], idx), gate);
  be_st(c, k->out, idx, epi_value(c, k, v, idx));
  be_for_end(c, &i);
  be_for_end(c, &it);
}

/* ---------------------------------------------------------------- parameter */

/* A parameter op's tensor, copied from the weights into its output (a
   chunk of BE_CHUNK values per item). Passes fold the usual one, a layer
   scale, into a scale-shift; this runs at -O0 and for the others. */
void be_emit_nchw_parameter(BeCtx *c, KArgs *k) {
  int64_t N = shape_numel(&k->n->shape);
  LLVMValueRef e0 = be_mulk(c, k->lo, BE_CHUNK);
  LLVMValueRef e1 = be_smin(c, be_mulk(c, k->hi, BE_CHUNK), be_i64(c, N));
  BeLoop i;
  be_for(c, &i, e0, e1, "i");
  be_st(c, k->out, i.iv, be_ld(c, k->par[P_WEIGHT], i.iv));
  be_for_end(c, &i);
}

/* ---------------------------------------------------------------- layernorm */

int64_t be_work_nchw_pixel_vectors(const BeConfig *cf, const Node *n) {
  int64_t C = chw(&n->shape, 0);
  return be_cdiv(shape_numel(&n->shape) / C, 16);
}

/* LayerNorm of the m (<= 16) pixels from p0, one per lane: three passes
   over the channels (mean; mean of squared deviations, as PyTorch's biased
   variance; normalize, scale by weight, add bias). */
static void layernorm_pixels(BeCtx *c, KArgs *k, LLVMValueRef p0, int m) {
  const Node *n = k->n;
  int64_t C = chw(&n->shape, 0), HW = shape_numel(&n->shape) / C;
  LLVMValueRef acc = be_var(c, c->t_v16, "acc");
  LLVMValueRef invc = be_vsplat(c, be_f32(c, 1.0f / (float)C));
  LLVMBuildStore(c->b, LLVMConstNull(c->t_v16), acc);
  BeLoop l1;
  be_for(c, &l1, be_i64(c, 0), be_i64(c, C), "c");
  LLVMValueRef xv = be_vld_masked(c, k->in[0], be_add(c, be_mulk(c, l1.iv, HW), p0), m);
  LLVMBuildStore(c->b, be_fadd(c, LLVMBuildLoad2(c->b, c->t_v16, acc, ""), xv), acc);
  be_for_end(c, &l1);
  LLVMValueRef mean = be_fmul(c, LLVMBuildLoad2(c->b, c->t_v16, acc, ""), invc);
  LLVMBuildStore(c->b, LLVMConstNull(c->t_v16), acc);
  BeLoop l2;
  be_for(c, &l2, be_i64(c, 0), be_i64(c, C), "c");
  LLVMValueRef d =
      be_fsub(c, be_vld_masked(c, k->in[0], be_add(c, be_mulk(c, l2.iv, HW), p0), m), mean);
  LLVMBuildStore(c->b, be_fmuladd(c, d, d, LLVMBuildLoad2(c->b, c->t_v16, acc, "")), acc);
  be_for_end(c, &l2);
  LLVMValueRef var = be_fmul(c, LLVMBuildLoad2(c->b, c->t_v16, acc, ""), invc);
  LLVMValueRef rstd =
      be_fdiv(c, be_vsplat(c, be_f32(c, 1.0f)),
              be_fcall1(c, "llvm.sqrt", be_fadd(c, var, be_vsplat(c, be_f32(c, n->attr.eps)))));
  BeLoop l3;
  be_for(c, &l3, be_i64(c, 0), be_i64(c, C), "c");
  LLVMValueRef idx = be_add(c, be_mulk(c, l3.iv, HW), p0);
  LLVMValueRef y = be_fmul(c, be_fsub(c, be_vld_masked(c, k->in[0], idx, m), mean), rstd);
  y = be_fmuladd(c, y, be_vbcast(c, k->par[P_WEIGHT], l3.iv), be_vbcast(c, k->par[P_BIAS], l3.iv));
  be_vst_masked(c, k->out, idx, y, m);
  be_for_end(c, &l3);
}

/* LayerNorm over the channels of each pixel (ConvNeXt's LayerNorm2d; over
   the features of a vector): one vector of 16 pixels per item, the last
   one of a plane masked. */
void be_emit_nchw_layernorm(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int64_t HW = shape_numel(&n->shape) / chw(&n->shape, 0), NV = be_cdiv(HW, 16);
  int tail = (int)(HW - (NV - 1) * 16);
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "pv");
  LLVMValueRef p0 = be_mulk(c, it.iv, 16);
  if (tail == 16 || NV == 1) {
    layernorm_pixels(c, k, p0, tail);
  } else {
    BeIf last;
    be_if(c, &last, LLVMBuildICmp(c->b, LLVMIntEQ, it.iv, be_i64(c, NV - 1), ""));
    layernorm_pixels(c, k, p0, tail);
    be_else(c, &last);
    layernorm_pixels(c, k, p0, 16);
    be_endif(c, &last);
  }
  be_for_end(c, &it);
}

/* ---------------------------------------------------------------------- lrn */

/* torch.nn.LocalResponseNorm: b_c = a_c / (k + alpha/n * sum a_c'^2)^beta
   over c' in [c - n/2, c + (n-1)/2] clipped to the channels; the divisor
   is n even where the window is clipped. The sum of squares accumulates in
   the output plane itself. */
void be_emit_nchw_lrn(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  const Attrs *a = &n->attr;
  int64_t C = chw(&n->shape, 0), HW = shape_numel(&n->shape) / C;
  int64_t size = a->lrn_size;
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "ch");
  LLVMValueRef base = be_mulk(c, it.iv, HW);
  fill_range(c, k->out, base, HW, be_f32(c, 0));
  LLVMValueRef c0 = be_smax(c, be_addk(c, it.iv, -(size / 2)), be_i64(c, 0));
  LLVMValueRef c1 = be_smin(c, be_addk(c, it.iv, (size - 1) / 2 + 1), be_i64(c, C));
  BeLoop cc;
  be_for(c, &cc, c0, c1, "cw");
  LLVMValueRef xb = be_mulk(c, cc.iv, HW);
  BeLoop i;
  be_for(c, &i, be_i64(c, 0), be_i64(c, HW), "i");
  LLVMValueRef xv = be_ld(c, k->in[0], be_add(c, xb, i.iv));
  LLVMValueRef yi = be_add(c, base, i.iv);
  be_st(c, k->out, yi, be_fmuladd(c, xv, xv, be_ld(c, k->out, yi)));
  be_for_end(c, &i);
  be_for_end(c, &cc);
  BeLoop j;
  be_for(c, &j, be_i64(c, 0), be_i64(c, HW), "j");
  LLVMValueRef yi2 = be_add(c, base, j.iv);
  LLVMValueRef d =
      be_fmuladd(c, be_ld(c, k->out, yi2), be_f32(c, a->alpha / (float)size), be_f32(c, a->k));
  d = be_fcall2(c, "llvm.pow", d, be_f32(c, a->beta));
  LLVMValueRef v = be_fdiv(c, be_ld(c, k->in[0], yi2), d);
  be_st(c, k->out, yi2, epi_value(c, k, v, yi2));
  be_for_end(c, &j);
  be_for_end(c, &it);
}

/* ------------------------------------------------------------------- concat */

/* Copies channel range [lo, hi) of the output from whichever inputs hold it:
   for input i (channels [off, off + C_i)), the overlap with [lo, hi) is one
   contiguous block in both tensors. Skipped when the input already lives in
   its slice (concat elimination). */
void be_emit_nchw_concat(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int64_t HW = shape_numel(&n->shape) / chw(&n->shape, 0);
  int64_t off = 0;
  for (int i = 0; i < n->nin; i++) {
    int64_t Ci = chw(&n->in[i]->shape, 0);
    LLVMValueRef a = be_smax(c, k->lo, be_i64(c, off));
    LLVMValueRef b = be_smin(c, k->hi, be_i64(c, off + Ci));
    LLVMValueRef dst = be_fptr(c, k->out, be_mulk(c, a, HW));
    LLVMValueRef src = be_fptr(c, k->in[i], be_mulk(c, be_addk(c, a, -off), HW));
    LLVMValueRef go = LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, a, b, ""),
                                   LLVMBuildICmp(c->b, LLVMIntNE, dst, src, ""), "");
    BeIf f;
    be_if(c, &f, go);
    LLVMValueRef bytes = be_mulk(c, be_sub(c, b, a), HW * 4);
    LLVMBuildMemMove(c->b, dst, 4, src, 4, bytes);
    be_endif(c, &f);
    off += Ci;
  }
}

/* ---------------------------------------------------------- channel shuffle */

/* Output channel o = j*g + i is input channel i*(C/g) + j: one plane copied
   per item. */
void be_emit_nchw_channel_shuffle(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int64_t C = n->shape.d[0], HW = n->shape.d[1] * n->shape.d[2], G = n->attr.groups;
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "ch");
  LLVMValueRef j = be_sdiv(c, it.iv, be_i64(c, G));
  LLVMValueRef i = be_sub(c, it.iv, be_mulk(c, j, G));
  LLVMValueRef src = be_add(c, be_mulk(c, i, C / G), j);
  LLVMBuildMemCpy(c->b, be_fptr(c, k->out, be_mulk(c, it.iv, HW)), 4,
                  be_fptr(c, k->in[0], be_mulk(c, src, HW)), 4, be_i64(c, HW * 4));
  be_for_end(c, &it);
}

/* ------------------------------------------------------------------ softmax */

int64_t be_work_nchw_positions(const BeConfig *cf, const Node *n) {
  return shape_numel(&n->shape) / chw(&n->shape, 0);
}

/* Softmax over channels at each spatial position (over the features for a
   rank-1 tensor): max, exp(x - max) stored, sum, scale by 1/sum. */
void be_emit_nchw_softmax(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int64_t C = chw(&n->shape, 0), HW = shape_numel(&n->shape) / C;
  LLVMValueRef mx = be_var(c, c->t_f32, "max");
  LLVMValueRef sum = be_var(c, c->t_f32, "sum");
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "p");
  LLVMBuildStore(c->b, be_f32(c, -INFINITY), mx);
  LLVMBuildStore(c->b, be_f32(c, 0), sum);
  BeLoop i;
  be_for(c, &i, be_i64(c, 0), be_i64(c, C), "c");
  LLVMValueRef idx = be_add(c, it.iv, be_mulk(c, i.iv, HW));
  LLVMBuildStore(c->b,
                 be_fmax_r(c, LLVMBuildLoad2(c->b, c->t_f32, mx, ""), be_ld(c, k->in[0], idx)), mx);
  be_for_end(c, &i);
  LLVMValueRef m = LLVMBuildLoad2(c->b, c->t_f32, mx, "");
  BeLoop j;
  be_for(c, &j, be_i64(c, 0), be_i64(c, C), "c");
  LLVMValueRef jdx = be_add(c, it.iv, be_mulk(c, j.iv, HW));
  LLVMValueRef e = be_fcall1(c, "llvm.exp", be_fsub(c, be_ld(c, k->in[0], jdx), m));
  be_st(c, k->out, jdx, e);
  LLVMBuildStore(c->b, be_fadd_r(c, LLVMBuildLoad2(c->b, c->t_f32, sum, ""), e), sum);
  be_for_end(c, &j);
  LLVMValueRef inv = be_fdiv(c, be_f32(c, 1), LLVMBuildLoad2(c->b, c->t_f32, sum, ""));
  BeLoop l;
  be_for(c, &l, be_i64(c, 0), be_i64(c, C), "c");
  LLVMValueRef ldx = be_add(c, it.iv, be_mulk(c, l.iv, HW));
  be_st(c, k->out, ldx, be_fmul(c, be_ld(c, k->out, ldx), inv));
  be_for_end(c, &l);
  be_for_end(c, &it);
}

/*
 * kernels.c: one specialized kernel function per op instance.
 *
 * Every kernel has the runtime's signature void(ptr ptrs, i64 lo, i64 hi)
 * (cnnrt_kernel_fn): it loads its tensor addresses from ptrs (output, inputs
 * in Node.in order, parameters in slot order) and calls an always-inline
 * body whose pointer arguments carry noalias where the memory plan makes
 * that true; the inliner turns those into scoped alias metadata, so the
 * vectorizer needs no runtime overlap checks. [lo, hi) is a range of work
 * items; each op defines its items so the runtime can split them across
 * threads in contiguous chunks:
 *
 *   conv2d, maxpool, avgpool,        one output row of one channel
 *   adaptive_avgpool                 (item = c * OH + oh); a pointwise
 *                                    conv: one channel plane, or, when it
 *                                    is ungrouped, unsplit and reads an
 *                                    NCHW input, (tile of output channels)
 *                                    x (chunk of pixels) of the register-
 *                                    tiled GEMM of gemm1x1.c
 *   batchnorm, scaleshift, lrn,      one channel plane
 *   concat
 *   linear                           one output feature
 *   relu, add, mean, scale           a chunk of BE_CHUNK elements
 *   softmax                          one spatial position (all channels)
 *
 * Shapes, strides, padding and dilation are compile-time constants. The
 * NCHW convolution is a direct convolution written as saxpys: for an output
 * row, for each (input channel, kh, kw) whose input row is inside the image,
 * a contiguous run of output columns (the valid range for that kw comes from
 * a constant table computed here, so the inner loop has no bounds checks) is
 * updated with w * x; LLVM vectorizes that loop at -O2. Rows start from the
 * bias and the epilogue (residual add, ReLU) runs while the row is in L1.
 * Pooling uses the same row/valid-range structure.
 *
 * Dispatch is a table by (op, layout): blocked layouts (NCHW16C) and
 * register-tiled convolution kernels are added as new rows with their own
 * work definition, without touching the others. Kernels whose key (op,
 * shapes, attributes, epilogue, aliasing) is equal are emitted once.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"

#define BE_CHUNK 4096 /* elements per work item of the elementwise ops */
#define BE_MAX_PTRS BE_MAX_KERNEL_PTRS

/* Work items of n's kernel (the tile plans of some conv kernels depend on
   the target). */
typedef int64_t (*WorkFn)(const BeCtx *c, const Node *n);
typedef void (*EmitFn)(BeCtx *c, KArgs *k);

typedef struct {
  Op op;
  Layout layout;
  WorkFn work;
  EmitFn emit;
  bool epilogue; /* supports Node.epi */
} KernelImpl;

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
  if (k->n->epi.act == ACT_RELU)
    v = be_relu(c, v);
  return v;
}

static bool has_epi(const Node *n) { return n->epi.residual >= 0 || n->epi.act != ACT_NONE; }

/* The epilogue over out[start, start + len), in place. */
static void epi_range_at(BeCtx *c, KArgs *k, LLVMValueRef out, LLVMValueRef start, int64_t len) {
  if (!has_epi(k->n))
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

/* ------------------------------------------------------------------- conv2d */

void be_split_out(BeCtx *c, KArgs *k, LLVMValueRef idx, int64_t unit, LLVMValueRef *base,
                  LLVMValueRef *local) {
  *base = k->out;
  *local = idx;
  for (int s = 0; s < k->nseg; s++) {
    int64_t first = k->seg_begin[s] / unit;
    LLVMValueRef in_seg = LLVMBuildICmp(c->b, LLVMIntSGE, idx, be_i64(c, first), "");
    LLVMValueRef l = be_addk(c, idx, -first);
    *base = s == 0 ? k->seg[0] : LLVMBuildSelect(c->b, in_seg, k->seg[s], *base, "");
    *local = s == 0 ? l : LLVMBuildSelect(c->b, in_seg, l, *local, "");
  }
}

static int64_t work_rows(const BeCtx *c, const Node *n) { return n->shape.d[0] * n->shape.d[1]; }

/* A 1x1, stride-1, unpadded convolution sees each channel plane as one
   long row: y[oc][p] += w[oc][ic] * x[ic][p] over all H*W pixels, which
   keeps 7x7 and 14x14 layers vectorizing well. */
static bool conv_is_pointwise(const Node *n) {
  const Attrs *a = &n->attr;
  return a->kernel[0] == 1 && a->kernel[1] == 1 && a->stride[0] == 1 && a->stride[1] == 1 &&
         !a->pad[0] && !a->pad[1] && !a->pad[2] && !a->pad[3];
}

static int64_t work_conv(const BeCtx *c, const Node *n) {
  return conv_is_pointwise(n) ? n->shape.d[0] : work_rows(c, n);
}

static void emit_conv2d(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  const Attrs *a = &n->attr;
  const Shape *is = &n->in[0]->shape;
  int64_t C = is->d[0], IH = is->d[1], IW = is->d[2];
  int64_t OC = n->shape.d[0], OH = n->shape.d[1], OW = n->shape.d[2];
  int64_t KH = a->kernel[0], KW = a->kernel[1];
  int64_t G = a->groups, ICg = C / G, OCg = OC / G;
  if (conv_is_pointwise(n)) {
    IW = OW = IH * IW; /* one row per plane (must match work_conv) */
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
    LLVMValueRef wv = be_ld(c, w, be_add(c, wrow, kw.iv));
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
  be_for_end(c, &it);
}

/* ------------------------------------------------------------------ pooling */

static void emit_maxpool(BeCtx *c, KArgs *k) {
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
static void emit_avgpool(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  const Attrs *a = &n->attr;
  const Shape *is = &n->in[0]->shape;
  int64_t IH = is->d[1], IW = is->d[2];
  int64_t OH = n->shape.d[1], OW = n->shape.d[2];
  int64_t KH = a->kernel[0], KW = a->kernel[1];
  int64_t sh = a->stride[0], sw = a->stride[1];
  int64_t pt = a->pad[0], pl = a->pad[1], pb = a->pad[2], pr = a->pad[3];
  bool cip = a->count_include_pad;

  int64_t *lo = malloc(sizeof(int64_t) * (2 * (size_t)KW + (size_t)OW));
  int64_t *hi = lo + KW, *wdiv = hi + KW;
  valid_cols(IW, OW, KW, sw, pl, 1, lo, hi);
  for (int64_t ow = 0; ow < OW; ow++) {
    int64_t w0 = ow * sw - pl, w1 = w0 + KW;
    if (w1 > IW + pr)
      w1 = IW + pr;
    int64_t pool = w1 - w0;
    if (w0 < 0)
      w0 = 0;
    if (w1 > IW)
      w1 = IW;
    wdiv[ow] = cip ? pool : w1 - w0;
  }
  LLVMValueRef tlo = be_table_i64(c, "avgpool.ow_lo", lo, (int)KW);
  LLVMValueRef thi = be_table_i64(c, "avgpool.ow_hi", hi, (int)KW);
  LLVMValueRef tdiv = be_table_i64(c, "avgpool.wdiv", wdiv, (int)OW);
  free(lo);

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

/* Adaptive average pooling: bin i of n over a length L is
   [floor(i*L/n), ceil((i+1)*L/n)). The column bins as two constant tables
   (starts, ends), shared by the NCHW and the blocked kernel. */
void be_adaptive_bins(BeCtx *c, int64_t L, int64_t n, LLVMValueRef *starts, LLVMValueRef *ends) {
  int64_t *ws = malloc(sizeof(int64_t) * 2 * (size_t)n), *we = ws + n;
  for (int64_t i = 0; i < n; i++) {
    ws[i] = i * L / n;
    we[i] = ((i + 1) * L + n - 1) / n;
  }
  *starts = be_table_i64(c, "apool.ws", ws, (int)n);
  *ends = be_table_i64(c, "apool.we", we, (int)n);
  free(ws);
}

static void emit_adaptive_avgpool(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  const Shape *is = &n->in[0]->shape;
  int64_t IH = is->d[1], IW = is->d[2];
  int64_t OH = n->shape.d[1], OW = n->shape.d[2];

  LLVMValueRef tws, twe;
  be_adaptive_bins(c, IW, OW, &tws, &twe);

  LLVMValueRef sum = be_var(c, c->t_f32, "sum");
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
  LLVMBuildStore(c->b, be_f32(c, 0), sum);
  BeLoop ih;
  be_for(c, &ih, h0, h1, "ih");
  LLVMValueRef xrow = be_add(c, xplane, be_mulk(c, ih.iv, IW));
  BeLoop iw;
  be_for(c, &iw, w0, w1, "iw");
  LLVMValueRef s = LLVMBuildLoad2(c->b, c->t_f32, sum, "");
  LLVMBuildStore(c->b, be_fadd(c, s, be_ld(c, k->in[0], be_add(c, xrow, iw.iv))), sum);
  be_for_end(c, &iw);
  be_for_end(c, &ih);
  LLVMValueRef cnt = be_mul(c, be_sub(c, h1, h0), be_sub(c, w1, w0));
  LLVMValueRef v = be_fdiv(c, LLVMBuildLoad2(c->b, c->t_f32, sum, ""), be_sitofp(c, cnt));
  LLVMValueRef yi = be_add(c, yrow, ow.iv);
  be_st(c, k->out, yi, epi_value(c, k, v, yi));
  be_for_end(c, &ow);
  be_for_end(c, &it);
}

/* ------------------------------------------------------- per-channel affine */

static int64_t work_channels(const BeCtx *c, const Node *n) { return chw(&n->shape, 0); }

/* y = x * s[c] + t[c] over channel planes; batchnorm derives s and t from
   its statistics (once per channel per call: negligible). */
static void emit_affine(BeCtx *c, KArgs *k) {
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

static int64_t work_chunks(const BeCtx *c, const Node *n) {
  return (shape_numel(&n->shape) + BE_CHUNK - 1) / BE_CHUNK;
}

static void emit_eltwise(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int64_t N = shape_numel(&n->shape);
  LLVMValueRef e0 = be_mulk(c, k->lo, BE_CHUNK);
  LLVMValueRef e1 = be_smin(c, be_mulk(c, k->hi, BE_CHUNK), be_i64(c, N));
  BeLoop i;
  be_for(c, &i, e0, e1, "i");
  LLVMValueRef v = be_ld(c, k->in[0], i.iv);
  switch (n->op) {
  case OP_RELU:
    v = be_relu(c, v);
    break;
  case OP_SCALE:
    v = be_fmul(c, v, be_f32(c, n->attr.scale));
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

/* ---------------------------------------------------------------------- lrn */

/* torch.nn.LocalResponseNorm: b_c = a_c / (k + alpha/n * sum a_c'^2)^beta
   over c' in [c - n/2, c + (n-1)/2] clipped to the channels; the divisor
   is n even where the window is clipped. The sum of squares accumulates in
   the output plane itself. */
static void emit_lrn(BeCtx *c, KArgs *k) {
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

/* ------------------------------------------------------------------- linear */

static int64_t work_features(const BeCtx *c, const Node *n) { return n->shape.d[0]; }

/* A GEMV: each work item is one output feature, a dot product of one weight
   row with the input, so the weights stream through once. */
static void emit_linear(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  int64_t K = shape_numel(&n->in[0]->shape);
  LLVMValueRef bias = n->nparams > P_BIAS ? k->par[P_BIAS] : NULL;
  LLVMValueRef acc = be_var(c, c->t_f32, "acc");
  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "j");
  LLVMBuildStore(c->b, be_f32(c, 0), acc);
  LLVMValueRef wrow = be_mulk(c, it.iv, K);
  BeLoop i;
  be_for(c, &i, be_i64(c, 0), be_i64(c, K), "k");
  LLVMValueRef p =
      be_fmul(c, be_ld(c, k->par[P_WEIGHT], be_add(c, wrow, i.iv)), be_ld(c, k->in[0], i.iv));
  LLVMBuildStore(c->b, be_fadd_r(c, LLVMBuildLoad2(c->b, c->t_f32, acc, ""), p), acc);
  be_for_end(c, &i);
  LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_f32, acc, "");
  if (bias)
    v = be_fadd(c, v, be_ld(c, bias, it.iv));
  be_st(c, k->out, it.iv, epi_value(c, k, v, it.iv));
  be_for_end(c, &it);
}

/* ------------------------------------------------------------------- concat */

/* Copies channel range [lo, hi) of the output from whichever inputs hold it:
   for input i (channels [off, off + C_i)), the overlap with [lo, hi) is one
   contiguous block in both tensors. Skipped when the input already lives in
   its slice (concat elimination). */
static void emit_concat(BeCtx *c, KArgs *k) {
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

/* ------------------------------------------------------------------ softmax */

static int64_t work_positions(const BeCtx *c, const Node *n) {
  return shape_numel(&n->shape) / chw(&n->shape, 0);
}

/* Softmax over channels at each spatial position (over the features for a
   rank-1 tensor): max, exp(x - max) stored, sum, scale by 1/sum. */
static void emit_softmax(BeCtx *c, KArgs *k) {
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

/* ----------------------------------------------------------------- dispatch */

static const KernelImpl impls[] = {
    {OP_CONV2D, LAYOUT_NCHW, work_conv, emit_conv2d, true},
    {OP_MAXPOOL, LAYOUT_NCHW, work_rows, emit_maxpool, true},
    {OP_AVGPOOL, LAYOUT_NCHW, work_rows, emit_avgpool, true},
    {OP_ADAPTIVE_AVGPOOL, LAYOUT_NCHW, work_rows, emit_adaptive_avgpool, true},
    {OP_BATCHNORM, LAYOUT_NCHW, work_channels, emit_affine, true},
    {OP_SCALESHIFT, LAYOUT_NCHW, work_channels, emit_affine, true},
    {OP_RELU, LAYOUT_NCHW, work_chunks, emit_eltwise, true},
    {OP_SCALE, LAYOUT_NCHW, work_chunks, emit_eltwise, true},
    {OP_ADD, LAYOUT_NCHW, work_chunks, emit_eltwise, true},
    {OP_MEAN, LAYOUT_NCHW, work_chunks, emit_eltwise, true},
    {OP_LRN, LAYOUT_NCHW, work_channels, emit_lrn, true},
    {OP_LINEAR, LAYOUT_NCHW, work_features, emit_linear, true},
    {OP_CONCAT, LAYOUT_NCHW, work_channels, emit_concat, false},
    {OP_SOFTMAX, LAYOUT_NCHW, work_positions, emit_softmax, false},
    {OP_REORDER, LAYOUT_NCHW, be_work_reorder, be_emit_reorder, false},
    /* The channel-blocked layout (blocked.c); elementwise ops do not care. */
    {OP_CONV2D, LAYOUT_NCHW16C, be_work_conv_blocked, be_emit_conv_blocked, true},
    {OP_MAXPOOL, LAYOUT_NCHW16C, be_work_blocks_rows, be_emit_pool_blocked, true},
    {OP_AVGPOOL, LAYOUT_NCHW16C, be_work_blocks_rows, be_emit_pool_blocked, true},
    {OP_ADAPTIVE_AVGPOOL, LAYOUT_NCHW16C, be_work_blocks_rows, be_emit_adaptive_avgpool_blocked,
     true},
    {OP_BATCHNORM, LAYOUT_NCHW16C, be_work_blocks, be_emit_affine_blocked, true},
    {OP_SCALESHIFT, LAYOUT_NCHW16C, be_work_blocks, be_emit_affine_blocked, true},
    {OP_RELU, LAYOUT_NCHW16C, work_chunks, emit_eltwise, true},
    {OP_SCALE, LAYOUT_NCHW16C, work_chunks, emit_eltwise, true},
    {OP_ADD, LAYOUT_NCHW16C, work_chunks, emit_eltwise, true},
    {OP_MEAN, LAYOUT_NCHW16C, work_chunks, emit_eltwise, true},
    {OP_CONCAT, LAYOUT_NCHW16C, be_work_blocks, be_emit_concat_blocked, false},
    {OP_REORDER, LAYOUT_NCHW16C, be_work_reorder, be_emit_reorder, false},
};

/* The special conv kernels, each for the convs its predicate accepts;
   every other conv takes the generic kernel of its layout (impls). */
static const struct {
  bool (*accepts)(const Node *n);
  KernelImpl impl;
} conv_impls[] = {
    /* 1x1 stride 1, NCHW in and out: a register-tiled GEMM (gemm1x1.c) */
    {be_conv_gemm1x1, {OP_CONV2D, LAYOUT_NCHW, be_work_conv_gemm1x1, be_emit_conv_gemm1x1, true}},
    /* groups of 1-8 channels on NCHW16c (grouped.c) */
    {be_conv_grouped_blocked,
     {OP_CONV2D, LAYOUT_NCHW16C, be_work_conv_grouped, be_emit_conv_grouped, true}},
    /* 3x3 stride 1 by Winograd, when enabled (winograd.c) */
    {be_winograd_use,
     {OP_CONV2D, LAYOUT_NCHW16C, be_work_conv_winograd, be_emit_conv_winograd, true}},
};

static const KernelImpl *find_impl(const Node *n) {
  if (n->op == OP_CONV2D)
    for (size_t i = 0; i < sizeof conv_impls / sizeof conv_impls[0]; i++)
      if (conv_impls[i].accepts(n))
        return &conv_impls[i].impl;
  for (size_t i = 0; i < sizeof impls / sizeof impls[0]; i++)
    if (impls[i].op == n->op && impls[i].layout == n->layout)
      return &impls[i];
  return NULL;
}

/* ------------------------------------------------------------ kernel cache */

typedef struct BeKernelCache {
  struct BeKernelCache *next;
  char *key;
  BeKernel k;
} BeKernelCache;

static void shape_key(FILE *f, const Shape *s) {
  fprintf(f, "[");
  for (int i = 0; i < s->rank; i++)
    fprintf(f, "%s%lld", i ? "x" : "", (long long)s->d[i]);
  fprintf(f, "]");
}

/* Everything the generated code of n depends on: not its name, not its
   tensors' addresses (those come through ptrs). */
static char *kernel_key(const Node *n, BeAlias alias, int inplace, Node **segs, int nseg) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  const Attrs *a = &n->attr;
  fprintf(f, "%s l%d al%d ip%d out", ir_ops[n->op].name, (int)n->layout, (int)alias, inplace);
  shape_key(f, &n->shape);
  for (int i = 0; i < n->nin; i++) {
    fprintf(f, " in%d", (int)n->in[i]->layout);
    shape_key(f, &n->in[i]->shape);
  }
  for (int i = 0; i < nseg; i++)
    fprintf(f, " seg%lld+%lld", (long long)segs[i]->attr.slice_begin,
            (long long)segs[i]->shape.d[0]);
  fprintf(f, " p");
  for (int i = 0; i < n->nparams; i++)
    fprintf(f, "%d", n->params[i] != NULL);
  fprintf(f,
          " oc%lld k%lldx%lld s%lldx%lld p%lld,%lld,%lld,%lld d%lldx%lld g%lld "
          "b%d eps%a cm%d cip%d o%lldx%lld lrn%lld %a %a %a of%lld ax%d sc%a "
          "epi%d,%d",
          (long long)a->out_channels, (long long)a->kernel[0], (long long)a->kernel[1],
          (long long)a->stride[0], (long long)a->stride[1], (long long)a->pad[0],
          (long long)a->pad[1], (long long)a->pad[2], (long long)a->pad[3],
          (long long)a->dilation[0], (long long)a->dilation[1], (long long)a->groups, a->has_bias,
          (double)a->eps, a->ceil_mode, a->count_include_pad, (long long)a->out_hw[0],
          (long long)a->out_hw[1], (long long)a->lrn_size, (double)a->alpha, (double)a->beta,
          (double)a->k, (long long)a->out_features, a->axis, (double)a->scale, n->epi.residual,
          (int)n->epi.act);
  fclose(f);
  return buf;
}

void be_kernel_cache_free(BeCtx *c) {
  for (BeKernelCache *e = c->cache, *nx; e; e = nx) {
    nx = e->next;
    free(e->key);
    free(e);
  }
  c->cache = NULL;
}

/* ------------------------------------------------------------- kernel build */

static LLVMValueRef build_kernel(BeCtx *c, const Node *n, const KernelImpl *impl, BeAlias alias,
                                 int inplace, Node **segs, int nseg) {
  int nfix = 1 + n->nin + n->nparams;
  int np = nfix + nseg;
  char name[256];
  snprintf(name, sizeof name, "%s.%s", ir_ops[n->op].name, n->name);

  /* The body: void(ptr out, ptr in..., ptr param..., i64 lo, i64 hi). */
  LLVMTypeRef bt[BE_MAX_PTRS + 2];
  for (int i = 0; i < np; i++)
    bt[i] = c->t_ptr;
  bt[np] = bt[np + 1] = c->t_i64;
  LLVMTypeRef body_ty = LLVMFunctionType(c->t_void, bt, (unsigned)np + 2, 0);
  char bname[280];
  snprintf(bname, sizeof bname, "%s.body", name);
  LLVMValueRef body = LLVMAddFunction(c->mod, bname, body_ty);
  LLVMSetLinkage(body, LLVMInternalLinkage);
  be_func_attrs(c, body);
  be_add_enum_attr(c, body, LLVMAttributeFunctionIndex, "alwaysinline");
  for (int i = 0; i < np; i++) {
    bool is_param = i > n->nin && i < nfix;
    bool is_out = i == 0, is_in = i >= 1 && i <= n->nin;
    bool noalias =
        is_param || (alias == BE_DISJOINT) || (alias == BE_INPLACE && is_in && i - 1 != inplace);
    if (noalias)
      be_add_enum_attr(c, body, (unsigned)i + 1, "noalias");
    if (is_param || (is_in && alias != BE_OVERLAP && !(alias == BE_INPLACE && i - 1 == inplace)))
      be_add_enum_attr(c, body, (unsigned)i + 1, "readonly");
    be_add_enum_attr(c, body, (unsigned)i + 1, "nocapture");
    (void)is_out;
  }

  LLVMValueRef in[BE_MAX_PTRS], par[IR_MAX_PARAMS], seg[BE_MAX_PTRS];
  int64_t seg_begin[BE_MAX_PTRS], seg_count[BE_MAX_PTRS];
  be_func_begin(c, body);
  KArgs k = {.n = n,
             .in = in,
             .par = par,
             .nseg = nseg,
             .seg = seg,
             .seg_begin = seg_begin,
             .seg_count = seg_count};
  for (int s = 0; s < nseg; s++) {
    seg[s] = LLVMGetParam(body, (unsigned)(nfix + s));
    seg_begin[s] = segs[s]->attr.slice_begin;
    seg_count[s] = segs[s]->shape.d[0];
  }
  k.out = LLVMGetParam(body, 0);
  for (int i = 0; i < n->nin; i++)
    in[i] = LLVMGetParam(body, (unsigned)(1 + i));
  for (int i = 0; i < n->nparams; i++)
    par[i] = n->params[i] ? LLVMGetParam(body, (unsigned)(1 + n->nin + i)) : NULL;
  if (alias == BE_INPLACE)
    k.out = in[inplace]; /* one SSA value: the vectorizer sees distance 0 */
  k.res = n->epi.residual >= 0 ? in[n->epi.residual] : NULL;
  k.lo = LLVMGetParam(body, (unsigned)np);
  k.hi = LLVMGetParam(body, (unsigned)np + 1);
  impl->emit(c, &k);
  LLVMBuildRetVoid(c->b);

  /* The wrapper with the runtime's signature. */
  LLVMValueRef fn = LLVMAddFunction(c->mod, name, c->t_kernel);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  be_func_attrs(c, fn);
  be_func_begin(c, fn);
  LLVMValueRef ptrs = LLVMGetParam(fn, 0);
  LLVMValueRef args[BE_MAX_PTRS + 2];
  for (int i = 0; i < np; i++) {
    LLVMValueRef idx = be_i64(c, i);
    LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, c->t_ptr, ptrs, &idx, 1, "");
    args[i] = LLVMBuildLoad2(c->b, c->t_ptr, p, "");
  }
  args[np] = LLVMGetParam(fn, 1);
  args[np + 1] = LLVMGetParam(fn, 2);
  LLVMBuildCall2(c->b, body_ty, body, args, (unsigned)np + 2, "");
  LLVMBuildRetVoid(c->b);
  return fn;
}

bool be_kernel_for(BeCtx *c, const Graph *g, const Node *n, BeAlias alias, int inplace,
                   BeKernel *out, char *err, size_t errlen) {
  const KernelImpl *impl = find_impl(n);
  if (!impl) {
    snprintf(err, errlen, "no kernel for op '%s' in layout %d (node '%s')", ir_ops[n->op].name,
             (int)n->layout, n->name);
    return false;
  }
  if (has_epi(n) && !impl->epilogue) {
    snprintf(err, errlen, "op '%s' (node '%s') cannot apply a fused epilogue", ir_ops[n->op].name,
             n->name);
    return false;
  }
  if (n->epi.residual >= n->nin) {
    snprintf(err, errlen, "node '%s': epilogue residual %d is not an input", n->name,
             n->epi.residual);
    return false;
  }
  int nseg = 0;
  Node **segs = be_split_slices(g, n, &nseg);
  if (n->split && (nseg == 0 || n->op != OP_CONV2D || n->epi.residual >= 0)) {
    snprintf(err, errlen, "node '%s': a split %s must be a conv with slices and no residual",
             n->name, ir_ops[n->op].name);
    free(segs);
    return false;
  }
  if (1 + n->nin + n->nparams + nseg > BE_MAX_PTRS) {
    free(segs);
    snprintf(err, errlen, "node '%s' has too many inputs (%d)", n->name, n->nin);
    return false;
  }
  if (n->op == OP_CONV2D || n->op == OP_LINEAR) {
    if (!n->params[P_WEIGHT] || (n->attr.has_bias != (n->nparams > P_BIAS && n->params[P_BIAS]))) {
      snprintf(err, errlen, "node '%s': parameters do not match has_bias", n->name);
      free(segs);
      return false;
    }
  }
  char *key = kernel_key(n, alias, inplace, segs, nseg);
  for (BeKernelCache *e = c->cache; e; e = e->next)
    if (strcmp(e->key, key) == 0) {
      free(key);
      free(segs);
      *out = e->k;
      c->nshared++;
      return true;
    }
  BeKernelCache *e = calloc(1, sizeof *e);
  e->key = key;
  e->k.fn = build_kernel(c, n, impl, alias, inplace, segs, nseg);
  free(segs);
  e->k.work = impl->work(c, n);
  e->next = c->cache;
  c->cache = e;
  c->nkernels++;
  *out = e->k;
  return true;
}

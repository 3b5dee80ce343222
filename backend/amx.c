/*
 * amx.c: --precision=bf16 convolutions on Intel AMX tiles (AMX-BF16:
 * Sapphire Rapids and later), for targets whose features have +amx-tile
 * and +amx-bf16 (docs/precision.md). One tdpbf16ps multiplies a 16 x 32
 * bf16 tile by a 32 x 16 one into 16 x 16 fp32 sums: 8,192 multiply-adds,
 * 16 times an AVX-512 FMA's 512, at a sixteenth of its rate.
 *
 * An ungrouped conv, NCHW16c out, NCHW16c in (or NCHW with 16 channels
 * or more: a graph input), as an implicit GEMM: the rows of
 * a tile are output pixels, its columns 16 output channels, the sum runs
 * over the taps (kh, kw) and the input channels 32 at a time. Work item:
 * a band of R output rows and a group of G output-channel blocks.
 *
 *   1. convert: the input rows the band reads, fp32 -> bf16 (round to
 *      nearest even, vcvtneps2bf16), into a stack buffer of pixels with
 *      Cp = C rounded up to 32 channels each, zeros where the conv pads.
 *      The buffer is split into sh x sw phase planes (plane (a, b) holds
 *      the padded input pixels (sh*y + a, sw*x + b)), so the pixels a tap
 *      reads for consecutive output pixels are consecutive in a plane at
 *      any stride: tap (kh, kw) of output (r, ow) is pixel
 *      (r + kh*dh/sh) * Wq + ow + kw*dw/sw of plane (kh*dh%sh, kw*dw%sw).
 *   2. multiply: the band's output pixels flattened as q = r * Wq + ow
 *      (Wq = OW + (KW-1)*dw/sw, the columns ow >= OW are computed and
 *      dropped) are cut in tiles of 16; per pair of pixel tiles and pair of
 *      channel blocks, four accumulator tiles; per tap and 32 channels,
 *      two A tiles (a constant stride of Cp bf16 between rows: one pixel
 *      apart) and two B tiles of weights, four tdpbf16ps.
 *   3. epilogue: the accumulators stored to a stack buffer, then per valid
 *      pixel and block, bias, the fused residual add and activation in
 *      fp32, and the store into the NCHW16c output (or a split's slice).
 *
 * Weights (be_pack_amx): [OCB][KH*KW][Cp/32][16][16 oc][2], an input-
 * channel pair per output channel (AMX's "VNNI" order), zeros past C;
 * the blob rounds them to bf16 like every bf16 weight.
 *
 * The tile registers hold no state between kernels: each call loads the
 * tile configuration (ldtilecfg, eight 16 x 64-byte tiles) and releases
 * it at its end. Linux hands AMX's 8 KB of tile state to a process only
 * on request: the runtime asks once in cnn_create (cnnrt_uses_amx).
 */
#include <string.h>

#include "backend_internal.h"

#define AMX_BUF_BYTES (256 * 1024) /* the band buffer (stack) */
#define AMX_SLOTS 128              /* output pixels per band, about */
#define AMX_ITEMS 8                /* work items a layer aims for */

typedef struct {
  int64_t C, IH, IW, OC, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw;
  int64_t Cp, NKC, OCB, taps;
  int64_t Wq, R, Rq, plane, bufpx; /* plane width, band rows, plane rows, pixels */
  int64_t NB, G, NOG, MP;          /* bands, blocks per group, groups, tile pairs */
  bool in_blocked;                 /* NCHW16c input, else NCHW */
} Geo;

/* Whether some tap reads phase plane (a, b). */
static bool plane_used(const Geo *g, int64_t a, int64_t b) {
  bool row = false, col = false;
  for (int64_t kh = 0; kh < g->KH; kh++)
    row |= kh * g->dh % g->sh == a;
  for (int64_t kw = 0; kw < g->KW; kw++)
    col |= kw * g->dw % g->sw == b;
  return row && col;
}

/* Where plane (a, b) starts in the buffer, in pixels: only the planes some
   tap reads are there (a 1x1 stride-2 conv reads one of four). */
static int64_t plane_base(const Geo *g, int64_t a, int64_t b) {
  int64_t k = 0;
  for (int64_t i = 0; i < a * g->sw + b; i++)
    k += plane_used(g, i / g->sw, i % g->sw);
  return k * g->plane;
}

/* The buffer's pixels for bands of R rows: the planes, then slack for the
   last pixel tiles, which run up to 31 slots past the band and Wq - OW
   columns past a row. */
static int64_t buf_pixels(const Geo *g, int64_t R) {
  int64_t Rq = R + (g->KH - 1) * g->dh / g->sh, used = 0;
  for (int64_t i = 0; i < g->sh * g->sw; i++)
    used += plane_used(g, i / g->sw, i % g->sw);
  return used * Rq * g->Wq + 32 + g->Wq;
}

static void geo(const BeConfig *cf, const Node *n, Geo *g) {
  const Attrs *a = &n->attr;
  memset(g, 0, sizeof *g);
  g->C = n->in[0]->shape.d[0], g->IH = n->in[0]->shape.d[1], g->IW = n->in[0]->shape.d[2];
  g->OC = n->shape.d[0], g->OH = n->shape.d[1], g->OW = n->shape.d[2];
  g->KH = a->kernel[0], g->KW = a->kernel[1], g->sh = a->stride[0], g->sw = a->stride[1];
  g->pt = a->pad[0], g->pl = a->pad[1], g->dh = a->dilation[0], g->dw = a->dilation[1];
  g->in_blocked = n->in[0]->layout == LAYOUT_NCHW16C;
  g->Cp = (g->C + 31) / 32 * 32, g->NKC = g->Cp / 32, g->OCB = g->OC / 16;
  g->taps = g->KH * g->KW;
  g->Wq = g->OW + (g->KW - 1) * g->dw / g->sw;
  int64_t R = cf->tune->amx_rows ? cf->tune->amx_rows : be_cdiv(AMX_SLOTS, g->Wq);
  R = R < 1 ? 1 : R > g->OH ? g->OH : R;
  while (R > 1 && buf_pixels(g, R) * g->Cp * 2 > AMX_BUF_BYTES)
    R--;
  g->R = R;
  g->Rq = R + (g->KH - 1) * g->dh / g->sh;
  g->plane = g->Rq * g->Wq;
  g->bufpx = buf_pixels(g, R);
  g->NB = be_cdiv(g->OH, R);
  /* Output-channel groups when the bands alone are too few to share out
     (each group converts the band again: cheap next to its multiplies). */
  int64_t ng = g->NB >= AMX_ITEMS ? 1 : be_cdiv(AMX_ITEMS, g->NB);
  int64_t maxg = be_cdiv(g->OCB, 2);
  ng = ng > maxg ? maxg : ng;
  g->G = be_cdiv(be_cdiv(g->OCB, ng), 2) * 2; /* even: whole pairs */
  g->NOG = be_cdiv(g->OCB, g->G);
  g->MP = be_cdiv(R * g->Wq, 32);
}

bool be_conv_amx_accepts(const BeConfig *cf, const Node *n) {
  if (cf->precision != PRECISION_BF16 || !cf->target.amx || !cf->tune->amx || n->op != OP_CONV2D ||
      n->attr.groups != 1 || n->quant || n->layout != LAYOUT_NCHW16C)
    return false;
  /* an NCHW input (a graph input) of 16 channels or more: a stem of 3
     would multiply 29 zero channels out of 32 */
  if (n->in[0]->layout != LAYOUT_NCHW16C && n->in[0]->shape.d[0] < 16)
    return false;
  Geo g;
  geo(cf, n, &g);
  return g.bufpx * g.Cp * 2 <= AMX_BUF_BYTES;
}

int64_t be_work_conv_amx(const BeConfig *cf, const Node *n) {
  Geo g;
  geo(cf, n, &g);
  return g.NB * g.NOG;
}

int64_t be_packed_numel_amx(const BeConfig *cf, const Node *n) {
  Geo g;
  geo(cf, n, &g);
  return g.OC * g.taps * g.Cp;
}

float *be_pack_amx(const BeConfig *cf, const Node *n) {
  Geo g;
  geo(cf, n, &g);
  const Param *w = n->params[P_WEIGHT];
  CHECK(param_numel(w) == g.OC * g.C * g.taps, "weight '%s' of '%s'", w->name, n->name);
  float *dst = xcalloc((size_t)be_packed_numel_amx(cf, n), sizeof(float));
  for (int64_t oc = 0; oc < g.OC; oc++)
    for (int64_t ic = 0; ic < g.C; ic++)
      for (int64_t t = 0; t < g.taps; t++) {
        int64_t kc = ic / 32, kp = ic % 32 / 2, e = ic % 2;
        int64_t d = ((((oc / 16) * g.taps + t) * g.NKC + kc) * 16 + kp) * 32 + oc % 16 * 2 + e;
        dst[d] = w->data[(oc * g.C + ic) * g.taps + t];
      }
  return dst;
}

/* ------------------------------------------------------------ the kernel */

static LLVMTypeRef t_i16(BeCtx *c) { return LLVMInt16TypeInContext(c->ctx); }

/* base + idx elements of 2 bytes. */
static LLVMValueRef hptr(BeCtx *c, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(c->b, t_i16(c), base, &idx, 1, "");
}

static void tile_call(BeCtx *c, const char *name, LLVMValueRef *args, int n) {
  be_intrinsic(c, name, NULL, 0, args, n);
}

static LLVMValueRef tmm(BeCtx *c, int t) { return LLVMConstInt(c->t_i8, (unsigned)t, false); }

static void tile_load(BeCtx *c, int t, LLVMValueRef p, int64_t stride_bytes) {
  LLVMValueRef a[3] = {tmm(c, t), p, be_i64(c, stride_bytes)};
  tile_call(c, "llvm.x86.tileloadd64", a, 3);
}

/* Palette 1, tiles 0-7 all 16 rows of 64 bytes: a constant in the module. */
static LLVMValueRef tile_config(BeCtx *c) {
  LLVMValueRef g = LLVMGetNamedGlobal(c->mod, "cnncc.amx.tilecfg");
  if (g)
    return g;
  LLVMValueRef v[64];
  for (int i = 0; i < 64; i++) {
    int x = i == 0                                                  ? 1
            : (i >= 16 && i < 32 && i % 2 == 0 && (i - 16) / 2 < 8) ? 64
            : (i >= 48 && i < 56)                                   ? 16
                                                                    : 0;
    v[i] = LLVMConstInt(c->t_i8, (unsigned)x, false);
  }
  LLVMValueRef init = LLVMConstArray2(c->t_i8, v, 64);
  g = LLVMAddGlobal(c->mod, LLVMTypeOf(init), "cnncc.amx.tilecfg");
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetAlignment(g, 64);
  return g;
}

/* 0 <= v < n, as one unsigned compare. */
static LLVMValueRef in_range(BeCtx *c, LLVMValueRef v, int64_t n) {
  return LLVMBuildICmp(c->b, LLVMIntULT, v, be_i64(c, n), "");
}

/* 16 floats -> 16 bf16 (round to nearest even) stored at buf[idx]. */
static void store_bf16(BeCtx *c, LLVMValueRef buf, LLVMValueRef idx, LLVMValueRef x) {
  LLVMTypeRef vb = LLVMVectorType(LLVMBFloatTypeInContext(c->ctx), 16);
  LLVMValueRef st = LLVMBuildStore(c->b, LLVMBuildFPTrunc(c->b, x, vb, ""), hptr(c, buf, idx));
  LLVMSetAlignment(st, 32);
}

/* Step 1 from an NCHW input, channel by channel, for plane (a, b) at
   pixel pbase: the band's rows of each channel plane, then zeros in the
   channels past C. */
static void convert_band_nchw(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf, LLVMValueRef oh0,
                              int64_t a, int64_t b, int64_t pbase) {
  LLVMTypeRef tb = LLVMBFloatTypeInContext(c->ctx);
  BeLoop rq, ch, cq;
  be_for(c, &rq, be_i64(c, 0), be_i64(c, g->Rq), "rq");
  LLVMValueRef ih = be_addk(c, be_mulk(c, be_add(c, oh0, rq.iv), g->sh), a - g->pt);
  LLVMValueRef rowin = in_range(c, ih, g->IH);
  LLVMValueRef ihc = LLVMBuildSelect(c->b, rowin, ih, be_i64(c, 0), "");
  LLVMValueRef px0 = be_addk(c, be_mulk(c, rq.iv, g->Wq), pbase);
  be_for(c, &ch, be_i64(c, 0), be_i64(c, g->C), "ch");
  LLVMValueRef src0 = be_mulk(c, be_add(c, be_mulk(c, ch.iv, g->IH), ihc), g->IW);
  be_for(c, &cq, be_i64(c, 0), be_i64(c, g->Wq), "cq");
  LLVMValueRef iw = be_addk(c, be_mulk(c, cq.iv, g->sw), b - g->pl);
  LLVMValueRef inside = LLVMBuildAnd(c->b, rowin, in_range(c, iw, g->IW), "");
  LLVMValueRef iwc = LLVMBuildSelect(c->b, inside, iw, be_i64(c, 0), "");
  LLVMValueRef x =
      LLVMBuildSelect(c->b, inside, be_ld(c, k->in[0], be_add(c, src0, iwc)), be_f32(c, 0), "");
  LLVMValueRef at = be_add(c, be_mulk(c, be_add(c, px0, cq.iv), g->Cp), ch.iv);
  LLVMSetAlignment(LLVMBuildStore(c->b, LLVMBuildFPTrunc(c->b, x, tb, ""), hptr(c, buf, at)), 2);
  be_for_end(c, &cq);
  be_for_end(c, &ch);
  if (g->Cp > g->C) {
    be_for(c, &cq, be_i64(c, 0), be_i64(c, g->Wq), "cz");
    LLVMValueRef zat = be_addk(c, be_mulk(c, be_add(c, px0, cq.iv), g->Cp), g->C);
    LLVMBuildMemSet(c->b, hptr(c, buf, zat), LLVMConstInt(c->t_i8, 0, false),
                    be_i64(c, 2 * (g->Cp - g->C)), 2);
    be_for_end(c, &cq);
  }
  be_for_end(c, &rq);
}

/* Step 1 for the band starting at output row oh0, from an NCHW16c input:
   16 channels of a pixel at a time. */
static void convert_band(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf, LLVMValueRef oh0) {
  LLVMValueRef zero = LLVMConstNull(c->t_v16);
  for (int64_t a = 0; a < g->sh; a++)
    for (int64_t b = 0; b < g->sw; b++) {
      if (!plane_used(g, a, b))
        continue;
      int64_t pbase = plane_base(g, a, b);
      if (!g->in_blocked) {
        convert_band_nchw(c, k, g, buf, oh0, a, b, pbase);
        continue;
      }
      BeLoop rq, cb, cq;
      be_for(c, &rq, be_i64(c, 0), be_i64(c, g->Rq), "rq");
      LLVMValueRef ih = be_addk(c, be_mulk(c, be_add(c, oh0, rq.iv), g->sh), a - g->pt);
      LLVMValueRef rowin = in_range(c, ih, g->IH);
      LLVMValueRef ihc = LLVMBuildSelect(c->b, rowin, ih, be_i64(c, 0), "");
      LLVMValueRef px0 = be_addk(c, be_mulk(c, rq.iv, g->Wq), pbase);
      be_for(c, &cb, be_i64(c, 0), be_i64(c, g->C / 16), "cb");
      LLVMValueRef src0 = be_mulk(c, be_add(c, be_mulk(c, cb.iv, g->IH), ihc), g->IW);
      be_for(c, &cq, be_i64(c, 0), be_i64(c, g->Wq), "cq");
      LLVMValueRef iw = be_addk(c, be_mulk(c, cq.iv, g->sw), b - g->pl);
      LLVMValueRef inside = LLVMBuildAnd(c->b, rowin, in_range(c, iw, g->IW), "");
      LLVMValueRef iwc = LLVMBuildSelect(c->b, inside, iw, be_i64(c, 0), "");
      LLVMValueRef x = be_vld(c, k->in[0], be_mulk(c, be_add(c, src0, iwc), 16), 4);
      x = LLVMBuildSelect(c->b, inside, x, zero, "");
      LLVMValueRef px = be_add(c, px0, cq.iv);
      store_bf16(c, buf, be_add(c, be_mulk(c, px, g->Cp), be_mulk(c, cb.iv, 16)), x);
      be_for_end(c, &cq);
      be_for_end(c, &cb);
      if (g->C % 32) { /* the 16 channels past C: zeros */
        BeLoop z;
        be_for(c, &z, be_i64(c, 0), be_i64(c, g->Wq), "cz");
        store_bf16(c, buf, be_addk(c, be_mulk(c, be_add(c, px0, z.iv), g->Cp), g->C), zero);
        be_for_end(c, &z);
      }
      be_for_end(c, &rq);
    }
}

/* Step 2: accumulator tiles mi + 2j (mi < 2, j < nn) for the pixel tiles
   from q0 and the blocks from ob, over every tap and channel. */
static void multiply(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf, LLVMValueRef q0,
                     LLVMValueRef ob, int nn) {
  for (int t = 0; t < 2 * nn; t++) {
    LLVMValueRef a = tmm(c, t);
    tile_call(c, "llvm.x86.tilezero", &a, 1);
  }
  for (int64_t kh = 0; kh < g->KH; kh++)
    for (int64_t kw = 0; kw < g->KW; kw++) {
      int64_t hh = kh * g->dh, ww = kw * g->dw;
      int64_t off = plane_base(g, hh % g->sh, ww % g->sw) + hh / g->sh * g->Wq + ww / g->sw;
      LLVMValueRef px = be_addk(c, q0, off);
      LLVMValueRef wt = be_mulk(c, be_addk(c, be_mulk(c, ob, g->taps), kh * g->KW + kw), g->NKC);
      BeLoop kc;
      be_for(c, &kc, be_i64(c, 0), be_i64(c, g->NKC), "kc");
      LLVMValueRef xa = be_add(c, be_mulk(c, px, g->Cp), be_mulk(c, kc.iv, 32));
      tile_load(c, 4, hptr(c, buf, xa), g->Cp * 2);
      tile_load(c, 5, hptr(c, buf, be_addk(c, xa, 16 * g->Cp)), g->Cp * 2);
      LLVMValueRef wb = be_mulk(c, be_add(c, wt, kc.iv), 512);
      for (int j = 0; j < nn; j++)
        tile_load(c, 6 + j, hptr(c, k->par[P_WEIGHT], be_addk(c, wb, j * g->taps * g->NKC * 512)),
                  64);
      for (int j = 0; j < nn; j++)
        for (int mi = 0; mi < 2; mi++) {
          LLVMValueRef a[3] = {tmm(c, mi + 2 * j), tmm(c, 4 + mi), tmm(c, 6 + j)};
          tile_call(c, "llvm.x86.tdpbf16ps", a, 3);
        }
      be_for_end(c, &kc);
    }
}

/* The index of block ob's pixel pix in a full NCHW16c tensor of the output's shape. */
static LLVMValueRef res_idx(BeCtx *c, const Geo *g, LLVMValueRef ob, LLVMValueRef pix) {
  return be_mulk(c, be_add(c, be_mulk(c, ob, g->OH * g->OW), pix), 16);
}

/* Step 3: the nn blocks from ob of the 32 pixels from q0 of the band at
   output row oh0, accumulated in tiles mi + 2j. */
static void epilogue(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef cbuf, LLVMValueRef oh0,
                     LLVMValueRef q0, LLVMValueRef ob, int nn) {
  for (int t = 0; t < 2 * nn; t++) {
    LLVMValueRef a[3] = {tmm(c, t), be_fptr(c, cbuf, be_i64(c, t * 256)), be_i64(c, 64)};
    tile_call(c, "llvm.x86.tilestored64", a, 3);
  }
  LLVMValueRef bias = k->n->nparams > P_BIAS ? k->par[P_BIAS] : NULL;
  BeLoop s;
  be_for(c, &s, be_i64(c, 0), be_i64(c, 32), "slot");
  LLVMValueRef q = be_add(c, q0, s.iv);
  LLVMValueRef r = LLVMBuildUDiv(c->b, q, be_i64(c, g->Wq), "");
  LLVMValueRef ow = be_sub(c, q, be_mulk(c, r, g->Wq));
  LLVMValueRef oh = be_add(c, oh0, r);
  BeIf valid;
  be_if(c, &valid,
        LLVMBuildAnd(c->b, in_range(c, ow, g->OW),
                     LLVMBuildAnd(c->b, in_range(c, r, g->R), in_range(c, oh, g->OH), ""), ""));
  LLVMValueRef pix = be_add(c, be_mulk(c, oh, g->OW), ow);
  /* slot s of pixel tile s/16 is row s%16 of tiles s/16 + 2j */
  LLVMValueRef crow = be_add(c, be_mulk(c, LLVMBuildLShr(c->b, s.iv, be_i64(c, 4), ""), 256),
                             be_mulk(c, LLVMBuildAnd(c->b, s.iv, be_i64(c, 15), ""), 16));
  for (int j = 0; j < nn; j++) {
    LLVMValueRef obj = be_addk(c, ob, j), base, local;
    LLVMValueRef v = be_vld(c, cbuf, be_addk(c, crow, j * 512), 64);
    if (bias)
      v = be_fadd(c, v, be_vld(c, bias, be_mulk(c, obj, 16), 64));
    if (k->res)
      v = be_fadd(c, v, be_vld(c, k->res, res_idx(c, g, obj, pix), 4));
    v = be_zero_padded_block(c, k->n, obj, be_act(c, &k->n->epi.act, v));
    be_split_out(c, k, obj, 16, &base, &local);
    be_vst(c, base, res_idx(c, g, local, pix), v, 64);
  }
  be_endif(c, &valid);
  be_for_end(c, &s);
}

void be_emit_conv_amx(BeCtx *c, KArgs *k) {
  Geo g;
  geo(c->cfg, k->n, &g);
  LLVMValueRef buf = be_var(c, LLVMArrayType2(t_i16(c), (uint64_t)(g.bufpx * g.Cp)), "amxbuf");
  LLVMSetAlignment(buf, 64);
  LLVMValueRef cbuf = be_var(c, LLVMArrayType2(c->t_f32, 1024), "amxacc");
  LLVMSetAlignment(cbuf, 64);
  LLVMValueRef cfg = tile_config(c);
  tile_call(c, "llvm.x86.ldtilecfg", &cfg, 1);

  BeLoop it, mp, np;
  be_for(c, &it, k->lo, k->hi, "item");
  LLVMValueRef band = be_sdiv(c, it.iv, be_i64(c, g.NOG));
  LLVMValueRef og = be_sub(c, it.iv, be_mulk(c, band, g.NOG));
  LLVMValueRef oh0 = be_mulk(c, band, g.R);
  convert_band(c, k, &g, buf, oh0);
  LLVMValueRef ob0 = be_mulk(c, og, g.G);
  LLVMValueRef ob1 = be_smin(c, be_addk(c, ob0, g.G), be_i64(c, g.OCB));
  LLVMValueRef npairs = LLVMBuildLShr(c->b, be_sub(c, ob1, ob0), be_i64(c, 1), "");
  /* per pair of blocks, every pixel tile: the pair's weights are read
     from memory once per band and stay in L2 */
  be_for(c, &np, be_i64(c, 0), npairs, "np");
  LLVMValueRef ob = be_add(c, ob0, be_mulk(c, np.iv, 2));
  be_for(c, &mp, be_i64(c, 0), be_i64(c, g.MP), "mp");
  LLVMValueRef q0 = be_mulk(c, mp.iv, 32);
  multiply(c, k, &g, buf, q0, ob, 2);
  epilogue(c, k, &g, cbuf, oh0, q0, ob, 2);
  be_for_end(c, &mp);
  be_for_end(c, &np);
  if (g.OCB % 2) { /* an odd block count: the last group ends with one */
    BeIf odd;
    LLVMValueRef last = be_add(c, ob0, be_mulk(c, npairs, 2));
    be_if(c, &odd, LLVMBuildICmp(c->b, LLVMIntSLT, last, ob1, ""));
    be_for(c, &mp, be_i64(c, 0), be_i64(c, g.MP), "mp");
    LLVMValueRef q1 = be_mulk(c, mp.iv, 32);
    multiply(c, k, &g, buf, q1, last, 1);
    epilogue(c, k, &g, cbuf, oh0, q1, last, 1);
    be_for_end(c, &mp);
    be_endif(c, &odd);
  }
  be_for_end(c, &it);
  tile_call(c, "llvm.x86.tilerelease", NULL, 0);
}

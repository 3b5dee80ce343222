/*
 * amx.c: convolutions on Intel AMX tiles (Sapphire Rapids and later), for
 * --precision=bf16 on targets with +amx-tile,+amx-bf16 and for the
 * quantized convs of --precision=int8 with +amx-int8 (docs/precision.md).
 * One tdpbf16ps multiplies a 16 x 32 bf16 tile by a 32 x 16 one into
 * 16 x 16 fp32 sums (8,192 multiply-adds, 16 times an AVX-512 FMA's 512);
 * one tdpbusd a 16 x 64 u8 tile by a 64 x 16 s8 one into int32 sums.
 * Below, for bf16: "32 channels" of 2 bytes; int8 has 64 of 1 byte.
 *
 * An ungrouped conv, NCHW16c out, NCHW16c in (or NCHW, a graph input),
 * as an implicit GEMM: the rows of a tile are output pixels, its columns
 * 16 output channels, the sum runs over the taps (kh, kw) and the input
 * channels 32 at a time. Work item: a band of R output rows and a group
 * of G output-channel blocks.
 *
 *   1. convert: the input rows the band reads, fp32 -> bf16 (round to
 *      nearest even, vcvtneps2bf16) or u8 (the layer's scale and zero
 *      point, int8.c), into a stack buffer of pixels with Cp = C rounded
 *      up to 32 channels each, zeros (u8: the zero point) where the conv
 *      pads. The buffer holds sh x sw phase planes (plane (a, b) holds the
 *      padded input pixels (sh*y + a, sw*x + b); only the planes a tap
 *      reads), so the pixels a tap reads for consecutive output pixels are
 *      consecutive in a plane at any stride: tap (kh, kw) of output (r, ow)
 *      is pixel (r + kh*dh/sh) * Wq + ow + kw*dw/sw of plane (kh*dh%sh,
 *      kw*dw%sw). A stem of few channels (C*KW fitting 32) folds its
 *      kernel columns instead: a pixel holds a kernel row's KW*C values,
 *      the taps are the KH rows, planes per row phase only.
 *   2. multiply: the band's output pixels flattened as q = r * Wq + ow
 *      (Wq = OW + (KW-1)*dw/sw, the columns ow >= OW are computed and
 *      dropped) are cut in tiles of 16; per pair of channel blocks, then
 *      per pair of pixel tiles, four accumulator tiles; per tap and 32
 *      channels, two A tiles (a constant stride of one pixel between rows)
 *      and two B tiles of weights, four tile multiplies.
 *   3. epilogue: the accumulators stored to a stack buffer, then per valid
 *      pixel and block, bias (int8: dequantized first, as int8.c), the
 *      fused residual add and activation in fp32, and the store into the
 *      NCHW16c output (or a split conv's slices).
 *
 * Weights (be_pack_amx): per (block, tap, 32 channels) one 1 KB B tile,
 * [16][16 oc][2] channel pairs per output channel (AMX's "VNNI" order;
 * int8: [16][16 oc][4]), zeros past C; bf16 rounded by the blob like every
 * bf16 weight, int8 quantized by int8.c's be_int8_weight_row and followed
 * by the scale, zero-point correction and bias per output channel.
 *
 * dpbf16: the same bf16 convs on a target with AVX512_BF16 and no AMX
 * (Zen 4), or with --tune amx=0: steps 1 and 3 and the weights as above,
 * step 2 in AVX-512 registers. One vdpbf16ps adds to 16 fp32 lanes the
 * products of a channel pair (each product of two bf16 exact, the two
 * adds rounded); a weight tile's row of 64 bytes, 16 output channels x a
 * channel pair, is its one operand, a pixel's pair broadcast to the 16
 * lanes (an i32 {1to16} broadcast) the other. A register tile is TP
 * pixels (8 to DP_TILE = 14, whichever wastes the fewest computed slots
 * of the band) x 2 output blocks: 28 accumulators, 2 weight rows and a
 * broadcast of the 32 zmm; per tap and 32 channels a loop of 16 pairs.
 * The accumulators then go to the stack buffer where the tiles would
 * have been stored, and step 3 runs unchanged. Bands are of equal height
 * (no rows computed past OH).
 *
 * The tile registers hold no state between kernels: each call loads the
 * tile configuration (ldtilecfg, eight 16 x 64-byte tiles) and releases
 * it at its end. Linux hands AMX's 8 KB of tile state to a process only
 * on request: the runtime asks once in cnn_create (cnnrt_uses_amx).
 */
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"

#define AMX_BUF_BYTES (256 * 1024) /* the band buffer (stack) */
#define AMX_SLOTS 128              /* output pixels per band, about */
#define AMX_ITEMS 8                /* work items a layer aims for */
#define DP_TILE 14                 /* dpbf16: output pixels per register tile */

typedef struct {
  int64_t C, IH, IW, OC, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw;
  int64_t Cp, NKC, OCB, taps;
  bool int8;                       /* --precision=int8: u8 x s8 -> int32 (tdpbusd), else bf16 */
  int64_t eb;                      /* bytes per buffer element: 1 (u8) or 2 (bf16) */
  int64_t Wq, R, Rq, plane, bufpx; /* plane width, band rows, plane rows, pixels */
  int64_t NB, G, NOG, MP;          /* bands, blocks per group, groups, tile pairs */
  bool in_blocked;                 /* NCHW16c input, else NCHW */
  /* A conv of few channels (an NCHW stem of 3) folds its kernel columns
     into the sum: a buffer pixel holds the KW*C values of a tap row, the
     taps are the KH rows, the planes are per row phase only. */
  bool fold;
  int64_t PW, TW; /* column phases (sw, or 1 folded), taps per row (KW or 1) */
  bool dp;        /* the vdpbf16ps kernel (dpbf16), else tiles */
  bool cmajor;    /* dpbf16, folded, KW <= 16, dw 1: a pixel's values are c * KW + kw */
  int64_t TP;     /* output pixels per step 2: 32 (two tiles of 16), or 8 to DP_TILE */
  /* dpbf16: pixel tiles of whole output rows (TP one or two rows, or a
     divisor of one), numbered without the Wq - OW columns past a row;
     Wp: the slots per row (OW, else Wq) */
  bool rows;
  int64_t Wp;
} Geo;

/* Whether some tap reads phase plane (a, b). */
static bool plane_used(const Geo *g, int64_t a, int64_t b) {
  bool row = false, col = false;
  for (int64_t kh = 0; kh < g->KH; kh++)
    row |= kh * g->dh % g->sh == a;
  for (int64_t kw = 0; kw < g->TW; kw++)
    col |= (g->fold ? 0 : kw * g->dw % g->sw) == b;
  return row && col;
}

/* Where plane (a, b) starts in the buffer, in pixels: only the planes some
   tap reads are there (a 1x1 stride-2 conv reads one of four). */
static int64_t plane_base(const Geo *g, int64_t a, int64_t b) {
  int64_t k = 0;
  for (int64_t i = 0; i < a * g->PW + b; i++)
    k += plane_used(g, i / g->PW, i % g->PW);
  return k * g->plane;
}

/* The buffer's pixels for bands of R rows: the planes, then slack for the
   last pixel tiles, which run up to 31 slots past the band and Wq - OW
   columns past a row. */
static int64_t buf_pixels(const Geo *g, int64_t R) {
  int64_t Rq = R + (g->KH - 1) * g->dh / g->sh, used = 0;
  for (int64_t i = 0; i < g->sh * g->PW; i++)
    used += plane_used(g, i / g->PW, i % g->PW);
  return used * Rq * g->Wq + 32 + g->Wq;
}

/* dpbf16: tiles of whole rows where they compute fewer slots than the
   flat ones (which compute the Wq - OW columns past each row): ResNet-50's
   3x3 convs at 7x7, 63 slots for 49 pixels, take 2 rows of 7 (56); its
   stride-2 28x28 ones 140 slots per band instead of 154. At most two rows
   per tile: the last tile then reads one row past the band, inside the
   buffer's slack of Wq + 32 pixels. */
static void dp_row_tiles(Geo *g) {
  int64_t flat = be_cdiv(g->R * g->Wq, g->TP) * g->TP, best = flat, tp = 0;
  for (int64_t t = DP_TILE; t >= 8 && g->Wq > g->OW; t--) {
    int64_t k = be_cdiv(g->R * g->OW, t) * t;
    if (((t % g->OW == 0 && t / g->OW <= 2) || g->OW % t == 0) && k < best)
      best = k, tp = t;
  }
  if (tp)
    g->rows = true, g->TP = tp;
}

static void geo(const BeConfig *cf, const Node *n, bool dp, Geo *g) {
  const Attrs *a = &n->attr;
  memset(g, 0, sizeof *g);
  g->dp = dp, g->TP = dp ? DP_TILE : 32;
  g->C = n->in[0]->shape.d[0], g->IH = n->in[0]->shape.d[1], g->IW = n->in[0]->shape.d[2];
  g->OC = n->shape.d[0], g->OH = n->shape.d[1], g->OW = n->shape.d[2];
  g->KH = a->kernel[0], g->KW = a->kernel[1], g->sh = a->stride[0], g->sw = a->stride[1];
  g->pt = a->pad[0], g->pl = a->pad[1], g->dh = a->dilation[0], g->dw = a->dilation[1];
  g->in_blocked = n->in[0]->layout == LAYOUT_NCHW16C;
  g->int8 = cf->precision == PRECISION_INT8;
  g->eb = g->int8 ? 1 : 2;
  int64_t kt = 64 / g->eb; /* channels in a tile row of 64 bytes */
  g->fold = !g->in_blocked && g->C < 16 && g->C * g->KW <= kt;
  g->PW = g->fold ? 1 : g->sw, g->TW = g->fold ? 1 : g->KW;
  g->cmajor = dp && g->fold && g->KW <= 16 && g->dw == 1;
  int64_t Ck = g->fold ? g->KW * g->C : g->C; /* values of one tap */
  g->Cp = be_cdiv(Ck, kt) * kt, g->NKC = g->Cp / kt, g->OCB = g->OC / 16;
  g->taps = g->KH * g->TW;
  g->Wq = g->fold ? g->OW : g->OW + (g->KW - 1) * g->dw / g->sw;
  /* folded: more rows per band, fewer kernel rows converted twice */
  int64_t slots = g->fold ? 8 * AMX_SLOTS : AMX_SLOTS;
  int64_t R = cf->tune->amx_rows ? cf->tune->amx_rows : be_cdiv(slots, g->Wq);
  R = R < 1 ? 1 : R > g->OH ? g->OH : R;
  while (R > 1 && buf_pixels(g, R) * g->Cp * g->eb > AMX_BUF_BYTES)
    R--;
  if (dp && !cf->tune->amx_rows) /* bands of equal height: no computed rows past OH */
    R = be_cdiv(g->OH, be_cdiv(g->OH, R));
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
  if (dp) /* the pixel tile, 8 to DP_TILE, that wastes the fewest slots of a band */
    for (int64_t t = DP_TILE; t >= 8; t--)
      if (be_cdiv(R * g->Wq, t) * t < be_cdiv(R * g->Wq, g->TP) * g->TP)
        g->TP = t;
  if (dp)
    dp_row_tiles(g);
  g->Wp = g->rows ? g->OW : g->Wq;
  g->MP = be_cdiv(R * g->Wp, g->TP);
}

/* Whether the kernel (on tiles, or with vdpbf16ps when dp) can run n. */
static bool accepts(const BeConfig *cf, const Node *n, bool dp) {
  if (n->op != OP_CONV2D || n->attr.groups != 1 || n->layout != LAYOUT_NCHW16C)
    return false;
  /* an NCHW input (a graph input): 16 channels or more, or few enough to
     fold the kernel columns into one tile row (else a stem of 3 channels
     would multiply 29 zero channels of 32) */
  Geo g;
  geo(cf, n, dp, &g);
  if (!g.in_blocked && g.C < 16 && !g.fold)
    return false;
  return g.bufpx * g.Cp * g.eb <= AMX_BUF_BYTES;
}

bool be_conv_amx_accepts(const BeConfig *cf, const Node *n) {
  bool bf16 = cf->precision == PRECISION_BF16 && cf->target.amx && !n->quant;
  bool int8 = cf->precision == PRECISION_INT8 && cf->target.amx_int8 && n->quant;
  return (bf16 || int8) && cf->tune->amx && accepts(cf, n, false);
}

/* After the AMX row of the table: where AMX is off or absent. */
bool be_conv_dpbf16_accepts(const BeConfig *cf, const Node *n) {
  return cf->precision == PRECISION_BF16 && cf->target.avx512bf16 && cf->tune->dpbf16 &&
         !n->quant && accepts(cf, n, true);
}

int64_t be_work_conv_amx(const BeConfig *cf, const Node *n) {
  Geo g;
  geo(cf, n, false, &g);
  return g.NB * g.NOG;
}

/* bf16: one float per weight (the blob rounds them); int8: the weight
   bytes, then per output channel the dequantizing scale, the zero point's
   correction (int32) and the bias (floats). */
int64_t be_packed_numel_amx(const BeConfig *cf, const Node *n) {
  Geo g;
  geo(cf, n, false, &g);
  return g.int8 ? g.OC * g.taps * g.Cp / 4 + 3 * g.OC : g.OC * g.taps * g.Cp;
}

/* Where weight (oc, ic, tap) goes among the packed elements: the tile of
   (block, tap, kc), row ic's group of 4 / eb channels, column oc % 16. */
static int64_t wpos(const Geo *g, int64_t oc, int64_t ic, int64_t t) {
  int64_t per = 4 / g->eb, kt = 64 / g->eb; /* channels per 4 bytes, per tile row */
  int64_t tile = ((oc / 16) * g->taps + t) * g->NKC + ic / kt;
  return ((tile * 16 + ic % kt / per) * 16 + oc % 16) * per + ic % per;
}

/* Weight i in PyTorch's (ic, kh, kw) order: its place among a tap's
   values and its tap; folded, a tap is a kernel row of (kw, ic) values. */
static int64_t kidx(const Geo *g, int64_t i) {
  int64_t ic = i / (g->KH * g->KW), kw = i % g->KW;
  if (g->cmajor)
    return ic * g->KW + kw;
  return g->fold ? kw * g->C + ic : ic;
}
static int64_t ktap(const Geo *g, int64_t i) {
  int64_t kh = i / g->KW % g->KH, kw = i % g->KW;
  return g->fold ? kh : kh * g->KW + kw;
}

/* Weight i (PyTorch's order) of output channel oc among the packed ones. */
static int64_t packed_at(const void *ctx, int64_t oc, int64_t i) {
  const Geo *g = ctx;
  return wpos(g, oc, kidx(g, i), ktap(g, i));
}

static float *pack(const BeConfig *cf, const Node *n, bool dp) {
  Geo g;
  geo(cf, n, dp, &g);
  const Param *w = n->params[P_WEIGHT];
  int64_t K = g.C * g.KH * g.KW;
  CHECK(param_numel(w) == g.OC * K, "weight '%s' of '%s'", w->name, n->name);
  float *dst = xcalloc((size_t)be_packed_numel_amx(cf, n), sizeof(float));
  if (!g.int8) {
    for (int64_t oc = 0; oc < g.OC; oc++)
      for (int64_t i = 0; i < K; i++) /* i: PyTorch's (ic, kh, kw) order */
        dst[packed_at(&g, oc, i)] = w->data[oc * K + i];
    return dst;
  }
  be_int8_pack(n, K, dst, g.OC * g.taps * g.Cp, g.OC, packed_at, &g);
  return dst;
}

float *be_pack_amx(const BeConfig *cf, const Node *n) { return pack(cf, n, false); }
float *be_pack_dpbf16(const BeConfig *cf, const Node *n) { return pack(cf, n, true); }

/* ------------------------------------------------------------ the kernel */

/* base + idx elements of the buffer (eb bytes each). */
static LLVMValueRef eptr(BeCtx *c, const Geo *g, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef byte = be_mulk(c, idx, g->eb);
  return LLVMBuildInBoundsGEP2(c->b, c->t_i8, base, &byte, 1, "");
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

/* x (a float or 16 of them) in the buffer's type stored at buf[idx]:
   bf16 rounded to nearest even, or u8 quantized with the layer's input
   scale and zero point (int8.c). */
static void store_elems(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf, LLVMValueRef idx,
                        LLVMValueRef x) {
  bool vec = LLVMGetTypeKind(LLVMTypeOf(x)) == LLVMVectorTypeKind;
  LLVMValueRef v;
  if (g->int8) {
    v = vec ? be_int8_quant_vec(c, k->n, x) : be_int8_quant_byte(c, k->n, x);
  } else {
    LLVMTypeRef tb = LLVMBFloatTypeInContext(c->ctx);
    v = LLVMBuildFPTrunc(c->b, x, vec ? LLVMVectorType(tb, 16) : tb, "");
  }
  LLVMSetAlignment(LLVMBuildStore(c->b, v, eptr(c, g, buf, idx)),
                   (unsigned)(g->eb * (vec ? 16 : 1)));
}

/* Zeros in values [from, Cp) of the Wq buffer pixels from px0 (their
   weights are 0). */
static void zero_tail(BeCtx *c, const Geo *g, LLVMValueRef buf, LLVMValueRef px0, int64_t from) {
  if (from >= g->Cp)
    return;
  BeLoop z;
  be_for(c, &z, be_i64(c, 0), be_i64(c, g->Wq), "cz");
  LLVMValueRef at = be_addk(c, be_mulk(c, be_add(c, px0, z.iv), g->Cp), from);
  LLVMBuildMemSet(c->b, eptr(c, g, buf, at), LLVMConstInt(c->t_i8, 0, false),
                  be_i64(c, g->eb * (g->Cp - from)), 1);
  be_for_end(c, &z);
}

/* The input row of buffer row rq of row phase a (clamped to 0 outside,
 *rowin: whether inside) and the row's first buffer pixel. */
static LLVMValueRef band_row(BeCtx *c, const Geo *g, LLVMValueRef oh0, LLVMValueRef rq, int64_t a,
                             int64_t pbase, LLVMValueRef *rowin, LLVMValueRef *px0) {
  LLVMValueRef ih = be_addk(c, be_mulk(c, be_add(c, oh0, rq), g->sh), a - g->pt);
  *rowin = in_range(c, ih, g->IH);
  *px0 = be_addk(c, be_mulk(c, rq, g->Wq), pbase);
  return LLVMBuildSelect(c->b, *rowin, ih, be_i64(c, 0), "");
}

/* Step 1 from an NCHW input, channel by channel, for plane (a, b) at
   pixel pbase: buffer pixel (rq, cq) holds, for kw < nkw, input row
   (oh0 + rq) * sh + a - pt at column cq * sw + b - pl + kw * dw as value
   kw * C + c; zeros past nkw * C. nkw is 1, or KW folded (Geo.fold, b 0). */
static void convert_band_nchw(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf, LLVMValueRef oh0,
                              int64_t a, int64_t b, int64_t pbase) {
  int64_t nkw = g->fold ? g->KW : 1;
  BeLoop rq, ch, kw, cq;
  be_for(c, &rq, be_i64(c, 0), be_i64(c, g->Rq), "rq");
  LLVMValueRef rowin, px0, ihc = band_row(c, g, oh0, rq.iv, a, pbase, &rowin, &px0);
  be_for(c, &ch, be_i64(c, 0), be_i64(c, g->C), "ch");
  LLVMValueRef src0 = be_mulk(c, be_add(c, be_mulk(c, ch.iv, g->IH), ihc), g->IW);
  be_for(c, &kw, be_i64(c, 0), be_i64(c, nkw), "kw");
  LLVMValueRef at0 = be_add(c, be_mulk(c, kw.iv, g->C), ch.iv);
  be_for(c, &cq, be_i64(c, 0), be_i64(c, g->Wq), "cq");
  LLVMValueRef iw =
      be_add(c, be_addk(c, be_mulk(c, cq.iv, g->sw), b - g->pl), be_mulk(c, kw.iv, g->dw));
  LLVMValueRef inside = LLVMBuildAnd(c->b, rowin, in_range(c, iw, g->IW), "");
  LLVMValueRef iwc = LLVMBuildSelect(c->b, inside, iw, be_i64(c, 0), "");
  LLVMValueRef x =
      LLVMBuildSelect(c->b, inside, be_ld(c, k->in[0], be_add(c, src0, iwc)), be_f32(c, 0), "");
  store_elems(c, k, g, buf, be_add(c, be_mulk(c, be_add(c, px0, cq.iv), g->Cp), at0), x);
  be_for_end(c, &cq);
  be_for_end(c, &kw);
  be_for_end(c, &ch);
  zero_tail(c, g, buf, px0, nkw * g->C);
  be_for_end(c, &rq);
}

/* Step 1 of a folded stem on dpbf16 (Geo.cmajor), for row phase a at
   pixel pbase: buffer pixel (rq, cq) holds as values c * KW + kw the KW
   input values of channel c that a kernel row reads, consecutive in the
   input row: per pixel and channel one masked load of up to 16 floats
   (zeros where the conv pads), one conversion, one masked store. The
   scalar loop of convert_band_nchw (which the vectorizer turned into
   gathers and scatters) took 40% of GoogLeNet's 7x7 stem (perf). */
static void convert_band_cmajor(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf,
                                LLVMValueRef oh0, int64_t a, int64_t pbase) {
  LLVMTypeRef t_i1 = LLVMInt1TypeInContext(c->ctx);
  LLVMTypeRef vb = LLVMVectorType(LLVMBFloatTypeInContext(c->ctx), 16);
  LLVMValueRef lane[16], kwm[16];
  for (int i = 0; i < 16; i++) {
    lane[i] = be_i32(c, i);
    kwm[i] = LLVMConstInt(t_i1, i < g->KW, false);
  }
  LLVMValueRef lanes = LLVMConstVector(lane, 16), kwmask = LLVMConstVector(kwm, 16);
  BeLoop rq, ch, cq;
  be_for(c, &rq, be_i64(c, 0), be_i64(c, g->Rq), "rq");
  LLVMValueRef rowin, px0, ihc = band_row(c, g, oh0, rq.iv, a, pbase, &rowin, &px0);
  LLVMValueRef rowmask = LLVMBuildAnd(c->b, kwmask, be_vsplat(c, rowin), "");
  be_for(c, &ch, be_i64(c, 0), be_i64(c, g->C), "ch");
  LLVMValueRef src0 = be_mulk(c, be_add(c, be_mulk(c, ch.iv, g->IH), ihc), g->IW);
  be_for(c, &cq, be_i64(c, 0), be_i64(c, g->Wq), "cq");
  LLVMValueRef iw0 = be_addk(c, be_mulk(c, cq.iv, g->sw), -g->pl);
  LLVMValueRef iwv =
      LLVMBuildAdd(c->b, be_vsplat(c, LLVMBuildTrunc(c->b, iw0, c->t_i32, "")), lanes, "");
  LLVMValueRef inside =
      LLVMBuildICmp(c->b, LLVMIntULT, iwv, be_vsplat(c, be_i32(c, (int)g->IW)), "");
  inside = LLVMBuildAnd(c->b, inside, rowmask, "");
  /* not inbounds: at the left edge the first lanes lie before the row
     (masked off, never read) */
  LLVMValueRef at = be_add(c, src0, iw0);
  LLVMValueRef src = LLVMBuildGEP2(c->b, c->t_f32, k->in[0], &at, 1, "");
  LLVMTypeRef lt[2] = {c->t_v16, c->t_ptr};
  LLVMValueRef la[4] = {src, be_i32(c, 4), inside, LLVMConstNull(c->t_v16)};
  LLVMValueRef x = be_intrinsic(c, "llvm.masked.load", lt, 2, la, 4);
  LLVMValueRef h = LLVMBuildFPTrunc(c->b, x, vb, "");
  LLVMValueRef dst = eptr(
      c, g, buf, be_add(c, be_mulk(c, be_add(c, px0, cq.iv), g->Cp), be_mulk(c, ch.iv, g->KW)));
  LLVMTypeRef st[2] = {vb, c->t_ptr};
  LLVMValueRef sa[4] = {h, dst, be_i32(c, 2), kwmask};
  be_intrinsic(c, "llvm.masked.store", st, 2, sa, 4);
  be_for_end(c, &cq);
  be_for_end(c, &ch);
  zero_tail(c, g, buf, px0, g->C * g->KW);
  be_for_end(c, &rq);
}

/* Step 1 for the band starting at output row oh0, from an NCHW16c input:
   16 channels of a pixel at a time. */
static void convert_band_blocked(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf,
                                 LLVMValueRef oh0, int64_t a, int64_t b, int64_t pbase) {
  BeLoop rq, cb, cq;
  be_for(c, &rq, be_i64(c, 0), be_i64(c, g->Rq), "rq");
  LLVMValueRef rowin, px0, ihc = band_row(c, g, oh0, rq.iv, a, pbase, &rowin, &px0);
  be_for(c, &cb, be_i64(c, 0), be_i64(c, g->C / 16), "cb");
  LLVMValueRef src0 = be_mulk(c, be_add(c, be_mulk(c, cb.iv, g->IH), ihc), g->IW);
  be_for(c, &cq, be_i64(c, 0), be_i64(c, g->Wq), "cq");
  LLVMValueRef iw = be_addk(c, be_mulk(c, cq.iv, g->sw), b - g->pl);
  LLVMValueRef inside = LLVMBuildAnd(c->b, rowin, in_range(c, iw, g->IW), "");
  LLVMValueRef iwc = LLVMBuildSelect(c->b, inside, iw, be_i64(c, 0), "");
  LLVMValueRef x = be_vld(c, k->in[0], be_mulk(c, be_add(c, src0, iwc), 16), 4);
  x = LLVMBuildSelect(c->b, inside, be_gate_block(c, k, cb.iv, x), LLVMConstNull(c->t_v16), "");
  LLVMValueRef px = be_add(c, px0, cq.iv);
  store_elems(c, k, g, buf, be_add(c, be_mulk(c, px, g->Cp), be_mulk(c, cb.iv, 16)), x);
  be_for_end(c, &cq);
  be_for_end(c, &cb);
  zero_tail(c, g, buf, px0, g->C);
  be_for_end(c, &rq);
}

/* Step 1: every phase plane a tap reads. */
static void convert_band(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf, LLVMValueRef oh0) {
  for (int64_t a = 0; a < g->sh; a++)
    for (int64_t b = 0; b < g->PW; b++) {
      if (!plane_used(g, a, b))
        continue;
      if (g->in_blocked)
        convert_band_blocked(c, k, g, buf, oh0, a, b, plane_base(g, a, b));
      else if (g->cmajor)
        convert_band_cmajor(c, k, g, buf, oh0, a, plane_base(g, a, b));
      else
        convert_band_nchw(c, k, g, buf, oh0, a, b, plane_base(g, a, b));
    }
}

/* The buffer pixel tap (kh, kw) reads for output pixel q = 0 (for q: that plus q). */
static int64_t tap_offset(const Geo *g, int64_t kh, int64_t kw) {
  int64_t hh = kh * g->dh, ww = g->fold ? 0 : kw * g->dw;
  return plane_base(g, hh % g->sh, ww % g->sw) + hh / g->sh * g->Wq + ww / g->sw;
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
    for (int64_t kw = 0; kw < g->TW; kw++) {
      LLVMValueRef px = be_addk(c, q0, tap_offset(g, kh, kw));
      LLVMValueRef wt = be_mulk(c, be_addk(c, be_mulk(c, ob, g->taps), kh * g->TW + kw), g->NKC);
      BeLoop kc;
      be_for(c, &kc, be_i64(c, 0), be_i64(c, g->NKC), "kc");
      LLVMValueRef xa = be_add(c, be_mulk(c, px, g->Cp), be_mulk(c, kc.iv, 64 / g->eb));
      tile_load(c, 4, eptr(c, g, buf, xa), g->Cp * g->eb);
      tile_load(c, 5, eptr(c, g, buf, be_addk(c, xa, 16 * g->Cp)), g->Cp * g->eb);
      LLVMValueRef wb = be_mulk(c, be_add(c, wt, kc.iv), 1024); /* bytes */
      for (int j = 0; j < nn; j++) {
        LLVMValueRef at = be_addk(c, wb, j * g->taps * g->NKC * 1024);
        tile_load(c, 6 + j, LLVMBuildInBoundsGEP2(c->b, c->t_i8, k->par[P_WEIGHT], &at, 1, ""), 64);
      }
      for (int j = 0; j < nn; j++)
        for (int mi = 0; mi < 2; mi++) {
          LLVMValueRef a[3] = {tmm(c, mi + 2 * j), tmm(c, 4 + mi), tmm(c, 6 + j)};
          tile_call(c, g->int8 ? "llvm.x86.tdpbusd" : "llvm.x86.tdpbf16ps", a, 3);
        }
      be_for_end(c, &kc);
    }
}

/* ------------------------------------------------ dpbf16: step 2 by vdpbf16ps */

/* The tap offsets (tap_offset) as a constant table of the module. */
static LLVMValueRef tap_table(BeCtx *c, const Geo *g) {
  int64_t *v = xmalloc(sizeof(int64_t) * (size_t)g->taps);
  for (int64_t kh = 0; kh < g->KH; kh++)
    for (int64_t kw = 0; kw < g->TW; kw++)
      v[kh * g->TW + kw] = tap_offset(g, kh, kw);
  LLVMValueRef t = be_table_i64(c, "cnncc.dp.taps", v, (int)g->taps);
  free(v);
  return t;
}

/* One channel pair (pr of the 32 from kc) of every tap's sum: per block a
   row of 16 output channels' weight pairs, per pixel its pair broadcast,
   acc[j][i] += their dot products (vdpbf16ps, fp32 sums). */
static void dp_pair(BeCtx *c, const Geo *g, LLVMValueRef xp, LLVMValueRef wp, LLVMValueRef pr,
                    int nn, LLVMValueRef acc[2][DP_TILE]) {
  LLVMTypeRef tb = LLVMVectorType(LLVMBFloatTypeInContext(c->ctx), 32);
  LLVMValueRef w[2];
  for (int j = 0; j < nn; j++) {
    LLVMValueRef at = be_addk(c, be_mulk(c, pr, 64), j * g->taps * g->NKC * 1024);
    w[j] = LLVMBuildLoad2(c->b, tb, LLVMBuildInBoundsGEP2(c->b, c->t_i8, wp, &at, 1, ""), "");
    LLVMSetAlignment(w[j], 64);
  }
  LLVMTypeRef vi = LLVMVectorType(c->t_i32, 16);
  for (int i = 0; i < g->TP; i++) {
    int64_t px = g->rows ? i / g->OW * g->Wq + i % g->OW : i; /* buffer pixel of slot i */
    LLVMValueRef at = be_addk(c, be_mulk(c, pr, 4), px * g->Cp * 2);
    LLVMValueRef pair =
        LLVMBuildLoad2(c->b, c->t_i32, LLVMBuildInBoundsGEP2(c->b, c->t_i8, xp, &at, 1, ""), "");
    LLVMSetAlignment(pair, 4);
    /* an i32 splat, the last operand: the load folds into vdpbf16ps as an
       embedded broadcast ({1to16}) */
    LLVMValueRef x = LLVMBuildInsertElement(c->b, LLVMGetPoison(vi), pair, be_i32(c, 0), "");
    x = LLVMBuildShuffleVector(c->b, x, LLVMGetPoison(vi), LLVMConstNull(vi), "");
    x = LLVMBuildBitCast(c->b, x, tb, "");
    for (int j = 0; j < nn; j++) {
      LLVMValueRef a[3] = {acc[j][i], w[j], x};
      acc[j][i] = be_intrinsic(c, "llvm.x86.avx512bf16.dpbf16ps.512", NULL, 0, a, 3);
    }
  }
}

/* Step 2 of dpbf16: the TP (<= DP_TILE) pixels from q0 and the nn blocks
   from ob in fp32 registers over every tap and channel pair, then stored
   to cbuf where epilogue reads a tile's rows: pixel i of block j at
   cbuf[j * 512 + i * 16]. */
static void dp_multiply(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf, LLVMValueRef cbuf,
                        LLVMValueRef q0, LLVMValueRef ob, int nn) {
  LLVMValueRef var[2][DP_TILE], acc[2][DP_TILE];
  for (int j = 0; j < nn; j++)
    for (int i = 0; i < g->TP; i++) {
      var[j][i] = be_var(c, c->t_v16, "dpacc");
      LLVMBuildStore(c->b, LLVMConstNull(c->t_v16), var[j][i]);
    }
  LLVMValueRef table = tap_table(c, g);
  BeLoop t, kc;
  be_for(c, &t, be_i64(c, 0), be_i64(c, g->taps), "tap");
  LLVMValueRef px = be_add(c, q0, be_ld_i64(c, table, t.iv));
  LLVMValueRef wt = be_mulk(c, be_add(c, be_mulk(c, ob, g->taps), t.iv), g->NKC);
  be_for(c, &kc, be_i64(c, 0), be_i64(c, g->NKC), "kc");
  LLVMValueRef xp = eptr(c, g, buf, be_add(c, be_mulk(c, px, g->Cp), be_mulk(c, kc.iv, 32)));
  LLVMValueRef wb = be_mulk(c, be_add(c, wt, kc.iv), 1024); /* bytes */
  LLVMValueRef wp = LLVMBuildInBoundsGEP2(c->b, c->t_i8, k->par[P_WEIGHT], &wb, 1, "");
  /* a loop of 16 pairs, not 16 copies: in one block the scheduler hoisted
     every broadcast and spilled them. The last 32 channels stop at the
     last pair holding a value (the rest are zeros times zero weights): a
     folded 7x7 stem of 3 channels has 11 of 16 pairs, a 16-channel input
     8. */
  int64_t ck = g->fold ? g->KW * g->C : g->C, lastp = (ck - (g->NKC - 1) * 32 + 1) / 2;
  LLVMValueRef npr = be_i64(c, 16);
  if (lastp < 16) {
    LLVMValueRef last = LLVMBuildICmp(c->b, LLVMIntEQ, kc.iv, be_i64(c, g->NKC - 1), "");
    npr = LLVMBuildSelect(c->b, last, be_i64(c, lastp), npr, "");
  }
  BeLoop pr;
  be_for(c, &pr, be_i64(c, 0), npr, "pair");
  for (int j = 0; j < nn; j++)
    for (int i = 0; i < g->TP; i++)
      acc[j][i] = LLVMBuildLoad2(c->b, c->t_v16, var[j][i], "");
  dp_pair(c, g, xp, wp, pr.iv, nn, acc);
  for (int j = 0; j < nn; j++)
    for (int i = 0; i < g->TP; i++)
      LLVMBuildStore(c->b, acc[j][i], var[j][i]);
  be_for_end(c, &pr);
  be_for_end(c, &kc);
  be_for_end(c, &t);
  for (int j = 0; j < nn; j++)
    for (int i = 0; i < g->TP; i++)
      be_vst(c, cbuf, be_i64(c, j * 512 + i * 16), LLVMBuildLoad2(c->b, c->t_v16, var[j][i], ""),
             64);
}

/* ---------------------------------------------------------- the epilogue */

/* The index of block ob's pixel pix in a full NCHW16c tensor of the output's shape. */
static LLVMValueRef res_idx(BeCtx *c, const Geo *g, LLVMValueRef ob, LLVMValueRef pix) {
  return be_mulk(c, be_add(c, be_mulk(c, ob, g->OH * g->OW), pix), 16);
}

/* Step 3: the nn blocks from ob of the TP pixels from q0 of the band at
   output row oh0, accumulated in tiles mi + 2j (dp: stored by dp_multiply
   in the same places of cbuf). */
static void epilogue(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef cbuf, LLVMValueRef oh0,
                     LLVMValueRef q0, LLVMValueRef ob, int nn) {
  for (int t = 0; t < 2 * nn && !g->dp; t++) {
    LLVMValueRef a[3] = {tmm(c, t), be_fptr(c, cbuf, be_i64(c, t * 256)), be_i64(c, 64)};
    tile_call(c, "llvm.x86.tilestored64", a, 3);
  }
  LLVMValueRef bias = k->n->nparams > P_BIAS ? k->par[P_BIAS] : NULL, meta = NULL;
  if (g->int8) { /* scale, zero-point correction, bias after the weight bytes */
    LLVMValueRef at = be_i64(c, g->OC * g->taps * g->Cp);
    meta = LLVMBuildInBoundsGEP2(c->b, c->t_i8, k->par[P_WEIGHT], &at, 1, "");
  }
  BeLoop s;
  be_for(c, &s, be_i64(c, 0), be_i64(c, g->TP), "slot");
  LLVMValueRef q = be_add(c, q0, s.iv);
  LLVMValueRef r = LLVMBuildUDiv(c->b, q, be_i64(c, g->Wp), "");
  LLVMValueRef ow = be_sub(c, q, be_mulk(c, r, g->Wp));
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
    LLVMValueRef v = be_vld(c, cbuf, be_addk(c, crow, j * 512), 64), o16 = be_mulk(c, obj, 16);
    if (g->int8) { /* y = (acc - z * sum w) * s * sw + bias */
      LLVMTypeRef ti = LLVMVectorType(c->t_i32, 16);
      LLVMValueRef zw = LLVMBuildLoad2(c->b, ti, be_fptr(c, meta, be_addk(c, o16, g->OC)), "");
      LLVMSetAlignment(zw, 64);
      LLVMValueRef acc = LLVMBuildSub(c->b, LLVMBuildBitCast(c->b, v, ti, ""), zw, "");
      v = be_fmul(c, LLVMBuildSIToFP(c->b, acc, c->t_v16, ""), be_vld(c, meta, o16, 64));
      v = be_fadd(c, v, be_vld(c, meta, be_addk(c, o16, 2 * g->OC), 64));
    } else if (bias) {
      v = be_fadd(c, v, be_vld(c, bias, o16, 64));
    }
    if (k->res)
      v = be_fadd(c, v, be_vld(c, k->res, res_idx(c, g, obj, pix), 4));
    v = be_zero_padded_block(c, k->n, obj, be_act(c, &k->n->epi.act, v));
    be_split_out(c, k, obj, 16, &base, &local);
    be_vst(c, base, res_idx(c, g, local, pix), v, 64);
  }
  be_endif(c, &valid);
  be_for_end(c, &s);
}

/* Steps 2 and 3 for the nn blocks from ob over every pixel tile pair of
   the band. */
static void pixel_tiles(BeCtx *c, KArgs *k, const Geo *g, LLVMValueRef buf, LLVMValueRef cbuf,
                        LLVMValueRef oh0, LLVMValueRef ob, int nn) {
  BeLoop mp;
  be_for(c, &mp, be_i64(c, 0), be_i64(c, g->MP), "mp");
  LLVMValueRef q0 = be_mulk(c, mp.iv, g->TP);
  if (g->rows) { /* the buffer pixel of slot q0 */
    LLVMValueRef r = LLVMBuildUDiv(c->b, q0, be_i64(c, g->OW), "");
    LLVMValueRef ow = be_sub(c, q0, be_mulk(c, r, g->OW));
    dp_multiply(c, k, g, buf, cbuf, be_add(c, be_mulk(c, r, g->Wq), ow), ob, nn);
  } else if (g->dp)
    dp_multiply(c, k, g, buf, cbuf, q0, ob, nn);
  else
    multiply(c, k, g, buf, q0, ob, nn);
  epilogue(c, k, g, cbuf, oh0, q0, ob, nn);
  be_for_end(c, &mp);
}

static void emit(BeCtx *c, KArgs *k, bool dp) {
  Geo g;
  geo(c->cfg, k->n, dp, &g);
  LLVMValueRef buf =
      be_var(c, LLVMArrayType2(c->t_i8, (uint64_t)(g.bufpx * g.Cp * g.eb)), "amxbuf");
  LLVMSetAlignment(buf, 64);
  LLVMValueRef cbuf = be_var(c, LLVMArrayType2(c->t_f32, 1024), "amxacc");
  LLVMSetAlignment(cbuf, 64);
  if (!dp) {
    LLVMValueRef cfg = tile_config(c);
    tile_call(c, "llvm.x86.ldtilecfg", &cfg, 1);
  }

  BeLoop it, np;
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
  pixel_tiles(c, k, &g, buf, cbuf, oh0, be_add(c, ob0, be_mulk(c, np.iv, 2)), 2);
  be_for_end(c, &np);
  if (g.OCB % 2) { /* an odd block count: the last group ends with one */
    BeIf odd;
    LLVMValueRef last = be_add(c, ob0, be_mulk(c, npairs, 2));
    be_if(c, &odd, LLVMBuildICmp(c->b, LLVMIntSLT, last, ob1, ""));
    pixel_tiles(c, k, &g, buf, cbuf, oh0, last, 1);
    be_endif(c, &odd);
  }
  be_for_end(c, &it);
  if (!dp)
    tile_call(c, "llvm.x86.tilerelease", NULL, 0);
}

void be_emit_conv_amx(BeCtx *c, KArgs *k) { emit(c, k, false); }
void be_emit_conv_dpbf16(BeCtx *c, KArgs *k) { emit(c, k, true); }

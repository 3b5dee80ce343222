/*
 * winograd.c: stride-1 convolutions on NCHW16c by Winograd's minimal
 * filtering. 3x3 as F(m x m, 3 x 3): m = 4 (6x6 transform points, 4x fewer
 * multiplies than direct) on planes of 27x27 and more and on 13x13,
 * m = 2 (4x4 points, 2.25x fewer) on 14x14 to 26x26 and, fp32 only, on
 * 7x7 to 12x12; 5x5 as F(2x2, 5x5) (6x6 points,
 * 2.8x fewer); 1x7 / 7x1 (Inception's) by F(6, 7) along their long axis
 * (1x6 or 6x1 output tiles, 12 points for 42 multiplies: 3.5x fewer), 1x3 /
 * 3x1 by F(4, 3) (2x fewer). Each axis has its own transform (WDim), the
 * short axis of a 1-D conv the identity, so the code below is the 2-D
 * scheme with tiles of mh x mw pixels and Ah x Aw points. Taken only with
 * Tuning.winograd (cnncc --winograd=on, the default at -O2 and -O3).
 *
 * Weights are transformed at compile time, as the blob is written
 * (be_pack_conv_winograd, in double precision): U = G_h g G_w^T per
 * (output, input channel), stored as [oc/16][point][ic][16 oc]; the blob
 * slot of such a weight holds Ah*Aw / (kh*kw) times the weights
 * (be_packed_numel_winograd).
 *
 * The output tiles (mh x mw pixels each) are numbered row-major and cut into
 * chunks of TC tiles (T = 7 by default, 6 for F(6, 7), up to 14 for F(2x2)
 * on AVX-512;
 * --tune winograd.chunk register tiles per chunk, 1 by default: more cuts
 * the rereading of the transformed weights of 512-channel layers by ~10%
 * but leaves less room for channels).
 * A work item is (NGI groups of OCB output blocks) x (chunk), groups
 * outermost as in blocked.c so that consecutive items reuse the groups'
 * transformed weights from L2. For each chunk, for each run of CB input
 * blocks of 16 channels:
 *   - input transform V = B^T d B of the T tiles into a stack buffer
 *     V[block][point][tile][16] (border tiles read zeros for the padding),
 *     once for all NGI groups;
 *   - per group, per transform point, a register-tiled GEMM step: OCB
 *     weight vectors x T broadcast inputs into OCB*T accumulators over the
 *     CB*16 channels, added into M[group][point][block][tile][16] (stack).
 * Then, per group, block and tile, the output transform Y = A^T M A, the
 * bias, the fused residual add and ReLU, and the store (clipped at the
 * bottom and right edges). CB and NGI are as large as fit 256 KB (V) and
 * 64 KB (M): a kernel uses at most 320 KB of stack (the runtime allocates
 * nothing; glibc's default thread stack is 8 MB). Measured: accumulating
 * over all input channels in registers (a large V) matters most, then
 * sharing the input transform between a few groups (NGI).
 *
 * Which convs: be_conv_winograd_accepts (3x3, 5x5, 1x7, 7x1, 1x3 or 3x1,
 * stride 1, dilation 1, one group, blocked input and output, no split
 * output, >= winograd.min_ic (16) input and >= 32 output channels, output
 * plane >= winograd.min_hw (13x13; 1-D: 8x8; fp32 3x3: winograd.min_hw2,
 * 7x7); the 5x5 and 1-D ones not
 * with bf16 weights). Measured error and speed:
 * docs/performance.md, "Winograd". The winograd.* keys of --tune override
 * the choices (backend/tuning.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"

/* ------------------------------------------------------------ the matrices */

/* clang-format off */
/* F(2x2, 3x3): A = 4. */
static const double BT2[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double AT2[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};

/* F(4x4, 3x3): A = 6, points 0, 1, -1, 2, -2, inf. */
static const double BT4[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0},
                                 {0, 4, -4, -1, 1, 0}, {0, -2, -1, 2, 1, 0},
                                 {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                {0, 0, 1}};
static const double AT4[4][6] = {{1, 1, 1, 1, 1, 0},
                                 {0, 1, -1, 2, -2, 0},
                                 {0, 1, 1, 4, 4, 0},
                                 {0, 1, -1, 8, -8, 1}};
/* clang-format on */

/* F(2x2, 5x5): A = 6 as F(4x4, 3x3) and the same points, hence the same
   B^T (it depends on the points only); G evaluates the 5 taps and A^T
   the 2 outputs at them (with 0, 1, -1, 2, -2's scales 1/4, -1/6, -1/6,
   1/24, 1/24 in G, as G4). */
/* clang-format off */
static const double G25[6][5] = {{1.0 / 4, 0, 0, 0, 0},
                                 {-1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6},
                                 {-1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6},
                                 {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3},
                                 {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3},
                                 {0, 0, 0, 0, 1}};
static const double AT25[2][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 1}};
/* clang-format on */

/* The 1-D 7-tap convs (Inception's 1x7 and 7x1) run F(m, 7) along their
   one long axis, with the points 0, +-1, +-2, +-1/2, +-3/2 (+-2/3 for
   m = 6) and inf. Simulated in float32 (192 channels of [0, 1) inputs,
   N(0, 1) weights), the error is 3e-6 (m = 4) and 7e-6 (m = 6) of
   max|out|, against 5e-7 for F(2, 7). */
static const double PTS7[] = {0, 1, -1, 2, -2, 0.5, -0.5, 1.5, -1.5, 2.0 / 3, -2.0 / 3};

/* F(6, 7) rather than F(4, 7): 17 = 3 tiles of 6 (18 pixels, 12 points
   each) against 5 tiles of 4 (20 pixels, 10 points each), 2.6x fewer
   multiplies than direct instead of 2.4x (before the transforms).
   Measured (2026-12-07, Inception-v4, one thread, fastest of 20 calls per
   layer, loaded machine): its 44 1x7 / 7x1 layers 72 ms direct, 35 ms with
   F(4, 7), 30 ms with F(6, 7). */
enum { WINO7_M = 6 };

enum { WA = 12, WM = 6, WR = 7 }; /* largest A, m and r of one dimension */

/* One dimension of the transform: F(m, r) over A = m + r - 1 points; the
   dimension of a 1-D conv's length-1 axis has m = r = A = 1 (identity). */
typedef struct {
  int m, r, A;
  double bt[WA][WA], g[WA][WR], at[WM][WA];
  bool bt6;  /* B^T is F(4, 3)'s (F(2, 5)'s too): the factored bt4 below */
  bool at43; /* A^T is F(4, 3)'s: the factored at4 below */
} WDim;

static void wdim_identity(WDim *d) {
  memset(d, 0, sizeof *d);
  d->m = d->r = d->A = 1;
  d->bt[0][0] = d->g[0][0] = d->at[0][0] = 1;
}

static void wdim_3x3(WDim *d, int m) {
  memset(d, 0, sizeof *d);
  d->m = m, d->r = 3, d->A = m + 2, d->bt6 = d->at43 = m == 4;
  for (int i = 0; i < d->A; i++) {
    for (int j = 0; j < d->A; j++)
      d->bt[i][j] = m == 2 ? BT2[i][j] : BT4[i][j];
    for (int k = 0; k < 3; k++)
      d->g[i][k] = m == 2 ? G2[i][k] : G4[i][k];
    for (int y = 0; y < m; y++)
      d->at[y][i] = m == 2 ? AT2[y][i] : AT4[y][i];
  }
}

static void wdim_5x5(WDim *d) {
  memset(d, 0, sizeof *d);
  d->m = 2, d->r = 5, d->A = 6, d->bt6 = true;
  for (int i = 0; i < 6; i++) {
    for (int j = 0; j < 6; j++)
      d->bt[i][j] = BT4[i][j];
    for (int k = 0; k < 5; k++)
      d->g[i][k] = G25[i][k];
    for (int y = 0; y < 2; y++)
      d->at[y][i] = AT25[y][i];
  }
}

/* F(m, r) by Toom-Cook on the finite points a_0..a_{A-2} and inf:
   G[j][k] = a_j^k / prod_{l != j} (a_j - a_l), A^T[i][j] = a_j^i, row j of
   B^T the coefficients of prod_{l != j} (x - a_l), its last row those of
   prod_l (x - a_l); the inf point takes g's last tap and the last output. */
static void wdim_points(WDim *d, int m, int r, const double *a) {
  memset(d, 0, sizeof *d);
  d->m = m, d->r = r, d->A = m + r - 1;
  int nf = d->A - 1; /* finite points */
  for (int j = 0; j <= nf; j++) {
    double poly[WA] = {1}; /* prod over l != j (all of them for j = nf) */
    int deg = 0;
    double nj = 1;
    for (int l = 0; l < nf; l++) {
      if (l == j)
        continue;
      for (int e = ++deg; e >= 0; e--)
        poly[e] = (e ? poly[e - 1] : 0) - a[l] * poly[e];
      if (j < nf)
        nj *= a[j] - a[l];
    }
    for (int e = 0; e <= deg; e++)
      d->bt[j][e] = poly[e];
    for (int k = 0; k < r; k++)
      d->g[j][k] = j < nf ? pow(a[j], k) / nj : k == r - 1;
    for (int y = 0; y < m; y++)
      d->at[y][j] = j < nf ? pow(a[j], y) : y == m - 1;
  }
}

/* ------------------------------------------------------------ the decision */

/* The transform of each axis (h, w) when n runs as Winograd; false if it
   does not. */
static bool wino_dims(const BeConfig *cf, const Node *n, WDim *dh, WDim *dw) {
  const Tuning *tu = cf->tune;
  if (!tu->winograd || n->dead || n->op != OP_CONV2D || n->split)
    return false;
  const Attrs *a = &n->attr;
  if (n->layout != LAYOUT_NCHW16C || n->in[0]->layout != LAYOUT_NCHW16C)
    return false;
  int64_t kh = a->kernel[0], kw = a->kernel[1];
  bool sq = kh == 3 && kw == 3, sq5 = kh == 5 && kw == 5, row = kh == 1 && (kw == 7 || kw == 3),
       col = kw == 1 && (kh == 7 || kh == 3);
  if (!(sq || sq5 || row || col) || a->stride[0] != 1 || a->stride[1] != 1 || a->dilation[0] != 1 ||
      a->dilation[1] != 1 || a->groups != 1)
    return false;
  const Shape *is = &n->in[0]->shape;
  int64_t IC = is->d[0], OC = n->shape.d[0], OH = n->shape.d[1], OW = n->shape.d[2];
  if (IC % 16 || OC % 16 || a->pad[0] > kh - 1 || a->pad[1] > kw - 1)
    return false;
  /* Cost rule (docs/performance.md, "Winograd"): enough input channels for
     the transforms to amortize, and enough pixels to fill the tiles. 16
     input channels suffice: SqueezeNet's 16- and 32-channel 3x3 convs at
     54x54 ran 2.7-2.9x faster as F(4x4) than direct, Inception-v4's
     147x147 32-channel stem convs 3.4 -> 1.3 and 7.1 -> 2.4 ms, GoogLeNet's
     three 32-channel 3x3 convs 0.36 -> 0.13, 0.06 -> 0.04, 0.12 -> 0.07 ms
     (one thread). */
  int min_ic = tu->winograd_min_ic, min_hw = tu->winograd_min_hw;
  /* 1-D tiles waste nothing across their short axis, and their transformed
     weights are 2x (F(4, 3)) resp. 1.7x (F(6, 7)) the direct ones rather
     than 4x: down to 8x8 planes (Inception-v4's 1x3 / 3x1 convs, 384-512
     channels at 8x8: 0.31-0.71 -> 0.19-0.43 ms, one thread). */
  if ((row || col) && min_hw > 8)
    min_hw = 8;
  /* fp32 3x3 on planes of 7x7 to 12x12 (ResNet's last stage, GoogLeNet's
     5a / 5b, DenseNet's last block): F(2x2), 16 tiles on 7x7 (8x8 computed,
     1.3x the pixels, so 1.7x fewer multiplies than direct) and 2.25x the
     direct weights rather than F(4x4)'s 4x for 4 tiles. ResNet-50's
     layer4 3x3 (512 channels) 1.95 -> 1.26 ms on Zen 4, one thread, where
     F(4x4) had been slower than direct (docs/performance.md). */
  bool small2 = sq && cf->precision == PRECISION_FP32 && (OH < min_hw || OW < min_hw) &&
                OH >= tu->winograd_min_hw2 && OW >= tu->winograd_min_hw2;
  if (IC < min_ic || OC < 32 || ((OH < min_hw || OW < min_hw) && !small2))
    return false;
  /* 5x5 (AlexNet's conv2): F(2x2, 5x5), 36 points for 4 outputs against
     100 multiplies; fp32 only (its G and A^T are F(4x4)'s in size, whose
     bf16 rounding is the reason bf16 takes F(2x2, 3x3) below). */
  if (sq5) {
    if (cf->precision == PRECISION_BF16)
      return false;
    wdim_5x5(dh);
    wdim_5x5(dw);
    return true;
  }
  if (!sq) {
    /* bf16 weights keep the direct conv: the 1-D transforms were not
       measured against bf16 rounding. 1x3 / 3x1: F(4, 3), 7 taps: F(6, 7). */
    if (cf->precision == PRECISION_BF16)
      return false;
    WDim one, seven;
    wdim_identity(&one);
    if (kh * kw == 7)
      wdim_points(&seven, WINO7_M, 7, PTS7);
    else
      wdim_3x3(&seven, 4);
    *dh = row ? one : seven;
    *dw = row ? seven : one;
    return true;
  }
  int m;
  if (tu->winograd_m)
    m = tu->winograd_m;
  else if (small2)
    m = 2;
  /* bf16 weights (bf16.c): F(4x4)'s output transform amplifies the rounding
     of its transformed weights (4% of max|out| on one layer, measured);
     F(2x2) keeps it near bf16's own (docs/precision.md). On a dpbf16
     target F(4x4) runs with fp32 weights (be_winograd_fp32_weights). */
  else if (cf->precision == PRECISION_BF16 && !be_bf16_dp_target(cf))
    m = 2;
  /* F(4x4) where 4x4 tiles cover the plane with little waste (27x27
     and more) and on the planes below 14x14: SqueezeNet's and AlexNet's
     13x13 and 27x27 layers ran faster as F(4x4) than as F(2x2) but for
     AlexNet's conv4 (384 -> 256, 8% slower), one thread, fastest of 30
     calls (docs/performance.md, "fp32 speed of SqueezeNet 1.0 and
     AlexNet"). F(2x2) on 14x14 to 26x26, where it was measured faster
     on ResNet's and VGG's 256-512-channel layers. */
  else
    m = (OH >= 27 && OW >= 27) || OH < 14 || OW < 14 ? 4 : 2;
  wdim_3x3(dh, m);
  wdim_3x3(dw, m);
  return true;
}

bool be_conv_winograd_accepts(const BeConfig *cf, const Node *n) {
  WDim dh, dw;
  return wino_dims(cf, n, &dh, &dw);
}

bool be_winograd_fp32_weights(const BeConfig *cf, const Node *n) {
  WDim dh, dw;
  return be_bf16_dp_target(cf) && wino_dims(cf, n, &dh, &dw) && dh.m == 4 && dw.m == 4;
}

int64_t be_packed_numel_winograd(const BeConfig *cf, const Node *n) {
  WDim dh, dw;
  CHECK(wino_dims(cf, n, &dh, &dw), "'%s' is no Winograd conv", n->name);
  return n->shape.d[0] * n->in[0]->shape.d[0] * dh.A * dw.A;
}

float *be_pack_conv_winograd(const BeConfig *cf, const Node *n) {
  const Param *w = n->params[P_WEIGHT];
  WDim dh, dw;
  bool ok = wino_dims(cf, n, &dh, &dw);
  int64_t OC = n->shape.d[0], IC = n->in[0]->shape.d[0];
  int rh = dh.r, rw = dw.r, Ah = dh.A, Aw = dw.A, A2 = Ah * Aw;
  CHECK(ok && param_numel(w) == OC * IC * rh * rw, "weight '%s' of '%s'", w->name, n->name);
  float *dst = xmalloc((size_t)(OC * IC * A2) * sizeof(float));
  for (int64_t oc = 0; oc < OC; oc++)
    for (int64_t ic = 0; ic < IC; ic++) {
      /* U = G_h g G_w^T */
      const float *g = w->data + (oc * IC + ic) * rh * rw;
      double t[WA][WR], u[WA][WA];
      for (int i = 0; i < Ah; i++)
        for (int j = 0; j < rw; j++) {
          t[i][j] = 0;
          for (int k = 0; k < rh; k++)
            t[i][j] += dh.g[i][k] * g[k * rw + j];
        }
      for (int i = 0; i < Ah; i++)
        for (int j = 0; j < Aw; j++) {
          u[i][j] = 0;
          for (int k = 0; k < rw; k++)
            u[i][j] += t[i][k] * dw.g[j][k];
        }
      int64_t ob = oc / 16, l = oc % 16;
      for (int p = 0; p < A2; p++)
        dst[((ob * A2 + p) * IC + ic) * 16 + l] = (float)u[p / Aw][p % Aw];
    }
  return dst;
}

/* ------------------------------------------------------------------ plan */

typedef struct {
  WDim dh, dw;    /* the transforms along h and w */
  int mh, mw;     /* output tile: mh x mw pixels */
  int Ah, Aw, A2; /* input tile Ah x Aw, A2 transform points */
  int64_t IC, IH, IW, OC, OH, OW, pt, pl, NB, NICB;
  int OCB, T;           /* register tile: OCB blocks x T tiles */
  int64_t TC;           /* tiles per chunk (a multiple of T but for the last) */
  int64_t NG, NTR, NTW; /* tile groups, rows and columns of tiles */
  int64_t NCH, TL;      /* chunks of T tiles (row-major order), last one's size */
  int64_t CB;           /* input blocks transformed together (a divisor of NICB) */
  int64_t NGI;          /* tile groups per work item, sharing one input transform */
} WPlan;

static void wplan(const BeConfig *cf, const Node *n, WPlan *p) {
  const Tuning *tu = cf->tune;
  memset(p, 0, sizeof *p);
  CHECK(wino_dims(cf, n, &p->dh, &p->dw), "'%s' is no Winograd conv", n->name);
  p->mh = p->dh.m, p->mw = p->dw.m;
  p->Ah = p->dh.A, p->Aw = p->dw.A, p->A2 = p->Ah * p->Aw;
  const Shape *is = &n->in[0]->shape;
  p->IC = is->d[0], p->IH = is->d[1], p->IW = is->d[2];
  p->OC = n->shape.d[0], p->OH = n->shape.d[1], p->OW = n->shape.d[2];
  p->pt = n->attr.pad[0], p->pl = n->attr.pad[1];
  p->NB = p->OC / 16, p->NICB = p->IC / 16;
  int ocb = 1, tmax = 6;
  if (cf->target.avx512) {
    /* 14 accumulators: with V and M from the stack buffers below, smaller
       tiles measured faster than 24 (12 tiles x 2 blocks); the inputs and
       weights are reread less, and the buffers stay nearer in cache.
       F(2x2) runs the deep layers (14x14: 256-512 channels), whose
       transformed weights (4-17 MB) stream from L3 once per chunk: there
       up to 2 x 14 tiles (28 accumulators) halve the weight loads per fma
       and the chunks. Measured (2026-12-07, one thread, fastest of 30-50
       calls, loaded machine): ResNet-50's five F(2x2) layers 1.24-1.31 ->
       1.05-1.08 ms, ResNet-152's 45 Winograd layers (35 of them F(2x2))
       51.4 -> 44.5 ms in all; F(4x4) (56x56, 64 channels) lost 3-8% with
       14. F(6, 7) (1x7 / 7x1, 17x17: 51 tiles) runs 6 tiles (12
       accumulators): Inception-v4's 44 such layers 30.6-31.0 -> 27.8-27.9
       ms against 7 (one thread, fastest of 30 calls, three rounds). */
    if (p->NB % 2 == 0)
      ocb = 2, tmax = p->Ah == 4 && p->Aw == 4 ? 14 : p->dw.r == 7 || p->dh.r == 7 ? 6 : 7;
    else
      ocb = 1, tmax = 14;
  } else if (be_v16_regs(&cf->target) < 8)
    tmax = 2; /* SSE: 8 xmm accumulators, as the direct conv */
  else if (be_bcast_by_lane(&cf->target))
    tmax = 5; /* NEON by lane: 20 accumulators, 5 inputs, 4 weights */
  if (tu->winograd_tile > 0)
    tmax = tu->winograd_tile;
  p->OCB = ocb;
  p->NG = p->NB / ocb;
  p->NTR = be_cdiv(p->OH, p->mh);
  p->NTW = be_cdiv(p->OW, p->mw);
  int64_t nt = p->NTR * p->NTW;
  p->T = (int)be_cdiv(nt, be_cdiv(nt, tmax));
  /* Register tiles per chunk: each chunk rereads the groups' transformed
     weights, so many tiles per chunk when the weights are large. */
  int64_t ns = tu->winograd_chunk;
  p->TC = p->T * ns;
  if (p->TC > nt)
    p->TC = nt;
  p->NCH = be_cdiv(nt, p->TC);
  p->TL = nt - (p->NCH - 1) * p->TC;
  /* As many input blocks per V buffer as fit the budget: the accumulators
     then run over CB*16 channels between two trips through M. */
  int64_t budget = (int64_t)tu->winograd_v_kb * 1024;
  p->CB = 1;
  for (int64_t cb = 1; cb <= p->NICB; cb++)
    if (p->NICB % cb == 0 && cb * p->A2 * p->TC * 64 <= budget)
      p->CB = cb;
  /* As many tile groups per item as their M buffers fit in the budget. */
  budget = (int64_t)tu->winograd_m_kb * 1024;
  p->NGI = 1;
  for (int64_t g = 1; g <= p->NG; g++)
    if (p->NG % g == 0 && g * p->A2 * p->OCB * p->TC * 64 <= budget)
      p->NGI = g;
  /* But at least 8 work items where the groups allow, for the threads: an
     8x8 plane is 3 chunks of tiles, so 3 items split 2:1 over two
     threads. */
  while (p->NGI > 1 && p->NG / p->NGI * p->NCH < 8) {
    int64_t g = p->NGI - 1;
    while (p->NG % g)
      g--;
    p->NGI = g;
  }
}

int64_t be_work_conv_winograd(const BeConfig *cf, const Node *n) {
  WPlan p;
  wplan(cf, n, &p);
  return p.NG / p.NGI * p.NCH;
}

/* ------------------------------------------------------------- emission */

/* out = sum_j row[j] * in[j] for a row of a small constant matrix (zeros
   skipped, +-1 as adds). */
static LLVMValueRef lincomb(BeCtx *c, const double *row, LLVMValueRef *in, int nin) {
  LLVMValueRef acc = NULL;
  for (int j = 0; j < nin; j++) {
    double w = row[j];
    if (w == 0)
      continue;
    LLVMValueRef term = in[j];
    if (w == 1 || w == -1) {
      if (!acc)
        acc = w == 1 ? term : LLVMBuildFNeg(c->b, term, "");
      else
        acc = w == 1 ? be_fadd(c, acc, term) : be_fsub(c, acc, term);
      continue;
    }
    LLVMValueRef k = be_vsplat(c, be_f32(c, (float)w));
    acc = acc ? be_vfma(c, k, term, acc) : be_fmul(c, k, term);
  }
  return acc ? acc : LLVMConstNull(c->t_v16);
}

/* out = B^T in (A values) along one dimension. */
static void bt_dim(BeCtx *c, const WDim *d, LLVMValueRef *in, LLVMValueRef *out);
/* out = A^T in (m values from A) along one dimension. */
static void at_dim(BeCtx *c, const WDim *d, LLVMValueRef *in, LLVMValueRef *out);

static LLVMValueRef vk(BeCtx *c, float k) { return be_vsplat(c, be_f32(c, k)); }

/* out = B^T in (A values) for F(4x4): the usual factored form, 14 ops. */
static void bt4(BeCtx *c, LLVMValueRef *d, LLVMValueRef *o) {
  o[0] = be_vfma(c, vk(c, 4), d[0], be_vfma(c, vk(c, -5), d[2], d[4]));
  o[1] = be_vfma(c, vk(c, -4), be_fadd(c, d[1], d[2]), be_fadd(c, d[3], d[4]));
  o[2] = be_vfma(c, vk(c, 4), be_fsub(c, d[1], d[2]), be_fsub(c, d[4], d[3]));
  LLVMValueRef f = be_fsub(c, d[4], d[2]), h = be_fsub(c, d[3], d[1]);
  o[3] = be_vfma(c, vk(c, 2), h, f);
  o[4] = be_vfma(c, vk(c, -2), h, f);
  o[5] = be_vfma(c, vk(c, 4), d[1], be_vfma(c, vk(c, -5), d[3], d[5]));
}

/* out = A^T in (m values from A) for F(4x4), 10 ops. */
static void at4(BeCtx *c, LLVMValueRef *d, LLVMValueRef *o) {
  LLVMValueRef s12 = be_fadd(c, d[1], d[2]), d12 = be_fsub(c, d[1], d[2]);
  LLVMValueRef s34 = be_fadd(c, d[3], d[4]), d34 = be_fsub(c, d[3], d[4]);
  o[0] = be_fadd(c, be_fadd(c, d[0], s12), s34);
  o[1] = be_vfma(c, vk(c, 2), d34, d12);
  o[2] = be_vfma(c, vk(c, 4), s34, s12);
  o[3] = be_fadd(c, be_vfma(c, vk(c, 8), d34, d12), d[5]);
}

typedef struct {
  WPlan *p;
  KArgs *k;
  LLVMValueRef V, M; /* stack scratch */
  LLVMValueRef og;   /* the item's first tile group */
  LLVMValueRef bias; /* bias pointer or NULL */
  LLVMValueRef acc[4][32];
} WCtx;

static void bt_dim(BeCtx *c, const WDim *d, LLVMValueRef *in, LLVMValueRef *out) {
  if (d->bt6)
    bt4(c, in, out);
  else
    for (int i = 0; i < d->A; i++)
      out[i] = lincomb(c, d->bt[i], in, d->A);
}

static void at_dim(BeCtx *c, const WDim *d, LLVMValueRef *in, LLVMValueRef *out) {
  if (d->at43)
    at4(c, in, out);
  else
    for (int y = 0; y < d->m; y++)
      out[y] = lincomb(c, d->at[y], in, d->A);
}

/* V[(pt*T + q)*16] = (B^T d B)[pt] for the tile at input (ih0, iw0). */
static void input_transform(BeCtx *c, WCtx *w, LLVMValueRef xplane, LLVMValueRef ih0,
                            LLVMValueRef iw0, LLVMValueRef q, LLVMValueRef voff, bool checked) {
  WPlan *p = w->p;
  int Ah = p->Ah, Aw = p->Aw;
  LLVMValueRef d[WA][WA], t[WA][WA];
  for (int i = 0; i < Ah; i++)
    for (int j = 0; j < Aw; j++) {
      LLVMValueRef ih = be_addk(c, ih0, i), iw = be_addk(c, iw0, j);
      if (!checked) {
        LLVMValueRef idx = be_add(c, xplane, be_mulk(c, be_add(c, be_mulk(c, ih, p->IW), iw), 16));
        d[i][j] = be_vld(c, w->k->in[0], idx, 64);
      } else {
        LLVMValueRef okh = LLVMBuildICmp(c->b, LLVMIntULT, ih, be_i64(c, p->IH), "");
        LLVMValueRef okw = LLVMBuildICmp(c->b, LLVMIntULT, iw, be_i64(c, p->IW), "");
        LLVMValueRef ok = LLVMBuildAnd(c->b, okh, okw, "");
        LLVMValueRef ihc = be_smin(c, be_smax(c, ih, be_i64(c, 0)), be_i64(c, p->IH - 1));
        LLVMValueRef iwc = be_smin(c, be_smax(c, iw, be_i64(c, 0)), be_i64(c, p->IW - 1));
        LLVMValueRef idx =
            be_add(c, xplane, be_mulk(c, be_add(c, be_mulk(c, ihc, p->IW), iwc), 16));
        LLVMValueRef v = be_vld(c, w->k->in[0], idx, 64);
        d[i][j] = LLVMBuildSelect(c->b, ok, v, LLVMConstNull(c->t_v16), "");
      }
    }
  /* t = B_h^T d (combine rows), V = t B_w (combine columns). */
  for (int j = 0; j < Aw; j++) {
    LLVMValueRef col[WA], out[WA] = {0}; /* bt_dim writes out[0..Ah) */
    for (int i = 0; i < Ah; i++)
      col[i] = d[i][j];
    bt_dim(c, &p->dh, col, out);
    for (int i = 0; i < Ah; i++)
      t[i][j] = out[i];
  }
  /* (each value stored as soon as it is computed, as before the 1-D
     transforms: the same IR for the 3x3 layers) */
  const WDim *dw = &p->dw;
  for (int i = 0; i < Ah; i++) {
    LLVMValueRef row[WA];
    if (dw->bt6)
      bt4(c, t[i], row);
    for (int j = 0; j < Aw; j++) {
      LLVMValueRef v = dw->bt6 ? row[j] : lincomb(c, dw->bt[j], t[i], Aw);
      LLVMValueRef idx = be_mulk(c, be_addk(c, q, (int64_t)(i * Aw + j) * p->TC), 16);
      be_vst(c, w->V, be_add(c, voff, idx), v, 64);
    }
  }
}

/* Row and column of tile t0 + q (row-major). */
static void tile_pos(BeCtx *c, WPlan *p, LLVMValueRef t0, LLVMValueRef q, LLVMValueRef *tr,
                     LLVMValueRef *tc) {
  LLVMValueRef t = be_add(c, t0, q);
  *tr = be_sdiv(c, t, be_i64(c, p->NTW));
  *tc = be_sub(c, t, be_mulk(c, *tr, p->NTW));
}

/* M[.., q0 + q] += sum over the CB*16 channels of run icc of U x V at
   transform point pt, for the nt tiles q0.. (one register tile). */
static void gemm_tile(BeCtx *c, WCtx *w, LLVMValueRef icc, LLVMValueRef pt, LLVMValueRef *ob,
                      LLVMValueRef mbase, LLVMValueRef q0, int nt) {
  WPlan *p = w->p;
  int A2 = p->A2, OCB = p->OCB;
  int64_t TC = p->TC;
  LLVMValueRef U = w->k->par[P_WEIGHT];
  LLVMValueRef mb = be_add(c, mbase, be_mulk(c, q0, 16));
  bool one = p->CB == p->NICB; /* one run of channels: M is written once */
  for (int j = 0; j < OCB; j++)
    for (int q = 0; q < nt; q++)
      LLVMBuildStore(c->b,
                     one ? LLVMConstNull(c->t_v16)
                         : be_vld(c, w->M, be_addk(c, mb, (j * TC + q) * 16), 64),
                     w->acc[j][q]);
  BeLoop cb;
  be_for(c, &cb, be_i64(c, 0), be_i64(c, p->CB), "gcb");
  LLVMValueRef icb = be_add(c, be_mulk(c, icc, p->CB), cb.iv);
  LLVMValueRef ubase[4];
  for (int j = 0; j < OCB; j++)
    ubase[j] = be_mulk(
        c, be_add(c, be_mulk(c, be_add(c, be_mulk(c, ob[j], A2), pt), p->IC), be_mulk(c, icb, 16)),
        16);
  LLVMValueRef vbase =
      be_add(c, be_mulk(c, be_add(c, be_mulk(c, cb.iv, A2), pt), TC * 16), be_mulk(c, q0, 16));
  /* With broadcasts by lane (NEON), 4 channels per step: one <4 x float>
     of V per tile, each channel's fmas by lane (as blocked.c's emit_taps). */
  int step = be_bcast_by_lane(&c->cfg->target) ? 4 : 1;
  BeLoop ic;
  be_for(c, &ic, be_i64(c, 0), be_i64(c, 16 / step), "ici");
  LLVMValueRef accv[4][32], wv[4], xv[32];
  for (int j = 0; j < OCB; j++)
    for (int q = 0; q < nt; q++)
      accv[j][q] = LLVMBuildLoad2(c->b, c->t_v16, w->acc[j][q], "");
  if (step > 1)
    for (int q = 0; q < nt; q++)
      xv[q] = be_vld4(c, w->V, be_addk(c, be_add(c, vbase, be_mulk(c, ic.iv, step)), q * 16));
  for (int l = 0; l < step; l++) {
    LLVMValueRef ch = be_addk(c, be_mulk(c, ic.iv, step), l);
    for (int j = 0; j < OCB; j++)
      wv[j] = be_wvld(c, w->k, U, be_add(c, ubase[j], be_mulk(c, ch, 16)), 64);
    LLVMValueRef vi = step > 1 ? NULL : be_add(c, vbase, ic.iv);
    for (int q = 0; q < nt; q++) {
      LLVMValueRef xb =
          step > 1 ? be_vlane(c, xv[q], l) : be_vbcast(c, w->V, be_addk(c, vi, q * 16));
      for (int j = 0; j < OCB; j++)
        accv[j][q] = be_vfma(c, wv[j], xb, accv[j][q]);
    }
  }
  for (int j = 0; j < OCB; j++)
    for (int q = 0; q < nt; q++)
      LLVMBuildStore(c->b, accv[j][q], w->acc[j][q]);
  be_for_end(c, &ic);
  be_for_end(c, &cb);
  for (int j = 0; j < OCB; j++)
    for (int q = 0; q < nt; q++)
      be_vst(c, w->M, be_addk(c, mb, (j * TC + q) * 16),
             LLVMBuildLoad2(c->b, c->t_v16, w->acc[j][q], ""), 64);
}

/* One chunk of nt tiles starting at tile t0. */
/* The input transform of a chunk's nt tiles, for the CB input blocks of
   run icc, into V. */
static void chunk_inputs(BeCtx *c, WCtx *w, LLVMValueRef t0, int nt, LLVMValueRef icc) {
  WPlan *p = w->p;
  int A2 = p->A2;
  int64_t TC = p->TC;
  BeLoop cb, q;
  be_for(c, &cb, be_i64(c, 0), be_i64(c, p->CB), "vcb");
  LLVMValueRef icb = be_add(c, be_mulk(c, icc, p->CB), cb.iv);
  LLVMValueRef xplane = be_mulk(c, icb, p->IH * p->IW * 16);
  LLVMValueRef voff = be_mulk(c, cb.iv, (int64_t)A2 * TC * 16);
  be_for(c, &q, be_i64(c, 0), be_i64(c, nt), "vt");
  LLVMValueRef tr, tc;
  tile_pos(c, p, t0, q.iv, &tr, &tc);
  LLVMValueRef ih0 = be_addk(c, be_mulk(c, tr, p->mh), -p->pt);
  LLVMValueRef iw0 = be_addk(c, be_mulk(c, tc, p->mw), -p->pl);
  LLVMValueRef in1 =
      LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, ih0, be_i64(c, 0), ""),
                   LLVMBuildICmp(c->b, LLVMIntSLE, ih0, be_i64(c, p->IH - p->Ah), ""), "");
  LLVMValueRef in2 =
      LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, iw0, be_i64(c, 0), ""),
                   LLVMBuildICmp(c->b, LLVMIntSLE, iw0, be_i64(c, p->IW - p->Aw), ""), "");
  BeIf f;
  be_if(c, &f, LLVMBuildAnd(c->b, in1, in2, ""));
  input_transform(c, w, xplane, ih0, iw0, q.iv, voff, false);
  be_else(c, &f);
  input_transform(c, w, xplane, ih0, iw0, q.iv, voff, true);
  be_endif(c, &f);
  be_for_end(c, &q);
  be_for_end(c, &cb);
}

/* Per tile group, a GEMM per transform point over the CB*16 channels of
   run icc, added into M (MG floats per group). */
static void chunk_gemms(BeCtx *c, WCtx *w, int nt, LLVMValueRef icc, int64_t MG) {
  WPlan *p = w->p;
  int A2 = p->A2, OCB = p->OCB, T = p->T;
  int64_t TC = p->TC;
  BeLoop gi;
  be_for(c, &gi, be_i64(c, 0), be_i64(c, p->NGI), "ogi");
  LLVMValueRef ob[4];
  for (int j = 0; j < OCB; j++)
    ob[j] = be_addk(c, be_mulk(c, be_add(c, w->og, gi.iv), OCB), j);
  BeLoop pt;
  be_for(c, &pt, be_i64(c, 0), be_i64(c, A2), "pt");
  LLVMValueRef mbase = be_add(c, be_mulk(c, gi.iv, MG), be_mulk(c, pt.iv, (int64_t)OCB * TC * 16));
  /* The chunk's tiles in register tiles of T (the last one smaller). */
  int nfull = nt / T, rem = nt % T;
  if (nfull == 1) {
    gemm_tile(c, w, icc, pt.iv, ob, mbase, be_i64(c, 0), T);
  } else if (nfull > 1) {
    BeLoop st;
    be_for(c, &st, be_i64(c, 0), be_i64(c, nfull), "sub");
    gemm_tile(c, w, icc, pt.iv, ob, mbase, be_mulk(c, st.iv, T), T);
    be_for_end(c, &st);
  }
  if (rem)
    gemm_tile(c, w, icc, pt.iv, ob, mbase, be_i64(c, (int64_t)nfull * T), rem);
  be_for_end(c, &pt);
  be_for_end(c, &gi);
}

/* The output transform of a chunk's nt tiles from M, the epilogue and the
   store (clipped at the bottom and right edges). */
static void chunk_outputs(BeCtx *c, WCtx *w, LLVMValueRef t0, int nt, int64_t MG) {
  WPlan *p = w->p;
  KArgs *k = w->k;
  int Ah = p->Ah, Aw = p->Aw, mh = p->mh, mw = p->mw, OCB = p->OCB;
  int64_t TC = p->TC;
  BeLoop go;
  be_for(c, &go, be_i64(c, 0), be_i64(c, p->NGI), "ogo");
  LLVMValueRef mo = be_mulk(c, go.iv, MG);
  for (int j = 0; j < OCB; j++) {
    LLVMValueRef obj = be_addk(c, be_mulk(c, be_add(c, w->og, go.iv), OCB), j);
    LLVMValueRef biasv =
        w->bias ? be_vld(c, w->bias, be_mulk(c, obj, 16), 64) : LLVMConstNull(c->t_v16);
    BeLoop q;
    be_for(c, &q, be_i64(c, 0), be_i64(c, nt), "ot");
    LLVMValueRef Mv[WA][WA], t[WM][WA];
    for (int i = 0; i < Ah; i++)
      for (int x = 0; x < Aw; x++)
        Mv[i][x] = be_vld(
            c, w->M,
            be_add(
                c, mo,
                be_mulk(c, be_add(c, be_i64(c, ((int64_t)(i * Aw + x) * OCB + j) * TC), q.iv), 16)),
            64);
    for (int x = 0; x < Aw; x++) {
      LLVMValueRef col[WA], out[WM];
      for (int i = 0; i < Ah; i++)
        col[i] = Mv[i][x];
      at_dim(c, &p->dh, col, out);
      for (int y = 0; y < mh; y++)
        t[y][x] = out[y];
    }
    LLVMValueRef tr, tc;
    tile_pos(c, p, t0, q.iv, &tr, &tc);
    LLVMValueRef oh0 = be_mulk(c, tr, mh);
    LLVMValueRef ow0 = be_mulk(c, tc, mw);
    LLVMValueRef oplane = be_mulk(c, obj, p->OH * p->OW * 16);
    for (int y = 0; y < mh; y++) {
      LLVMValueRef oh = be_addk(c, oh0, y);
      BeIf fy;
      bool cy = p->OH % mh != 0;
      if (cy)
        be_if(c, &fy, LLVMBuildICmp(c->b, LLVMIntSLT, oh, be_i64(c, p->OH), ""));
      LLVMValueRef row[WM];
      if (p->dw.at43)
        at4(c, t[y], row);
      for (int x = 0; x < mw; x++) {
        LLVMValueRef v = p->dw.at43 ? row[x] : lincomb(c, p->dw.at[x], t[y], Aw);
        v = be_fadd(c, v, biasv);
        LLVMValueRef ow = be_addk(c, ow0, x);
        BeIf fx;
        bool cx = p->OW % mw != 0 && x > 0;
        if (cx)
          be_if(c, &fx, LLVMBuildICmp(c->b, LLVMIntSLT, ow, be_i64(c, p->OW), ""));
        LLVMValueRef idx = be_add(c, oplane, be_mulk(c, be_add(c, be_mulk(c, oh, p->OW), ow), 16));
        if (k->res)
          v = be_fadd(c, v, be_vld(c, k->res, idx, 64));
        v = be_act(c, &k->n->epi.act, v);
        v = be_zero_padded_block(c, k->n, obj, v);
        be_vst(c, k->out, idx, v, 64);
        if (cx)
          be_endif(c, &fx);
      }
      if (cy)
        be_endif(c, &fy);
    }
    be_for_end(c, &q);
  }
  be_for_end(c, &go);
}

static void emit_chunk(BeCtx *c, WCtx *w, LLVMValueRef t0, int nt) {
  WPlan *p = w->p;
  int64_t MG = (int64_t)p->A2 * p->OCB * p->TC * 16; /* floats of M per tile group */
  /* M = 0 (unless one run of channels writes it whole) */
  if (p->CB != p->NICB) {
    BeLoop z;
    be_for(c, &z, be_i64(c, 0), be_i64(c, p->NGI * MG / 16), "mz");
    be_vst(c, w->M, be_mulk(c, z.iv, 16), LLVMConstNull(c->t_v16), 64);
    be_for_end(c, &z);
  }
  BeLoop icc;
  be_for(c, &icc, be_i64(c, 0), be_i64(c, p->NICB / p->CB), "icc");
  chunk_inputs(c, w, t0, nt, icc.iv);
  chunk_gemms(c, w, nt, icc.iv, MG);
  be_for_end(c, &icc);
  chunk_outputs(c, w, t0, nt, MG);
}

void be_emit_conv_winograd(BeCtx *c, KArgs *k) {
  const Node *n = k->n;
  WPlan P;
  wplan(c->cfg, n, &P);
  WPlan *p = &P;
  WCtx w = {.p = p, .k = k};
  LLVMTypeRef vt = LLVMArrayType2(c->t_f32, (uint64_t)p->CB * p->A2 * p->TC * 16);
  LLVMTypeRef mt = LLVMArrayType2(c->t_f32, (uint64_t)p->NGI * p->A2 * p->OCB * p->TC * 16);
  w.V = be_var(c, vt, "wino.V");
  LLVMSetAlignment(w.V, 64);
  w.M = be_var(c, mt, "wino.M");
  LLVMSetAlignment(w.M, 64);
  for (int j = 0; j < p->OCB; j++)
    for (int q = 0; q < p->T; q++)
      w.acc[j][q] = be_var(c, c->t_v16, "acc");
  w.bias = n->nparams > P_BIAS ? k->par[P_BIAS] : NULL;

  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "item");
  LLVMValueRef ogb = be_sdiv(c, it.iv, be_i64(c, p->NCH));
  LLVMValueRef ch = be_sub(c, it.iv, be_mulk(c, ogb, p->NCH));
  LLVMValueRef t0 = be_mulk(c, ch, p->TC);
  w.og = be_mulk(c, ogb, p->NGI);
  if (p->TL != p->TC) {
    BeIf last;
    be_if(c, &last, LLVMBuildICmp(c->b, LLVMIntEQ, ch, be_i64(c, p->NCH - 1), ""));
    emit_chunk(c, &w, t0, (int)p->TL);
    be_else(c, &last);
    emit_chunk(c, &w, t0, (int)p->TC);
    be_endif(c, &last);
  } else {
    emit_chunk(c, &w, t0, (int)p->TC);
  }
  be_for_end(c, &it);
}

/*
 * winograd.c: 3x3 and 5x5 stride-1 convolutions on NCHW16c by Winograd's
 * minimal filtering, F(m x m, r x r) with A = m + r - 1 transform points
 * per dimension: 3x3 as F(4x4) (6x6 points, 4x fewer multiplies than
 * direct) on planes of 27x27 and more and below 14x14, as F(2x2) (4x4
 * points, 2.25x fewer) between; 5x5 as F(2x2, 5x5) (6x6 points, 2.8x
 * fewer). Taken only with Tuning.winograd (cnncc --winograd=on, the
 * default at -O2 and -O3).
 *
 * Weights are transformed at compile time, as the blob is written
 * (be_pack_conv_winograd, in double precision): U = G g G^T per (output,
 * input channel), stored as [oc/16][point][ic][16 oc]; the blob slot of such
 * a weight holds A*A/(r*r) times the r x r weights (be_packed_numel_winograd).
 *
 * The output tiles (m x m pixels each) are numbered row-major and cut into
 * chunks of TC tiles (T = 7 by default, up to 14 for F(2x2) on AVX-512;
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
 * Which convs: be_conv_winograd_accepts (3x3 or 5x5, stride 1, dilation 1, one
 * group, blocked input and output, no split output, >= 16 input and >= 32
 * output channels, output plane >= 13x13). Measured error and speed:
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

/* The matrices of F(m x m, r x r) with A = m + r - 1 points. */
static double bt(int m, int A, int i, int j) {
  (void)m;
  return A == 4 ? BT2[i][j] : BT4[i][j];
}
static double gm(int m, int A, int i, int j) {
  return A == 4 ? G2[i][j] : m == 4 ? G4[i][j] : G25[i][j];
}
static double at(int m, int A, int i, int j) {
  return A == 4 ? AT2[i][j] : m == 4 ? AT4[i][j] : AT25[i][j];
}

/* ------------------------------------------------------------ the decision */

/* The tile size m when n runs as Winograd, else 0. */
static int wino_m(const BeConfig *cf, const Node *n) {
  const Tuning *tu = cf->tune;
  if (!tu->winograd || n->dead || n->op != OP_CONV2D || n->split)
    return 0;
  const Attrs *a = &n->attr;
  if (n->layout != LAYOUT_NCHW16C || n->in[0]->layout != LAYOUT_NCHW16C)
    return 0;
  int r = a->kernel[0];
  if ((r != 3 && r != 5) || a->kernel[1] != r || a->stride[0] != 1 || a->stride[1] != 1 ||
      a->dilation[0] != 1 || a->dilation[1] != 1 || a->groups != 1)
    return 0;
  const Shape *is = &n->in[0]->shape;
  int64_t IC = is->d[0], OC = n->shape.d[0], OH = n->shape.d[1], OW = n->shape.d[2];
  if (IC % 16 || OC % 16 || a->pad[0] > 2 || a->pad[1] > 2)
    return 0;
  /* Cost rule (docs/performance.md, "Winograd"): enough input channels for
     the transforms to amortize, and enough pixels to fill the tiles. 16
     input channels suffice: SqueezeNet's 16- and 32-channel 3x3 convs at
     54x54 ran 2.7-2.9x faster as F(4x4) than direct. */
  int min_ic = tu->winograd_min_ic, min_hw = tu->winograd_min_hw;
  if (IC < min_ic || OC < 32 || OH < min_hw || OW < min_hw)
    return 0;
  /* 5x5 (AlexNet's conv2): F(2x2, 5x5), 36 points for 4 outputs against
     100 multiplies; fp32 only (its G and A^T are F(4x4)'s in size, whose
     bf16 rounding is the reason bf16 takes F(2x2, 3x3) below). */
  if (r == 5)
    return cf->precision == PRECISION_BF16 ? 0 : 2;
  if (tu->winograd_m)
    return tu->winograd_m;
  /* bf16 weights (bf16.c): F(4x4)'s output transform amplifies the rounding
     of its transformed weights (4% of max|out| on one layer, measured);
     F(2x2) keeps it near bf16's own (docs/precision.md). On a dpbf16
     target F(4x4) runs with fp32 weights (be_winograd_fp32_weights). */
  if (cf->precision == PRECISION_BF16 && !be_bf16_dp_target(cf))
    return 2;
  /* F(4x4) where 4x4 tiles cover the plane with little waste (27x27
     and more) and on the planes below 14x14: SqueezeNet's and AlexNet's
     13x13 and 27x27 layers ran faster as F(4x4) than as F(2x2) but for
     AlexNet's conv4 (384 -> 256, 8% slower), one thread, fastest of 30
     calls (docs/performance.md, "fp32 speed of SqueezeNet 1.0 and
     AlexNet"). F(2x2) on 14x14 to 26x26, where it was measured faster
     on ResNet's and VGG's 256-512-channel layers. */
  bool f4 = (OH >= 27 && OW >= 27) || OH < 14 || OW < 14;
  return f4 ? 4 : 2;
}

bool be_conv_winograd_accepts(const BeConfig *cf, const Node *n) { return wino_m(cf, n) != 0; }

bool be_winograd_fp32_weights(const BeConfig *cf, const Node *n) {
  return be_bf16_dp_target(cf) && wino_m(cf, n) == 4;
}

/* Transform points per dimension, m + r - 1, of a Winograd conv. */
static int wino_a(const BeConfig *cf, const Node *n) {
  return wino_m(cf, n) + (int)n->attr.kernel[0] - 1;
}

int64_t be_packed_numel_winograd(const BeConfig *cf, const Node *n) {
  CHECK(wino_m(cf, n), "'%s' is no Winograd conv", n->name);
  int64_t A = wino_a(cf, n);
  return n->shape.d[0] * n->in[0]->shape.d[0] * A * A;
}

float *be_pack_conv_winograd(const BeConfig *cf, const Node *n) {
  const Param *w = n->params[P_WEIGHT];
  int m = wino_m(cf, n), A = wino_a(cf, n), r = A - m + 1, A2 = A * A;
  int64_t OC = n->shape.d[0], IC = n->in[0]->shape.d[0];
  CHECK(m && param_numel(w) == OC * IC * r * r, "weight '%s' of '%s'", w->name, n->name);
  float *dst = xmalloc((size_t)(OC * IC * A2) * sizeof(float));
  for (int64_t oc = 0; oc < OC; oc++)
    for (int64_t ic = 0; ic < IC; ic++) {
      const float *g = w->data + (oc * IC + ic) * r * r;
      double t[6][5], u[6][6];
      for (int i = 0; i < A; i++)
        for (int j = 0; j < r; j++) {
          t[i][j] = 0;
          for (int k = 0; k < r; k++)
            t[i][j] += gm(m, A, i, k) * g[k * r + j];
        }
      for (int i = 0; i < A; i++)
        for (int j = 0; j < A; j++) {
          u[i][j] = 0;
          for (int k = 0; k < r; k++)
            u[i][j] += t[i][k] * gm(m, A, j, k);
        }
      int64_t ob = oc / 16, l = oc % 16;
      for (int p = 0; p < A2; p++)
        dst[((ob * A2 + p) * IC + ic) * 16 + l] = (float)u[p / A][p % A];
    }
  return dst;
}

/* ------------------------------------------------------------------ plan */

typedef struct {
  int m, A, A2;
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
  p->m = wino_m(cf, n);
  p->A = wino_a(cf, n), p->A2 = p->A * p->A;
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
       14. */
    if (p->NB % 2 == 0)
      ocb = 2, tmax = p->A == 4 ? 14 : 7;
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
  p->NTR = be_cdiv(p->OH, p->m);
  p->NTW = be_cdiv(p->OW, p->m);
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
}

int64_t be_work_conv_winograd(const BeConfig *cf, const Node *n) {
  WPlan p;
  wplan(cf, n, &p);
  return p.NG / p.NGI * p.NCH;
}

/* ------------------------------------------------------------- emission */

/* out[i] = sum_j mat(i, j) * in[j] for a small constant matrix (zeros
   skipped, +-1 as adds). */
typedef double (*MatFn)(int m, int A, int i, int j);
static LLVMValueRef lincomb(BeCtx *c, MatFn f, int m, int i, LLVMValueRef *in, int nin,
                            bool transpose) {
  LLVMValueRef acc = NULL;
  for (int j = 0; j < nin; j++) {
    double w = transpose ? f(m, nin, j, i) : f(m, nin, i, j);
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

static double bt_f(int m, int A, int i, int j) { return bt(m, A, i, j); }
static double at_f(int m, int A, int i, int j) { return at(m, A, i, j); }

/* V[(pt*T + q)*16] = (B^T d B)[pt] for the tile at input (ih0, iw0). */
static void input_transform(BeCtx *c, WCtx *w, LLVMValueRef xplane, LLVMValueRef ih0,
                            LLVMValueRef iw0, LLVMValueRef q, LLVMValueRef voff, bool checked) {
  WPlan *p = w->p;
  int A = p->A, m = p->m;
  LLVMValueRef d[6][6], t[6][6];
  for (int i = 0; i < A; i++)
    for (int j = 0; j < A; j++) {
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
  /* t = B^T d (combine rows), V = t B (combine columns). */
  for (int j = 0; j < A; j++) {
    LLVMValueRef col[6], out[6];
    for (int i = 0; i < A; i++)
      col[i] = d[i][j];
    if (A == 6)
      bt4(c, col, out);
    for (int i = 0; i < A; i++)
      t[i][j] = A == 6 ? out[i] : lincomb(c, bt_f, m, i, col, A, false);
  }
  for (int i = 0; i < A; i++) {
    LLVMValueRef row[6];
    if (A == 6)
      bt4(c, t[i], row);
    for (int j = 0; j < A; j++) {
      LLVMValueRef v = A == 6 ? row[j] : lincomb(c, bt_f, m, j, t[i], A, false);
      LLVMValueRef idx = be_mulk(c, be_addk(c, q, (int64_t)(i * A + j) * p->TC), 16);
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
  int A = p->A, A2 = p->A2, m = p->m;
  int64_t TC = p->TC;
  BeLoop cb, q;
  be_for(c, &cb, be_i64(c, 0), be_i64(c, p->CB), "vcb");
  LLVMValueRef icb = be_add(c, be_mulk(c, icc, p->CB), cb.iv);
  LLVMValueRef xplane = be_mulk(c, icb, p->IH * p->IW * 16);
  LLVMValueRef voff = be_mulk(c, cb.iv, (int64_t)A2 * TC * 16);
  be_for(c, &q, be_i64(c, 0), be_i64(c, nt), "vt");
  LLVMValueRef tr, tc;
  tile_pos(c, p, t0, q.iv, &tr, &tc);
  LLVMValueRef ih0 = be_addk(c, be_mulk(c, tr, m), -p->pt);
  LLVMValueRef iw0 = be_addk(c, be_mulk(c, tc, m), -p->pl);
  LLVMValueRef in1 =
      LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, ih0, be_i64(c, 0), ""),
                   LLVMBuildICmp(c->b, LLVMIntSLE, ih0, be_i64(c, p->IH - A), ""), "");
  LLVMValueRef in2 =
      LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, iw0, be_i64(c, 0), ""),
                   LLVMBuildICmp(c->b, LLVMIntSLE, iw0, be_i64(c, p->IW - A), ""), "");
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
  int A = p->A, m = p->m, OCB = p->OCB;
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
    LLVMValueRef Mv[6][6], t[4][6];
    for (int i = 0; i < A; i++)
      for (int x = 0; x < A; x++)
        Mv[i][x] = be_vld(
            c, w->M,
            be_add(
                c, mo,
                be_mulk(c, be_add(c, be_i64(c, ((int64_t)(i * A + x) * OCB + j) * TC), q.iv), 16)),
            64);
    for (int x = 0; x < A; x++) {
      LLVMValueRef col[6], out[4];
      for (int i = 0; i < A; i++)
        col[i] = Mv[i][x];
      if (m == 4)
        at4(c, col, out);
      for (int y = 0; y < m; y++)
        t[y][x] = m == 4 ? out[y] : lincomb(c, at_f, m, y, col, A, false);
    }
    LLVMValueRef tr, tc;
    tile_pos(c, p, t0, q.iv, &tr, &tc);
    LLVMValueRef oh0 = be_mulk(c, tr, m);
    LLVMValueRef ow0 = be_mulk(c, tc, m);
    LLVMValueRef oplane = be_mulk(c, obj, p->OH * p->OW * 16);
    for (int y = 0; y < m; y++) {
      LLVMValueRef oh = be_addk(c, oh0, y);
      BeIf fy;
      bool cy = p->OH % m != 0;
      if (cy)
        be_if(c, &fy, LLVMBuildICmp(c->b, LLVMIntSLT, oh, be_i64(c, p->OH), ""));
      LLVMValueRef row[4];
      if (m == 4)
        at4(c, t[y], row);
      for (int x = 0; x < m; x++) {
        LLVMValueRef v = m == 4 ? row[x] : lincomb(c, at_f, m, x, t[y], A, false);
        v = be_fadd(c, v, biasv);
        LLVMValueRef ow = be_addk(c, ow0, x);
        BeIf fx;
        bool cx = p->OW % m != 0 && x > 0;
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

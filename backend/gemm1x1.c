/*
 * gemm1x1.c: a register-tiled kernel for a 1x1, stride-1, unpadded,
 * ungrouped convolution whose input and output stay NCHW (an output channel
 * count that is not a multiple of 16, e.g. SqueezeNet's 512 -> 1000
 * classifier conv). It is the GEMM
 *
 *   out[oc][p] = bias[oc] + sum_ic W[oc][ic] * in[ic][p]      p < P = H*W
 *
 * with W as PyTorch lays it out ([OC][IC], not packed). The register tile
 * is MR output channels x NV vectors of 16 pixels (AVX-512: 8 x 3, 24 zmm
 * accumulators); for every input channel the NV input vectors are loaded
 * once and each of the MR weights W[oc][ic] is broadcast from memory into
 * an fma with all of them. The pixel tail (P not a multiple of 16) is one
 * masked vector (llvm.masked.load/store), the output-channel tail a tile
 * with fewer rows; both are separate constant-shaped copies of the tile, so
 * the hot loop has no bounds checks. The epilogue (residual add, ReLU) runs
 * on the accumulators before the store.
 *
 * Work items: (output-channel tile) x (pixel chunk of NV*16 pixels), item =
 * tile * NPC + chunk, so consecutive items share their weight rows (they
 * stay in L1) and a small OC still splits across threads.
 */
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"

typedef struct {
  int64_t OC, IC, P;
  int MR, NV;      /* rows of the tile (<= 8), vectors of 16 pixels (<= 4) */
  int64_t NT, NPC; /* oc tiles, pixel chunks */
} GemmPlan;

static void plan_of(const BeConfig *cf, const Node *n, GemmPlan *p) {
  bool avx512 = cf->target.avx512;
  const Shape *is = &n->in[0]->shape;
  p->OC = n->shape.d[0];
  p->IC = is->d[0];
  p->P = is->d[1] * is->d[2];
  /* AVX-512: 8x3 = 24 zmm accumulators + 3 input vectors. Without it a
     <16 x float> is two ymm: 6x1 = 12 ymm accumulators + 2 (NEON: 24 + 4
     of 32 q registers). SSE, four xmm: 2x1 = 8 accumulators + 4 + the
     broadcast and the product. */
  p->MR = avx512 ? 8 : be_v16_regs(&cf->target) >= 8 ? 6 : 2;
  p->NV = avx512 ? 3 : 1;
  if (p->OC < p->MR)
    p->MR = (int)p->OC;
  int64_t cw = (int64_t)p->NV * 16;
  p->NT = (p->OC + p->MR - 1) / p->MR;
  p->NPC = (p->P + cw - 1) / cw;
}

bool be_conv_gemm1x1_accepts(const BeConfig *cf, const Node *n) {
  const Attrs *a = &n->attr;
  return n->op == OP_CONV2D && n->layout == LAYOUT_NCHW && !n->split && n->nin >= 1 &&
         n->in[0]->layout == LAYOUT_NCHW && n->in[0]->shape.rank == 3 && n->shape.rank == 3 &&
         a->groups == 1 && a->kernel[0] == 1 && a->kernel[1] == 1 && a->stride[0] == 1 &&
         a->stride[1] == 1 && !a->pad[0] && !a->pad[1] && !a->pad[2] && !a->pad[3] &&
         n->shape.d[1] == n->in[0]->shape.d[1] && n->shape.d[2] == n->in[0]->shape.d[2];
}

int64_t be_work_conv_gemm1x1(const BeConfig *cf, const Node *n) {
  GemmPlan p;
  plan_of(cf, n, &p);
  return p.NT * p.NPC;
}

/* One tile of mr rows from oc0 and npix pixels from p0 (both constant
   shapes; oc0 and p0 are values). */
static void emit_tile(BeCtx *c, KArgs *k, const GemmPlan *p, LLVMValueRef acc[][4], int mr,
                      int npix, LLVMValueRef oc0, LLVMValueRef p0) {
  const Node *n = k->n;
  LLVMValueRef x = k->in[0], w = k->par[P_WEIGHT];
  LLVMValueRef bias = n->nparams > P_BIAS ? k->par[P_BIAS] : NULL;
  int nv = (npix + 15) / 16;
  int mlast = npix - (nv - 1) * 16; /* lanes of the last vector */

  for (int r = 0; r < mr; r++) {
    LLVMValueRef init = bias ? be_vbcast(c, bias, be_addk(c, oc0, r)) : LLVMConstNull(c->t_v16);
    for (int v = 0; v < nv; v++)
      LLVMBuildStore(c->b, init, acc[r][v]);
  }
  LLVMValueRef wrow = be_mulk(c, oc0, p->IC);
  BeLoop ic;
  be_for(c, &ic, be_i64(c, 0), be_i64(c, p->IC), "gemm.ic");
  LLVMValueRef a[8][4], xv[4];
  LLVMValueRef xi = be_add(c, be_mulk(c, ic.iv, p->P), p0);
  for (int v = 0; v < nv; v++)
    xv[v] = be_vld_masked(c, x, be_addk(c, xi, v * 16), v == nv - 1 ? mlast : 16);
  LLVMValueRef wi = be_add(c, wrow, ic.iv);
  for (int r = 0; r < mr; r++) {
    LLVMValueRef wb = be_wvbcast(c, k, w, be_addk(c, wi, (int64_t)r * p->IC));
    for (int v = 0; v < nv; v++) {
      a[r][v] = LLVMBuildLoad2(c->b, c->t_v16, acc[r][v], "");
      a[r][v] = be_vfma(c, wb, xv[v], a[r][v]);
      LLVMBuildStore(c->b, a[r][v], acc[r][v]);
    }
  }
  be_for_end(c, &ic);

  for (int r = 0; r < mr; r++) {
    LLVMValueRef obase = be_add(c, be_mulk(c, be_addk(c, oc0, r), p->P), p0);
    for (int v = 0; v < nv; v++) {
      int m = v == nv - 1 ? mlast : 16;
      LLVMValueRef idx = be_addk(c, obase, v * 16);
      LLVMValueRef val = LLVMBuildLoad2(c->b, c->t_v16, acc[r][v], "");
      if (k->res)
        val = be_fadd(c, val, be_vld_masked(c, k->res, idx, m));
      val = be_act(c, &n->epi.act, val);
      val = be_zero_padded_channel(c, n, be_addk(c, oc0, r), val);
      be_vst_masked(c, k->out, idx, val, m);
    }
  }
}

void be_emit_conv_gemm1x1(BeCtx *c, KArgs *k) {
  GemmPlan p;
  plan_of(c->cfg, k->n, &p);
  int64_t cw = (int64_t)p.NV * 16;
  int mr_tail = (int)(p.OC - (p.NT - 1) * p.MR);
  int np_tail = (int)(p.P - (p.NPC - 1) * cw);

  LLVMValueRef acc[8][4];
  for (int r = 0; r < p.MR; r++)
    for (int v = 0; v < p.NV; v++)
      acc[r][v] = be_var(c, c->t_v16, "gemm.acc");

  BeLoop it;
  be_for(c, &it, k->lo, k->hi, "gemm.item");
  LLVMValueRef t = be_sdiv(c, it.iv, be_i64(c, p.NPC));
  LLVMValueRef pc = be_sub(c, it.iv, be_mulk(c, t, p.NPC));
  LLVMValueRef oc0 = be_mulk(c, t, p.MR), p0 = be_mulk(c, pc, cw);
  /* Up to four constant-shaped tiles: (full or tail rows) x (full or tail
     pixels). */
  LLVMValueRef last_t = LLVMBuildICmp(c->b, LLVMIntEQ, t, be_i64(c, p.NT - 1), "");
  LLVMValueRef last_p = LLVMBuildICmp(c->b, LLVMIntEQ, pc, be_i64(c, p.NPC - 1), "");
  int rows[2] = {p.MR, mr_tail}, pix[2] = {(int)cw, np_tail};
  BeIf ft;
  bool split_t = mr_tail != p.MR, split_p = np_tail != cw;
  if (p.NT == 1)
    rows[0] = mr_tail, split_t = false;
  if (p.NPC == 1)
    pix[0] = np_tail, split_p = false;
  if (split_t)
    be_if(c, &ft, last_t);
  for (int i = split_t ? 1 : 0; i >= 0; i--) {
    if (split_t && i == 0)
      be_else(c, &ft);
    BeIf fp;
    if (split_p)
      be_if(c, &fp, last_p);
    for (int j = split_p ? 1 : 0; j >= 0; j--) {
      if (split_p && j == 0)
        be_else(c, &fp);
      emit_tile(c, k, &p, acc, rows[i], pix[j], oc0, p0);
    }
    if (split_p)
      be_endif(c, &fp);
  }
  if (split_t)
    be_endif(c, &ft);
  be_for_end(c, &it);
}

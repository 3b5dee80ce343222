/*
 * bf16.c: --precision=bf16 (docs/precision.md): which parameters are stored
 * as bfloat16, the rounding of fp32 to bf16 at compile time, and the weight
 * loads of the kernels, which widen bf16 back to fp32 in registers.
 *
 * A bfloat16 is the upper half of an IEEE fp32: sign, the 8 exponent bits,
 * 7 mantissa bits. Rounding keeps the upper 16 bits after adding half a
 * unit in the last place, ties to even; NaN stays a (quiet) NaN, infinities
 * stay infinite, finite values past the largest bf16 become infinite as
 * IEEE rounding says. Widening is exact: the 16 bits shifted left by 16.
 *
 * What is bf16: the weight (P_WEIGHT) of every conv and linear node, as its
 * kernel packs it (after batch-norm folding; for Winograd layers the
 * transformed weight), but the F(4x4) Winograd layers of a dpbf16 target
 * (kernels.c: be_param_bf16 decides, KArgs.wbf16 tells the loads). Biases, batch-norm and scale
 * parameters and the activations stay fp32; accumulation is fp32. The kernels read a weight through
 * be_wvld / be_wvbcast / be_wld / be_wptr with the same float index as before: under fp32 these are
 * be_vld / be_vbcast / be_ld / be_fptr, under bf16 they address 2-byte elements and widen.
 */
#include <string.h>

#include "backend_internal.h"

bool be_bf16_dp_target(const BeConfig *cf) {
  return cf->precision == PRECISION_BF16 && cf->target.avx512bf16 && cf->tune->dpbf16 &&
         !(cf->target.amx && cf->tune->amx);
}

uint16_t be_bf16_round(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu))
    return (uint16_t)((u >> 16) | 0x0040u); /* NaN: keep sign and payload top, quiet */
  u += 0x7fffu + ((u >> 16) & 1u);          /* half an ulp, ties to even */
  return (uint16_t)(u >> 16);
}

float be_bf16_widen(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

void be_bf16_round_array(const float *src, uint16_t *dst, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    dst[i] = be_bf16_round(src[i]);
}

/* ------------------------------------------------------ the weight loads */

static LLVMValueRef hptr(BeCtx *c, LLVMValueRef base, LLVMValueRef idx) {
  LLVMTypeRef t16 = LLVMInt16TypeInContext(c->ctx);
  return LLVMBuildInBoundsGEP2(c->b, t16, base, &idx, 1, "");
}

/* i16 bits (a scalar or a vector of them) -> the same number of floats. */
static LLVMValueRef widen(BeCtx *c, LLVMValueRef h, int lanes) {
  LLVMTypeRef ti = lanes ? LLVMVectorType(c->t_i32, (unsigned)lanes) : c->t_i32;
  LLVMValueRef w = LLVMBuildZExt(c->b, h, ti, "");
  LLVMValueRef sh = LLVMConstInt(c->t_i32, 16, false);
  if (lanes) {
    LLVMValueRef s[16];
    for (int i = 0; i < lanes; i++)
      s[i] = sh;
    sh = LLVMConstVector(s, (unsigned)lanes);
  }
  w = LLVMBuildShl(c->b, w, sh, "");
  return LLVMBuildBitCast(c->b, w, lanes ? c->t_v16 : c->t_f32, "");
}

LLVMValueRef be_wptr(BeCtx *c, const KArgs *k, LLVMValueRef base, LLVMValueRef idx) {
  return k->wbf16 ? hptr(c, base, idx) : be_fptr(c, base, idx);
}

LLVMValueRef be_wld(BeCtx *c, const KArgs *k, LLVMValueRef base, LLVMValueRef idx) {
  if (!k->wbf16)
    return be_ld(c, base, idx);
  LLVMValueRef h = LLVMBuildLoad2(c->b, LLVMInt16TypeInContext(c->ctx), hptr(c, base, idx), "");
  LLVMSetAlignment(h, 2);
  return widen(c, h, 0);
}

LLVMValueRef be_wvld(BeCtx *c, const KArgs *k, LLVMValueRef base, LLVMValueRef idx,
                     unsigned align) {
  if (!k->wbf16)
    return be_vld(c, base, idx, align);
  LLVMTypeRef tv = LLVMVectorType(LLVMInt16TypeInContext(c->ctx), 16);
  LLVMValueRef h = LLVMBuildLoad2(c->b, tv, hptr(c, base, idx), "");
  LLVMSetAlignment(h, align >= 4 ? align / 2 : 2);
  return widen(c, h, 16);
}

LLVMValueRef be_wvbcast(BeCtx *c, const KArgs *k, LLVMValueRef base, LLVMValueRef idx) {
  if (!k->wbf16)
    return be_vbcast(c, base, idx);
  return be_vsplat(c, be_wld(c, k, base, idx));
}

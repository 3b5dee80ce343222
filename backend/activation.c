/*
 * activation.c: the activations (ir.h's Act) as LLVM IR, on a float or a
 * <16 x float>: the one helper every kernel's epilogue and every
 * activation op's kernel call (be_act), so each activation is written once
 * and a conv's epilogue computes exactly what the separate op would.
 *
 * Definitions are PyTorch's, with the same order of operations where that
 * decides the last bit (hardswish is (x * relu6(x + 3)) / 6, hardsigmoid
 * with PyTorch's parameters relu6(x + 3) / 6). No libm call: LLVM would
 * call expf once per lane, and the loop vectorizer cannot vectorize a call,
 * so exp and erfc are polynomials emitted here (they vectorize, and a
 * <16 x float> epilogue stays 16 lanes wide). Measured accuracy against
 * float64 (tests/unit/test_activations.c prints it): see docs/spec.md,
 * "Activations".
 *
 * exp(-a), a >= 0 bounded by the caller (the only exps needed): n =
 * round(-a log2 e) by the 1.5 * 2^23 trick (no float-to-int conversion, so
 * a NaN cannot become poison), r = -a - n ln 2 in two fma steps (Cody and
 * Waite: ln 2 = C1 + C2 with C1 = 0.693359375 exact in 9 bits, so n C1 is
 * exact), e^r by its Taylor polynomial of degree 7 (|r| <= ln2/2:
 * truncation 8e-9, below float's half ulp), times 2^n built from the bits
 * of the rounding sum as one normal factor (the bound on a keeps it
 * normal). These vector ops are most of an epilogue's cost: SiLU after
 * EfficientNet-B0's 16-channel expansion conv cost twice the conv
 * (docs/performance.md), so each one saved counts.
 *
 * sigmoid(x) = 1 / (1 + exp(-x)) is computed as es / (1 + e) or
 * 1 / (1 + e) with e = exp(-|x|) <= 1 (es = e 2^24): exp never overflows,
 * and the left tail keeps
 * its relative accuracy (PyTorch's form returns exactly 0 below -88 and
 * NaN nowhere; this one returns 0 below -87 and NaN only for NaN). No
 * activation makes a denormal from normal inputs, in its result or on the
 * way (see sigmoid_parts, gelu): each costs a microcode assist of ~100
 * cycles per instruction, and random weights drive SE and SiLU inputs far
 * into the tails (docs/performance.md, "The modern networks").
 *
 * silu is x * sigmoid(x), x / (1 + e) or (x es / (1 + e)) 2^-24 (one
 * division, no reciprocal rounded first); the tanh form of
 * gelu is x * sigmoid(2u), since 1 + tanh(u) = 2 sigmoid(2u), without the
 * cancellation of 1 + tanh(u) for u << 0.
 *
 * gelu(x) = x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2: with z = |x| / sqrt 2,
 * Phi = 1 - erfc(z)/2 for x >= 0 and erfc(z)/2 for x < 0, so the left tail
 * (Phi tiny) is computed without the cancellation of 1 + erf. erfc(z) =
 * t S(t) exp(-z^2) with t = 1 / (1 + z/2) and S a polynomial of degree 8
 * fitted by tools/fit_erfc.py (relative error 6e-8 with float coefficients);
 * z^2 = x^2 / 2 is split into hi + lo (lo by an fma, exact) so that
 * exp(-z^2) = exp(-hi) (1 - lo) keeps its relative accuracy when z^2 is
 * large.
 */
#include "backend_internal.h"

/* ------------------------------------------------------ typed like x */

static bool is_vector(LLVMValueRef x) {
  return LLVMGetTypeKind(LLVMTypeOf(x)) == LLVMVectorTypeKind;
}

/* The float constant v, splat when `like` is a vector. */
static LLVMValueRef kf(BeCtx *c, LLVMValueRef like, float v) {
  return is_vector(like) ? be_vsplat(c, be_f32(c, v)) : be_f32(c, v);
}

/* The i32 type of like's lanes (i32 or <N x i32>). */
static LLVMTypeRef int_type(BeCtx *c, LLVMValueRef like) {
  LLVMTypeRef t = LLVMTypeOf(like);
  if (LLVMGetTypeKind(t) == LLVMVectorTypeKind)
    return LLVMVectorType(c->t_i32, LLVMGetVectorSize(t));
  return c->t_i32;
}

static LLVMValueRef ki(BeCtx *c, LLVMValueRef like, int32_t v) {
  LLVMTypeRef t = int_type(c, like);
  LLVMValueRef k = be_i32(c, v);
  if (LLVMGetTypeKind(t) != LLVMVectorTypeKind)
    return k;
  unsigned n = LLVMGetVectorSize(t);
  LLVMValueRef el[64];
  CHECK(n <= 64, "vector of %u lanes", n);
  for (unsigned i = 0; i < n; i++)
    el[i] = k;
  return LLVMConstVector(el, n);
}

/* Plain IEEE operations (no fast-math flags: the same bits on every
   target), and fused multiply-adds where fusing only helps. */
static LLVMValueRef add(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFAdd(c->b, a, b, "");
}
static LLVMValueRef sub(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFSub(c->b, a, b, "");
}
static LLVMValueRef mul(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFMul(c->b, a, b, "");
}
static LLVMValueRef div_(BeCtx *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFDiv(c->b, a, b, "");
}
/* a < b ? x : y, false for a NaN a (so a NaN passes through as y = a). */
static LLVMValueRef sel_lt(BeCtx *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef x,
                           LLVMValueRef y) {
  return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOLT, a, b, ""), x, y, "");
}
static LLVMValueRef sel_gt(BeCtx *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef x,
                           LLVMValueRef y) {
  return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, a, b, ""), x, y, "");
}
/* min(max(x, lo), hi) keeping NaN, as torch.clamp does. */
static LLVMValueRef clamp(BeCtx *c, LLVMValueRef x, LLVMValueRef lo, LLVMValueRef hi) {
  x = sel_lt(c, x, lo, lo, x);
  return sel_gt(c, x, hi, hi, x);
}

/* c[0] + c[1] x + ... + c[n-1] x^(n-1), by Horner. */
static LLVMValueRef poly(BeCtx *c, LLVMValueRef x, const float *k, int n) {
  LLVMValueRef acc = kf(c, x, k[n - 1]);
  for (int i = n - 2; i >= 0; i--)
    acc = be_fmuladd(c, acc, x, kf(c, x, k[i]));
  return acc;
}

/* ---------------------------------------------------------------- exp */

/* exp(-a) * 2^k for a in [0, 91] (sigmoid's min(|x|, 91)) or [0, 84]
   (gelu's z^2, |x| <= 12.9), k = 24 or 0; a NaN a gives NaN. Both
   callers bound a, so no clamp is emitted, and n = round(-a log2 e) lies
   in [-132, 0], so n + k >= -126 - 1 + 24 for sigmoid and n >= -122 for
   gelu: 2^(n+k) is a normal float (one factor, built from the bits of t,
   whose low bits hold n: bits(t) - bits(magic) = n), and p 2^(n+k), p in
   [0.7, 1.42], is normal too, so the product is exact. r = -a - n C1 is
   one rounding either way (n C1 is exact): an fma computes it directly. */
static LLVMValueRef exp_neg_scaled(BeCtx *c, LLVMValueRef a, int k) {
  static const float taylor7[8] = {1.0f,      1.0f,       1.0f / 2,   1.0f / 6,
                                   1.0f / 24, 1.0f / 120, 1.0f / 720, 1.0f / 5040};
  const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
  LLVMValueRef t = be_fmuladd(c, a, kf(c, a, -1.44269504088896341f), kf(c, a, magic));
  LLVMValueRef nf = sub(c, t, kf(c, a, magic));
  LLVMValueRef r = be_fmuladd(c, nf, kf(c, a, -0.693359375f), LLVMBuildFNeg(c->b, a, ""));
  r = be_fmuladd(c, nf, kf(c, a, 2.12194440e-4f), r);
  LLVMValueRef p = poly(c, r, taylor7, 8);
  LLVMTypeRef it = int_type(c, a);
  int32_t magic_bits = 0x4b400000; /* bits of 1.5 * 2^23 */
  LLVMValueRef e =
      LLVMBuildAdd(c->b, LLVMBuildBitCast(c->b, t, it, ""), ki(c, a, 127 + k - magic_bits), "");
  LLVMValueRef s =
      LLVMBuildBitCast(c->b, LLVMBuildShl(c->b, e, ki(c, a, 23), ""), LLVMTypeOf(a), "");
  return mul(c, p, s);
}

/* ------------------------------------------------------------ sigmoid */

/* No denormal on the way (each costs a microcode assist of ~100 cycles
   per instruction, and random weights drive SE and SiLU inputs far into
   the left tail: EfficientNet-B0's reach -1600). With a = min(|u|, 91),
   es = exp(-a) 2^24 is normal; sigmoid(u) = 1 / (1 + e) for u >= 0 and
   (es / (1 + e)) 2^-24 for u < 0, e = exp(-a) (1 + e rounds to 1 beyond
   a = 20). The last product by 2^-24 is the only one that could become
   denormal: sigmoid is 0 below u = -87 (the true value is below 1.7e-38;
   PyTorch's is 0 below -88.7), x sigmoid(u) x * 0 below u = -91 (true
   |silu| below 2.8e-38). */
#define EXP_SCALE 24
#define SIGMOID_LOW 87.0f
#define SILU_LOW 91.0f

typedef struct {
  LLVMValueRef es, den, neg; /* exp(-a) 2^24, 1 + exp(-a), u < 0 */
} Sig;

static Sig sigmoid_parts(BeCtx *c, LLVMValueRef u) {
  Sig r;
  LLVMValueRef a = be_fcall1(c, "llvm.fabs", u);
  a = sel_gt(c, a, kf(c, u, SILU_LOW), kf(c, u, SILU_LOW), a);
  r.es = exp_neg_scaled(c, a, EXP_SCALE);
  if (c->cfg->target.fma) {
    /* One fma: es 2^-24 is exact, and below 2^-25 beyond a = 20, where
       1 + it rounds to 1 as 1 + 0 does, so these are the bits of the
       select below; the product is never rounded, so it makes no
       denormal (an fma's inputs and result are all that assist). */
    r.den = be_vfma(c, r.es, kf(c, u, 0x1p-24f), kf(c, u, 1.0f));
  } else {
    LLVMValueRef ed = sel_gt(c, a, kf(c, u, 20.0f), kf(c, u, 0.0f), r.es);
    r.den = add(c, kf(c, u, 1.0f), mul(c, ed, kf(c, u, 0x1p-24f))); /* exp(-a), or 0 */
  }
  r.neg = LLVMBuildFCmp(c->b, LLVMRealOLT, u, kf(c, u, 0.0f), "");
  return r;
}

/* One division, one rounding for u >= 0 and two (es / den, exact 2^-24)
   below; 0 below u = -87, selected before the product by 2^-24. */
static LLVMValueRef sigmoid(BeCtx *c, LLVMValueRef x) {
  Sig p = sigmoid_parts(c, x);
  LLVMValueRef q = div_(c, LLVMBuildSelect(c->b, p.neg, p.es, kf(c, x, 1.0f), ""), p.den);
  LLVMValueRef f = sel_lt(c, x, kf(c, x, -SIGMOID_LOW), kf(c, x, 0.0f), kf(c, x, 0x1p-24f));
  return LLVMBuildSelect(c->b, p.neg, mul(c, q, f), q, "");
}

/* x * sigmoid(u) (silu: u = x; the tanh form of gelu) as x / (1 + e) for
   u >= 0 and ((x es) / (1 + e)) 2^-24 below: the 2^-24 applied last, to
   the quotient, which keeps its relative accuracy down to FLT_MIN; x * 0
   below u = -91 (-0, or NaN for an infinite x). */
static LLVMValueRef x_sigmoid(BeCtx *c, LLVMValueRef x, LLVMValueRef u) {
  Sig p = sigmoid_parts(c, u);
  LLVMValueRef num = LLVMBuildSelect(c->b, p.neg, mul(c, x, p.es), x, "");
  LLVMValueRef q = div_(c, num, p.den);
  LLVMValueRef neg = mul(c, q, kf(c, x, 0x1p-24f));
  neg = sel_lt(c, u, kf(c, x, -SILU_LOW), mul(c, x, kf(c, x, 0.0f)), neg);
  return LLVMBuildSelect(c->b, p.neg, neg, q, "");
}

/* --------------------------------------------------------------- gelu */

/* erfc(a / sqrt 2) for a >= 0 (see the top of the file). The exponent
   -z^2 = -a^2 / 2 comes from a itself (a rounded z would cost 2 z^2 half
   ulps of relative error: 1e-5 at z = 8). */
static LLVMValueRef erfc_scaled(BeCtx *c, LLVMValueRef a) {
  /* tools/fit_erfc.py: P = 1/2, degree 8 */
  static const float s[9] = {2.820855677e-01f,  2.823900878e-01f,  2.429964691e-01f,
                             2.031105310e-01f,  -2.762497216e-02f, 2.795149684e-01f,
                             -4.884630740e-01f, 2.851839364e-01f,  -5.919356644e-02f};
  LLVMValueRef z = mul(c, a, kf(c, a, 0.707106781186547524f));
  LLVMValueRef t = div_(c, kf(c, a, 1.0f), be_fmuladd(c, z, kf(c, a, 0.5f), kf(c, a, 1.0f)));
  LLVMValueRef aa = mul(c, a, a);
  LLVMValueRef lo = be_square_error(c, a, aa);  /* a*a - aa, exactly */
  LLVMValueRef hi = mul(c, aa, kf(c, a, 0.5f)); /* z^2 = hi + lo/2 */
  LLVMValueRef e =
      mul(c, exp_neg_scaled(c, hi, 0), be_fmuladd(c, lo, kf(c, a, -0.5f), kf(c, a, 1.0f)));
  return mul(c, mul(c, t, poly(c, t, s, 9)), e);
}

/* Below x = -12.9, Phi(x) < 2.2e-38 and would become a denormal (a
   microcode assist per instruction): |x| is clamped there, so every
   intermediate is normal and keeps x*x finite, and Phi is 0 below (the
   true |gelu| is below 3e-37 there). */
#define GELU_LOW 12.9f

static LLVMValueRef gelu(BeCtx *c, LLVMValueRef x) {
  LLVMValueRef a = be_fcall1(c, "llvm.fabs", x);
  a = sel_gt(c, a, kf(c, x, GELU_LOW), kf(c, x, GELU_LOW), a);
  LLVMValueRef half = mul(c, erfc_scaled(c, a), kf(c, x, 0.5f)); /* Phi(-|x|) */
  LLVMValueRef phi = sel_lt(c, x, kf(c, x, 0.0f), half, sub(c, kf(c, x, 1.0f), half));
  phi = sel_lt(c, x, kf(c, x, -GELU_LOW), kf(c, x, 0.0f), phi);
  return mul(c, x, phi); /* x * 0 keeps gelu(-inf) NaN, as x * Phi(x) is */
}

static LLVMValueRef gelu_tanh(BeCtx *c, LLVMValueRef x) {
  /* 2u = 2 sqrt(2/pi) (x + 0.044715 x^3) = x (k0 + k1 x^2) */
  const float k0 = 1.59576912160573071f, k1 = 0.0713548162726008f;
  LLVMValueRef u2 = mul(c, x, be_fmuladd(c, mul(c, x, x), kf(c, x, k1), kf(c, x, k0)));
  return x_sigmoid(c, x, u2);
}

/* ------------------------------------------------------------- be_act */

/* relu6(x + 3): the piece hardsigmoid and hardswish share. */
static LLVMValueRef relu6_plus3(BeCtx *c, LLVMValueRef x) {
  return clamp(c, add(c, x, kf(c, x, 3.0f)), kf(c, x, 0.0f), kf(c, x, 6.0f));
}

LLVMValueRef be_act(BeCtx *c, const Act *a, LLVMValueRef x) {
  switch (a->kind) {
  case ACT_NONE:
    return x;
  case ACT_RELU:
    return is_vector(x) ? be_vrelu(c, x) : be_relu(c, x);
  case ACT_CLAMP:
    return clamp(c, x, kf(c, x, a->a), kf(c, x, a->b));
  case ACT_SIGMOID:
    return sigmoid(c, x);
  case ACT_HARDSIGMOID:
    if (a->a == 1.0f / 6 && a->b == 0.5f) /* PyTorch's, in PyTorch's order */
      return div_(c, relu6_plus3(c, x), kf(c, x, 6.0f));
    return clamp(c, be_fmuladd(c, x, kf(c, x, a->a), kf(c, x, a->b)), kf(c, x, 0.0f),
                 kf(c, x, 1.0f));
  case ACT_HARDSWISH:
    return div_(c, mul(c, x, relu6_plus3(c, x)), kf(c, x, 6.0f));
  case ACT_SILU:
    return x_sigmoid(c, x, x);
  case ACT_GELU:
    return gelu(c, x);
  case ACT_GELU_TANH:
    return gelu_tanh(c, x);
  }
  CHECK(false, "activation kind %d has no code", (int)a->kind);
  return x;
}

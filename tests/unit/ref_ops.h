/*
 * ref_ops.h: plain C reference implementations of every cnncc op, written
 * from the PyTorch definitions with the most straightforward loops (double
 * accumulation, no tricks), independent of the backend's kernels. The
 * backend tests compare generated code against these.
 *
 * All tensors are one sample, float32, contiguous [C][H][W] (or [F]).
 * Functions that compute an output size return it so the tests can check
 * the IR's shape inference too.
 */
#ifndef CNNCC_REF_OPS_H
#define CNNCC_REF_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ir.h"

/* PyTorch's pooling_output_shape (conv: ceil_mode false). */
int64_t ref_window_out(int64_t in, int64_t k, int64_t stride, int64_t pad0, int64_t pad1,
                       int64_t dil, bool ceil_mode);

/* pad = {top, left, bottom, right}; b may be NULL. */
void ref_conv2d(const float *x, int64_t C, int64_t H, int64_t W, const float *w, const float *b,
                int64_t OC, const int64_t k[2], const int64_t s[2], const int64_t pad[4],
                const int64_t d[2], int64_t groups, float *y, int64_t *OH, int64_t *OW);

void ref_batchnorm(const float *x, int64_t C, int64_t HW, const float *w, const float *b,
                   const float *mean, const float *var, float eps, float *y);
void ref_scaleshift(const float *x, int64_t C, int64_t HW, const float *scale, const float *shift,
                    float *y);
void ref_relu(const float *x, int64_t n, float *y);

void ref_maxpool(const float *x, int64_t C, int64_t H, int64_t W, const int64_t k[2],
                 const int64_t s[2], const int64_t pad[4], const int64_t d[2], bool ceil_mode,
                 float *y, int64_t *OH, int64_t *OW);
void ref_avgpool(const float *x, int64_t C, int64_t H, int64_t W, const int64_t k[2],
                 const int64_t s[2], const int64_t pad[4], bool ceil_mode, bool count_include_pad,
                 float *y, int64_t *OH, int64_t *OW);
void ref_adaptive_avgpool(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                          float *y);
void ref_adaptive_maxpool(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                          float *y);
void ref_lrn(const float *x, int64_t C, int64_t HW, int64_t size, float alpha, float beta, float k,
             float *y);
/* w: [out][in]; b may be NULL. */
void ref_linear(const float *x, int64_t in, const float *w, const float *b, int64_t out, float *y);
/* Concatenates n tensors of c[i] channels of HW each. */
void ref_concat(const float *const *xs, const int64_t *c, int n, int64_t HW, float *y);
void ref_add(const float *const *xs, int n, int64_t numel, float *y);
void ref_mean(const float *const *xs, int n, int64_t numel, float *y);
void ref_scale(const float *x, int64_t n, float s, float *y);
/* y = a * b, b of the same size (HW = 1 then) or one value per channel of a
   (C values, a of C * HW) */
void ref_mul(const float *a, const float *b, int64_t C, int64_t HW, bool per_channel, float *y);
/* LayerNorm over the C channels at each of HW positions (biased variance),
   then y = norm * w[c] + b[c]. */
void ref_layernorm(const float *x, int64_t C, int64_t HW, const float *w, const float *b, float eps,
                   float *y);
/* torchvision's channel_shuffle: x.view(g, C/g, HW).transpose(0, 1). */
void ref_channel_shuffle(const float *x, int64_t C, int64_t HW, int64_t groups, float *y);
/* Softmax over the channels at each of HW positions. */
void ref_softmax(const float *x, int64_t C, int64_t HW, float *y);

/* The activation a (ir.h's Act) of x, in double, from PyTorch's definition
   (gelu as x/2 * erfc(-x/sqrt(2)) and the tanh form as x * sigmoid(2u),
   which are the same functions without double's own cancellation). */
double ref_act(const Act *a, double x);
/* Fused epilogue: y = act(y + res), res may be NULL. */
void ref_epilogue(float *y, const float *res, int64_t n, const Act *act);

/* The regimes of an activation, the pieces of its definition a test must
   all reach ("x < 0" and "x >= 0" for relu; below, between and above the
   bounds for clamp; the three pieces of hardswish; the saturated tails of
   sigmoid, silu and gelu): how many (at most REF_MAX_REGIMES), their names,
   and the one x falls in. A bound of clamp that is infinite has no
   regime. */
#define REF_MAX_REGIMES 3
int ref_act_regimes(const Act *a, const char *names[REF_MAX_REGIMES]);
int ref_act_regime(const Act *a, double x);

#endif

/*
 * ref_ops.c: the reference ops (see ref_ops.h). Deliberately naive: every
 * output element is computed on its own from the definition, accumulating
 * in double, with explicit bounds checks instead of precomputed ranges.
 */
#include "ref_ops.h"

#include <math.h>
#include <string.h>

int64_t ref_window_out(int64_t in, int64_t k, int64_t stride, int64_t pad0, int64_t pad1,
                       int64_t dil, bool ceil_mode) {
  /* torch: div_rtn(in + pl + pr - dil*(k-1) - 1 + (ceil ? s-1 : 0), s) + 1,
     then in ceil mode drop a last window that starts in the right padding. */
  int64_t num = in + pad0 + pad1 - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t q = num / stride;
  if ((num % stride != 0) && ((num < 0) != (stride < 0)))
    q--; /* round toward -inf */
  int64_t out = q + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad0)
    out--;
  return out;
}

void ref_conv2d(const float *x, int64_t C, int64_t H, int64_t W, const float *w, const float *b,
                int64_t OC, const int64_t k[2], const int64_t s[2], const int64_t pad[4],
                const int64_t d[2], int64_t groups, float *y, int64_t *OH, int64_t *OW) {
  int64_t oh_n = ref_window_out(H, k[0], s[0], pad[0], pad[2], d[0], false);
  int64_t ow_n = ref_window_out(W, k[1], s[1], pad[1], pad[3], d[1], false);
  *OH = oh_n;
  *OW = ow_n;
  int64_t icg = C / groups, ocg = OC / groups;
  for (int64_t oc = 0; oc < OC; oc++) {
    int64_t g = oc / ocg;
    for (int64_t oh = 0; oh < oh_n; oh++)
      for (int64_t ow = 0; ow < ow_n; ow++) {
        double acc = b ? b[oc] : 0.0;
        for (int64_t ic = 0; ic < icg; ic++)
          for (int64_t i = 0; i < k[0]; i++)
            for (int64_t j = 0; j < k[1]; j++) {
              int64_t ih = oh * s[0] - pad[0] + i * d[0];
              int64_t iw = ow * s[1] - pad[1] + j * d[1];
              if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                continue;
              double xv = x[((g * icg + ic) * H + ih) * W + iw];
              double wv = w[((oc * icg + ic) * k[0] + i) * k[1] + j];
              acc += xv * wv;
            }
        y[(oc * oh_n + oh) * ow_n + ow] = (float)acc;
      }
  }
}

void ref_batchnorm(const float *x, int64_t C, int64_t HW, const float *w, const float *b,
                   const float *mean, const float *var, float eps, float *y) {
  for (int64_t c = 0; c < C; c++)
    for (int64_t i = 0; i < HW; i++)
      y[c * HW + i] =
          (float)(((double)x[c * HW + i] - mean[c]) / sqrt((double)var[c] + eps) * w[c] + b[c]);
}

void ref_scaleshift(const float *x, int64_t C, int64_t HW, const float *scale, const float *shift,
                    float *y) {
  for (int64_t c = 0; c < C; c++)
    for (int64_t i = 0; i < HW; i++)
      y[c * HW + i] = (float)((double)x[c * HW + i] * scale[c] + shift[c]);
}

void ref_relu(const float *x, int64_t n, float *y) {
  for (int64_t i = 0; i < n; i++)
    y[i] = x[i] > 0 ? x[i] : 0.0f;
}

void ref_maxpool(const float *x, int64_t C, int64_t H, int64_t W, const int64_t k[2],
                 const int64_t s[2], const int64_t pad[4], const int64_t d[2], bool ceil_mode,
                 float *y, int64_t *OH, int64_t *OW) {
  int64_t oh_n = ref_window_out(H, k[0], s[0], pad[0], pad[2], d[0], ceil_mode);
  int64_t ow_n = ref_window_out(W, k[1], s[1], pad[1], pad[3], d[1], ceil_mode);
  *OH = oh_n;
  *OW = ow_n;
  for (int64_t c = 0; c < C; c++)
    for (int64_t oh = 0; oh < oh_n; oh++)
      for (int64_t ow = 0; ow < ow_n; ow++) {
        float m = -INFINITY;
        for (int64_t i = 0; i < k[0]; i++)
          for (int64_t j = 0; j < k[1]; j++) {
            int64_t ih = oh * s[0] - pad[0] + i * d[0];
            int64_t iw = ow * s[1] - pad[1] + j * d[1];
            if (ih < 0 || ih >= H || iw < 0 || iw >= W)
              continue; /* padding is -inf */
            float v = x[(c * H + ih) * W + iw];
            if (v > m)
              m = v;
          }
        y[(c * oh_n + oh) * ow_n + ow] = m;
      }
}

void ref_avgpool(const float *x, int64_t C, int64_t H, int64_t W, const int64_t k[2],
                 const int64_t s[2], const int64_t pad[4], bool ceil_mode, bool count_include_pad,
                 float *y, int64_t *OH, int64_t *OW) {
  int64_t oh_n = ref_window_out(H, k[0], s[0], pad[0], pad[2], 1, ceil_mode);
  int64_t ow_n = ref_window_out(W, k[1], s[1], pad[1], pad[3], 1, ceil_mode);
  *OH = oh_n;
  *OW = ow_n;
  for (int64_t c = 0; c < C; c++)
    for (int64_t oh = 0; oh < oh_n; oh++)
      for (int64_t ow = 0; ow < ow_n; ow++) {
        /* torch cpu_avg_pool: clip to input + padding for the
           count_include_pad divisor, then to the input. */
        int64_t h0 = oh * s[0] - pad[0], w0 = ow * s[1] - pad[1];
        int64_t h1 = h0 + k[0], w1 = w0 + k[1];
        if (h1 > H + pad[2])
          h1 = H + pad[2];
        if (w1 > W + pad[3])
          w1 = W + pad[3];
        int64_t pool = (h1 - h0) * (w1 - w0);
        if (h0 < 0)
          h0 = 0;
        if (w0 < 0)
          w0 = 0;
        if (h1 > H)
          h1 = H;
        if (w1 > W)
          w1 = W;
        float *o = &y[(c * oh_n + oh) * ow_n + ow];
        if (h0 >= h1 || w0 >= w1) {
          *o = 0;
          continue;
        }
        double sum = 0;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++)
            sum += x[(c * H + ih) * W + iw];
        int64_t div = count_include_pad ? pool : (h1 - h0) * (w1 - w0);
        *o = (float)(sum / (double)div);
      }
}

void ref_adaptive_avgpool(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                          float *y) {
  for (int64_t c = 0; c < C; c++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        int64_t h0 = (int64_t)floor((double)(oh * H) / OH);
        int64_t h1 = (int64_t)ceil((double)((oh + 1) * H) / OH);
        int64_t w0 = (int64_t)floor((double)(ow * W) / OW);
        int64_t w1 = (int64_t)ceil((double)((ow + 1) * W) / OW);
        double sum = 0;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++)
            sum += x[(c * H + ih) * W + iw];
        y[(c * OH + oh) * OW + ow] = (float)(sum / (double)((h1 - h0) * (w1 - w0)));
      }
}

void ref_adaptive_maxpool(const float *x, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                          float *y) {
  for (int64_t c = 0; c < C; c++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        int64_t h0 = (int64_t)floor((double)(oh * H) / OH);
        int64_t h1 = (int64_t)ceil((double)((oh + 1) * H) / OH);
        int64_t w0 = (int64_t)floor((double)(ow * W) / OW);
        int64_t w1 = (int64_t)ceil((double)((ow + 1) * W) / OW);
        float m = -INFINITY;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++)
            if (!(x[(c * H + ih) * W + iw] <= m)) /* NaN wins, as in PyTorch */
              m = x[(c * H + ih) * W + iw];
        y[(c * OH + oh) * OW + ow] = m;
      }
}

void ref_lrn(const float *x, int64_t C, int64_t HW, int64_t size, float alpha, float beta, float k,
             float *y) {
  /* torch.nn.functional.local_response_norm: x^2 zero-padded by size/2 in
     front and (size-1)/2 behind along C, averaged over windows of `size`
     (avg_pool with count_include_pad), then (avg * alpha + k)^beta. */
  for (int64_t c = 0; c < C; c++)
    for (int64_t i = 0; i < HW; i++) {
      double sum = 0;
      for (int64_t j = 0; j < size; j++) {
        int64_t cc = c - size / 2 + j;
        if (cc < 0 || cc >= C)
          continue;
        double v = x[cc * HW + i];
        sum += v * v;
      }
      double div = pow(sum / (double)size * alpha + k, beta);
      y[c * HW + i] = (float)(x[c * HW + i] / div);
    }
}

void ref_linear(const float *x, int64_t in, const float *w, const float *b, int64_t out, float *y) {
  for (int64_t o = 0; o < out; o++) {
    double acc = b ? b[o] : 0.0;
    for (int64_t i = 0; i < in; i++)
      acc += (double)w[o * in + i] * x[i];
    y[o] = (float)acc;
  }
}

void ref_concat(const float *const *xs, const int64_t *c, int n, int64_t HW, float *y) {
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    memcpy(y + off * HW, xs[i], sizeof(float) * (size_t)(c[i] * HW));
    off += c[i];
  }
}

void ref_add(const float *const *xs, int n, int64_t numel, float *y) {
  for (int64_t i = 0; i < numel; i++) {
    double s = 0;
    for (int k = 0; k < n; k++)
      s += xs[k][i];
    y[i] = (float)s;
  }
}

void ref_mean(const float *const *xs, int n, int64_t numel, float *y) {
  for (int64_t i = 0; i < numel; i++) {
    double s = 0;
    for (int k = 0; k < n; k++)
      s += xs[k][i];
    y[i] = (float)(s / n);
  }
}

void ref_scale(const float *x, int64_t n, float s, float *y) {
  for (int64_t i = 0; i < n; i++)
    y[i] = x[i] * s;
}

void ref_mul(const float *a, const float *b, int64_t C, int64_t HW, bool per_channel, float *y) {
  for (int64_t c = 0; c < C; c++)
    for (int64_t i = 0; i < HW; i++)
      y[c * HW + i] = (float)((double)a[c * HW + i] * b[per_channel ? c : c * HW + i]);
}

void ref_layernorm(const float *x, int64_t C, int64_t HW, const float *w, const float *b, float eps,
                   float *y) {
  for (int64_t p = 0; p < HW; p++) {
    double mean = 0, var = 0;
    for (int64_t c = 0; c < C; c++)
      mean += x[c * HW + p];
    mean /= (double)C;
    for (int64_t c = 0; c < C; c++)
      var += (x[c * HW + p] - mean) * (x[c * HW + p] - mean);
    var /= (double)C;
    for (int64_t c = 0; c < C; c++)
      y[c * HW + p] = (float)((x[c * HW + p] - mean) / sqrt(var + eps) * w[c] + b[c]);
  }
}

void ref_channel_shuffle(const float *x, int64_t C, int64_t HW, int64_t groups, float *y) {
  int64_t per = C / groups;
  for (int64_t i = 0; i < groups; i++) /* x viewed as [groups][per][HW] */
    for (int64_t j = 0; j < per; j++)  /* y viewed as [per][groups][HW] */
      memcpy(y + (j * groups + i) * HW, x + (i * per + j) * HW, sizeof(float) * (size_t)HW);
}

void ref_softmax(const float *x, int64_t C, int64_t HW, float *y) {
  for (int64_t p = 0; p < HW; p++) {
    double m = -INFINITY;
    for (int64_t c = 0; c < C; c++)
      if (x[c * HW + p] > m)
        m = x[c * HW + p];
    double sum = 0;
    for (int64_t c = 0; c < C; c++)
      sum += exp(x[c * HW + p] - m);
    for (int64_t c = 0; c < C; c++)
      y[c * HW + p] = (float)(exp(x[c * HW + p] - m) / sum);
  }
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* min(max(x, lo), hi), NaN staying NaN as in PyTorch (fmin/fmax drop it). */
static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* PyTorch's Hardsigmoid: relu6(x + 3) / 6; the general form otherwise. */
static bool pytorch_hardsigmoid(const Act *a) { return a->a == 1.0f / 6 && a->b == 0.5f; }

double ref_act(const Act *a, double x) {
  switch (a->kind) {
  case ACT_NONE:
    return x;
  case ACT_RELU:
    return x < 0 ? 0 : x;
  case ACT_CLAMP:
    return clampd(x, a->a, a->b);
  case ACT_SIGMOID:
    return sigmoid(x);
  case ACT_HARDSIGMOID:
    if (pytorch_hardsigmoid(a))
      return clampd(x + 3, 0, 6) / 6;
    return clampd((double)a->a * x + a->b, 0, 1);
  case ACT_HARDSWISH:
    return x * clampd(x + 3, 0, 6) / 6;
  case ACT_SILU:
    return x * sigmoid(x);
  case ACT_GELU:
    return 0.5 * x * erfc(-x / sqrt(2.0));
  case ACT_GELU_TANH: {
    double u = sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
    return x * sigmoid(2 * u); /* 1 + tanh(u) = 2 sigmoid(2u) */
  }
  }
  return NAN;
}

void ref_epilogue(float *y, const float *res, int64_t n, const Act *act) {
  for (int64_t i = 0; i < n; i++) {
    float v = y[i];
    if (res)
      v += res[i];
    y[i] = (float)ref_act(act, v);
  }
}

/* Where a tail starts: sigmoid is 1 in float beyond 17, and exp(-x) of the
   naive form overflows below -88; silu and gelu are x or 0 beyond. */
#define TAIL 10.0

int ref_act_regimes(const Act *a, const char *names[REF_MAX_REGIMES]) {
  int n = 0;
  switch (a->kind) {
  case ACT_NONE:
    names[n++] = "all";
    break;
  case ACT_RELU:
    names[n++] = "x < 0";
    names[n++] = "x >= 0";
    break;
  case ACT_CLAMP:
    if (isfinite(a->a))
      names[n++] = "x < min";
    names[n++] = "min <= x <= max";
    if (isfinite(a->b))
      names[n++] = "x > max";
    break;
  case ACT_HARDSIGMOID:
    names[n++] = "0 (ax+b <= 0)";
    names[n++] = "ax+b";
    names[n++] = "1 (ax+b >= 1)";
    break;
  case ACT_HARDSWISH:
    names[n++] = "0 (x <= -3)";
    names[n++] = "x(x+3)/6";
    names[n++] = "x (x >= 3)";
    break;
  case ACT_SIGMOID:
  case ACT_SILU:
  case ACT_GELU:
  case ACT_GELU_TANH:
    names[n++] = "tail x < -10";
    names[n++] = "-10 <= x <= 10";
    names[n++] = "tail x > 10";
    break;
  }
  return n;
}

int ref_act_regime(const Act *a, double x) {
  switch (a->kind) {
  case ACT_NONE:
    return 0;
  case ACT_RELU:
    return x < 0 ? 0 : 1;
  case ACT_CLAMP: {
    int below = isfinite(a->a) ? 1 : 0;
    if (x < a->a)
      return 0;
    return x > a->b ? below + 1 : below;
  }
  case ACT_HARDSIGMOID:
  case ACT_HARDSWISH: {
    /* the pieces of max(0, min(1, a x + b)): a x + b <= 0, in (0, 1), >= 1
       (for PyTorch's a and b: x <= -3, -3 < x < 3, x >= 3) */
    double lin =
        a->kind == ACT_HARDSWISH || pytorch_hardsigmoid(a) ? (x + 3) / 6 : (double)a->a * x + a->b;
    return lin <= 0 ? 0 : lin < 1 ? 1 : 2;
  }
  case ACT_SIGMOID:
  case ACT_SILU:
  case ACT_GELU:
  case ACT_GELU_TANH:
    return x < -TAIL ? 0 : x > TAIL ? 2 : 1;
  }
  return 0;
}

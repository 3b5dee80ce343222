/*
 * act.c: the activations and LayerNormalization, into IR nodes.
 *
 * Each activation is an IR activation op (ir.h, ActKind), which the passes
 * fuse into the conv or linear layer before it: Relu; Clip as a ReLU when
 * its bounds are [0, inf) and a clamp otherwise (ReLU6 is Clip 0..6);
 * Sigmoid; HardSigmoid with its alpha and beta; HardSwish (opset 14, and
 * torch's x * HardSigmoid(x) at older opsets, recognized by products.c);
 * and the patterns products.c recognizes, as nodes of domain cnncc: Silu
 * (x * Sigmoid(x)) and Gelu (the erf form torch exports, or the tanh
 * approximation). An activation works on any view of a tensor (a
 * channels-last one inside ConvNeXt's block) and keeps it.
 *
 * LayerNormalization (opset 17, and the ReduceMean/Sub/Pow/Sqrt/Div
 * arithmetic torch writes at older opsets, recognized by patterns.c)
 * normalizes over its last axis; cnncc's layernorm normalizes the channels
 * of each pixel, so the last axis must be the channels: a channels-last
 * view (torch's permute(0, 2, 3, 1) before nn.LayerNorm, as ConvNeXt
 * does), or the features of a vector.
 */
#include <math.h>
#include <string.h>

#include "onnx_internal.h"

/* x through the activation op (attributes set by the caller from *a). */
static bool act_of(OxCtx *cx, const Onnx__NodeProto *n, OxValue *x, Op op, const Attrs *a,
                   bool nonneg) {
  Node *r = ox_node(cx, n, op, &x->node, 1, NULL);
  if (a) {
    r->attr.clamp_min = a->clamp_min, r->attr.clamp_max = a->clamp_max;
    r->attr.hs_alpha = a->hs_alpha, r->attr.hs_beta = a->hs_beta;
    r->attr.gelu_tanh = a->gelu_tanh;
  }
  if (!ox_infer(cx, r))
    return false;
  OxValue *o;
  if (!ox_out(cx, n, 0, r, x, &o))
    return false;
  if (o)
    o->nonneg = nonneg;
  return true;
}

/* Input 0 of an activation: a run-time tensor, any view. */
static OxValue *act_in(OxCtx *cx, const Onnx__NodeProto *n, bool *ok) {
  return ox_view_in(cx, n, 0, ok);
}

bool ox_lower_relu(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = act_in(cx, n, &ok);
  return ok && act_of(cx, n, x, OP_RELU, NULL, true);
}

/* Clip's bound k (1: min, 2: max) from its input at opset >= 11. */
static bool clip_bound(OxCtx *cx, const Onnx__NodeProto *n, int k, double *v) {
  bool ok = true;
  OxValue *b = ox_input(cx, n, k, &ok);
  if (!ok || !b)
    return ok;
  const char *what = k == 1 ? "min" : "max";
  if (b->kind != OXV_CONST)
    return ox_error(cx,
                    "its %s '%s' is computed at run time; cnncc compiles Clip with constant "
                    "bounds only",
                    what, b->name);
  if (b->c.numel != 1)
    return ox_error(cx, "its %s has %lld values; Clip's bounds are scalars", what,
                    (long long)b->c.numel);
  *v = ox_const_get(&b->c, 0);
  return true;
}

bool ox_lower_clip(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = act_in(cx, n, &ok);
  if (!ok)
    return false;
  double lo = -INFINITY, hi = INFINITY;
  if (cx->opset < 11) {
    lo = ox_attr_float(n, "min", -INFINITY);
    hi = ox_attr_float(n, "max", INFINITY);
  } else if (!clip_bound(cx, n, 1, &lo) || !clip_bound(cx, n, 2, &hi)) {
    return false;
  }
  if (isnan(lo) || isnan(hi))
    return ox_error(cx, "Clip to a NaN bound");
  if (lo > hi)
    return ox_error(cx, "Clip with min %g above max %g", lo, hi);
  if (isinf(lo) && lo < 0 && isinf(hi) && hi > 0) /* no bounds: the identity */
    return ox_alias(cx, n, x, NULL);
  if (lo == 0 && isinf(hi) && hi > 0)
    return act_of(cx, n, x, OP_RELU, NULL, true);
  Attrs a;
  ir_attrs_init(&a);
  a.clamp_min = (float)lo, a.clamp_max = (float)hi;
  return act_of(cx, n, x, OP_CLAMP, &a, lo >= 0);
}

bool ox_lower_sigmoid(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = act_in(cx, n, &ok);
  return ok && act_of(cx, n, x, OP_SIGMOID, NULL, true);
}

bool ox_lower_hardsigmoid(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = act_in(cx, n, &ok);
  if (!ok)
    return false;
  Attrs a;
  ir_attrs_init(&a);
  a.hs_alpha = ox_attr_float(n, "alpha", 0.2f);
  a.hs_beta = ox_attr_float(n, "beta", 0.5f);
  if (!isfinite(a.hs_alpha) || !isfinite(a.hs_beta))
    return ox_error(cx, "alpha and beta must be finite");
  return act_of(cx, n, x, OP_HARDSIGMOID, &a, true);
}

bool ox_lower_hardswish(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = act_in(cx, n, &ok);
  return ok && act_of(cx, n, x, OP_HARDSWISH, NULL, false);
}

bool ox_lower_silu(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = act_in(cx, n, &ok);
  return ok && act_of(cx, n, x, OP_SILU, NULL, false);
}

bool ox_lower_gelu(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = act_in(cx, n, &ok);
  if (!ok)
    return false;
  const char *approx = ox_attr_string(cx, n, "approximate", "none");
  if (strcmp(approx, "none") != 0 && strcmp(approx, "tanh") != 0)
    return ox_error(cx, "unknown approximate '%s' (none or tanh)", approx);
  Attrs a;
  ir_attrs_init(&a);
  a.gelu_tanh = strcmp(approx, "tanh") == 0;
  return act_of(cx, n, x, OP_GELU, &a, false);
}

/* --------------------------------------------------------- LayerNormalization */

/* LayerNormalization's scale (k 1) or bias (k 2): C values, or absent (the
   nodes patterns.c makes leave them out when the model has none). */
static bool ln_param(OxCtx *cx, const Onnx__NodeProto *n, Node *ln, int k, int64_t C) {
  bool ok = true;
  const char *what = k == 1 ? "scale" : "bias";
  OxConst *c = ox_const_in(cx, n, k, what, true, &ok);
  if (!ok)
    return false;
  float *d = arena_alloc_aligned(cx->a, sizeof(float) * (size_t)C, 64);
  if (c && c->numel != C && c->numel != 1)
    return ox_error(cx, "its %s has shape %s, expected %lld values (one per channel)", what,
                    ox_dims_text(cx, c->rank, c->dims), (long long)C);
  for (int64_t i = 0; i < C; i++)
    d[i] = c ? (float)ox_const_get(c, c->numel == 1 ? 0 : i) : k == 1 ? 1.0f : 0.0f;
  ln->params[k == 1 ? P_WEIGHT : P_BIAS]->data = d;
  return true;
}

bool ox_lower_layernorm(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_view_in(cx, n, 0, &ok);
  if (!ok)
    return false;
  if (!ox_no_outputs_from(cx, n, 1, "the mean or the inverse standard deviation"))
    return false;
  int64_t d[OX_MAX_RANK];
  int r = ox_dims(x, d), ch = ox_channel_axis(x);
  int64_t axis = ox_attr_int(n, "axis", -1);
  if (axis < 0)
    axis += r;
  if (axis != r - 1 || ch != r - 1 || x->vec_ones) {
    const char *over = axis == r - 1
                           ? "its last axis"
                           : arena_printf(cx->a, "axes %lld to %d", (long long)axis, r - 1);
    return ox_error(cx,
                    "LayerNormalization of '%s' %s over %s: cnncc normalizes over the channels "
                    "of each pixel only (the last axis of a channels-last [N, H, W, C] view, as "
                    "after torch's permute(0, 2, 3, 1)) or over the features of [N, F]",
                    x->name, ox_dims_text(cx, r, d), over);
  }
  Node *ln = ox_node(cx, n, OP_LAYERNORM, &x->node, 1, NULL);
  ln->attr.eps = ox_attr_float(n, "epsilon", 1e-5f);
  if (!(ln->attr.eps > 0))
    return ox_error(cx, "epsilon must be positive");
  if (!ox_infer(cx, ln) || !ln_param(cx, n, ln, 1, d[ch]) || !ln_param(cx, n, ln, 2, d[ch]))
    return false;
  return ox_out(cx, n, 0, ln, x, NULL);
}

/*
 * lower.c: the layers and the arithmetic into IR nodes (the activations
 * are act.c's, what moves axes or channels layout.c's).
 *
 * A lowering reads its node's inputs (run-time tensors: IR nodes; weights
 * and shapes: constants), checks every attribute the opset defines, makes
 * the IR node (named after the ONNX node), lets the IR infer its shape and
 * create its parameters, and copies the weights into them. Whatever the IR
 * cannot express exactly is an error that says what, never an
 * approximation.
 *
 * Some ONNX ops leave a mark on their output instead of a node: Pad gives
 * a tensor with pending padding that the next Conv or pool takes into its
 * own pads (only those may read it), and a ReLU's output is known to be
 * non-negative, which is what lets a zero Pad fold into a MaxPool.
 * Identity and Dropout pass their input through; Flatten is the IR's
 * flatten view.
 *
 * The elementwise ops (Add, Sub, Mul, Div, Neg, Sum, Mean) and MatMul also
 * read the views of layout.c as they are: a channels-last view (its
 * constants broadcast along its own axes; MatMul by a constant is then the
 * Linear of every pixel, a 1x1 conv) and a vector unsqueezed to
 * [N, C, 1, 1] (the gate of a Mul). A product of two run-time tensors is
 * the IR's mul: of one shape, or a gate of one value per channel.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

/* ------------------------------------------------------------------ helpers */

/* A 2-D window: kernel, strides, dilations, pads (with auto_pad) into a;
   the pads of a padded input are added. */
static bool window(OxCtx *cx, const Onnx__NodeProto *n, OxValue *x, const int64_t kernel[2],
                   Attrs *a, bool dilations) {
  int64_t v[4];
  a->kernel[0] = kernel[0], a->kernel[1] = kernel[1];
  a->stride[0] = a->stride[1] = 1;
  a->dilation[0] = a->dilation[1] = 1;
  int k = ox_attr_ints(n, "strides", v, 2, 0);
  if (k != 0 && k != 2)
    return ox_error(cx, "'strides' must have 2 values for a 2-D input");
  if (k == 2)
    a->stride[0] = v[0], a->stride[1] = v[1];
  k = ox_attr_ints(n, "dilations", v, 2, 0);
  if (k != 0 && k != 2)
    return ox_error(cx, "'dilations' must have 2 values for a 2-D input");
  if (k == 2 && (v[0] != 1 || v[1] != 1) && !dilations)
    return ox_error(cx, "dilations are not supported for this op");
  if (k == 2)
    a->dilation[0] = v[0], a->dilation[1] = v[1];
  for (int i = 0; i < 2; i++)
    if (a->stride[i] < 1 || a->dilation[i] < 1)
      return ox_error(cx, "strides and dilations must be positive");
  memset(a->pad, 0, sizeof a->pad);
  const char *ap = ox_attr_string(cx, n, "auto_pad", "NOTSET");
  k = ox_attr_ints(n, "pads", v, 4, 0);
  if (k != 0 && k != 4)
    return ox_error(cx, "'pads' must have 4 values for a 2-D input");
  if (strcmp(ap, "NOTSET") == 0) {
    if (k == 4) /* [h_begin, w_begin, h_end, w_end] = [top, left, bottom, right] */
      memcpy(a->pad, v, sizeof a->pad);
  } else if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
    const Shape *s = &x->node->shape;
    for (int i = 0; i < 2; i++) {
      int64_t in = s->d[1 + i], st = a->stride[i];
      int64_t out = (in + st - 1) / st;
      int64_t total = (out - 1) * st + (kernel[i] - 1) * a->dilation[i] + 1 - in;
      if (total < 0)
        total = 0;
      int64_t small = total / 2, big = total - small;
      bool upper = ap[5] == 'U';
      a->pad[i] = upper ? small : big;
      a->pad[2 + i] = upper ? big : small;
    }
  } else if (strcmp(ap, "VALID") != 0) {
    return ox_error(cx, "unknown auto_pad '%s'", ap);
  }
  for (int i = 0; i < 4; i++) {
    if (a->pad[i] < 0)
      return ox_error(cx, "negative pads are not supported");
    a->pad[i] += x->padded ? x->pads[i] : 0;
  }
  return true;
}

/* -------------------------------------------------------------------- conv */

bool ox_lower_conv(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_tensor_in(cx, n, 0, 4, &ok);
  OxConst *w = ox_const_in(cx, n, 1, "weight", false, &ok);
  OxConst *b = ox_const_in(cx, n, 2, "bias", true, &ok);
  if (!ok)
    return false;
  if (w->rank != 4)
    return ox_error(cx, "a %d-D convolution: cnncc compiles 2-D convolutions (weight of rank 4)",
                    w->rank - 2);
  if (x->padded && x->pad_value != 0)
    return ox_error(cx, "its input is padded with %g, not 0", (double)x->pad_value);
  int64_t ks[2];
  int nk = ox_attr_ints(n, "kernel_shape", ks, 2, 0);
  if (nk == 0)
    ks[0] = w->dims[2], ks[1] = w->dims[3];
  else if (nk != 2 || ks[0] != w->dims[2] || ks[1] != w->dims[3])
    return ox_error(cx, "'kernel_shape' does not match the weight's %s",
                    ox_dims_text(cx, 4, w->dims));
  Node *c = ox_node(cx, n, OP_CONV2D, &x->node, 1, NULL);
  Attrs *a = &c->attr;
  if (!window(cx, n, x, ks, a, true))
    return false;
  a->out_channels = w->dims[0];
  a->groups = ox_attr_int(n, "group", 1);
  a->has_bias = b != NULL;
  if (!ox_infer(cx, c) || !ox_bind(cx, c, P_WEIGHT, w, "weight", true, 1) ||
      (b && !ox_bind(cx, c, P_BIAS, b, "bias", false, 1)))
    return false;
  return ox_out(cx, n, 0, c, NULL, NULL);
}

/* -------------------------------------------------------------- batchnorm */

bool ox_lower_batchnorm(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_tensor_in(cx, n, 0, 0, &ok);
  OxConst *p[4];
  static const char *const what[] = {"scale", "bias", "mean", "variance"};
  for (int k = 0; k < 4; k++)
    p[k] = ox_const_in(cx, n, 1 + k, what[k], false, &ok);
  if (!ok)
    return false;
  if (cx->opset < 9 && ox_attr_int(n, "spatial", 1) != 1)
    return ox_error(cx, "spatial=0 (statistics per activation) is not supported");
  if (ox_attr_int(n, "training_mode", 0) != 0 || (cx->opset < 7 && !ox_attr_int(n, "is_test", 0)))
    return ox_error(cx, "training_mode=1 (or is_test=0): cnncc compiles inference only");
  if (!ox_no_outputs_from(cx, n, 1, "a training statistic"))
    return false;
  Node *bn = ox_node(cx, n, OP_BATCHNORM, &x->node, 1, NULL);
  bn->attr.eps = ox_attr_float(n, "epsilon", 1e-5f);
  if (!(bn->attr.eps > 0))
    return ox_error(cx, "epsilon must be positive");
  if (!ox_infer(cx, bn))
    return false;
  static const int slot[4] = {P_WEIGHT, P_BIAS, P_MEAN, P_VAR};
  for (int k = 0; k < 4; k++)
    if (!ox_bind(cx, bn, slot[k], p[k], what[k], false, 1))
      return false;
  return ox_out(cx, n, 0, bn, NULL, NULL);
}

/* ------------------------------------------------------------------ pooling */

bool ox_lower_pool(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true, max = strcmp(n->op_type, "MaxPool") == 0;
  OxValue *x = ox_tensor_in(cx, n, 0, 4, &ok);
  if (!ok)
    return false;
  int64_t ks[2];
  if (ox_attr_ints(n, "kernel_shape", ks, 2, 0) != 2)
    return ox_error(cx, "'kernel_shape' must have 2 values (2-D pooling)");
  if (max && !ox_no_outputs_from(cx, n, 1, "the indices"))
    return false;
  if (max && ox_attr_int(n, "storage_order", 0) != 0)
    return ox_error(cx, "storage_order=1 is not supported");
  if (x->padded && max && !(x->pad_value == -INFINITY || (x->pad_value <= 0 && x->nonneg)))
    return ox_error(cx, "its input is padded with %g, which a max pool cannot absorb",
                    (double)x->pad_value);
  if (x->padded && !max && x->pad_value != 0)
    return ox_error(cx, "its input is padded with %g, not 0", (double)x->pad_value);
  Node *p = ox_node(cx, n, max ? OP_MAXPOOL : OP_AVGPOOL, &x->node, 1, NULL);
  Attrs *a = &p->attr;
  if (!window(cx, n, x, ks, a, max))
    return false;
  a->ceil_mode = ox_attr_int(n, "ceil_mode", 0) != 0;
  /* Zeros padded in front of an average pool count in its divisor. */
  if (!max) /* a max pool keeps the default, as a spec's does */
    a->count_include_pad = ox_attr_int(n, "count_include_pad", 0) != 0 || x->padded;
  if (!max && x->padded && !ox_attr_int(n, "count_include_pad", 0) &&
      (a->pad[0] != x->pads[0] || a->pad[1] != x->pads[1] || a->pad[2] != x->pads[2] ||
       a->pad[3] != x->pads[3]))
    return ox_error(cx, "a padded input and pads of its own with count_include_pad=0");
  if (!ox_infer(cx, p))
    return false;
  OxValue *o;
  if (!ox_out(cx, n, 0, p, NULL, &o))
    return false;
  if (o)
    o->nonneg = max && x->nonneg;
  return true;
}

/* A global average or max pool of x: the spec's global_avgpool and
   global_maxpool (adaptive pools to 1x1). */
static Node *global_pool(OxCtx *cx, const Onnx__NodeProto *n, OxValue *x, bool max) {
  Node *p = ox_node(cx, n, max ? OP_ADAPTIVE_MAXPOOL : OP_ADAPTIVE_AVGPOOL, &x->node, 1, NULL);
  p->attr.out_hw[0] = p->attr.out_hw[1] = 1;
  return ox_infer(cx, p) ? p : NULL;
}

bool ox_lower_global_pool(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true, max = strcmp(n->op_type, "GlobalMaxPool") == 0;
  OxValue *x = ox_tensor_in(cx, n, 0, 4, &ok);
  if (!ok)
    return false;
  Node *p = global_pool(cx, n, x, max);
  if (!p)
    return false;
  OxValue *o;
  if (!ox_out(cx, n, 0, p, NULL, &o))
    return false;
  if (o)
    o->nonneg = x->nonneg;
  return true;
}

/* ReduceMean / ReduceMax over H and W (x.mean([2, 3]) in torchvision's
   MNASNet and ShuffleNet): a global pool, flattened unless keepdims. */
bool ox_lower_reduce(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true, max = strcmp(n->op_type, "ReduceMax") == 0;
  OxValue *x = ox_tensor_in(cx, n, 0, 4, &ok);
  if (!ok)
    return false;
  int64_t axes[4];
  int na = ox_attr_ints(n, "axes", axes, 4, 0);
  if (na == 0 && n->n_input > 1 && n->input[1] && *n->input[1]) { /* opset 18 form */
    OxConst *ac = ox_const_in(cx, n, 1, "axes", false, &ok);
    if (!ok || ac->numel > 4 || !ox_const_ints(cx, ac, false, "the axes"))
      return ok && ox_error(cx, "its axes must be constants");
    na = (int)ac->numel;
    memcpy(axes, ac->i, sizeof(int64_t) * (size_t)na);
  }
  bool h = false, w = false, other = na == 0;
  for (int k = 0; k < na; k++) {
    int64_t a = axes[k] < 0 ? axes[k] + 4 : axes[k];
    h |= a == 2, w |= a == 3, other |= a != 2 && a != 3;
  }
  if (other || !h || !w)
    return ox_error(cx, "%s over other axes than H and W together is not supported", n->op_type);
  Node *p = global_pool(cx, n, x, max);
  if (!p)
    return false;
  if (ox_attr_int(n, "keepdims", 1))
    return ox_out(cx, n, 0, p, NULL, NULL);
  Node *f = ox_node(cx, n, OP_FLATTEN, &p, 1, "flatten");
  return ox_infer(cx, f) && ox_out(cx, n, 0, f, NULL, NULL);
}

bool ox_lower_lrn(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_tensor_in(cx, n, 0, 4, &ok);
  if (!ok)
    return false;
  Node *l = ox_node(cx, n, OP_LRN, &x->node, 1, NULL);
  l->attr.lrn_size = ox_attr_int(n, "size", 0);
  l->attr.alpha = ox_attr_float(n, "alpha", 1e-4f);
  l->attr.beta = ox_attr_float(n, "beta", 0.75f);
  l->attr.k = ox_attr_float(n, "bias", 1.0f);
  if (l->attr.lrn_size < 1)
    return ox_error(cx, "'size' must be a positive integer");
  return ox_infer(cx, l) && ox_out(cx, n, 0, l, NULL, NULL);
}

/* ---------------------------------------------------------- gemm, matmul */

/* A linear layer on x ([N, K]) with weight w laid out [out, in] (trans) or
   [in, out], times alpha; bias c (NULL: none) times beta, broadcast. */
static Node *linear(OxCtx *cx, const Onnx__NodeProto *n, OxValue *x, const OxConst *w, bool trans,
                    float alpha, const OxConst *c, float beta) {
  int64_t K = w->dims[trans ? 1 : 0], M = w->dims[trans ? 0 : 1];
  if (shape_numel(&x->node->shape) != K) {
    ox_error(cx, "its weight %s does not fit the %lld features of '%s'",
             ox_dims_text(cx, 2, w->dims), (long long)shape_numel(&x->node->shape), x->name);
    return NULL;
  }
  Node *l = ox_node(cx, n, OP_LINEAR, &x->node, 1, NULL);
  l->attr.out_features = M;
  l->attr.has_bias = c != NULL;
  if (!ox_infer(cx, l))
    return NULL;
  Param *p = l->params[P_WEIGHT];
  p->data = arena_alloc_aligned(cx->a, sizeof(float) * (size_t)(M * K), 64);
  for (int64_t o = 0; o < M; o++)
    for (int64_t i = 0; i < K; i++)
      p->data[o * K + i] = alpha * (float)ox_const_get(w, trans ? o * K + i : i * M + o);
  if (c) {
    if (!(c->numel == 1 || c->numel == M) || (c->rank == 2 && c->dims[1] != M && c->numel != 1)) {
      ox_error(cx, "its bias %s does not broadcast to [%lld]", ox_dims_text(cx, c->rank, c->dims),
               (long long)M);
      return NULL;
    }
    Param *b = l->params[P_BIAS];
    b->data = arena_alloc_aligned(cx->a, sizeof(float) * (size_t)M, 64);
    for (int64_t o = 0; o < M; o++)
      b->data[o] = beta * (float)ox_const_get(c, c->numel == 1 ? 0 : o);
  }
  return l;
}

bool ox_lower_gemm(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_tensor_in(cx, n, 0, 2, &ok);
  OxConst *w = ox_const_in(cx, n, 1, "B", false, &ok);
  OxConst *c = ox_const_in(cx, n, 2, "C", true, &ok);
  if (!ok)
    return false;
  if (ox_attr_int(n, "transA", 0))
    return ox_error(cx, "transA=1 would mix the batch into the features");
  if (w->rank != 2)
    return ox_error(cx, "its B must be a matrix");
  if (c && c->rank == 2 && c->dims[0] != 1)
    return ox_error(cx, "its C %s varies along the batch", ox_dims_text(cx, 2, c->dims));
  Node *l = linear(cx, n, x, w, ox_attr_int(n, "transB", 0) != 0, ox_attr_float(n, "alpha", 1), c,
                   ox_attr_float(n, "beta", 1));
  return l && ox_out(cx, n, 0, l, NULL, NULL);
}

/* MatMul of a channels-last view [N, H, W, C] by a constant [C, M]: the
   Linear of every pixel (ConvNeXt's), a 1x1 conv keeping nn.Linear's
   [out, in] weight (the spec's pointwise_linear), on the NCHW tensor. */
static bool pointwise_linear(OxCtx *cx, const Onnx__NodeProto *n, OxValue *x, const OxConst *w) {
  int64_t C = x->node->shape.d[0], M = w->dims[1];
  if (w->dims[0] != C)
    return ox_error(cx, "its weight %s does not fit the %lld channels of '%s'",
                    ox_dims_text(cx, 2, w->dims), (long long)C, x->name);
  Node *c = ox_node(cx, n, OP_CONV2D, &x->node, 1, NULL);
  c->attr.out_channels = M;
  c->attr.kernel[0] = c->attr.kernel[1] = 1;
  c->attr.linear_weight = true;
  c->attr.has_bias = false; /* an Add after it may bring one */
  if (!ox_infer(cx, c))
    return false;
  Param *p = c->params[P_WEIGHT];
  p->data = arena_alloc_aligned(cx->a, sizeof(float) * (size_t)(M * C), 64);
  for (int64_t o = 0; o < M; o++)
    for (int64_t i = 0; i < C; i++)
      p->data[o * C + i] = (float)ox_const_get(w, i * M + o);
  return ox_out(cx, n, 0, c, x, NULL);
}

bool ox_lower_matmul(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_view_in(cx, n, 0, &ok);
  OxConst *w = ox_const_in(cx, n, 1, "right-hand matrix", false, &ok);
  if (!ok)
    return false;
  if (w->rank != 2)
    return ox_error(cx, "its right-hand side must be a constant matrix");
  if (ox_rank(x) == 4 && !x->vec_ones) {
    if (ox_channel_axis(x) == 3)
      return pointwise_linear(cx, n, x, w);
    int64_t d[4];
    ox_dims(x, d);
    return ox_error(cx,
                    "a MatMul over the last axis of '%s' %s, which is not its channels: cnncc "
                    "multiplies vectors [N, K], or the channels of a channels-last tensor "
                    "[N, H, W, C] (a Transpose with perm [0, 2, 3, 1] first)",
                    x->name, ox_dims_text(cx, 4, d));
  }
  if (x->vec_ones)
    x = ox_tensor_in(cx, n, 0, 2, &ok);
  if (!ok)
    return false;
  Node *l = linear(cx, n, x, w, false, 1, NULL, 1);
  return l && ox_out(cx, n, 0, l, NULL, NULL);
}

/* ------------------------------------------------------------ shapes, views */

/* Output 0 of n is x itself (no node). */
static bool pass_through(OxCtx *cx, const Onnx__NodeProto *n, const OxValue *x) {
  return ox_alias(cx, n, x, NULL);
}

/* Input k, plain or an unsqueezed vector (not permuted). */
static OxValue *unpermuted_in(OxCtx *cx, const Onnx__NodeProto *n, int k, bool *ok) {
  OxValue *v = ox_view_in(cx, n, k, ok);
  return v && v->permuted ? ox_tensor_in(cx, n, k, 0, ok) : v;
}

/* x as a vector of features per sample: itself (an unsqueezed vector with
   its trailing ones dropped), or a flatten of it. */
static bool flatten_of(OxCtx *cx, const Onnx__NodeProto *n, const OxValue *x) {
  if (x->node->shape.rank == 1) {
    OxValue *o;
    if (!ox_alias(cx, n, x, &o))
      return false;
    if (o)
      o->vec_ones = 0;
    return true;
  }
  Node *f = ox_node(cx, n, OP_FLATTEN, &x->node, 1, NULL);
  return ox_infer(cx, f) && ox_out(cx, n, 0, f, NULL, NULL);
}

bool ox_lower_flatten(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = unpermuted_in(cx, n, 0, &ok);
  if (!ok)
    return false;
  int64_t axis = ox_attr_int(n, "axis", 1);
  if (axis < 0)
    axis += ox_rank(x);
  if (axis != 1)
    return ox_error(cx, "Flatten at axis %lld: only axis 1 (keeping the batch) is supported",
                    (long long)ox_attr_int(n, "axis", 1));
  return flatten_of(cx, n, x);
}

bool ox_lower_reshape(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = unpermuted_in(cx, n, 0, &ok);
  OxConst attr_shape, *s = &attr_shape;
  if (cx->opset < 5) { /* Reshape-1: the shape is an attribute */
    int64_t d[OX_MAX_RANK];
    int64_t nd = ox_attr_ints(n, "shape", d, OX_MAX_RANK, 0);
    if (nd < 0)
      return ox_error(cx, "'shape' has too many values");
    ox_const_alloc(cx, s, OX_I64, 1, &nd);
    memcpy(s->i, d, sizeof(int64_t) * (size_t)nd);
  } else {
    s = ox_const_in(cx, n, 1, "shape", false, &ok);
  }
  if (!ok)
    return false;
  if (!ox_const_ints(cx, s, true, "the shape"))
    return false;
  bool allowzero = cx->opset >= 14 && ox_attr_int(n, "allowzero", 0);
  int64_t xd[OX_MAX_RANK];
  int xr = ox_dims(x, xd);
  int64_t per_sample = shape_numel(&x->node->shape);
  /* The first dimension must stay the batch: the batch itself, a 0 that
     copies it, a -1 with the rest accounting for one sample, or, for a model
     exported with a fixed batch, that batch. */
  if (s->numel < 1)
    return ox_error(cx, "a Reshape to a scalar");
  bool first_batch = (s->batch && s->batch[0]) || (s->i[0] == 0 && !allowzero) ||
                     (cx->static_batch > 0 && s->i[0] == cx->static_batch);
  int64_t rest = 1;
  bool rest_neg = false;
  for (int64_t k = 1; k < s->numel; k++) {
    if (s->batch && s->batch[k])
      return ox_error(cx, "the batch size appears in dimension %lld of the target shape",
                      (long long)k);
    int64_t d = s->i[k];
    if (d == 0 && !allowzero)
      d = k < xr ? xd[k] : 0;
    if (d == -1)
      rest_neg = true;
    else if (d < 0 || __builtin_mul_overflow(rest, d, &rest))
      return ox_error(cx, "the target shape %s is invalid", ox_dims_text(cx, (int)s->numel, s->i));
  }
  if (!first_batch && s->i[0] == -1 && !rest_neg && rest == per_sample)
    first_batch = true;
  if (!first_batch)
    return ox_error(cx, "a Reshape whose first dimension is not the batch (shape %s)",
                    ox_dims_text(cx, (int)s->numel, s->i));
  if (!rest_neg && rest != per_sample)
    return ox_error(cx, "cannot reshape the %lld values of a sample to %s", (long long)per_sample,
                    ox_dims_text(cx, (int)s->numel, s->i));
  if (s->numel == 2)
    return flatten_of(cx, n, x);
  if (s->numel == 4 && x->node->shape.rank == 3 && !rest_neg && s->i[1] == x->node->shape.d[0] &&
      s->i[2] == x->node->shape.d[1] && s->i[3] == x->node->shape.d[2])
    return pass_through(cx, n, x);
  /* [N, F] to [N, F, 1, 1] (x.view(N, C, 1, 1) of a gate): an unsqueezed
     vector */
  bool ones = x->node->shape.rank == 1 && s->numel <= 4 &&
              (s->i[1] == x->node->shape.d[0] || (rest_neg && s->i[1] == -1));
  for (int64_t k = 2; ones && k < s->numel; k++)
    ones = s->i[k] == 1 || (s->i[k] == -1 && s->i[1] != -1);
  if (ones) {
    OxValue *o;
    if (!ox_alias(cx, n, x, &o))
      return false;
    if (o)
      o->vec_ones = (int)s->numel - 2;
    return true;
  }
  return ox_error(cx,
                  "a Reshape of %s to %s, which cnncc cannot express (it flattens to [N, -1], "
                  "and unsqueezes a vector to [N, F, 1, 1])",
                  ox_dims_text(cx, xr, xd), ox_dims_text(cx, (int)s->numel, s->i));
}

bool ox_lower_identity(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_input(cx, n, 0, &ok);
  if (!ok)
    return false;
  if (!x)
    return ox_error(cx, "input 0 is missing");
  if (strcmp(n->op_type, "Dropout") == 0) {
    if (!ox_no_outputs_from(cx, n, 1, "the mask"))
      return false;
    OxValue *tm = ox_input(cx, n, 2, &ok);
    if (ok && tm && (tm->kind != OXV_CONST || ox_const_get(&tm->c, 0) != 0))
      return ox_error(cx, "training_mode must be false: cnncc compiles inference only");
  }
  return ok && pass_through(cx, n, x);
}

bool ox_lower_pad(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_tensor_in(cx, n, 0, 4, &ok);
  if (!ok)
    return false;
  int64_t p[8];
  float value = 0;
  const char *mode = ox_attr_string(cx, n, "mode", "constant");
  if (strcmp(mode, "constant") != 0)
    return ox_error(cx, "Pad mode '%s': only 'constant' padding folds into a conv or pool", mode);
  if (cx->opset < 11) {
    if (ox_attr_ints(n, cx->opset < 2 ? "paddings" : "pads", p, 8, 0) != 8)
      return ox_error(cx, "'pads' must have 8 values for a 4-D input");
    value = ox_attr_float(n, "value", 0);
  } else {
    OxConst *pc = ox_const_in(cx, n, 1, "pads", false, &ok);
    OxConst *vc = ox_const_in(cx, n, 2, "constant value", true, &ok);
    if (!ok)
      return false;
    if (n->n_input > 3 && n->input[3] && *n->input[3])
      return ox_error(cx, "Pad with axes is not supported");
    if (pc->numel != 8 || !ox_const_ints(cx, pc, false, "the pads"))
      return ox_error(cx, "its pads must be 8 constants for a 4-D input");
    memcpy(p, pc->i, sizeof p);
    if (vc)
      value = (float)ox_const_get(vc, 0);
  }
  /* [n_b, c_b, h_b, w_b, n_e, c_e, h_e, w_e] */
  if (p[0] || p[1] || p[4] || p[5])
    return ox_error(cx, "padding the batch or the channels is not supported");
  for (int k = 0; k < 8; k++)
    if (p[k] < 0)
      return ox_error(cx, "negative pads (cropping) are not supported");
  if (x->padded && x->pad_value != value)
    return ox_error(cx, "two Pads with different values");
  if (n->n_output < 1 || !n->output[0] || !*n->output[0])
    return true;
  OxValue *o = ox_value_new(cx, n->output[0], OXV_TENSOR);
  if (!o)
    return false;
  o->node = x->node;
  o->nonneg = x->nonneg && value >= 0;
  o->padded = true;
  o->pad_value = value;
  int64_t add[4] = {p[2], p[3], p[6], p[7]};
  for (int k = 0; k < 4; k++)
    o->pads[k] = (x->padded ? x->pads[k] : 0) + add[k];
  return true;
}

/* ------------------------------------------------------------- n-ary ops */

bool ox_lower_concat(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  int nin = (int)n->n_input;
  if (nin < 1)
    return ox_error(cx, "a Concat without inputs");
  Node **in = arena_alloc(cx->a, sizeof(Node *) * (size_t)nin);
  int rank = 0;
  for (int k = 0; k < nin && ok; k++) {
    OxValue *v = ox_tensor_in(cx, n, k, 0, &ok);
    if (!ok)
      return false;
    in[k] = v->node;
    if (rank && ox_rank(v) != rank)
      return ox_error(cx, "its inputs have different ranks");
    rank = ox_rank(v);
  }
  int64_t axis = ox_attr_int(n, "axis", cx->opset < 4 ? 1 : -999);
  if (axis < 0)
    axis += rank;
  if (axis != 1)
    return ox_error(cx, "Concat along axis %lld: only axis 1 (channels, features) is supported",
                    (long long)ox_attr_int(n, "axis", 0));
  Node *c = ox_node(cx, n, OP_CONCAT, in, nin, NULL);
  return ox_infer(cx, c) && ox_out(cx, n, 0, c, NULL, NULL);
}

/* Whether the views a and b are the same view (permuted alike). */
static bool same_view(const OxValue *a, const OxValue *b) {
  return a->permuted == b->permuted && a->vec_ones == b->vec_ones &&
         (!a->permuted || memcmp(a->perm, b->perm, sizeof a->perm) == 0);
}

/* Same-shape tensors into an IR op of several inputs; the inputs may be
   views, all the same one. */
static bool nary(OxCtx *cx, const Onnx__NodeProto *n, Op op) {
  bool ok = true;
  int nin = (int)n->n_input;
  Node **in = arena_alloc(cx->a, sizeof(Node *) * (size_t)(nin ? nin : 1));
  OxValue *first = NULL;
  for (int k = 0; k < nin; k++) {
    OxValue *v = ox_view_in(cx, n, k, &ok);
    if (!ok)
      return false;
    if (first && !same_view(first, v)) {
      int64_t d0[OX_MAX_RANK], d1[OX_MAX_RANK];
      int r0 = ox_dims(first, d0), r1 = ox_dims(v, d1);
      return ox_error(cx,
                      "its inputs '%s' %s and '%s' %s are not the same view of their tensors (one "
                      "transposed or unsqueezed, the other not): cnncc adds tensors of one shape",
                      first->name, ox_dims_text(cx, r0, d0), v->name, ox_dims_text(cx, r1, d1));
    }
    first = first ? first : v;
    in[k] = v->node;
  }
  if (nin == 1)
    return pass_through(cx, n, first);
  Node *x = ox_node(cx, n, op, in, nin, NULL);
  return ox_infer(cx, x) && ox_out(cx, n, 0, x, first, NULL);
}

bool ox_lower_sum_mean(OxCtx *cx, const Onnx__NodeProto *n) {
  return nary(cx, n, strcmp(n->op_type, "Mean") == 0 ? OP_MEAN : OP_ADD);
}

/* Whether constant c broadcasts against the run-time tensor x (numpy's
   rule, from the right) as a scalar (*per_channel false) or one value per
   channel/feature: every dim 1 but the one on x's channel axis. */
static bool broadcast_kind(const OxValue *x, const OxConst *c, bool *per_channel) {
  *per_channel = false;
  if (c->numel == 1)
    return true;
  int64_t xd[OX_MAX_RANK];
  int r = ox_dims(x, xd), ch = ox_channel_axis(x);
  if (c->rank > r || c->numel != xd[ch])
    return false;
  for (int k = 0; k < c->rank; k++) {
    int axis = r - c->rank + k;
    if (c->dims[k] != 1 && axis != ch)
      return false;
  }
  *per_channel = true;
  return true;
}

/* x * s + t per channel (s or t NULL: 1 or 0), as a scale-shift node. */
static bool affine(OxCtx *cx, const Onnx__NodeProto *n, OxValue *x, const OxConst *s, bool s_inv,
                   const OxConst *t, bool t_neg) {
  Node *a = ox_node(cx, n, OP_SCALESHIFT, &x->node, 1, NULL);
  if (!ox_infer(cx, a))
    return false;
  int64_t C = x->node->shape.d[0];
  for (int slot = 0; slot < 2; slot++) {
    Param *p = a->params[slot];
    p->data = arena_alloc_aligned(cx->a, sizeof(float) * (size_t)C, 64);
    const OxConst *c = slot == P_SCALE ? s : t;
    for (int64_t k = 0; k < C; k++) {
      double v = c ? ox_const_get(c, c->numel == 1 ? 0 : k) : slot == P_SCALE ? 1 : 0;
      if (slot == P_SCALE && s_inv && c)
        v = 1 / v;
      if (slot == P_SHIFT && t_neg)
        v = -v;
      p->data[k] = (float)v;
    }
  }
  return ox_out(cx, n, 0, a, x, NULL);
}

/* One run-time tensor (any view) and one constant, in either order. */
static bool tensor_and_const(OxCtx *cx, const Onnx__NodeProto *n, OxValue **x, OxValue **c,
                             bool *const_first, bool *ok) {
  OxValue *a = ox_input(cx, n, 0, ok), *b = ox_input(cx, n, 1, ok);
  if (!*ok)
    return false;
  if (!a || !b)
    return *ok = ox_error(cx, "it needs two inputs");
  *const_first = a->kind == OXV_CONST;
  OxValue *t = *const_first ? b : a, *k = *const_first ? a : b;
  if (t->kind != OXV_TENSOR || k->kind != OXV_CONST)
    return false;
  *x = ox_view_in(cx, n, *const_first ? 1 : 0, ok);
  *c = k;
  return *ok;
}

bool ox_lower_add(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true, cfirst, per_channel;
  OxValue *x, *cv;
  if (!tensor_and_const(cx, n, &x, &cv, &cfirst, &ok))
    return ok ? nary(cx, n, OP_ADD) : false;
  OxConst legacy = ox_legacy_operand(cx, n, ox_rank(x), &cv->c), *c = &legacy;
  bool sub = strcmp(n->op_type, "Sub") == 0;
  if (!broadcast_kind(x, c, &per_channel))
    return ox_error(cx,
                    "adding a constant of shape %s: only a scalar or one value per channel "
                    "broadcasts",
                    ox_dims_text(cx, c->rank, c->dims));
  if (sub && cfirst) /* c - x */
    return ox_error(cx, "a constant minus a tensor is not supported");
  /* The bias of a conv or linear layer read only here: folded into it. */
  Node *p = x->node;
  if ((p->op == OP_CONV2D || p->op == OP_LINEAR) && ox_uses(cx, x->name) == 1 &&
      p->epi.act.kind == ACT_NONE && !p->dead) {
    int64_t C = p->shape.d[0];
    if (!p->attr.has_bias) {
      int64_t d = C;
      p->params[P_BIAS] =
          ir_param_new(cx->g, p, P_BIAS, arena_printf(cx->a, "%s.bias", p->name), 1, &d, true);
      p->nparams = p->nparams > P_BIAS + 1 ? p->nparams : P_BIAS + 1;
      p->attr.has_bias = true;
    }
    /* a copy: the old bias may be an initializer's floats, shared */
    const float *old = p->params[P_BIAS]->data;
    float *b = arena_alloc_aligned(cx->a, sizeof(float) * (size_t)C, 64);
    for (int64_t k = 0; k < C; k++)
      b[k] = (old ? old[k] : 0) +
             (float)(sub ? -1 : 1) * (float)ox_const_get(c, c->numel == 1 ? 0 : k);
    p->params[P_BIAS]->data = b;
    return pass_through(cx, n, x);
  }
  return affine(cx, n, x, NULL, false, c, sub);
}

/* x times a constant of one value per channel: a `parameter` layer and a
   mul (as a spec writes ConvNeXt's layer scale; fold-linear folds it into
   the conv before it). The parameter is the initializer, under its own
   name; any other constant (or a Div's reciprocal) is named after n. */
static bool mul_per_channel(OxCtx *cx, const Onnx__NodeProto *n, OxValue *x, const OxValue *cv,
                            const OxConst *c, bool div) {
  bool initializer = !cv->producer && !div;
  Shape ps = x->node->shape;
  if (ps.rank == 3)
    ps.d[1] = ps.d[2] = 1;
  const char *base = initializer ? cv->name : arena_printf(cx->a, "%s.scale", ox_node_label(n));
  Node *p = ox_node_named(cx, OP_PARAMETER, base, NULL, 0);
  p->attr.param_shape = ps;
  if (!ox_infer(cx, p))
    return false;
  int64_t C = ps.d[0];
  float *data = arena_alloc_aligned(cx->a, sizeof(float) * (size_t)C, 64);
  for (int64_t k = 0; k < C; k++)
    data[k] = (float)(div ? 1 / ox_const_get(c, k) : ox_const_get(c, k));
  p->params[P_WEIGHT]->data = data;
  Node *in[2] = {p, x->node};
  Node *m = ox_node(cx, n, OP_MUL, in, 2, NULL);
  return ox_infer(cx, m) && ox_out(cx, n, 0, m, x, NULL);
}

/* The product of two run-time tensors: of one shape (and view), or one a
   gate of one value per channel of the other ([N, C, 1, 1], possibly an
   unsqueezed vector): squeeze-excitation. */
static bool mul_tensors(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *a = ox_view_in(cx, n, 0, &ok), *b = ox_view_in(cx, n, 1, &ok);
  if (!ok)
    return false;
  int64_t da[OX_MAX_RANK], db[OX_MAX_RANK];
  int ra = ox_dims(a, da), rb = ox_dims(b, db);
  bool fits = ra == rb && same_view(a, b) && shape_eq(&a->node->shape, &b->node->shape);
  for (int side = 0; !fits && side < 2; side++) { /* the gate: b, then a */
    const OxValue *big = side ? b : a, *gate = side ? a : b;
    const int64_t *dg = side ? da : db, *dbig = side ? db : da;
    int ch = ox_channel_axis(big);
    fits = ra == 4 && rb == 4 && big->node->shape.rank == 3 && !big->vec_ones &&
           ox_channel_axis(gate) == ch && dg[ch] == dbig[ch];
    for (int k = 1; fits && k < 4; k++)
      fits = k == ch || dg[k] == 1;
  }
  if (!fits)
    return ox_error(cx,
                    "the product of '%s' %s and '%s' %s: cnncc multiplies run-time tensors of "
                    "one shape, or a tensor [N, C, H, W] by a gate [N, C, 1, 1] of one value per "
                    "channel",
                    a->name, ox_dims_text(cx, ra, da), b->name, ox_dims_text(cx, rb, db));
  Node *in[2] = {a->node, b->node};
  Node *m = ox_node(cx, n, OP_MUL, in, 2, NULL);
  const OxValue *like = a->node->shape.rank == 3 && !a->vec_ones ? a : b;
  return ox_infer(cx, m) && ox_out(cx, n, 0, m, like, NULL);
}

bool ox_lower_mul_div(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true, cfirst, per_channel;
  OxValue *x, *cv;
  bool div = strcmp(n->op_type, "Div") == 0;
  if (!tensor_and_const(cx, n, &x, &cv, &cfirst, &ok)) {
    if (!ok)
      return false;
    if (div)
      return ox_error(cx, "a quotient of two run-time tensors is not supported");
    return mul_tensors(cx, n);
  }
  OxConst legacy = ox_legacy_operand(cx, n, ox_rank(x), &cv->c), *c = &legacy;
  if (div && cfirst)
    return ox_error(cx, "a constant divided by a tensor is not supported");
  if (!broadcast_kind(x, c, &per_channel))
    return ox_error(cx,
                    "multiplying by a constant of shape %s: only a scalar or one value per "
                    "channel broadcasts",
                    ox_dims_text(cx, c->rank, c->dims));
  if (per_channel)
    return mul_per_channel(cx, n, x, cv, c, div);
  Node *s = ox_node(cx, n, OP_SCALE, &x->node, 1, NULL);
  double v = ox_const_get(c, 0);
  s->attr.scale = (float)(div ? 1 / v : v);
  return ox_infer(cx, s) && ox_out(cx, n, 0, s, x, NULL);
}

bool ox_lower_neg(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_view_in(cx, n, 0, &ok);
  if (!ok)
    return false;
  Node *s = ox_node(cx, n, OP_SCALE, &x->node, 1, NULL);
  s->attr.scale = -1;
  return ox_infer(cx, s) && ox_out(cx, n, 0, s, x, NULL);
}

bool ox_lower_softmax(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_tensor_in(cx, n, 0, 0, &ok);
  if (!ok)
    return false;
  int r = ox_rank(x);
  int64_t axis = ox_attr_int(n, "axis", cx->opset < 13 ? 1 : -1);
  if (axis < 0)
    axis += r;
  /* Before opset 13 the input is coerced to 2-D at `axis` and the softmax
     runs over everything from it; from 13 it runs along the one axis. */
  bool over_features = r == 2 && axis == 1;
  bool over_channels = r == 4 && axis == 1 && cx->opset >= 13;
  if (!over_features && !over_channels)
    return ox_error(cx, "Softmax over %s: cnncc computes it over the channels or features only",
                    cx->opset < 13 && r == 4 ? "all of C, H, W (opset < 13 coerces the input to "
                                               "2-D)"
                                             : "another axis");
  Node *s = ox_node(cx, n, OP_SOFTMAX, &x->node, 1, NULL);
  return ox_infer(cx, s) && ox_out(cx, n, 0, s, NULL, NULL);
}

/*
 * lower.c: each supported ONNX op into IR nodes.
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
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

/* ------------------------------------------------------------------ helpers */

/* Input k as a run-time tensor of rank 4 ([N,C,H,W]) or 2 ([N,F]); want:
   the rank it must have, or 0 for either. */
static OxValue *tensor_in(OxCtx *cx, const Onnx__NodeProto *n, int k, int want, bool *ok) {
  OxValue *v = ox_input(cx, n, k, ok);
  if (!*ok)
    return NULL;
  if (!v) {
    *ok = ox_error(cx, "input %d is missing", k);
    return NULL;
  }
  if (v->kind != OXV_TENSOR) {
    *ok = ox_error(cx,
                   "input '%s' is a constant where cnncc expects a tensor computed at run "
                   "time (a layer applied to constants only is not supported)",
                   v->name);
    return NULL;
  }
  if (v->padded && strcmp(n->op_type, "Conv") != 0 && strcmp(n->op_type, "MaxPool") != 0 &&
      strcmp(n->op_type, "AveragePool") != 0 && strcmp(n->op_type, "Pad") != 0) {
    *ok = ox_error(cx,
                   "input '%s' comes from a Pad, which cnncc folds only into a following "
                   "Conv, MaxPool or AveragePool",
                   v->name);
    return NULL;
  }
  if (want && ox_rank(v) != want) {
    *ok = ox_error(cx, "input '%s' has rank %d; this op needs rank %d", v->name, ox_rank(v), want);
    return NULL;
  }
  return v;
}

/* Input k as a constant (NULL if absent and optional). */
static OxConst *const_in(OxCtx *cx, const Onnx__NodeProto *n, int k, const char *what,
                         bool optional, bool *ok) {
  OxValue *v = ox_input(cx, n, k, ok);
  if (!*ok)
    return NULL;
  if (!v) {
    if (!optional)
      *ok = ox_error(cx, "its %s (input %d) is missing", what, k);
    return NULL;
  }
  if (v->kind != OXV_CONST) {
    *ok = ox_error(cx, "its %s '%s' must be a constant (an initializer), not computed at run time",
                   what, v->name);
    return NULL;
  }
  return &v->c;
}

/* The name of the next IR node made for n: the node's label, made unique. */
static const char *node_name(OxCtx *cx, const Onnx__NodeProto *n, const char *suffix) {
  const char *base = ox_node_label(n);
  if (suffix)
    base = arena_printf(cx->a, "%s.%s", base, suffix);
  const char *name = base;
  for (int k = 1; ox_name_taken(cx, name); k++)
    name = arena_printf(cx->a, "%s_%d", base, k);
  ox_name_claim(cx, name);
  return name;
}

static Node *new_node(OxCtx *cx, const Onnx__NodeProto *n, Op op, Node *const *in, int nin,
                      const char *suffix) {
  return ir_node_new(cx->g, op, node_name(cx, n, suffix), in, nin, (SrcLoc){cx->path, 0, 0});
}

/* Shape inference of x; its message becomes the ONNX node's. */
static bool infer(OxCtx *cx, Node *x) {
  IrShapeError e;
  if (ir_infer_shape_at(cx->g, x, NULL, &e))
    return true;
  ox_error(cx, "%s", e.msg);
  if (e.note[0])
    ox_note(cx, "%s", e.note);
  return false;
}

static const char *dims_text(OxCtx *cx, int rank, const int64_t *d) {
  char *s = arena_printf(cx->a, "[");
  for (int k = 0; k < rank; k++)
    s = arena_printf(cx->a, "%s%s%lld", s, k ? ", " : "", (long long)d[k]);
  return arena_printf(cx->a, "%s]", s);
}

/* Copies c into parameter `slot` of x (created by infer), which must have
   the same number of values; same_shape: and the same dims. scale
   multiplies every value (Gemm's alpha, beta). */
static bool bind(OxCtx *cx, Node *x, int slot, const OxConst *c, const char *what, bool same_shape,
                 float scale) {
  Param *p = x->params[slot];
  CHECK(p, "'%s' has no parameter %d", x->name, slot);
  bool fits = c->numel == param_numel(p);
  if (fits && same_shape) {
    fits = c->rank == p->rank;
    for (int k = 0; fits && k < p->rank; k++)
      fits = c->dims[k] == p->dims[k];
  }
  if (!fits)
    return ox_error(cx, "its %s has shape %s, expected %s", what, dims_text(cx, c->rank, c->dims),
                    dims_text(cx, p->rank, p->dims));
  if (c->dtype == OX_F32 && scale == 1) { /* the constant's floats, shared */
    p->data = c->f;
    return true;
  }
  p->data = arena_alloc_aligned(cx->a, sizeof(float) * (size_t)(c->numel ? c->numel : 1), 64);
  for (int64_t k = 0; k < c->numel; k++)
    p->data[k] = (float)ox_const_get(c, k) * scale;
  return true;
}

/* Output k of n is the run-time tensor x; *made (if not NULL) is its
   value, NULL when the output is unnamed (unused). false on an error. */
static bool out_tensor(OxCtx *cx, const Onnx__NodeProto *n, int k, Node *x, OxValue **made) {
  if (made)
    *made = NULL;
  if (k >= (int)n->n_output || !n->output[k] || !*n->output[k])
    return true;
  OxValue *v = ox_value_new(cx, n->output[k], OXV_TENSOR);
  if (!v)
    return false;
  v->node = x;
  if (made)
    *made = v;
  return true;
}

/* The extra outputs of n (from index k on) must be unused. */
static bool no_outputs_from(OxCtx *cx, const Onnx__NodeProto *n, int k, const char *what) {
  for (size_t i = (size_t)k; i < n->n_output; i++)
    if (n->output[i] && *n->output[i] && ox_uses(cx, n->output[i]))
      return ox_error(cx, "its output %zu (%s) is used, which cnncc does not compute", i, what);
  return true;
}

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
  OxValue *x = tensor_in(cx, n, 0, 4, &ok);
  OxConst *w = const_in(cx, n, 1, "weight", false, &ok);
  OxConst *b = const_in(cx, n, 2, "bias", true, &ok);
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
    return ox_error(cx, "'kernel_shape' does not match the weight's %s", dims_text(cx, 4, w->dims));
  Node *c = new_node(cx, n, OP_CONV2D, &x->node, 1, NULL);
  Attrs *a = &c->attr;
  if (!window(cx, n, x, ks, a, true))
    return false;
  a->out_channels = w->dims[0];
  a->groups = ox_attr_int(n, "group", 1);
  a->has_bias = b != NULL;
  if (!infer(cx, c) || !bind(cx, c, P_WEIGHT, w, "weight", true, 1) ||
      (b && !bind(cx, c, P_BIAS, b, "bias", false, 1)))
    return false;
  return out_tensor(cx, n, 0, c, NULL);
}

/* -------------------------------------------------------------- batchnorm */

bool ox_lower_batchnorm(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = tensor_in(cx, n, 0, 0, &ok);
  OxConst *p[4];
  static const char *const what[] = {"scale", "bias", "mean", "variance"};
  for (int k = 0; k < 4; k++)
    p[k] = const_in(cx, n, 1 + k, what[k], false, &ok);
  if (!ok)
    return false;
  if (cx->opset < 9 && ox_attr_int(n, "spatial", 1) != 1)
    return ox_error(cx, "spatial=0 (statistics per activation) is not supported");
  if (ox_attr_int(n, "training_mode", 0) != 0 || (cx->opset < 7 && !ox_attr_int(n, "is_test", 0)))
    return ox_error(cx, "training_mode=1 (or is_test=0): cnncc compiles inference only");
  if (!no_outputs_from(cx, n, 1, "a training statistic"))
    return false;
  Node *bn = new_node(cx, n, OP_BATCHNORM, &x->node, 1, NULL);
  bn->attr.eps = ox_attr_float(n, "epsilon", 1e-5f);
  if (!(bn->attr.eps > 0))
    return ox_error(cx, "epsilon must be positive");
  if (!infer(cx, bn))
    return false;
  static const int slot[4] = {P_WEIGHT, P_BIAS, P_MEAN, P_VAR};
  for (int k = 0; k < 4; k++)
    if (!bind(cx, bn, slot[k], p[k], what[k], false, 1))
      return false;
  return out_tensor(cx, n, 0, bn, NULL);
}

/* ------------------------------------------------------------------ pooling */

bool ox_lower_pool(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true, max = strcmp(n->op_type, "MaxPool") == 0;
  OxValue *x = tensor_in(cx, n, 0, 4, &ok);
  if (!ok)
    return false;
  int64_t ks[2];
  if (ox_attr_ints(n, "kernel_shape", ks, 2, 0) != 2)
    return ox_error(cx, "'kernel_shape' must have 2 values (2-D pooling)");
  if (max && !no_outputs_from(cx, n, 1, "the indices"))
    return false;
  if (max && ox_attr_int(n, "storage_order", 0) != 0)
    return ox_error(cx, "storage_order=1 is not supported");
  if (x->padded && max && !(x->pad_value == -INFINITY || (x->pad_value <= 0 && x->nonneg)))
    return ox_error(cx, "its input is padded with %g, which a max pool cannot absorb",
                    (double)x->pad_value);
  if (x->padded && !max && x->pad_value != 0)
    return ox_error(cx, "its input is padded with %g, not 0", (double)x->pad_value);
  Node *p = new_node(cx, n, max ? OP_MAXPOOL : OP_AVGPOOL, &x->node, 1, NULL);
  Attrs *a = &p->attr;
  if (!window(cx, n, x, ks, a, max))
    return false;
  a->ceil_mode = ox_attr_int(n, "ceil_mode", 0) != 0;
  /* Zeros padded in front of an average pool count in its divisor. */
  a->count_include_pad = !max && (ox_attr_int(n, "count_include_pad", 0) != 0 || x->padded);
  if (!max && x->padded && !ox_attr_int(n, "count_include_pad", 0) &&
      (a->pad[0] != x->pads[0] || a->pad[1] != x->pads[1] || a->pad[2] != x->pads[2] ||
       a->pad[3] != x->pads[3]))
    return ox_error(cx, "a padded input and pads of its own with count_include_pad=0");
  if (!infer(cx, p))
    return false;
  OxValue *o;
  if (!out_tensor(cx, n, 0, p, &o))
    return false;
  if (o)
    o->nonneg = max && x->nonneg;
  return true;
}

bool ox_lower_global_pool(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true, max = strcmp(n->op_type, "GlobalMaxPool") == 0;
  OxValue *x = tensor_in(cx, n, 0, 4, &ok);
  if (!ok)
    return false;
  Node *p;
  if (max) { /* a max pool whose window is the whole plane */
    p = new_node(cx, n, OP_MAXPOOL, &x->node, 1, NULL);
    p->attr.kernel[0] = x->node->shape.d[1], p->attr.kernel[1] = x->node->shape.d[2];
    p->attr.stride[0] = p->attr.kernel[0], p->attr.stride[1] = p->attr.kernel[1];
  } else {
    p = new_node(cx, n, OP_ADAPTIVE_AVGPOOL, &x->node, 1, NULL);
    p->attr.out_hw[0] = p->attr.out_hw[1] = 1;
  }
  if (!infer(cx, p))
    return false;
  OxValue *o;
  if (!out_tensor(cx, n, 0, p, &o))
    return false;
  if (o)
    o->nonneg = x->nonneg;
  return true;
}

/* ReduceMean / ReduceMax over H and W (x.mean([2, 3]) in torchvision's
   MNASNet and ShuffleNet): a global pool, flattened unless keepdims. */
bool ox_lower_reduce(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true, max = strcmp(n->op_type, "ReduceMax") == 0;
  OxValue *x = tensor_in(cx, n, 0, 4, &ok);
  if (!ok)
    return false;
  int64_t axes[4];
  int na = ox_attr_ints(n, "axes", axes, 4, 0);
  if (na == 0 && n->n_input > 1 && n->input[1] && *n->input[1]) { /* opset 18 form */
    OxConst *ac = const_in(cx, n, 1, "axes", false, &ok);
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
  Node *p;
  if (max) {
    p = new_node(cx, n, OP_MAXPOOL, &x->node, 1, NULL);
    p->attr.kernel[0] = x->node->shape.d[1], p->attr.kernel[1] = x->node->shape.d[2];
    p->attr.stride[0] = p->attr.kernel[0], p->attr.stride[1] = p->attr.kernel[1];
  } else {
    p = new_node(cx, n, OP_ADAPTIVE_AVGPOOL, &x->node, 1, NULL);
    p->attr.out_hw[0] = p->attr.out_hw[1] = 1;
  }
  if (!infer(cx, p))
    return false;
  if (ox_attr_int(n, "keepdims", 1))
    return out_tensor(cx, n, 0, p, NULL);
  Node *f = new_node(cx, n, OP_FLATTEN, &p, 1, "flatten");
  return infer(cx, f) && out_tensor(cx, n, 0, f, NULL);
}

bool ox_lower_lrn(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = tensor_in(cx, n, 0, 4, &ok);
  if (!ok)
    return false;
  Node *l = new_node(cx, n, OP_LRN, &x->node, 1, NULL);
  l->attr.lrn_size = ox_attr_int(n, "size", 0);
  l->attr.alpha = ox_attr_float(n, "alpha", 1e-4f);
  l->attr.beta = ox_attr_float(n, "beta", 0.75f);
  l->attr.k = ox_attr_float(n, "bias", 1.0f);
  if (l->attr.lrn_size < 1)
    return ox_error(cx, "'size' must be a positive integer");
  return infer(cx, l) && out_tensor(cx, n, 0, l, NULL);
}

/* ---------------------------------------------------------- gemm, matmul */

/* A linear layer on x ([N, K]) with weight w laid out [out, in] (trans) or
   [in, out], times alpha; bias c (NULL: none) times beta, broadcast. */
static Node *linear(OxCtx *cx, const Onnx__NodeProto *n, OxValue *x, const OxConst *w, bool trans,
                    float alpha, const OxConst *c, float beta) {
  int64_t K = w->dims[trans ? 1 : 0], M = w->dims[trans ? 0 : 1];
  if (shape_numel(&x->node->shape) != K) {
    ox_error(cx, "its weight %s does not fit the %lld features of '%s'", dims_text(cx, 2, w->dims),
             (long long)shape_numel(&x->node->shape), x->name);
    return NULL;
  }
  Node *l = new_node(cx, n, OP_LINEAR, &x->node, 1, NULL);
  l->attr.out_features = M;
  l->attr.has_bias = c != NULL;
  if (!infer(cx, l))
    return NULL;
  Param *p = l->params[P_WEIGHT];
  p->data = arena_alloc_aligned(cx->a, sizeof(float) * (size_t)(M * K), 64);
  for (int64_t o = 0; o < M; o++)
    for (int64_t i = 0; i < K; i++)
      p->data[o * K + i] = alpha * (float)ox_const_get(w, trans ? o * K + i : i * M + o);
  if (c) {
    if (!(c->numel == 1 || c->numel == M) || (c->rank == 2 && c->dims[1] != M && c->numel != 1)) {
      ox_error(cx, "its bias %s does not broadcast to [%lld]", dims_text(cx, c->rank, c->dims),
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
  OxValue *x = tensor_in(cx, n, 0, 2, &ok);
  OxConst *w = const_in(cx, n, 1, "B", false, &ok);
  OxConst *c = const_in(cx, n, 2, "C", true, &ok);
  if (!ok)
    return false;
  if (ox_attr_int(n, "transA", 0))
    return ox_error(cx, "transA=1 would mix the batch into the features");
  if (w->rank != 2)
    return ox_error(cx, "its B must be a matrix");
  if (c && c->rank == 2 && c->dims[0] != 1)
    return ox_error(cx, "its C %s varies along the batch", dims_text(cx, 2, c->dims));
  Node *l = linear(cx, n, x, w, ox_attr_int(n, "transB", 0) != 0, ox_attr_float(n, "alpha", 1), c,
                   ox_attr_float(n, "beta", 1));
  return l && out_tensor(cx, n, 0, l, NULL);
}

bool ox_lower_matmul(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = tensor_in(cx, n, 0, 2, &ok);
  OxConst *w = const_in(cx, n, 1, "right-hand matrix", false, &ok);
  if (!ok)
    return false;
  if (w->rank != 2)
    return ox_error(cx, "its right-hand side must be a constant matrix");
  Node *l = linear(cx, n, x, w, false, 1, NULL, 1);
  return l && out_tensor(cx, n, 0, l, NULL);
}

/* ------------------------------------------------------------ activations */

static bool relu_of(OxCtx *cx, const Onnx__NodeProto *n, OxValue *x) {
  Node *r = new_node(cx, n, OP_RELU, &x->node, 1, NULL);
  if (!infer(cx, r))
    return false;
  OxValue *o;
  if (!out_tensor(cx, n, 0, r, &o))
    return false;
  if (o)
    o->nonneg = true;
  return true;
}

bool ox_lower_relu(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = tensor_in(cx, n, 0, 0, &ok);
  return ok && relu_of(cx, n, x);
}

bool ox_lower_clip(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = tensor_in(cx, n, 0, 0, &ok);
  if (!ok)
    return false;
  double lo = -INFINITY, hi = INFINITY;
  if (cx->opset < 11) {
    lo = ox_attr_float(n, "min", -INFINITY);
    hi = ox_attr_float(n, "max", INFINITY);
  } else {
    OxConst *cl = const_in(cx, n, 1, "min", true, &ok), *ch = const_in(cx, n, 2, "max", true, &ok);
    if (!ok)
      return false;
    if ((cl && cl->numel != 1) || (ch && ch->numel != 1))
      return ox_error(cx, "its min and max must be scalars");
    if (cl)
      lo = ox_const_get(cl, 0);
    if (ch)
      hi = ox_const_get(ch, 0);
  }
  if (lo == 0 && isinf(hi) && hi > 0)
    return relu_of(cx, n, x);
  return ox_error(cx, "Clip to [%g, %g]: cnncc lowers only [0, inf) (a ReLU) so far", lo, hi);
}

/* ------------------------------------------------------------ shapes, views */

/* Output 0 of n is x itself (no node). */
static bool pass_through(OxCtx *cx, const Onnx__NodeProto *n, OxValue *x) {
  if (n->n_output < 1 || !n->output[0] || !*n->output[0])
    return true;
  OxValue *o = ox_value_new(cx, n->output[0], OXV_TENSOR);
  if (!o)
    return false;
  Onnx__NodeProto const *prod = o->producer;
  *o = *x;
  o->name = arena_strdup(cx->a, n->output[0]);
  o->producer = prod;
  return true;
}

/* x as a vector of features per sample: itself, or a flatten of it. */
static bool flatten_of(OxCtx *cx, const Onnx__NodeProto *n, OxValue *x) {
  if (x->node->shape.rank == 1)
    return pass_through(cx, n, x);
  Node *f = new_node(cx, n, OP_FLATTEN, &x->node, 1, NULL);
  return infer(cx, f) && out_tensor(cx, n, 0, f, NULL);
}

bool ox_lower_flatten(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = tensor_in(cx, n, 0, 0, &ok);
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
  OxValue *x = tensor_in(cx, n, 0, 0, &ok);
  OxConst attr_shape, *s = &attr_shape;
  if (cx->opset < 5) { /* Reshape-1: the shape is an attribute */
    int64_t d[OX_MAX_RANK];
    int64_t nd = ox_attr_ints(n, "shape", d, OX_MAX_RANK, 0);
    if (nd < 0)
      return ox_error(cx, "'shape' has too many values");
    ox_const_alloc(cx, s, OX_I64, 1, &nd);
    memcpy(s->i, d, sizeof(int64_t) * (size_t)nd);
  } else {
    s = const_in(cx, n, 1, "shape", false, &ok);
  }
  if (!ok)
    return false;
  if (!ox_const_ints(cx, s, true, "the shape"))
    return false;
  bool allowzero = cx->opset >= 14 && ox_attr_int(n, "allowzero", 0);
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
      d = k < ox_rank(x) ? (x->node->shape.rank == 3 ? x->node->shape.d[k - 1] : 1) : 0;
    if (d == -1)
      rest_neg = true;
    else if (d < 0 || __builtin_mul_overflow(rest, d, &rest))
      return ox_error(cx, "the target shape %s is invalid", dims_text(cx, (int)s->numel, s->i));
  }
  if (!first_batch && s->i[0] == -1 && !rest_neg && rest == per_sample)
    first_batch = true;
  if (!first_batch)
    return ox_error(cx, "a Reshape whose first dimension is not the batch (shape %s)",
                    dims_text(cx, (int)s->numel, s->i));
  if (!rest_neg && rest != per_sample)
    return ox_error(cx, "cannot reshape the %lld values of a sample to %s", (long long)per_sample,
                    dims_text(cx, (int)s->numel, s->i));
  if (s->numel == 2)
    return flatten_of(cx, n, x);
  if (s->numel == 4 && x->node->shape.rank == 3 && !rest_neg && s->i[1] == x->node->shape.d[0] &&
      s->i[2] == x->node->shape.d[1] && s->i[3] == x->node->shape.d[2])
    return pass_through(cx, n, x);
  return ox_error(cx, "a Reshape to %s, which cnncc cannot express (only flattening to [N, -1])",
                  dims_text(cx, (int)s->numel, s->i));
}

bool ox_lower_identity(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_input(cx, n, 0, &ok);
  if (!ok)
    return false;
  if (!x)
    return ox_error(cx, "input 0 is missing");
  if (strcmp(n->op_type, "Dropout") == 0) {
    if (!no_outputs_from(cx, n, 1, "the mask"))
      return false;
    OxValue *tm = ox_input(cx, n, 2, &ok);
    if (ok && tm && (tm->kind != OXV_CONST || ox_const_get(&tm->c, 0) != 0))
      return ox_error(cx, "training_mode must be false: cnncc compiles inference only");
  }
  return ok && pass_through(cx, n, x);
}

bool ox_lower_pad(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = tensor_in(cx, n, 0, 4, &ok);
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
    OxConst *pc = const_in(cx, n, 1, "pads", false, &ok);
    OxConst *vc = const_in(cx, n, 2, "constant value", true, &ok);
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
    OxValue *v = tensor_in(cx, n, k, 0, &ok);
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
  Node *c = new_node(cx, n, OP_CONCAT, in, nin, NULL);
  return infer(cx, c) && out_tensor(cx, n, 0, c, NULL);
}

/* Same-shape tensors into an IR op of several inputs. */
static bool nary(OxCtx *cx, const Onnx__NodeProto *n, Op op) {
  bool ok = true;
  int nin = (int)n->n_input;
  Node **in = arena_alloc(cx->a, sizeof(Node *) * (size_t)(nin ? nin : 1));
  for (int k = 0; k < nin; k++) {
    OxValue *v = tensor_in(cx, n, k, 0, &ok);
    if (!ok)
      return false;
    in[k] = v->node;
  }
  if (nin == 1) {
    bool ok1 = true;
    return pass_through(cx, n, ox_input(cx, n, 0, &ok1));
  }
  Node *x = new_node(cx, n, op, in, nin, NULL);
  return infer(cx, x) && out_tensor(cx, n, 0, x, NULL);
}

bool ox_lower_sum_mean(OxCtx *cx, const Onnx__NodeProto *n) {
  return nary(cx, n, strcmp(n->op_type, "Mean") == 0 ? OP_MEAN : OP_ADD);
}

/* Whether constant c broadcasts against the run-time tensor x as a scalar
   (*per_channel false) or one value per channel/feature. */
static bool broadcast_kind(OxCtx *cx, const OxValue *x, const OxConst *c, bool *per_channel) {
  *per_channel = false;
  if (c->numel == 1)
    return true;
  int64_t C = x->node->shape.d[0];
  int r = ox_rank(x);
  /* numpy broadcasting from the right: [C, 1, 1], [1, C, 1, 1] for 4-D;
     [F], [1, F] for 2-D. */
  int64_t want[4] = {1, C, 1, 1};
  int off = r == 4 ? 0 : 2; /* compare with the last c->rank dims of want's tail */
  if (r == 2)
    want[2] = 1, want[3] = C;
  if (c->rank > r || c->numel != C)
    return false;
  for (int k = 0; k < c->rank; k++)
    if (c->dims[k] != want[4 - c->rank + k])
      return false;
  (void)off;
  (void)cx;
  *per_channel = true;
  return true;
}

/* x * s + t per channel (s or t NULL: 1 or 0), as a scale-shift node. */
static bool affine(OxCtx *cx, const Onnx__NodeProto *n, OxValue *x, const OxConst *s, bool s_inv,
                   const OxConst *t, bool t_neg) {
  Node *a = new_node(cx, n, OP_SCALESHIFT, &x->node, 1, NULL);
  if (!infer(cx, a))
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
  return out_tensor(cx, n, 0, a, NULL);
}

/* One run-time tensor and one constant, in either order. */
static bool tensor_and_const(OxCtx *cx, const Onnx__NodeProto *n, OxValue **x, OxConst **c,
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
  *x = tensor_in(cx, n, *const_first ? 1 : 0, 0, ok);
  *c = &k->c;
  return *ok;
}

bool ox_lower_add(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true, cfirst, per_channel;
  OxValue *x;
  OxConst *c;
  if (!tensor_and_const(cx, n, &x, &c, &cfirst, &ok))
    return ok ? nary(cx, n, OP_ADD) : false;
  OxConst legacy = ox_legacy_operand(cx, n, ox_rank(x), c);
  c = &legacy;
  bool sub = strcmp(n->op_type, "Sub") == 0;
  if (!broadcast_kind(cx, x, c, &per_channel))
    return ox_error(cx,
                    "adding a constant of shape %s: only a scalar or one value per channel "
                    "broadcasts",
                    dims_text(cx, c->rank, c->dims));
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
      p->params[P_BIAS]->data = arena_alloc_aligned(cx->a, sizeof(float) * (size_t)C, 64);
      p->attr.has_bias = true;
    }
    float *b = p->params[P_BIAS]->data;
    for (int64_t k = 0; k < C; k++)
      b[k] += (float)(sub ? -1 : 1) * (float)ox_const_get(c, c->numel == 1 ? 0 : k);
    return pass_through(cx, n, x);
  }
  return affine(cx, n, x, NULL, false, c, sub);
}

bool ox_lower_mul_div(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true, cfirst, per_channel;
  OxValue *x;
  OxConst *c;
  if (!tensor_and_const(cx, n, &x, &c, &cfirst, &ok))
    return ok ? ox_error(cx, "a product of two run-time tensors is not supported yet") : false;
  OxConst legacy = ox_legacy_operand(cx, n, ox_rank(x), c);
  c = &legacy;
  bool div = strcmp(n->op_type, "Div") == 0;
  if (div && cfirst)
    return ox_error(cx, "a constant divided by a tensor is not supported");
  if (!broadcast_kind(cx, x, c, &per_channel))
    return ox_error(cx,
                    "multiplying by a constant of shape %s: only a scalar or one value per "
                    "channel broadcasts",
                    dims_text(cx, c->rank, c->dims));
  if (per_channel)
    return affine(cx, n, x, c, div, NULL, false);
  Node *s = new_node(cx, n, OP_SCALE, &x->node, 1, NULL);
  double v = ox_const_get(c, 0);
  s->attr.scale = (float)(div ? 1 / v : v);
  return infer(cx, s) && out_tensor(cx, n, 0, s, NULL);
}

bool ox_lower_neg(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = tensor_in(cx, n, 0, 0, &ok);
  if (!ok)
    return false;
  Node *s = new_node(cx, n, OP_SCALE, &x->node, 1, NULL);
  s->attr.scale = -1;
  return infer(cx, s) && out_tensor(cx, n, 0, s, NULL);
}

bool ox_lower_softmax(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = tensor_in(cx, n, 0, 0, &ok);
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
  Node *s = new_node(cx, n, OP_SOFTMAX, &x->node, 1, NULL);
  return infer(cx, s) && out_tensor(cx, n, 0, s, NULL);
}

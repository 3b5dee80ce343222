/*
 * node.c: what every lowering is made of.
 *
 * A lowering reads its node's inputs (run-time tensors: IR nodes; weights
 * and shapes: constants), makes IR nodes named after the ONNX node, lets
 * the IR infer their shapes and create their parameters, copies the
 * weights into them, and defines the node's outputs. The checks every
 * lowering needs are here once: an input that is a view (permuted to
 * channels-last, an unsqueezed vector, a pending Pad) reaches only the
 * lowerings that take it as it is.
 */
#include <string.h>

#include "onnx_internal.h"

static bool pad_reader(const Onnx__NodeProto *n) {
  return strcmp(n->op_type, "Conv") == 0 || strcmp(n->op_type, "MaxPool") == 0 ||
         strcmp(n->op_type, "AveragePool") == 0 || strcmp(n->op_type, "Pad") == 0;
}

/* Input k as a run-time tensor, any view. */
static OxValue *runtime_in(OxCtx *cx, const Onnx__NodeProto *n, int k, bool *ok) {
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
  if (v->padded && !pad_reader(n)) {
    *ok = ox_error(cx,
                   "input '%s' comes from a Pad, which cnncc folds only into a following "
                   "Conv, MaxPool or AveragePool",
                   v->name);
    return NULL;
  }
  return v;
}

OxValue *ox_view_in(OxCtx *cx, const Onnx__NodeProto *n, int k, bool *ok) {
  return runtime_in(cx, n, k, ok);
}

OxValue *ox_tensor_in(OxCtx *cx, const Onnx__NodeProto *n, int k, int want, bool *ok) {
  OxValue *v = runtime_in(cx, n, k, ok);
  if (!v)
    return NULL;
  if (v->permuted) {
    *ok = ox_error(cx,
                   "input '%s' is a transposed view (axes %d, %d, %d, %d of the [N, C, H, W] "
                   "tensor); cnncc reads such a view only in elementwise ops, "
                   "LayerNormalization and MatMul, until a Transpose back to [N, C, H, W]",
                   v->name, v->perm[0], v->perm[1], v->perm[2], v->perm[3]);
    return NULL;
  }
  if (v->vec_ones) {
    *ok = ox_error(cx,
                   "input '%s' is a vector [N, %lld] unsqueezed to rank %d; cnncc reads it only "
                   "as the gate of a Mul (one value per channel), or flattened back",
                   v->name, (long long)v->node->shape.d[0], ox_rank(v));
    return NULL;
  }
  if (want && ox_rank(v) != want) {
    *ok = ox_error(cx, "input '%s' has rank %d; this op needs rank %d", v->name, ox_rank(v), want);
    return NULL;
  }
  return v;
}

OxConst *ox_const_in(OxCtx *cx, const Onnx__NodeProto *n, int k, const char *what, bool optional,
                     bool *ok) {
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

/* `base`, made unique among the IR node names. */
static const char *unique_name(OxCtx *cx, const char *base) {
  const char *name = base;
  for (int k = 1; ox_name_taken(cx, name); k++)
    name = arena_printf(cx->a, "%s_%d", base, k);
  ox_name_claim(cx, name);
  return name;
}

Node *ox_node(OxCtx *cx, const Onnx__NodeProto *n, Op op, Node *const *in, int nin,
              const char *suffix) {
  const char *base = ox_node_label(n);
  if (suffix)
    base = arena_printf(cx->a, "%s.%s", base, suffix);
  return ox_node_named(cx, op, base, in, nin);
}

Node *ox_node_named(OxCtx *cx, Op op, const char *base, Node *const *in, int nin) {
  return ir_node_new(cx->g, op, unique_name(cx, base), in, nin, (SrcLoc){cx->path, 0, 0});
}

bool ox_infer(OxCtx *cx, Node *x) {
  IrShapeError e;
  if (ir_infer_shape_at(cx->g, x, NULL, &e))
    return true;
  ox_error(cx, "%s", e.msg);
  if (e.note[0])
    ox_note(cx, "%s", e.note);
  return false;
}

const char *ox_dims_text(OxCtx *cx, int rank, const int64_t *d) {
  char *s = arena_printf(cx->a, "[");
  for (int k = 0; k < rank; k++)
    s = arena_printf(cx->a, "%s%s%lld", s, k ? ", " : "", (long long)d[k]);
  return arena_printf(cx->a, "%s]", s);
}

bool ox_bind(OxCtx *cx, Node *x, int slot, const OxConst *c, const char *what, bool same_shape,
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
    return ox_error(cx, "its %s has shape %s, expected %s", what,
                    ox_dims_text(cx, c->rank, c->dims), ox_dims_text(cx, p->rank, p->dims));
  if (c->dtype == OX_F32 && scale == 1) { /* the constant's floats, shared */
    p->data = c->f;
    return true;
  }
  p->data = arena_alloc_aligned(cx->a, sizeof(float) * (size_t)(c->numel ? c->numel : 1), 64);
  for (int64_t k = 0; k < c->numel; k++)
    p->data[k] = (float)ox_const_get(c, k) * scale;
  return true;
}

bool ox_out(OxCtx *cx, const Onnx__NodeProto *n, int k, Node *x, const OxValue *like,
            OxValue **made) {
  if (made)
    *made = NULL;
  if (k >= (int)n->n_output || !n->output[k] || !*n->output[k])
    return true;
  OxValue *v = ox_value_new(cx, n->output[k], OXV_TENSOR);
  if (!v)
    return false;
  v->node = x;
  if (like && like->node->shape.rank == x->shape.rank) {
    v->permuted = like->permuted;
    memcpy(v->perm, like->perm, sizeof v->perm);
    v->vec_ones = like->vec_ones;
  }
  if (made)
    *made = v;
  return true;
}

bool ox_alias(OxCtx *cx, const Onnx__NodeProto *n, const OxValue *x, OxValue **made) {
  if (made)
    *made = NULL;
  if (n->n_output < 1 || !n->output[0] || !*n->output[0])
    return true;
  OxValue *o = ox_value_new(cx, n->output[0], OXV_TENSOR);
  if (!o)
    return false;
  Onnx__NodeProto const *prod = o->producer;
  *o = *x;
  o->name = arena_strdup(cx->a, n->output[0]);
  o->producer = prod;
  if (made)
    *made = o;
  return true;
}

bool ox_no_outputs_from(OxCtx *cx, const Onnx__NodeProto *n, int k, const char *what) {
  for (size_t i = (size_t)k; i < n->n_output; i++)
    if (n->output[i] && *n->output[i] && ox_uses(cx, n->output[i]))
      return ox_error(cx, "its output %zu (%s) is used, which cnncc does not compute", i, what);
  return true;
}

/*
 * fold.c: constant folding of the small ONNX form.
 *
 * Exporters emit shape arithmetic around the layers: torch.onnx.export turns
 * `x.view(x.size(0), -1)` into Shape -> Gather -> Unsqueeze -> Concat ->
 * Reshape, a dynamic batch adds Shape/Slice/Concat, and weights pass through
 * Identity, Cast, Transpose. Every node whose inputs are all constants (and
 * Shape, whose input may be a run-time tensor: its shape is known) is
 * evaluated here, so that what reaches the lowering is layers with constant
 * attributes.
 *
 * The batch size is not known at compile time: Shape of a run-time tensor
 * gives an int64 constant whose first element is marked as "the batch".
 * Gather, Slice, Concat, Unsqueeze, Squeeze, Reshape, Cast and Where carry
 * the mark along with the element; arithmetic on a marked element cannot be
 * folded and is reported, except comparisons whose answer does not depend
 * on it (the batch is at least 1).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

static const char *const foldable[] = {
    "Constant", "Identity",  "Shape", "Gather", "Unsqueeze",
    "Squeeze",  "Concat",    "Slice", "Cast",   "ConstantOfShape",
    "Reshape",  "Transpose", "Add",   "Sub",    "Mul",
    "Div",      "Neg",       "Sqrt",  "Equal",  "Where",
    "Flatten",  "Range"};

bool ox_foldable(const char *op_type) {
  for (size_t i = 0; i < sizeof foldable / sizeof *foldable; i++)
    if (strcmp(op_type, foldable[i]) == 0)
      return true;
  return false;
}

/* ------------------------------------------------------------------ helpers */

/* A folded constant holds at most 2^24 values, or as many as its largest
   input (a Transpose or Cast of a weight): shapes, indices and small tables
   never come near, and a hostile file's ConstantOfShape would exhaust
   memory. */
#define OX_MAX_FOLD_ELEMS ((int64_t)1 << 24)

static bool fold_alloc(OxCtx *cx, OxConst *c, OxDtype dt, int rank, const int64_t *dims) {
  int64_t n = 1;
  for (int k = 0; k < rank; k++)
    if (dims[k] < 0 || __builtin_mul_overflow(n, dims[k], &n) || n > cx->fold_limit)
      return ox_error(cx, "the result would have more values than cnncc folds (at most %lld)",
                      (long long)cx->fold_limit);
  return ox_const_alloc(cx, c, dt, rank, dims);
}

static bool mark(OxCtx *cx, OxConst *c, int64_t k) {
  if (!c->batch)
    c->batch = arena_alloc(cx->a, (size_t)(c->numel ? c->numel : 1));
  c->batch[k] = 1;
  return true;
}

static bool marked(const OxConst *c, int64_t k) { return c->batch && c->batch[k]; }

/* Copies element k of src into element j of dst (same dtype). */
static void copy_elem(OxCtx *cx, OxConst *dst, int64_t j, const OxConst *src, int64_t k) {
  if (dst->dtype == OX_F32)
    dst->f[j] = src->dtype == OX_F32 ? src->f[k] : (float)src->i[k];
  else
    dst->i[j] = src->dtype == OX_I64 ? src->i[k] : ox_to_int(src->f[k]);
  if (marked(src, k))
    mark(cx, dst, j);
}

static bool out_const(OxCtx *cx, const Onnx__NodeProto *n, int k, const OxConst *c) {
  if (k >= (int)n->n_output || !n->output[k] || !*n->output[k])
    return true; /* an unused optional output */
  OxValue *v = ox_value_new(cx, n->output[k], OXV_CONST);
  if (!v)
    return false;
  v->c = *c;
  return true;
}

/* Input k as a constant (required unless optional). */
static const OxConst *cin(OxCtx *cx, const Onnx__NodeProto *n, int k, bool optional, bool *ok) {
  OxValue *v = ox_input(cx, n, k, ok);
  if (!v) {
    if (!optional && *ok)
      *ok = ox_error(cx, "input %d is missing", k);
    return NULL;
  }
  if (v->kind != OXV_CONST) {
    *ok = ox_error(cx, "input '%s' must be a constant", v->name);
    return NULL;
  }
  return &v->c;
}

static int64_t norm_axis(int64_t axis, int rank) { return axis < 0 ? axis + rank : axis; }

/* --------------------------------------------------------------- the folds */

static bool fold_constant(OxCtx *cx, const Onnx__NodeProto *n) {
  OxConst c;
  const Onnx__AttributeProto *a;
  if ((a = ox_attr(n, "value")) && a->t)
    return ox_tensor_const(cx, a->t, "its 'value'", &c) && out_const(cx, n, 0, &c);
  if ((a = ox_attr(n, "value_float")) && a->has_f) {
    if (!fold_alloc(cx, &c, OX_F32, 0, NULL))
      return false;
    c.f[0] = a->f;
  } else if ((a = ox_attr(n, "value_int")) && a->has_i) {
    if (!fold_alloc(cx, &c, OX_I64, 0, NULL))
      return false;
    c.i[0] = a->i;
  } else if ((a = ox_attr(n, "value_floats"))) {
    int64_t d = (int64_t)a->n_floats;
    if (!fold_alloc(cx, &c, OX_F32, 1, &d))
      return false;
    memcpy(c.f, a->floats, sizeof(float) * a->n_floats);
  } else if ((a = ox_attr(n, "value_ints"))) {
    int64_t d = (int64_t)a->n_ints;
    if (!fold_alloc(cx, &c, OX_I64, 1, &d))
      return false;
    memcpy(c.i, a->ints, sizeof(int64_t) * a->n_ints);
  } else {
    return ox_error(cx, "a Constant without a dense value (value, value_float(s), value_int(s))");
  }
  return out_const(cx, n, 0, &c);
}

static bool fold_shape(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *v = ox_input(cx, n, 0, &ok);
  if (!v)
    return ok && ox_error(cx, "input 0 is missing");
  int64_t dims[OX_MAX_RANK];
  bool bm[OX_MAX_RANK] = {0};
  int rank;
  if (v->kind == OXV_CONST) {
    rank = v->c.rank;
    memcpy(dims, v->c.dims, sizeof(int64_t) * (size_t)rank);
  } else {
    const Shape *s = &v->node->shape;
    rank = ox_rank(v);
    dims[0] = 1;
    bm[0] = true;
    if (s->rank == 3)
      memcpy(dims + 1, s->d, sizeof(int64_t) * 3);
    else
      dims[1] = s->d[0];
  }
  int64_t start = norm_axis(ox_attr_int(n, "start", 0), rank);
  int64_t end = ox_attr(n, "end") ? norm_axis(ox_attr_int(n, "end", rank), rank) : rank;
  start = start < 0 ? 0 : start > rank ? rank : start;
  end = end < start ? start : end > rank ? rank : end;
  int64_t len = end - start;
  OxConst c;
  if (!fold_alloc(cx, &c, OX_I64, 1, &len))
    return false;
  for (int64_t k = 0; k < len; k++) {
    c.i[k] = dims[start + k];
    if (bm[start + k])
      mark(cx, &c, k);
  }
  return out_const(cx, n, 0, &c);
}

/* Indexing helper: strides of c. */
static void strides(const OxConst *c, int64_t *st) {
  int64_t s = 1;
  for (int k = c->rank - 1; k >= 0; k--) {
    st[k] = s;
    s *= c->dims[k];
  }
}

static bool fold_gather(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  const OxConst *data = cin(cx, n, 0, false, &ok), *idx = cin(cx, n, 1, false, &ok);
  if (!ok)
    return false;
  int64_t axis = norm_axis(ox_attr_int(n, "axis", 0), data->rank);
  if (axis < 0 || axis >= data->rank || data->rank + idx->rank - 1 > OX_MAX_RANK)
    return ox_error(cx, "axis %lld is out of range", (long long)ox_attr_int(n, "axis", 0));
  int64_t dims[OX_MAX_RANK];
  int r = 0;
  for (int k = 0; k < axis; k++)
    dims[r++] = data->dims[k];
  for (int k = 0; k < idx->rank; k++)
    dims[r++] = idx->dims[k];
  for (int k = (int)axis + 1; k < data->rank; k++)
    dims[r++] = data->dims[k];
  OxConst c;
  if (!fold_alloc(cx, &c, data->dtype, r, dims))
    return ox_error(cx, "the result is too large");
  int64_t outer = 1, inner = 1, A = data->dims[axis];
  for (int k = 0; k < axis; k++)
    outer *= data->dims[k];
  for (int k = (int)axis + 1; k < data->rank; k++)
    inner *= data->dims[k];
  int64_t j = 0;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t q = 0; q < idx->numel; q++) {
      if (marked(idx, q))
        return ox_error(cx, "an index depends on the batch size");
      int64_t t = ox_to_int(ox_const_get(idx, q));
      if (t < 0)
        t += A;
      if (t < 0 || t >= A)
        return ox_error(cx, "index %lld is out of range [0, %lld)", (long long)t, (long long)A);
      for (int64_t i = 0; i < inner; i++)
        copy_elem(cx, &c, j++, data, (o * A + t) * inner + i);
    }
  return out_const(cx, n, 0, &c);
}

/* The axes of Unsqueeze/Squeeze: attribute before opset 13, input after. */
static int get_axes(OxCtx *cx, const Onnx__NodeProto *n, int64_t *axes, bool *ok) {
  if (cx->opset < 13 || n->n_input < 2) {
    int na = ox_attr_ints(n, "axes", axes, OX_MAX_RANK, 0);
    if (na < 0)
      *ok = ox_error(cx, "too many axes");
    return na;
  }
  OxValue *v = ox_input(cx, n, 1, ok);
  if (!v)
    return 0;
  if (v->kind != OXV_CONST || v->c.numel > OX_MAX_RANK) {
    *ok = ox_error(cx, "its axes must be a constant of at most %d values", OX_MAX_RANK);
    return 0;
  }
  if (!ox_const_ints(cx, &v->c, false, "the axes")) {
    *ok = false;
    return 0;
  }
  for (int64_t k = 0; k < v->c.numel; k++)
    axes[k] = v->c.i[k];
  return (int)v->c.numel;
}

/* Same data, new dims. */
static bool out_reshaped(OxCtx *cx, const Onnx__NodeProto *n, const OxConst *src, int rank,
                         const int64_t *dims) {
  OxConst c = *src;
  c.rank = rank;
  memcpy(c.dims, dims, sizeof(int64_t) * (size_t)rank);
  return out_const(cx, n, 0, &c);
}

static bool fold_unsqueeze(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  const OxConst *x = cin(cx, n, 0, false, &ok);
  int64_t axes[OX_MAX_RANK];
  int na = get_axes(cx, n, axes, &ok);
  if (!ok)
    return false;
  int r = x->rank + na;
  if (r > OX_MAX_RANK)
    return ox_error(cx, "the result would have rank %d", r);
  bool ins[OX_MAX_RANK] = {0};
  for (int k = 0; k < na; k++) {
    int64_t a = norm_axis(axes[k], r);
    if (a < 0 || a >= r || ins[a])
      return ox_error(cx, "axis %lld is out of range or repeated", (long long)axes[k]);
    ins[a] = true;
  }
  int64_t dims[OX_MAX_RANK];
  for (int k = 0, s = 0; k < r; k++)
    dims[k] = ins[k] ? 1 : x->dims[s++];
  return out_reshaped(cx, n, x, r, dims);
}

static bool fold_squeeze(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  const OxConst *x = cin(cx, n, 0, false, &ok);
  int64_t axes[OX_MAX_RANK];
  int na = get_axes(cx, n, axes, &ok);
  if (!ok)
    return false;
  bool drop[OX_MAX_RANK] = {0};
  for (int k = 0; k < x->rank; k++)
    drop[k] = na == 0 && x->dims[k] == 1;
  for (int k = 0; k < na; k++) {
    int64_t a = norm_axis(axes[k], x->rank);
    if (a < 0 || a >= x->rank || x->dims[a] != 1)
      return ox_error(cx, "axis %lld cannot be squeezed", (long long)axes[k]);
    drop[a] = true;
  }
  int64_t dims[OX_MAX_RANK];
  int r = 0;
  for (int k = 0; k < x->rank; k++)
    if (!drop[k])
      dims[r++] = x->dims[k];
  return out_reshaped(cx, n, x, r, dims);
}

static bool fold_concat(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  const OxConst *in[64];
  int nin = (int)n->n_input;
  if (nin < 1 || nin > 64)
    return ox_error(cx, "Concat of %d constants", nin);
  for (int k = 0; k < nin; k++)
    in[k] = cin(cx, n, k, false, &ok);
  if (!ok)
    return false;
  int rank = in[0]->rank;
  int64_t axis = norm_axis(ox_attr_int(n, "axis", 0), rank);
  if (axis < 0 || axis >= rank)
    return ox_error(cx, "axis %lld is out of range", (long long)ox_attr_int(n, "axis", 0));
  int64_t dims[OX_MAX_RANK];
  memcpy(dims, in[0]->dims, sizeof dims);
  dims[axis] = 0;
  OxDtype dt = OX_I64;
  for (int k = 0; k < nin; k++) {
    if (in[k]->rank != rank)
      return ox_error(cx, "the constants have different ranks");
    for (int d = 0; d < rank; d++)
      if (d != axis && in[k]->dims[d] != dims[d])
        return ox_error(cx, "the constants have different shapes");
    dims[axis] += in[k]->dims[axis];
    if (in[k]->dtype == OX_F32)
      dt = OX_F32;
  }
  OxConst c;
  if (!fold_alloc(cx, &c, dt, rank, dims))
    return ox_error(cx, "the result is too large");
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; d++)
    outer *= dims[d];
  for (int d = (int)axis + 1; d < rank; d++)
    inner *= dims[d];
  int64_t j = 0;
  for (int64_t o = 0; o < outer; o++)
    for (int k = 0; k < nin; k++) {
      int64_t m = in[k]->dims[axis] * inner;
      for (int64_t t = 0; t < m; t++)
        copy_elem(cx, &c, j++, in[k], o * m + t);
    }
  return out_const(cx, n, 0, &c);
}

/* Slice along some axes (starts, ends, axes, steps). */
static bool fold_slice(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  const OxConst *x = cin(cx, n, 0, false, &ok);
  if (!ok)
    return false;
  int64_t starts[OX_MAX_RANK], ends[OX_MAX_RANK], axes[OX_MAX_RANK], steps[OX_MAX_RANK];
  int ns;
  if (cx->opset < 10) {
    ns = ox_attr_ints(n, "starts", starts, OX_MAX_RANK, 0);
    int ne = ox_attr_ints(n, "ends", ends, OX_MAX_RANK, 0);
    int na = ox_attr_ints(n, "axes", axes, OX_MAX_RANK, -2);
    if (ns < 0 || ne != ns || (na != -2 && na != ns))
      return ox_error(cx, "'starts', 'ends' and 'axes' must have one value per axis");
    if (na == -2)
      for (int k = 0; k < ns; k++)
        axes[k] = k;
    for (int k = 0; k < ns; k++)
      steps[k] = 1;
  } else {
    OxConst *v[4] = {NULL};
    for (int k = 1; k <= 4; k++) {
      OxValue *iv = ox_input(cx, n, k, &ok);
      if (!iv)
        continue;
      if (iv->kind != OXV_CONST || !ox_const_ints(cx, &iv->c, false, "a slice bound"))
        return ox_error(cx, "input %d must be a constant", k);
      v[k - 1] = &iv->c;
    }
    if (!ok || !v[0] || !v[1] || v[0]->numel != v[1]->numel || v[0]->numel > OX_MAX_RANK)
      return ok && ox_error(cx, "'starts' and 'ends' must have one value per axis");
    ns = (int)v[0]->numel;
    for (int k = 0; k < ns; k++) {
      starts[k] = v[0]->i[k];
      ends[k] = v[1]->i[k];
      axes[k] = v[2] && v[2]->numel == ns ? v[2]->i[k] : k;
      steps[k] = v[3] && v[3]->numel == ns ? v[3]->i[k] : 1;
    }
  }
  int64_t lo[OX_MAX_RANK], step[OX_MAX_RANK], dims[OX_MAX_RANK];
  for (int d = 0; d < x->rank; d++)
    lo[d] = 0, step[d] = 1, dims[d] = x->dims[d];
  for (int k = 0; k < ns; k++) {
    int64_t a = norm_axis(axes[k], x->rank), D;
    if (a < 0 || a >= x->rank || steps[k] == 0)
      return ox_error(cx, "slice axis %lld or step is invalid", (long long)axes[k]);
    D = x->dims[a];
    int64_t s = starts[k] < 0 ? starts[k] + D : starts[k];
    int64_t e = ends[k] < 0 ? ends[k] + D : ends[k];
    if (steps[k] > 0) {
      s = s < 0 ? 0 : s > D ? D : s;
      e = e < 0 ? 0 : e > D ? D : e;
      dims[a] = e > s ? (e - s + steps[k] - 1) / steps[k] : 0;
    } else {
      s = s < 0 ? -1 : s > D - 1 ? D - 1 : s;
      e = e < -1 ? -1 : e > D - 1 ? D - 1 : e;
      dims[a] = s > e ? (s - e - steps[k] - 1) / -steps[k] : 0;
    }
    lo[a] = s;
    step[a] = steps[k];
  }
  OxConst c;
  if (!fold_alloc(cx, &c, x->dtype, x->rank, dims))
    return false;
  int64_t st[OX_MAX_RANK], idx[OX_MAX_RANK] = {0};
  strides(x, st);
  for (int64_t j = 0; j < c.numel; j++) {
    int64_t src = 0;
    for (int d = 0; d < x->rank; d++)
      src += (lo[d] + idx[d] * step[d]) * st[d];
    copy_elem(cx, &c, j, x, src);
    for (int d = x->rank - 1; d >= 0; d--) {
      if (++idx[d] < dims[d])
        break;
      idx[d] = 0;
    }
  }
  return out_const(cx, n, 0, &c);
}

static bool fold_cast(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  const OxConst *x = cin(cx, n, 0, false, &ok);
  if (!ok)
    return false;
  int64_t to = ox_attr_int(n, "to", 0);
  if (cx->opset < 6) { /* Cast-1: the type by name */
    const char *t = ox_attr_string(cx, n, "to", "");
    to = strcmp(t, "FLOAT") == 0    ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
         : strcmp(t, "DOUBLE") == 0 ? ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE
         : strcmp(t, "INT64") == 0  ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64
         : strcmp(t, "INT32") == 0  ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32
         : strcmp(t, "BOOL") == 0   ? ONNX__TENSOR_PROTO__DATA_TYPE__BOOL
                                    : 0;
  }
  OxDtype dt;
  if (to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || to == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
    dt = OX_F32;
  else if (to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
           to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 || to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL)
    dt = OX_I64;
  else
    return ox_error(cx, "a cast to type %lld, which cnncc does not fold", (long long)to);
  OxConst c;
  if (!fold_alloc(cx, &c, dt, x->rank, x->dims))
    return false;
  for (int64_t k = 0; k < x->numel; k++) {
    copy_elem(cx, &c, k, x, k);
    if (to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL)
      c.i[k] = c.i[k] != 0;
  }
  return out_const(cx, n, 0, &c);
}

static bool fold_constant_of_shape(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *sv = ox_input(cx, n, 0, &ok);
  if (!sv || sv->kind != OXV_CONST || sv->c.numel > OX_MAX_RANK ||
      !ox_const_ints(cx, &sv->c, false, "the shape"))
    return ok && ox_error(cx, "its shape must be a constant that does not depend on the batch");
  OxConst val;
  const Onnx__AttributeProto *a = ox_attr(n, "value");
  if (a && a->t) {
    if (!ox_tensor_const(cx, a->t, "its 'value'", &val) || val.numel != 1)
      return ox_error(cx, "its 'value' must hold one element");
  } else {
    if (!fold_alloc(cx, &val, OX_F32, 0, NULL))
      return false;
    val.f[0] = 0;
  }
  OxConst c;
  if (!fold_alloc(cx, &c, val.dtype, (int)sv->c.numel, sv->c.i))
    return ox_error(cx, "the shape is invalid or too large");
  for (int64_t k = 0; k < c.numel; k++)
    copy_elem(cx, &c, k, &val, 0);
  return out_const(cx, n, 0, &c);
}

/* Reshape of a constant (a run-time tensor is lowered in lower.c). */
static bool fold_reshape(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  const OxConst *x = cin(cx, n, 0, false, &ok), *s = cin(cx, n, 1, false, &ok);
  if (!ok)
    return false;
  if (s->numel > OX_MAX_RANK || s->batch)
    return ox_error(cx, "the target shape is invalid");
  int64_t dims[OX_MAX_RANK], known = 1;
  int neg = -1;
  bool allowzero = ox_attr_int(n, "allowzero", 0) != 0;
  for (int k = 0; k < s->numel; k++) {
    int64_t d = ox_to_int(ox_const_get(s, k));
    if (d == 0 && !allowzero)
      d = k < x->rank ? x->dims[k] : 0;
    if (d == -1) {
      if (neg >= 0)
        return ox_error(cx, "the target shape has two -1");
      neg = k;
      d = 1;
    } else if (d < 0) {
      return ox_error(cx, "the target shape has %lld", (long long)d);
    }
    dims[k] = d;
    if (__builtin_mul_overflow(known, d, &known))
      return ox_error(cx, "the target shape is too large");
  }
  if (neg >= 0)
    dims[neg] = known ? x->numel / known : 0;
  int64_t total = 1;
  for (int k = 0; k < s->numel; k++)
    if (__builtin_mul_overflow(total, dims[k], &total))
      return ox_error(cx, "the target shape is too large");
  if (total != x->numel)
    return ox_error(cx, "cannot reshape %lld values to the target shape", (long long)x->numel);
  return out_reshaped(cx, n, x, (int)s->numel, dims);
}

static bool fold_flatten(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  const OxConst *x = cin(cx, n, 0, false, &ok);
  if (!ok)
    return false;
  int64_t axis = norm_axis(ox_attr_int(n, "axis", 1), x->rank);
  int64_t d[2] = {1, 1};
  for (int k = 0; k < x->rank; k++)
    d[k < axis ? 0 : 1] *= x->dims[k];
  return out_reshaped(cx, n, x, 2, d);
}

static bool fold_transpose(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  const OxConst *x = cin(cx, n, 0, false, &ok);
  if (!ok)
    return false;
  int64_t perm[OX_MAX_RANK];
  int np = ox_attr_ints(n, "perm", perm, OX_MAX_RANK, 0);
  if (np == 0)
    for (int k = 0; k < x->rank; k++)
      perm[k] = x->rank - 1 - k;
  else if (np != x->rank)
    return ox_error(cx, "'perm' has %d values for rank %d", np, x->rank);
  int64_t dims[OX_MAX_RANK], st[OX_MAX_RANK], idx[OX_MAX_RANK] = {0};
  for (int k = 0; k < x->rank; k++) {
    if (perm[k] < 0 || perm[k] >= x->rank)
      return ox_error(cx, "'perm' is not a permutation");
    dims[k] = x->dims[perm[k]];
  }
  strides(x, st);
  OxConst c;
  if (!fold_alloc(cx, &c, x->dtype, x->rank, dims))
    return false;
  for (int64_t j = 0; j < c.numel; j++) {
    int64_t src = 0;
    for (int k = 0; k < x->rank; k++)
      src += idx[k] * st[perm[k]];
    copy_elem(cx, &c, j, x, src);
    for (int k = x->rank - 1; k >= 0; k--) {
      if (++idx[k] < dims[k])
        break;
      idx[k] = 0;
    }
  }
  return out_const(cx, n, 0, &c);
}

/* Elementwise ops with numpy broadcasting. */
static bool fold_eltwise(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  const char *op = n->op_type;
  bool unary = strcmp(op, "Neg") == 0 || strcmp(op, "Sqrt") == 0;
  bool where = strcmp(op, "Where") == 0;
  int nin = unary ? 1 : where ? 3 : 2;
  const OxConst *in[3] = {NULL};
  for (int k = 0; k < nin; k++)
    in[k] = cin(cx, n, k, false, &ok);
  if (!ok)
    return false;
  OxConst legacy;
  if (nin == 2) { /* opset < 7: broadcast=1 aligns the second at `axis` */
    legacy = ox_legacy_operand(cx, n, in[0]->rank, in[1]);
    in[1] = &legacy;
  }
  int rank = 0;
  for (int k = 0; k < nin; k++)
    rank = in[k]->rank > rank ? in[k]->rank : rank;
  int64_t dims[OX_MAX_RANK];
  for (int d = 0; d < rank; d++) {
    dims[d] = 1;
    for (int k = 0; k < nin; k++) {
      int off = rank - in[k]->rank;
      int64_t e = d < off ? 1 : in[k]->dims[d - off];
      if (e != 1 && dims[d] != 1 && e != dims[d])
        return ox_error(cx, "the constants' shapes do not broadcast");
      if (e != 1)
        dims[d] = e;
    }
  }
  bool is_float = false;
  for (int k = where ? 1 : 0; k < nin; k++)
    is_float |= in[k]->dtype == OX_F32;
  bool cmp = strcmp(op, "Equal") == 0;
  OxConst c;
  if (!fold_alloc(cx, &c, is_float && !cmp ? OX_F32 : OX_I64, rank, dims))
    return ox_error(cx, "the result is too large");
  int64_t idx[OX_MAX_RANK] = {0}, st[3][OX_MAX_RANK];
  for (int k = 0; k < nin; k++) {
    strides(in[k], st[k]);
  }
  for (int64_t j = 0; j < c.numel; j++) {
    int64_t src[3] = {0};
    for (int k = 0; k < nin; k++) {
      int off = rank - in[k]->rank;
      for (int d = off; d < rank; d++)
        if (in[k]->dims[d - off] != 1)
          src[k] += idx[d] * st[k][d - off];
    }
    bool any_batch = false;
    for (int k = 0; k < nin; k++)
      any_batch |= marked(in[k], src[k]);
    double a = ox_const_get(in[0], src[0]), b = nin > 1 ? ox_const_get(in[1], src[1]) : 0;
    if (where) {
      if (marked(in[0], src[0]))
        return ox_error(cx, "a condition depends on the batch size");
      copy_elem(cx, &c, j, a != 0 ? in[1] : in[2], a != 0 ? src[1] : src[2]);
    } else if (cmp) {
      /* The batch is >= 1: comparing it with a constant below 1 is known. */
      if (any_batch && !(marked(in[0], src[0]) ? b < 1 : a < 1))
        return ox_error(cx, "a comparison depends on the batch size");
      c.i[j] = !any_batch && a == b;
    } else if (any_batch) {
      return ox_error(cx, "arithmetic on the batch size, which cnncc cannot fold");
    } else {
      double r = 0;
      if (strcmp(op, "Add") == 0)
        r = a + b;
      else if (strcmp(op, "Sub") == 0)
        r = a - b;
      else if (strcmp(op, "Mul") == 0)
        r = a * b;
      else if (strcmp(op, "Div") == 0) {
        if (!is_float && b == 0)
          return ox_error(cx, "an integer division by zero");
        r = is_float ? a / b : (double)(ox_to_int(a) / ox_to_int(b));
      } else if (strcmp(op, "Neg") == 0)
        r = -a;
      else
        r = sqrt(a);
      if (c.dtype == OX_F32)
        c.f[j] = (float)r;
      else
        c.i[j] = ox_to_int(r);
    }
    for (int d = rank - 1; d >= 0; d--) {
      if (++idx[d] < dims[d])
        break;
      idx[d] = 0;
    }
  }
  return out_const(cx, n, 0, &c);
}

static bool fold_range(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  const OxConst *s = cin(cx, n, 0, false, &ok), *l = cin(cx, n, 1, false, &ok),
                *d = cin(cx, n, 2, false, &ok);
  if (!ok)
    return false;
  if (s->numel != 1 || l->numel != 1 || d->numel != 1 || s->batch || l->batch || d->batch)
    return ox_error(cx, "Range needs three scalar constants");
  double a = ox_const_get(s, 0), b = ox_const_get(l, 0), step = ox_const_get(d, 0);
  if (step == 0)
    return ox_error(cx, "Range with a step of 0");
  int64_t len = ox_to_int(ceil((b - a) / step));
  if (len < 0)
    len = 0;
  OxConst c;
  if (!fold_alloc(cx, &c, s->dtype, 1, &len))
    return ox_error(cx, "the range is too long");
  for (int64_t k = 0; k < len; k++) {
    if (c.dtype == OX_F32)
      c.f[k] = (float)(a + k * step);
    else
      c.i[k] = ox_to_int(a + (double)k * step);
  }
  return out_const(cx, n, 0, &c);
}

bool ox_fold(OxCtx *cx, const Onnx__NodeProto *n) {
  cx->fold_limit = OX_MAX_FOLD_ELEMS;
  for (size_t k = 0; k < n->n_input; k++) {
    OxValue *v = n->input[k] && *n->input[k] ? ox_value(cx, n->input[k]) : NULL;
    if (v && v->kind == OXV_CONST && v->c.numel > cx->fold_limit)
      cx->fold_limit = v->c.numel;
  }
  static const struct {
    const char *op;
    bool (*fn)(OxCtx *, const Onnx__NodeProto *);
  } folds[] = {
      {"Constant", fold_constant},
      {"Shape", fold_shape},
      {"Gather", fold_gather},
      {"Unsqueeze", fold_unsqueeze},
      {"Squeeze", fold_squeeze},
      {"Concat", fold_concat},
      {"Slice", fold_slice},
      {"Cast", fold_cast},
      {"ConstantOfShape", fold_constant_of_shape},
      {"Reshape", fold_reshape},
      {"Flatten", fold_flatten},
      {"Transpose", fold_transpose},
      {"Range", fold_range},
      {"Identity", NULL},
  };
  for (size_t i = 0; i < sizeof folds / sizeof *folds; i++)
    if (strcmp(n->op_type, folds[i].op) == 0) {
      if (folds[i].fn)
        return folds[i].fn(cx, n);
      bool ok = true;
      const OxConst *x = cin(cx, n, 0, false, &ok);
      return ok && out_const(cx, n, 0, x);
    }
  return fold_eltwise(cx, n);
}

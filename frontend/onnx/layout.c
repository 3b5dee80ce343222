/*
 * layout.c: the ops that move axes or channels of a run-time tensor.
 *
 *   Transpose   keeping the batch first: no node, the value becomes a
 *               permuted view of the same IR tensor (OxValue.perm), which
 *               the elementwise ops, LayerNormalization and MatMul read as
 *               it is; a Transpose back makes it plain again. So torch's
 *               permute(0, 2, 3, 1) -> LayerNorm -> Linear -> GELU ->
 *               Linear -> permute(0, 3, 1, 2) in ConvNeXt is a layernorm
 *               and two 1x1 convs on the NCHW tensor, with nothing moved.
 *   Slice       of the channels (step 1; the batch, H and W whole): a
 *               slice, a view of the input's storage (x.chunk(2, dim=1) in
 *               ShuffleNetV2, as torch exports it)
 *   Split       along the channels: one slice per output
 *   ChannelShuffle  (domain cnncc, from patterns.c: torchvision's Reshape
 *               to [N, g, C/g, H, W], Transpose, Reshape back) the
 *               channel_shuffle op, its shapes checked
 *   Unsqueeze, Squeeze  of a vector [N, C] to [N, C, 1, 1] and back (no
 *               node; OxValue.vec_ones), and Squeeze of [N, C, 1, 1] to
 *               [N, C] (a flatten)
 */
#include <string.h>

#include "onnx_internal.h"

/* ---------------------------------------------------------------- Transpose */

bool ox_lower_transpose(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_view_in(cx, n, 0, &ok);
  if (!ok)
    return false;
  int r = ox_rank(x);
  int64_t p[OX_MAX_RANK];
  int np = ox_attr_ints(n, "perm", p, OX_MAX_RANK, 0);
  if (np == 0)
    for (int k = 0; k < r; k++)
      p[k] = r - 1 - k;
  else if (np != r)
    return ox_error(cx, "'perm' has %d values for a tensor of rank %d", np, r);
  bool seen[OX_MAX_RANK] = {0};
  for (int k = 0; k < r; k++) {
    if (p[k] < 0 || p[k] >= r || seen[p[k]])
      return ox_error(cx, "'perm' is not a permutation of 0..%d", r - 1);
    seen[p[k]] = true;
  }
  if (p[0] != 0)
    return ox_error(cx,
                    "a Transpose that moves the batch axis (perm %s): cnncc keeps the batch "
                    "first",
                    ox_dims_text(cx, r, p));
  if (x->vec_ones || r != 4) {
    for (int k = 0; k < r; k++)
      if (p[k] != k)
        return ox_error(cx,
                        "a Transpose of '%s' (rank %d) with perm %s: cnncc transposes the axes of "
                        "[N, C, H, W] tensors only",
                        x->name, r, ox_dims_text(cx, r, p));
    return ox_alias(cx, n, x, NULL);
  }
  OxValue *o;
  if (!ox_alias(cx, n, x, &o))
    return false;
  if (!o)
    return true;
  bool identity = true;
  for (int k = 0; k < 4; k++) {
    o->perm[k] = x->permuted ? x->perm[p[k]] : (unsigned char)p[k];
    identity &= o->perm[k] == k;
  }
  o->permuted = !identity;
  return true;
}

/* ------------------------------------------------------------ Slice, Split */

/* A slice of channels [begin, end) of x. */
static bool channel_slice(OxCtx *cx, const Onnx__NodeProto *n, int k, OxValue *x, int64_t begin,
                          int64_t end) {
  if (begin == 0 && end == x->node->shape.d[0] && k == 0)
    return ox_alias(cx, n, x, NULL);
  Node *s = ox_node(cx, n, OP_SLICE, &x->node, 1, k ? arena_printf(cx->a, "%d", k) : NULL);
  s->attr.slice_begin = begin;
  s->attr.slice_end = end;
  return ox_infer(cx, s) && ox_out(cx, n, k, s, NULL, NULL);
}

/* The starts, ends, axes and steps of Slice (attributes before opset 10,
   constant inputs after); returns how many axes, -1 after an error. */
static int slice_args(OxCtx *cx, const Onnx__NodeProto *n, int64_t v[4][OX_MAX_RANK]) {
  static const char *const names[4] = {"starts", "ends", "axes", "steps"};
  int len[4] = {-1, -1, -1, -1};
  for (int k = 0; k < 4; k++) {
    if (cx->opset < 10) {
      len[k] = k == 3 ? -1 : ox_attr_ints(n, names[k], v[k], OX_MAX_RANK, -1);
      continue;
    }
    bool ok = true;
    OxConst *c = ox_const_in(cx, n, k + 1, names[k], k >= 2, &ok);
    if (!ok)
      return -1;
    if (!c)
      continue;
    if (c->numel > OX_MAX_RANK || !ox_const_ints(cx, c, true, names[k])) {
      ox_error(cx, "its %s must be at most %d constants", names[k], OX_MAX_RANK);
      return -1;
    }
    len[k] = (int)c->numel;
    for (int64_t i = 0; i < c->numel; i++)
      v[k][i] = c->batch && c->batch[i] ? INT64_MAX : c->i[i]; /* the batch: "to the end" */
  }
  if (len[0] < 0 || len[1] != len[0] || (len[2] >= 0 && len[2] != len[0]) ||
      (len[3] >= 0 && len[3] != len[0])) {
    ox_error(cx, "'starts', 'ends', 'axes' and 'steps' must have one value per axis");
    return -1;
  }
  for (int i = 0; i < len[0]; i++) {
    if (len[2] < 0)
      v[2][i] = i;
    if (len[3] < 0)
      v[3][i] = 1;
  }
  return len[0];
}

bool ox_lower_slice(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_tensor_in(cx, n, 0, 0, &ok);
  if (!ok)
    return false;
  if (ox_rank(x) != 4)
    return ox_error(cx, "a Slice of the features of a vector: cnncc slices the channels of "
                        "[N, C, H, W] tensors only");
  int64_t v[4][OX_MAX_RANK], d[4];
  int na = slice_args(cx, n, v);
  if (na < 0)
    return false;
  ox_dims(x, d);
  int64_t begin = 0, end = d[1];
  for (int i = 0; i < na; i++) {
    int64_t a = v[2][i] < 0 ? v[2][i] + 4 : v[2][i], s = v[0][i], e = v[1][i];
    if (a < 0 || a > 3)
      return ox_error(cx, "slice axis %lld is out of range", (long long)v[2][i]);
    int64_t D = a == 0 ? INT64_MAX : d[a];
    s = s < 0 && a ? s + D : s, e = e < 0 && a ? e + D : e;
    s = s < 0 ? 0 : s > D ? D : s, e = e < 0 ? 0 : e > D ? D : e;
    if (a == 1 && v[3][i] == 1) {
      begin = s, end = e;
      continue;
    }
    if (v[3][i] != 1 || s != 0 || e != D)
      return ox_error(cx,
                      "a Slice along axis %lld (%s) from %lld to %lld step %lld: cnncc slices "
                      "whole channels, with step 1",
                      (long long)v[2][i],
                      a == 0   ? "the batch"
                      : a == 1 ? "the channels"
                               : "H or W",
                      (long long)v[0][i], (long long)v[1][i], (long long)v[3][i]);
  }
  if (end <= begin)
    return ox_error(cx, "a Slice of no channels (%lld to %lld)", (long long)begin, (long long)end);
  return channel_slice(cx, n, 0, x, begin, end);
}

bool ox_lower_split(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_tensor_in(cx, n, 0, 0, &ok);
  if (!ok)
    return false;
  int64_t axis = ox_attr_int(n, "axis", 0);
  if (axis < 0)
    axis += ox_rank(x);
  if (axis != 1 || ox_rank(x) != 4)
    return ox_error(cx,
                    "a Split along axis %lld of a tensor of rank %d: cnncc splits the channels "
                    "of [N, C, H, W] tensors only",
                    (long long)ox_attr_int(n, "axis", 0), ox_rank(x));
  int nout = (int)n->n_output;
  int64_t C = x->node->shape.d[0], sizes[256];
  if (nout < 1 || nout > 256)
    return ox_error(cx, "a Split into %d outputs", nout);
  int ns = -1;
  if (cx->opset < 13) {
    ns = ox_attr_ints(n, "split", sizes, 256, -1);
  } else {
    OxConst *c = ox_const_in(cx, n, 1, "split", true, &ok);
    if (!ok || (c && (c->numel > 256 || !ox_const_ints(cx, c, false, "the split sizes"))))
      return ok && ox_error(cx, "its split sizes must be at most 256 constants");
    if (c)
      memcpy(sizes, c->i, sizeof(int64_t) * (size_t)(ns = (int)c->numel));
  }
  if (ns < 0) { /* equal parts */
    if (C % nout)
      return ox_error(cx, "%lld channels do not split into %d equal parts", (long long)C, nout);
    for (int k = 0; k < nout; k++)
      sizes[k] = C / nout;
  } else {
    int64_t total = 0;
    for (int k = 0; k < ns; k++)
      total += sizes[k] > 0 ? sizes[k] : 0;
    if (ns != nout || total != C)
      return ox_error(cx, "split sizes %s for %d outputs of %lld channels",
                      ox_dims_text(cx, ns, sizes), nout, (long long)C);
  }
  int64_t begin = 0;
  for (int k = 0; k < nout; k++) {
    if (sizes[k] <= 0)
      return ox_error(cx, "a Split into a part of %lld channels", (long long)sizes[k]);
    if (n->output[k] && *n->output[k] && !channel_slice(cx, n, k, x, begin, begin + sizes[k]))
      return false;
    begin += sizes[k];
  }
  return true;
}

/* ------------------------------------------------------------ ChannelShuffle */

/* Whether the folded target shape s (a Reshape's, numel values) starts
   with the batch, and has at most one -1. */
static bool batch_first(OxCtx *cx, const OxConst *s) {
  int neg = 0;
  for (int64_t k = 0; k < s->numel; k++)
    neg += s->i[k] == -1;
  return neg <= 1 && ((s->batch && s->batch[0]) || s->i[0] == 0 || s->i[0] == -1 ||
                      (cx->static_batch > 0 && s->i[0] == cx->static_batch));
}

bool ox_lower_channel_shuffle(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_tensor_in(cx, n, 0, 4, &ok);
  OxConst *s1 = ox_const_in(cx, n, 1, "first shape", false, &ok);
  OxConst *s2 = ox_const_in(cx, n, 2, "second shape", false, &ok);
  if (!ok || !ox_const_ints(cx, s1, true, "the shape") || !ox_const_ints(cx, s2, true, "the shape"))
    return false;
  const Shape *sh = &x->node->shape;
  int64_t C = sh->d[0], H = sh->d[1], W = sh->d[2], g = s1->numel == 5 ? s1->i[1] : 0;
  bool fits = s1->numel == 5 && s2->numel == 4 && batch_first(cx, s1) && batch_first(cx, s2) &&
              g > 0 && C % g == 0 && (s1->i[2] == C / g || s1->i[2] == -1) && s1->i[3] == H &&
              s1->i[4] == W && (s2->i[1] == C || s2->i[1] == -1) && s2->i[2] == H && s2->i[3] == W;
  if (!fits)
    return ox_error(cx,
                    "a Reshape to %s, Transpose and Reshape to %s of '%s' [N, %lld, %lld, %lld] "
                    "is not a channel shuffle ([N, g, C/g, H, W], perm [0, 2, 1, 3, 4], "
                    "[N, C, H, W])",
                    ox_dims_text(cx, (int)s1->numel, s1->i),
                    ox_dims_text(cx, (int)s2->numel, s2->i), x->name, (long long)C, (long long)H,
                    (long long)W);
  Node *s = ox_node(cx, n, OP_CHANNEL_SHUFFLE, &x->node, 1, NULL);
  s->attr.groups = g;
  return ox_infer(cx, s) && ox_out(cx, n, 0, s, NULL, NULL);
}

/* --------------------------------------------------------- Unsqueeze, Squeeze */

/* The axes of Unsqueeze/Squeeze: attribute before opset 13, input after;
   -1 after an error. */
static int axes_of(OxCtx *cx, const Onnx__NodeProto *n, int64_t *axes) {
  if (cx->opset < 13 || n->n_input < 2 || !n->input[1] || !*n->input[1]) {
    int na = ox_attr_ints(n, "axes", axes, OX_MAX_RANK, 0);
    if (na < 0)
      ox_error(cx, "too many axes");
    return na;
  }
  bool ok = true;
  OxConst *c = ox_const_in(cx, n, 1, "axes", false, &ok);
  if (!ok)
    return -1;
  if (c->numel > OX_MAX_RANK || !ox_const_ints(cx, c, false, "the axes")) {
    ox_error(cx, "its axes must be at most %d constants", OX_MAX_RANK);
    return -1;
  }
  memcpy(axes, c->i, sizeof(int64_t) * (size_t)c->numel);
  return (int)c->numel;
}

bool ox_lower_unsqueeze(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_view_in(cx, n, 0, &ok);
  int64_t axes[OX_MAX_RANK];
  int na = ok ? axes_of(cx, n, axes) : -1;
  if (na < 0)
    return false;
  int r = ox_rank(x), out = r + na;
  /* only new trailing axes of a vector: [N, C] -> [N, C, 1, 1] */
  bool trailing = x->node->shape.rank == 1 && !x->permuted && out <= 4;
  bool seen[OX_MAX_RANK] = {0};
  for (int k = 0; trailing && k < na; k++) {
    int64_t a = axes[k] < 0 ? axes[k] + out : axes[k];
    trailing = a >= r && a < out && !seen[a];
    if (trailing)
      seen[a] = true;
  }
  if (!trailing)
    return ox_error(cx,
                    "an Unsqueeze of '%s' (rank %d) at axes %s: cnncc unsqueezes a vector [N, C] "
                    "to [N, C, 1, 1] only",
                    x->name, r, ox_dims_text(cx, na, axes));
  OxValue *o;
  if (!ox_alias(cx, n, x, &o))
    return false;
  if (o)
    o->vec_ones += na;
  return true;
}

bool ox_lower_squeeze(OxCtx *cx, const Onnx__NodeProto *n) {
  bool ok = true;
  OxValue *x = ox_view_in(cx, n, 0, &ok);
  int64_t axes[OX_MAX_RANK], d[OX_MAX_RANK];
  int na = ok ? axes_of(cx, n, axes) : -1;
  if (na < 0)
    return false;
  int r = ox_dims(x, d);
  bool drop[OX_MAX_RANK] = {0};
  int nd = 0;
  for (int k = 0; k < na; k++) {
    int64_t a = axes[k] < 0 ? axes[k] + r : axes[k];
    if (a < 0 || a >= r || d[a] != 1 || drop[a])
      return ox_error(cx, "axis %lld of '%s' %s cannot be squeezed", (long long)axes[k], x->name,
                      ox_dims_text(cx, r, d));
    drop[a] = true, nd++;
  }
  for (int k = 1; na == 0 && k < r; k++) /* no axes: every 1 (the batch's is unknown) */
    if (d[k] == 1)
      drop[k] = true, nd++;
  /* only trailing ones: of a vector's, any; of [N, C, 1, 1], both */
  bool tail = !x->permuted && !drop[0] && !drop[1] && (x->node->shape.rank == 1 || nd == 2);
  if (nd && !tail)
    return ox_error(cx,
                    "a Squeeze of '%s' %s at axes %s: cnncc squeezes [N, C, 1, 1] to [N, C] "
                    "only",
                    x->name, ox_dims_text(cx, r, d), ox_dims_text(cx, na, axes));
  if (!nd)
    return ox_alias(cx, n, x, NULL);
  if (x->node->shape.rank == 1) {
    OxValue *o;
    if (!ox_alias(cx, n, x, &o))
      return false;
    if (o)
      o->vec_ones -= nd;
    return true;
  }
  Node *f = ox_node(cx, n, OP_FLATTEN, &x->node, 1, NULL);
  return ox_infer(cx, f) && ox_out(cx, n, 0, f, NULL, NULL);
}

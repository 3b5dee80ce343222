/*
 * graph.c: building, checking and measuring the graph.
 *
 * Shape inference lives here, one case per op, because it is the IR's own
 * contract: the frontend calls ir_infer_shape_at() on every node it creates,
 * which says which input or attribute is at fault so the error can point at
 * that token of the spec; passes that create nodes call ir_infer_shape() too.
 * Inference also creates a node's parameters (with the PyTorch shapes and
 * names) the first time, since their shapes follow from
 * the input shape. Sizes are checked against overflow: a dimension is at most
 * IR_MAX_DIM and a tensor at most IR_MAX_NUMEL elements.
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

#define IR_MAX_DIM ((int64_t)1 << 31)
#define IR_MAX_NUMEL ((int64_t)1 << 36)

const OpInfo ir_ops[OP_COUNT_] = {
#define OP(e, name, mn, mx, fl) [OP_##e] = {name, mn, mx, fl},
#include "ops.def"
#undef OP
};

/* ------------------------------------------------------------------ shapes */

int64_t shape_numel(const Shape *s) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++)
    n *= s->d[i];
  return n;
}

bool shape_eq(const Shape *a, const Shape *b) {
  if (a->rank != b->rank)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (a->d[i] != b->d[i])
      return false;
  return true;
}

char *shape_str(const Shape *s, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = 0;
  for (int i = 0; i < s->rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? "x%lld" : "%lld", (long long)s->d[i]);
  if (s->rank == 0)
    snprintf(buf, n, "scalar");
  return buf;
}

int64_t param_numel(const Param *p) {
  int64_t n = 1;
  for (int i = 0; i < p->rank; i++)
    n *= p->dims[i];
  return n;
}

/* ---------------------------------------------------------------- building */

Graph *ir_graph_new(const char *name) {
  Arena *a = arena_new();
  Graph *g = arena_alloc(a, sizeof *g);
  g->arena = a;
  g->name = arena_strdup(a, name ? name : "net");
  return g;
}

void ir_graph_free(Graph *g) {
  if (g)
    arena_free(g->arena);
}

void ir_attrs_init(Attrs *a) {
  memset(a, 0, sizeof *a);
  a->stride[0] = a->stride[1] = 1;
  a->dilation[0] = a->dilation[1] = 1;
  a->groups = 1;
  a->has_bias = true;
  a->eps = 1e-5f;
  a->count_include_pad = true;
  a->out_hw[0] = a->out_hw[1] = 1;
  a->alpha = 1e-4f;
  a->beta = 0.75f;
  a->k = 1.0f;
  a->scale = 1.0f;
  a->p = 0.5f;
  a->clamp_min = -INFINITY;
  a->clamp_max = INFINITY;
  a->hs_alpha = 1.0f / 6;
  a->hs_beta = 0.5f;
}

Node *ir_node_new(Graph *g, Op op, const char *name, Node *const *in, int nin, SrcLoc loc) {
  CHECK(op >= 0 && op < OP_COUNT_, "op %d", (int)op);
  Node *n = arena_alloc(g->arena, sizeof *n);
  n->id = g->next_id++;
  n->op = op;
  n->name =
      name ? arena_strdup(g->arena, name) : arena_printf(g->arena, "%s%d", ir_ops[op].name, n->id);
  n->nin = nin;
  n->in = arena_alloc(g->arena, sizeof(Node *) * (size_t)(nin > 0 ? nin : 1));
  for (int i = 0; i < nin; i++)
    n->in[i] = in[i];
  ir_attrs_init(&n->attr);
  n->epi.residual = -1;
  n->epi.gate = -1;
  n->loc = loc;
  if (!n->loc.file)
    n->loc.file = "<builtin>";
  n->order = g->nodes.len;
  ptrvec_push(g->arena, &g->nodes, n);
  return n;
}

Param *ir_param_new(Graph *g, Node *n, int slot, const char *name, int rank, const int64_t *dims,
                    bool trainable) {
  CHECK(slot >= 0 && slot < IR_MAX_PARAMS && rank <= IR_MAX_RANK, "slot %d rank %d", slot, rank);
  Param *p = arena_alloc(g->arena, sizeof *p);
  p->name = arena_strdup(g->arena, name);
  p->rank = rank;
  for (int i = 0; i < rank; i++)
    p->dims[i] = dims[i];
  p->trainable = trainable;
  p->loc = n->loc;
  p->blob_offset = -1;
  n->params[slot] = p;
  if (slot >= n->nparams)
    n->nparams = slot + 1;
  ptrvec_push(g->arena, &g->params, p);
  return p;
}

/* ---------------------------------------------------------- shape inference */

/* The state of one inference: the node, how to name its inputs, and where
   the error goes. */
typedef struct {
  Graph *g;
  Node *n;
  const char *const *names;
  IrShapeError *e;
} Inf;

static bool fail(Inf *x, IrErrAt at, int index, const char *attr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static bool fail(Inf *x, IrErrAt at, int index, const char *attr, const char *fmt, ...) {
  x->e->at = at;
  x->e->index = index;
  x->e->attr = attr;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(x->e->msg, sizeof x->e->msg, fmt, ap);
  va_end(ap);
  return false;
}

static void note(Inf *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(Inf *x, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(x->e->note, sizeof x->e->note, fmt, ap);
  va_end(ap);
}

#define FAIL(...) return fail(x, IR_AT_NODE, -1, NULL, __VA_ARGS__)
#define FAIL_IN(i, ...) return fail(x, IR_AT_INPUT, i, NULL, __VA_ARGS__)
#define FAIL_ATTR(key, item, ...) return fail(x, IR_AT_ATTR, item, key, __VA_ARGS__)
#define LL(v) ((long long)(v))

/* How messages name input i: "'conv3'", or the caller's words. */
static const char *iname(Inf *x, int i) {
  if (x->names && x->names[i])
    return x->names[i];
  return arena_printf(x->g->arena, "'%s'", x->n->in[i]->name);
}

/* "64x16x16", or "a vector of 10 values" */
static const char *sdesc(const Shape *s, char *buf, size_t n) {
  if (s->rank == 1)
    snprintf(buf, n, "a vector of %lld values", LL(s->d[0]));
  else
    shape_str(s, buf, n);
  return buf;
}

static bool mul_ok(int64_t a, int64_t b, int64_t *out) {
  return !__builtin_mul_overflow(a, b, out) && *out <= IR_MAX_NUMEL;
}

/* A shape's dimensions are positive and below 2^31, its size below 2^36;
   the error is about attribute `key` if it sets the size (NULL: the node). */
static bool check_shape(Inf *x, const Shape *s, const char *what, const char *key) {
  int64_t n = 1;
  char b[64];
  IrErrAt at = key ? IR_AT_ATTR : IR_AT_NODE;
  for (int i = 0; i < s->rank; i++) {
    if (s->d[i] <= 0)
      return fail(x, at, -1, key, "%s has a non-positive dimension (%lld)", what, LL(s->d[i]));
    if (s->d[i] >= IR_MAX_DIM)
      return fail(x, at, -1, key,
                  "%s dimension %lld is too large (the limit is "
                  "2^31-1)",
                  what, LL(s->d[i]));
  }
  for (int i = 0; i < s->rank; i++)
    if (!mul_ok(n, s->d[i], &n))
      return fail(x, at, -1, key, "%s (%s) has too many elements (the limit is 2^36)", what,
                  shape_str(s, b, sizeof b));
  return true;
}

/* Output size of a sliding window along one axis, PyTorch's formula for conv
   and pooling (ceil_mode: the last window must start inside the input or the
   leading padding). Returns <= 0 if the window does not fit. */
static int64_t window_out(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t d,
                          bool ceil_mode) {
  int64_t span = in + p0 + p1 - d * (k - 1) - 1;
  if (span < 0)
    return 0;
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p0)
    out--;
  return out;
}

static bool need_rank3(Inf *x) {
  const Node *n = x->n;
  const Shape *s = &n->in[0]->shape;
  if (s->rank != 3)
    FAIL_IN(0, "%s needs a [C, H, W] input, but %s is a vector of %lld values", ir_ops[n->op].name,
            iname(x, 0), LL(s->d[0]));
  return true;
}

static bool window_attrs_ok(Inf *x, bool pool) {
  const Attrs *a = &x->n->attr;
  for (int i = 0; i < 2; i++) {
    if (a->kernel[i] <= 0 || a->kernel[i] >= IR_MAX_DIM)
      FAIL_ATTR("kernel", i, "the kernel size must be positive, got %lld", LL(a->kernel[i]));
    if (a->stride[i] <= 0 || a->stride[i] >= IR_MAX_DIM)
      FAIL_ATTR("stride", i, "the stride must be positive, got %lld", LL(a->stride[i]));
    if (a->dilation[i] <= 0 || a->dilation[i] >= IR_MAX_DIM)
      FAIL_ATTR("dilation", i, "the dilation must be positive, got %lld", LL(a->dilation[i]));
  }
  for (int i = 0; i < 4; i++)
    if (a->pad[i] < 0 || a->pad[i] >= IR_MAX_DIM)
      FAIL_ATTR("pad", i, "the padding must be non-negative, got %lld", LL(a->pad[i]));
  if (pool) {
    /* PyTorch: pad should be at most half of the effective kernel size;
       ONNX: less than the kernel (Graph.pool_pads_below_kernel). */
    for (int i = 0; i < 4; i++) {
      int ax = i % 2;
      int64_t eff = a->dilation[ax] * (a->kernel[ax] - 1) + 1;
      if (x->g->pool_pads_below_kernel && a->pad[i] >= eff)
        FAIL_ATTR("pad", i, "padding %lld is not less than the kernel %s %lld", LL(a->pad[i]),
                  ax ? "width" : "height", LL(eff));
      if (!x->g->pool_pads_below_kernel && a->pad[i] * 2 > eff) {
        note(x,
             "%s pads with at most half the kernel size on each side, as "
             "PyTorch does",
             ir_ops[x->n->op].name);
        FAIL_ATTR("pad", i, "padding %lld is more than half the kernel %s %lld", LL(a->pad[i]),
                  ax ? "width" : "height", LL(eff));
      }
    }
  }
  return true;
}

static bool infer_window(Inf *x, bool pool) {
  if (!need_rank3(x) || !window_attrs_ok(x, pool))
    return false;
  Node *n = x->n;
  const Shape *in = &n->in[0]->shape;
  const Attrs *a = &n->attr;
  int64_t o[2];
  for (int ax = 0; ax < 2; ax++)
    o[ax] = window_out(in->d[1 + ax], a->kernel[ax], a->stride[ax], a->pad[ax], a->pad[ax + 2],
                       a->dilation[ax], pool && a->ceil_mode);
  for (int ax = 0; ax < 2; ax++) {
    if (o[ax] > 0)
      continue;
    int64_t eff[2], padded[2];
    bool dilated = a->dilation[0] > 1 || a->dilation[1] > 1;
    for (int k = 0; k < 2; k++) {
      eff[k] = a->dilation[k] * (a->kernel[k] - 1) + 1;
      padded[k] = in->d[1 + k] + a->pad[k] + a->pad[k + 2];
    }
    char kern[96], pads[64] = "";
    if (dilated)
      snprintf(kern, sizeof kern, "%lldx%lld kernel dilated to %lldx%lld", LL(a->kernel[0]),
               LL(a->kernel[1]), LL(eff[0]), LL(eff[1]));
    else
      snprintf(kern, sizeof kern, "%lldx%lld kernel", LL(a->kernel[0]), LL(a->kernel[1]));
    if (padded[0] != in->d[1] || padded[1] != in->d[2])
      snprintf(pads, sizeof pads, ", even padded to %lldx%lld", LL(padded[0]), LL(padded[1]));
    /* the dilation is at fault if the kernel alone would fit */
    const char *key = a->dilation[ax] > 1 && a->kernel[ax] <= padded[ax] ? "dilation" : "kernel";
    FAIL_ATTR(key, ax, "the %s does not fit the %lldx%lld input from %s%s", kern, LL(in->d[1]),
              LL(in->d[2]), iname(x, 0), pads);
  }
  n->shape.rank = 3;
  n->shape.d[1] = o[0];
  n->shape.d[2] = o[1];
  return true;
}

static Param *mkparam(Graph *g, Node *n, int slot, const char *suffix, int rank,
                      const int64_t *dims, bool trainable) {
  char *name = arena_printf(g->arena, "%s.%s", n->name, suffix);
  return ir_param_new(g, n, slot, name, rank, dims, trainable);
}

static char *dims_str(int rank, const int64_t *dims, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", LL(dims[i]));
  if (k < n)
    snprintf(buf + k, n - k, "]");
  return buf;
}

/* Checks existing params of a node against the expected shape (passes may
   have created them). */
static bool param_shape_ok(Inf *x, int slot, int rank, const int64_t *dims) {
  const Node *n = x->n;
  const Param *p = n->params[slot];
  if (!p)
    FAIL("%s '%s': parameter slot %d is missing", ir_ops[n->op].name, n->name, slot);
  bool ok = p->rank == rank;
  for (int i = 0; ok && i < rank; i++)
    ok = p->dims[i] == dims[i];
  char b0[128], b1[128];
  if (!ok)
    FAIL("%s '%s': expected shape %s for parameter '%s', got %s", ir_ops[n->op].name, n->name,
         dims_str(rank, dims, b0, sizeof b0), p->name, dims_str(p->rank, p->dims, b1, sizeof b1));
  return true;
}

/* [C] or [C, 1, 1]: one value per channel. */
static bool per_channel(const Shape *s) {
  return s->rank == 1 || (s->rank == 3 && s->d[1] == 1 && s->d[2] == 1);
}

/* add and mean: every input has the shape of the first. */
static bool same_shapes(Inf *x) {
  const Node *n = x->n;
  const Shape *s0 = &n->in[0]->shape;
  char b0[64], b1[64];
  for (int i = 1; i < n->nin; i++) {
    const Shape *s = &n->in[i]->shape;
    if (shape_eq(s, s0))
      continue;
    note(x,
         "%s combines its inputs element by element: they must have the "
         "same shape",
         ir_ops[n->op].name);
    if (s->d[0] == s0->d[0] && (per_channel(s) || per_channel(s0)))
      note(x,
           "%s does not broadcast one value per channel as PyTorch would (x + b with b "
           "[C, 1, 1]); only mul does (docs/spec.md, Broadcasting)",
           ir_ops[n->op].name);
    bool hw_same = s->rank == 3 && s0->rank == 3 && s->d[1] == s0->d[1] && s->d[2] == s0->d[2];
    if (s->rank == 3 && hw_same)
      FAIL_IN(i, "expected %lld channels from %s to match %s, got %lld", LL(s0->d[0]), iname(x, i),
              iname(x, 0), LL(s->d[0]));
    if (s->rank == 3 && s0->rank == 3 && s->d[0] == s0->d[0])
      FAIL_IN(i, "%s is %lldx%lld but %s is %lldx%lld", iname(x, i), LL(s->d[1]), LL(s->d[2]),
              iname(x, 0), LL(s0->d[1]), LL(s0->d[2]));
    if (s->rank == 1 && s0->rank == 1)
      FAIL_IN(i, "expected %lld features from %s to match %s, got %lld", LL(s0->d[0]), iname(x, i),
              iname(x, 0), LL(s->d[0]));
    FAIL_IN(i, "%s is %s but %s is %s", iname(x, i), sdesc(s, b0, sizeof b0), iname(x, 0),
            sdesc(s0, b1, sizeof b1));
  }
  return true;
}

/* Is s one value per channel of t: [C, 1, 1] or [C] against t = [C, H, W]
   (or [C])? */
static bool per_channel_of(const Shape *s, const Shape *t) {
  if (s->d[0] != t->d[0])
    return false;
  return s->rank == 1 || (s->rank == 3 && s->d[1] == 1 && s->d[2] == 1);
}

/* mul: the same shape, or one input one value per channel of the other
   (squeeze-excitation's gate, a layer scale). The output has the shape of
   the larger, or of the one of rank 3 ([C] by [C, 1, 1]). */
static bool mul_shapes(Inf *x) {
  Node *n = x->n;
  const Shape *a = &n->in[0]->shape, *b = &n->in[1]->shape;
  char b0[64], b1[64];
  /* [C] by [C, 1, 1] (either way round) is [C, 1, 1], as PyTorch's
     x * y.view(N, C, 1, 1): the result keeps the rank of the image. */
  if (shape_eq(a, b) || (per_channel_of(b, a) && a->rank >= b->rank)) {
    n->shape = *a;
    return true;
  }
  if (per_channel_of(a, b)) {
    n->shape = *b;
    return true;
  }
  note(x, "mul multiplies element by element; one input may instead hold one value per "
          "channel of the other ([C, 1, 1] or [C])");
  int big = shape_numel(b) > shape_numel(a) ? 1 : 0, small = 1 - big;
  const Shape *sb = &n->in[big]->shape, *ss = &n->in[small]->shape;
  if ((ss->rank == 1 || (ss->d[1] == 1 && ss->d[2] == 1)) && sb->rank == 3)
    FAIL_IN(small, "%s has %lld channels but %s has %lld", iname(x, small), LL(ss->d[0]),
            iname(x, big), LL(sb->d[0]));
  FAIL_IN(1, "%s is %s but %s is %s", iname(x, 1), sdesc(b, b0, sizeof b0), iname(x, 0),
          sdesc(a, b1, sizeof b1));
}

static bool infer(Inf *x) {
  Graph *g = x->g;
  Node *n = x->n;
  const OpInfo *oi = &ir_ops[n->op];
  if (n->nin < oi->min_inputs || (oi->max_inputs >= 0 && n->nin > oi->max_inputs)) {
    if (oi->max_inputs < 0)
      return fail(x, IR_AT_INPUTS, -1, NULL, "%s takes at least %d inputs, got %d", oi->name,
                  oi->min_inputs, n->nin);
    if (oi->min_inputs == oi->max_inputs)
      return fail(x, IR_AT_INPUTS, -1, NULL, "%s takes %d input%s, got %d", oi->name,
                  oi->min_inputs, oi->min_inputs == 1 ? "" : "s", n->nin);
    return fail(x, IR_AT_INPUTS, -1, NULL, "%s takes %d to %d inputs, got %d", oi->name,
                oi->min_inputs, oi->max_inputs, n->nin);
  }
  for (int i = 0; i < n->nin; i++)
    CHECK(n->in[i] && n->in[i]->shape.rank > 0, "input %d of '%s' has no shape", i, n->name);
  const Shape *in0 = n->nin ? &n->in[0]->shape : NULL;
  Attrs *a = &n->attr;
  bool create = n->nparams == 0;
  char b0[64], b1[64];

  switch (n->op) {
  case OP_INPUT:
    if (n->shape.rank != 1 && n->shape.rank != 3)
      FAIL("input '%s' must have shape [C, H, W] or [F], got rank %d", n->name, n->shape.rank);
    return check_shape(x, &n->shape, arena_printf(g->arena, "input '%s'", n->name), NULL);

  case OP_CONV2D: {
    if (!need_rank3(x))
      return false;
    int64_t c = in0->d[0], oc = a->out_channels, gr = a->groups;
    if (oc <= 0 || oc >= IR_MAX_DIM)
      FAIL_ATTR("out", -1, "the number of output channels must be positive, got %lld", LL(oc));
    if (gr <= 0 || gr >= IR_MAX_DIM)
      FAIL_ATTR("groups", -1, "groups must be positive, got %lld", LL(gr));
    if (c % gr) {
      note(x, "groups must divide both the input channels (%lld) and 'out' (%lld)", LL(c), LL(oc));
      FAIL_ATTR("groups", -1,
                "cannot split the %lld input channels from %s into "
                "%lld groups",
                LL(c), iname(x, 0), LL(gr));
    }
    if (oc % gr) {
      note(x, "groups must divide both the input channels (%lld) and 'out' (%lld)", LL(c), LL(oc));
      FAIL_ATTR("groups", -1,
                "cannot split the %lld output channels ('out') into "
                "%lld groups",
                LL(oc), LL(gr));
    }
    if (a->linear_weight && (a->kernel[0] != 1 || a->kernel[1] != 1 || gr != 1))
      FAIL("conv2d '%s': a weight of nn.Linear's shape [out, in] needs a 1x1 kernel and one "
           "group",
           n->name);
    if (!infer_window(x, false))
      return false;
    n->shape.d[0] = oc;
    int64_t wd[4] = {oc, c / gr, a->kernel[0], a->kernel[1]}, wn;
    int wrank = a->linear_weight ? 2 : 4; /* [out, in] as nn.Linear keeps it */
    if (!mul_ok(oc, c / gr, &wn) || !mul_ok(wn, a->kernel[0], &wn) ||
        !mul_ok(wn, a->kernel[1], &wn))
      FAIL_ATTR("out", -1,
                "the weight tensor [%lld, %lld, %lld, %lld] would be too "
                "large (more than 2^36 values)",
                LL(wd[0]), LL(wd[1]), LL(wd[2]), LL(wd[3]));
    if (create) {
      mkparam(g, n, P_WEIGHT, "weight", wrank, wd, true);
      if (a->has_bias)
        mkparam(g, n, P_BIAS, "bias", 1, &oc, true);
    } else if (!param_shape_ok(x, P_WEIGHT, wrank, wd) ||
               (a->has_bias && !param_shape_ok(x, P_BIAS, 1, &oc))) {
      return false;
    }
    break;
  }

  case OP_BATCHNORM:
  case OP_SCALESHIFT: {
    n->shape = *in0;
    int64_t c = in0->d[0];
    if (n->op == OP_BATCHNORM && !(a->eps > 0))
      FAIL_ATTR("eps", -1, "eps must be positive");
    if (create && n->op == OP_BATCHNORM) {
      mkparam(g, n, P_WEIGHT, "weight", 1, &c, true);
      mkparam(g, n, P_BIAS, "bias", 1, &c, true);
      mkparam(g, n, P_MEAN, "running_mean", 1, &c, false);
      mkparam(g, n, P_VAR, "running_var", 1, &c, false);
    } else if (create) {
      mkparam(g, n, P_SCALE, "scale", 1, &c, false);
      mkparam(g, n, P_SHIFT, "shift", 1, &c, false);
    } else {
      for (int i = 0; i < n->nparams; i++)
        if (!param_shape_ok(x, i, 1, &c))
          return false;
    }
    break;
  }

  case OP_RELU:
  case OP_SIGMOID:
  case OP_HARDSWISH:
  case OP_SILU:
  case OP_GELU:
  case OP_DROPOUT:
  case OP_SCALE:
  case OP_REORDER:
    n->shape = *in0;
    break;

  case OP_CLAMP:
    if (isinf(a->clamp_min) && a->clamp_min < 0 && isinf(a->clamp_max) && a->clamp_max > 0) {
      note(x, "clamp(min: 0, max: 6) is ReLU6 (also spelled relu6)");
      FAIL("clamp needs 'min', 'max' or both");
    }
    if (a->clamp_min > a->clamp_max)
      FAIL_ATTR("max", -1, "clamp: 'max' (%g) is below 'min' (%g)", (double)a->clamp_max,
                (double)a->clamp_min);
    n->shape = *in0;
    break;

  case OP_HARDSIGMOID:
    if (a->hs_alpha == 0)
      FAIL_ATTR("alpha", -1, "hardsigmoid: 'alpha' must not be 0 (the output would be constant)");
    n->shape = *in0;
    break;

  case OP_SOFTMAX:
    if (a->axis != 0)
      FAIL_ATTR("axis", -1, "softmax: only the channel/feature axis (1) is supported");
    n->shape = *in0;
    break;

  case OP_MAXPOOL:
  case OP_AVGPOOL:
    if (n->op == OP_AVGPOOL && (a->dilation[0] != 1 || a->dilation[1] != 1))
      FAIL_ATTR("dilation", -1, "avgpool does not support dilation");
    if (!infer_window(x, true))
      return false;
    if (n->op == OP_MAXPOOL) /* meaningless there: one canonical value, so
                                that frontends agree byte for byte */
      a->count_include_pad = false;
    n->shape.d[0] = in0->d[0];
    break;

  case OP_ADAPTIVE_AVGPOOL:
  case OP_ADAPTIVE_MAXPOOL:
    if (!need_rank3(x))
      return false;
    for (int i = 0; i < 2; i++)
      if (a->out_hw[i] <= 0 || a->out_hw[i] >= IR_MAX_DIM)
        FAIL_ATTR("out", i, "the output size must be positive, got %lld", LL(a->out_hw[i]));
    n->shape.rank = 3;
    n->shape.d[0] = in0->d[0];
    n->shape.d[1] = a->out_hw[0];
    n->shape.d[2] = a->out_hw[1];
    break;

  case OP_LAYERNORM: {
    if (!(a->eps > 0))
      FAIL_ATTR("eps", -1, "eps must be positive");
    n->shape = *in0;
    int64_t c = in0->d[0];
    if (create) {
      mkparam(g, n, P_WEIGHT, "weight", 1, &c, true);
      mkparam(g, n, P_BIAS, "bias", 1, &c, true);
    } else if (!param_shape_ok(x, P_WEIGHT, 1, &c) || !param_shape_ok(x, P_BIAS, 1, &c)) {
      return false;
    }
    break;
  }

  case OP_LRN:
    if (a->lrn_size <= 0 || a->lrn_size >= IR_MAX_DIM)
      FAIL_ATTR("size", -1, "the window size must be positive, got %lld", LL(a->lrn_size));
    n->shape = *in0;
    break;

  case OP_LINEAR: {
    int64_t in_f = shape_numel(in0), out_f = a->out_features, wn;
    if (out_f <= 0 || out_f >= IR_MAX_DIM)
      FAIL_ATTR("out", -1, "the number of output features must be positive, got %lld", LL(out_f));
    if (!mul_ok(in_f, out_f, &wn))
      FAIL_ATTR("out", -1,
                "the weight tensor [%lld, %lld] (%lld outputs, %lld input "
                "features from %s) would be too large (more than 2^36 "
                "values)",
                LL(out_f), LL(in_f), LL(out_f), LL(in_f), iname(x, 0));
    n->shape.rank = 1;
    n->shape.d[0] = out_f;
    int64_t wd[2] = {out_f, in_f};
    if (create) {
      mkparam(g, n, P_WEIGHT, "weight", 2, wd, true);
      if (a->has_bias)
        mkparam(g, n, P_BIAS, "bias", 1, &out_f, true);
    } else if (!param_shape_ok(x, P_WEIGHT, 2, wd) ||
               (a->has_bias && !param_shape_ok(x, P_BIAS, 1, &out_f))) {
      return false;
    }
    break;
  }

  case OP_SLICE: {
    if (!need_rank3(x))
      return false;
    int64_t c = in0->d[0];
    if (a->chunks > 0) {
      /* torch.chunk: chunks of ceil(C / chunks) channels, the last one
         smaller; fewer chunks than asked when they run out */
      int64_t size = (c + a->chunks - 1) / a->chunks, have = (c + size - 1) / size;
      if (a->chunk_index >= have) {
        if (have < a->chunks)
          note(x,
               "torch.chunk cuts %lld channels into chunks of %lld: there are only %lld, the last "
               "of %lld",
               LL(c), LL(size), LL(have), LL(c - (have - 1) * size));
        FAIL_ATTR("index", -1, "chunk %lld does not exist: %s has %lld channels in %lld chunks",
                  LL(a->chunk_index), iname(x, 0), LL(c), LL(have));
      }
      a->slice_begin = a->chunk_index * size;
      a->slice_end = a->slice_begin + size < c ? a->slice_begin + size : c;
    }
    int64_t first = a->slice_begin, end = a->slice_end;
    if (end <= first)
      FAIL_ATTR("end", -1, "slice: 'end' (%lld) must be after 'begin' (%lld)", LL(end), LL(first));
    if (first < 0 || end > c)
      FAIL_ATTR("end", -1, "slice: channels [%lld, %lld) are not inside %s (%lld channels)",
                LL(first), LL(end), iname(x, 0), LL(c));
    n->shape.rank = 3;
    n->shape.d[0] = end - first;
    n->shape.d[1] = in0->d[1];
    n->shape.d[2] = in0->d[2];
    break;
  }

  case OP_FLATTEN:
    n->shape.rank = 1;
    n->shape.d[0] = shape_numel(in0);
    break;

  case OP_CONCAT: {
    if (a->axis != 0)
      FAIL_ATTR("axis", -1, "concat: only the channel axis (1) is supported");
    n->shape = *in0;
    int64_t c = 0;
    for (int i = 0; i < n->nin; i++) {
      const Shape *s = &n->in[i]->shape;
      if (s->rank != in0->rank)
        FAIL_IN(i,
                "concat inputs must all be [C, H, W] maps or all vectors: %s is "
                "%s, %s is %s",
                iname(x, i), sdesc(s, b0, sizeof b0), iname(x, 0), sdesc(in0, b1, sizeof b1));
      if (s->rank == 3 && (s->d[1] != in0->d[1] || s->d[2] != in0->d[2])) {
        note(x, "concat joins its inputs along the channels; the other "
                "dimensions must match");
        FAIL_IN(i,
                "concat inputs must agree in height and width: %s is %lldx%lld, "
                "%s is %lldx%lld",
                iname(x, i), LL(s->d[1]), LL(s->d[2]), iname(x, 0), LL(in0->d[1]), LL(in0->d[2]));
      }
      if (__builtin_add_overflow(c, s->d[0], &c))
        FAIL("concat: too many channels");
    }
    n->shape.d[0] = c;
    break;
  }

  case OP_ADD:
  case OP_MEAN:
    if (!same_shapes(x))
      return false;
    n->shape = *in0;
    break;

  case OP_MUL:
    if (!mul_shapes(x))
      return false;
    break;

  case OP_CHANNEL_SHUFFLE:
    if (!need_rank3(x))
      return false;
    if (a->groups <= 0 || a->groups >= IR_MAX_DIM)
      FAIL_ATTR("groups", -1, "groups must be positive, got %lld", LL(a->groups));
    if (in0->d[0] % a->groups)
      FAIL_ATTR("groups", -1, "cannot shuffle the %lld channels of %s in %lld groups",
                LL(in0->d[0]), iname(x, 0), LL(a->groups));
    n->shape = *in0;
    break;

  case OP_PARAMETER: {
    const Shape *ps = &a->param_shape;
    if (ps->rank != 1 && ps->rank != 3)
      FAIL_ATTR("shape", -1, "a parameter's shape is [C, H, W] or [F], got rank %d", ps->rank);
    n->shape = *ps;
    if (!check_shape(x, ps, "the parameter", "shape"))
      return false;
    if (create)
      ir_param_new(g, n, P_WEIGHT, n->name, ps->rank, ps->d, true);
    else if (!param_shape_ok(x, P_WEIGHT, ps->rank, ps->d))
      return false;
    break;
  }

  case OP_COUNT_:
    CHECK(0, "OP_COUNT_ is not an op");
  }
  /* conv2d, linear and adaptive_avgpool have their output size from 'out' */
  bool sized = n->op == OP_CONV2D || n->op == OP_LINEAR || n->op == OP_ADAPTIVE_AVGPOOL ||
               n->op == OP_ADAPTIVE_MAXPOOL;
  return check_shape(x, &n->shape, "the output", sized ? "out" : NULL);
}

#undef FAIL
#undef FAIL_IN
#undef FAIL_ATTR
#undef LL

bool ir_infer_shape_at(Graph *g, Node *n, const char *const *in_names, IrShapeError *e) {
  memset(e, 0, sizeof *e);
  e->at = IR_AT_NODE;
  e->index = -1;
  Inf x = {g, n, in_names, e};
  return infer(&x);
}

bool ir_infer_shape(Graph *g, Node *n, char *err, size_t errlen) {
  IrShapeError e;
  if (ir_infer_shape_at(g, n, NULL, &e))
    return true;
  snprintf(err, errlen, "%s", e.msg);
  return false;
}

/* ---------------------------------------------------------------- verifier */

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int ir_verify(const Graph *g, FILE *out) {
  int bad = 0;
#define BAD(...)                                                                                   \
  do {                                                                                             \
    bad++;                                                                                         \
    if (out) {                                                                                     \
      fprintf(out, "ir_verify: " __VA_ARGS__);                                                     \
      fputc('\n', out);                                                                            \
    }                                                                                              \
  } while (0)
  int n = g->nodes.len;
  int maxid = g->next_id;
  char *seen = xcalloc((size_t)maxid + 1, 1);
  for (int i = 0; i < n; i++) {
    const Node *x = GRAPH_NODE(g, i);
    if (x->dead)
      continue;
    if (x->id < 0 || x->id >= maxid)
      BAD("node '%s' has id %d out of range", x->name, x->id);
    const OpInfo *oi = &ir_ops[x->op];
    /* A fused residual or gate is one input more than the op itself takes. */
    int extra = (x->epi.residual >= 0) + (x->epi.gate >= 0);
    if (x->nin < oi->min_inputs || (oi->max_inputs >= 0 && x->nin > oi->max_inputs + extra))
      BAD("node '%s' (%s) has %d inputs", x->name, oi->name, x->nin);
    for (int k = 0; k < x->nin; k++) {
      const Node *y = x->in[k];
      if (!y)
        BAD("node '%s' input %d is NULL", x->name, k);
      else if (y->dead)
        BAD("node '%s' reads dead node '%s'", x->name, y->name);
      else if (y->id >= 0 && y->id < maxid && !seen[y->id])
        BAD("node '%s' reads '%s' before it is computed", x->name, y->name);
    }
    if (x->shape.rank != 1 && x->shape.rank != 3)
      BAD("node '%s' has rank %d", x->name, x->shape.rank);
    if ((oi->flags & OPF_WEIGHTS) && x->nparams == 0)
      BAD("node '%s' (%s) has no parameters", x->name, oi->name);
    for (int k = 0; k < x->nparams; k++)
      if (x->params[k] && !x->params[k]->data)
        BAD("parameter '%s' has no data", x->params[k]->name);
    if (x->epi.residual >= 0) {
      if (x->epi.residual >= x->nin)
        BAD("node '%s' epilogue residual index %d out of range", x->name, x->epi.residual);
      else if (!shape_eq(&x->in[x->epi.residual]->shape, &x->shape))
        BAD("node '%s' residual input has another shape", x->name);
    }
    if (x->epi.gate >= 0) {
      const Shape *gs = x->epi.gate < x->nin ? &x->in[x->epi.gate]->shape : NULL;
      if (!gs || x->epi.gate == 0 || x->op != OP_CONV2D)
        BAD("node '%s' gate index %d out of range", x->name, x->epi.gate);
      else if (gs->d[0] != x->in[0]->shape.d[0] || shape_numel(gs) != gs->d[0])
        BAD("node '%s' gate is not one factor per input channel", x->name);
    }
    if (x->id >= 0 && x->id < maxid)
      seen[x->id] = 1;
  }
  /* Unique names: sorted, neighbours compared (the check runs after every
     pass, so it must stay cheap on large graphs). */
  const char **names = xcalloc((size_t)n + 1, sizeof *names);
  int nn = 0;
  for (int i = 0; i < n; i++)
    if (!GRAPH_NODE(g, i)->dead)
      names[nn++] = GRAPH_NODE(g, i)->name;
  qsort(names, (size_t)nn, sizeof *names, cmp_name);
  for (int i = 1; i < nn; i++)
    if (strcmp(names[i - 1], names[i]) == 0 && (i < 2 || strcmp(names[i - 2], names[i]) != 0))
      BAD("two nodes are named '%s'", names[i]);
  free(names);
  for (int i = 0; i < g->noutputs; i++)
    if (!g->outputs[i].node || g->outputs[i].node->dead)
      BAD("output '%s' is missing or dead", g->outputs[i].name);
  for (int i = 0; i < g->ninputs; i++)
    if (!g->inputs[i].node || g->inputs[i].node->op != OP_INPUT)
      BAD("input '%s' is not an input node", g->inputs[i].name);
  free(seen);
  return bad;
#undef BAD
}

/* ------------------------------------------------------------ rewriting */

bool ir_is_graph_output(const Graph *g, const Node *n) {
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i].node == n)
      return true;
  return false;
}

static int cmp_slice_begin(const void *a, const void *b) {
  const Node *x = *(Node *const *)a, *y = *(Node *const *)b;
  return x->attr.slice_begin < y->attr.slice_begin ? -1 : x->attr.slice_begin > y->attr.slice_begin;
}

Node **ir_split_slices(const Graph *g, const Node *n, int *count) {
  *count = 0;
  if (!n->split)
    return NULL;
  Node **v = NULL;
  int cap = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *s = GRAPH_NODE(g, i);
    if (s->dead || s->op != OP_SLICE || s->in[0] != n)
      continue;
    if (*count == cap) {
      cap = cap ? 2 * cap : 8;
      v = xrealloc(v, sizeof *v * (size_t)cap);
    }
    v[(*count)++] = s;
  }
  if (*count)
    qsort(v, (size_t)*count, sizeof *v, cmp_slice_begin);
  return v;
}

bool ir_conv_small_groups(const Node *n, int block) {
  const Attrs *a = &n->attr;
  if (n->op != OP_CONV2D || a->groups <= 1 || n->shape.rank != 3 || n->in[0]->shape.rank != 3)
    return false;
  int64_t IC = n->in[0]->shape.d[0], OC = n->shape.d[0], G = a->groups;
  if (IC % G || OC % G || IC % block || OC % block)
    return false;
  int64_t icg = IC / G, ocg = OC / G;
  return icg == ocg && icg < block && block % icg == 0;
}

bool ir_conv_window_groups(const Node *n, int block) {
  const Attrs *a = &n->attr;
  if (n->op != OP_CONV2D || a->groups <= 1 || n->shape.rank != 3 || n->in[0]->shape.rank != 3)
    return false;
  int64_t IC = n->in[0]->shape.d[0], OC = n->shape.d[0], G = a->groups;
  if (IC % G || OC % G || IC % block || OC % block || ir_conv_small_groups(n, block))
    return false;
  return (IC / G) % block || (OC / G) % block;
}

void ir_count_users(const Graph *g, int *counts) {
  memset(counts, 0, sizeof(int) * (size_t)g->next_id);
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *x = GRAPH_NODE(g, i);
    if (x->dead)
      continue;
    for (int k = 0; k < x->nin; k++)
      counts[x->in[k]->id]++;
  }
  for (int i = 0; i < g->noutputs; i++)
    counts[g->outputs[i].node->id]++;
}

void ir_replace_uses(Graph *g, Node *from, Node *to) {
  for (int i = 0; i < g->nodes.len; i++) {
    Node *x = GRAPH_NODE(g, i);
    if (x->dead || x == to)
      continue;
    for (int k = 0; k < x->nin; k++)
      if (x->in[k] == from)
        x->in[k] = to;
  }
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i].node == from)
      g->outputs[i].node = to;
}

void ir_compact(Graph *g) {
  int j = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *x = GRAPH_NODE(g, i);
    if (!x->dead) {
      x->order = j;
      g->nodes.items[j++] = x;
    }
  }
  g->nodes.len = j;
}

void ir_toposort(Graph *g) {
  /* Kahn's algorithm, always taking the earliest ready node in the current
     order, so an already valid order is kept as it is. */
  ir_compact(g);
  int n = g->nodes.len;
  int *pending = xcalloc((size_t)n, sizeof(int));
  char *done = xcalloc((size_t)g->next_id, 1);
  char *placed = xcalloc((size_t)n, 1);
  void **sorted = xmalloc(sizeof(void *) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++)
    pending[i] = GRAPH_NODE(g, i)->nin;
  int m = 0;
  while (m < n) {
    int pick = -1;
    for (int i = 0; i < n && pick < 0; i++) {
      if (placed[i])
        continue;
      Node *x = GRAPH_NODE(g, i);
      bool ready = true;
      for (int k = 0; k < x->nin && ready; k++)
        ready = done[x->in[k]->id];
      if (ready)
        pick = i;
    }
    CHECK(pick >= 0, "ir_toposort: the graph has a cycle");
    placed[pick] = 1;
    Node *x = GRAPH_NODE(g, pick);
    done[x->id] = 1;
    sorted[m++] = x;
  }
  for (int i = 0; i < n; i++) {
    g->nodes.items[i] = sorted[i];
    GRAPH_NODE(g, i)->order = i;
  }
  free(pending);
  free(done);
  free(placed);
  free(sorted);
}

/* ------------------------------------------------------------- activations */

Act ir_node_act(const Node *n) {
  const Attrs *a = &n->attr;
  switch (n->op) {
  case OP_RELU:
    return (Act){.kind = ACT_RELU};
  case OP_CLAMP:
    return (Act){.kind = ACT_CLAMP, .a = a->clamp_min, .b = a->clamp_max};
  case OP_SIGMOID:
    return (Act){.kind = ACT_SIGMOID};
  case OP_HARDSIGMOID:
    return (Act){.kind = ACT_HARDSIGMOID, .a = a->hs_alpha, .b = a->hs_beta};
  case OP_HARDSWISH:
    return (Act){.kind = ACT_HARDSWISH};
  case OP_SILU:
    return (Act){.kind = ACT_SILU};
  case OP_GELU:
    return (Act){.kind = a->gelu_tanh ? ACT_GELU_TANH : ACT_GELU};
  default:
    return (Act){.kind = ACT_NONE};
  }
}

bool ir_act_eq(const Act *x, const Act *y) {
  return x->kind == y->kind && x->a == y->a && x->b == y->b;
}

char *ir_act_str(const Act *a, char *buf, size_t n) {
  static const char *const names[] = {
      [ACT_NONE] = "none",
      [ACT_RELU] = "relu",
      [ACT_CLAMP] = "clamp",
      [ACT_SIGMOID] = "sigmoid",
      [ACT_HARDSIGMOID] = "hardsigmoid",
      [ACT_HARDSWISH] = "hardswish",
      [ACT_SILU] = "silu",
      [ACT_GELU] = "gelu",
      [ACT_GELU_TANH] = "gelu(tanh)",
  };
  CHECK(a->kind >= ACT_NONE && a->kind <= ACT_GELU_TANH, "activation kind %d", (int)a->kind);
  if (a->kind == ACT_CLAMP || a->kind == ACT_HARDSIGMOID)
    snprintf(buf, n, "%s(%g,%g)", names[a->kind], (double)a->a, (double)a->b);
  else
    snprintf(buf, n, "%s", names[a->kind]);
  return buf;
}

/* ---------------------------------------------------------------- counting */

uint64_t ir_node_macs(const Node *n) {
  if (n->dead)
    return 0;
  switch (n->op) {
  case OP_CONV2D: {
    const Shape *s = &n->shape;
    int64_t cin = n->in[0]->shape.d[0] / n->attr.groups;
    return (uint64_t)(s->d[0] * s->d[1] * s->d[2]) *
           (uint64_t)(cin * n->attr.kernel[0] * n->attr.kernel[1]);
  }
  case OP_LINEAR:
    return (uint64_t)shape_numel(&n->in[0]->shape) * (uint64_t)n->attr.out_features;
  default:
    return 0;
  }
}

uint64_t ir_graph_macs(const Graph *g) {
  uint64_t t = 0;
  for (int i = 0; i < g->nodes.len; i++)
    t += ir_node_macs(GRAPH_NODE(g, i));
  return t;
}

uint64_t ir_graph_param_count(const Graph *g, bool trainable_only) {
  uint64_t t = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *x = GRAPH_NODE(g, i);
    if (x->dead)
      continue;
    for (int k = 0; k < x->nparams; k++)
      if (x->params[k] && (!trainable_only || x->params[k]->trainable))
        t += (uint64_t)param_numel(x->params[k]);
  }
  return t;
}

void ir_stat(Graph *g, const char *pass, const char *fmt, ...) {
  PassStat *s = arena_alloc(g->arena, sizeof *s);
  s->pass = pass;
  va_list ap;
  va_start(ap, fmt);
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  s->text = arena_strdup(g->arena, buf);
  ptrvec_push(g->arena, &g->stats, s);
}

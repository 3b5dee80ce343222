/*
 * patterns.c: subgraphs that exporters write for one layer, recognized
 * and replaced by that layer before anything is lowered.
 *
 * torch.onnx.export has no single op for some layers and writes out their
 * arithmetic instead; the pieces (a product of a tensor with itself, a 3-D
 * average pool over an unsqueezed channel axis, an If on the rank) are not
 * layers cnncc could lower one by one, but the whole is. Each pattern is
 * anchored at its last node, walks back through the producers, checks that
 * every intermediate value is read inside the pattern only, and then puts a
 * synthetic node of the one ONNX op in place of the anchor (same output
 * name) and removes the others, with every node that reads a removed value
 * (shape arithmetic on an intermediate, folded anyway).
 *
 *   LRN  nn.LocalResponseNorm as torch exports it (every opset):
 *          x*x -> Unsqueeze -> Reshape -> Pad -> Pad -> AveragePool over
 *          [size, 1, 1] -> If (squeeze) -> Reshape -> Mul alpha -> Add k
 *          -> Pow beta; x / that
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

typedef struct {
  OxCtx *cx;
  const Onnx__NodeProto **nodes;
  int n;
  bool *removed;
} Pat;

/* The index of the node that writes value `name`, or -1. */
static int producer(const Pat *p, const char *name) {
  if (!name || !*name)
    return -1;
  for (int i = p->n - 1; i >= 0; i--) {
    const Onnx__NodeProto *x = p->nodes[i];
    for (size_t k = 0; x && k < x->n_output; k++)
      if (x->output[k] && strcmp(x->output[k], name) == 0)
        return i;
  }
  return -1;
}

static bool is_op(const Pat *p, int i, const char *op) {
  return i >= 0 && p->nodes[i] && strcmp(p->nodes[i]->op_type, op) == 0 &&
         (!p->nodes[i]->domain || !*p->nodes[i]->domain);
}

/* A scalar constant: an initializer or a Constant node's value. */
static bool scalar(const Pat *p, const char *name, double *v) {
  OxValue *iv = ox_value(p->cx, name);
  if (iv && iv->kind == OXV_CONST && iv->c.numel == 1) {
    *v = ox_const_get(&iv->c, 0);
    return true;
  }
  int i = producer(p, name);
  if (!is_op(p, i, "Constant"))
    return false;
  const Onnx__AttributeProto *a = ox_attr(p->nodes[i], "value");
  OxConst c;
  if (a && a->t && a->t->n_dims <= 1 && ox_tensor_const(p->cx, a->t, "a constant", &c) &&
      c.numel == 1) {
    *v = ox_const_get(&c, 0);
    return true;
  }
  a = ox_attr(p->nodes[i], "value_float");
  if (a && a->has_f) {
    *v = a->f;
    return true;
  }
  return false;
}

/* The input of binary node i that is not the scalar constant; the constant
   into *v. NULL if neither input is one. */
static const char *with_scalar(const Pat *p, int i, double *v) {
  const Onnx__NodeProto *x = p->nodes[i];
  if (x->n_input != 2)
    return NULL;
  if (scalar(p, x->input[1], v))
    return x->input[0];
  if (scalar(p, x->input[0], v))
    return x->input[1];
  return NULL;
}

/* Value `name` is read only by nodes in `group` (or nothing else). */
static bool read_only_by(const Pat *p, const char *name, const int *group, int ng) {
  for (int i = 0; i < p->n; i++) {
    const Onnx__NodeProto *x = p->nodes[i];
    if (!x)
      continue;
    bool in = false;
    for (int g = 0; g < ng; g++)
      in |= group[g] == i;
    for (size_t k = 0; !in && k < x->n_input; k++)
      if (x->input[k] && strcmp(x->input[k], name) == 0 && strcmp(x->op_type, "Shape") != 0)
        return false;
  }
  return true;
}

/* The value an If node passes on from the outer graph in its else branch
   (torch's rank check: squeeze in one branch, Identity in the other). */
static const char *if_passes(const Onnx__NodeProto *x) {
  const Onnx__AttributeProto *a = ox_attr(x, "else_branch");
  if (!a || !a->g || a->g->n_node != 1 || strcmp(a->g->node[0]->op_type, "Identity") != 0 ||
      a->g->node[0]->n_input != 1)
    return NULL;
  return a->g->node[0]->input[0];
}

static Onnx__AttributeProto *attr_i(OxCtx *cx, const char *name, int64_t v) {
  Onnx__AttributeProto *a = arena_alloc(cx->a, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = arena_strdup(cx->a, name);
  a->has_type = true;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  a->has_i = true;
  a->i = v;
  return a;
}

static Onnx__AttributeProto *attr_f(OxCtx *cx, const char *name, double v) {
  Onnx__AttributeProto *a = arena_alloc(cx->a, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = arena_strdup(cx->a, name);
  a->has_type = true;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  a->has_f = true;
  a->f = (float)v;
  return a;
}

/* A node of `op` reading `in`, writing the anchor's output, named after the
   anchor's module ("/norm1/Div" -> "/norm1/LRN"). */
static Onnx__NodeProto *synthetic(OxCtx *cx, const Onnx__NodeProto *anchor, const char *op,
                                  const char *in, Onnx__AttributeProto **attrs, int na) {
  Onnx__NodeProto *x = arena_alloc(cx->a, sizeof *x);
  onnx__node_proto__init(x);
  x->op_type = arena_strdup(cx->a, op);
  const char *nm = anchor->name ? anchor->name : "";
  const char *slash = strrchr(nm, '/');
  x->name = slash ? arena_printf(cx->a, "%.*s/%s", (int)(slash - nm), nm, op)
                  : arena_printf(cx->a, "%s%s%s", nm, *nm ? "." : "", op);
  x->n_input = 1;
  x->input = arena_alloc(cx->a, sizeof(char *));
  x->input[0] = arena_strdup(cx->a, in);
  x->n_output = 1;
  x->output = arena_alloc(cx->a, sizeof(char *));
  x->output[0] = anchor->output[0];
  x->n_attribute = (size_t)na;
  x->attribute = attrs;
  return x;
}

/* Removes the group (but the anchor, replaced) and whatever reads a removed
   value. */
static void remove_group(Pat *p, const int *group, int ng, int anchor) {
  for (int g = 0; g < ng; g++)
    if (group[g] != anchor)
      p->removed[group[g]] = true;
  for (bool more = true; more;) {
    more = false;
    for (int i = 0; i < p->n; i++) {
      const Onnx__NodeProto *x = p->nodes[i];
      if (!x || p->removed[i] || i == anchor)
        continue;
      for (size_t k = 0; k < x->n_input && !p->removed[i]; k++) {
        int j = producer(p, x->input[k]);
        if (j >= 0 && p->removed[j]) {
          p->removed[i] = true;
          more = true;
        }
      }
    }
  }
}

/* ----------------------------------------------------------------------- LRN */

static bool match_lrn(Pat *p, int div) {
  const Onnx__NodeProto *d = p->nodes[div];
  if (!is_op(p, div, "Div") || d->n_input != 2)
    return false;
  const char *x = d->input[0];
  double beta, k, alpha;
  int pw = producer(p, d->input[1]);
  if (!is_op(p, pw, "Pow") || !scalar(p, p->nodes[pw]->input[1], &beta))
    return false;
  int add = producer(p, p->nodes[pw]->input[0]);
  const char *m_out = is_op(p, add, "Add") ? with_scalar(p, add, &k) : NULL;
  int mul = producer(p, m_out);
  const char *r_out = is_op(p, mul, "Mul") ? with_scalar(p, mul, &alpha) : NULL;
  int group[16], ng = 0;
  group[ng++] = div, group[ng++] = pw, group[ng++] = add, group[ng++] = mul;
  /* back through Reshape / If / Squeeze / Identity to the average pool */
  int i = producer(p, r_out);
  while (i >= 0 && ng < 12 && !is_op(p, i, "AveragePool")) {
    const Onnx__NodeProto *y = p->nodes[i];
    const char *next =
        is_op(p, i, "If") ? if_passes(y)
        : (is_op(p, i, "Reshape") || is_op(p, i, "Squeeze") || is_op(p, i, "Identity"))
            ? y->input[0]
            : NULL;
    if (!next)
      return false;
    group[ng++] = i;
    i = producer(p, next);
  }
  if (!is_op(p, i, "AveragePool"))
    return false;
  int64_t ks[3];
  const Onnx__NodeProto *ap = p->nodes[i];
  if (ox_attr_ints(ap, "kernel_shape", ks, 3, 0) != 3 || ks[1] != 1 || ks[2] != 1)
    return false;
  group[ng++] = i;
  /* and on through the Pads and the reshapes to x * x */
  int j = producer(p, ap->input[0]);
  while (j >= 0 && ng < 16 &&
         (is_op(p, j, "Pad") || is_op(p, j, "Reshape") || is_op(p, j, "Unsqueeze"))) {
    group[ng++] = j;
    j = producer(p, p->nodes[j]->input[0]);
  }
  if (!is_op(p, j, "Mul") || p->nodes[j]->n_input != 2 || strcmp(p->nodes[j]->input[0], x) != 0 ||
      strcmp(p->nodes[j]->input[1], x) != 0)
    return false;
  group[ng++] = j;
  for (int g = 0; g < ng; g++)
    if (group[g] != div && !read_only_by(p, p->nodes[group[g]]->output[0], group, ng))
      return false;
  Onnx__AttributeProto **attrs = arena_alloc(p->cx->a, 4 * sizeof *attrs);
  attrs[0] = attr_i(p->cx, "size", ks[0]);
  attrs[1] = attr_f(p->cx, "alpha", alpha); /* the pool divides by size, as LRN's alpha/size */
  attrs[2] = attr_f(p->cx, "beta", beta);
  attrs[3] = attr_f(p->cx, "bias", k);
  p->nodes[div] = synthetic(p->cx, d, "LRN", x, attrs, 4);
  remove_group(p, group, ng, div);
  return true;
}

/* ---------------------------------------------------------------- the pass */

int ox_patterns(OxCtx *cx) {
  Pat p = {.cx = cx, .nodes = cx->nodes, .n = cx->nnodes};
  p.removed = xcalloc((size_t)(p.n ? p.n : 1), sizeof *p.removed);
  int found = 0;
  for (int i = 0; i < p.n; i++)
    if (p.nodes[i] && !p.removed[i])
      found += match_lrn(&p, i);
  for (int i = 0; i < p.n; i++)
    if (p.removed[i])
      cx->nodes[i] = NULL;
  free(p.removed);
  return found;
}

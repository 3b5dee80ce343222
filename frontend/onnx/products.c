/*
 * products.c: the activations that exporters write as products (and one
 * as an affine map).
 *
 * torch.onnx.export writes nn.SiLU as x * Sigmoid(x), nn.Hardswish before
 * opset 14 as x * HardSigmoid(x) (alpha 1/6, beta 1/2), and nn.GELU as
 * x * 0.5 * (1 + Erf(x / sqrt(2))) or, approximated,
 * x * 0.5 * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x * x * x))). The
 * grouping of the products differs between versions and exporters, so a
 * product is read as a whole: from its last Mul (or Div by a constant),
 * every operand that is itself a Mul, a Div by a constant or a Pow 2 or 3,
 * read only there, is expanded, and the product becomes a constant times
 * a list of factors. A pattern is then that list: SiLU is 1 * {x,
 * Sigmoid(x)}, GELU 0.5 * {x, 1 + Erf(y)} with y the product 1/sqrt(2) *
 * {x}, and so on. The constants are compared within 1e-5 (an exporter
 * writes float32 approximations of sqrt(2) and sqrt(2/pi)). The matched
 * nodes become one node of domain cnncc (Silu, HardSwish, Gelu), which
 * act.c lowers to the IR's activation.
 *
 * ONNX's HardSigmoid written out by hand, Clip(alpha * x + beta, 0, 1),
 * becomes a HardSigmoid with that alpha and beta (so that it is one
 * activation, fused, and a spec can say it).
 */
#include <math.h>
#include <string.h>

#include "onnx_internal.h"

#define MAX_FACTORS 8
#define MAX_NODES 32

typedef struct {
  const char *f[MAX_FACTORS]; /* the factors that are not constants */
  int nf;
  double k;             /* the product of the constants */
  int group[MAX_NODES]; /* the nodes of the product, and what matchers add */
  int ng;
} Product;

/* The input of binary node x that is not a scalar constant; the constant
   into *v. NULL if neither input is one. */
static const char *with_scalar(const OxPat *p, const Onnx__NodeProto *x, double *v) {
  if (ox_pat_scalar(p, x->input[1], v))
    return x->input[0];
  if (ox_pat_scalar(p, x->input[0], v))
    return x->input[1];
  return NULL;
}

/* The constant exponent of Pow node x, when it is 2 or 3; else 0. */
static int small_power(const OxPat *p, const Onnx__NodeProto *x) {
  double e;
  if (x->n_input != 2 || !ox_pat_scalar(p, x->input[1], &e) || (e != 2 && e != 3))
    return 0;
  return (int)e;
}

/* Whether node i is a product node: a Mul of two values, a Div by a
   scalar constant, a Pow 2 or 3. */
static bool product_node(const OxPat *p, int i) {
  const Onnx__NodeProto *x;
  double v;
  if ((x = ox_pat_node(p, i, "Mul")))
    return x->n_input == 2;
  if ((x = ox_pat_node(p, i, "Div")))
    return x->n_input == 2 && ox_pat_scalar(p, x->input[1], &v) && v != 0;
  if ((x = ox_pat_node(p, i, "Pow")))
    return small_power(p, x) != 0;
  return false;
}

static bool expand(const OxPat *p, int i, Product *pr, int depth);

/* Value `name` into pr: expanded when it is a product node's output read
   only here, else one factor. */
static bool operand(const OxPat *p, const char *name, Product *pr, int depth) {
  double v;
  if (ox_pat_scalar(p, name, &v)) {
    pr->k *= v;
    return true;
  }
  int j = ox_pat_producer(p, name);
  if (product_node(p, j) && ox_pat_readers(p, name) == 1)
    return expand(p, j, pr, depth + 1);
  if (pr->nf >= MAX_FACTORS)
    return false;
  pr->f[pr->nf++] = name;
  return true;
}

/* The operands of product node i into pr. */
static bool expand(const OxPat *p, int i, Product *pr, int depth) {
  if (depth > 8 || pr->ng >= MAX_NODES)
    return false;
  pr->group[pr->ng++] = i;
  const Onnx__NodeProto *x;
  double v;
  if ((x = ox_pat_node(p, i, "Div"))) {
    ox_pat_scalar(p, x->input[1], &v);
    pr->k /= v;
    return operand(p, x->input[0], pr, depth);
  }
  if ((x = ox_pat_node(p, i, "Pow"))) {
    for (int e = small_power(p, x); e > 0; e--) {
      if (pr->nf >= MAX_FACTORS)
        return false;
      pr->f[pr->nf++] = x->input[0];
    }
    return true;
  }
  x = ox_pat_node(p, i, "Mul");
  return operand(p, x->input[0], pr, depth) && operand(p, x->input[1], pr, depth);
}

/* The product at value `name` (a product node's output read once), into
   pr's own list; its nodes join `into`'s group. */
static bool subproduct(const OxPat *p, const char *name, Product *pr, Product *into) {
  *pr = (Product){.k = 1};
  int j = ox_pat_producer(p, name);
  if (!product_node(p, j) || ox_pat_readers(p, name) != 1 || !expand(p, j, pr, 0) ||
      into->ng + pr->ng > MAX_NODES)
    return false;
  memcpy(into->group + into->ng, pr->group, sizeof(int) * (size_t)pr->ng);
  into->ng += pr->ng;
  return true;
}

/* Node j, joined to pr's group, if it is an `op` read only once (by the
   product). */
static const Onnx__NodeProto *single(const OxPat *p, const char *name, const char *op,
                                     Product *pr) {
  int j = ox_pat_producer(p, name);
  const Onnx__NodeProto *x = ox_pat_node(p, j, op);
  if (!x || ox_pat_readers(p, name) != 1 || pr->ng >= MAX_NODES)
    return NULL;
  pr->group[pr->ng++] = j;
  return x;
}

/* 1 + op(y) at value `name`: y, the nodes joined to pr's group. */
static const char *one_plus(const OxPat *p, const char *name, const char *op, Product *pr) {
  const Onnx__NodeProto *add = single(p, name, "Add", pr), *f;
  double one;
  if (!add || add->n_input != 2)
    return NULL;
  int k = ox_pat_scalar(p, add->input[0], &one) ? 1 : 0;
  if (!ox_pat_scalar(p, add->input[1 - k], &one) || one != 1 ||
      !(f = single(p, add->input[k], op, pr)) || f->n_input != 1)
    return NULL;
  return f->input[0];
}

/* GELU: 0.5 * {x, 1 + Erf(1/sqrt(2) * {x})} or 0.5 * {x, 1 + Tanh(sqrt(2/pi)
   * {x + 0.044715 * {x, x, x}})} (sqrt(2/pi) = 0.79788456...); *tanh_form
   says which. */
static bool gelu(const OxPat *p, const char *x, const char *g, Product *pr, bool *tanh_form) {
  Product a, b;
  int ng = pr->ng;
  const char *y = one_plus(p, g, "Erf", pr);
  if (y && subproduct(p, y, &a, pr) && a.nf == 1 && strcmp(a.f[0], x) == 0 &&
      ox_pat_near(a.k, 1 / sqrt(2.0))) {
    *tanh_form = false;
    return true;
  }
  pr->ng = ng;
  y = one_plus(p, g, "Tanh", pr);
  if (!y || !subproduct(p, y, &a, pr) || a.nf != 1 || !ox_pat_near(a.k, 0.7978845608028654))
    return false;
  const Onnx__NodeProto *s = single(p, a.f[0], "Add", pr);
  if (!s || s->n_input != 2)
    return false;
  int k = strcmp(s->input[0], x) == 0 ? 1 : 0;
  if (strcmp(s->input[1 - k], x) != 0 || !subproduct(p, s->input[k], &b, pr) || b.nf != 3 ||
      !ox_pat_near(b.k, 0.044715))
    return false;
  for (int i = 0; i < 3; i++)
    if (strcmp(b.f[i], x) != 0)
      return false;
  *tanh_form = true;
  return true;
}

/* Which activation the two-factor product {x, g} * k is, or NULL; its
   nodes join pr's group. */
static const char *activation(const OxPat *p, const char *x, const char *g, Product *pr,
                              bool *tanh_form) {
  int ng = pr->ng;
  const Onnx__NodeProto *f;
  if (ox_pat_near(pr->k, 1)) {
    if ((f = single(p, g, "Sigmoid", pr)) && f->n_input == 1 && strcmp(f->input[0], x) == 0)
      return "Silu";
    pr->ng = ng;
    if ((f = single(p, g, "HardSigmoid", pr)) && f->n_input == 1 && strcmp(f->input[0], x) == 0 &&
        ox_pat_near(ox_attr_float(f, "alpha", 0.2f), 1 / 6.0) &&
        ox_pat_near(ox_attr_float(f, "beta", 0.5f), 0.5))
      return "HardSwish";
  }
  pr->ng = ng;
  if (ox_pat_near(pr->k, 0.5) && gelu(p, x, g, pr, tanh_form))
    return "Gelu";
  pr->ng = ng;
  return NULL;
}

/* Clip's bounds: attributes before opset 11, scalar constants after. */
static bool clip_bounds(const OxPat *p, const Onnx__NodeProto *c, double *lo, double *hi) {
  if (c->n_input <= 1) {
    *lo = ox_attr_float(c, "min", -INFINITY), *hi = ox_attr_float(c, "max", INFINITY);
    return true;
  }
  *lo = -INFINITY, *hi = INFINITY;
  return (!*c->input[1] || ox_pat_scalar(p, c->input[1], lo)) &&
         (c->n_input < 3 || !*c->input[2] || ox_pat_scalar(p, c->input[2], hi));
}

/* ONNX's HardSigmoid written out: Clip(alpha * x + beta, 0, 1), the Add
   or the product left out when beta is 0 or alpha 1. */
static bool hardsigmoid(OxPat *p, int i) {
  const Onnx__NodeProto *c = ox_pat_node(p, i, "Clip"), *add;
  double lo, hi, beta = 0;
  if (!c || !clip_bounds(p, c, &lo, &hi) || lo != 0 || hi != 1)
    return false;
  Product pr = {.k = 1, .group = {i}, .ng = 1}, a = {.k = 1};
  const char *u = c->input[0];
  if ((add = single(p, u, "Add", &pr))) {
    if (add->n_input != 2 || !(u = with_scalar(p, add, &beta)))
      return false;
  }
  if (product_node(p, ox_pat_producer(p, u)) && (!subproduct(p, u, &a, &pr) || a.nf != 1))
    return false;
  const char *x = a.nf ? a.f[0] : u;
  if (pr.ng == 1 || a.k == 0 || !ox_pat_closed(p, i, pr.group, pr.ng))
    return false;
  Onnx__NodeProto *h = ox_pat_replace(p, i, pr.group, pr.ng, "HardSigmoid", false, &x, 1);
  ox_pat_attr_float(p, h, "alpha", a.k);
  ox_pat_attr_float(p, h, "beta", beta);
  return true;
}

bool ox_products(OxPat *p, int i) {
  if (ox_pat_node(p, i, "Clip"))
    return hardsigmoid(p, i);
  if (!(ox_pat_node(p, i, "Mul") || ox_pat_node(p, i, "Div")) || !product_node(p, i))
    return false;
  Product pr = {.k = 1};
  if (!expand(p, i, &pr, 0) || pr.nf != 2)
    return false;
  int ng = pr.ng;
  for (int side = 0; side < 2; side++) {
    const char *x = pr.f[side], *g = pr.f[1 - side];
    pr.ng = ng;
    bool tanh_form = false;
    const char *op = activation(p, x, g, &pr, &tanh_form);
    if (!op || !ox_pat_closed(p, i, pr.group, pr.ng))
      continue;
    Onnx__NodeProto *a = ox_pat_replace(p, i, pr.group, pr.ng, op, true, &x, 1);
    if (strcmp(op, "Gelu") == 0)
      ox_pat_attr_string(p, a, "approximate", tanh_form ? "tanh" : "none");
    return true;
  }
  return false;
}

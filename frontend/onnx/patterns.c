/*
 * patterns.c: subgraphs that exporters write for one layer, recognized
 * and replaced by that layer before anything is lowered.
 *
 * torch.onnx.export has no single op for some layers and writes out their
 * arithmetic instead; the pieces (a product of a tensor with itself, a 3-D
 * average pool over an unsqueezed channel axis, a Reshape to rank 5) are
 * not layers cnncc could lower one by one, but the whole is. Each pattern
 * is anchored at its last node, walks back through the producers, checks
 * that every intermediate value is read inside the pattern only, and then
 * puts one node of the layer's op in place of the anchor (same output
 * name) and removes the others (with every node that reads a removed
 * value: shape arithmetic on an intermediate, folded anyway). The ops that
 * ONNX lacks, or lacks at the model's opset, are made in domain cnncc
 * (ops.c's internal rows).
 *
 *   LRN  nn.LocalResponseNorm as torch exports it (every opset):
 *          x*x -> Unsqueeze -> Reshape -> Pad -> Pad -> AveragePool over
 *          [size, 1, 1] -> If (squeeze) -> Reshape -> Mul alpha -> Add k
 *          -> Pow beta; x / that
 *   LayerNormalization  nn.LayerNorm before opset 17, over one axis a:
 *          D = x - ReduceMean(x, [a]);
 *          D / Sqrt(ReduceMean(Pow(D, 2) or D*D, [a]) + eps)
 *          [* weight] [+ bias]      (the weight and bias initializers)
 *   ChannelShuffle  torchvision's channel_shuffle: Reshape to
 *          [N, g, C/g, H, W] -> Transpose [0, 2, 1, 3, 4] -> Reshape to
 *          [N, C, H, W] (the shapes, folded only later, are checked by the
 *          lowering, layout.c)
 *   and the products of products.c (SiLU, hardswish, GELU).
 *
 * The machinery (who writes each value, how many nodes read it, the
 * replacement) is match.c's.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

/* The node that reads value `name`, when exactly one does; else -1. */
static int only_reader(const OxPat *p, const char *name) {
  if (ox_pat_readers(p, name) != 1)
    return -1;
  for (int i = 0; i < p->n; i++) {
    const Onnx__NodeProto *x = p->removed[i] ? NULL : p->nodes[i];
    for (size_t k = 0; x && k < x->n_input; k++)
      if (x->input[k] && strcmp(x->input[k], name) == 0)
        return i;
  }
  return -1;
}

/* The input of binary node x that is not the scalar constant; the constant
   into *v. NULL if neither input is one. */
static const char *with_scalar(const OxPat *p, const Onnx__NodeProto *x, double *v) {
  if (x->n_input != 2)
    return NULL;
  if (ox_pat_scalar(p, x->input[1], v))
    return x->input[0];
  if (ox_pat_scalar(p, x->input[0], v))
    return x->input[1];
  return NULL;
}

/* ----------------------------------------------------------------------- LRN */

/* Value `name` is read only by nodes in `group` (or nothing else); Shape
   readers do not count (they are removed with the group). */
static bool read_only_by(const OxPat *p, const char *name, const int *group, int ng) {
  for (int i = 0; i < p->n; i++) {
    const Onnx__NodeProto *x = p->removed[i] ? NULL : p->nodes[i];
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
  if (!a || !a->g || a->g->n_node != 1 || !a->g->node[0]->op_type ||
      strcmp(a->g->node[0]->op_type, "Identity") != 0 || a->g->node[0]->n_input != 1)
    return NULL;
  return a->g->node[0]->input[0];
}

/* From the LRN's Mul alpha back through Reshape / If / Squeeze / Identity
   to the average pool, then through the Pads and reshapes to x * x;
   appends the nodes to group; the pool's node or -1. */
static int lrn_pool(OxPat *p, const char *r_out, const char *x, int *group, int *ng) {
  int i = ox_pat_producer(p, r_out);
  while (i >= 0 && *ng < 12 && !ox_pat_node(p, i, "AveragePool")) {
    const Onnx__NodeProto *y = p->nodes[i];
    const char *next = ox_pat_node(p, i, "If") ? if_passes(y)
                       : (ox_pat_node(p, i, "Reshape") || ox_pat_node(p, i, "Squeeze") ||
                          ox_pat_node(p, i, "Identity"))
                           ? y->input[0]
                           : NULL;
    if (!next)
      return -1;
    group[(*ng)++] = i;
    i = ox_pat_producer(p, next);
  }
  const Onnx__NodeProto *ap = ox_pat_node(p, i, "AveragePool");
  if (!ap)
    return -1;
  int pool = i;
  group[(*ng)++] = i;
  int j = ox_pat_producer(p, ap->input[0]);
  while (j >= 0 && *ng < 16 &&
         (ox_pat_node(p, j, "Pad") || ox_pat_node(p, j, "Reshape") ||
          ox_pat_node(p, j, "Unsqueeze"))) {
    group[(*ng)++] = j;
    j = ox_pat_producer(p, p->nodes[j]->input[0]);
  }
  const Onnx__NodeProto *sq = ox_pat_node(p, j, "Mul");
  if (!sq || sq->n_input != 2 || strcmp(sq->input[0], x) != 0 || strcmp(sq->input[1], x) != 0)
    return -1;
  group[(*ng)++] = j;
  return pool;
}

static bool match_lrn(OxPat *p, int div) {
  const Onnx__NodeProto *d = ox_pat_node(p, div, "Div");
  if (!d || d->n_input != 2)
    return false;
  const char *x = d->input[0];
  double beta, k, alpha;
  int pw = ox_pat_producer(p, d->input[1]);
  const Onnx__NodeProto *pwn = ox_pat_node(p, pw, "Pow");
  if (!pwn || pwn->n_input != 2 || !ox_pat_scalar(p, pwn->input[1], &beta))
    return false;
  int add = ox_pat_producer(p, pwn->input[0]);
  const Onnx__NodeProto *addn = ox_pat_node(p, add, "Add");
  const char *m_out = addn ? with_scalar(p, addn, &k) : NULL;
  int mul = ox_pat_producer(p, m_out);
  const Onnx__NodeProto *muln = ox_pat_node(p, mul, "Mul");
  const char *r_out = muln ? with_scalar(p, muln, &alpha) : NULL;
  int group[16], ng = 0;
  group[ng++] = div, group[ng++] = pw, group[ng++] = add, group[ng++] = mul;
  int pool = r_out ? lrn_pool(p, r_out, x, group, &ng) : -1;
  int64_t ks[3];
  if (pool < 0 || ox_attr_ints(p->nodes[pool], "kernel_shape", ks, 3, 0) != 3 || ks[1] != 1 ||
      ks[2] != 1)
    return false;
  for (int g = 0; g < ng; g++)
    if (group[g] != div && !read_only_by(p, p->nodes[group[g]]->output[0], group, ng))
      return false;
  Onnx__NodeProto *lrn = ox_pat_replace(p, div, group, ng, "LRN", false, &x, 1);
  ox_pat_attr_int(p, lrn, "size", ks[0]);
  ox_pat_attr_float(p, lrn, "alpha", alpha); /* the pool divides by size, as LRN's alpha/size */
  ox_pat_attr_float(p, lrn, "beta", beta);
  ox_pat_attr_float(p, lrn, "bias", k);
  return true;
}

/* ----------------------------------------------------------- LayerNorm */

/* Whether node i is a ReduceMean over one axis (into *axis), keepdims,
   reading `in` (NULL: any input). */
static bool mean_over_one(const OxPat *p, int i, const char *in, int64_t *axis) {
  const Onnx__NodeProto *r = ox_pat_node(p, i, "ReduceMean");
  int64_t axes[2];
  if (!r || r->n_input != 1 || (in && strcmp(r->input[0], in) != 0) ||
      ox_attr_ints(r, "axes", axes, 2, 0) != 1 || ox_attr_int(r, "keepdims", 1) != 1)
    return false;
  *axis = axes[0];
  return true;
}

/* The initializer of rank 1 (LayerNorm's weight or bias) that the binary
   node x combines with value `from`, or NULL. */
static const char *ln_affine(const OxPat *p, const Onnx__NodeProto *x, const char *from) {
  if (!x || x->n_input != 2)
    return NULL;
  for (int k = 0; k < 2; k++) {
    OxValue *v = ox_value(p->cx, x->input[k]);
    if (v && v->kind == OXV_CONST && !v->producer && v->c.rank == 1 &&
        strcmp(x->input[1 - k], from) == 0)
      return x->input[k];
  }
  return NULL;
}

static bool match_layernorm(OxPat *p, int div) {
  const Onnx__NodeProto *d = ox_pat_node(p, div, "Div");
  if (!d || d->n_input != 2)
    return false;
  int group[9], ng = 0;
  group[ng++] = div;
  const char *dev = d->input[0];
  int sub = ox_pat_producer(p, dev), sqrt_i = ox_pat_producer(p, d->input[1]);
  const Onnx__NodeProto *s = ox_pat_node(p, sub, "Sub"), *sq = ox_pat_node(p, sqrt_i, "Sqrt");
  int64_t a1, a2;
  double eps;
  if (!s || s->n_input != 2 || !sq ||
      !mean_over_one(p, ox_pat_producer(p, s->input[1]), s->input[0], &a1))
    return false;
  const char *x = s->input[0];
  group[ng++] = sub, group[ng++] = ox_pat_producer(p, s->input[1]), group[ng++] = sqrt_i;
  int add = ox_pat_producer(p, sq->input[0]);
  const Onnx__NodeProto *an = ox_pat_node(p, add, "Add");
  const char *var = an ? with_scalar(p, an, &eps) : NULL;
  int rm2 = ox_pat_producer(p, var);
  if (!var || !mean_over_one(p, rm2, NULL, &a2) || a1 != a2)
    return false;
  group[ng++] = add, group[ng++] = rm2;
  int sqr = ox_pat_producer(p, p->nodes[rm2]->input[0]);
  const Onnx__NodeProto *pw = ox_pat_node(p, sqr, "Pow"), *mm = ox_pat_node(p, sqr, "Mul");
  double two;
  if (!((pw && pw->n_input == 2 && strcmp(pw->input[0], dev) == 0 &&
         ox_pat_scalar(p, pw->input[1], &two) && two == 2) ||
        (mm && mm->n_input == 2 && strcmp(mm->input[0], dev) == 0 &&
         strcmp(mm->input[1], dev) == 0)))
    return false;
  group[ng++] = sqr;
  /* the weight and bias, when the normalized value goes only there */
  int anchor = div, r;
  const char *in[3] = {x, NULL, NULL}, *out = d->output[0];
  if ((r = only_reader(p, out)) >= 0 && (in[1] = ln_affine(p, ox_pat_node(p, r, "Mul"), out)))
    group[ng++] = anchor = r, out = p->nodes[r]->output[0];
  if ((r = only_reader(p, out)) >= 0 && (in[2] = ln_affine(p, ox_pat_node(p, r, "Add"), out)))
    group[ng++] = anchor = r;
  if (!ox_pat_closed(p, anchor, group, ng))
    return false;
  Onnx__NodeProto *ln = ox_pat_replace(p, anchor, group, ng, "LayerNormalization", true, in, 3);
  ox_pat_attr_int(p, ln, "axis", a1);
  ox_pat_attr_float(p, ln, "epsilon", eps);
  return true;
}

/* ------------------------------------------------------------ ChannelShuffle */

static bool match_shuffle(OxPat *p, int r2) {
  const Onnx__NodeProto *b = ox_pat_node(p, r2, "Reshape");
  if (!b || b->n_input != 2)
    return false;
  int tr = ox_pat_producer(p, b->input[0]);
  const Onnx__NodeProto *t = ox_pat_node(p, tr, "Transpose");
  int64_t perm[5];
  if (!t || ox_attr_ints(t, "perm", perm, 5, 0) != 5 || perm[0] != 0 || perm[1] != 2 ||
      perm[2] != 1 || perm[3] != 3 || perm[4] != 4)
    return false;
  int r1 = ox_pat_producer(p, t->input[0]);
  const Onnx__NodeProto *a = ox_pat_node(p, r1, "Reshape");
  if (!a || a->n_input != 2)
    return false;
  int group[3] = {r2, tr, r1};
  if (!ox_pat_closed(p, r2, group, 3))
    return false;
  const char *in[3] = {a->input[0], a->input[1], b->input[1]};
  ox_pat_replace(p, r2, group, 3, "ChannelShuffle", true, in, 3);
  return true;
}

/* ---------------------------------------------------------------- the pass */

int ox_patterns(OxCtx *cx) {
  OxPat p;
  ox_pat_begin(&p, cx);
  int found = 0;
  for (int i = 0; i < p.n; i++) {
    if (!p.nodes[i] || p.removed[i])
      continue;
    found +=
        match_lrn(&p, i) || match_layernorm(&p, i) || match_shuffle(&p, i) || ox_products(&p, i);
  }
  ox_pat_end(&p);
  return found;
}

/*
 * fold_linear.c: chains of linear ops with no nonlinearity between them
 * folded into one convolution (or linear layer).
 *
 * contract: requires bound parameter data and fuse-bn (BNs are folded or
 * SCALESHIFTs by now); turns a MUL by a per-channel PARAMETER into a
 * SCALESHIFT (the PARAMETER dies with its last reader); removes the folded
 * SCALE and SCALESHIFT nodes; keeps the execution order. Run before
 * fuse-epilogue, so that a residual add behind a folded scale can still
 * fuse.
 *
 * First, a mul by a parameter op holding one value per channel of the
 * other input (ConvNeXt's layer scale, gamma * x) is a scale-shift with no
 * shift, so that the folds below apply to it: the layer scale after
 * ConvNeXt's last pointwise conv disappears into that conv's weights.
 *
 * Two directions:
 *   forward   conv/linear -> scale(f)          W' = f W,        b' = f b
 *             conv/linear -> scaleshift(s, t)  W'[o] = s[o] W[o], b' = s b + t
 *     (stochastic depth's survival-probability scale on a residual branch,
 *     a BN after a conv that already had an epilogue-free second reader
 *     removed, ...). The producer must have no other reader and no
 *     epilogue yet.
 *   backward  scaleshift(s, t) -> conv with no padding
 *             W'[o][i] = W[o][i] s[i],  b'[o] = b[o] + sum_i,kh,kw W[o][i] t[i]
 *     Exact only without padding (padding zeros are not shifted), so convs
 *     with padding are left alone. The scale-shift must have no other
 *     reader.
 * Arithmetic in double, rounded once.
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static int64_t out_channels(const Node *p) {
  return p->op == OP_CONV2D ? p->attr.out_channels : p->attr.out_features;
}

/* Gives p a zero bias if it has none. */
static float *ensure_bias(Graph *g, Node *p) {
  if (!p->attr.has_bias) {
    int64_t c = out_channels(p);
    Param *b = ir_param_new(g, p, P_BIAS, arena_printf(g->arena, "%s.bias", p->name), 1, &c, false);
    b->data = arena_alloc_aligned(g->arena, sizeof(float) * (size_t)c, 64);
    p->attr.has_bias = true;
  }
  return p->params[P_BIAS]->data;
}

static bool fold_forward(Graph *g, Node *x, const int *users) {
  Node *p = x->in[0];
  if ((p->op != OP_CONV2D && p->op != OP_LINEAR) || users[p->id] != 1 || ir_is_graph_output(g, p) ||
      p->epi.residual >= 0 || p->epi.act.kind != ACT_NONE || x->epi.act.kind != ACT_NONE ||
      p->layout != x->layout)
    return false;
  Param *w = p->params[P_WEIGHT];
  int64_t c = out_channels(p), per = param_numel(w) / c;
  if (x->op == OP_SCALESHIFT && x->shape.d[0] != c)
    return false;
  float *bias = ensure_bias(g, p);
  for (int64_t o = 0; o < c; o++) {
    double s = x->op == OP_SCALE ? (double)x->attr.scale : (double)x->params[P_SCALE]->data[o];
    double t = x->op == OP_SCALE ? 0.0 : (double)x->params[P_SHIFT]->data[o];
    for (int64_t k = 0; k < per; k++)
      w->data[o * per + k] = (float)((double)w->data[o * per + k] * s);
    bias[o] = (float)((double)bias[o] * s + t);
  }
  return true;
}

static bool fold_backward(Graph *g, Node *x, const int *users) {
  if (x->op != OP_SCALESHIFT || x->epi.act.kind != ACT_NONE || users[x->id] != 1 ||
      ir_is_graph_output(g, x))
    return false;
  /* The single reader must be a conv without padding reading x as its
     (only) data input. */
  Node *c = NULL;
  for (int i = 0; i < g->nodes.len && !c; i++) {
    Node *y = GRAPH_NODE(g, i);
    if (!y->dead && y->nin >= 1 && y->in[0] == x)
      c = y;
  }
  if (!c || c->op != OP_CONV2D || c->layout != x->layout)
    return false;
  for (int k = 0; k < 4; k++)
    if (c->attr.pad[k] != 0)
      return false;
  for (int k = 1; k < c->nin; k++)
    if (c->in[k] == x)
      return false;
  const float *s = x->params[P_SCALE]->data, *t = x->params[P_SHIFT]->data;
  Param *w = c->params[P_WEIGHT]; /* [oc, icg, kh, kw], or [oc, icg] (linear_weight) */
  int64_t oc = w->dims[0], taps = c->attr.kernel[0] * c->attr.kernel[1];
  int64_t icg = param_numel(w) / (oc * taps);
  int64_t ocg = oc / c->attr.groups;
  float *bias = ensure_bias(g, c);
  for (int64_t o = 0; o < oc; o++) {
    int64_t g0 = (o / ocg) * icg; /* first input channel of o's group */
    double acc = bias[o];
    for (int64_t i = 0; i < icg; i++)
      for (int64_t k = 0; k < taps; k++) {
        float *wp = &w->data[(o * icg + i) * taps + k];
        acc += (double)*wp * (double)t[g0 + i];
        *wp = (float)((double)*wp * (double)s[g0 + i]);
      }
    bias[o] = (float)acc;
  }
  ir_replace_uses(g, x, x->in[0]);
  return true;
}

/* mul(x, p), p a parameter op with one value per channel of x: a
   scale-shift by p's values with no shift. p dies when m was its last
   reader. */
static bool mul_to_scaleshift(Graph *g, Node *m, int *users) {
  for (int k = 0; k < 2; k++) {
    Node *p = m->in[k], *x = m->in[1 - k];
    int64_t c = m->shape.d[0];
    if (p->op != OP_PARAMETER || !shape_eq(&x->shape, &m->shape) || shape_numel(&p->shape) != c ||
        m->epi.residual >= 0)
      continue;
    m->op = OP_SCALESHIFT;
    m->in[0] = x;
    m->nin = 1;
    for (int i = 0; i < IR_MAX_PARAMS; i++)
      m->params[i] = NULL;
    m->nparams = 0;
    Param *s =
        ir_param_new(g, m, P_SCALE, arena_printf(g->arena, "%s.scale", m->name), 1, &c, false);
    Param *t =
        ir_param_new(g, m, P_SHIFT, arena_printf(g->arena, "%s.shift", m->name), 1, &c, false);
    s->data = arena_alloc_aligned(g->arena, sizeof(float) * (size_t)c, 64);
    t->data = arena_alloc_aligned(g->arena, sizeof(float) * (size_t)c, 64);
    memcpy(s->data, p->params[P_WEIGHT]->data, sizeof(float) * (size_t)c);
    if (--users[p->id] == 0)
      p->dead = true;
    return true;
  }
  return false;
}

void pass_fold_linear(Graph *g) {
  int *users = malloc(sizeof(int) * (size_t)g->next_id);
  int fwd = 0, bwd = 0, muls = 0;
  ir_count_users(g, users);
  for (int i = 0; i < g->nodes.len; i++) {
    Node *m = GRAPH_NODE(g, i);
    if (!m->dead && m->op == OP_MUL)
      muls += mul_to_scaleshift(g, m, users);
  }
  for (int i = 0; i < g->nodes.len; i++) {
    Node *x = GRAPH_NODE(g, i);
    if (x->dead || (x->op != OP_SCALE && x->op != OP_SCALESHIFT))
      continue;
    ir_count_users(g, users);
    if (fold_forward(g, x, users)) {
      ir_replace_uses(g, x, x->in[0]);
      x->dead = true;
      fwd++;
    } else if (fold_backward(g, x, users)) {
      x->dead = true;
      bwd++;
    }
  }
  free(users);
  if (muls)
    ir_stat(g, "fold-linear", "%d muls by a per-channel parameter became scale-shifts", muls);
  if (fwd || bwd)
    ir_stat(g, "fold-linear",
            "folded %d scale/scale-shift ops into the conv before them "
            "and %d into the conv after them",
            fwd, bwd);
}

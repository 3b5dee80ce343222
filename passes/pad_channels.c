/*
 * pad_channels.c: channel counts that are not a multiple of 16 padded to
 * one, with zero weights, so the blocked kernels can run them.
 *
 * contract: requires bound parameter data, the fusion passes (fuse-bn,
 * fuse-epilogue) and fold-1x1 to have run, and a valid execution order;
 * runs before layout. Changes the channel count (shape, out_channels,
 * groups, parameters) of the nodes of each padded class, zero-pads the
 * weights of the convs that read them, and inserts a SLICE (a view of the
 * first C channels) in front of every other reader; keeps a valid
 * execution order. Exact: the result of the graph is unchanged.
 *
 * The layout pass blocks a tensor (NCHW16c) only when its channel count is
 * a multiple of 16. The mobile networks are full of others: MobileNetV3's
 * 72, 120, 200 and 184 channels, EfficientNet's 24 and 40, ShuffleNetV2's
 * 58 and 24, RegNetY's 104 and 440. Their depthwise, grouped and strided
 * convs then ran the generic NCHW kernel at 9-15 GFLOP/s, where a blocked
 * kernel runs them at 100+. Padding them with zero channels (as oneDNN's
 * padded nChw16c does, but in the IR, so every kernel, the memory planner
 * and the layout pass need nothing new) costs the arithmetic of the extra
 * channels (C' / C: 72 -> 80 is 11%) and gains the blocked kernels.
 *
 * Classes. Channel c of a node is channel c of an input for the channel-wise
 * ops (activations, scale-shift, batchnorm, scale, dropout, pools, add,
 * mean, mul: every rank-3 input), for a grouped conv with as many input as
 * output channels per group (depthwise: groups = channels), and for a
 * conv's fused residual. Such nodes must be padded together: a union-find
 * over those edges makes the classes. A class of C channels, C % 16 != 0,
 * is padded to C' = C rounded up to 16 when
 *   - every node of it is made by a conv with one group (its output rows
 *     padded with zero weights and zero bias), a conv of the grouped kind
 *     above (padded with whole zero groups: C' is then also a multiple of
 *     the group size, RegNetX's 72 channels in groups of 24 become 96) or
 *     a channel-wise op (scale-shift and batchnorm padded with zeros); no
 *     graph input, concat, slice, shuffle, layernorm, split conv or
 *     parameter (they have no padded form);
 *   - every reader outside the class is a conv with one group (it reads
 *     the padded channels with zero weights: absorbed), or reads a node of
 *     1x1 pixels (the global pool in front of a classifier): such a reader
 *     gets a SLICE of the first C channels, a view with no copy in either
 *     layout; a graph output too. A larger tensor read by anything else
 *     (ShuffleNet's concat) leaves the class unpadded: a slice of it would
 *     need a copy;
 *   - C' <= 1.5 C, or every node of the class has 1x1 pixels (an SE
 *     squeeze of 8 channels becomes 16; LeNet's 6 channels stay 6).
 * The padded channels meet real ones only through zero weights, which
 * absorb a value x only when it is finite (0 * inf = NaN: the difftest
 * campaign's seeds 4019-4283, tests/difftest/regressions/
 * inf_through_padded_channels). So they never depend on the input: a
 * one-group conv's padded outputs, the only ones computed from real
 * channels (with zero weights), are stored as exactly 0 by its kernel, a
 * select after the epilogue (Attrs.padded_from; every conv kernel applies
 * it, backend/tiles.c's be_zero_padded_*); everything else in a padded
 * channel comes from padded channels through zero groups, zero scale-shift
 * parameters and channel-wise ops: input-independent constants (act(0) and
 * the like). keep_padding_finite bounds them and leaves a class unpadded
 * where they could overflow. Every real output is then computed from
 * exactly the same products as before, for every input, inf and NaN
 * included. Nothing reduces over the padded channels: layernorm, softmax,
 * concat, shuffle and slices of a larger tensor make a class unpadded, and
 * a pixel's slice is a view of the real channels.
 *
 * cnn_info.macs keeps the network's own count (Graph.macs_orig, recorded
 * before the passes); the profile's per-layer GFLOP/s count the padded
 * work the kernels do.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

/* -------------------------------------------------------------- union-find */

static int find(int *parent, int x) {
  while (parent[x] != x)
    x = parent[x] = parent[parent[x]];
  return x;
}

static void unite(int *parent, int a, int b) {
  a = find(parent, a), b = find(parent, b);
  if (a != b)
    parent[a < b ? b : a] = a < b ? a : b;
}

static bool channelwise(const Node *n) {
  switch (n->op) {
  case OP_BATCHNORM:
  case OP_SCALESHIFT:
  case OP_SCALE:
  case OP_DROPOUT:
  case OP_MAXPOOL:
  case OP_AVGPOOL:
  case OP_ADAPTIVE_AVGPOOL:
  case OP_ADAPTIVE_MAXPOOL:
  case OP_ADD:
  case OP_MEAN:
  case OP_MUL:
    return true;
  default:
    return (ir_ops[n->op].flags & OPF_ACT) != 0;
  }
}

/* A grouped conv whose group has as many input as output channels: its
   channel c comes from input channel c's group. */
static bool groupwise(const Node *n) {
  if (n->op != OP_CONV2D || n->attr.groups <= 1 || n->in[0]->shape.rank != 3)
    return false;
  return n->in[0]->shape.d[0] == n->shape.d[0];
}

static bool one_group_conv(const Node *n) {
  return n->op == OP_CONV2D && n->attr.groups == 1 && !n->split;
}

/* Does reader u absorb padded channels of its input k (zero weights)? */
static bool absorbs(const Node *u, int k) {
  return one_group_conv(u) && k == 0 && u->epi.residual != 0;
}

static bool pixel(const Node *n) { return n->shape.d[1] == 1 && n->shape.d[2] == 1; }

typedef struct {
  Graph *g;
  int *parent;
  bool *bad;       /* by class root */
  bool *all_pixel; /* by class root: every member 1x1 */
  int64_t *newc;   /* by node id: padded channel count, 0 = unchanged */
  int64_t *unit;   /* by node id, then by class root: C' is a multiple of it */
  bool *is_member; /* by node id: rank 3, in a class (not yet decided) */
  int n;           /* ids below n: the arrays' size (slices come later) */
} Pad;

static int64_t lcm(int64_t a, int64_t b) {
  int64_t x = a, y = b;
  while (y) {
    int64_t t = x % y;
    x = y, y = t;
  }
  return a / x * b;
}

static void build_classes(Pad *p) {
  Graph *g = p->g;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (n->dead || n->shape.rank != 3)
      continue;
    p->is_member[n->id] = true;
    bool cw = channelwise(n), gw = groupwise(n);
    for (int k = 0; k < n->nin; k++) {
      Node *x = n->in[k];
      bool edge = cw || (gw && k == 0) || k == n->epi.residual;
      if (!edge)
        continue;
      if (x->shape.rank != 3 || x->shape.d[0] != n->shape.d[0])
        p->bad[n->id] = true; /* a per-channel vector [C] or a broadcast */
      else
        unite(p->parent, n->id, x->id);
    }
    /* padding by whole groups: a multiple of 16 and of the group size */
    p->unit[n->id] = gw ? lcm(16, n->shape.d[0] / n->attr.groups) : 16;
    if (n->op == OP_CONV2D && n->attr.groups > 1 && !gw) {
      p->bad[n->id] = true; /* neither padded output nor absorbed input */
      p->bad[n->in[0]->id] = true;
    }
  }
}

/* Marks the classes that cannot be padded (see the top of the file). */
static void judge_classes(Pad *p) {
  Graph *g = p->g;
  for (int i = 0; i < g->next_id; i++)
    p->all_pixel[i] = true;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (n->dead || !p->is_member[n->id])
      continue;
    int r = find(p->parent, n->id);
    p->bad[r] |= p->bad[n->id];
    p->all_pixel[r] &= pixel(n);
    p->unit[r] = lcm(p->unit[r], p->unit[n->id]); /* every member has one */
    bool maker = channelwise(n) || groupwise(n) || one_group_conv(n);
    if (!maker || n->op == OP_INPUT)
      p->bad[r] = true;
    if (ir_is_graph_output(g, n) && !pixel(n))
      p->bad[r] = true;
  }
  /* Readers outside the class. */
  for (int i = 0; i < g->nodes.len; i++) {
    Node *u = GRAPH_NODE(g, i);
    if (u->dead)
      continue;
    for (int k = 0; k < u->nin; k++) {
      Node *x = u->in[k];
      if (!p->is_member[x->id])
        continue;
      int r = find(p->parent, x->id);
      bool inside = p->is_member[u->id] && find(p->parent, u->id) == r;
      if (!inside && !absorbs(u, k) && !pixel(x))
        p->bad[r] = true;
    }
  }
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (n->dead || !p->is_member[n->id])
      continue;
    int r = find(p->parent, n->id);
    int64_t c = n->shape.d[0], c16 = (c + p->unit[r] - 1) / p->unit[r] * p->unit[r];
    if (p->bad[r] || c % 16 == 0 || !(2 * c16 <= 3 * c || p->all_pixel[r]))
      continue;
    p->newc[n->id] = c16;
  }
}

/* A bound on |x| for an activation of x, |x| <= b (every one here maps a
   finite value to a finite one no larger than max(|x|, 1, its bounds)). */
static double act_bound(const Act *a, double b) {
  if (b < 1)
    b = 1;
  if (a->kind == ACT_CLAMP) {
    if (isfinite(a->a) && fabs(a->a) > b)
      b = fabs(a->a);
    if (isfinite(a->b) && fabs(a->b) > b)
      b = fabs(a->b);
  }
  return b;
}

/* A bound on the padded channels' values of padded node n, from its inputs'
   (bound[], by id). A one-group conv stores 0 there (Attrs.padded_from,
   whatever its input holds); every other member computes them from padded
   channels only (zero groups, zero scale-shift parameters, channel-wise
   ops), so they are the same constants for every input. */
static double padded_bound(const Node *n, const double *bound) {
  double b = INFINITY, res = 0;
  if (n->epi.residual >= 0)
    res = bound[n->in[n->epi.residual]->id];
  switch (n->op) {
  case OP_CONV2D:
    if (one_group_conv(n))
      return 0;
    b = 0; /* zero weights and bias times finite padded inputs */
    break;
  case OP_BATCHNORM:
  case OP_SCALESHIFT:
    b = 0; /* zero parameters (batchnorm: var 1) times a finite value */
    break;
  case OP_SCALE:
    b = fabs((double)n->attr.scale) * bound[n->in[0]->id];
    break;
  case OP_ADD:
  case OP_MEAN:
    b = 0;
    for (int k = 0; k < n->nin; k++)
      b += bound[n->in[k]->id];
    break;
  case OP_MUL:
    b = 1;
    for (int k = 0; k < n->nin; k++)
      b *= bound[n->in[k]->id];
    break;
  case OP_DROPOUT:
  case OP_MAXPOOL:
  case OP_AVGPOOL:
  case OP_ADAPTIVE_AVGPOOL:
  case OP_ADAPTIVE_MAXPOOL:
    b = bound[n->in[0]->id];
    break;
  default:
    if (ir_ops[n->op].flags & OPF_ACT) {
      Act a = ir_node_act(n);
      b = act_bound(&a, bound[n->in[0]->id]);
    }
    break;
  }
  return act_bound(&n->epi.act, b + res);
}

/* Exactness for every input, inf and NaN included: the padded channels
   meet real ones only through zero weights, where 0 * x is 0 only for a
   finite x. By padded_bound they are input-independent constants; a class
   where they could overflow (a long chain of adds or muls of them, which
   no real network has) is left unpadded. In execution order, so inputs'
   bounds come first; classes read each other only through absorbing convs
   and slices, so unpadding one changes no other's bounds. */
static void keep_padding_finite(Pad *p) {
  Graph *g = p->g;
  double *bound = calloc((size_t)p->n, sizeof *bound);
  bool *unpad = calloc((size_t)p->n, sizeof *unpad);
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (n->dead || !p->newc[n->id])
      continue;
    bound[n->id] = padded_bound(n, bound);
    if (!(bound[n->id] <= 1e30))
      unpad[find(p->parent, n->id)] = true;
  }
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (!n->dead && p->newc[n->id] && unpad[find(p->parent, n->id)])
      p->newc[n->id] = 0;
  }
  free(bound);
  free(unpad);
}

/* ---------------------------------------------------------------- padding */

/* p's data as [d0][d1][rest] grown to [n0][n1][rest] with zeros. */
static void pad_param(Graph *g, Param *p, int64_t n0, int64_t n1, float fill) {
  int64_t d0 = p->dims[0], d1 = p->rank > 1 ? p->dims[1] : 1, rest = 1;
  for (int i = 2; i < p->rank; i++)
    rest *= p->dims[i];
  if (p->rank == 1)
    n1 = 1;
  float *w = arena_alloc_aligned(g->arena, sizeof(float) * (size_t)(n0 * n1 * rest), 64);
  for (int64_t i = 0; i < n0 * n1 * rest; i++)
    w[i] = fill;
  for (int64_t a = 0; a < d0; a++)
    for (int64_t b = 0; b < d1; b++)
      memcpy(w + (a * n1 + b) * rest, p->data + (a * d1 + b) * rest, sizeof(float) * (size_t)rest);
  p->data = w;
  p->dims[0] = n0;
  if (p->rank > 1)
    p->dims[1] = n1;
}

/* The new channel count of x (its own if unchanged). */
static int64_t chans(const Pad *p, const Node *x) {
  return p->newc[x->id] ? p->newc[x->id] : x->shape.d[0];
}

/* Does u read its padded input k as it is (in its class, or absorbing the
   padding with zero weights)? Every other reader gets a slice of the real
   channels (insert_slices). */
static bool reads_padded(const Pad *p, const Node *u, int k) {
  const Node *x = u->in[k];
  if (p->is_member[u->id] && p->newc[u->id] && find(p->parent, u->id) == find(p->parent, x->id))
    return true;
  return absorbs(u, k);
}

static void pad_conv(Pad *p, Node *n) {
  int64_t oc = n->attr.out_channels, noc = chans(p, n);
  /* a conv that gets a slice (a split conv, a grouped one outside the
     class) keeps its input channels, and its weight's input axis */
  int64_t ic = n->in[0]->shape.d[0];
  int64_t nic = reads_padded(p, n, 0) ? chans(p, n->in[0]) : ic;
  if (noc == oc && nic == ic)
    return;
  int64_t cg = ic / n->attr.groups;
  if (groupwise(n))
    n->attr.groups = noc / cg; /* whole zero groups; the group size stays */
  else
    cg = nic; /* one group: every input channel, the new ones with zeros */
  pad_param(p->g, n->params[P_WEIGHT], noc, cg, 0.0f);
  if (n->attr.has_bias)
    pad_param(p->g, n->params[P_BIAS], noc, 1, 0.0f);
  /* A one-group conv's padded outputs read every real input channel (with
     zero weights: 0 * inf = NaN): its kernel stores 0 there instead. A
     grouped one's read only padded input channels, which are finite. */
  if (noc != oc && !groupwise(n))
    n->attr.padded_from = oc;
  n->attr.out_channels = noc;
}

static void pad_node(Pad *p, Node *n) {
  if (n->op == OP_CONV2D)
    pad_conv(p, n);
  if (!p->newc[n->id])
    return;
  int64_t c = p->newc[n->id];
  if (n->op == OP_SCALESHIFT)
    for (int k = 0; k < n->nparams; k++)
      pad_param(p->g, n->params[k], c, 1, 0.0f);
  if (n->op == OP_BATCHNORM) /* weight 0, bias 0, mean 0, var 1: outputs 0 */
    for (int k = 0; k < n->nparams; k++)
      pad_param(p->g, n->params[k], c, 1, k == P_VAR ? 1.0f : 0.0f);
}

/* Readers of padded nodes that do not absorb the padding read a view of
   the first C channels instead; so do graph outputs. */
static int insert_slices(Pad *p, const int64_t *oldc) {
  Graph *g = p->g;
  int nn = g->nodes.len, made = 0;
  Node **slice = calloc((size_t)g->next_id + 1, sizeof *slice);
  for (int i = 0; i < nn; i++) {
    Node *u = GRAPH_NODE(g, i);
    if (u->dead)
      continue;
    for (int k = 0; k < u->nin; k++) {
      Node *x = u->in[k];
      if (x->id >= p->n || !p->newc[x->id] || reads_padded(p, u, k))
        continue;
      if (!slice[x->id]) {
        Node *s =
            ir_node_new(g, OP_SLICE, arena_printf(g->arena, "%s.unpad", x->name), &x, 1, x->loc);
        s->attr.slice_begin = 0;
        s->attr.slice_end = oldc[x->id];
        slice[x->id] = s;
        made++;
      }
      u->in[k] = slice[x->id];
    }
  }
  for (int i = 0; i < g->noutputs; i++) {
    Node *x = g->outputs[i].node;
    if (x->id >= p->n || !p->newc[x->id])
      continue;
    if (!slice[x->id]) {
      Node *s =
          ir_node_new(g, OP_SLICE, arena_printf(g->arena, "%s.unpad", x->name), &x, 1, x->loc);
      s->attr.slice_begin = 0;
      s->attr.slice_end = oldc[x->id];
      slice[x->id] = s;
      made++;
    }
    g->outputs[i].node = slice[x->id];
  }
  free(slice);
  return made;
}

void pass_pad_channels(Graph *g) {
  int n = g->next_id;
  Pad p = {.g = g, .n = n};
  p.parent = malloc(sizeof(int) * (size_t)n);
  for (int i = 0; i < n; i++)
    p.parent[i] = i;
  p.bad = calloc((size_t)n, sizeof(bool));
  p.all_pixel = calloc((size_t)n, sizeof(bool));
  p.is_member = calloc((size_t)n, sizeof(bool));
  p.newc = calloc((size_t)n, sizeof(int64_t));
  p.unit = calloc((size_t)n, sizeof(int64_t));
  build_classes(&p);
  judge_classes(&p);
  keep_padding_finite(&p);

  int64_t *oldc = calloc((size_t)n, sizeof(int64_t));
  int padded = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *x = GRAPH_NODE(g, i);
    if (x->dead)
      continue;
    if (p.newc[x->id]) {
      oldc[x->id] = x->shape.d[0];
      padded++;
    }
  }
  int64_t extra = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *x = GRAPH_NODE(g, i);
    if (!x->dead && p.newc[x->id])
      extra += (p.newc[x->id] - x->shape.d[0]) * x->shape.d[1] * x->shape.d[2];
  }
  int slices = 0;
  if (padded) {
    for (int i = 0; i < g->nodes.len; i++) {
      Node *x = GRAPH_NODE(g, i);
      if (!x->dead)
        pad_node(&p, x);
    }
    slices = insert_slices(&p, oldc);
    ir_toposort(g);
    /* Every shape again, from the padded parameters and attributes: a
       padded node whose parameters or readers disagree fails here. */
    for (int i = 0; i < g->nodes.len; i++) {
      Node *x = GRAPH_NODE(g, i);
      char err[512];
      if (x->dead || x->op == OP_INPUT)
        continue;
      int nin = x->nin; /* a fused residual is an input the op itself does not take */
      if (x->epi.residual >= 0 && x->epi.residual == nin - 1)
        x->nin--;
      bool ok = ir_infer_shape(g, x, err, sizeof err);
      x->nin = nin;
      CHECK(ok, "pad-channels: %s", err);
    }
  }
  free(oldc);
  free(p.parent);
  free(p.bad);
  free(p.all_pixel);
  free(p.is_member);
  free(p.newc);
  free(p.unit);
  if (padded)
    ir_stat(g, "pad-channels",
            "padded %d tensors to a multiple of 16 channels (+%lld values), %d slices", padded,
            (long long)extra, slices);
}

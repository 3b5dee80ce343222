/*
 * fuse_epilogue.c: residual adds and activations folded into their producer.
 *
 * contract: requires fuse-bn to have run (so conv -> BN -> add becomes
 * conv -> add); sets Node.epi, removes the fused ADD and activation
 * (OPF_ACT) nodes, may reorder nodes (stable topological order).
 *
 * A convolution's epilogue runs on its accumulators while they are still
 * in registers, so adding a residual and applying a ReLU there costs
 * almost nothing, where separate add and relu kernels would each read and
 * write the whole tensor again. ResNet's conv -> BN -> add -> ReLU becomes
 * one kernel call:
 *   - add(a, r) where a is a conv (or linear) whose only reader is the add
 *     and which has no epilogue yet: r becomes an extra input of the conv,
 *     epi.residual points at it. When both operands qualify, the one
 *     computed later is fused, so the other is ready by then.
 *   - an activation op (relu, clamp, sigmoid, hardswish, silu, gelu, ...:
 *     OPF_ACT) reading x, where x is a conv, linear, scale-shift,
 *     batchnorm, add, mean or mul with no activation yet and the activation its
 *     only reader: epi.act = ir_node_act(activation), with its parameters
 *     (clamp bounds, hardsigmoid's slope and offset, gelu's form). Every
 *     kernel with an epilogue applies any activation (backend/activation.c),
 *     so MobileNet's conv -> BN -> ReLU6 and EfficientNet's conv -> BN ->
 *     SiLU are one kernel each, as ResNet's conv -> BN -> ReLU is.
 * Nodes that are graph outputs keep their value visible and are not fused
 * into (their readers would see the post-epilogue value).
 */
#include <stdlib.h>

#include "passes.h"

static bool can_take_residual(const Graph *g, const Node *n, const int *users) {
  return (n->op == OP_CONV2D || n->op == OP_LINEAR) && users[n->id] == 1 && n->epi.residual < 0 &&
         n->epi.act.kind == ACT_NONE && !ir_is_graph_output(g, n);
}

static int fuse_residuals(Graph *g, int *users) {
  int fused = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *a = GRAPH_NODE(g, i);
    if (a->dead || a->op != OP_ADD || a->nin != 2 || a->epi.act.kind != ACT_NONE)
      continue;
    Node *x = a->in[0], *y = a->in[1];
    bool fx = can_take_residual(g, x, users) && x != y;
    bool fy = can_take_residual(g, y, users) && x != y;
    if (!fx && !fy)
      continue;
    Node *c = fx && (!fy || x->order > y->order) ? x : y;
    Node *r = c == x ? y : x;
    Node **in = arena_alloc(g->arena, sizeof(Node *) * (size_t)(c->nin + 1));
    for (int k = 0; k < c->nin; k++)
      in[k] = c->in[k];
    in[c->nin] = r;
    c->in = in;
    c->epi.residual = c->nin++;
    ir_replace_uses(g, a, c);
    a->dead = true;
    users[c->id] = users[a->id];
    fused++;
  }
  return fused;
}

/* Can p's kernel apply an activation to what it computes? */
static bool takes_activation(const Node *p) {
  return p->op == OP_CONV2D || p->op == OP_LINEAR || p->op == OP_SCALESHIFT ||
         p->op == OP_BATCHNORM || p->op == OP_ADD || p->op == OP_MEAN || p->op == OP_MUL;
}

static int fuse_activations(Graph *g, int *users) {
  int fused = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *r = GRAPH_NODE(g, i);
    if (r->dead || !(ir_ops[r->op].flags & OPF_ACT))
      continue;
    Node *p = r->in[0];
    if (!takes_activation(p) || users[p->id] != 1 || p->epi.act.kind != ACT_NONE ||
        ir_is_graph_output(g, p))
      continue;
    p->epi.act = ir_node_act(r);
    ir_replace_uses(g, r, p);
    r->dead = true;
    users[p->id] = users[r->id];
    fused++;
  }
  return fused;
}

void pass_fuse_epilogue(Graph *g) {
  int *users = malloc(sizeof(int) * (size_t)g->next_id);
  ir_count_users(g, users);
  int res = fuse_residuals(g, users);
  ir_compact(g);
  ir_toposort(g);
  ir_count_users(g, users);
  int act = fuse_activations(g, users);
  ir_compact(g);
  free(users);
  if (res || act)
    ir_stat(g, "fuse-epilogue", "fused %d residual adds and %d activations into their producers",
            res, act);
}

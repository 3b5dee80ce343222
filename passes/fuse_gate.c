/*
 * fuse_gate.c: a squeeze-excitation gate applied as the next conv reads
 * its input.
 *
 * contract: runs after layout (it fuses only into a conv that reads
 * NCHW16c, whose kernels can apply the gate); sets Node.epi.gate, removes
 * the fused MUL nodes.
 *
 * Squeeze-excitation (MobileNetV3, EfficientNet, RegNetY) ends in
 *   y = mul(x, s)      x [C,H,W], s [C,1,1] = sigmoid(fc2(act(fc1(pool(x)))))
 *   z = conv1x1(y)     the block's projection
 * and a mul kernel reads x and writes y, a whole tensor, for the conv to
 * read it once more. The gate cannot go into x's producer (s depends on
 * all of x, through the pool), but it can go into y's reader: the conv
 * reads x and multiplies each input channel by its factor as it loads it,
 * and y is never stored. The kernels do so where it costs least:
 *   - the direct NCHW16c kernel (backend/blocked.c) scales the weight
 *     vectors of an input channel once per register tile (OCB multiplies
 *     beside OCB*T fmas), not every input;
 *   - the int8, AMX and vdpbf16ps kernels convert their input (to u8, to
 *     bf16) in a pass of their own and multiply each 16-channel vector
 *     there.
 * So: mul(x, s) whose one reader is an ungrouped 1x1 conv reading it as
 * its input (not as a residual), the conv and x in NCHW16c, s one value
 * per channel ([C,1,1] or [C]), neither the mul nor anything else a graph
 * output that would need y: s becomes one more input of the conv,
 * epi.gate its index, and the conv reads x. A 1x1 conv never takes the
 * Winograd, depthwise or grouped kernels, which cannot apply a gate.
 */
#include <stdlib.h>

#include "passes.h"

/* The index of mul's full-size input when the other is one factor per
   channel of it; -1 otherwise. */
static int gated_input(const Node *m) {
  if (m->nin != 2 || m->shape.rank != 3 || m->shape.d[1] * m->shape.d[2] < 2)
    return -1;
  for (int big = 0; big < 2; big++) {
    const Shape *x = &m->in[big]->shape, *s = &m->in[1 - big]->shape;
    if (shape_eq(x, &m->shape) && s->d[0] == x->d[0] && shape_numel(s) == s->d[0])
      return big;
  }
  return -1;
}

static bool takes_gate(const Node *r, const Node *m) {
  const Attrs *a = &r->attr;
  if (r->op != OP_CONV2D || r->epi.gate >= 0 || r->in[0] != m || r->layout != LAYOUT_NCHW16C ||
      a->groups != 1 || a->kernel[0] != 1 || a->kernel[1] != 1)
    return false;
  for (int k = 1; k < r->nin; k++)
    if (r->in[k] == m)
      return false;
  return true;
}

void pass_fuse_gate(Graph *g) {
  int *users = malloc(sizeof(int) * (size_t)g->next_id);
  ir_count_users(g, users);
  int fused = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *r = GRAPH_NODE(g, i);
    if (r->dead || r->op != OP_CONV2D || r->nin < 1)
      continue;
    Node *m = r->in[0];
    int big = m->op == OP_MUL ? gated_input(m) : -1;
    if (big < 0 || users[m->id] != 1 || ir_is_graph_output(g, m) || m->epi.residual >= 0 ||
        m->epi.act.kind != ACT_NONE || m->layout != LAYOUT_NCHW16C ||
        m->in[big]->layout != LAYOUT_NCHW16C || !takes_gate(r, m))
      continue;
    Node **in = arena_alloc(g->arena, sizeof(Node *) * (size_t)(r->nin + 1));
    for (int k = 0; k < r->nin; k++)
      in[k] = r->in[k];
    in[0] = m->in[big];
    in[r->nin] = m->in[1 - big];
    r->in = in;
    r->epi.gate = r->nin++;
    m->dead = true;
    fused++;
  }
  free(users);
  ir_compact(g);
  if (fused)
    ir_stat(g, "fuse-gate", "applied %d channel gates as their convs read the input", fused);
}

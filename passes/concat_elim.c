/*
 * concat_elim.c: producers write straight into their slice of a concat.
 *
 * contract: requires layouts to be final (runs after the layout pass);
 * fixes Node.mem of the concat's producers to MEM_ALIAS into the concat
 * (kept by plan-memory) and marks concats with every input placed as
 * `elided` (no kernel); changes no node or edge.
 *
 * A concat along channels of per-sample [C][H][W] tensors puts each input
 * in a contiguous range of the output, so the producer can simply be told
 * to write there: the copy disappears. Chains compose: DenseNet's
 * concat(concat(x, n1), n2)... places the inner concat at the start of the
 * outer one, so a whole dense block fills one buffer, each layer writing its
 * new channels beside the old. In the blocked layout (NCHW16c) a channel
 * range is contiguous only when it starts on a 16-channel block.
 *
 * An input is placed when it is produced by a kernel (or is a slice of a
 * split conv), is not a graph input, view or already placed elsewhere,
 * appears once in this concat and in no other concat, and shares the
 * concat's layout. Other inputs are copied by the concat kernel as before.
 */
#include <stdlib.h>

#include "passes.h"

static bool placeable(const Graph *g, const Node *cat, const Node *x, int64_t at,
                      const int *concat_users) {
  if (x->op == OP_INPUT || x->mem.kind != MEM_NONE || x->split)
    return false;
  if ((ir_ops[x->op].flags & OPF_VIEW) && !(x->op == OP_SLICE && x->in[0]->split))
    return false;
  if (concat_users[x->id] != 1 || x->layout != cat->layout)
    return false;
  if (cat->layout == LAYOUT_NCHW16C && at % 16 != 0)
    return false;
  int seen = 0;
  for (int k = 0; k < cat->nin; k++)
    seen += cat->in[k] == x;
  return seen == 1;
}

void pass_concat_elim(Graph *g) {
  int *concat_users = calloc((size_t)g->next_id, sizeof(int));
  for (int i = 0; i < g->nodes.len; i++) {
    Node *c = GRAPH_NODE(g, i);
    if (!c->dead && c->op == OP_CONCAT)
      for (int k = 0; k < c->nin; k++)
        concat_users[c->in[k]->id]++;
  }
  int concats = 0, elided = 0, placed = 0, inputs = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *c = GRAPH_NODE(g, i);
    if (c->dead || c->op != OP_CONCAT)
      continue;
    concats++;
    int64_t at = 0, plane = c->shape.d[1] * c->shape.d[2];
    bool all = true;
    for (int k = 0; k < c->nin; k++) {
      Node *x = c->in[k];
      inputs++;
      if (placeable(g, c, x, at, concat_users)) {
        x->mem = (Mem){.kind = MEM_ALIAS,
                       .alias_of = c,
                       .offset = at * plane * (int64_t)sizeof(float),
                       .fixed = true};
        placed++;
      } else {
        all = false;
      }
      at += x->shape.d[0];
    }
    if (all) {
      c->elided = true;
      elided++;
    }
  }
  free(concat_users);
  if (concats)
    ir_stat(g, "concat-elim", "%d of %d concat inputs written in place; %d of %d concats elided",
            placed, inputs, elided, concats);
}

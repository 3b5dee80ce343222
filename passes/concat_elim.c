/*
 * concat_elim.c: producers write straight into their slice of a concat.
 *
 * contract: requires layouts to be final (runs after the layout pass);
 * fixes Node.mem of the concat's producers to MEM_ALIAS into the concat
 * (kept by plan-memory) and marks concats with every input placed as
 * `elided` (no kernel); rewrites concats whose first inputs are another
 * concat's (below), adds no node.
 *
 * A concat along channels of per-sample [C][H][W] tensors puts each input
 * in a contiguous range of the output, so the producer can simply be told
 * to write there: the copy disappears. Chains compose: DenseNet's
 * concat(concat(x, n1), n2)... places the inner concat at the start of the
 * outer one, so a whole dense block fills one buffer, each layer writing its
 * new channels beside the old. In the blocked layout (NCHW16c) a channel
 * range is contiguous only when it starts on a 16-channel block.
 *
 * Graphs that concatenate all earlier features at every step (torchvision's
 * DenseNet does `torch.cat(features, 1)`, so an exported model has
 * concat(x, n1), concat(x, n1, n2), concat(x, n1, n2, n3), ...) are first
 * rewritten into that chain: a concat whose first inputs are exactly the
 * inputs of an earlier concat of the same layout reads that concat instead
 * (the longest such), a concat with the same inputs as an earlier one is
 * replaced by it, and a concat of one input by that input. Both are the same values; then every
 * feature is in one concat only and can be placed.
 *
 * An input is placed when it is produced by a kernel (or is a slice of a
 * split conv), is not a graph input, view or already placed elsewhere,
 * appears once in this concat and in no other concat, and shares the
 * concat's layout. Other inputs are copied by the concat kernel as before.
 */
#include <stdlib.h>
#include <string.h>

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

/* Whether the inputs p had are the first ones c had (both as written,
   before any rewriting: orig[node id], norig[node id]). */
static bool prefix_of(const Node *p, const Node *c, Node ***orig, const int *norig) {
  if (norig[p->id] > norig[c->id] || p->layout != c->layout)
    return false;
  for (int k = 0; k < norig[p->id]; k++)
    if (orig[p->id][k] != orig[c->id][k])
      return false;
  return true;
}

/* concat(a, b, c) after concat(a, b) reads concat(concat(a, b), c); a
   repeated concat is replaced by the first, concat(a) by a. Returns the
   concats rewritten. */
static int chain_prefixes(Graph *g) {
  Node ***orig = calloc((size_t)g->next_id, sizeof *orig);
  int *norig = calloc((size_t)g->next_id, sizeof *norig);
  for (int i = 0; i < g->nodes.len; i++) {
    Node *c = GRAPH_NODE(g, i);
    if (c->dead || c->op != OP_CONCAT)
      continue;
    orig[c->id] = malloc(sizeof(Node *) * (size_t)c->nin);
    memcpy(orig[c->id], c->in, sizeof(Node *) * (size_t)c->nin);
    norig[c->id] = c->nin;
  }
  int rewritten = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *c = GRAPH_NODE(g, i);
    if (c->dead || c->op != OP_CONCAT)
      continue;
    if (c->nin == 1 && c->in[0]->layout == c->layout) { /* a copy: read the input */
      ir_replace_uses(g, c, c->in[0]);
      c->dead = true;
      rewritten++;
      continue;
    }
    Node *best = NULL;
    for (int j = 0; j < i; j++) {
      Node *p = GRAPH_NODE(g, j);
      if (!p->dead && p->op == OP_CONCAT && norig[p->id] >= 2 && prefix_of(p, c, orig, norig) &&
          (!best || norig[p->id] > norig[best->id]))
        best = p;
    }
    if (!best)
      continue;
    rewritten++;
    int np = norig[best->id], nc = norig[c->id];
    if (np == nc) {
      ir_replace_uses(g, c, best);
      c->dead = true;
      continue;
    }
    c->in[0] = best;
    for (int k = np; k < nc; k++)
      c->in[k - np + 1] = orig[c->id][k];
    c->nin = nc - np + 1;
  }
  for (int i = 0; i < g->next_id; i++)
    free(orig[i]);
  free(orig);
  free(norig);
  return rewritten;
}

void pass_concat_elim(Graph *g) {
  int chained = chain_prefixes(g);
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
    /* an input's offset is its first channel times the plane (one value
       per feature for a concat of vectors) */
    int64_t at = 0, plane = c->shape.rank == 3 ? c->shape.d[1] * c->shape.d[2] : 1;
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
  if (chained)
    ir_stat(
        g, "concat-elim",
        "%d concats rewritten to read an earlier concat of their first inputs, or their one input",
        chained);
}

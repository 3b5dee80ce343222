/*
 * fold_1x1.c: sibling 1x1 convolutions merged into one wider convolution.
 *
 * contract: requires bound parameter data and the epilogue pass (siblings
 * must agree on their epilogue); replaces each group of siblings by one
 * CONV2D marked `split` and one SLICE per former conv (same name, same
 * readers); keeps a valid execution order (the merged conv and its slices
 * take the place of the first sibling).
 *
 * GoogLeNet's Inception module reads its input with three 1x1 convs (the
 * branch1 conv and the reducers in front of the 3x3 and 5x5 convs). Each
 * streams the whole input once; merged, the input is read once and the
 * kernel has 3x the output channels to tile over, as TensorRT does. The
 * merged conv is `split`: it has no storage of its own; every slice gets
 * its own buffer (possibly a slice of a concat, via concat-elim) and the
 * kernel writes each channel range straight there, so no copy is ever made.
 *
 * Siblings: CONV2D nodes reading the same tensor as their only input, with
 * kernel 1x1, no padding, one group, the same stride and activation, no
 * residual, the same layout, and not graph outputs; and either all with a
 * multiple of 16 output channels or none. The layout pass blocks (NCHW16c)
 * a split conv only when every slice starts and ends on a 16-channel
 * block, and pad-channels pads no split conv: GoogLeNet's inception4b
 * merged 160 + 112 + 24 channels into a conv that ran the generic NCHW
 * kernel (1.05 ms in bf16, about 3x slower than the blocked kernels on
 * the same arithmetic) plus two reorders. Now the 160 and 112 merge into a
 * blocked conv and the 24 stays alone (pad-channels pads it to 32).
 * Siblings none of which is a multiple of 16 still merge among themselves
 * (slices need not start on a block then: each has storage of its own, and
 * the conv runs NCHW as they would alone).
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static bool candidate(const Graph *g, const Node *c) {
  const Attrs *a = &c->attr;
  return !c->dead && c->op == OP_CONV2D && c->nin == 1 && !c->split && a->kernel[0] == 1 &&
         a->kernel[1] == 1 && a->groups == 1 && !a->pad[0] && !a->pad[1] && !a->pad[2] &&
         !a->pad[3] && c->epi.residual < 0 && !ir_is_graph_output(g, c);
}

static bool same_kind(const Node *a, const Node *b) {
  return a->in[0] == b->in[0] && a->attr.stride[0] == b->attr.stride[0] &&
         a->attr.stride[1] == b->attr.stride[1] && ir_act_eq(&a->epi.act, &b->epi.act) &&
         a->layout == b->layout && (a->shape.d[0] % 16 == 0) == (b->shape.d[0] % 16 == 0);
}

/* "a.b.{c.conv,d.0.conv}" from the siblings' names. */
static char *merged_name(Graph *g, Node **sib, int n) {
  size_t pre = strlen(sib[0]->name);
  for (int i = 1; i < n; i++) {
    size_t k = 0;
    while (k < pre && sib[i]->name[k] == sib[0]->name[k])
      k++;
    pre = k;
  }
  while (pre > 0 && sib[0]->name[pre - 1] != '.')
    pre--;
  size_t len = pre + 3;
  for (int i = 0; i < n; i++)
    len += strlen(sib[i]->name) - pre + 1;
  char *s = arena_alloc(g->arena, len);
  memcpy(s, sib[0]->name, pre);
  char *p = s + pre;
  *p++ = '{';
  for (int i = 0; i < n; i++) {
    size_t l = strlen(sib[i]->name) - pre;
    memcpy(p, sib[i]->name + pre, l);
    p += l;
    *p++ = i + 1 < n ? ',' : '}';
  }
  *p = 0;
  return s;
}

/* Merges sib[0..n) into one split conv; returns it. */
static Node *merge(Graph *g, Node **sib, int n) {
  Node *x = sib[0]->in[0];
  int64_t total = 0, cin = x->shape.d[0];
  for (int i = 0; i < n; i++)
    total += sib[i]->attr.out_channels;
  Node *m = ir_node_new(g, OP_CONV2D, merged_name(g, sib, n), &x, 1, sib[0]->loc);
  m->attr = sib[0]->attr;
  m->attr.out_channels = total;
  m->attr.has_bias = true;
  m->epi.act = sib[0]->epi.act;
  m->layout = sib[0]->layout;
  char err[256];
  bool ok = ir_infer_shape(g, m, err, sizeof err);
  (void)ok;
  float *w = arena_alloc_aligned(g->arena, sizeof(float) * (size_t)(total * cin), 64);
  float *b = arena_alloc_aligned(g->arena, sizeof(float) * (size_t)total, 64);
  m->params[P_WEIGHT]->data = w;
  m->params[P_BIAS]->data = b;
  m->split = true;
  int64_t at = 0;
  for (int i = 0; i < n; i++) {
    Node *c = sib[i];
    int64_t oc = c->attr.out_channels;
    memcpy(w + at * cin, c->params[P_WEIGHT]->data, sizeof(float) * (size_t)(oc * cin));
    if (c->attr.has_bias)
      memcpy(b + at, c->params[P_BIAS]->data, sizeof(float) * (size_t)oc);
    Node *s = ir_node_new(g, OP_SLICE, c->name, &m, 1, c->loc);
    s->attr.slice_begin = at;
    s->attr.slice_end = at + oc;
    s->layout = c->layout;
    ok = ir_infer_shape(g, s, err, sizeof err);
    ir_replace_uses(g, c, s);
    c->dead = true;
    at += oc;
  }
  return m;
}

void pass_fold_1x1(Graph *g) {
  int before = g->nodes.len, merged = 0, groups = 0;
  Node **sib = malloc(sizeof(Node *) * (size_t)(before + 1));
  Node **first = calloc((size_t)g->next_id + (size_t)before * 4 + 16, sizeof(Node *));
  char *taken = calloc((size_t)g->next_id + (size_t)before * 4 + 16, 1);
  for (int i = 0; i < before; i++) {
    Node *c = GRAPH_NODE(g, i);
    if (taken[c->id] || !candidate(g, c))
      continue;
    int n = 0;
    for (int j = i; j < before; j++) {
      Node *d = GRAPH_NODE(g, j);
      if (!taken[d->id] && candidate(g, d) && same_kind(c, d))
        sib[n++] = d;
    }
    if (n < 2)
      continue;
    for (int k = 0; k < n; k++)
      taken[sib[k]->id] = 1;
    Node *m = merge(g, sib, n);
    first[c->id] = m; /* the merged conv replaces its first sibling */
    merged += n;
    groups++;
  }
  if (groups) {
    /* Rebuild the order: each merged conv and its slices where the first
       sibling was. New nodes are at the end of the list. */
    int total = g->nodes.len;
    void **items = malloc(sizeof(void *) * (size_t)total);
    int k = 0;
    for (int i = 0; i < before; i++) {
      Node *x = GRAPH_NODE(g, i);
      if (first[x->id]) {
        Node *m = first[x->id];
        items[k++] = m;
        for (int j = before; j < total; j++) {
          Node *s = GRAPH_NODE(g, j);
          if (s->op == OP_SLICE && s->in[0] == m)
            items[k++] = s;
        }
      }
      items[k++] = x;
    }
    memcpy(g->nodes.items, items, sizeof(void *) * (size_t)k);
    g->nodes.len = k;
    free(items);
    ir_compact(g);
    ir_stat(g, "fold-1x1", "merged %d sibling 1x1 convs into %d", merged, groups);
  }
  free(sib);
  free(first);
  free(taken);
}

/*
 * layout.c: choose the activation layout of every node (NCHW or NCHW16c).
 *
 * contract: requires shapes and a valid execution order; runs after the
 * fusion and folding passes and before concat-elim and plan-memory. Sets
 * Node.layout of every live node and inserts REORDER nodes where a consumer
 * needs its input in another layout; keeps a valid execution order. Graph
 * inputs stay NCHW (the host hands them over so) and rank-3 graph outputs
 * are delivered NCHW.
 *
 * The blocked layout [C/16][H][W][16] is what the fast kernels work on
 * (backend/blocked.c): 16 channels of one pixel fill one AVX-512 vector.
 * A tensor is made blocked only when its channel count is a multiple of 16
 * (pad-channels, which runs before, pads the others where that is exact and
 * cheap), so a blocked tensor has exactly the size of its NCHW form (no padding:
 * memory planning, slices and concat offsets need no special case; a
 * channel range that starts on a block is contiguous in both layouts).
 *
 * Who is blocked:
 *   conv2d       when its output channels (and, grouped, the channels of
 *                each group) are multiples of 16, and, if split, every
 *                slice starts and ends on a block. It reads its input in
 *                either layout (a scalar broadcast per input channel), so
 *                the first layer reads the NCHW image directly. Also a
 *                grouped conv with Cg = 1, 2, 4 or 8 input and output
 *                channels per group (depthwise, ResNeXt) and 16-multiple
 *                channel counts: backend/grouped.c; its input is blocked.
 *                And any other grouped conv with 16-multiple channel
 *                counts (RegNetX's groups of 24): backend/blocked.c over a
 *                window of input blocks per output block; input blocked.
 *   pooling, scale-shift, batchnorm, the activations (relu, clamp,
 *   sigmoid, ...), scale, add, mean, concat, channel_shuffle, layernorm,
 *   dropout      when the output is a multiple of 16 channels and the
 *                (first, for add/mean/concat any) input is blocked: they
 *                follow their producer and never start a blocked region.
 *   mul          as add for its full-size inputs; the per-channel one
 *                ([C, 1, 1] or [C]) is the same bytes in either layout.
 *   slice        the layout of its input when the range is block aligned.
 *   the rest     NCHW (lrn, linear, flatten, softmax).
 * A tensor of 1x1 pixels with a multiple of 16 channels is the same bytes
 * in both layouts, so no reorder is inserted for it (the global pool in
 * front of a classifier), unless it is the host's buffer (a graph input,
 * or a view of one), which need not be 64-byte aligned as the blocked
 * kernels' vector loads require.
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static bool c16(const Node *x) { return x->shape.rank == 3 && x->shape.d[0] % 16 == 0; }

/* Is x the host's buffer: a graph input, or a view of one? */
static bool host_buffer(const Node *x) {
  while ((ir_ops[x->op].flags & OPF_VIEW) && x->nin == 1)
    x = x->in[0];
  return x->op == OP_INPUT;
}

/* Is x usable by a consumer that wants layout L? A 1x1 map of 16k
   channels is the same bytes in both layouts, but the blocked kernels
   read it with 64-byte aligned vector loads: the host's buffers (graph
   inputs) are only float-aligned, so those are reordered (copied into
   the arena) all the same. */
static bool compatible(const Node *x, Layout L) {
  if (x->layout == L || x->shape.rank != 3)
    return true;
  return x->shape.d[1] * x->shape.d[2] == 1 && x->shape.d[0] % 16 == 0 && !host_buffer(x);
}

static bool conv_blockable(const Graph *g, const Node *n) {
  const Attrs *a = &n->attr;
  if (!c16(n) || n->in[0]->shape.rank != 3)
    return false;
  if (a->groups > 1) {
    int64_t icg = n->in[0]->shape.d[0] / a->groups, ocg = n->shape.d[0] / a->groups;
    if ((icg % 16 || ocg % 16) && !ir_conv_small_groups(n, 16) && !ir_conv_window_groups(n, 16))
      return false;
  }
  int nseg = 0;
  Node **segs = ir_split_slices(g, n, &nseg);
  bool aligned = true;
  for (int i = 0; i < nseg; i++)
    aligned &= segs[i]->attr.slice_begin % 16 == 0 && segs[i]->shape.d[0] % 16 == 0;
  free(segs);
  return aligned;
}

static Layout choose(const Graph *g, const Node *n) {
  switch (n->op) {
  case OP_CONV2D:
    return conv_blockable(g, n) ? LAYOUT_NCHW16C : LAYOUT_NCHW;
  case OP_MAXPOOL:
  case OP_AVGPOOL:
  case OP_ADAPTIVE_AVGPOOL:
  case OP_ADAPTIVE_MAXPOOL:
  case OP_SCALESHIFT:
  case OP_BATCHNORM:
  case OP_RELU:
  case OP_SCALE:
  case OP_DROPOUT:
  case OP_CHANNEL_SHUFFLE:
  case OP_LAYERNORM:
    return c16(n) && c16(n->in[0]) && n->in[0]->layout == LAYOUT_NCHW16C ? LAYOUT_NCHW16C
                                                                         : LAYOUT_NCHW;
  case OP_MUL: {
    /* follows its full-size input(s); the per-channel one ([C, 1, 1] or
       [C]) is the same bytes in both layouts */
    if (!c16(n))
      return LAYOUT_NCHW;
    bool any = false;
    for (int k = 0; k < n->nin; k++)
      any |= shape_eq(&n->in[k]->shape, &n->shape) && n->in[k]->layout == LAYOUT_NCHW16C;
    return any ? LAYOUT_NCHW16C : LAYOUT_NCHW;
  }
  case OP_ADD:
  case OP_MEAN:
  case OP_CONCAT: {
    if (!c16(n))
      return LAYOUT_NCHW;
    bool any = false;
    for (int k = 0; k < n->nin; k++) {
      if (!c16(n->in[k]))
        return LAYOUT_NCHW;
      any |= n->in[k]->layout == LAYOUT_NCHW16C;
    }
    return any ? LAYOUT_NCHW16C : LAYOUT_NCHW;
  }
  case OP_SLICE:
    if (n->in[0]->split)
      return n->in[0]->layout;
    return c16(n) && n->attr.slice_begin % 16 == 0 && n->in[0]->layout == LAYOUT_NCHW16C
               ? LAYOUT_NCHW16C
               : LAYOUT_NCHW;
  default:
    if (ir_ops[n->op].flags & OPF_ACT) /* like relu */
      return c16(n) && c16(n->in[0]) && n->in[0]->layout == LAYOUT_NCHW16C ? LAYOUT_NCHW16C
                                                                           : LAYOUT_NCHW;
    return LAYOUT_NCHW;
  }
}

/* Does input k of n accept any layout? */
static bool any_layout_input(const Node *n, int k) {
  if (n->op == OP_CONV2D && k == 0 && n->layout == LAYOUT_NCHW16C && !ir_conv_small_groups(n, 16) &&
      !ir_conv_window_groups(n, 16))
    return true; /* the blocked conv broadcasts inputs from either layout */
  if (n->op == OP_SLICE && n->in[0]->split)
    return true; /* not a read: the producer writes the slice */
  return false;
}

typedef struct {
  Node *from;
  Layout to;
  Node *r;
} Reorder;

static Node *reorder_of(Graph *g, Node *x, Layout L, Reorder **cache, int *n, int *cap) {
  for (int i = 0; i < *n; i++)
    if ((*cache)[i].from == x && (*cache)[i].to == L)
      return (*cache)[i].r;
  char *name =
      arena_printf(g->arena, "%s.%s", x->name, L == LAYOUT_NCHW16C ? "to_nchw16c" : "to_nchw");
  Node *r = ir_node_new(g, OP_REORDER, name, &x, 1, x->loc);
  r->shape = x->shape;
  r->layout = L;
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 16;
    *cache = realloc(*cache, sizeof **cache * (size_t)*cap);
  }
  (*cache)[(*n)++] = (Reorder){x, L, r};
  return r;
}

void pass_layout(Graph *g) {
  Reorder *cache = NULL;
  int ncache = 0, cap = 0, nblocked = 0;
  int nn = g->nodes.len; /* reorders appended past nn are already final */
  for (int i = 0; i < nn; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (n->dead)
      continue;
    n->layout = n->op == OP_INPUT ? LAYOUT_NCHW : choose(g, n);
    nblocked += n->layout == LAYOUT_NCHW16C;
    for (int k = 0; k < n->nin; k++)
      if (!any_layout_input(n, k) && !compatible(n->in[k], n->layout))
        n->in[k] = reorder_of(g, n->in[k], n->layout, &cache, &ncache, &cap);
  }
  for (int i = 0; i < g->noutputs; i++) {
    Node *o = g->outputs[i].node;
    if (!compatible(o, LAYOUT_NCHW))
      g->outputs[i].node = reorder_of(g, o, LAYOUT_NCHW, &cache, &ncache, &cap);
  }
  free(cache);
  if (ncache)
    ir_toposort(g);
  ir_stat(g, "layout", "%d of %d nodes in nchw16c, %d reorders", nblocked, nn, ncache);
}

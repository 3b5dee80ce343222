/*
 * plan_memory.c: where every activation lives, in one arena.
 *
 * contract: requires shapes and a valid execution order (g->nodes); keeps
 * any Mem a previous pass fixed (concat slices); sets Node.mem of every
 * live node (split producers keep MEM_NONE: their slices own storage),
 * g->arena_bytes, g->naive_bytes and g->lower_bound_bytes.
 *
 * The idea. A *buffer* is a tensor that owns storage: every node that is not
 * a graph input and not an alias of another (views such as flatten, slices
 * written straight into a concat). A buffer is live from the step that
 * writes it to the last step that reads it or any alias of it; graph outputs
 * stay live to the end, since the forward function copies them out last.
 * Elementwise ops (relu, add, scale, ...) whose input buffer dies at that
 * very step write in place: the output joins the input's buffer.
 *
 * The order itself is a choice: where branches allow, a memory-aware
 * topological order (run the ready node that allocates least net of what
 * it frees) can lower the peak; it is kept when it lowers the bound.
 *
 * Placement is greedy, as TFLite's arena planner does: buffers one by one,
 * each at the lowest-waste gap among the offsets not used by a buffer live
 * at an overlapping time (best fit, ties to the lower offset; or first
 * fit), 64-byte aligned. The order matters and no single one is best on
 * every graph, so the planner tries several (by size, by size x lifetime,
 * by lifetime, by first use; best and first fit) and keeps the smallest. The lower bound is the
 * largest total of buffers live at one step of the order; the naive size is the sum of all buffers.
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

typedef struct {
  Node *root;      /* the node that owns the storage */
  int64_t bytes;   /* 64-aligned */
  int first, last; /* live steps, inclusive */
  int64_t offset;  /* -1 until placed */
  int merged_into; /* -1, or the buffer this one was folded into (in place) */
} Buf;

static int64_t align64(int64_t x) { return (x + 63) & ~(int64_t)63; }

/* The node whose storage n uses, following aliases. */
static Node *storage_root(Node *n) {
  while (n->mem.kind == MEM_ALIAS)
    n = n->mem.alias_of;
  return n;
}

typedef struct {
  Buf *bufs;
  int nbufs;
  int *buf_of; /* node id -> buffer index, -1 for inputs */
} Plan;

static int find(Plan *p, int b) {
  while (p->bufs[b].merged_into >= 0)
    b = p->bufs[b].merged_into;
  return b;
}

/* A SLICE of a split producer is not a view: it owns storage the producer
   writes at its own step. */
static bool is_split_slice(const Node *x) { return x->op == OP_SLICE && x->in[0]->split; }

/* The step at which x's kernel writes x's storage, or -1 for nodes that
   write nothing (views, elided concats, split producers themselves). */
static int write_step(const Node *x) {
  if (is_split_slice(x))
    return x->in[0]->order;
  if ((ir_ops[x->op].flags & OPF_VIEW) || x->elided || x->split || x->op == OP_INPUT)
    return -1;
  return x->order;
}

/* Assign aliases for views and collect buffers with their live ranges. */
static void collect(Graph *g, Plan *p, bool in_place) {
  int nn = g->nodes.len;
  p->bufs = calloc((size_t)nn + 1, sizeof(Buf));
  p->buf_of = malloc(sizeof(int) * (size_t)g->next_id);
  for (int i = 0; i < g->next_id; i++)
    p->buf_of[i] = -1;
  /* Start from scratch, keeping only what earlier passes fixed. */
  for (int i = 0; i < nn; i++) {
    Node *x = GRAPH_NODE(g, i);
    x->order = i;
    if (!x->mem.fixed)
      x->mem = (Mem){0};
  }
  for (int i = 0; i < g->ninputs; i++) {
    Node *x = g->inputs[i].node;
    x->mem = (Mem){.kind = MEM_INPUT, .index = i};
  }
  for (int i = 0; i < nn; i++) {
    Node *x = GRAPH_NODE(g, i);
    if (x->op == OP_INPUT || x->mem.fixed || !(ir_ops[x->op].flags & OPF_VIEW) || is_split_slice(x))
      continue;
    int64_t off = 0;
    if (x->op == OP_SLICE)
      off = x->attr.slice_begin * x->shape.d[1] * x->shape.d[2] * (int64_t)sizeof(float);
    x->mem = (Mem){.kind = MEM_ALIAS, .alias_of = x->in[0], .offset = off};
  }
  /* Buffers for every storage root, in order. */
  for (int i = 0; i < nn; i++) {
    Node *x = GRAPH_NODE(g, i);
    if (x->op == OP_INPUT || x->mem.kind == MEM_ALIAS || x->split)
      continue;
    Buf *b = &p->bufs[p->nbufs];
    b->root = x;
    b->bytes = align64(shape_numel(&x->shape) * (int64_t)sizeof(float));
    int w = write_step(x);
    b->first = b->last = w >= 0 ? w : i;
    b->offset = -1;
    b->merged_into = -1;
    p->buf_of[x->id] = p->nbufs++;
  }
  /* Aliases share their root's buffer; a write into an alias (a concat
     slice) makes the buffer live from that step on. */
  for (int i = 0; i < nn; i++) {
    Node *x = GRAPH_NODE(g, i);
    if (x->mem.kind != MEM_ALIAS)
      continue;
    Node *r = storage_root(x);
    p->buf_of[x->id] = r->mem.kind == MEM_INPUT ? -1 : p->buf_of[r->id];
    int b = p->buf_of[x->id], w = write_step(x);
    if (b >= 0 && w >= 0 && w < p->bufs[b].first)
      p->bufs[b].first = w;
  }
  /* Uses extend the live range; in-place ops merge buffers. */
  for (int i = 0; i < nn; i++) {
    Node *x = GRAPH_NODE(g, i);
    if (is_split_slice(x))
      continue; /* not a read of the producer: the producer writes it */
    for (int k = 0; k < x->nin; k++) {
      int b = p->buf_of[x->in[k]->id];
      if (b >= 0) {
        b = find(p, b);
        if (p->bufs[b].last < i)
          p->bufs[b].last = i;
      }
    }
    if (!in_place || !(ir_ops[x->op].flags & OPF_ELTWISE) || x->mem.kind == MEM_ALIAS)
      continue;
    int ob = p->buf_of[x->id];
    if (ob < 0 || p->bufs[ob].root != x)
      continue;
    for (int k = 0; k < x->nin; k++) {
      int ib = p->buf_of[x->in[k]->id];
      if (ib < 0)
        continue;
      ib = find(p, ib);
      /* The input's storage must be exactly the input tensor (same size,
         same start) and must die here. */
      if (storage_root(x->in[k]) != x->in[k] || p->bufs[ib].root != x->in[k])
        continue;
      if (p->bufs[ib].bytes != p->bufs[ob].bytes || p->bufs[ib].last != i)
        continue;
      /* Sizes are rounded to 64 bytes: a broadcast operand (a mul's
         [C,1,1] scale) may round to the size of the output it is not. */
      if (shape_numel(&x->in[k]->shape) != shape_numel(&x->shape))
        continue;
      bool read_later = false;
      for (int j = i + 1; j < nn && !read_later; j++) {
        Node *y = GRAPH_NODE(g, j);
        for (int q = 0; q < y->nin; q++) {
          int yb = p->buf_of[y->in[q]->id];
          if (yb >= 0 && find(p, yb) == ib)
            read_later = true;
        }
      }
      bool is_output = false;
      for (int q = 0; q < g->noutputs; q++) {
        int yb = p->buf_of[g->outputs[q].node->id];
        if (yb >= 0 && find(p, yb) == ib)
          is_output = true;
      }
      if (read_later || is_output)
        continue;
      p->bufs[ob].merged_into = ib;
      x->mem = (Mem){.kind = MEM_ALIAS, .alias_of = p->bufs[ib].root, .offset = 0};
      p->buf_of[x->id] = ib;
      break;
    }
  }
  for (int q = 0; q < g->noutputs; q++) {
    int b = p->buf_of[g->outputs[q].node->id];
    if (b >= 0)
      p->bufs[find(p, b)].last = nn;
  }
  for (int b = 0; b < p->nbufs; b++)
    if (p->bufs[b].merged_into < 0 && p->bufs[b].last < p->bufs[b].first)
      p->bufs[b].last = p->bufs[b].first;
}

/* Placement orders tried; the smallest arena wins. Greedy by size is
   TFLite's default; the others win on some graphs (long-lived concat
   buffers in DenseNet, many mid-sized branches in Inception-v4). */
typedef enum { BY_SIZE, BY_AREA, BY_LIFETIME, BY_FIRST, ORDER_COUNT } PlaceOrder;

static int64_t area(const Buf *b) { return b->bytes * (int64_t)(b->last - b->first + 1); }

static int cmp_place(const void *a, const void *b, void *ctx) {
  const Buf *x = *(Buf *const *)a, *y = *(Buf *const *)b;
  int64_t kx = 0, ky = 0;
  switch (*(const PlaceOrder *)ctx) {
  case BY_SIZE:
    kx = x->bytes, ky = y->bytes;
    break;
  case BY_AREA:
    kx = area(x), ky = area(y);
    break;
  case BY_LIFETIME:
    kx = x->last - x->first, ky = y->last - y->first;
    break;
  case BY_FIRST:
    kx = -x->first, ky = -y->first;
    break;
  case ORDER_COUNT:
    break;
  }
  if (kx != ky)
    return kx < ky ? 1 : -1;
  if (x->bytes != y->bytes)
    return x->bytes < y->bytes ? 1 : -1;
  return x->first - y->first;
}

static bool overlaps_in_time(const Buf *a, const Buf *b) {
  return a->first <= b->last && b->first <= a->last;
}

static int cmp_offset(const void *a, const void *b) {
  const Buf *x = *(Buf *const *)a, *y = *(Buf *const *)b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Places `order` (n buffers) one by one: each at the best-fitting gap
   between the buffers already placed that overlap it in time (or, with
   first_fit, at the lowest gap that fits); returns the arena size. */
static int64_t place(Buf **order, int n, bool first_fit, Buf **placed, Buf **conf) {
  int np = 0;
  int64_t top = 0;
  for (int i = 0; i < n; i++) {
    Buf *x = order[i];
    int nc = 0;
    for (int j = 0; j < np; j++)
      if (overlaps_in_time(placed[j], x))
        conf[nc++] = placed[j];
    qsort(conf, (size_t)nc, sizeof *conf, cmp_offset);
    int64_t best = -1, best_waste = INT64_MAX, cur = 0;
    for (int j = 0; j < nc; j++) {
      int64_t gap = conf[j]->offset - cur;
      if (gap >= x->bytes && gap - x->bytes < best_waste) {
        best = cur;
        best_waste = gap - x->bytes;
        if (first_fit)
          break;
      }
      if (conf[j]->offset + conf[j]->bytes > cur)
        cur = conf[j]->offset + conf[j]->bytes;
    }
    x->offset = best >= 0 ? best : cur;
    if (x->offset + x->bytes > top)
      top = x->offset + x->bytes;
    placed[np++] = x;
  }
  return top;
}

/* The most bytes live at one step of the order: no placement can do
   better. */
static int64_t lower_bound(const Plan *p, int nsteps) {
  int64_t lb = 0;
  for (int s = 0; s <= nsteps; s++) {
    int64_t live = 0;
    for (int b = 0; b < p->nbufs; b++)
      if (p->bufs[b].merged_into < 0 && p->bufs[b].first <= s && s <= p->bufs[b].last)
        live += p->bufs[b].bytes;
    if (live > lb)
      lb = live;
  }
  return lb;
}

static void finish(Graph *g, Plan *p) {
  int64_t naive = 0, top = 0;
  for (int b = 0; b < p->nbufs; b++) {
    Buf *x = &p->bufs[b];
    naive += x->bytes;
    if (x->merged_into >= 0)
      continue;
    x->root->mem = (Mem){.kind = MEM_ARENA, .offset = x->offset};
    if (x->offset + x->bytes > top)
      top = x->offset + x->bytes;
  }
  int64_t lb = lower_bound(p, g->nodes.len);
  g->arena_bytes = top;
  g->naive_bytes = naive;
  g->lower_bound_bytes = lb;
  free(p->bufs);
  free(p->buf_of);
}

/* Exact search: places buffers in time order under `cap` bytes, trying for
   each the ends of every gap that fits (low ends first), backtracking on
   failure; gives up after `*budget` placements. Finds the packings greedy
   orders miss, such as a pre-activation ResNet chain, whose blocks must
   alternate between the bottom and the top of the arena. */
static bool place_exact(Buf **order, int i, int n, int64_t cap, long *budget, Buf **conf) {
  if (i == n)
    return true;
  if (--*budget < 0)
    return false;
  Buf *x = order[i];
  int nc = 0;
  for (int j = 0; j < i; j++)
    if (overlaps_in_time(order[j], x))
      conf[nc++] = order[j];
  qsort(conf, (size_t)nc, sizeof *conf, cmp_offset);
  int64_t cand[2 * 64 + 2];
  int ncand = 0;
  int64_t cur = 0;
  for (int j = 0; j <= nc && ncand < 2 * 64; j++) {
    int64_t end = j < nc ? conf[j]->offset : cap;
    if (end - cur >= x->bytes) {
      cand[ncand++] = cur;
      if (end - x->bytes != cur)
        cand[ncand++] = end - x->bytes;
    }
    if (j < nc && conf[j]->offset + conf[j]->bytes > cur)
      cur = conf[j]->offset + conf[j]->bytes;
  }
  /* conf is reused by the recursion: candidates were copied out. */
  for (int k = 0; k < ncand; k++) {
    x->offset = cand[k];
    if (place_exact(order, i + 1, n, cap, budget, conf + nc))
      return true;
    if (*budget < 0)
      return false;
  }
  return false;
}

static int cmp_first(const void *a, const void *b) {
  const Buf *x = *(Buf *const *)a, *y = *(Buf *const *)b;
  if (x->first != y->first)
    return x->first - y->first;
  return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

/* Bytes of the buffer a node creates if it owns storage (0 for inputs,
   views, nodes placed inside another, split producers). */
static int64_t own_bytes(const Node *x) {
  if (x->op == OP_INPUT || x->split || x->mem.fixed || x->elided ||
      ((ir_ops[x->op].flags & OPF_VIEW) && !is_split_slice(x)))
    return 0;
  return align64(shape_numel(&x->shape) * (int64_t)sizeof(float));
}

/* A memory-aware topological order: at each step, of the nodes whose
   inputs are computed, run the one that allocates the least net of what
   it frees (inputs it reads last), ties to the current order. Inception
   branches then run small-first and free their inputs early. */
static void memory_order(Graph *g, void **out) {
  int n = g->nodes.len;
  int *readers = calloc((size_t)g->next_id, sizeof(int));
  char *done = calloc((size_t)g->next_id, 1), *placed = calloc((size_t)n, 1);
  for (int i = 0; i < n; i++) {
    Node *x = GRAPH_NODE(g, i);
    for (int k = 0; k < x->nin; k++)
      readers[x->in[k]->id]++;
  }
  for (int q = 0; q < g->noutputs; q++)
    readers[g->outputs[q].node->id] += 1 << 20; /* never freed */
  for (int m = 0; m < n; m++) {
    int pick = -1;
    int64_t best = INT64_MAX;
    for (int i = 0; i < n; i++) {
      if (placed[i])
        continue;
      Node *x = GRAPH_NODE(g, i);
      bool ready = true;
      for (int k = 0; k < x->nin && ready; k++)
        ready = done[x->in[k]->id];
      if (!ready)
        continue;
      int64_t score = own_bytes(x);
      for (int k = 0; k < x->nin; k++)
        if (readers[x->in[k]->id] == 1)
          score -= own_bytes(x->in[k]);
      if (score < best) {
        best = score;
        pick = i;
      }
    }
    placed[pick] = 1;
    Node *x = GRAPH_NODE(g, pick);
    done[x->id] = 1;
    for (int k = 0; k < x->nin; k++)
      readers[x->in[k]->id]--;
    out[m] = x;
  }
  free(readers);
  free(done);
  free(placed);
}

/* Keeps the memory-aware order if it lowers the bound. */
static void choose_order(Graph *g) {
  int n = g->nodes.len;
  void **orig = malloc(sizeof(void *) * (size_t)(n + 1));
  void **alt = malloc(sizeof(void *) * (size_t)(n + 1));
  memcpy(orig, g->nodes.items, sizeof(void *) * (size_t)n);
  Plan p = {0};
  collect(g, &p, true);
  int64_t lb0 = lower_bound(&p, n);
  free(p.bufs);
  free(p.buf_of);
  memory_order(g, alt);
  memcpy(g->nodes.items, alt, sizeof(void *) * (size_t)n);
  p = (Plan){0};
  collect(g, &p, true);
  int64_t lb1 = lower_bound(&p, n);
  free(p.bufs);
  free(p.buf_of);
  if (lb1 < lb0)
    ir_stat(g, "plan-memory", "a memory-aware order lowers the bound from %lld to %lld bytes",
            (long long)lb0, (long long)lb1);
  else
    memcpy(g->nodes.items, orig, sizeof(void *) * (size_t)n);
  for (int i = 0; i < n; i++)
    GRAPH_NODE(g, i)->order = i;
  free(orig);
  free(alt);
}

void pass_plan_memory(Graph *g) {
  choose_order(g);
  Plan p = {0};
  collect(g, &p, true);
  size_t cap = (size_t)p.nbufs + 1;
  Buf **order = malloc(sizeof(Buf *) * cap), **placed = malloc(sizeof(Buf *) * cap);
  Buf **conf = malloc(sizeof(Buf *) * cap);
  int64_t *best_off = malloc(sizeof(int64_t) * cap);
  int n = 0;
  for (int b = 0; b < p.nbufs; b++)
    if (p.bufs[b].merged_into < 0)
      order[n++] = &p.bufs[b];
  int64_t best = INT64_MAX;
  Buf **best_order = malloc(sizeof(Buf *) * cap);
  bool best_ff = false;
  for (int o = 0; o < ORDER_COUNT; o++) {
    PlaceOrder key = (PlaceOrder)o;
    qsort_r(order, (size_t)n, sizeof *order, cmp_place, &key);
    for (int ff = 0; ff < 2; ff++) {
      int64_t top = place(order, n, ff, placed, conf);
      if (top < best) {
        best = top;
        best_ff = ff;
        memcpy(best_order, order, sizeof(Buf *) * (size_t)n);
        for (int b = 0; b < p.nbufs; b++)
          best_off[b] = p.bufs[b].offset;
      }
    }
  }
  /* Hill climbing from the best order while above the lower bound: swap
     two buffers (a fixed-seed xorshift, so plans are reproducible), keep
     the swap if the arena does not grow. Bounded work: ~2e8 pair checks. */
  int64_t lb = lower_bound(&p, g->nodes.len);
  uint64_t rng = 0x9E3779B97F4A7C15ull;
  long budget = n > 0 ? (long)(2e8 / ((double)n * n)) : 0;
  if (budget > 4000)
    budget = 4000;
  for (long it = 0; it < budget && best > lb && n > 1; it++) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    int i = (int)(rng % (uint64_t)n), j = (int)((rng >> 32) % (uint64_t)n);
    if (i == j)
      continue;
    memcpy(order, best_order, sizeof(Buf *) * (size_t)n);
    Buf *t = order[i];
    order[i] = order[j];
    order[j] = t;
    int64_t top = place(order, n, best_ff, placed, conf);
    if (top <= best) {
      best = top;
      memcpy(best_order, order, sizeof(Buf *) * (size_t)n);
      for (int b = 0; b < p.nbufs; b++)
        best_off[b] = p.bufs[b].offset;
    }
  }
  free(best_order);
  /* Still above the bound: search for a packing at the bound itself. Each
     recursion level keeps its conflict list on one shared stack (level i
     holds at most i entries). */
  size_t stack_len = (size_t)n * (size_t)(n + 1) / 2 + 1;
  if (best > lb && n > 0 && stack_len <= ((size_t)1 << 25)) {
    Buf **conf_stack = malloc(sizeof(Buf *) * stack_len);
    qsort(order, (size_t)n, sizeof *order, cmp_first);
    long tries = 200000;
    if (place_exact(order, 0, n, lb, &tries, conf_stack)) {
      best = lb;
      for (int b = 0; b < p.nbufs; b++)
        best_off[b] = p.bufs[b].offset;
    }
    free(conf_stack);
  }
  for (int b = 0; b < p.nbufs; b++)
    p.bufs[b].offset = best_off[b];
  free(conf);
  free(order);
  free(placed);
  free(best_off);
  finish(g, &p);
  ir_stat(g, "plan-memory", "naive %lld bytes, planned %lld bytes, lower bound %lld bytes",
          (long long)g->naive_bytes, (long long)g->arena_bytes, (long long)g->lower_bound_bytes);
}

void pass_plan_memory_naive(Graph *g) {
  Plan p = {0};
  collect(g, &p, false);
  int64_t off = 0;
  for (int b = 0; b < p.nbufs; b++) {
    p.bufs[b].offset = off;
    off += p.bufs[b].bytes;
  }
  finish(g, &p);
  ir_stat(g, "plan-memory", "naive layout: %lld bytes (no reuse at -O0)",
          (long long)g->arena_bytes);
}

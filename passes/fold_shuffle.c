/*
 * fold_shuffle.c: channel shuffles folded into the layers around them.
 *
 * contract: requires bound parameter data, runs before fold-1x1,
 * pad-channels and layout (every node NCHW, no split conv, no padding);
 * removes the CHANNEL_SHUFFLE nodes it can fold, rewrites the inputs of
 * the concats it gathers into (new SLICE views of their sources), permutes
 * weights, biases and per-channel parameters, moves slice ranges; keeps a
 * valid execution order. Nothing is approximated: every value is the same
 * product or the same element, only stored at another channel index (a
 * conv that reads permuted channels sums the same terms in another order,
 * so it agrees to rounding).
 *
 * A channel shuffle only moves channels. Its copy disappears when the
 * tensor is instead *stored* in some other channel order and every reader
 * is told where each channel is: a conv of one group reads its input
 * channels through its weights, so permuting the weights' input axis
 * absorbs any order; a depthwise conv, an activation, a pool or a
 * batchnorm is per channel, so it passes the order on to its own output
 * (its weights and parameters permuted alike); a slice needs its channels
 * to be one contiguous range of the storage and passes their order on;
 * a concat copies whatever pieces it is given. On the producer side a conv
 * of one group that writes only into the shuffle (or the concat before it)
 * writes its output channels in any order we choose (weight rows and bias
 * permuted), and a concat is a gather: each input's channels can land in
 * any place, one contiguous piece per run of source channels (a view
 * copied by the concat kernel) or in place for a conv input.
 *
 * ShuffleNetV2's unit is concat(x1, branch(x2)) -> shuffle(2) -> chunk(2):
 * the next unit's halves must each be contiguous, the first half goes on
 * to the next concat (any order), the second half into a 1x1 conv (any
 * order). So the storage is chosen as [x1 pieces of the first half,
 * branch's first half | branch's second half, x1 pieces of the second
 * half]: the branch conv writes in place (its output channels permuted),
 * the halves are contiguous, and the concat copies the same x1 channels it
 * copied before, in a few runs instead of one. The shuffle's full copy is
 * gone. In the downsampling unit both concat inputs are convs spanning both
 * halves: one writes in place, the other is copied as two runs (half the
 * shuffle's bytes). The last unit of a stage feeds a depthwise and a 1x1
 * conv: any order, one piece each.
 *
 * What stays a shuffle (docs/passes.md): one whose value a reader needs in
 * the logical order (a graph output, an add, mul, layernorm, softmax,
 * linear, flatten, a conv of several groups that is not depthwise, another
 * shuffle; a concat when the shuffle's input has other readers), one whose
 * readers need overlapping or nested channel ranges contiguous, one whose
 * input is neither a conv nor a concat that only it reads and does not
 * already hold the needed ranges in one piece, and one whose gather would
 * take more than MAX_PIECES copies. A concat with a permuted input whose
 * own reader is not a foldable shuffle gathers that input back into the
 * logical order.
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

enum { MAX_PIECES = 64, MAX_DEPTH = 64 };

typedef struct {
  Graph *g;
  int **perm; /* [node id]: logical channel -> channel in storage; NULL: the same */
  int cap;
  int first_new; /* ids from here on are this pass's slices */
  int folded, into_conv, gathered, pieces;
} St;

static const int *perm_of(const St *st, const Node *n) {
  return n->id < st->cap ? st->perm[n->id] : NULL;
}

/* Records pi (C entries, copied) as n's storage order; identity as NULL. */
static void set_perm(St *st, const Node *n, const int *pi, int64_t C) {
  if (n->id >= st->cap) {
    int cap = n->id + 64;
    st->perm = xrealloc(st->perm, sizeof(int *) * (size_t)cap);
    memset(st->perm + st->cap, 0, sizeof(int *) * (size_t)(cap - st->cap));
    st->cap = cap;
  }
  free(st->perm[n->id]);
  st->perm[n->id] = NULL;
  bool id = true;
  for (int64_t c = 0; c < C && id; c++)
    id = pi[c] == c;
  if (!id) {
    st->perm[n->id] = xmalloc(sizeof(int) * (size_t)C);
    memcpy(st->perm[n->id], pi, sizeof(int) * (size_t)C);
  }
}

/* The live readers of t, each once (malloc'd). */
static Node **readers(const Graph *g, const Node *t, int *count) {
  Node **v = xmalloc(sizeof(Node *) * (size_t)(g->nodes.len + 1));
  int n = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *u = GRAPH_NODE(g, i);
    bool reads = false;
    for (int k = 0; !u->dead && k < u->nin; k++)
      reads |= u->in[k] == t;
    if (reads)
      v[n++] = u;
  }
  *count = n;
  return v;
}

static bool depthwise(const Node *u) {
  return u->op == OP_CONV2D && u->attr.groups > 1 && u->attr.groups == u->in[0]->shape.d[0] &&
         u->attr.out_channels == u->attr.groups;
}

/* Ops that compute each channel from the same channel alone. */
static bool per_channel(const Node *u) {
  switch (u->op) {
  case OP_MAXPOOL:
  case OP_AVGPOOL:
  case OP_ADAPTIVE_AVGPOOL:
  case OP_ADAPTIVE_MAXPOOL:
  case OP_BATCHNORM:
  case OP_SCALESHIFT:
    return u->nin == 1;
  default:
    return (ir_ops[u->op].flags & OPF_ACT) && u->nin == 1;
  }
}

/* Channel ranges [b, e) of the tensor being placed that must stay
   contiguous in its storage (a slice's). */
typedef struct {
  int64_t (*v)[2];
  int n;
} Segs;

static bool seg_add(Segs *s, int64_t b, int64_t e) {
  for (int i = 0; i < s->n; i++)
    if (b < s->v[i][1] && s->v[i][0] < e)
      return false; /* overlapping or nested: not handled */
  s->v = xrealloc(s->v, sizeof *s->v * (size_t)(s->n + 1));
  s->v[s->n][0] = b;
  s->v[s->n][1] = e;
  s->n++;
  return true;
}

/* Whether every reader of t (whose channel 0 is channel `base` of the
   tensor being placed) takes its channels in any order, given the ranges
   it adds to segs; *concat_reader: a concat reads t itself. */
static bool readers_accept(const Graph *g, const Node *t, int64_t base, Segs *segs, int depth,
                           bool *concat_reader) {
  if (depth > MAX_DEPTH || ir_is_graph_output(g, t) || t->shape.rank != 3)
    return false;
  int n;
  Node **us = readers(g, t, &n);
  bool ok = true;
  for (int i = 0; i < n && ok; i++) {
    Node *u = us[i];
    if (u->op == OP_CONCAT) {
      if (depth == 0 && concat_reader)
        *concat_reader = true;
      continue;
    }
    bool only_first = u->in[0] == t;
    for (int k = 1; k < u->nin; k++)
      only_first &= u->in[k] != t;
    if (!only_first || (u->nin != 1 && u->op != OP_CONV2D)) {
      ok = false;
    } else if (u->op == OP_CONV2D && u->attr.groups == 1 && !u->split && !u->quant) {
      /* absorbs any order through its weights */
    } else if (u->op == OP_SLICE && !u->split) {
      int64_t b = base + u->attr.slice_begin, e = base + u->attr.slice_end;
      ok = seg_add(segs, b, e) && readers_accept(g, u, b, segs, depth + 1, NULL);
    } else if ((depthwise(u) && u->nin == 1 && !u->split) || per_channel(u)) {
      ok = readers_accept(g, u, base, segs, depth + 1, NULL);
    } else {
      ok = false;
    }
  }
  free(us);
  return ok;
}

/* out[pi[i]] = in[i] for C rows of `row` floats (a fresh array). */
static float *permuted_rows(Graph *g, const float *in, const int *pi, int64_t C, int64_t row) {
  float *out = arena_alloc_aligned(g->arena, sizeof(float) * (size_t)(C * row), 64);
  for (int64_t i = 0; i < C; i++)
    memcpy(out + pi[i] * row, in + i * row, sizeof(float) * (size_t)row);
  return out;
}

/* Every parameter of n whose first dimension is its C channels, permuted
   along it: conv weight rows and bias, batchnorm and scale-shift vectors. */
static void permute_outputs(Graph *g, Node *n, const int *pi, int64_t C) {
  for (int k = 0; k < n->nparams; k++) {
    Param *p = n->params[k];
    if (!p || !p->data || p->dims[0] != C)
      continue;
    p->data = permuted_rows(g, p->data, pi, C, param_numel(p) / C);
  }
}

/* A one-group conv reading its C input channels stored in order pi. */
static void permute_inputs(Graph *g, Node *n, const int *pi, int64_t C) {
  Param *w = n->params[P_WEIGHT];
  int64_t O = w->dims[0], per = param_numel(w) / (O * C);
  float *out = arena_alloc_aligned(g->arena, sizeof(float) * (size_t)param_numel(w), 64);
  for (int64_t o = 0; o < O; o++)
    for (int64_t c = 0; c < C; c++)
      memcpy(out + (o * C + pi[c]) * per, w->data + (o * C + c) * per, sizeof(float) * (size_t)per);
  w->data = out;
}

/* Tells every reader of t that t's channels are stored in order pi (the
   check readers_accept passed). */
static void absorb(St *st, Node *t, const int *pi) {
  Graph *g = st->g;
  int64_t C = t->shape.d[0];
  int n;
  Node **us = readers(g, t, &n);
  for (int i = 0; i < n; i++) {
    Node *u = us[i];
    if (u->op == OP_CONCAT)
      continue; /* reads perm_of(t) when gathered */
    if (u->op == OP_CONV2D && u->attr.groups == 1) {
      permute_inputs(g, u, pi, C);
      st->into_conv++;
    } else if (u->op == OP_SLICE) {
      int64_t b = u->attr.slice_begin, len = u->attr.slice_end - b, lo = C;
      for (int64_t c = 0; c < len; c++)
        lo = pi[b + c] < lo ? pi[b + c] : lo;
      int *sub = xmalloc(sizeof(int) * (size_t)len);
      for (int64_t c = 0; c < len; c++)
        sub[c] = (int)(pi[b + c] - lo);
      u->attr.chunks = u->attr.chunk_index = 0;
      u->attr.slice_begin = lo;
      u->attr.slice_end = lo + len;
      set_perm(st, u, sub, len);
      absorb(st, u, sub);
      free(sub);
    } else {
      permute_outputs(g, u, pi, C);
      set_perm(st, u, pi, C);
      absorb(st, u, pi);
    }
  }
  free(us);
}

/* ------------------------------------------------------------ the gather */

/* One input of the gather. A free one is a one-group conv that writes
   only here: its output channels go in the order we choose (pos). */
typedef struct {
  Node *node;
  int64_t C, last; /* channels; the last channel of the result it lands in */
  const int *phi;  /* a fixed one's storage order (NULL: in order) */
  bool free;
  int *pos; /* free: the storage position chosen for each channel */
} Src;

typedef struct {
  Src *src;
  int nsrc;
  int64_t C;
  int *srcof;     /* [channel of the result] its source */
  int64_t *chan;  /* [channel of the result] the channel within the source */
  int64_t *order; /* [position in storage] channel of the result */
  int npieces;
} Plan;

static bool free_conv(const Graph *g, const Node *x, const Node *reader) {
  if (x->op != OP_CONV2D || x->attr.groups != 1 || x->split || x->quant || x->attr.padded_from ||
      x->epi.residual >= 0 || x->shape.rank != 3 || ir_is_graph_output(g, x))
    return false;
  int n, seen = 0;
  Node **us = readers(g, x, &n);
  for (int k = 0; k < reader->nin; k++)
    seen += reader->in[k] == x;
  bool ok = n == 1 && us[0] == reader && seen == 1;
  free(us);
  return ok;
}

/* Where a source's channel j is stored: within its own storage. */
static int64_t stored_at(const Src *s, int64_t j) {
  return s->free ? s->pos[j] : s->phi ? s->phi[j] : j;
}

typedef struct {
  int cat, src;
  int64_t within, c;
} Key;

static int cmp_key(const void *a, const void *b) {
  const Key *x = a, *y = b;
  if (x->cat != y->cat)
    return x->cat - y->cat;
  if (x->src != y->src)
    return x->src - y->src;
  return (x->within > y->within) - (x->within < y->within);
}

/* Fills pl->order segment by segment: in each, first the free source
   carried over from the previous segment, then the fixed sources' channels
   in storage order (fewest runs), then free sources that end here, last
   the free source that goes on into the next segment. */
static void order_segments(Plan *pl, const Segs *segs) {
  Key *keys = xmalloc(sizeof(Key) * (size_t)pl->C);
  int64_t p = 0;
  int open = -1;
  for (int s = 0; s < segs->n; s++) {
    int64_t b = segs->v[s][0], e = segs->v[s][1];
    int next = -1;
    for (int64_t c = b; c < e; c++) {
      int k = pl->srcof[c];
      if (pl->src[k].free && k != open && next < 0 && pl->src[k].last >= e)
        next = k;
    }
    int nk = 0;
    for (int64_t c = b; c < e; c++) {
      int k = pl->srcof[c];
      const Src *x = &pl->src[k];
      int cat = k == open ? 0 : !x->free ? 1 : k == next ? 3 : 2;
      int64_t within = x->free ? c : stored_at(x, pl->chan[c]);
      keys[nk++] = (Key){cat, k, within, c};
    }
    qsort(keys, (size_t)nk, sizeof(Key), cmp_key);
    for (int i = 0; i < nk; i++)
      pl->order[p++] = keys[i].c;
    open = next >= 0 ? next : (open >= 0 && pl->src[open].last >= e ? open : -1);
  }
  free(keys);
}

static void count_pieces(Plan *pl);

/* Orders the storage (free sources that end up in several places become
   fixed, copied from a buffer of their own), then counts the pieces. */
static void plan_order(Plan *pl, const Segs *segs) {
  for (int round = 0; round <= pl->nsrc; round++) {
    order_segments(pl, segs);
    bool changed = false;
    for (int k = 0; k < pl->nsrc; k++) {
      Src *x = &pl->src[k];
      if (!x->free)
        continue;
      int64_t lo = pl->C, hi = -1;
      for (int64_t p = 0; p < pl->C; p++)
        if (pl->srcof[pl->order[p]] == k) {
          lo = p < lo ? p : lo;
          hi = p;
        }
      if (hi - lo + 1 != x->C) {
        x->free = false;
        changed = true;
        continue;
      }
      for (int64_t p = lo; p <= hi; p++)
        x->pos[pl->chan[pl->order[p]]] = (int)(p - lo);
    }
    if (!changed)
      break;
  }
  count_pieces(pl);
}

/* Runs of consecutive storage of one source, in the plan's order. */
static void count_pieces(Plan *pl) {
  pl->npieces = 0;
  int prev = -1;
  int64_t prevq = -2;
  for (int64_t p = 0; p < pl->C; p++) {
    int k = pl->srcof[pl->order[p]];
    int64_t q = stored_at(&pl->src[k], pl->chan[pl->order[p]]);
    if (k != prev || q != prevq + 1)
      pl->npieces++;
    prev = k;
    prevq = q;
  }
}

/* The plan's sources: the concat's inputs (gather) or y alone; the result's
   channel c is y's channel map(c) (map NULL: the same). */
static void plan_init(const St *st, Plan *pl, Node *y, bool gather, const Node *reader,
                      const int64_t *map) {
  pl->nsrc = gather ? y->nin : 1;
  pl->C = y->shape.d[0];
  pl->src = xcalloc((size_t)pl->nsrc, sizeof(Src));
  pl->srcof = xmalloc(sizeof(int) * (size_t)pl->C);
  pl->chan = xmalloc(sizeof(int64_t) * (size_t)pl->C);
  pl->order = xmalloc(sizeof(int64_t) * (size_t)pl->C);
  int64_t *off = xmalloc(sizeof(int64_t) * (size_t)(pl->nsrc + 1));
  off[0] = 0;
  for (int k = 0; k < pl->nsrc; k++) {
    Src *x = &pl->src[k];
    x->node = gather ? y->in[k] : y;
    x->C = x->node->shape.d[0];
    x->phi = perm_of(st, x->node);
    x->free = reader && !x->phi && free_conv(st->g, x->node, gather ? y : reader);
    x->pos = xmalloc(sizeof(int) * (size_t)x->C);
    off[k + 1] = off[k] + x->C;
  }
  for (int64_t c = 0; c < pl->C; c++) {
    int64_t yc = map ? map[c] : c;
    int k = 0;
    while (off[k + 1] <= yc)
      k++;
    pl->srcof[c] = k;
    pl->chan[c] = yc - off[k];
    pl->src[k].last = c > pl->src[k].last ? c : pl->src[k].last;
  }
  free(off);
}

static void plan_free(Plan *pl) {
  for (int k = 0; k < pl->nsrc; k++)
    free(pl->src[k].pos);
  free(pl->src);
  free(pl->srcof);
  free(pl->chan);
  free(pl->order);
}

/* A view of channels [q0, q0 + len) of x's storage, made on the tensor
   that owns the storage (a slice of a slice is one slice). */
static Node *piece_of(Graph *g, Node *cat, int idx, Node *x, int64_t q0, int64_t len) {
  if (q0 == 0 && len == x->shape.d[0])
    return x;
  Node *base = x;
  while (base->op == OP_SLICE && !base->in[0]->split) {
    q0 += base->attr.slice_begin;
    base = base->in[0];
  }
  Node *s = ir_node_new(g, OP_SLICE, arena_printf(g->arena, "%s.piece%d", cat->name, idx), &base, 1,
                        x->loc);
  s->attr.slice_begin = q0;
  s->attr.slice_end = q0 + len;
  char err[256];
  bool ok = ir_infer_shape(g, s, err, sizeof err);
  CHECK(ok, "fold-shuffle: piece of '%s': %s", x->name, err);
  return s;
}

/* Makes concat y read the plan's pieces in storage order; free sources get
   their output channels permuted. Sources no longer read die. */
static void rebuild(St *st, Node *y, Plan *pl) {
  Graph *g = st->g;
  Node **in = arena_alloc(g->arena, sizeof(Node *) * (size_t)pl->npieces);
  int n = 0;
  for (int64_t p = 0; p < pl->C;) {
    int k = pl->srcof[pl->order[p]];
    Src *x = &pl->src[k];
    int64_t q0 = stored_at(x, pl->chan[pl->order[p]]), len = 1;
    while (p + len < pl->C && pl->srcof[pl->order[p + len]] == k &&
           stored_at(x, pl->chan[pl->order[p + len]]) == q0 + len)
      len++;
    in[n] = piece_of(g, y, n, x->node, q0, len);
    n++;
    p += len;
  }
  for (int k = 0; k < pl->nsrc; k++)
    if (pl->src[k].free)
      permute_outputs(g, pl->src[k].node, pl->src[k].pos, pl->src[k].C);
  Node **old = y->in;
  int nold = y->nin;
  y->in = in;
  y->nin = n;
  st->pieces += n;
  int *users = xmalloc(sizeof(int) * (size_t)g->next_id);
  ir_count_users(g, users);
  for (int k = 0; k < nold; k++)
    if (old[k]->op == OP_SLICE && !users[old[k]->id])
      old[k]->dead = true;
  free(users);
}

/* Folds shuffle s whose input is y (a concat only s reads: gathered). */
static bool try_fold(St *st, Node *y, Node *s, bool gather) {
  Graph *g = st->g;
  Segs segs = {0};
  bool concat_reader = false;
  if (!readers_accept(g, s, 0, &segs, 0, &concat_reader)) {
    free(segs.v);
    return false;
  }
  int n;
  Node **us = readers(g, y, &n);
  bool sole = n == 1 && !ir_is_graph_output(g, y);
  free(us);
  if (concat_reader && !sole) {
    free(segs.v);
    return false;
  }
  int64_t C = s->shape.d[0], G = s->attr.groups;
  int64_t *map = xmalloc(sizeof(int64_t) * (size_t)C);
  for (int64_t c = 0; c < C; c++)
    map[c] = (c % G) * (C / G) + c / G;
  /* the ranges no reader constrains fill the gaps, in order */
  Segs full = {0};
  for (int i = 0; i < segs.n; i++)
    for (int j = i + 1; j < segs.n; j++)
      if (segs.v[j][0] < segs.v[i][0]) {
        int64_t t0 = segs.v[i][0], t1 = segs.v[i][1];
        segs.v[i][0] = segs.v[j][0], segs.v[i][1] = segs.v[j][1];
        segs.v[j][0] = t0, segs.v[j][1] = t1;
      }
  int64_t at = 0;
  for (int i = 0; i <= segs.n; i++) {
    int64_t b = i < segs.n ? segs.v[i][0] : C;
    if (b > at)
      seg_add(&full, at, b);
    if (i < segs.n)
      seg_add(&full, segs.v[i][0], at = segs.v[i][1]);
  }
  Plan pl = {0};
  plan_init(st, &pl, y, gather, sole ? (gather ? y : s) : NULL, map);
  plan_order(&pl, &full);
  bool ok = gather ? pl.npieces <= MAX_PIECES : pl.npieces == 1;
  if (ok) {
    int *pi = xmalloc(sizeof(int) * (size_t)C);
    for (int64_t p = 0; p < C; p++)
      pi[pl.order[p]] = (int)p;
    if (gather)
      rebuild(st, y, &pl);
    else if (pl.src[0].free)
      permute_outputs(g, y, pl.src[0].pos, C);
    bool identity = true;
    for (int64_t c = 0; c < C && identity; c++)
      identity = pi[c] == c;
    if (!identity)
      absorb(st, s, pi);
    ir_replace_uses(g, s, y);
    s->dead = true;
    if (sole)
      set_perm(st, y, pi, C);
    st->folded++;
    free(pi);
  }
  plan_free(&pl);
  free(map);
  free(segs.v);
  free(full.v);
  return ok;
}

/* A concat with an input stored out of order (and no shuffle to fold into
   it) copies that input's runs back into the logical order. */
static void gather_in_order(St *st, Node *y) {
  bool any = false;
  for (int k = 0; k < y->nin; k++)
    any |= perm_of(st, y->in[k]) != NULL;
  if (!any)
    return;
  Plan pl = {0};
  plan_init(st, &pl, y, true, NULL, NULL);
  for (int64_t c = 0; c < pl.C; c++)
    pl.order[c] = c;
  count_pieces(&pl);
  rebuild(st, y, &pl);
  st->gathered++;
  plan_free(&pl);
}

/* New slices go just before the concat that reads them. */
static void place_pieces(Graph *g, int first_new) {
  int n = g->nodes.len;
  void **items = xmalloc(sizeof(void *) * (size_t)n);
  char *done = xcalloc((size_t)g->next_id, 1);
  int m = 0;
  for (int i = 0; i < n; i++) {
    Node *x = GRAPH_NODE(g, i);
    if (x->id >= first_new)
      continue;
    for (int k = 0; x->op == OP_CONCAT && k < x->nin; k++) {
      Node *p = x->in[k];
      if (p->id >= first_new && !done[p->id]) {
        done[p->id] = 1;
        items[m++] = p;
      }
    }
    items[m++] = x;
  }
  for (int i = 0; i < n; i++) { /* pieces no concat reads any more */
    Node *x = GRAPH_NODE(g, i);
    if (x->id >= first_new && !done[x->id]) {
      x->dead = true;
      items[m++] = x;
    }
  }
  memcpy(g->nodes.items, items, sizeof(void *) * (size_t)m);
  free(items);
  free(done);
}

void pass_fold_shuffle(Graph *g) {
  St st = {.g = g, .first_new = g->next_id};
  int shuffles = 0, n0 = g->nodes.len;
  for (int i = 0; i < n0; i++) {
    Node *n = GRAPH_NODE(g, i);
    shuffles += n->op == OP_CHANNEL_SHUFFLE;
    if (n->dead)
      continue;
    if (n->op == OP_CHANNEL_SHUFFLE) {
      Node *y = n->in[0];
      int nr;
      Node **us = readers(g, y, &nr);
      bool tried = y->op == OP_CONCAT && nr == 1 && !ir_is_graph_output(g, y);
      free(us);
      if (!tried)
        try_fold(&st, y, n, false);
      continue;
    }
    if (n->op != OP_CONCAT)
      continue;
    int nr;
    Node **us = readers(g, n, &nr);
    Node *s =
        nr == 1 && !ir_is_graph_output(g, n) && us[0]->op == OP_CHANNEL_SHUFFLE ? us[0] : NULL;
    free(us);
    if (!s || !try_fold(&st, n, s, true))
      gather_in_order(&st, n);
  }
  if (g->next_id > st.first_new)
    place_pieces(g, st.first_new);
  ir_compact(g);
  if (shuffles)
    ir_stat(g, "fold-shuffle",
            "folded %d of %d channel shuffles (%d conv weights permuted instead, %d concat "
            "pieces); %d concats gathered back into order",
            st.folded, shuffles, st.into_conv, st.pieces, st.gathered);
  for (int i = 0; i < st.cap; i++)
    free(st.perm[i]);
  free(st.perm);
}

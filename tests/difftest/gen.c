/*
 * gen.c: a random valid network, as a spec and as its twin (gen.h).
 *
 * The network is built in scopes. The top-level scope holds the graph
 * inputs and the layers; a block definition is a scope of its own whose
 * value 0 is the block's `input`. Every value has a shape, a reference (how
 * a layer of its scope names it in `in:`) and a full name (the twin's).
 * Each step picks an op and a value it applies to, and appends one layer
 * (or a short pattern of layers: a projection before an add, a
 * squeeze-and-excitation gate before a mul, a block instance) whose
 * attributes are drawn so that the layer is valid. Shapes follow
 * PyTorch's formulas; cnncc must agree or reject the spec, and either is a
 * finding of the campaign.
 *
 * A block's body keeps the height and width of its input and ends with the
 * input's channel count, so any number of instances chain (`repeat`); its
 * first layers may use the parameter `$mid`, which an instance sets and
 * `at:` overrides for one instance, so the instances of one block differ
 * in their parameter shapes.
 *
 * Nothing is written until the network is complete: then the spec (inputs,
 * outputs, blocks, layers; `in:` left out where the previous layer is the
 * input, some parameter-free layers left unnamed so that the frontend
 * names them `relu3`) and the twin (one node per layer, block instances
 * expanded, attributes as written, parameters with their full names).
 */
#include "gen.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- choices */

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void gen_rng_seed(GenRng *r, uint64_t seed) {
  memset(r, 0, sizeof *r);
  r->state = seed * 0x2545f4914f6cdd1dull + 1;
}

void gen_rng_bytes(GenRng *r, const uint8_t *bytes, size_t len) {
  memset(r, 0, sizeof *r);
  r->bytes = bytes;
  r->len = len;
}

uint32_t gen_below(GenRng *r, uint32_t n) {
  if (n <= 1)
    return 0;
  if (r->bytes) {
    if (r->pos >= r->len)
      return 0;
    uint32_t v = r->bytes[r->pos++];
    if (n > 256 && r->pos < r->len)
      v = v << 8 | r->bytes[r->pos++];
    return v % n;
  }
  return (uint32_t)(splitmix64(&r->state) % n);
}

/* true with probability pct/100 */
static bool chance(GenRng *r, int pct) { return (int)gen_below(r, 100) < pct; }
static int64_t between(GenRng *r, int64_t lo, int64_t hi) {
  return hi <= lo ? lo : lo + (int64_t)gen_below(r, (uint32_t)(hi - lo + 1));
}

/* ---------------------------------------------------------------- text */

typedef struct {
  char *s;
  size_t len, cap;
} Buf;

static void bprintf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(Buf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->len;
    int k = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (k < 0)
      abort();
    if ((size_t)k < room) {
      b->len += (size_t)k;
      return;
    }
    b->cap = (b->cap + (size_t)k + 1) * 2;
    b->s = realloc(b->s, b->cap);
    if (!b->s)
      abort();
  }
}

/* ---------------------------------------------------------------- the model */

#define MAXV 320 /* values of a scope */
#define MAXL 200 /* layers of a scope */
#define MAXA 10  /* attributes of a layer */
#define MAXIN 6  /* inputs of a layer */
#define MAXB 4   /* block definitions */
#define MAXOUT 4 /* graph outputs */

typedef struct {
  int rank; /* 3: [C, H, W]; 1: [F] */
  int64_t d[3];
} GShape;

typedef struct {
  char key[24];
  char yaml[96];
  char json[96];
  bool mid; /* $mid: the twin writes each instance's value */
} Attr;

typedef struct {
  const char *op; /* spec op name (aliases included) */
  char name[40];  /* the local name (given, or the frontend's automatic one) */
  bool named;     /* written with `name:` */
  int in[MAXIN], nin;
  Attr at[MAXA];
  int nat;
  int out;   /* its value */
  int block; /* >= 0: an instance of that block definition (top level) */
  int repeat, repeat_from;
  const char *repeat_name; /* NULL, or "u{}" */
  int64_t mid;             /* the block's $mid for every instance ... */
  int at_index;            /* ... but instance at_index (or -1) */
  int64_t at_mid;
} Layer;

typedef struct {
  char ref[96];   /* how a layer of the scope refers to it */
  char full[128]; /* the twin's name (top level) */
  GShape s;
  int layer;   /* producing layer, or -1 (an input, an instance's output) */
  bool hidden; /* depends on $mid: no other layer may read it */
} Val;

typedef struct Scope {
  Val v[MAXV];
  int nv;
  Layer l[MAXL];
  int nl;
  int prev;  /* the value a layer without `in:` reads */
  bool body; /* a block's body: keep height and width */
  int autoc[64];
  const char *auton[64];
  int nauto;
  int64_t mid; /* a body: the value of $mid it was generated with, or 0 */
  bool group;  /* a body written inline (layers:), used once */
  GenRng *r;
} Scope;

typedef struct {
  GenRng *r;
  const GenOptions *o;
  Scope top;
  Scope *blk[MAXB];
  int nblk;
  int nodes; /* twin nodes written */
} Gen;

static int64_t numel(const GShape *s) {
  return s->rank == 3 ? s->d[0] * s->d[1] * s->d[2] : s->d[0];
}
static bool same_shape(const GShape *a, const GShape *b) {
  return a->rank == b->rank && a->d[0] == b->d[0] &&
         (a->rank == 1 || (a->d[1] == b->d[1] && a->d[2] == b->d[2]));
}
static bool same_hw(const GShape *a, const GShape *b) {
  return a->rank == 3 && b->rank == 3 && a->d[1] == b->d[1] && a->d[2] == b->d[2];
}
static GShape img(int64_t c, int64_t h, int64_t w) { return (GShape){3, {c, h, w}}; }
static GShape vec(int64_t f) { return (GShape){1, {f, 0, 0}}; }

/* Where activations stay bounded: a layer's output, elements per sample. */
#define MAX_NUMEL 24576
#define MAX_FEATURES 3072

/* ---------------------------------------------------------------- layers */

static bool takes_params(const char *op) {
  return !strcmp(op, "conv2d") || !strcmp(op, "batchnorm") || !strcmp(op, "linear") ||
         !strcmp(op, "block") || !strcmp(op, "layernorm") || !strcmp(op, "pointwise_linear") ||
         !strcmp(op, "parameter");
}

/* The frontend's automatic name for an unnamed layer: op + next number. */
static void auto_name(Scope *S, const char *op, char *out, size_t n) {
  int i = 0;
  while (i < S->nauto && strcmp(S->auton[i], op))
    i++;
  if (i == S->nauto && S->nauto < 64) {
    S->auton[S->nauto] = op;
    S->autoc[S->nauto++] = 0;
  }
  snprintf(out, n, "%s%d", op, ++S->autoc[i]);
}

/* A new layer reading in[0..nin) and giving shape s; returns it (its value
   is l->out). */
static Layer *layer(Gen *G, Scope *S, const char *op, const int *in, int nin, GShape s) {
  if (S->nl >= MAXL || S->nv >= MAXV)
    abort(); /* the caller checks room() first */
  Layer *l = &S->l[S->nl];
  memset(l, 0, sizeof *l);
  l->op = op;
  l->block = -1;
  l->at_index = -1;
  l->nin = nin;
  for (int i = 0; i < nin; i++)
    l->in[i] = in[i];
  l->named = takes_params(op) || !chance(G->r, 30);
  if (l->named)
    snprintf(l->name, sizeof l->name, "%s%d", S->body ? "b" : "n", S->nl);
  else
    auto_name(S, op, l->name, sizeof l->name);
  Val *v = &S->v[S->nv];
  memset(v, 0, sizeof *v);
  memcpy(v->ref, l->name, sizeof l->name); /* both NUL-terminated, 40 < 96 */
  memcpy(v->full, l->name, sizeof l->name);
  v->s = s;
  v->layer = S->nl;
  l->out = S->nv++;
  S->nl++;
  S->prev = l->out;
  return l;
}

static bool room(const Scope *S, int layers) {
  return S->nl + layers < MAXL - 2 && S->nv + layers * 4 < MAXV - 8;
}

static Attr *attr(Layer *l, const char *key) {
  if (l->nat >= MAXA)
    abort();
  Attr *a = &l->at[l->nat++];
  snprintf(a->key, sizeof a->key, "%s", key);
  return a;
}
static void attr_int(Layer *l, const char *key, int64_t v) {
  Attr *a = attr(l, key);
  snprintf(a->yaml, sizeof a->yaml, "%lld", (long long)v);
  snprintf(a->json, sizeof a->json, "%lld", (long long)v);
}
/* An int written as an expression of $in or $mid in a body. */
static void attr_expr(Layer *l, const char *key, const char *expr, int64_t v) {
  Attr *a = attr(l, key);
  snprintf(a->yaml, sizeof a->yaml, "\"%s\"", expr);
  snprintf(a->json, sizeof a->json, "%lld", (long long)v);
}
static void attr_pair(Layer *l, const char *key, int64_t h, int64_t w) {
  Attr *a = attr(l, key);
  snprintf(a->yaml, sizeof a->yaml, "[%lld, %lld]", (long long)h, (long long)w);
  snprintf(a->json, sizeof a->json, "[%lld, %lld]", (long long)h, (long long)w);
}
/* an int when h == w, sometimes a pair all the same */
static void attr_hw(GenRng *r, Layer *l, const char *key, int64_t h, int64_t w) {
  if (h == w && chance(r, 75))
    attr_int(l, key, h);
  else
    attr_pair(l, key, h, w);
}
static void attr_quad(Layer *l, const char *key, const int64_t p[4]) {
  Attr *a = attr(l, key);
  snprintf(a->yaml, sizeof a->yaml, "[%lld, %lld, %lld, %lld]", (long long)p[0], (long long)p[1],
           (long long)p[2], (long long)p[3]);
  snprintf(a->json, sizeof a->json, "[%lld, %lld, %lld, %lld]", (long long)p[0], (long long)p[1],
           (long long)p[2], (long long)p[3]);
}
/* pad [top, left, bottom, right] in the shortest form that says it */
static void attr_pad(GenRng *r, Layer *l, const int64_t p[4]) {
  if (p[0] == p[2] && p[1] == p[3]) {
    if (p[0] == 0 && p[1] == 0 && chance(r, 70))
      return;
    if (chance(r, 85)) {
      attr_hw(r, l, "pad", p[0], p[1]);
      return;
    }
  }
  attr_quad(l, "pad", p);
}
/* floats are multiples of 1/64: exact in float32 and in decimal */
static void attr_float(Layer *l, const char *key, double v) {
  Attr *a = attr(l, key);
  snprintf(a->yaml, sizeof a->yaml, "%.10g", v);
  snprintf(a->json, sizeof a->json, "%.10g", v);
}
static void attr_bool(Layer *l, const char *key, bool v) {
  Attr *a = attr(l, key);
  snprintf(a->yaml, sizeof a->yaml, "%s", v ? "true" : "false");
  snprintf(a->json, sizeof a->json, "%s", v ? "true" : "false");
}
static void attr_word(Layer *l, const char *key, const char *w) {
  Attr *a = attr(l, key);
  snprintf(a->yaml, sizeof a->yaml, "%s", w);
  snprintf(a->json, sizeof a->json, "\"%s\"", w);
}

/* A random float in [lo, hi], a multiple of 1/64. */
static double frac(GenRng *r, double lo, double hi) {
  int64_t a = (int64_t)(lo * 64), b = (int64_t)(hi * 64);
  return (double)between(r, a, b) / 64.0;
}

/* ---------------------------------------------------------------- picking */

/* A channel count: odd ones, small ones, multiples of 16 (the blocked
   kernels), up to max. */
static int64_t channels(Gen *G) {
  GenRng *r = G->r;
  int64_t max = G->o->max_channels;
  switch (gen_below(r, 8)) {
  case 0:
  case 1:
    return between(r, 1, 8);
  case 2:
  case 3:
  case 4:
    return 16 * between(r, 1, max / 16 > 0 ? max / 16 : 1);
  default:
    return between(r, 1, max);
  }
}

/* A value of the scope, recent ones more often; rank 0: any. */
static int pick(Gen *G, Scope *S, int rank) {
  int cand[MAXV], n = 0;
  for (int i = 0; i < S->nv; i++)
    if ((rank == 0 || S->v[i].s.rank == rank) && !S->v[i].hidden)
      cand[n++] = i;
  if (n == 0)
    return -1;
  if (chance(G->r, 50)) { /* the chain: the previous value, if it fits */
    for (int i = n - 1; i >= 0; i--)
      if (cand[i] == S->prev)
        return S->prev;
  }
  if (chance(G->r, 60)) /* one of the last few */
    return cand[n - 1 - (int)gen_below(G->r, (uint32_t)(n < 4 ? n : 4))];
  return cand[gen_below(G->r, (uint32_t)n)];
}

/* Values of S with shape s (or, hw_only, the height and width of s) other
   than `except`; returns how many, into out. */
static int matching(const Scope *S, const GShape *s, bool hw_only, int except, int *out) {
  int n = 0;
  for (int i = 0; i < S->nv; i++) {
    if (i == except || S->v[i].hidden)
      continue;
    const GShape *t = &S->v[i].s;
    bool ok = hw_only ? (s->rank == 1 ? t->rank == 1 : same_hw(s, t)) : same_shape(s, t);
    if (ok)
      out[n++] = i;
  }
  return n;
}

static int64_t gcd(int64_t a, int64_t b) {
  while (b) {
    int64_t t = a % b;
    a = b, b = t;
  }
  return a;
}

/* A random divisor of n (1 included). */
static int64_t divisor(GenRng *r, int64_t n) {
  int64_t d[64];
  int k = 0;
  for (int64_t i = 1; i <= n && k < 64; i++)
    if (n % i == 0)
      d[k++] = i;
  return d[gen_below(r, (uint32_t)k)];
}

/* PyTorch's output size of a window (conv, pool); <= 0: does not fit. */
static int64_t window(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t d,
                      bool ceil_mode) {
  int64_t span = in + p0 + p1 - d * (k - 1) - 1;
  if (span < 0)
    return 0;
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p0)
    out--;
  return out;
}

/* ---------------------------------------------------------------- ops */

/* In a body, a channel count equal to the block's $in (or twice it) is
   written as an expression of it. */
static void attr_channels(Scope *S, Layer *l, const char *key, int64_t v) {
  int64_t in_c = S->body ? S->v[0].s.d[0] : -1;
  if (S->body && v == in_c && chance(S->r, 80))
    attr_expr(l, key, "$in", v);
  else if (S->body && v == 2 * in_c && chance(S->r, 80))
    attr_expr(l, key, "$in * 2", v);
  else
    attr_int(l, key, v);
}

typedef struct {
  int64_t k[2], s[2], d[2], p[4];
} Win;

/* Padding that keeps the size with stride 1: d*(k-1) in all, split. */
static void same_pad(GenRng *r, Win *w) {
  for (int ax = 0; ax < 2; ax++) {
    int64_t t = w->d[ax] * (w->k[ax] - 1), a = t / 2;
    if (t % 2 && chance(r, 50))
      a = t - a;
    w->p[ax] = a, w->p[ax + 2] = t - a;
  }
}

/* A conv's window: kernel 1-5 (7 sometimes), strides up to 3 (larger than
   the kernel too), dilation, padding in every form. In a body: stride 1,
   the size kept. */
static void conv_window(Gen *G, Scope *S, Win *w, int64_t H, int64_t W) {
  GenRng *r = G->r;
  w->k[0] = chance(r, 8) ? 7 : between(r, 1, 5);
  w->k[1] = chance(r, 70) ? w->k[0] : between(r, 1, 5);
  w->s[0] = w->s[1] = 1;
  w->d[0] = w->d[1] = 1;
  if (chance(r, 20)) {
    w->d[0] = between(r, 1, 3);
    w->d[1] = chance(r, 70) ? w->d[0] : between(r, 1, 3);
  }
  if (S->body) {
    same_pad(r, w);
    return;
  }
  if (chance(r, 45)) {
    w->s[0] = between(r, 1, 3);
    w->s[1] = chance(r, 70) ? w->s[0] : between(r, 1, 3);
  }
  switch (gen_below(r, 4)) {
  case 0:
    memset(w->p, 0, sizeof w->p);
    break;
  case 1:
    same_pad(r, w);
    break;
  default:
    for (int i = 0; i < 4; i++)
      w->p[i] = between(r, 0, w->k[i % 2]);
  }
  /* shrink what does not fit */
  for (int ax = 0; ax < 2; ax++) {
    int64_t in = ax ? W : H;
    if (window(in, w->k[ax], w->s[ax], w->p[ax], w->p[ax + 2], w->d[ax], false) <= 0)
      w->d[ax] = 1;
    if (window(in, w->k[ax], w->s[ax], w->p[ax], w->p[ax + 2], w->d[ax], false) <= 0)
      w->k[ax] = 1;
  }
}

/* avgpool has no dilation */
static void write_window(GenRng *r, Layer *l, const Win *w, bool pool, bool avg) {
  attr_hw(r, l, "kernel", w->k[0], w->k[1]);
  if (!pool && (w->s[0] != 1 || w->s[1] != 1 || chance(r, 10)))
    attr_hw(r, l, "stride", w->s[0], w->s[1]);
  if (pool && (w->s[0] != w->k[0] || w->s[1] != w->k[1] || chance(r, 20)))
    attr_hw(r, l, "stride", w->s[0], w->s[1]);
  attr_pad(r, l, w->p);
  if (!avg && (w->d[0] != 1 || w->d[1] != 1 || chance(r, 5)))
    attr_hw(r, l, "dilation", w->d[0], w->d[1]);
}

/* conv2d on x: generic, or shaped for the blocked kernels (multiples of
   16 channels), small groups (depthwise .. 8 per group), or a 3x3 conv the
   Winograd kernels take. */
static int op_conv(Gen *G, Scope *S, int x) {
  GenRng *r = G->r;
  GShape in = S->v[x].s;
  if (in.rank != 3)
    return -1;
  int64_t C = in.d[0], H = in.d[1], Wd = in.d[2], out, g = 1;
  Win w;
  conv_window(G, S, &w, H, Wd);
  int kind = (int)gen_below(r, 10);
  if (kind >= 7 && C % 16 == 0) { /* small groups */
    static const int64_t cg[] = {1, 1, 2, 4, 8};
    out = C, g = C / cg[gen_below(r, 5)];
  } else if (kind >= 4) { /* blocked: 16k output channels */
    out = 16 * between(r, 1, 4);
    if (kind == 6 && !S->body) { /* Winograd's 3x3, stride 1 */
      w.k[0] = w.k[1] = 3, w.s[0] = w.s[1] = w.d[0] = w.d[1] = 1;
      for (int i = 0; i < 4; i++)
        w.p[i] = chance(r, 80) ? 1 : between(r, 0, 2);
    }
  } else {
    out = S->body && chance(r, 40) ? S->v[0].s.d[0] : channels(G);
    if (chance(r, 35))
      g = divisor(r, gcd(C, out));
  }
  int64_t oh = window(H, w.k[0], w.s[0], w.p[0], w.p[2], w.d[0], false);
  int64_t ow = window(Wd, w.k[1], w.s[1], w.p[1], w.p[3], w.d[1], false);
  if (oh <= 0 || ow <= 0 || out * oh * ow > MAX_NUMEL)
    return -1;
  Layer *l = layer(G, S, "conv2d", &x, 1, img(out, oh, ow));
  attr_channels(S, l, "out", out);
  write_window(r, l, &w, false, false);
  if (g > 1) {
    if (S->body && g == C && C == S->v[0].s.d[0])
      attr_expr(l, "groups", "$in", g);
    else
      attr_int(l, "groups", g);
  }
  if (chance(r, 35))
    attr_bool(l, "bias", false);
  return l->out;
}

/* pointwise_linear: nn.Linear on every pixel's channels. */
static int op_pointwise(Gen *G, Scope *S, int x) {
  GShape in = S->v[x].s;
  if (in.rank != 3)
    return -1;
  int64_t out = S->body && chance(G->r, 50) ? 2 * in.d[0] : channels(G);
  if (out * in.d[1] * in.d[2] > MAX_NUMEL)
    return -1;
  Layer *l = layer(G, S, "pointwise_linear", &x, 1, img(out, in.d[1], in.d[2]));
  attr_channels(S, l, "out", out);
  if (chance(G->r, 30))
    attr_bool(l, "bias", false);
  return l->out;
}

static int op_linear(Gen *G, Scope *S, int x) {
  GShape in = S->v[x].s;
  if (numel(&in) > MAX_FEATURES || S->body)
    return -1;
  int64_t out = chance(G->r, 30) ? 16 * between(G->r, 1, 3) : between(G->r, 1, 40);
  Layer *l = layer(G, S, "linear", &x, 1, vec(out));
  attr_int(l, "out", out);
  if (chance(G->r, 30))
    attr_bool(l, "bias", false);
  return l->out;
}

static int op_norm(Gen *G, Scope *S, int x, const char *op) {
  GShape in = S->v[x].s;
  Layer *l = layer(G, S, op, &x, 1, in);
  if (chance(G->r, 20))
    attr_float(l, "eps", chance(G->r, 50) ? 1e-3 : 0.0625);
  bool bn = !strcmp(op, "batchnorm");
  if (bn) {
  }
  return l->out;
}

/* The activations, with their parameters. */
static int op_act(Gen *G, Scope *S, int x) {
  static const char *const acts[] = {"relu",      "relu6", "clamp", "sigmoid", "hardsigmoid",
                                     "hardswish", "silu",  "gelu",  "relu"};
  GenRng *r = G->r;
  const char *op = acts[gen_below(r, 9)];
  Layer *l = layer(G, S, op, &x, 1, S->v[x].s);
  if (!strcmp(op, "clamp")) {
    int which = (int)gen_below(r, 3); /* min, max, both */
    double lo = frac(r, -3, 1), hi = lo + frac(r, 0, 4);
    if (which != 1)
      attr_float(l, "min", lo);
    if (which != 0)
      attr_float(l, "max", hi);
  } else if (!strcmp(op, "hardsigmoid") && chance(r, 40)) {
    double a = frac(r, -1, 1);
    attr_float(l, "alpha", a == 0 ? 0.25 : a);
    if (chance(r, 70))
      attr_float(l, "beta", frac(r, -1, 1));
  } else if (!strcmp(op, "gelu") && chance(r, 60)) {
    attr_word(l, "approximate", chance(r, 70) ? "tanh" : "none");
  }
  return l->out;
}

/* maxpool and avgpool: kernel 1-4, strides larger than the kernel,
   padding up to half the kernel (asymmetric without ceil_mode), dilation
   (maxpool), ceil_mode, count_include_pad (avgpool). */
static int op_pool(Gen *G, Scope *S, int x, bool max) {
  GenRng *r = G->r;
  GShape in = S->v[x].s;
  if (in.rank != 3)
    return -1;
  Win w;
  w.k[0] = between(r, 1, 4);
  w.k[1] = chance(r, 75) ? w.k[0] : between(r, 1, 4);
  w.d[0] = w.d[1] = 1;
  if (max && chance(r, 20))
    w.d[0] = between(r, 1, 2), w.d[1] = between(r, 1, 2);
  bool ceil_mode = !S->body && chance(r, 30);
  if (S->body) {
    w.s[0] = w.s[1] = 1;
    same_pad(r, &w);
  } else {
    bool dflt = chance(r, 40);
    for (int ax = 0; ax < 2; ax++)
      w.s[ax] = dflt ? w.k[ax] : between(r, 1, 4);
    bool sym = ceil_mode || chance(r, 60);
    for (int ax = 0; ax < 2; ax++) {
      int64_t half = (w.d[ax] * (w.k[ax] - 1) + 1) / 2;
      w.p[ax] = between(r, 0, half);
      w.p[ax + 2] = sym ? w.p[ax] : between(r, 0, half);
    }
  }
  for (int ax = 0; ax < 2; ax++) { /* a pool's pad is at most half its window */
    int64_t eff = w.d[ax] * (w.k[ax] - 1) + 1;
    if (w.p[ax] * 2 > eff || w.p[ax + 2] * 2 > eff)
      return -1;
  }
  int64_t oh = window(in.d[1], w.k[0], w.s[0], w.p[0], w.p[2], w.d[0], ceil_mode);
  int64_t ow = window(in.d[2], w.k[1], w.s[1], w.p[1], w.p[3], w.d[1], ceil_mode);
  if (oh <= 0 || ow <= 0)
    return -1;
  Layer *l = layer(G, S, max ? "maxpool" : "avgpool", &x, 1, img(in.d[0], oh, ow));
  write_window(r, l, &w, true, !max);
  if (ceil_mode || chance(r, 5))
    attr_bool(l, "ceil_mode", ceil_mode);
  if (!max && chance(r, 35))
    attr_bool(l, "count_include_pad", chance(r, 20));
  return l->out;
}

/* adaptive_avgpool / adaptive_maxpool (bins larger than the input too),
   and the global pools. */
static int op_adaptive(Gen *G, Scope *S, int x) {
  GenRng *r = G->r;
  GShape in = S->v[x].s;
  if (in.rank != 3)
    return -1;
  bool max = chance(r, 50);
  if (S->body || chance(r, 60)) {
    int64_t oh = S->body ? in.d[1] : between(r, 1, in.d[1] + 1);
    int64_t ow = S->body ? in.d[2] : chance(r, 60) ? oh : between(r, 1, in.d[2] + 1);
    if (in.d[0] * oh * ow > MAX_NUMEL)
      return -1;
    Layer *l =
        layer(G, S, max ? "adaptive_maxpool" : "adaptive_avgpool", &x, 1, img(in.d[0], oh, ow));
    attr_hw(r, l, "out", oh, ow);
    return l->out;
  }
  return layer(G, S, max ? "global_maxpool" : "global_avgpool", &x, 1, img(in.d[0], 1, 1))->out;
}

static int op_lrn(Gen *G, Scope *S, int x) {
  GenRng *r = G->r;
  Layer *l = layer(G, S, "lrn", &x, 1, S->v[x].s);
  attr_int(l, "size", between(r, 1, 7));
  if (chance(r, 60))
    attr_float(l, "alpha", chance(r, 50) ? 1e-4 : frac(r, 0.015625, 1));
  if (chance(r, 50))
    attr_float(l, "beta", frac(r, 0.25, 1));
  if (chance(r, 50))
    attr_float(l, "k", frac(r, 0.5, 2));
  return l->out;
}

/* flatten, dropout, scale, softmax, channel_shuffle */
static int op_simple(Gen *G, Scope *S, int x, int which) {
  GenRng *r = G->r;
  GShape in = S->v[x].s;
  Layer *l;
  switch (which) {
  case 0:
    if (in.rank != 3 || numel(&in) > MAX_FEATURES || S->body)
      return -1;
    return layer(G, S, "flatten", &x, 1, vec(numel(&in)))->out;
  case 1:
    l = layer(G, S, "dropout", &x, 1, in);
    if (chance(r, 40))
      attr_float(l, "p", frac(r, 0, 0.9375));
    return l->out;
  case 2: {
    l = layer(G, S, "scale", &x, 1, in);
    double f = frac(r, -2, 2);
    attr_float(l, "factor", f == 0 ? 0.5 : f);
    return l->out;
  }
  case 3:
    l = layer(G, S, "softmax", &x, 1, in);
    if (chance(r, 15))
      attr_int(l, "axis", 1);
    return l->out;
  default: {
    if (in.rank != 3)
      return -1;
    int64_t g = divisor(r, in.d[0]);
    if (g == 1 && in.d[0] % 2 == 0)
      g = 2;
    if (g == 1)
      return -1;
    l = layer(G, S, "channel_shuffle", &x, 1, in);
    attr_int(l, "groups", g);
    return l->out;
  }
  }
}

/* slice and chunk: channel ranges, block-aligned now and then. */
static int op_slice(Gen *G, Scope *S, int x) {
  GenRng *r = G->r;
  GShape in = S->v[x].s;
  if (in.rank != 3 || in.d[0] < 2)
    return -1;
  int64_t C = in.d[0];
  if (chance(r, 40)) {
    int64_t chunks = between(r, 1, C < 5 ? C : 5), size = (C + chunks - 1) / chunks;
    int64_t have = (C + size - 1) / size, index = between(r, 0, have - 1);
    int64_t b = index * size, e = b + size < C ? b + size : C;
    Layer *l = layer(G, S, "chunk", &x, 1, img(e - b, in.d[1], in.d[2]));
    attr_int(l, "chunks", chunks);
    attr_int(l, "index", index);
    return l->out;
  }
  int64_t b, e;
  if (C >= 32 && chance(r, 40)) {
    b = 16 * between(r, 0, C / 16 - 1);
    e = b + 16 * between(r, 1, (C - b) / 16);
  } else {
    b = between(r, 0, C - 1);
    e = between(r, b + 1, C);
  }
  Layer *l = layer(G, S, "slice", &x, 1, img(e - b, in.d[1], in.d[2]));
  if (b || chance(r, 20))
    attr_int(l, "begin", b);
  attr_int(l, "end", e);
  return l->out;
}

/* A parameter layer of shape s. */
static int op_parameter(Gen *G, Scope *S, GShape s) {
  Layer *l = layer(G, S, "parameter", NULL, 0, s);
  Attr *a = attr(l, "shape");
  if (s.rank == 3)
    snprintf(a->yaml, sizeof a->yaml, "[%lld, %lld, %lld]", (long long)s.d[0], (long long)s.d[1],
             (long long)s.d[2]);
  else
    snprintf(a->yaml, sizeof a->yaml, "[%lld]", (long long)s.d[0]);
  memcpy(a->json, a->yaml, sizeof a->json);
  return l->out;
}

/* A value of shape s made from another value: a 1x1 or 3x3 conv of one
   with s's height and width (an image), a linear layer (a vector), or now
   and then a parameter. -1 when none fits. */
static int projection(Gen *G, Scope *S, const GShape *s, int avoid) {
  GenRng *r = G->r;
  if (!room(S, 3))
    return -1;
  if (chance(r, 12))
    return op_parameter(G, S, *s);
  int cand[MAXV], n = matching(S, s, true, avoid, cand);
  int src = n ? cand[gen_below(r, (uint32_t)n)] : avoid;
  if (src < 0)
    return -1;
  const GShape *t = &S->v[src].s;
  if (s->rank == 1) {
    if (numel(t) > MAX_FEATURES || S->body)
      return -1;
    Layer *l = layer(G, S, "linear", &src, 1, *s);
    attr_int(l, "out", s->d[0]);
    return l->out;
  }
  if (!same_hw(s, t))
    return -1;
  int64_t k = chance(r, 60) ? 1 : 3;
  Layer *l = layer(G, S, "conv2d", &src, 1, *s);
  attr_channels(S, l, "out", s->d[0]);
  attr_int(l, "kernel", k);
  if (k == 3)
    attr_int(l, "pad", 1);
  return l->out;
}

/* A value of x's shape other than x: an existing one, or a projection. */
static int partner(Gen *G, Scope *S, int x) {
  int cand[MAXV], n = matching(S, &S->v[x].s, false, x, cand);
  if (n && chance(G->r, 70))
    return cand[gen_below(G->r, (uint32_t)n)];
  if (chance(G->r, 5))
    return x; /* add(x, x) */
  return projection(G, S, &S->v[x].s, x);
}

/* concat of 1-4 values of x's height and width (or vectors), x among
   them, the same value twice now and then. */
static int op_concat(Gen *G, Scope *S, int x) {
  GenRng *r = G->r;
  GShape s = S->v[x].s;
  int cand[MAXV], n = matching(S, &s, true, x, cand);
  int want = chance(r, 5) ? 1 : (int)between(r, 2, 4), in[MAXIN], k = 0;
  int64_t c = 0;
  int at = (int)gen_below(r, (uint32_t)want);
  for (int i = 0; i < want; i++) {
    int v = i == at ? x : n && !chance(r, 10) ? cand[gen_below(r, (uint32_t)n)] : x;
    if (i != at && v == x && !chance(r, 30)) {
      int p = projection(G, S, &(GShape){s.rank, {channels(G), s.d[1], s.d[2]}}, x);
      if (p >= 0)
        v = p;
    }
    if (c + S->v[v].s.d[0] > 200)
      break;
    c += S->v[v].s.d[0];
    in[k++] = v;
  }
  if (k == 0 || (s.rank == 1 && c > MAX_FEATURES) ||
      (s.rank == 3 && c * s.d[1] * s.d[2] > 2 * MAX_NUMEL))
    return -1;
  GShape o = s;
  o.d[0] = c;
  Layer *l = layer(G, S, "concat", in, k, o);
  if (chance(r, 10))
    attr_int(l, "axis", 1);
  return l->out;
}

/* add and mean of 2-3 values of one shape. */
static int op_add(Gen *G, Scope *S, int x, bool mean) {
  int in[3] = {x, -1, -1}, k = chance(G->r, 75) ? 2 : 3;
  for (int i = 1; i < k; i++)
    if ((in[i] = partner(G, S, x)) < 0)
      return -1;
  if (chance(G->r, 50)) { /* x need not come first */
    int t = in[0];
    in[0] = in[k - 1], in[k - 1] = t;
  }
  return layer(G, S, mean ? "mean" : "add", in, k, S->v[x].s)->out;
}

/* squeeze-and-excitation's gate of x: global pool, 1x1 conv down, an
   activation, 1x1 conv up, sigmoid or hardsigmoid: [C, 1, 1]. */
static int se_gate(Gen *G, Scope *S, int x) {
  GenRng *r = G->r;
  int64_t C = S->v[x].s.d[0], red = C / 4 > 0 ? C / 4 : 1;
  int p =
      layer(G, S, chance(r, 80) ? "global_avgpool" : "global_maxpool", &x, 1, img(C, 1, 1))->out;
  Layer *l = layer(G, S, "conv2d", &p, 1, img(red, 1, 1));
  attr_int(l, "out", red);
  attr_int(l, "kernel", 1);
  int a = layer(G, S, chance(r, 50) ? "relu" : "silu", &l->out, 1, img(red, 1, 1))->out;
  l = layer(G, S, "conv2d", &a, 1, img(C, 1, 1));
  attr_channels(S, l, "out", C);
  attr_int(l, "kernel", 1);
  return layer(G, S, chance(r, 70) ? "sigmoid" : "hardsigmoid", &l->out, 1, img(C, 1, 1))->out;
}

/* mul: by a value of the same shape, or by one value per channel: a
   parameter [C, 1, 1] or [C], an SE gate, a gate computed by a linear
   layer from a vector. */
static int op_mul(Gen *G, Scope *S, int x) {
  GenRng *r = G->r;
  GShape s = S->v[x].s;
  if (!room(S, 6))
    return -1;
  int y = -1;
  int kind = s.rank == 1 ? 0 : (int)gen_below(r, 5);
  if (kind == 0) {
    y = partner(G, S, x);
  } else if (kind == 1) {
    y = op_parameter(G, S, chance(r, 70) ? img(s.d[0], 1, 1) : vec(s.d[0]));
  } else if (kind <= 3) {
    if (G->o->se_blocks && chance(r, 60)) { /* MBConv's expansion, a blocked width */
      int64_t e = 16 * between(r, 1, 3);
      Layer *l = layer(G, S, "conv2d", &x, 1, img(e, s.d[1], s.d[2]));
      attr_channels(S, l, "out", e);
      attr_int(l, "kernel", 1);
      x = l->out;
      s = S->v[x].s;
    }
    y = se_gate(G, S, x);
  } else if (!S->body) {
    int v = pick(G, S, 1);
    if (v < 0 || numel(&S->v[v].s) > MAX_FEATURES)
      return -1;
    Layer *l = layer(G, S, "linear", &v, 1, vec(s.d[0]));
    attr_int(l, "out", s.d[0]);
    y = layer(G, S, "sigmoid", &l->out, 1, vec(s.d[0]))->out;
  }
  if (y < 0)
    return -1;
  int in[2] = {x, y};
  if (chance(r, 40))
    in[0] = y, in[1] = x;
  int m = layer(G, S, "mul", in, 2, s)->out;
  /* An SE block's end: a 1x1 projection reads the gated tensor (the
     fuse-gate pass applies the gate as that conv reads x) */
  if (!G->o->se_blocks || kind < 2 || kind > 3 || s.rank != 3 || !chance(r, 80))
    return m;
  int64_t oc = chance(r, 60) ? 16 * between(r, 1, 3) : channels(G);
  Layer *l = layer(G, S, "conv2d", &m, 1, img(oc, s.d[1], s.d[2]));
  attr_channels(S, l, "out", oc);
  attr_int(l, "kernel", 1);
  return l->out;
}

/* Sibling 1x1 convs reading one value (the fold-1x1 pass merges them),
   often joined by a concat (Inception). */
static int op_siblings(Gen *G, Scope *S, int x) {
  GenRng *r = G->r;
  GShape s = S->v[x].s;
  if (s.rank != 3 || !room(S, 6))
    return -1;
  int n = (int)between(r, 2, 4), outs[4];
  bool blocked = chance(r, 50);
  for (int i = 0; i < n; i++) {
    int64_t oc = blocked ? 16 * between(r, 1, 3) : channels(G);
    Layer *l = layer(G, S, "conv2d", &x, 1, img(oc, s.d[1], s.d[2]));
    attr_channels(S, l, "out", oc);
    attr_int(l, "kernel", 1);
    if (chance(r, 40))
      attr_bool(l, "bias", false);
    outs[i] = l->out;
    if (chance(r, 50))
      outs[i] = layer(G, S, "relu", &outs[i], 1, S->v[outs[i]].s)->out;
  }
  if (!chance(r, 65))
    return outs[n - 1];
  int64_t c = 0;
  for (int i = 0; i < n; i++)
    c += S->v[outs[i]].s.d[0];
  return layer(G, S, "concat", outs, n, img(c, s.d[1], s.d[2]))->out;
}

/* A conv's output scaled at once: by a constant (stochastic depth), or by
   a per-channel parameter (ConvNeXt's layer scale), which fold-linear
   folds into the conv. */
static int layer_scale(Gen *G, Scope *S, int x) {
  GShape s = S->v[x].s;
  if (chance(G->r, 50)) {
    Layer *l = layer(G, S, "scale", &x, 1, s);
    attr_float(l, "factor", frac(G->r, 0.25, 1.75));
    return l->out;
  }
  int p = op_parameter(G, S, chance(G->r, 70) ? img(s.d[0], 1, 1) : vec(s.d[0]));
  int in[2] = {x, p};
  if (chance(G->r, 50))
    in[0] = p, in[1] = x;
  return layer(G, S, "mul", in, 2, s)->out;
}

/* ---------------------------------------------------------------- choosing */

typedef enum {
  K_CONV,
  K_POINTWISE,
  K_LINEAR,
  K_BN,
  K_LN,
  K_ACT,
  K_MAXPOOL,
  K_AVGPOOL,
  K_ADAPTIVE,
  K_LRN,
  K_FLATTEN,
  K_DROPOUT,
  K_SCALE,
  K_SOFTMAX,
  K_SHUFFLE,
  K_SLICE,
  K_CONCAT,
  K_ADD,
  K_MEAN,
  K_MUL,
  K_SIBLINGS,
  K_BLOCK,
  K_COUNT
} Kind;

/* How often each kind is tried, at the top level and in a body. */
static const int weight_top[K_COUNT] = {16, 3, 4, 6, 3, 12, 4, 4, 3, 1, 2,
                                        1,  2, 1, 2, 3, 6,  6, 2, 5, 3, 4};
static const int weight_body[K_COUNT] = {10, 3, 0, 4, 2, 8, 2, 2, 1, 1, 0,
                                         1,  1, 1, 2, 2, 3, 3, 1, 3, 2, 0};

static int op_block(Gen *G, Scope *S, int x);

static int try_kind(Gen *G, Scope *S, Kind k, int x) {
  switch (k) {
  case K_CONV:
    return op_conv(G, S, x);
  case K_POINTWISE:
    return op_pointwise(G, S, x);
  case K_LINEAR:
    return op_linear(G, S, x);
  case K_BN:
    return op_norm(G, S, x, "batchnorm");
  case K_LN:
    return op_norm(G, S, x, "layernorm");
  case K_ACT:
    return op_act(G, S, x);
  case K_MAXPOOL:
  case K_AVGPOOL:
    return op_pool(G, S, x, k == K_MAXPOOL);
  case K_ADAPTIVE:
    return op_adaptive(G, S, x);
  case K_LRN:
    return op_lrn(G, S, x);
  case K_FLATTEN:
  case K_DROPOUT:
  case K_SCALE:
  case K_SOFTMAX:
  case K_SHUFFLE:
    return op_simple(G, S, x, (int)(k - K_FLATTEN));
  case K_SLICE:
    return op_slice(G, S, x);
  case K_CONCAT:
    return op_concat(G, S, x);
  case K_ADD:
  case K_MEAN:
    return op_add(G, S, x, k == K_MEAN);
  case K_MUL:
    return op_mul(G, S, x);
  case K_SIBLINGS:
    return op_siblings(G, S, x);
  case K_BLOCK:
    return op_block(G, S, x);
  case K_COUNT:
    break;
  }
  return -1;
}

/* One step: a kind by weight, a value it applies to; a few tries. */
static int step(Gen *G, Scope *S) {
  const int *w = S->body ? weight_body : weight_top;
  int total = 0;
  for (int k = 0; k < K_COUNT; k++)
    total += w[k];
  for (int tries = 0; tries < 24; tries++) {
    if (!room(S, 8))
      return -1;
    int c = (int)gen_below(G->r, (uint32_t)total), k = 0;
    while (c >= w[k])
      c -= w[k++];
    int x = pick(G, S, 0);
    int v = x >= 0 ? try_kind(G, S, (Kind)k, x) : -1;
    if (v >= 0 && k == K_CONV && chance(G->r, 12) && room(S, 3))
      v = layer_scale(G, S, v);
    if (v >= 0)
      return v;
  }
  /* the last resort, always valid: an activation of the previous value */
  return S->prev >= 0 && room(S, 1) ? op_act(G, S, S->prev) : -1;
}

/* ---------------------------------------------------------------- blocks */

/* A bottleneck on $mid channels and back: conv to $mid, maybe a norm and
   an activation, 1x1 conv to $in. Its values depend on $mid: hidden. */
static void mid_prefix(Gen *G, Scope *B) {
  GenRng *r = G->r;
  int64_t C = B->v[0].s.d[0], H = B->v[0].s.d[1], W = B->v[0].s.d[2], mid = B->mid;
  int64_t k = chance(r, 50) ? 1 : 3;
  int x = 0;
  Layer *l = layer(G, B, "conv2d", &x, 1, img(mid, H, W));
  Attr *a = attr(l, "out");
  snprintf(a->yaml, sizeof a->yaml, "$mid");
  snprintf(a->json, sizeof a->json, "%lld", (long long)mid);
  a->mid = true;
  attr_int(l, "kernel", k);
  if (k == 3)
    attr_int(l, "pad", 1);
  int v = l->out;
  B->v[v].hidden = true;
  if (chance(r, 60)) {
    v = layer(G, B, chance(r, 70) ? "batchnorm" : "layernorm", &v, 1, img(mid, H, W))->out;
    B->v[v].hidden = true;
  }
  if (chance(r, 70)) {
    v = op_act(G, B, v);
    B->v[v].hidden = true;
  }
  l = layer(G, B, "conv2d", &v, 1, img(C, H, W));
  attr_expr(l, "out", "$in", C);
  attr_int(l, "kernel", 1);
}

/* The value the body ends from: last if it has s's height and width;
   else (an SE gate's [C, 1, 1], a vector parameter the steps read on)
   the latest value that has them, times last when last is one value per
   channel of it. A 1x1 conv on last would not restore the plane, which
   the generator assumed for seeds 1110, 1757, 1850, 2665, 2674, 2945. */
static int back_to_hw(Gen *G, Scope *B, int last, const GShape *s) {
  if (same_hw(&B->v[last].s, s))
    return last;
  int v = last;
  while (v > 0 && (!same_hw(&B->v[v].s, s) || B->v[v].hidden))
    v--;
  const GShape *t = &B->v[last].s;
  bool per_channel = t->d[0] == B->v[v].s.d[0] &&
                     (t->rank == 1 || (t->d[1] == 1 && t->d[2] == 1)) && !B->v[last].hidden;
  if (!per_channel || !room(B, 1))
    return v;
  int in[2] = {v, last};
  if (chance(G->r, 50))
    in[0] = last, in[1] = v;
  return layer(G, B, "mul", in, 2, B->v[v].s)->out;
}

/* The body of a block or group on input shape s: a few layers that keep
   the height and width, then back to s's channels, often a residual add. */
static void gen_body(Gen *G, Scope *B, GShape s, int64_t mid) {
  memset(B, 0, sizeof *B);
  B->r = G->r;
  B->body = true;
  B->mid = mid;
  snprintf(B->v[0].ref, sizeof B->v[0].ref, "input");
  B->v[0].s = s;
  B->v[0].layer = -1;
  B->nv = 1;
  B->prev = 0;
  if (mid)
    mid_prefix(G, B);
  int n = (int)between(G->r, mid ? 0 : 1, 4);
  for (int i = 0; i < n; i++)
    if (step(G, B) < 0)
      break;
  int last = back_to_hw(G, B, B->prev, &s);
  /* the block's output is its last layer: one more when last is not it */
  if (!same_shape(&B->v[last].s, &s) || last != B->prev) {
    bool pw = chance(G->r, 30);
    Layer *l = layer(G, B, pw ? "pointwise_linear" : "conv2d", &last, 1, s);
    attr_expr(l, "out", "$in", s.d[0]);
    if (!pw)
      attr_int(l, "kernel", 1);
    last = l->out;
  }
  if (chance(G->r, 55)) {
    int in[2] = {0, last};
    if (chance(G->r, 50))
      in[0] = last, in[1] = 0;
    last = layer(G, B, "add", in, 2, s)->out;
    if (chance(G->r, 50))
      op_act(G, B, last);
  }
}

/* The name of instance i of a repeated layer: "3", or "u3". */
static void inst_name(const Layer *l, int i, char *out, size_t n) {
  if (l->repeat_name)
    snprintf(out, n, "u%d", l->repeat_from + i);
  else
    snprintf(out, n, "%d", l->repeat_from + i);
}

/* The twin's name of instance i's output: its prefix and the body's last
   layer. */
static void inst_out(const Gen *G, const Layer *l, int i, char *out, size_t n) {
  const Scope *B = G->blk[l->block];
  const char *last = B->l[B->v[B->prev].layer].name;
  if (l->repeat) {
    char in[24];
    inst_name(l, i, in, sizeof in);
    snprintf(out, n, "%s.%s.%s", l->name, in, last);
  } else {
    snprintf(out, n, "%s.%s", l->name, last);
  }
}

/* An instance of a block (new, or one defined before for this shape) or
   an inline group, repeated or not. */
static int op_block(Gen *G, Scope *S, int x) {
  GenRng *r = G->r;
  GShape s = S->v[x].s;
  if (S->body || !G->o->blocks || s.rank != 3 || !room(S, 4))
    return -1;
  int b = -1;
  for (int i = 0; i < G->nblk && b < 0; i++)
    if (same_shape(&G->blk[i]->v[0].s, &s) && !G->blk[i]->group && chance(r, 50))
      b = i;
  if (b < 0) {
    if (G->nblk >= MAXB)
      return -1;
    Scope *B = calloc(1, sizeof *B);
    if (!B)
      abort();
    gen_body(G, B, s, chance(r, 45) ? between(r, 1, 24) : 0);
    b = G->nblk;
    G->blk[G->nblk++] = B;
    B->group = !B->mid && chance(r, 35); /* written inline, used once */
  }
  Scope *B = G->blk[b];
  Layer *l = layer(G, S, "block", &x, 1, s);
  l->block = b;
  l->repeat = chance(r, 25) ? 0 : (int)between(r, 1, 3);
  if (l->repeat && chance(r, 20))
    l->repeat_name = "u{}";
  if (l->repeat && chance(r, 25))
    l->repeat_from = 1;
  l->mid = B->mid;
  if (B->mid && chance(r, 60))
    l->mid = between(r, 1, 24);
  if (B->mid && l->repeat >= 2 && chance(r, 50)) {
    l->at_index = (int)between(r, 0, l->repeat - 1);
    l->at_mid = between(r, 1, 24);
  }
  inst_out(G, l, l->repeat ? l->repeat - 1 : 0, S->v[l->out].full, sizeof S->v[l->out].full);
  /* the outputs of the instances before the last, by name */
  for (int i = 0; i + 1 < l->repeat && S->nv < MAXV - 8; i++) {
    Val *v = &S->v[S->nv++];
    memset(v, 0, sizeof *v);
    char in[24];
    inst_name(l, i, in, sizeof in);
    snprintf(v->ref, sizeof v->ref, "%s.%s", l->name, in);
    inst_out(G, l, i, v->full, sizeof v->full);
    v->s = s;
    v->layer = -1;
  }
  S->prev = l->out;
  return l->out;
}

/* ---------------------------------------------------------------- writing */

/* A layer's YAML mapping (flow style), its `in:` left out when it reads
   the chain's previous value. `prev` is that value. */
static void write_layer(Buf *b, const Gen *G, const Scope *S, const Layer *l, int prev,
                        const char *indent) {
  bprintf(b, "%s- {", indent);
  const char *sep = "";
  if (l->named || l->block >= 0) {
    bprintf(b, "name: %s", l->name);
    sep = ", ";
  }
  if (l->block >= 0) {
    bprintf(b, "%sblock: blk%d", sep, l->block);
  } else {
    bprintf(b, "%sop: %s", sep, l->op);
  }
  if (l->nin > 1 || (l->nin == 1 && l->in[0] != prev)) {
    if (l->nin == 1) {
      bprintf(b, ", in: %s", S->v[l->in[0]].ref);
    } else {
      bprintf(b, ", in: [");
      for (int i = 0; i < l->nin; i++)
        bprintf(b, "%s%s", i ? ", " : "", S->v[l->in[i]].ref);
      bprintf(b, "]");
    }
  }
  for (int i = 0; i < l->nat; i++)
    bprintf(b, ", %s: %s", l->at[i].key, l->at[i].yaml);
  if (l->repeat)
    bprintf(b, ", repeat: %d", l->repeat);
  if (l->repeat_name)
    bprintf(b, ", repeat_name: \"%s\"", l->repeat_name);
  if (l->repeat_from)
    bprintf(b, ", repeat_from: %d", l->repeat_from);
  if (l->block >= 0 && l->mid != G->blk[l->block]->mid)
    bprintf(b, ", mid: %lld", (long long)l->mid);
  if (l->at_index >= 0)
    bprintf(b, ", at: {%d: {mid: %lld}}", l->repeat_from + l->at_index, (long long)l->at_mid);
  bprintf(b, "}\n");
}

/* A body's layers, one per line. */
static void write_body(Buf *b, const Gen *G, const Scope *B, const char *indent) {
  int prev = 0;
  for (int i = 0; i < B->nl; i++) {
    write_layer(b, G, B, &B->l[i], prev, indent);
    prev = B->l[i].out;
  }
}

/* An inline group: block style, its body inside. */
static void write_group(Buf *b, const Gen *G, const Scope *S, const Layer *l, int prev) {
  bprintf(b, "  - name: %s\n", l->name);
  if (l->in[0] != prev)
    bprintf(b, "    in: %s\n", S->v[l->in[0]].ref);
  if (l->repeat)
    bprintf(b, "    repeat: %d\n", l->repeat);
  if (l->repeat_name)
    bprintf(b, "    repeat_name: \"%s\"\n", l->repeat_name);
  if (l->repeat_from)
    bprintf(b, "    repeat_from: %d\n", l->repeat_from);
  bprintf(b, "    layers:\n");
  write_body(b, G, G->blk[l->block], "      ");
}

static void write_spec(Buf *b, const Gen *G, const int *outs, int nout, bool list_outputs) {
  const Scope *S = &G->top;
  bprintf(b, "# generated by tests/difftest/gen.c\ncnncc: 1\nname: %s\ninputs:\n", G->o->name);
  int ninputs = 0;
  while (ninputs < S->nv && S->v[ninputs].layer < 0 && !strchr(S->v[ninputs].ref, '.'))
    ninputs++;
  for (int i = 0; i < ninputs; i++) {
    const GShape *s = &S->v[i].s;
    if (s->rank == 3)
      bprintf(b, "  %s: [%lld, %lld, %lld]\n", S->v[i].ref, (long long)s->d[0], (long long)s->d[1],
              (long long)s->d[2]);
    else
      bprintf(b, "  %s: [%lld]\n", S->v[i].ref, (long long)s->d[0]);
  }
  if (list_outputs) {
    bprintf(b, "outputs: [");
    for (int i = 0; i < nout; i++)
      bprintf(b, "%s%s", i ? ", " : "", S->v[outs[i]].ref);
    bprintf(b, "]\n");
  }
  bool any = false;
  for (int i = 0; i < G->nblk; i++) {
    const Scope *B = G->blk[i];
    if (B->group)
      continue;
    if (!any)
      bprintf(b, "blocks:\n");
    any = true;
    bprintf(b, "  blk%d:\n", i);
    if (B->mid)
      bprintf(b, "    params: {mid: %lld}\n", (long long)B->mid);
    bprintf(b, "    layers:\n");
    write_body(b, G, B, "      ");
  }
  bprintf(b, "layers:\n");
  int prev = 0;
  for (int i = 0; i < S->nl; i++) {
    const Layer *l = &S->l[i];
    if (l->block >= 0 && G->blk[l->block]->group)
      write_group(b, G, S, l, prev);
    else
      write_layer(b, G, S, l, prev, "  ");
    prev = l->out;
  }
}

/* One twin node: name, op, inputs by full name, attributes as written
   (with this instance's $mid). */
static void write_node(Buf *b, Gen *G, const Layer *l, const char *name, char in[][160],
                       int64_t mid) {
  bprintf(b, "%s\n  {\"name\": \"%s\", \"op\": \"%s\", \"in\": [", G->nodes ? "," : "", name,
          l->op);
  for (int i = 0; i < l->nin; i++)
    bprintf(b, "%s\"%s\"", i ? ", " : "", in[i]);
  bprintf(b, "], \"attrs\": {");
  for (int i = 0; i < l->nat; i++) {
    if (l->at[i].mid)
      bprintf(b, "%s\"%s\": %lld", i ? ", " : "", l->at[i].key, (long long)mid);
    else
      bprintf(b, "%s\"%s\": %s", i ? ", " : "", l->at[i].key, l->at[i].json);
  }
  bprintf(b, "}}");
  G->nodes++;
}

/* Every instance of a block layer, expanded. */
static void write_instances(Buf *b, Gen *G, const Layer *l, const char *input) {
  const Scope *B = G->blk[l->block];
  int n = l->repeat ? l->repeat : 1;
  char prev_out[160], in[MAXIN][160], prefix[96], name[200];
  snprintf(prev_out, sizeof prev_out, "%s", input);
  for (int i = 0; i < n; i++) {
    char inst[24];
    inst_name(l, i, inst, sizeof inst);
    if (l->repeat)
      snprintf(prefix, sizeof prefix, "%s.%s", l->name, inst);
    else
      snprintf(prefix, sizeof prefix, "%s", l->name);
    int64_t mid = i == l->at_index ? l->at_mid : l->mid;
    for (int j = 0; j < B->nl; j++) {
      const Layer *bl = &B->l[j];
      for (int k = 0; k < bl->nin; k++) {
        int v = bl->in[k];
        if (v == 0)
          snprintf(in[k], sizeof in[k], "%s", prev_out);
        else
          snprintf(in[k], sizeof in[k], "%s.%s", prefix, B->l[B->v[v].layer].name);
      }
      snprintf(name, sizeof name, "%s.%s", prefix, bl->name);
      write_node(b, G, bl, name, in, mid);
    }
    inst_out(G, l, i, prev_out, sizeof prev_out);
  }
}

static void write_twin(Buf *b, Gen *G, const int *outs, int nout) {
  const Scope *S = &G->top;
  bprintf(b, "{\"name\": \"%s\",\n \"inputs\": [", G->o->name);
  int ninputs = 0;
  while (ninputs < S->nv && S->v[ninputs].layer < 0 && !strchr(S->v[ninputs].ref, '.'))
    ninputs++;
  for (int i = 0; i < ninputs; i++) {
    const GShape *s = &S->v[i].s;
    bprintf(b, "%s{\"name\": \"%s\", \"shape\": [%lld", i ? ", " : "", S->v[i].ref,
            (long long)s->d[0]);
    if (s->rank == 3)
      bprintf(b, ", %lld, %lld", (long long)s->d[1], (long long)s->d[2]);
    bprintf(b, "]}");
  }
  bprintf(b, "],\n \"outputs\": [");
  for (int i = 0; i < nout; i++)
    bprintf(b, "%s{\"name\": \"%s\", \"node\": \"%s\"}", i ? ", " : "", S->v[outs[i]].ref,
            S->v[outs[i]].full);
  bprintf(b, "],\n \"nodes\": [");
  for (int i = 0; i < S->nl; i++) {
    const Layer *l = &S->l[i];
    if (l->block >= 0) {
      write_instances(b, G, l, S->v[l->in[0]].full);
      continue;
    }
    char in[MAXIN][160];
    for (int k = 0; k < l->nin; k++)
      snprintf(in[k], sizeof in[k], "%s", S->v[l->in[k]].full);
    write_node(b, G, l, l->name, in, 0);
  }
  bprintf(b, "\n ]}\n");
}

/* ---------------------------------------------------------------- networks */

void gen_options_default(GenOptions *o) {
  *o = (GenOptions){.max_layers = 14,
                    .max_channels = 70,
                    .max_hw = 20,
                    .blocks = 1,
                    .name = "gen",
                    .se_blocks = true};
}

void gen_options_small(GenOptions *o) {
  *o = (GenOptions){.max_layers = 6, .max_channels = 40, .max_hw = 10, .blocks = 1, .name = "fuzz"};
}

static void add_input(Gen *G, const char *name, GShape s) {
  Scope *S = &G->top;
  Val *v = &S->v[S->nv++];
  memset(v, 0, sizeof *v);
  snprintf(v->ref, sizeof v->ref, "%s", name);
  snprintf(v->full, sizeof v->full, "%s", name);
  v->s = s;
  v->layer = -1;
}

/* The graph inputs: an image (odd and tiny planes too), sometimes a
   second image of its size or another, sometimes a vector. */
static void gen_inputs(Gen *G) {
  GenRng *r = G->r;
  int64_t H = chance(r, 15) ? between(r, 1, 3) : between(r, 3, G->o->max_hw);
  int64_t W = chance(r, 70) ? H : between(r, 1, G->o->max_hw);
  int64_t C = chance(r, 30) ? 16 * between(r, 1, 4) : between(r, 1, 16);
  if (chance(r, 5) && G->o->max_hw >= 16)
    C = 64, H = W = between(r, 14, 18); /* the size the Winograd kernels take */
  add_input(G, "x", img(C, H, W));
  if (chance(r, 25))
    add_input(G, "aux",
              chance(r, 50) ? img(between(r, 1, 24), H, W)
                            : img(between(r, 1, 24), between(r, 1, 8), between(r, 1, 8)));
  if (chance(r, 20))
    add_input(G, "v", vec(chance(r, 30) ? 16 * between(r, 1, 4) : between(r, 1, 40)));
  G->top.prev = 0;
}

void gen_network(GenRng *r, const GenOptions *o, GenNet *out) {
  Gen *G = calloc(1, sizeof *G);
  if (!G)
    abort();
  G->r = r;
  G->o = o;
  G->top.r = r;
  gen_inputs(G);
  int n = (int)between(r, 2, o->max_layers);
  for (int i = 0; i < n; i++)
    if (step(G, &G->top) < 0)
      break;
  if (G->top.nl == 0)
    op_act(G, &G->top, 0);
  /* outputs: the last layer, and now and then other values (intermediate
     ones, read by later layers; rarely a graph input) */
  Scope *S = &G->top;
  int outs[MAXOUT], nout = 0;
  outs[nout++] = S->l[S->nl - 1].out;
  int extra = chance(r, 40) ? (int)between(r, 1, MAXOUT - 1) : 0;
  for (int i = 0; i < extra; i++) {
    int v = chance(r, 4) ? 0 : (int)between(r, 0, S->nv - 1);
    bool dup = S->v[v].hidden;
    for (int k = 0; k < nout; k++)
      dup |= outs[k] == v;
    if (!dup)
      outs[nout++] = v;
  }
  if (chance(r, 50)) { /* the last layer need not be the first output */
    int k = (int)gen_below(r, (uint32_t)nout), t = outs[0];
    outs[0] = outs[k], outs[k] = t;
  }
  /* outputs: may be left out when it would say the default */
  bool list =
      nout > 1 || outs[0] != S->l[S->nl - 1].out || S->l[S->nl - 1].block >= 0 || chance(r, 50);
  Buf spec = {0}, twin = {0};
  write_spec(&spec, G, outs, nout, list);
  write_twin(&twin, G, outs, nout);
  out->spec = spec.s;
  out->twin = twin.s;
  out->layers = G->nodes;
  for (int i = 0; i < G->nblk; i++)
    free(G->blk[i]);
  free(G);
}

void gen_free(GenNet *n) {
  free(n->spec);
  free(n->twin);
  n->spec = n->twin = NULL;
}

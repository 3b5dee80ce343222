/*
 * write.c: a graph back into the spec language (cnncc --emit=spec).
 *
 * A frontend's graph (a spec's after lowering, or a model's imported from
 * another format) is written as a flat spec: the header, then one layer per
 * line in YAML's flow style, in execution order,
 *
 *   - {name: conv1, op: conv2d, out: 64, kernel: 7, stride: 2, pad: 3, bias: false}
 *   - {name: layer1_0_relu, op: relu}
 *   - {name: layer1_0_add, op: add, in: [layer1_0_bn2, maxpool]}
 *
 * for a user to read, edit and compile again. Loading the written spec gives
 * the same graph back, node for node, with only the names changed (the
 * tests compare `--emit=ir` of both, modulo names, and the outputs of both
 * .so).
 *
 * Three steps, so that nothing is written when a layer cannot be:
 *   1. names: every input and layer gets a flat name, valid and unique
 *      (flat_name, the rule of docs/spec.md, "Written specs");
 *   2. plan: each layer's op under a name of the language (an alias where
 *      one fits: global_avgpool) and which of its attributes to write; every
 *      layer the language cannot express is reported;
 *   3. print.
 *
 * The op table drives the plan (ops.c): for each attribute row, its kind
 * says how its Attrs field is written, and it is written when it is
 * required or when leaving it out would not give the field's value (the
 * default, or for a pool's stride, the kernel). The defaults are those
 * lowering starts from, ir_node_new's. A plan is checked by doing what
 * lowering will do with it (the defaults, the written values, the kernel
 * for an absent pool stride, an alias's implied attributes) and comparing
 * every field the op's rows name. So a new op or alias needs no code here,
 * and a new kind of attribute does not compile (the switches name every
 * kind) until it has a written form.
 *
 * The parameters' names come from a replica of the graph built under the
 * written names with ir_infer_shape, which lowering calls too: they are the
 * names the written spec's layers give their parameters, by construction.
 */
#include <stdlib.h>
#include <string.h>

#include "spec_internal.h"

#define BE_MAX_INS 64 /* inputs of a layer checked by same_after_inference */

#define LIMIT_31 ((int64_t)1 << 31)
#define MAX_FORMS 8 /* names of one op: its own and its aliases */

/* --------------------------------------------------------------- name set */

typedef struct {
  const char **keys;
  int cap, len;
} NameSet;

static unsigned name_hash(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static bool nameset_has(const NameSet *t, const char *k) {
  if (!t->cap)
    return false;
  for (unsigned i = name_hash(k) & (unsigned)(t->cap - 1);; i = (i + 1) & (unsigned)(t->cap - 1))
    if (!t->keys[i])
      return false;
    else if (!strcmp(t->keys[i], k))
      return true;
}

static void nameset_add(Arena *a, NameSet *t, const char *k) {
  if (2 * (t->len + 1) > t->cap) {
    NameSet n = {.cap = t->cap ? 2 * t->cap : 64};
    n.keys = arena_alloc(a, sizeof(char *) * (size_t)n.cap);
    for (int i = 0; i < t->cap; i++)
      if (t->keys[i])
        nameset_add(a, &n, t->keys[i]);
    *t = n;
  }
  unsigned i = name_hash(k) & (unsigned)(t->cap - 1);
  while (t->keys[i])
    i = (i + 1) & (unsigned)(t->cap - 1);
  t->keys[i] = k;
  t->len++;
}

/* ------------------------------------------------------------------ the writer */

/* How one layer is written. */
typedef struct {
  const SpecOp *op; /* the op's row, or an alias */
  unsigned written; /* bit j: attribute op->attrs[j] is written */
  Attrs attrs;      /* what lowering makes of the written layer */
} Plan;

typedef struct {
  const Graph *g;
  Diag *d;
  Arena *a;                                  /* everything but the result */
  Attrs defaults;                            /* what lowering starts from */
  const SpecOp *forms[OP_COUNT_][MAX_FORMS]; /* aliases first, the row last */
  NameSet used;
  const char **name; /* by node id: its written name */
  Plan *plan;        /* by node id */
  Node *last;        /* the last layer */
  int errors;
} Writer;

static bool is_layer(const Node *n) { return !n->dead && n->op != OP_INPUT; }

/* The attributes every node starts with, in lowering as in ir_node_new. */
static void init_defaults(Writer *w) {
  Graph *scratch = ir_graph_new("defaults");
  memcpy(&w->defaults, &ir_node_new(scratch, OP_RELU, "x", NULL, 0, (SrcLoc){0})->attr,
         sizeof w->defaults);
  ir_graph_free(scratch);
}

/* Each op's names in the language: its aliases (tried first: they say more
   in fewer words), then its own row. An op with none is not offered. */
static void init_forms(Writer *w) {
  const char **names;
  int n = spec_op_names(w->a, &names);
  int count[OP_COUNT_] = {0};
  for (int i = 0; i < n; i++) {
    const SpecOp *so = spec_op_find(names[i]);
    if (so && so->alias) {
      CHECK(count[so->op] < MAX_FORMS - 1, "op '%s' has too many aliases", names[i]);
      w->forms[so->op][count[so->op]++] = so;
    }
  }
  for (int o = 0; o < OP_COUNT_; o++) {
    const SpecOp *row = (ir_ops[o].flags & OPF_NOSPEC) ? NULL : spec_op_find(ir_ops[o].name);
    if (row)
      w->forms[o][count[o]++] = row;
    else
      memset(w->forms[o], 0, sizeof w->forms[o]); /* not offered, nor its aliases */
  }
}

/* The op's own row (its last form), or NULL. */
static const SpecOp *own_row(const Writer *w, Op o) {
  const SpecOp *row = NULL;
  for (int i = 0; i < MAX_FORMS && w->forms[o][i]; i++)
    row = w->forms[o][i];
  return row;
}

/* An error about layer n: at its source location when it has one. */
__attribute__((format(printf, 3, 4))) static void cannot(Writer *w, const Node *n, const char *fmt,
                                                         ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n->loc.file && strcmp(n->loc.file, "<builtin>") != 0)
    diag_report(w->d, DIAG_ERROR, n->loc, 1, "--emit=spec: cannot write layer '%s' (%s): %s",
                n->name, ir_ops[n->op].name, msg);
  else
    diag_plain(w->d, DIAG_ERROR, "--emit=spec: cannot write layer '%s' (%s): %s", n->name,
               ir_ops[n->op].name, msg);
  w->errors++;
}

/* ------------------------------------------------------------------ names */

/* Whether the plain scalar s reads back as the string s (not as a boolean,
   a number or null), as the spec's literals are read. */
static bool reads_as_itself(const char *s) {
  YNode y = {.kind = Y_SCALAR, .str = s, .len = strlen(s)};
  Value v = expr_literal(&y);
  return v.kind == V_STR && !strcmp(v.s, s);
}

static bool ident_char(char c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A valid name from any string (docs/spec.md, "Written specs"): each run of
   characters other than ASCII letters, digits and '_' becomes one '_', or
   nothing at either end; an empty result is `fallback`; a leading digit
   gets a '_' before it; a reserved word (input) or one that reads as
   another value (true, null, ...) gets a '_' after it.
     "layer1.0.conv1" -> layer1_0_conv1     "/features/features.0/Conv" ->
     features_features_0_Conv               "0" -> _0        "input" -> input_ */
static const char *flat_name(Arena *a, const char *s, const char *fallback) {
  size_t n = strlen(s);
  char *out = arena_alloc(a, n + 3);
  size_t k = 0;
  bool gap = false;
  for (; *s; s++) {
    if (!ident_char(*s)) {
      gap = true;
      continue;
    }
    if (gap && k)
      out[k++] = '_';
    gap = false;
    out[k++] = *s;
  }
  out[k] = 0;
  if (!k)
    return flat_name(a, fallback, "x");
  if (out[0] >= '0' && out[0] <= '9') {
    memmove(out + 1, out, k + 1);
    out[0] = '_';
    k++;
  }
  if (!strcmp(out, "input") || !reads_as_itself(out)) {
    out[k++] = '_';
    out[k] = 0;
  }
  return out;
}

/* `base`, or base_2, base_3, ...: the first not taken. */
static const char *unique_name(Writer *w, const char *base) {
  const char *name = base;
  for (int k = 2; nameset_has(&w->used, name); k++)
    name = arena_printf(w->a, "%s_%d", base, k);
  nameset_add(w->a, &w->used, name);
  return name;
}

/* The name a layer is known by: the graph output's it computes (the name a
   host sees), else its own. */
static const char *model_name(const Graph *g, const Node *n) {
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i].node == n && g->outputs[i].name && *g->outputs[i].name)
      return g->outputs[i].name;
  return n->name;
}

/* Step 1: the inputs first, then the layers in order. */
static void name_all(Writer *w) {
  const Graph *g = w->g;
  for (int i = 0; i < g->ninputs; i++)
    w->name[g->inputs[i].node->id] = unique_name(w, flat_name(w->a, g->inputs[i].name, "x"));
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    if (is_layer(n))
      w->name[n->id] = unique_name(w, flat_name(w->a, model_name(g, n), ir_ops[n->op].name));
  }
}

/* ------------------------------------------------------------- attributes */

static size_t kind_size(AttrKind k) {
  switch (k) {
  case AK_INT:
  case AK_INDEX:
    return sizeof(int64_t);
  case AK_PAIR:
    return 2 * sizeof(int64_t);
  case AK_PAD:
    return 4 * sizeof(int64_t);
  case AK_BOOL:
    return sizeof(bool);
  case AK_FLOAT:
    return sizeof(float);
  case AK_AXIS:
  case AK_CHOICE:
    return sizeof(int);
  case AK_SHAPE:
    return sizeof(Shape);
  }
  CHECK(false, "attribute kind %d", (int)k);
  return 0;
}

/* Whether the literal s gives x where a float attribute is read (an int or
   a float literal, through double, as lowering's want_float does). */
static bool reads_as_float(const char *s, float x) {
  YNode y = {.kind = Y_SCALAR, .str = s, .len = strlen(s)};
  Value v = expr_literal(&y);
  float f;
  if (v.kind == V_INT)
    f = (float)(double)v.i;
  else if (v.kind == V_FLOAT)
    f = (float)v.f;
  else
    return false;
  return memcmp(&f, &x, sizeof f) == 0;
}

/* The shortest %g text that reads back as exactly x. */
static void float_text(float x, char *buf, size_t n) {
  for (int prec = 1; prec <= 9; prec++) {
    snprintf(buf, n, "%.*g", prec, (double)x);
    if (reads_as_float(buf, x))
      return;
  }
  snprintf(buf, n, "%.17g", (double)x); /* the exact double: -0 is the case */
  if (!reads_as_float(buf, x))
    snprintf(buf, n, "%.17g.0", (double)x);
  CHECK(reads_as_float(buf, x), "no literal reads back as %a", (double)x);
}

/* Integers in [min, 2^31) (the language's range) as text: one value if all
   are equal, else a list; pad also [h, w] when top = bottom and left =
   right. false (why) if one is out of range. */
static bool ints_text(const AttrSpec *as, const int64_t *x, int count, int64_t min, char *buf,
                      size_t n, char *why, size_t nwhy) {
  for (int i = 0; i < count; i++)
    if (x[i] < min || x[i] >= LIMIT_31) {
      snprintf(why, nwhy, "'%s' is %lld; the spec language takes %lld to 2^31-1", as->key,
               (long long)x[i], (long long)min);
      return false;
    }
  bool same = true;
  for (int i = 1; i < count; i++)
    same = same && x[i] == x[0];
  if (same)
    snprintf(buf, n, "%lld", (long long)x[0]);
  else if (count == 4 && x[0] == x[2] && x[1] == x[3])
    snprintf(buf, n, "[%lld, %lld]", (long long)x[0], (long long)x[1]);
  else if (count == 2)
    snprintf(buf, n, "[%lld, %lld]", (long long)x[0], (long long)x[1]);
  else
    snprintf(buf, n, "[%lld, %lld, %lld, %lld]", (long long)x[0], (long long)x[1], (long long)x[2],
             (long long)x[3]);
  return true;
}

/* The value of attribute `as`, its field at v, as the spec writes it; false
   (why) if the language cannot write it. */
static bool attr_text(const AttrSpec *as, const void *v, char *buf, size_t n, char *why,
                      size_t nwhy) {
  int64_t x[4];
  switch (as->kind) {
  case AK_INT:
    memcpy(x, v, sizeof(int64_t));
    return ints_text(as, x, 1, 1, buf, n, why, nwhy);
  case AK_INDEX:
    memcpy(x, v, sizeof(int64_t));
    return ints_text(as, x, 1, 0, buf, n, why, nwhy);
  case AK_CHOICE: {
    int k, count = 0;
    memcpy(&k, v, sizeof k);
    while (as->choices[count])
      count++;
    if (k < 0 || k >= count) {
      snprintf(why, nwhy, "'%s' is choice %d of %d", as->key, k, count);
      return false;
    }
    snprintf(buf, n, "%s", as->choices[k]);
    return true;
  }
  case AK_SHAPE: {
    Shape sh;
    memcpy(&sh, v, sizeof sh);
    if (sh.rank == 1)
      snprintf(buf, n, "[%lld]", (long long)sh.d[0]);
    else if (sh.rank == 3)
      snprintf(buf, n, "[%lld, %lld, %lld]", (long long)sh.d[0], (long long)sh.d[1],
               (long long)sh.d[2]);
    else {
      snprintf(why, nwhy, "'%s' has rank %d; the spec language takes [C, H, W] or [F]", as->key,
               sh.rank);
      return false;
    }
    for (int i = 0; i < sh.rank; i++)
      if (sh.d[i] < 1 || sh.d[i] >= LIMIT_31) {
        snprintf(why, nwhy, "'%s' has a dimension %lld out of the language's range", as->key,
                 (long long)sh.d[i]);
        return false;
      }
    return true;
  }
  case AK_PAIR:
    memcpy(x, v, 2 * sizeof(int64_t));
    return ints_text(as, x, 2, 1, buf, n, why, nwhy);
  case AK_PAD:
    memcpy(x, v, 4 * sizeof(int64_t));
    return ints_text(as, x, 4, 0, buf, n, why, nwhy);
  case AK_BOOL: {
    bool b;
    memcpy(&b, v, sizeof b);
    snprintf(buf, n, "%s", b ? "true" : "false");
    return true;
  }
  case AK_FLOAT: {
    float f;
    memcpy(&f, v, sizeof f);
    bool ok = f > -1e30f && f < 1e30f;
    switch (as->rule) {
    case AR_POSITIVE:
      ok = ok && f > 0;
      break;
    case AR_PROBABILITY:
      ok = ok && f >= 0 && f < 1;
      break;
    case AR_NONE:
    case AR_KERNEL_IF_ABSENT:
      break;
    }
    if (!ok) {
      snprintf(why, nwhy, "'%s' is %g, which the spec language does not take", as->key, (double)f);
      return false;
    }
    float_text(f, buf, n);
    return true;
  }
  case AK_AXIS: {
    int axis;
    memcpy(&axis, v, sizeof axis);
    if (axis != 0) {
      snprintf(why, nwhy, "'%s' is the IR's axis %d; the spec language has only axis 1", as->key,
               axis);
      return false;
    }
    snprintf(buf, n, "1");
    return true;
  }
  }
  CHECK(false, "attribute kind %d", (int)as->kind);
  return false;
}

/* The attributes lowering gives a layer written as op `so` with the
   attributes of `written`, and n's values. */
static void lowered_attrs(const Writer *w, const Node *n, const SpecOp *so, unsigned written,
                          Attrs *out) {
  memcpy(out, &w->defaults, sizeof *out);
  for (int j = 0; j < SPEC_MAX_ATTRS && so->attrs[j].key; j++)
    if (written & (1u << j))
      memcpy((char *)out + so->attrs[j].field, (const char *)&n->attr + so->attrs[j].field,
             kind_size(so->attrs[j].kind));
  for (int j = 0; j < SPEC_MAX_ATTRS && so->attrs[j].key; j++)
    if (so->attrs[j].rule == AR_KERNEL_IF_ABSENT && !(written & (1u << j)))
      memcpy((char *)out + so->attrs[j].field, out->kernel, sizeof out->kernel);
  if (so->implied)
    so->implied(out);
}

/* Whether a and b agree on every field that the rows of t name. */
static bool same_fields(const SpecOp *t, const Attrs *a, const Attrs *b) {
  for (int j = 0; j < SPEC_MAX_ATTRS && t->attrs[j].key; j++)
    if (memcmp((const char *)a + t->attrs[j].field, (const char *)b + t->attrs[j].field,
               kind_size(t->attrs[j].kind)) != 0)
      return false;
  return true;
}

/* Whether a node like n with attributes got (its inputs' shapes) ends up
   with exactly n's attributes once the IR has inferred its shape: the rows'
   fields and every other one too, what an alias implies (pointwise_linear's
   linear_weight) and what inference derives (a chunk's channel range).
   Attrs are zeroed when made and only assigned field by field, so their
   bytes compare. */
static bool same_after_inference(const Node *n, const Attrs *got) {
  Graph *r = ir_graph_new("check");
  Node *ins[BE_MAX_INS];
  bool ok = n->nin <= BE_MAX_INS;
  for (int k = 0; ok && k < n->nin; k++) {
    ins[k] = ir_node_new(r, OP_INPUT, NULL, NULL, 0, n->loc);
    ins[k]->shape = n->in[k]->shape;
  }
  char err[256];
  Node *x = ok ? ir_node_new(r, n->op, "x", ins, n->nin, n->loc) : NULL;
  if (x) {
    x->attr = *got;
    ok = ir_infer_shape(r, x, err, sizeof err) && memcmp(&x->attr, &n->attr, sizeof x->attr) == 0;
  }
  ir_graph_free(r);
  return ok;
}

/* n written as op `so` (row: the op's own row): p gets which attributes to
   write and what lowering will make of them. false if so cannot give n's
   attributes, with why when a value cannot be written at all. */
static bool plan_form(const Writer *w, const Node *n, const SpecOp *so, const SpecOp *row, Plan *p,
                      char *why, size_t nwhy) {
  char buf[160];
  unsigned written = 0;
  for (int j = 0; j < SPEC_MAX_ATTRS && so->attrs[j].key; j++) {
    const AttrSpec *as = &so->attrs[j];
    const void *want = (const char *)&n->attr + as->field;
    const void *absent = as->rule == AR_KERNEL_IF_ABSENT ? (const void *)n->attr.kernel
                                                         : (const char *)&w->defaults + as->field;
    if (!as->required && memcmp(absent, want, kind_size(as->kind)) == 0)
      continue;
    if (!attr_text(as, want, buf, sizeof buf, why, nwhy))
      return false;
    written |= 1u << j;
  }
  Attrs got;
  lowered_attrs(w, n, so, written, &got);
  if (!same_fields(so, &got, &n->attr) || !same_after_inference(n, &got)) {
    snprintf(why, nwhy, "its attributes cannot be written as '%s'", spec_op_name(so));
    return false;
  }
  p->op = so;
  p->written = written;
  p->attrs = got;
  return true;
}

/* Step 2 for one layer: the first of its op's forms that gives its
   attributes; reported if none does. */
static void plan_layer(Writer *w, const Node *n) {
  if (!own_row(w, n->op)) {
    cannot(w, n, "the spec language has no op '%s'", ir_ops[n->op].name);
    return;
  }
  if (n->epi.residual >= 0 || n->epi.gate >= 0 || n->epi.act.kind != ACT_NONE ||
      n->layout != LAYOUT_NCHW || n->split || n->elided || n->mem.kind != MEM_NONE) {
    cannot(w, n, "a pass has rewritten it; a spec is written before the passes");
    return;
  }
  char why[256] = "";
  for (int i = 0; i < MAX_FORMS && w->forms[n->op][i]; i++)
    if (plan_form(w, n, w->forms[n->op][i], own_row(w, n->op), &w->plan[n->id], why, sizeof why))
      return;
  cannot(w, n, "%s", why);
}

static void plan_all(Writer *w) {
  const Graph *g = w->g;
  for (int i = 0; i < g->ninputs; i++) {
    const Node *x = g->inputs[i].node;
    if (x->shape.rank != 1 && x->shape.rank != 3)
      cannot(w, x, "an input of rank %d (the spec language has [C, H, W] and [F])", x->shape.rank);
    for (int k = 0; k < x->shape.rank; k++)
      if (x->shape.d[k] >= LIMIT_31) {
        cannot(w, x, "dimension %lld is too large", (long long)x->shape.d[k]);
        break;
      }
  }
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (is_layer(n)) {
      plan_layer(w, n);
      w->last = n;
    }
  }
  if (!g->ninputs) {
    diag_plain(w->d, DIAG_ERROR, "--emit=spec: the network has no inputs");
    w->errors++;
  }
  if (!w->last) {
    diag_plain(w->d, DIAG_ERROR, "--emit=spec: the network has no layers");
    w->errors++;
  }
}

/* ------------------------------------------------------------- parameters */

/* The parameters of g under the names the written spec gives them: a
   replica of g built under the written names and attributes with
   ir_infer_shape, which names the parameters as lowering will. */
static NamedParam *name_params(Writer *w, int *count) {
  const Graph *g = w->g;
  Graph *r = ir_graph_new(g->name);
  Node **rep = arena_alloc(w->a, sizeof(Node *) * (size_t)(g->next_id ? g->next_id : 1));
  PtrVec named = {0};
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    if (n->dead || !w->name[n->id])
      continue;
    Node **ins = arena_alloc(w->a, sizeof(Node *) * (size_t)(n->nin ? n->nin : 1));
    for (int k = 0; k < n->nin; k++) {
      ins[k] = rep[n->in[k]->id];
      CHECK(ins[k], "input %d of '%s' comes before it", k, n->name);
    }
    Node *x = ir_node_new(r, n->op, w->name[n->id], ins, n->nin, n->loc);
    if (n->op == OP_INPUT)
      x->shape = n->shape;
    else
      x->attr = w->plan[n->id].attrs;
    char err[512];
    CHECK(ir_infer_shape(r, x, err, sizeof err), "written layer '%s' (was '%s'): %s", x->name,
          n->name, err);
    CHECK(shape_eq(&x->shape, &n->shape) && x->nparams == n->nparams,
          "written layer '%s' is not '%s' again", x->name, n->name);
    for (int k = 0; k < n->nparams; k++) {
      const Param *p = n->params[k], *q = x->params[k];
      if (!p)
        continue;
      CHECK(q && q->rank == p->rank && !memcmp(q->dims, p->dims, sizeof(int64_t) * (size_t)p->rank),
            "parameter %d of written layer '%s' is not '%s'", k, x->name, p->name);
      NamedParam *np = arena_alloc(w->a, sizeof *np);
      *np = (NamedParam){arena_strdup(g->arena, q->name), p};
      ptrvec_push(w->a, &named, np);
    }
    rep[n->id] = x;
  }
  ir_graph_free(r);
  NamedParam *out = arena_alloc(g->arena, sizeof *out * (size_t)(named.len ? named.len : 1));
  for (int i = 0; i < named.len; i++)
    out[i] = *(NamedParam *)named.items[i];
  *count = named.len;
  return out;
}

/* ------------------------------------------------------------------ print */

/* A plain scalar when it is safe (and reads as itself), else double-quoted. */
static void print_string(FILE *out, const char *s) {
  bool plain = *s && (s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'));
  for (const char *p = s; plain && *p; p++)
    plain = ident_char(*p) || *p == '-' || *p == '.';
  if (plain && reads_as_itself(s)) {
    fputs(s, out);
    return;
  }
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf(out, "\\x%02x", *p);
    else
      fputc(*p, out);
  fputc('"', out);
}

static void print_header(const Writer *w, const char *comment, FILE *out) {
  const Graph *g = w->g;
  for (const char *c = comment; c && *c;) {
    const char *eol = strchr(c, '\n');
    int len = eol ? (int)(eol - c) : (int)strlen(c);
    fprintf(out, len ? "# %.*s\n" : "#\n", len, c);
    c += len + (eol ? 1 : 0);
  }
  fputs("cnncc: 1\nname: ", out);
  print_string(out, g->name && *g->name ? g->name : "net");
  fputs("\ninputs:\n", out);
  for (int i = 0; i < g->ninputs; i++) {
    const Node *x = g->inputs[i].node;
    fprintf(out, "  %s: [", w->name[x->id]);
    for (int k = 0; k < x->shape.rank; k++)
      fprintf(out, k ? ", %lld" : "%lld", (long long)x->shape.d[k]);
    fputs("]\n", out);
  }
  if (g->noutputs != 1 || g->outputs[0].node != w->last) {
    fputs("outputs: [", out);
    for (int i = 0; i < g->noutputs; i++)
      fprintf(out, i ? ", %s" : "%s", w->name[g->outputs[i].node->id]);
    fputs("]\n", out);
  }
}

/* - {name: NAME, op: OP, in: ..., ATTRIBUTE: VALUE, ...} */
static void print_layer(const Writer *w, const Node *n, const Node *prev, FILE *out) {
  const Plan *p = &w->plan[n->id];
  fprintf(out, "  - {name: %s, op: %s", w->name[n->id], spec_op_name(p->op));
  if (n->nin == 1 && n->in[0] != prev)
    fprintf(out, ", in: %s", w->name[n->in[0]->id]);
  else if (n->nin > 1)
    for (int k = 0; k < n->nin; k++)
      fprintf(out, "%s%s", k ? ", " : ", in: [", w->name[n->in[k]->id]);
  if (n->nin > 1)
    fputc(']', out);
  char buf[160], why[256];
  for (int j = 0; j < SPEC_MAX_ATTRS && p->op->attrs[j].key; j++) {
    const AttrSpec *as = &p->op->attrs[j];
    if (!(p->written & (1u << j)))
      continue;
    bool ok = attr_text(as, (const char *)&n->attr + as->field, buf, sizeof buf, why, sizeof why);
    CHECK(ok, "%s", why);
    fprintf(out, ", %s: %s", as->key, buf);
  }
  fputs("}\n", out);
}

static void print_spec(const Writer *w, const char *comment, FILE *out) {
  const Graph *g = w->g;
  print_header(w, comment, out);
  fputs("layers:\n", out);
  const Node *prev = g->ninputs ? g->inputs[0].node : NULL;
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    if (!is_layer(n))
      continue;
    print_layer(w, n, prev, out);
    prev = n;
  }
}

/* ------------------------------------------------------------ entry point */

bool spec_write(const Graph *g, const char *comment, FILE *out, NamedParam **params, int *nparams,
                Diag *d) {
  Writer w = {.g = g, .d = d, .a = arena_new()};
  size_t ids = (size_t)(g->next_id ? g->next_id : 1);
  w.name = arena_alloc(w.a, sizeof(char *) * ids);
  w.plan = arena_alloc(w.a, sizeof(Plan) * ids);
  init_defaults(&w);
  init_forms(&w);
  name_all(&w);
  plan_all(&w);
  *params = NULL;
  *nparams = 0;
  if (w.errors == 0) {
    *params = name_params(&w, nparams);
    print_spec(&w, comment, out);
  }
  arena_free(w.a);
  return w.errors == 0;
}

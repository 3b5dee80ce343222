/*
 * values.c: the small form the ONNX lowering works on.
 *
 * Every ONNX value (graph input, initializer, node output) is found by name
 * in one hash table and is either a constant (OxConst: initializers,
 * Constant nodes and everything folded from them) or a tensor computed at
 * run time (its IR node). Also here: the messages, which name the node being
 * lowered, and the accessors of node attributes and constants.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

/* ---------------------------------------------------------------- messages */

const char *ox_node_label(const Onnx__NodeProto *n) {
  if (n->name && *n->name)
    return n->name;
  if (n->n_output && n->output[0] && *n->output[0])
    return n->output[0];
  return "(unnamed)";
}

static void report(OxCtx *cx, DiagLevel level, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  SrcLoc at = {cx->path, 0, 0};
  if (cx->node)
    diag_report(cx->d, level, at, 0, "node '%s' (%s): %s", ox_node_label(cx->node),
                cx->node->op_type ? cx->node->op_type : "?", msg);
  else
    diag_report(cx->d, level, at, 0, "%s", msg);
}

bool ox_error(OxCtx *cx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (cx->errors < OX_MAX_ERRORS)
    report(cx, DIAG_ERROR, fmt, ap);
  va_end(ap);
  cx->errors++;
  return false;
}

void ox_note(OxCtx *cx, const char *fmt, ...) {
  if (cx->errors > OX_MAX_ERRORS)
    return;
  va_list ap;
  va_start(ap, fmt);
  report(cx, DIAG_NOTE, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------- the tables */

/* An open-addressing hash table of OxValues by name (the uses and IR name
   tables keep a count in OxValue.uses of placeholder values). */
typedef struct OxTable {
  OxValue **slot;
  size_t cap, len;
} OxTable;

static size_t hash(const char *s) {
  size_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static OxTable *table_new(void) {
  OxTable *t = xcalloc(1, sizeof *t);
  t->cap = 1024;
  t->slot = xcalloc(t->cap, sizeof *t->slot);
  return t;
}

static void table_free(OxTable *t) {
  if (t)
    free(t->slot);
  free(t);
}

static OxValue *table_get(const OxTable *t, const char *name) {
  for (size_t i = hash(name) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
    if (!t->slot[i])
      return NULL;
    if (strcmp(t->slot[i]->name, name) == 0)
      return t->slot[i];
  }
}

static void put(OxTable *t, OxValue *v) {
  for (size_t i = hash(v->name) & (t->cap - 1);; i = (i + 1) & (t->cap - 1))
    if (!t->slot[i]) {
      t->slot[i] = v;
      return;
    }
}

static void table_add(OxTable *t, OxValue *v) {
  if (2 * (t->len + 1) > t->cap) {
    OxValue **old = t->slot;
    size_t oldcap = t->cap;
    t->cap *= 2;
    t->slot = xcalloc(t->cap, sizeof *t->slot);
    for (size_t i = 0; i < oldcap; i++)
      if (old[i])
        put(t, old[i]);
    free(old);
  }
  put(t, v);
  t->len++;
}

/* The entry of `name` in t, made (zeroed) if absent. */
static OxValue *table_entry(OxCtx *cx, OxTable *t, const char *name) {
  OxValue *v = table_get(t, name);
  if (!v) {
    v = arena_alloc(cx->a, sizeof *v);
    v->name = arena_strdup(cx->a, name);
    table_add(t, v);
  }
  return v;
}

void ox_values_init(OxCtx *cx) {
  cx->values = table_new();
  cx->uses = table_new();
  cx->ir_names = table_new();
}

void ox_values_free(OxCtx *cx) {
  table_free(cx->values);
  table_free(cx->uses);
  table_free(cx->ir_names);
  cx->values = cx->uses = cx->ir_names = NULL;
}

void ox_use(OxCtx *cx, const char *name) { table_entry(cx, cx->uses, name)->uses++; }

int ox_uses(OxCtx *cx, const char *name) {
  OxValue *v = table_get(cx->uses, name);
  return v ? v->uses : 0;
}

bool ox_name_taken(OxCtx *cx, const char *name) { return table_get(cx->ir_names, name) != NULL; }

void ox_name_claim(OxCtx *cx, const char *name) { table_entry(cx, cx->ir_names, name); }

OxValue *ox_value(OxCtx *cx, const char *name) { return table_get(cx->values, name); }

OxValue *ox_value_new(OxCtx *cx, const char *name, OxKind kind) {
  if (!name || !*name) {
    ox_error(cx, "an output has no name");
    return NULL;
  }
  if (ox_value(cx, name)) {
    ox_error(cx, "the value '%s' is defined twice (ONNX graphs assign each name once)", name);
    return NULL;
  }
  OxValue *v = table_entry(cx, cx->values, name);
  v->kind = kind;
  v->producer = cx->node;
  return v;
}

OxValue *ox_input(OxCtx *cx, const Onnx__NodeProto *n, int k, bool *ok) {
  if (k >= (int)n->n_input || !n->input[k] || !*n->input[k])
    return NULL;
  OxValue *v = ox_value(cx, n->input[k]);
  if (!v) {
    ox_error(cx, "input '%s' is not defined before this node (is the graph sorted?)", n->input[k]);
    *ok = false;
  }
  return v;
}

int ox_rank(const OxValue *v) { return v->node->shape.rank == 3 ? 4 : 2 + v->vec_ones; }

int ox_dims(const OxValue *v, int64_t *dims) {
  const Shape *s = &v->node->shape;
  int r = ox_rank(v);
  dims[0] = 1;
  if (s->rank == 3) {
    int64_t nchw[4] = {1, s->d[0], s->d[1], s->d[2]};
    for (int k = 0; k < 4; k++)
      dims[k] = nchw[v->permuted ? v->perm[k] : k];
  } else {
    dims[1] = s->d[0];
    for (int k = 2; k < r; k++)
      dims[k] = 1;
  }
  return r;
}

int ox_channel_axis(const OxValue *v) {
  for (int k = 0; v->permuted && k < 4; k++)
    if (v->perm[k] == 1)
      return k;
  return 1;
}

/* --------------------------------------------------------------- constants */

bool ox_const_alloc(OxCtx *cx, OxConst *c, OxDtype dt, int rank, const int64_t *dims) {
  memset(c, 0, sizeof *c);
  c->dtype = dt;
  c->rank = rank;
  c->numel = 1;
  for (int k = 0; k < rank; k++) {
    if (dims[k] < 0 || (dims[k] && c->numel > ((int64_t)1 << 36) / dims[k]))
      return false;
    c->dims[k] = dims[k];
    c->numel *= dims[k];
  }
  size_t bytes = (size_t)(c->numel ? c->numel : 1) * (dt == OX_F32 ? 4 : 8);
  if (dt == OX_F32)
    c->f = arena_alloc_aligned(cx->a, bytes, 64);
  else
    c->i = arena_alloc_aligned(cx->a, bytes, 64);
  return true;
}

int64_t ox_to_int(double v) {
  const double lim = (double)((int64_t)1 << 62);
  return v != v ? 0 : v >= lim ? (int64_t)1 << 62 : v <= -lim ? -((int64_t)1 << 62) : (int64_t)v;
}

double ox_const_get(const OxConst *c, int64_t k) {
  return c->dtype == OX_F32 ? (double)c->f[k] : (double)c->i[k];
}

bool ox_const_ints(OxCtx *cx, OxConst *c, bool allow_batch, const char *what) {
  if (c->dtype == OX_F32) {
    int64_t *v = arena_alloc(cx->a, sizeof *v * (size_t)(c->numel ? c->numel : 1));
    for (int64_t k = 0; k < c->numel; k++)
      v[k] = ox_to_int(c->f[k]);
    c->i = v;
    c->f = NULL;
    c->dtype = OX_I64;
  }
  if (c->batch && !allow_batch)
    for (int64_t k = 0; k < c->numel; k++)
      if (c->batch[k])
        return ox_error(cx, "%s depends on the batch size", what);
  return true;
}

/* -------------------------------------------------------------- attributes */

const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *n, const char *name) {
  for (size_t i = 0; i < n->n_attribute; i++)
    if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
      return n->attribute[i];
  return NULL;
}

int64_t ox_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  return a && a->has_i ? a->i : def;
}

float ox_attr_float(const Onnx__NodeProto *n, const char *name, float def) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  return a && a->has_f ? a->f : def;
}

int ox_attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *out, int max, int def_n) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  if (!a)
    return def_n;
  if (a->n_ints > (size_t)max)
    return -1;
  for (size_t i = 0; i < a->n_ints; i++)
    out[i] = a->ints[i];
  return (int)a->n_ints;
}

const char *ox_attr_string(OxCtx *cx, const Onnx__NodeProto *n, const char *name, const char *def) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  if (!a || !a->has_s)
    return def;
  return arena_strndup(cx->a, (const char *)a->s.data, a->s.len);
}

OxConst ox_legacy_operand(OxCtx *cx, const Onnx__NodeProto *n, int rank_a, const OxConst *b) {
  OxConst c = *b;
  if (cx->opset >= 7 || !ox_attr_int(n, "broadcast", 0) || b->rank >= rank_a)
    return c;
  int64_t axis = ox_attr_int(n, "axis", rank_a - b->rank);
  if (axis < 0)
    axis += rank_a;
  if (axis < 0 || axis + b->rank > rank_a)
    return c;
  c.rank = rank_a - (int)axis; /* b's dims, then ones to the end */
  for (int k = 0; k < c.rank; k++)
    c.dims[k] = k < b->rank ? b->dims[k] : 1;
  return c;
}

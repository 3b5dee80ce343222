/*
 * match.c: the machinery of the patterns (patterns.c, products.c).
 *
 * The graph's nodes as the patterns leave them, with a table of every
 * value: the node that writes it and how many node inputs and graph
 * outputs read it. The table is built once and updated as nodes are
 * replaced or removed, so that matching stays linear in the size of the
 * graph. A pattern checks that its intermediate values are read inside it
 * only (ox_pat_closed), then puts one node in place of its anchor
 * (ox_pat_replace) and removes the rest, with whatever reads a removed
 * value (shape arithmetic on an intermediate).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

struct OxPatValue {
  const char *name; /* NULL: free slot */
  int producer;     /* node index, -1: none (an input, an initializer) */
  int readers;      /* node inputs and graph outputs that read it */
};
typedef struct OxPatValue PatValue;

/* ------------------------------------------------------------- the table */

static size_t hash(const char *s) {
  size_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* The entry of `name`, made if absent (make) or NULL. */
static PatValue *entry(const OxPat *p, const char *name, bool make) {
  for (size_t i = hash(name) & (p->cap - 1);; i = (i + 1) & (p->cap - 1)) {
    PatValue *e = &p->tab[i];
    if (!e->name) {
      if (!make)
        return NULL;
      e->name = name;
      e->producer = -1;
      return e;
    }
    if (strcmp(e->name, name) == 0)
      return e;
  }
}

/* The readers of n's inputs change by d (a node added or removed). */
static void count_inputs(OxPat *p, const Onnx__NodeProto *n, int d) {
  for (size_t k = 0; k < n->n_input; k++)
    if (n->input[k] && *n->input[k])
      entry(p, n->input[k], true)->readers += d;
}

static void table_build(OxPat *p, const Onnx__GraphProto *gp) {
  size_t want = 4;
  for (int i = 0; i < p->n; i++)
    want += p->nodes[i] ? p->nodes[i]->n_input + p->nodes[i]->n_output : 0;
  want += gp->n_output;
  for (p->cap = 64; p->cap < 2 * want; p->cap *= 2)
    ;
  p->tab = xcalloc(p->cap, sizeof *p->tab);
  for (int i = 0; i < p->n; i++) {
    const Onnx__NodeProto *x = p->nodes[i];
    if (!x)
      continue;
    count_inputs(p, x, 1);
    for (size_t k = 0; k < x->n_output; k++)
      if (x->output[k] && *x->output[k])
        entry(p, x->output[k], true)->producer = i;
  }
  for (size_t i = 0; i < gp->n_output; i++)
    if (gp->output[i]->name && *gp->output[i]->name)
      entry(p, gp->output[i]->name, true)->readers++;
}

int ox_pat_producer(const OxPat *p, const char *name) {
  if (!name || !*name)
    return -1;
  PatValue *e = entry(p, name, false);
  if (!e || e->producer < 0 || p->removed[e->producer] || !p->nodes[e->producer])
    return -1;
  return e->producer;
}

int ox_pat_readers(const OxPat *p, const char *name) {
  PatValue *e = name && *name ? entry(p, name, false) : NULL;
  return e ? e->readers : 0;
}

/* The inputs a node of op must have for a pattern to read them: the
   patterns read input[0] of every node they match and input[1] of the
   binary ones without checking again. A node with fewer is malformed; it
   matches nothing here, and the lowering reports it. */
static size_t min_inputs(const char *op) {
  static const char *const binary[] = {"Add",    "Sub",  "Mul",     "Div",    "Pow",
                                       "MatMul", "Gemm", "Reshape", "Gather", "Equal"};
  if (strcmp(op, "Constant") == 0)
    return 0;
  for (size_t i = 0; i < sizeof binary / sizeof binary[0]; i++)
    if (strcmp(op, binary[i]) == 0)
      return 2;
  return 1;
}

const Onnx__NodeProto *ox_pat_node(const OxPat *p, int i, const char *op) {
  if (i < 0 || i >= p->n || p->removed[i] || !p->nodes[i])
    return NULL;
  const Onnx__NodeProto *x = p->nodes[i];
  if (strcmp(x->op_type, op) != 0 || (x->domain && *x->domain && strcmp(x->domain, "ai.onnx")))
    return NULL;
  return x->n_input < min_inputs(op) ? NULL : x;
}

bool ox_pat_near(double v, double want) { return fabs(v - want) <= 1e-5 * fabs(want); }

bool ox_pat_scalar(const OxPat *p, const char *name, double *v) {
  OxValue *iv = name && *name ? ox_value(p->cx, name) : NULL;
  if (iv && iv->kind == OXV_CONST && iv->c.numel == 1) {
    *v = ox_const_get(&iv->c, 0);
    return true;
  }
  const Onnx__NodeProto *c = ox_pat_node(p, ox_pat_producer(p, name), "Constant");
  if (!c)
    return false;
  const Onnx__AttributeProto *a = ox_attr(c, "value");
  OxConst k;
  if (a && a->t && a->t->n_dims <= 1 && ox_tensor_const(p->cx, a->t, "a constant", &k) &&
      k.numel == 1) {
    *v = ox_const_get(&k, 0);
    return true;
  }
  a = ox_attr(c, "value_float");
  if (a && a->has_f) {
    *v = a->f;
    return true;
  }
  return false;
}

bool ox_pat_closed(const OxPat *p, int anchor, const int *group, int ng) {
  for (int g = 0; g < ng; g++) {
    for (int h = 0; h < g; h++)
      if (group[h] == group[g])
        return false;
    const Onnx__NodeProto *x = p->nodes[group[g]];
    if (group[g] == anchor)
      continue;
    for (size_t o = 0; o < x->n_output; o++) {
      if (!x->output[o] || !*x->output[o])
        continue;
      int inside = 0;
      for (int h = 0; h < ng; h++) {
        const Onnx__NodeProto *y = p->nodes[group[h]];
        for (size_t k = 0; k < y->n_input; k++)
          inside += y->input[k] && strcmp(y->input[k], x->output[o]) == 0;
      }
      if (inside != ox_pat_readers(p, x->output[o]))
        return false;
    }
  }
  return true;
}

/* Removes node i (its inputs read by one node less). */
static void remove_node(OxPat *p, int i) {
  if (p->removed[i])
    return;
  p->removed[i] = true;
  count_inputs(p, p->nodes[i], -1);
}

/* Removes the group (but the anchor, replaced) and whatever reads a removed
   value. */
static void remove_group(OxPat *p, const int *group, int ng, int anchor) {
  for (int g = 0; g < ng; g++)
    if (group[g] != anchor)
      remove_node(p, group[g]);
  for (bool more = true; more;) {
    more = false;
    for (int i = 0; i < p->n; i++) {
      const Onnx__NodeProto *x = p->nodes[i];
      if (!x || p->removed[i] || i == anchor)
        continue;
      for (size_t k = 0; k < x->n_input && !p->removed[i]; k++) {
        PatValue *e = x->input[k] && *x->input[k] ? entry(p, x->input[k], false) : NULL;
        if (e && e->producer >= 0 && p->removed[e->producer]) {
          remove_node(p, i);
          more = true;
        }
      }
    }
  }
}

static Onnx__AttributeProto *attr_add(OxPat *p, Onnx__NodeProto *x, const char *name,
                                      Onnx__AttributeProto__AttributeType type) {
  Onnx__AttributeProto *a = arena_alloc(p->cx->a, sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = arena_strdup(p->cx->a, name);
  a->has_type = true;
  a->type = type;
  Onnx__AttributeProto **all = arena_alloc(p->cx->a, (x->n_attribute + 1) * sizeof *all);
  if (x->n_attribute)
    memcpy(all, x->attribute, x->n_attribute * sizeof *all);
  all[x->n_attribute++] = a;
  x->attribute = all;
  return a;
}

void ox_pat_attr_int(OxPat *p, Onnx__NodeProto *x, const char *name, int64_t v) {
  Onnx__AttributeProto *a = attr_add(p, x, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  a->has_i = true;
  a->i = v;
}

void ox_pat_attr_float(OxPat *p, Onnx__NodeProto *x, const char *name, double v) {
  Onnx__AttributeProto *a = attr_add(p, x, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
  a->has_f = true;
  a->f = (float)v;
}

void ox_pat_attr_string(OxPat *p, Onnx__NodeProto *x, const char *name, const char *v) {
  Onnx__AttributeProto *a = attr_add(p, x, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
  a->has_s = true;
  a->s.data = (uint8_t *)arena_strdup(p->cx->a, v);
  a->s.len = strlen(v);
}

Onnx__NodeProto *ox_pat_replace(OxPat *p, int anchor, const int *group, int ng, const char *op,
                                bool internal, const char *const *in, int nin) {
  OxCtx *cx = p->cx;
  const Onnx__NodeProto *old = p->nodes[anchor];
  Onnx__NodeProto *x = arena_alloc(cx->a, sizeof *x);
  onnx__node_proto__init(x);
  x->op_type = arena_strdup(cx->a, op);
  x->domain = arena_strdup(cx->a, internal ? OX_DOMAIN_CNNCC : "");
  /* named after the anchor's module: "/norm1/Div" -> "/norm1/LRN" */
  const char *nm = old->name ? old->name : "";
  const char *slash = strrchr(nm, '/');
  x->name = slash ? arena_printf(cx->a, "%.*s/%s", (int)(slash - nm), nm, op)
                  : arena_printf(cx->a, "%s%s%s", nm, *nm ? "." : "", op);
  x->n_input = (size_t)nin;
  x->input = arena_alloc(cx->a, sizeof(char *) * (size_t)(nin ? nin : 1));
  for (int k = 0; k < nin; k++)
    x->input[k] = arena_strdup(cx->a, in[k] ? in[k] : "");
  x->n_output = 1;
  x->output = arena_alloc(cx->a, sizeof(char *));
  x->output[0] = old->output[0];
  count_inputs(p, old, -1);
  count_inputs(p, x, 1);
  p->nodes[anchor] = x;
  remove_group(p, group, ng, anchor);
  return x;
}

void ox_pat_begin(OxPat *p, OxCtx *cx) {
  *p = (OxPat){.cx = cx, .nodes = cx->nodes, .n = cx->nnodes};
  p->removed = xcalloc((size_t)(p->n ? p->n : 1), sizeof *p->removed);
  table_build(p, ox_model_proto(cx->model)->graph);
}

void ox_pat_end(OxPat *p) {
  for (int i = 0; i < p->n; i++)
    if (p->removed[i])
      p->cx->nodes[i] = NULL;
  free(p->tab);
  free(p->removed);
}

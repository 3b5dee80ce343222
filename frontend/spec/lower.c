/*
 * lower.c: the checked AST into a Graph.
 *
 * Lowering walks the layers in order with a Frame per list of layers being
 * lowered. A Frame has
 *   - a Scope: the names bound so far (layer name -> output node, and for
 *     groups and block instances the Scope of their own layers, which is
 *     what `a.b` looks into). A scope has a full-name prefix ("layer1.0"),
 *     and a position counter when it is `numbered`;
 *   - its input (what `input` means and what the first layer reads);
 *   - an Env of parameter values for expressions;
 *   - the list of layers it lowers, to tell a reference to a later layer
 *     (or to itself) from a dangling one.
 *
 * Naming. A named group or block instance opens a child scope. An unnamed one
 * is transparent: its layers join the enclosing scope, and so take positions
 * in a numbered scope (VGG's `features.0, features.2, ...` from a repeated
 * conv+relu block). `repeat` with a name makes a scope NAME holding instances
 * named by index (or `repeat_name`); without a name but with `repeat_name`
 * the instances are named in the enclosing scope; with neither they splice.
 *
 * Disabled layers (`if:` false) produce nothing: the chain goes on from the
 * previous layer, and a reference to a disabled layer by name means its input
 * (torchvision's `self.downsample = None`). In a numbered scope, which is an
 * nn.Sequential, a disabled layer is a module never appended: it takes
 * neither a position nor a name, so two alternatives may share a name
 * (`{name: 0, ..., if: $a}`, `{name: 0, ..., if: not $a}`). The scope still
 * remembers where it was (`disabled`), for the note of an error that uses
 * the name.
 *
 * Errors. Every failure yields a NULL node, "poisoned": the name is still
 * bound, and whatever uses a poisoned node quietly becomes poisoned too, so
 * each mistake is reported once and independent mistakes are all reported.
 * Values are range-checked before they reach the IR (every integer attribute
 * is below 2^31), and ir_infer_shape_at() checks shapes without overflow;
 * its error is reported at the token it is about (an item of `in:`, an
 * attribute's value) or, when that token is implicit, at the layer's op.
 *
 * Context. An error inside a block instance is followed by its own notes,
 * then by notes naming the instances around it ("in block 'bottleneck'
 * instantiated as 'layer1.0'"). Those are owed until the next error is
 * printed or the frame ends: while lowering, the Diag's hook (before_error)
 * prints them before the next error, so errors.c need not know about frames.
 *
 * Attributes are converted by the op's table (frontend/spec/ops.c): each
 * value by its kind into its Attrs field, then its rule.
 */
#include <stdlib.h>
#include <string.h>

#include "spec_internal.h"

#define MAX_NESTING 256 /* groups and block instances, one inside another */
#define LIMIT_31 ((int64_t)1 << 31)

/* ------------------------------------------------------------- name table */

typedef struct {
  const char **keys;
  void **vals;
  int cap, len;
} Table;

static unsigned hash_str(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static void *table_get(const Table *t, const char *k) {
  if (!t->cap)
    return NULL;
  for (unsigned i = hash_str(k) & (unsigned)(t->cap - 1);; i = (i + 1) & (unsigned)(t->cap - 1)) {
    if (!t->keys[i])
      return NULL;
    if (!strcmp(t->keys[i], k))
      return t->vals[i];
  }
}

static void table_put(Arena *a, Table *t, const char *k, void *v) {
  if (2 * (t->len + 1) > t->cap) {
    Table n = {0};
    n.cap = t->cap ? 2 * t->cap : 16;
    n.keys = arena_alloc(a, sizeof(char *) * (size_t)n.cap);
    n.vals = arena_alloc(a, sizeof(void *) * (size_t)n.cap);
    for (int i = 0; i < t->cap; i++)
      if (t->keys[i])
        table_put(a, &n, t->keys[i], t->vals[i]);
    *t = n;
  }
  unsigned i = hash_str(k) & (unsigned)(t->cap - 1);
  while (t->keys[i] && strcmp(t->keys[i], k))
    i = (i + 1) & (unsigned)(t->cap - 1);
  if (!t->keys[i])
    t->len++;
  t->keys[i] = k;
  t->vals[i] = v;
}

/* ------------------------------------------------------------ scopes */

typedef struct Scope Scope;
typedef struct {
  const char *name;
  Node *node;   /* output; NULL: poisoned */
  Scope *child; /* its layers, for `a.b` */
  SrcLoc loc;
  int span;
  bool disabled;
  bool unknown; /* bound for a layer that failed (bind_poisoned): whether it
                   would take the name is not known, so a duplicate is quiet */
  bool busy;    /* its own layers are being lowered */
} Binding;

struct Scope {
  const char *prefix; /* full name, "" at the top */
  bool numbered;
  int64_t position;
  Table names;    /* name -> Binding */
  Table disabled; /* numbered: name -> Binding of a disabled layer (unbound) */
  PtrVec order;   /* Binding*, for hints */
  Table reserved; /* literal names of layers still to come */
  Table autoc;    /* spec op name -> int *: its last automatic number */
};

typedef struct Frame {
  struct Frame *up;
  Scope *scope;
  Node *input; /* NULL: poisoned */
  const Env *env;
  Layer **layers;
  int nlayers, cur;
  const Block *block; /* block instance being lowered, for notes */
  const Layer *inst;
  const char *inst_name; /* full name; NULL: unnamed (spliced into scope) */
  int depth;             /* block instances */
  int nesting;           /* groups and block instances */
} Frame;

typedef struct {
  SpecCtx *c;
  Graph *g;
  Arena *a;            /* c->tmp */
  Frame *frame;        /* innermost frame being lowered */
  Frame *pending;      /* frame of the last error, its context notes not
                          printed yet (they follow the error's own notes) */
  int nodes;           /* nodes created (budget) */
  int64_t param_elems; /* parameter values created (budget) */
  bool abort;          /* a fatal error (runaway recursion): stop lowering */
} Lower;

static Scope *scope_new(Lower *lw, const Scope *parent, const char *name) {
  Scope *s = arena_alloc(lw->a, sizeof *s);
  if (!parent || !name)
    s->prefix = "";
  else if (!*parent->prefix)
    s->prefix = arena_strdup(lw->a, name);
  else
    s->prefix = arena_printf(lw->a, "%s.%s", parent->prefix, name);
  return s;
}

static const char *full_name(Lower *lw, const Scope *s, const char *local) {
  if (!*s->prefix)
    return local;
  return arena_printf(lw->a, "%s.%s", s->prefix, local);
}

static Binding *scope_find(const Scope *s, const char *name) { return table_get(&s->names, name); }

static Binding *binding_new(Lower *lw, const char *name, Node *node, SrcLoc loc, int span) {
  Binding *b = arena_alloc(lw->a, sizeof *b);
  b->name = name;
  b->node = node;
  b->loc = loc;
  b->span = span;
  return b;
}

/* Bind `name` in s; a duplicate is an error at `loc`. */
static Binding *bind(Lower *lw, Scope *s, const char *name, Node *node, SrcLoc loc, int span) {
  Binding *old = scope_find(s, name);
  if (old && old->unknown)
    return NULL; /* poisoned: the error that made it so is reported */
  if (old) {
    if (*s->prefix)
      spec_error(lw->c, loc, span, "duplicate name '%s' in '%s'", name, s->prefix);
    else
      spec_error(lw->c, loc, span, "duplicate name '%s'", name);
    if (old->disabled)
      spec_note(lw->c, old->loc, old->span,
                "'%s' was first defined here, by a disabled layer (its 'if:' is false): "
                "the name stands for its input",
                name);
    else
      spec_note(lw->c, old->loc, old->span, "'%s' was first defined here", name);
    return NULL;
  }
  Binding *b = binding_new(lw, name, node, loc, span);
  table_put(lw->a, &s->names, name, b);
  ptrvec_push(lw->a, &s->order, b);
  return b;
}

/* The name of a disabled layer (`if:` false) whose input is `input`: an
   alias of its input, except in a numbered scope, where a disabled layer
   takes no name (it is only remembered, for notes). */
static void bind_disabled(Lower *lw, Scope *s, const char *name, Node *input, SrcLoc loc,
                          int span) {
  if (s->numbered) {
    if (!table_get(&s->disabled, name))
      table_put(lw->a, &s->disabled, name, binding_new(lw, name, NULL, loc, span));
    return;
  }
  Binding *b = bind(lw, s, name, input, loc, span);
  if (b)
    b->disabled = true;
}

/* After an error about a name no layer has in s: if a disabled layer of a
   numbered scope had it, say so. */
static bool note_disabled(Lower *lw, const Scope *s, const char *name) {
  const Binding *d = table_get(&s->disabled, name);
  if (d)
    spec_note(lw->c, d->loc, d->span,
              "'%s' is disabled (its 'if:' is false), and in a numbered scope a disabled layer "
              "takes no name",
              name);
  return d != NULL;
}

/* ------------------------------------------------------------------ notes */

static void instance_note(SpecCtx *c, const Frame *f, int between) {
  const YNode *at = f->inst->what ? f->inst->what : f->inst->node;
  char inst[512];
  if (f->inst_name)
    snprintf(inst, sizeof inst, "in block '%s' instantiated as '%s'", f->block->name, f->inst_name);
  else if (*f->scope->prefix) /* its layers join the enclosing scope */
    snprintf(inst, sizeof inst, "in an unnamed instance of block '%s' in '%s'", f->block->name,
             f->scope->prefix);
  else
    snprintf(inst, sizeof inst, "in an unnamed instance of block '%s'", f->block->name);
  if (between)
    diag_report(c->diag, DIAG_NOTE, at->loc, at->span, "%s (through %d more instance%s)", inst,
                between, between == 1 ? "" : "s");
  else
    diag_report(c->diag, DIAG_NOTE, at->loc, at->span, "%s", inst);
}

/* The notes owed to the last error: the innermost two block instances
   around it and the outermost one. Printed before the next error (the
   Diag's hook, before_error), when a frame ends and when lowering ends. */
static void context_notes(Lower *lw) {
  SpecCtx *c = lw->c;
  Frame *from = lw->pending;
  lw->pending = NULL;
  int total = 0;
  const Frame *outer = NULL;
  for (Frame *f = from; f; f = f->up)
    if (f->block && f->inst) {
      total++;
      outer = f;
    }
  int shown = 0;
  for (Frame *f = from; f && shown < 2; f = f->up)
    if (f->block && f->inst) {
      instance_note(c, f, 0);
      shown++;
    }
  if (total > shown)
    instance_note(c, outer, total - shown - 1);
}

/* The Diag's hook while lowering: an error is about to be printed. The
   notes owed to the previous one come first; this one's are owed from now
   on, to the frame being lowered. */
static void before_error(void *ctx) {
  Lower *lw = ctx;
  context_notes(lw);
  lw->pending = lw->frame;
}

/* ------------------------------------------------------------ value helpers */

static const char *describe(Lower *lw, const Value *v) { return expr_describe(lw->a, v); }

/* The YNode for list item i of y, or y itself. */
static const YNode *item_at(const YNode *y, int i) {
  return y->kind == Y_SEQ && i < y->n ? y->items[i] : y;
}

static bool want_int(Lower *lw, const YNode *at, const Value *v, const char *key, int64_t min,
                     int64_t *out) {
  if (v->kind != V_INT)
    return spec_error_at(lw->c, at, "expected an integer for '%s', got %s", key, describe(lw, v));
  if (v->i < min) {
    if (min == 0)
      return spec_error_at(lw->c, at, "'%s' cannot be negative, got %lld", key, (long long)v->i);
    return spec_error_at(lw->c, at, "'%s' must be at least %lld, got %lld", key, (long long)min,
                         (long long)v->i);
  }
  if (v->i >= LIMIT_31)
    return spec_error_at(lw->c, at, "'%s' is too large (%lld; the limit is 2^31-1)", key,
                         (long long)v->i);
  *out = v->i;
  return true;
}

static bool want_bool(Lower *lw, const YNode *at, const Value *v, const char *key, bool *out) {
  if (v->kind != V_BOOL)
    return spec_error_at(lw->c, at, "expected true or false for '%s', got %s", key,
                         describe(lw, v));
  *out = v->b;
  return true;
}

static bool want_float(Lower *lw, const YNode *at, const Value *v, const char *key, float *out) {
  double x;
  if (v->kind == V_INT)
    x = (double)v->i;
  else if (v->kind == V_FLOAT)
    x = v->f;
  else
    return spec_error_at(lw->c, at, "expected a number for '%s', got %s", key, describe(lw, v));
  if (!(x > -1e30 && x < 1e30))
    return spec_error_at(lw->c, at, "'%s' is out of range (%g)", key, x);
  *out = (float)x;
  return true;
}

/* int or [h, w] (AK_PAIR) */
static bool want_pair(Lower *lw, const YNode *y, const Value *v, const char *key, int64_t min,
                      int64_t out[2]) {
  if (v->kind == V_INT) {
    if (!want_int(lw, y, v, key, min, &out[0]))
      return false;
    out[1] = out[0];
    return true;
  }
  if (v->kind != V_LIST)
    return spec_error_at(lw->c, y, "expected an integer for '%s', got %s", key, describe(lw, v));
  if (v->n != 2)
    return spec_error_at(lw->c, y, "expected an integer or [h, w] for '%s', got %s", key,
                         describe(lw, v));
  for (int i = 0; i < 2; i++)
    if (!want_int(lw, item_at(y, i), &v->items[i], key, min, &out[i]))
      return false;
  return true;
}

/* int, [h, w] or [top, left, bottom, right] (AK_PAD) */
static bool want_pad(Lower *lw, const YNode *y, const Value *v, const char *key, int64_t out[4]) {
  if (v->kind == V_INT) {
    if (!want_int(lw, y, v, key, 0, &out[0]))
      return false;
    out[1] = out[2] = out[3] = out[0];
    return true;
  }
  if (v->kind != V_LIST || (v->n != 2 && v->n != 4))
    return spec_error_at(lw->c, y,
                         "expected an integer, [h, w] or [top, left, "
                         "bottom, right] for '%s', got %s",
                         key, describe(lw, v));
  int64_t p[4];
  for (int i = 0; i < v->n; i++)
    if (!want_int(lw, item_at(y, i), &v->items[i], key, 0, &p[i]))
      return false;
  if (v->n == 2) {
    out[0] = out[2] = p[0];
    out[1] = out[3] = p[1];
  } else {
    memcpy(out, p, sizeof p);
  }
  return true;
}

/* A layer or instance name from a value. */
static const char *name_value(Lower *lw, YNode *y, const Env *env) {
  Value v;
  if (!expr_value(lw->c, y, env, &v))
    return NULL;
  const char *s;
  if (v.kind == V_STR)
    s = v.s;
  else if (v.kind == V_INT && v.i >= 0)
    s = arena_printf(lw->a, "%lld", (long long)v.i);
  else
    return spec_error_at(lw->c, y, "expected a name, got %s", describe(lw, &v)), NULL;
  if (!*s)
    return spec_error_at(lw->c, y, "a name cannot be empty"), NULL;
  if (strchr(s, '.'))
    return spec_error_at(lw->c, y, "a name cannot contain '.' ('%s')", s), NULL;
  if (!strcmp(s, "input"))
    return spec_error_at(lw->c, y,
                         "'input' is reserved for a scope's input and "
                         "cannot name a layer"),
           NULL;
  return s;
}

/* Evaluate an `if:`; false when it cannot be evaluated (reported). */
static bool eval_cond(Lower *lw, YNode *y, const Env *env, bool *out) {
  Value v;
  if (!expr_value(lw->c, y, env, &v))
    return false;
  return want_bool(lw, y, &v, "if", out);
}

static Env *bind_in_channels(Lower *lw, const Env *env, Node *input) {
  if (!input)
    return expr_bind_poisoned(lw->a, env, "in");
  return expr_bind(lw->a, env, "in", (Value){.kind = V_INT, .i = input->shape.d[0]});
}

/* ---------------------------------------------------------- references */

/* Is `name` the literal name of a layer of f at or after position `from`? */
static int later_layer(const Frame *f, const char *name, int from) {
  for (int i = from; i < f->nlayers; i++) {
    const YNode *n = f->layers[i]->name;
    if (n && n->kind == Y_SCALAR && !strcmp(n->str, name))
      return i;
  }
  return -1;
}

static void scope_hint(Lower *lw, const Scope *s, const Frame *f, SrcLoc loc, const char *word) {
  PtrVec names = {0};
  if (f) {
    ptrvec_push(lw->a, &names, (void *)"input");
    for (const Frame *x = f; x; x = x->up)
      if (!x->up || x->up->scope != x->scope)
        for (int i = 0; i < x->scope->order.len; i++)
          ptrvec_push(lw->a, &names, (void *)((Binding *)x->scope->order.items[i])->name);
  } else {
    for (int i = 0; i < s->order.len; i++)
      ptrvec_push(lw->a, &names, (void *)((Binding *)s->order.items[i])->name);
  }
  spec_hint(lw->c, loc, word, (const char *const *)names.items, names.len);
}

/* Resolve the reference text `ref` written at y. *ok false: reported error.
   Returns the node (NULL and *ok true: poisoned). */
static Node *resolve_text(Lower *lw, Frame *f, const YNode *y, const char *ref, bool *ok) {
  *ok = false;
  char *path = arena_strdup(lw->a, ref);
  char *dot = strchr(path, '.');
  if (dot)
    *dot = 0;
  const char *first = path;
  if (!*first)
    return spec_error_at(lw->c, y, "empty reference"), NULL;
  Binding *b = NULL;
  Node *node = NULL;
  if (!strcmp(first, "input")) {
    if (dot)
      return spec_error_at(lw->c, y, "'input' has no layers inside it ('%s')", ref), NULL;
    *ok = true;
    return f->input;
  }
  for (Frame *x = f; x && !b; x = x->up)
    b = scope_find(x->scope, first);
  if (!b) {
    /* a later layer, or the layer itself, or really unknown? */
    for (Frame *x = f; x; x = x->up) {
      if (x->cur < x->nlayers && later_layer(x, first, x->cur) == x->cur) {
        if (x == f)
          return spec_error_at(lw->c, y, "layer '%s' cannot use its own output", first), NULL;
        return spec_error_at(lw->c, y,
                             "'%s' is the group or block this layer is in; "
                             "it cannot use its own output",
                             first),
               NULL;
      }
      int i = later_layer(x, first, x->cur + 1);
      if (i >= 0) {
        spec_error_at(lw->c, y,
                      "'%s' refers to a later layer; a layer can only "
                      "use the outputs of earlier ones",
                      first);
        const YNode *n = x->layers[i]->name;
        spec_note(lw->c, n->loc, n->span, "'%s' is defined here", first);
        return NULL;
      }
    }
    spec_error_at(lw->c, y, "unknown layer '%s'", first);
    bool disabled = false;
    for (const Frame *x = f; x && !disabled; x = x->up)
      disabled = note_disabled(lw, x->scope, first);
    if (!disabled)
      scope_hint(lw, NULL, f, y->loc, first);
    return NULL;
  }
  if (b->busy)
    return spec_error_at(lw->c, y,
                         "'%s' is the group or block this layer is in; "
                         "it cannot use its own output",
                         first),
           NULL;
  node = b->node;
  char *rest = dot ? dot + 1 : NULL;
  const char *sofar = first;
  while (rest) {
    char *d2 = strchr(rest, '.');
    if (d2)
      *d2 = 0;
    if (!b->node && !b->child) { /* poisoned: stay quiet */
      *ok = true;
      return NULL;
    }
    if (!b->child)
      return spec_error_at(lw->c, y, "'%s' is a single layer; it has no layer '%s'", sofar, rest),
             NULL;
    Binding *nb = scope_find(b->child, rest);
    if (!nb) {
      spec_error_at(lw->c, y, "'%s' has no layer '%s'", sofar, rest);
      if (!note_disabled(lw, b->child, rest))
        scope_hint(lw, b->child, NULL, y->loc, rest);
      return NULL;
    }
    b = nb;
    node = b->node;
    sofar = arena_printf(lw->a, "%s.%s", sofar, rest);
    rest = d2 ? d2 + 1 : NULL;
  }
  *ok = true;
  return node;
}

/* Resolve a reference node (a name or an expression giving one). */
static Node *resolve_ref(Lower *lw, Frame *f, const Env *env, YNode *y, bool *ok) {
  *ok = false;
  if (y->kind != Y_SCALAR)
    return spec_error_at(lw->c, y, "expected a layer name, got %s",
                         y->kind == Y_MAP ? "a mapping" : "a list"),
           NULL;
  Value v;
  if (!expr_value(lw->c, y, env, &v))
    return NULL;
  const char *s;
  if (v.kind == V_STR)
    s = v.s;
  else if (v.kind == V_INT && v.i >= 0)
    s = arena_printf(lw->a, "%lld", (long long)v.i);
  else
    return spec_error_at(lw->c, y, "expected a layer name, got %s", describe(lw, &v)), NULL;
  return resolve_text(lw, f, y, s, ok);
}

/* in := ref | [ref, ...]. Fills *out (arena array); false on any error or
   poisoned input (errors reported). */
static bool resolve_inputs(Lower *lw, Frame *f, const Env *env, YNode *in, Node ***out, int *n) {
  YNode *one[1] = {in};
  YNode **items = in->kind == Y_SEQ ? in->items : one;
  int cnt = in->kind == Y_SEQ ? in->n : 1;
  if (cnt == 0)
    return spec_error_at(lw->c, in, "'in' needs at least one layer"), false;
  *out = arena_alloc(lw->a, sizeof(Node *) * (size_t)cnt);
  *n = cnt;
  bool all = true;
  for (int i = 0; i < cnt; i++) {
    bool ok;
    (*out)[i] = resolve_ref(lw, f, env, items[i], &ok);
    if (!(*out)[i])
      all = false;
  }
  return all;
}

/* ------------------------------------------------------------------ ops */

static Node *lower_layers(Lower *lw, Frame *f);

/* The local name of a layer about to be created in s (given, positional or
   NULL), consuming a position in a numbered scope. *failed on a bad name. */
static const char *take_name(Lower *lw, Frame *f, Layer *L, bool *failed) {
  Scope *s = f->scope;
  *failed = false;
  const char *local = NULL;
  if (L->name) {
    local = name_value(lw, L->name, f->env);
    if (!local)
      *failed = true;
  } else if (s->numbered) {
    local = arena_printf(lw->a, "%lld", (long long)s->position);
  }
  if (s->numbered)
    s->position++;
  return local;
}

/* "relu3": the spec op's name and the next number free in s. */
static const char *auto_name(Lower *lw, Scope *s, const SpecOp *op) {
  const char *base = spec_op_name(op);
  int *last = table_get(&s->autoc, base);
  if (!last) {
    last = arena_alloc(lw->a, sizeof *last);
    table_put(lw->a, &s->autoc, base, last);
  }
  for (;;) {
    const char *n = arena_printf(lw->a, "%s%d", base, ++*last);
    if (!scope_find(s, n) && !table_get(&s->reserved, n))
      return n;
  }
}

/* Bind a failed layer's literal name so uses of it stay quiet. In a
   numbered scope it counts as enabled, taking a position, so the layers
   after it keep the names they would have had; since it might as well have
   been disabled, a later layer of the same name is not a duplicate. */
static void bind_poisoned(Lower *lw, Frame *f, Layer *L) {
  if (f->scope->numbered)
    f->scope->position++;
  if (L->name && L->name->kind == Y_SCALAR && !strchr(L->name->str, '$') &&
      !scope_find(f->scope, L->name->str)) {
    Binding *b = bind(lw, f->scope, L->name->str, NULL, L->name->loc, L->name->span);
    b->unknown = true;
  }
}

static SrcLoc layer_loc(const Layer *L) { return L->node->loc; }

/* The further rule of a float attribute (AttrSpec.rule). */
static bool check_rule(Lower *lw, const AttrSpec *as, const YNode *y, float x) {
  switch (as->rule) {
  case AR_POSITIVE:
    if (!(x > 0))
      return spec_error_at(lw->c, y, "'%s' must be positive", as->key);
    return true;
  case AR_PROBABILITY:
    if (!(x >= 0 && x < 1))
      return spec_error_at(lw->c, y, "'%s' must be in [0, 1), got %g", as->key, (double)x);
    return true;
  case AR_NONE:
  case AR_KERNEL_IF_ABSENT:
    return true;
  }
  return true;
}

/* [C, H, W] or [F] of positive ints below 2^31 (AK_SHAPE). */
static bool want_shape(Lower *lw, const YNode *y, const Value *v, const char *key, Shape *out) {
  if (v->kind != V_LIST || (v->n != 1 && v->n != 3))
    return spec_error_at(lw->c, y, "expected [C, H, W] or [F] for '%s', got %s", key,
                         describe(lw, v));
  *out = (Shape){.rank = v->n};
  for (int i = 0; i < v->n; i++)
    if (!want_int(lw, item_at(y, i), &v->items[i], key, 1, &out->d[i]))
      return false;
  return true;
}

/* One of the words as->choices (AK_CHOICE): its index into *out. */
static bool want_choice(Lower *lw, const AttrSpec *as, const YNode *y, const Value *v, int *out) {
  int n = 0;
  while (as->choices[n])
    n++;
  if (v->kind == V_STR)
    for (int i = 0; i < n; i++)
      if (!strcmp(v->s, as->choices[i])) {
        *out = i;
        return true;
      }
  char list[256];
  size_t k = 0;
  for (int i = 0; i < n && k < sizeof list; i++)
    k += (size_t)snprintf(list + k, sizeof list - k, "%s'%s'",
                          i == 0      ? ""
                          : i + 1 < n ? ", "
                                      : " or ",
                          as->choices[i]);
  spec_error_at(lw->c, y, "expected %s for '%s', got %s", list, as->key, describe(lw, v));
  if (v->kind == V_STR)
    spec_hint(lw->c, y->loc, v->s, as->choices, n);
  return false;
}

/* Convert the value of attribute `as` by its kind into its field of a. */
static bool set_attr(Lower *lw, const AttrSpec *as, const YNode *y, const Value *v, Attrs *a) {
  void *field = (char *)a + as->field;
  switch (as->kind) {
  case AK_INT:
    return want_int(lw, y, v, as->key, 1, field);
  case AK_INDEX:
    return want_int(lw, y, v, as->key, 0, field);
  case AK_PAIR:
    return want_pair(lw, y, v, as->key, 1, field);
  case AK_PAD:
    return want_pad(lw, y, v, as->key, field);
  case AK_BOOL:
    return want_bool(lw, y, v, as->key, field);
  case AK_FLOAT:
    return want_float(lw, y, v, as->key, field) && check_rule(lw, as, y, *(float *)field);
  case AK_CHOICE:
    return want_choice(lw, as, y, v, field);
  case AK_SHAPE:
    return want_shape(lw, y, v, as->key, field);
  case AK_AXIS:
    *(int *)field = 0; /* the IR counts per-sample dims */
    if (v->kind != V_INT)
      return spec_error_at(lw->c, y, "expected an integer for '%s', got %s", as->key,
                           describe(lw, v));
    if (v->i != 1)
      return spec_error_at(lw->c, y, "only axis 1 (channels) is supported, got %lld",
                           (long long)v->i);
    return true;
  }
  CHECK(false, "attribute kind %d", (int)as->kind);
  return false;
}

/* Convert the attributes of an op layer into a, each by its row of the op's
   table (frontend/spec/ops.c), then the defaults that depend on other
   attributes and what an alias's name implies. */
static bool set_attrs(Lower *lw, Frame *f, Layer *L, Attrs *a) {
  const SpecOp *op = L->op;
  bool ok = true, given[SPEC_MAX_ATTRS] = {false};
  for (int i = 0; i < L->nargs; i++) {
    const AttrSpec *as = spec_op_attr(op, L->args[i].key);
    if (!as)
      continue; /* reported by the checker */
    Value v;
    if (!expr_value(lw->c, L->args[i].val, f->env, &v)) {
      ok = false;
      continue;
    }
    given[as - op->attrs] = true;
    ok = set_attr(lw, as, L->args[i].val, &v, a) && ok;
  }
  for (int j = 0; j < SPEC_MAX_ATTRS && op->attrs[j].key; j++)
    if (op->attrs[j].rule == AR_KERNEL_IF_ABSENT && !given[j])
      memcpy((char *)a + op->attrs[j].field, a->kernel, sizeof a->kernel);
  if (op->implied)
    op->implied(a);
  return ok;
}

/* ------------------------------------------------------- shape errors */

/* How shape messages name a layer's inputs: as the user wrote them in `in:`
   ("'layer1'" for `in: layer1`, whose output node may be 'layer1.1.relu'),
   and an implicit input by where it comes from. */
static const char *const *input_names(Lower *lw, const Frame *f, const Layer *L, Node **ins,
                                      int nin, const Node *cur) {
  const char **names = arena_alloc(lw->a, sizeof(char *) * (size_t)(nin ? nin : 1));
  if (nin == 0)
    return names;
  if (!L->in) {
    const char *where = cur != f->input ? "the previous layer "
                        : f->block      ? "the block's input "
                        : f->up         ? "the group's input "
                                        : ""; /* a network input: its name says it */
    names[0] = arena_printf(lw->a, "%s'%s'", where, cur->name);
    return names;
  }
  for (int i = 0; i < nin; i++) {
    const YNode *y = item_at(L->in, i);
    if (y->kind == Y_SCALAR && !strchr(y->str, '$'))
      names[i] = arena_printf(lw->a, "'%s'", y->str);
    else
      names[i] = arena_printf(lw->a, "'%s'", ins[i]->name);
  }
  return names;
}

/* The value of op attribute `key` as written in L, or NULL (defaulted). */
static const YNode *attr_value(const Layer *L, const char *key) {
  for (int i = 0; key && i < L->nargs; i++)
    if (!strcmp(L->args[i].key, key))
      return L->args[i].val;
  return NULL;
}

/* The token a shape error is about: an item of `in:`, an attribute's value
   (the item at fault of a list), or else the layer's op. */
static const YNode *shape_error_token(const Layer *L, const IrShapeError *e) {
  switch (e->at) {
  case IR_AT_INPUT:
    if (L->in)
      return item_at(L->in, e->index);
    break;
  case IR_AT_INPUTS:
    if (L->in)
      return L->in;
    break;
  case IR_AT_ATTR: {
    const YNode *v = attr_value(L, e->attr);
    if (!v)
      break;
    if (v->kind == Y_SEQ && e->index >= 0) {
      int i = !strcmp(e->attr, "pad") && v->n == 2 ? e->index % 2 : e->index;
      if (i < v->n)
        return v->items[i];
    }
    return v;
  }
  case IR_AT_NODE:
    break;
  }
  return L->what;
}

static void report_shape_error(Lower *lw, const Layer *L, const IrShapeError *e, const Node *cur) {
  SpecCtx *c = lw->c;
  const YNode *at = shape_error_token(L, e);
  /* the IR names its op ("adaptive_avgpool"); say what the spec said
     ("global_avgpool") */
  const char *irname = ir_ops[L->op->op].name, *name = spec_op_name(L->op);
  size_t k = strlen(irname);
  if (strcmp(irname, name) && !strncmp(e->msg, irname, k) && e->msg[k] == ' ')
    spec_error_at(c, at, "%s%s", name, e->msg + k);
  else
    spec_error_at(c, at, "%s", e->msg);
  if (e->note[0])
    spec_note(c, at->loc, 0, "%s", e->note);
  if (!L->in && (e->at == IR_AT_INPUT || e->at == IR_AT_INPUTS)) {
    if (e->at == IR_AT_INPUTS)
      spec_note(c, at->loc, 0,
                "without 'in:', a layer's one input is the previous "
                "layer's output; list its inputs with 'in: [a, b]'");
    else if (cur && cur->loc.line > 0 && cur->op != OP_INPUT)
      spec_note(c, cur->loc, 1, "'%s' is defined here", cur->name);
  }
}

/* op layer := { op: NAME, name?, in?, if?, ATTRIBUTE* } */
static Node *lower_op(Lower *lw, Frame *f, Layer *L, Node *cur) {
  SpecCtx *c = lw->c;
  bool enabled = true;
  if (L->if_ && !eval_cond(lw, L->if_, f->env, &enabled)) {
    bind_poisoned(lw, f, L);
    return NULL;
  }
  Node **ins = &cur;
  int nin = 1;
  bool inputs_ok = true;
  if (ir_ops[L->op->op].max_inputs == 0) { /* a source: parameter */
    if (L->in) {
      spec_error_at(c, L->in, "'%s' takes no input", spec_op_name(L->op));
      return NULL;
    }
    nin = 0;
  } else if (L->in) {
    inputs_ok = resolve_inputs(lw, f, f->env, L->in, &ins, &nin);
  } else if (!cur) {
    inputs_ok = false;
  }

  if (!enabled) {
    /* disabled: its name stands for its (first) input; the chain goes on */
    if (L->name) {
      const char *local = name_value(lw, L->name, f->env);
      if (local)
        bind_disabled(lw, f->scope, local, inputs_ok ? ins[0] : NULL, L->name->loc, L->name->span);
    }
    return cur;
  }

  bool bad_name;
  const char *local = take_name(lw, f, L, &bad_name);
  bool owns = ir_ops[L->op->op].flags & OPF_WEIGHTS;
  if (!local && !bad_name && owns) {
    spec_error_at(c, L->what, "a '%s' layer owns parameters and needs a name", spec_op_name(L->op));
    spec_note(c, L->what->loc, 0, "add 'name: ...', or put it in a 'numbered' scope");
    return NULL;
  }
  if (bad_name)
    return NULL;
  if (!local)
    local = auto_name(lw, f->scope, L->op);
  SrcLoc nloc = L->name ? L->name->loc : layer_loc(L);
  int nspan = L->name ? L->name->span : 1;
  Binding *b = bind(lw, f->scope, local, NULL, nloc, nspan);
  if (!b)
    return NULL;

  Attrs attrs;
  bool attrs_ok;
  /* the defaults, then the spec's values */
  ir_attrs_init(&attrs);
  attrs_ok = set_attrs(lw, f, L, &attrs);
  if (!attrs_ok || !inputs_ok)
    return NULL;

  if (++lw->nodes > SPEC_MAX_NODES) {
    spec_error_at(c, L->what, "the network has more than %d layers", SPEC_MAX_NODES);
    lw->abort = true;
    return NULL;
  }
  const char *full = full_name(lw, f->scope, local);
  Node *n = ir_node_new(lw->g, L->op->op, full, ins, nin, layer_loc(L));
  Epilogue epi = n->epi;
  n->attr = attrs;
  n->epi = epi;
  IrShapeError e;
  if (!ir_infer_shape_at(lw->g, n, input_names(lw, f, L, ins, nin, cur), &e)) {
    report_shape_error(lw, L, &e, cur);
    n->dead = true;
    return NULL;
  }
  /* Each tensor is below 2^36 values, but weights are allocated (and
     packed into the .so) whole: bound their sum, so an absurd width is an
     error here rather than an allocation failure later. */
  for (int i = 0; i < n->nparams; i++)
    if (n->params[i])
      lw->param_elems += param_numel(n->params[i]);
  if (lw->param_elems > SPEC_MAX_PARAM_ELEMS) {
    spec_error(c, layer_loc(L), 1,
               "the network has more than 2^32 parameter values (16 GiB of "
               "float32) at this layer (%lld)",
               (long long)lw->param_elems);
    lw->abort = true;
    n->dead = true;
    return NULL;
  }
  b->node = n;
  return n;
}

/* ------------------------------------------------------- blocks and groups */

static const YNode *at_override(const Layer *L, int64_t idx, const char *param) {
  if (!L->at || L->at->kind != Y_MAP)
    return NULL;
  for (int i = 0; i < L->at->n; i++) {
    Value k = expr_literal(L->at->keys[i]);
    if (k.kind == V_INT && k.i == idx)
      return ynode_get(L->at->items[i], param);
  }
  return NULL;
}

static const YNode *block_arg(const Layer *L, const char *param) {
  for (int i = 0; i < L->nargs; i++)
    if (!strcmp(L->args[i].key, param))
      return L->args[i].val;
  return NULL;
}

/* One instance of a block or group: its layers in scope `target` under
   `iname` (NULL: spliced into target). `env` is the caller's (with $index
   when repeated), idx the instance index or -1. */
static Node *instantiate(Lower *lw, Frame *f, Layer *L, const Env *env, int64_t idx, Scope *target,
                         const char *iname, Node *input) {
  SpecCtx *c = lw->c;
  const Block *B = L->kind == LK_BLOCK ? L->block : NULL;
  if (f->nesting + 1 > MAX_NESTING) {
    spec_error_at(c, L->what, "layers nested more than %d deep", MAX_NESTING);
    return NULL;
  }
  if (B && f->depth + 1 > SPEC_MAX_DEPTH) {
    spec_error_at(c, L->what,
                  "block recursion is too deep (more than %d nested "
                  "block instances)",
                  SPEC_MAX_DEPTH);
    spec_note(c, L->what->loc, 0, "a recursive block needs an 'if:' that stops it");
    lw->abort = true; /* every enclosing instance would fail the same way */
    return NULL;
  }
  Scope *C = target;
  Binding *b = NULL;
  if (iname) {
    SrcLoc bl = L->name ? L->name->loc : layer_loc(L);
    int bs = L->name ? L->name->span : 1;
    b = bind(lw, target, iname, NULL, bl, bs);
    if (!b)
      return NULL;
    C = scope_new(lw, target, iname);
    bool numbered = false;
    const YNode *nb = L->numbered ? L->numbered : B ? B->numbered : NULL;
    if (nb) {
      Value v;
      if (!expr_value(c, (YNode *)nb, env, &v) || !want_bool(lw, nb, &v, "numbered", &numbered))
        return NULL;
    }
    C->numbered = numbered;
    b->child = C;
  }

  const Env *inner;
  Layer **layers;
  int nlayers;
  if (B) {
    Env *be = NULL;
    if (idx >= 0 || L->repeat)
      be = expr_bind(lw->a, be, "index", (Value){.kind = V_INT, .i = idx});
    be = bind_in_channels(lw, be, input);
    for (int i = 0; i < B->nparams; i++) {
      const Arg *p = &B->params[i];
      const YNode *given = L->repeat ? at_override(L, idx, p->key) : NULL;
      if (!given)
        given = block_arg(L, p->key);
      Value v;
      bool ok;
      if (given) {
        ok = expr_value(c, (YNode *)given, env, &v);
      } else if (p->val->kind == Y_SCALAR && expr_literal(p->val).kind == V_NULL) {
        spec_error_at(c, L->what, "block '%s' needs a value for parameter '%s'", B->name, p->key);
        spec_note(c, p->knode->loc, p->knode->span, "'%s' has no default", p->key);
        ok = false;
      } else {
        ok = expr_value(c, p->val, be, &v);
      }
      be = ok ? expr_bind(lw->a, be, p->key, v) : expr_bind_poisoned(lw->a, be, p->key);
    }
    inner = be;
    layers = B->layers;
    nlayers = B->nlayers;
  } else {
    inner = bind_in_channels(lw, env, input);
    layers = L->layers;
    nlayers = L->nlayers;
  }
  Frame nf = {
      .up = f,
      .scope = C,
      .input = input,
      .env = inner,
      .layers = layers,
      .nlayers = nlayers,
      .block = B,
      .inst = L,
      .inst_name = iname ? C->prefix : NULL,
      .depth = f->depth + (B ? 1 : 0),
      .nesting = f->nesting + 1,
  };
  if (b)
    b->busy = true;
  Node *out = layers ? lower_layers(lw, &nf) : NULL;
  if (b) {
    b->busy = false;
    b->node = out;
  }
  return out;
}

/* An integer of a repeat key. */
static bool repeat_int(Lower *lw, YNode *y, const Env *env, const char *key, int64_t min,
                       int64_t max, int64_t *out) {
  Value v;
  if (!expr_value(lw->c, y, env, &v))
    return false;
  if (v.kind != V_INT)
    return spec_error_at(lw->c, y, "expected an integer for '%s', got %s", key, describe(lw, &v));
  if (v.i < min)
    return spec_error_at(lw->c, y, "'%s' must be at least %lld, got %lld", key, (long long)min,
                         (long long)v.i);
  if (v.i > max)
    return spec_error_at(lw->c, y, "'%s' is too large (%lld; the limit is %lld)", key,
                         (long long)v.i, (long long)max);
  *out = v.i;
  return true;
}

/* How a layer repeats: `count` instances numbered from `from`, named by
   `fmt` (repeat_name, with "{}" where the index goes) or, when NULL, by
   index if the layer has a name. */
typedef struct {
  int64_t count, from;
  const char *fmt;
} Repeat;

/* The repeat keys of L, evaluated and checked (the `at` indexes too).
   false: reported. */
static bool eval_repeat(Lower *lw, Frame *f, Layer *L, Repeat *r) {
  SpecCtx *c = lw->c;
  if (!repeat_int(lw, L->repeat, f->env, "repeat", 1, SPEC_MAX_REPEAT, &r->count) ||
      (L->repeat_from &&
       !repeat_int(lw, L->repeat_from, f->env, "repeat_from", 0, LIMIT_31 - 1, &r->from)))
    return false;
  if (L->repeat_name) {
    Value v;
    if (!expr_value(c, L->repeat_name, f->env, &v))
      return false;
    if (v.kind != V_STR || !strstr(v.s, "{}"))
      return spec_error_at(c, L->repeat_name,
                           "'repeat_name' needs a '{}' where the "
                           "index goes, e.g. 'denselayer{}'");
    r->fmt = v.s;
  }
  if (L->at && L->at->kind == Y_MAP) {
    for (int i = 0; i < L->at->n; i++) {
      Value k = expr_literal(L->at->keys[i]);
      if (k.kind == V_INT && (k.i < r->from || k.i >= r->from + r->count))
        return spec_error_at(c, L->at->keys[i],
                             "'at' index %lld is out of range "
                             "(the instances are %lld to %lld)",
                             (long long)k.i, (long long)r->from,
                             (long long)(r->from + r->count - 1));
    }
  }
  return true;
}

/* The one input of a block or group into *in: its `in:` or the previous
   layer's output (NULL: poisoned, the body is still lowered for its own
   errors). false: more than one input (reported). */
static bool compound_input(Lower *lw, Frame *f, Layer *L, Node *cur, Node **in) {
  Node **ins = &cur;
  int nin = 1;
  bool inputs_ok = cur != NULL;
  if (L->in) {
    if (L->in->kind == Y_SEQ && L->in->n != 1)
      return spec_error_at(lw->c, L->in,
                           "a block or group takes one input (it is 'input' "
                           "inside), got %d",
                           L->in->n);
    inputs_ok = resolve_inputs(lw, f, f->env, L->in, &ins, &nin);
  }
  *in = inputs_ok ? ins[0] : NULL;
  return true;
}

/* A block or group without `repeat`: one instance named `local` (NULL:
   spliced into the scope), unless its `if:` is false. */
static Node *lower_once(Lower *lw, Frame *f, Layer *L, Node *cur, Node *in, const char *local) {
  Scope *P = f->scope;
  bool enabled = true;
  if (L->if_ && !eval_cond(lw, L->if_, f->env, &enabled)) {
    bind_poisoned(lw, f, L);
    return NULL;
  }
  if (!enabled) {
    if (local)
      bind_disabled(lw, P, local, in, L->name->loc, L->name->span);
    return cur;
  }
  if (local && P->numbered)
    P->position++;
  /* with a poisoned input the body is still walked for its own errors */
  return instantiate(lw, f, L, f->env, -1, P, local, in);
}

/* A repeated block or group: instances one after another, each with its
   $index and its own `if:`, in a scope `local` (NULL: in the enclosing
   scope, named by repeat_name, or spliced). */
static Node *lower_repeated(Lower *lw, Frame *f, Layer *L, Node *cur, Node *in, const char *local,
                            const Repeat *r) {
  SpecCtx *c = lw->c;
  Scope *P = f->scope;
  Scope *S = NULL;
  Binding *sb = NULL;
  if (local) {
    sb = bind(lw, P, local, NULL, L->name->loc, L->name->span);
    if (!sb)
      return NULL;
    S = scope_new(lw, P, local);
    sb->child = S;
    if (P->numbered)
      P->position++;
  }
  Node *x = in;
  bool any = false, failed = false;
  if (sb)
    sb->busy = true;
  for (int64_t k = 0; k < r->count && !c->stop && !lw->abort; k++) {
    int64_t idx = r->from + k;
    Env *e = expr_bind(lw->a, f->env, "index", (Value){.kind = V_INT, .i = idx});
    if (L->if_) {
      bool en = false;
      if (!eval_cond(lw, L->if_, e, &en)) {
        failed = true;
        break;
      }
      if (!en)
        continue;
    }
    const char *iname = NULL;
    if (r->fmt) {
      const char *p = strstr(r->fmt, "{}");
      iname = arena_printf(lw->a, "%.*s%lld%s", (int)(p - r->fmt), r->fmt, (long long)idx, p + 2);
    } else if (local) {
      iname = arena_printf(lw->a, "%lld", (long long)idx);
    }
    if (iname && strchr(iname, '.')) {
      spec_error_at(c, L->repeat_name, "a name cannot contain '.' ('%s')", iname);
      failed = true;
      break;
    }
    Scope *target = S ? S : P;
    if (iname && target->numbered)
      target->position++;
    x = instantiate(lw, f, L, e, idx, target, iname, x);
    any = true;
  }
  if (failed)
    x = NULL;
  if (sb) {
    sb->busy = false;
    sb->node = any || failed ? x : in;
  }
  return any || failed ? x : cur;
}

/* block or group layer := { block: NAME | layers: [...], name?, in?, if?,
 *   repeat?, repeat_name?, repeat_from?, at?, numbered?, ARGUMENT* } */
static Node *lower_compound(Lower *lw, Frame *f, Layer *L, Node *cur) {
  Repeat r = {.count = 1};
  Node *in = NULL;
  const char *local = NULL;
  if ((L->repeat && !eval_repeat(lw, f, L, &r)) || !compound_input(lw, f, L, cur, &in) ||
      (L->name && !(local = name_value(lw, L->name, f->env)))) {
    bind_poisoned(lw, f, L);
    return NULL;
  }
  if (!L->repeat)
    return lower_once(lw, f, L, cur, in, local);
  return lower_repeated(lw, f, L, cur, in, local, &r);
}

/* ------------------------------------------------------------------ lists */

static Node *lower_layer(Lower *lw, Frame *f, Layer *L, Node *cur) {
  if (L->invalid) {
    bind_poisoned(lw, f, L); /* and its position */
    return NULL;
  }
  if (L->kind == LK_OP)
    return lower_op(lw, f, L, cur);
  return lower_compound(lw, f, L, cur);
}

/* layers := layer* ; returns the output of the last enabled layer (or the
   frame's input if none is). */
static Node *lower_layers(Lower *lw, Frame *f) {
  SpecCtx *c = lw->c;
  Frame *saved = lw->frame;
  lw->frame = f;
  for (int i = 0; i < f->nlayers; i++) {
    YNode *n = f->layers[i]->name;
    if (n && n->kind == Y_SCALAR && !strchr(n->str, '$'))
      table_put(lw->a, &f->scope->reserved, n->str, (void *)n);
  }
  Node *cur = f->input;
  for (int i = 0; i < f->nlayers && !c->stop && !lw->abort; i++) {
    f->cur = i;
    cur = lower_layer(lw, f, f->layers[i], cur);
  }
  f->cur = f->nlayers;
  context_notes(lw); /* before this frame goes away */
  lw->frame = saved;
  return cur;
}

/* ------------------------------------------------------------------ spec */

/* shape := [C, H, W] | [F] */
static Node *lower_input(Lower *lw, Scope *top, const SpecInput *in) {
  SpecCtx *c = lw->c;
  Value v;
  if (!expr_value(c, in->shape, NULL, &v))
    return NULL;
  if (v.kind != V_LIST || (v.n != 1 && v.n != 3))
    return spec_error_at(c, in->shape,
                         "expected the shape of input '%s' as [C, H, W] "
                         "or [F], got %s",
                         in->name, describe(lw, &v)),
           NULL;
  Shape s = {.rank = v.n};
  for (int i = 0; i < v.n; i++) {
    const YNode *at = item_at(in->shape, i);
    if (v.items[i].kind != V_INT)
      return spec_error_at(c, at, "expected an integer dimension, got %s",
                           describe(lw, &v.items[i])),
             NULL;
    if (v.items[i].i <= 0)
      return spec_error_at(c, at, "a dimension must be positive, got %lld",
                           (long long)v.items[i].i),
             NULL;
    if (v.items[i].i >= LIMIT_31)
      return spec_error_at(c, at, "dimension %lld is too large (the limit is 2^31-1)",
                           (long long)v.items[i].i),
             NULL;
    s.d[i] = v.items[i].i;
  }
  Binding *b = bind(lw, top, in->name, NULL, in->node->loc, in->node->span);
  if (!b)
    return NULL;
  lw->nodes++;
  Node *n = ir_node_new(lw->g, OP_INPUT, in->name, NULL, 0, in->node->loc);
  n->shape = s;
  char err[512];
  if (!ir_infer_shape(lw->g, n, err, sizeof err)) {
    spec_error_at(c, in->shape, "%s", err);
    return NULL;
  }
  b->node = n;
  return n;
}

static bool lower_network(Lower *lw, Spec *s) {
  SpecCtx *c = lw->c;
  Graph *g = c->g;
  int errors0 = diag_error_count(c->diag);
  Scope *top = scope_new(lw, NULL, NULL);
  g->ninputs = s->ninputs;
  g->inputs = arena_alloc(g->arena, sizeof(GraphIO) * (size_t)s->ninputs);
  Node *first = NULL;
  bool inputs_ok = true;
  for (int i = 0; i < s->ninputs; i++) {
    Node *n = lower_input(lw, top, &s->inputs[i]);
    if (!n)
      inputs_ok = false;
    g->inputs[i].name = arena_strdup(g->arena, s->inputs[i].name);
    g->inputs[i].node = n;
    if (i == 0)
      first = n;
  }
  Frame f = {
      .scope = top, .input = inputs_ok ? first : NULL, .layers = s->layers, .nlayers = s->nlayers};
  f.env = bind_in_channels(lw, NULL, f.input);
  Node *last = lower_layers(lw, &f);
  if (c->stop || lw->abort)
    return false;

  /* outputs := ref | [ref, ...]; default: the last layer */
  if (s->outputs) {
    YNode *one[1] = {s->outputs};
    YNode **items = s->outputs->kind == Y_SEQ ? s->outputs->items : one;
    int n = s->outputs->kind == Y_SEQ ? s->outputs->n : 1;
    if (n == 0) {
      spec_error_at(c, s->outputs, "'outputs' needs at least one layer");
      return false;
    }
    g->noutputs = n;
    g->outputs = arena_alloc(g->arena, sizeof(GraphIO) * (size_t)n);
    for (int i = 0; i < n; i++) {
      bool ok;
      Node *x = resolve_ref(lw, &f, NULL, items[i], &ok);
      g->outputs[i].node = x;
      g->outputs[i].name = arena_strdup(g->arena, items[i]->kind == Y_SCALAR ? items[i]->str : "?");
    }
  } else if (last) {
    g->noutputs = 1;
    g->outputs = arena_alloc(g->arena, sizeof(GraphIO));
    g->outputs[0].node = last;
    g->outputs[0].name = last->name;
  }
  for (int i = 0; i < g->noutputs; i++)
    if (!g->outputs[i].node)
      return false;
  if (diag_error_count(c->diag) > errors0)
    return false;
  /* nodes marked dead after a failed inference never survive an error, so
     a successful graph has none */
  return true;
}

bool lower_spec(SpecCtx *c, Spec *s) {
  Lower lw = {.c = c, .g = c->g, .a = c->tmp};
  DiagHook outer = diag_set_hook(c->diag, (DiagHook){before_error, &lw});
  bool ok = lower_network(&lw, s);
  context_notes(&lw);
  diag_set_hook(c->diag, outer);
  return ok;
}

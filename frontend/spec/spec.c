/*
 * spec.c: spec files into a checked AST; the frontend's entry points.
 *
 * Loading a spec goes in four steps, each reporting every error it can:
 *
 *  1. YAML. libyaml's document API parses the text; its errors are reported
 *     with libyaml's own message and position. The document becomes a tree
 *     of YNodes carrying 1-based line:col (libyaml's start_mark) and a span
 *     to underline. Aliases are shared, not copied; an alias cycle and a
 *     tree deeper than YAML_MAX_DEPTH are errors (no stack overflow).
 *
 *  2. AST. Each mapping is read against the keys it may have: the top level,
 *     blocks, layers (op / block / group) and op attributes come from fixed
 *     tables, so every unknown key is reported, with a "did you mean" note
 *     when one is close. Included files (paths relative to the including
 *     file; spec_load_string resolves them from the current directory) add
 *     their blocks; a file included twice is read once.
 *
 *  3. Check. With every block known, block instances are resolved (unknown
 *     blocks get a hint) and their arguments and `at:` overrides are matched
 *     against the block's parameters. Layers that fail are marked invalid;
 *     lowering treats them as poisoned so one mistake is reported once.
 *
 *  4. Lowering (lower.c) builds the Graph.
 *
 * Every error goes through spec_error, which drops exact repeats (a block
 * instantiated 16 times reports its error once), adds notes naming the block
 * instance being lowered, and stops after SPEC_MAX_ERRORS.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "spec_internal.h"

#define YAML_MAX_DEPTH 200
#define SPEC_MAX_AST 100000 /* layers built, bounds alias expansion */
#define SPEC_MAX_INCLUDE_DEPTH 16
#define SPEC_MAX_FILE                                                                              \
  ((size_t)16 << 20) /* bytes of one spec file: the zoo's                                          \
                        largest is 7 KB; `include:                                                 \
                        /dev/zero` must stop early */

/* ------------------------------------------------------------- the op table */

const SpecOp spec_ops[] = {
    {"conv2d",
     OP_CONV2D,
     {{"out", AK_INT, true},
      {"kernel", AK_PAIR, true},
      {"stride", AK_PAIR, false},
      {"pad", AK_PAD, false},
      {"dilation", AK_PAIR, false},
      {"groups", AK_INT, false},
      {"bias", AK_BOOL, false}}},
    {"batchnorm", OP_BATCHNORM, {{"eps", AK_FLOAT, false}}},
    {"relu", OP_RELU, {{0}}},
    {"maxpool",
     OP_MAXPOOL,
     {{"kernel", AK_PAIR, true},
      {"stride", AK_PAIR, false},
      {"pad", AK_PAD, false},
      {"dilation", AK_PAIR, false},
      {"ceil_mode", AK_BOOL, false}}},
    {"avgpool",
     OP_AVGPOOL,
     {{"kernel", AK_PAIR, true},
      {"stride", AK_PAIR, false},
      {"pad", AK_PAD, false},
      {"ceil_mode", AK_BOOL, false},
      {"count_include_pad", AK_BOOL, false}}},
    {"adaptive_avgpool", OP_ADAPTIVE_AVGPOOL, {{"out", AK_PAIR, true}}},
    {"global_avgpool", OP_ADAPTIVE_AVGPOOL, {{0}}},
    {"lrn",
     OP_LRN,
     {{"size", AK_INT, true},
      {"alpha", AK_FLOAT, false},
      {"beta", AK_FLOAT, false},
      {"k", AK_FLOAT, false}}},
    {"linear", OP_LINEAR, {{"out", AK_INT, true}, {"bias", AK_BOOL, false}}},
    {"flatten", OP_FLATTEN, {{0}}},
    {"dropout", OP_DROPOUT, {{"p", AK_FLOAT, false}}},
    {"concat", OP_CONCAT, {{"axis", AK_AXIS, false}}},
    {"add", OP_ADD, {{0}}},
    {"mean", OP_MEAN, {{0}}},
    {"scale", OP_SCALE, {{"factor", AK_FLOAT, true}}},
    {"softmax", OP_SOFTMAX, {{"axis", AK_AXIS, false}}},
    {NULL, 0, {{0}}},
};

const SpecOp *spec_op_find(const char *name) {
  for (const SpecOp *o = spec_ops; o->name; o++)
    if (strcmp(o->name, name) == 0)
      return o;
  return NULL;
}

static const char *const layer_keys[] = {"name",        "in",          "if",    "repeat",
                                         "repeat_name", "repeat_from", "at",    "numbered",
                                         "op",          "block",       "layers"};
#define NLAYER_KEYS ((int)(sizeof layer_keys / sizeof layer_keys[0]))

/* ------------------------------------------------------------ diagnostics */

/* set when the last error was a repeat: its notes are dropped too */
static bool suppressed(SpecCtx *c, SrcLoc loc, const char *msg) {
  char *key = arena_printf(c->tmp, "%s:%d:%d:%s", loc.file ? loc.file : "", loc.line, loc.col, msg);
  for (int i = 0; i < c->seen.len; i++)
    if (strcmp(c->seen.items[i], key) == 0)
      return true;
  ptrvec_push(c->tmp, &c->seen, key);
  return false;
}

bool spec_error(SpecCtx *c, SrcLoc loc, int span, const char *fmt, ...) {
  lower_context_notes(c);
  if (c->stop) {
    c->quiet = true;
    return false;
  }
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (suppressed(c, loc, msg)) {
    c->quiet = true;
    return false;
  }
  c->quiet = false;
  diag_report(c->diag, DIAG_ERROR, loc, span, "%s", msg);
  c->pending = c->frame;
  if (diag_error_count(c->diag) >= SPEC_MAX_ERRORS)
    c->stop = true; /* the note saying so comes at the end */
  return false;
}

bool spec_error_at(SpecCtx *c, const YNode *y, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return spec_error(c, y->loc, y->span, "%s", msg);
}

void spec_note(SpecCtx *c, SrcLoc loc, int span, const char *fmt, ...) {
  if (c->quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  diag_vreport(c->diag, DIAG_NOTE, loc, span, fmt, ap);
  va_end(ap);
}

void spec_hint(SpecCtx *c, SrcLoc loc, const char *word, const char *const *cands, int n) {
  const char *best = diag_suggest(word, cands, n);
  if (best)
    spec_note(c, loc, 0, "did you mean '%s'?", best);
}

/* ------------------------------------------------------------ YAML -> YNode */

typedef struct {
  SpecCtx *c;
  yaml_document_t *doc;
  const char *file; /* in the graph's arena */
  YNode **memo;     /* by node index; BUSY while being converted */
  bool failed;
} Conv;

static YNode busy_marker;
#define BUSY (&busy_marker)

static SrcLoc mark_loc(const char *file, yaml_mark_t m) {
  SrcLoc l = {file, (int)m.line + 1, (int)m.column + 1};
  return l;
}

static YNode *convert(Conv *cv, int index, int depth) {
  yaml_node_t *n = yaml_document_get_node(cv->doc, index);
  if (!n)
    return NULL;
  int slot = index - 1;
  if (cv->memo[slot] == BUSY) {
    spec_error(cv->c, mark_loc(cv->file, n->start_mark), 1,
               "a YAML alias refers to a node that contains it");
    cv->failed = true;
    return NULL;
  }
  if (cv->memo[slot])
    return cv->memo[slot];
  if (depth > YAML_MAX_DEPTH) {
    if (!cv->failed)
      spec_error(cv->c, mark_loc(cv->file, n->start_mark), 1,
                 "YAML nested more than %d levels deep", YAML_MAX_DEPTH);
    cv->failed = true;
    return NULL;
  }
  cv->memo[slot] = BUSY;
  Arena *a = cv->c->tmp;
  YNode *y = arena_alloc(a, sizeof *y);
  y->loc = mark_loc(cv->file, n->start_mark);
  y->span = 1;
  switch (n->type) {
  case YAML_SCALAR_NODE: {
    y->kind = Y_SCALAR;
    y->len = n->data.scalar.length;
    y->str = arena_strndup(a, (const char *)n->data.scalar.value, y->len);
    y->len = strlen(y->str); /* an escaped NUL ends the text */
    yaml_scalar_style_t st = n->data.scalar.style;
    y->quoted = st != YAML_PLAIN_SCALAR_STYLE && st != YAML_ANY_SCALAR_STYLE;
    if (n->start_mark.line == n->end_mark.line) {
      int w = (int)(n->end_mark.column - n->start_mark.column);
      y->span = w > 0 ? w : 1;
      if (st == YAML_PLAIN_SCALAR_STYLE)
        y->text_col = y->loc.col;
      else if (st == YAML_SINGLE_QUOTED_SCALAR_STYLE || st == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
        y->text_col = y->loc.col + 1;
    }
    break;
  }
  case YAML_SEQUENCE_NODE: {
    y->kind = Y_SEQ;
    int cnt = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
    y->items = arena_alloc(a, sizeof(YNode *) * (size_t)(cnt ? cnt : 1));
    for (int i = 0; i < cnt; i++) {
      YNode *it = convert(cv, n->data.sequence.items.start[i], depth + 1);
      if (!it)
        return NULL;
      y->items[y->n++] = it;
    }
    break;
  }
  case YAML_MAPPING_NODE: {
    y->kind = Y_MAP;
    int cnt = (int)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    y->items = arena_alloc(a, sizeof(YNode *) * (size_t)(cnt ? cnt : 1));
    y->keys = arena_alloc(a, sizeof(YNode *) * (size_t)(cnt ? cnt : 1));
    for (int i = 0; i < cnt; i++) {
      yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
      YNode *k = convert(cv, p->key, depth + 1);
      YNode *v = k ? convert(cv, p->value, depth + 1) : NULL;
      if (!k || !v)
        return NULL;
      if (k->kind != Y_SCALAR) {
        spec_error_at(cv->c, k, "a mapping key must be a plain name");
        cv->failed = true;
        continue;
      }
      bool dup = false;
      for (int j = 0; j < y->n && !dup; j++) {
        if (strcmp(y->keys[j]->str, k->str) == 0) {
          spec_error_at(cv->c, k, "duplicate key '%s'", k->str);
          spec_note(cv->c, y->keys[j]->loc, y->keys[j]->span, "first given here");
          cv->failed = true;
          dup = true;
        }
      }
      if (dup)
        continue;
      y->keys[y->n] = k;
      y->items[y->n++] = v;
    }
    break;
  }
  default:
    spec_error(cv->c, y->loc, 1, "empty YAML node");
    cv->failed = true;
    return NULL;
  }
  cv->memo[slot] = y;
  return y;
}

/* Parse YAML text into a YNode tree; NULL after reporting an error. */
static YNode *load_yaml(SpecCtx *c, const char *file, const char *text, size_t len) {
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) {
    spec_error(c, (SrcLoc){file, 0, 0}, 1, "cannot initialize the YAML parser");
    return NULL;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &doc)) {
    SrcLoc at = mark_loc(file, parser.problem_mark);
    spec_error(c, at, 1, "invalid YAML: %s", parser.problem ? parser.problem : "parse error");
    if (parser.context)
      spec_note(c, mark_loc(file, parser.context_mark), 1, "%s", parser.context);
    yaml_parser_delete(&parser);
    return NULL;
  }
  YNode *root = NULL;
  yaml_node_t *r = yaml_document_get_root_node(&doc);
  if (!r) {
    spec_error(c, (SrcLoc){file, 0, 0}, 0, "the spec is empty");
  } else {
    int cnt = (int)(doc.nodes.top - doc.nodes.start);
    Conv cv = {c, &doc, file, arena_alloc(c->tmp, sizeof(YNode *) * (size_t)cnt), false};
    root = convert(&cv, 1, 0);
    if (cv.failed)
      root = NULL;
  }
  yaml_document_delete(&doc);
  if (root) {
    yaml_document_t doc2;
    if (yaml_parser_load(&parser, &doc2)) {
      yaml_node_t *r2 = yaml_document_get_root_node(&doc2);
      if (r2) {
        spec_error(c, mark_loc(file, r2->start_mark), 1,
                   "a spec is one YAML document; found a second one");
        root = NULL;
      }
      yaml_document_delete(&doc2);
    } else {
      spec_error(c, mark_loc(file, parser.problem_mark), 1, "invalid YAML: %s",
                 parser.problem ? parser.problem : "parse error");
      root = NULL;
    }
  }
  yaml_parser_delete(&parser);
  return root;
}

YNode *spec_map_get(const YNode *map, const char *key) {
  if (!map || map->kind != Y_MAP)
    return NULL;
  for (int i = 0; i < map->n; i++)
    if (strcmp(map->keys[i]->str, key) == 0)
      return map->items[i];
  return NULL;
}

static YNode *map_key(const YNode *map, const char *key) {
  for (int i = 0; i < map->n; i++)
    if (strcmp(map->keys[i]->str, key) == 0)
      return map->keys[i];
  return NULL;
}

/* ---------------------------------------------------------------- the AST */

typedef struct {
  SpecCtx *c;
  Spec *spec;
  PtrVec blocks;
  PtrVec files; /* real paths read (include once) */
  int ast_count;
  bool too_big;
} Builder;

static const char *describe_node(SpecCtx *c, const YNode *y) {
  if (y->kind == Y_MAP)
    return "a mapping";
  if (y->kind == Y_SEQ)
    return "a list";
  Value v = expr_literal(y);
  return expr_describe(c->tmp, &v);
}

/* Report every key of `map` not in `allowed` ("unknown key 'x' <ctx>"), with
   a hint among the allowed ones. */
static bool check_keys(SpecCtx *c, const YNode *map, const char *const *allowed, int n,
                       const char *ctx) {
  bool ok = true;
  for (int i = 0; i < map->n; i++) {
    const YNode *k = map->keys[i];
    bool found = false;
    for (int j = 0; j < n && !found; j++)
      found = strcmp(allowed[j], k->str) == 0;
    if (!found) {
      spec_error_at(c, k, "unknown key '%s' %s", k->str, ctx);
      spec_hint(c, k->loc, k->str, allowed, n);
      ok = false;
    }
  }
  return ok;
}

static bool is_ident(const char *s) {
  if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
    return false;
  for (; *s; s++)
    if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9')))
      return false;
  return true;
}

/* A literal layer name must be usable in a dotted path. */
static bool check_name_literal(SpecCtx *c, const YNode *y) {
  if (y->kind != Y_SCALAR)
    return spec_error_at(c, y, "expected a name, got %s", describe_node(c, y));
  if (strchr(y->str, '$'))
    return true;
  if (!*y->str)
    return spec_error_at(c, y, "a name cannot be empty");
  if (strchr(y->str, '.'))
    return spec_error_at(c, y, "a name cannot contain '.' ('%s')", y->str);
  if (strcmp(y->str, "input") == 0)
    return spec_error_at(c, y,
                         "'input' is reserved for a scope's input and "
                         "cannot name a layer");
  return true;
}

static Layer *build_layer(Builder *b, YNode *y);

/* layers := '[' layer* ']' */
static bool build_layers(Builder *b, YNode *seq, Layer ***out, int *n, const char *what) {
  if (seq->kind != Y_SEQ)
    return spec_error_at(b->c, seq, "expected a list of layers for '%s', got %s", what,
                         describe_node(b->c, seq));
  if (seq->n == 0)
    return spec_error_at(b->c, seq, "'%s' needs at least one layer", what);
  *out = arena_alloc(b->c->tmp, sizeof(Layer *) * (size_t)seq->n);
  *n = seq->n;
  bool ok = true;
  for (int i = 0; i < seq->n; i++) {
    (*out)[i] = build_layer(b, seq->items[i]);
    ok = ok && !(*out)[i]->invalid;
  }
  return ok;
}

/* layer := { (op: NAME | block: NAME | layers: [layer...]),
 *            name?, in?, if?, repeat?, repeat_name?, repeat_from?, at?,
 *            numbered?, ATTRIBUTE-or-ARGUMENT* } */
static Layer *build_layer(Builder *b, YNode *y) {
  SpecCtx *c = b->c;
  Layer *L = arena_alloc(c->tmp, sizeof *L);
  L->node = y;
  if (++b->ast_count > SPEC_MAX_AST) {
    if (!b->too_big)
      spec_error_at(c, y,
                    "the spec is too large (more than %d layers after "
                    "expanding YAML aliases)",
                    SPEC_MAX_AST);
    b->too_big = true;
    L->invalid = true;
    return L;
  }
  if (y->kind != Y_MAP) {
    spec_error_at(c, y,
                  "expected a layer (a mapping with 'op', 'block' or "
                  "'layers'), got %s",
                  describe_node(c, y));
    L->invalid = true;
    return L;
  }
  YNode *op = spec_map_get(y, "op"), *blk = spec_map_get(y, "block"),
        *grp = spec_map_get(y, "layers");
  int kinds = !!op + !!blk + !!grp;
  if (kinds == 0) {
    spec_error(c, y->loc, 1, "a layer needs one of 'op', 'block' or 'layers'");
    /* still name the unknown keys, that is likely the problem */
    check_keys(c, y, layer_keys, NLAYER_KEYS, "in a layer");
    L->invalid = true;
    return L;
  }
  if (kinds > 1) {
    const char *second = grp ? "layers" : "block";
    const char *first = op ? "op" : "block";
    YNode *k = map_key(y, second);
    spec_error_at(c, k, "a layer cannot have both '%s' and '%s'", first, second);
    L->invalid = true;
    return L;
  }
  L->name = spec_map_get(y, "name");
  L->in = spec_map_get(y, "in");
  L->if_ = spec_map_get(y, "if");
  L->repeat = spec_map_get(y, "repeat");
  L->repeat_name = spec_map_get(y, "repeat_name");
  L->repeat_from = spec_map_get(y, "repeat_from");
  L->at = spec_map_get(y, "at");
  L->numbered = spec_map_get(y, "numbered");
  if (L->name && !check_name_literal(c, L->name))
    L->invalid = true;

  PtrVec args = {0};
  for (int i = 0; i < y->n; i++) {
    bool common = false;
    for (int j = 0; j < NLAYER_KEYS && !common; j++)
      common = strcmp(layer_keys[j], y->keys[i]->str) == 0;
    if (!common) {
      Arg *a = arena_alloc(c->tmp, sizeof *a);
      a->key = y->keys[i]->str;
      a->knode = y->keys[i];
      a->val = y->items[i];
      ptrvec_push(c->tmp, &args, a);
    }
  }
  L->nargs = args.len;
  L->args = arena_alloc(c->tmp, sizeof(Arg) * (size_t)(args.len ? args.len : 1));
  for (int i = 0; i < args.len; i++)
    L->args[i] = *(Arg *)args.items[i];

  if (op) {
    L->kind = LK_OP;
    L->what = op;
    if (op->kind != Y_SCALAR || op->quoted || strchr(op->str, '$')) {
      spec_error_at(c, op, "expected an op name, got %s", describe_node(c, op));
      L->invalid = true;
      return L;
    }
    L->op = spec_op_find(op->str);
    if (!L->op) {
      spec_error_at(c, op, "unknown op '%s'", op->str);
      const char *names[32];
      int n = 0;
      for (const SpecOp *o = spec_ops; o->name && n < 32; o++)
        names[n++] = o->name;
      spec_hint(c, op->loc, op->str, names, n);
      L->invalid = true;
      return L;
    }
    static const char *const block_only[] = {"repeat", "repeat_name", "repeat_from", "at",
                                             "numbered"};
    for (int i = 0; i < 5; i++) {
      YNode *k = map_key(y, block_only[i]);
      if (k) {
        spec_error_at(c, k, "'%s' is only allowed on a 'block' or 'layers' layer", block_only[i]);
      }
    }
    /* attributes: known to this op, required ones present */
    const char *cands[SPEC_MAX_ATTRS + NLAYER_KEYS];
    int nc = 0;
    for (int j = 0; j < SPEC_MAX_ATTRS && L->op->attrs[j].key; j++)
      cands[nc++] = L->op->attrs[j].key;
    for (int j = 0; j < NLAYER_KEYS; j++)
      cands[nc++] = layer_keys[j];
    for (int i = 0; i < L->nargs; i++) {
      bool found = false;
      for (int j = 0; j < SPEC_MAX_ATTRS && L->op->attrs[j].key && !found; j++)
        found = strcmp(L->op->attrs[j].key, L->args[i].key) == 0;
      if (!found) {
        spec_error_at(c, L->args[i].knode, "unknown key '%s' for op '%s'", L->args[i].key,
                      L->op->name);
        spec_hint(c, L->args[i].knode->loc, L->args[i].key, cands, nc);
        /* not fatal: lowering goes on without it and finds other errors */
      }
    }
    for (int j = 0; j < SPEC_MAX_ATTRS && L->op->attrs[j].key; j++) {
      const char *need = L->op->attrs[j].key;
      if (!L->op->attrs[j].required || spec_map_get(y, need))
        continue;
      L->invalid = true;
      /* A misspelling of it was already reported with "did you mean": a
         second error for the same mistake would only be noise. */
      bool misspelled = false;
      for (int i = 0; i < L->nargs && !misspelled; i++) {
        const char *best = diag_suggest(L->args[i].key, cands, nc);
        misspelled = best && strcmp(best, need) == 0 && strcmp(L->args[i].key, need) != 0;
      }
      if (!misspelled)
        spec_error_at(c, op, "op '%s' needs '%s'", L->op->name, need);
    }
    return L;
  }

  static const char *const repeat_only[] = {"repeat_name", "repeat_from", "at"};
  for (int i = 0; i < 3; i++) {
    YNode *k = map_key(y, repeat_only[i]);
    if (k && !L->repeat) {
      spec_error_at(c, k, "'%s' needs 'repeat'", repeat_only[i]);
      L->invalid = true;
    }
  }
  if (L->numbered && !L->name && !L->repeat_name)
    spec_error_at(c, map_key(y, "numbered"),
                  "'numbered' needs a named layer (an "
                  "unnamed block or group joins the "
                  "enclosing scope)");
  if (blk) {
    L->kind = LK_BLOCK;
    L->what = blk;
    if (blk->kind != Y_SCALAR || blk->quoted || strchr(blk->str, '$')) {
      spec_error_at(c, blk, "expected a block name, got %s", describe_node(c, blk));
      L->invalid = true;
    }
    return L; /* arguments are checked once every block is known */
  }
  L->kind = LK_GROUP;
  L->what = map_key(y, "layers");
  for (int i = 0; i < L->nargs; i++) {
    spec_error_at(c, L->args[i].knode, "unknown key '%s' in a group of layers", L->args[i].key);
    spec_hint(c, L->args[i].knode->loc, L->args[i].key, layer_keys, NLAYER_KEYS);
  }
  if (L->at) {
    spec_error_at(c, map_key(y, "at"),
                  "'at' overrides block parameters and is "
                  "only allowed with 'block'");
    L->invalid = true;
  }
  build_layers(b, grp, &L->layers, &L->nlayers, "layers");
  if (!L->layers)
    L->invalid = true; /* not a list; bad children are marked one by one */
  return L;
}

/* names reserved for built-in parameters and layer keys */
static bool reserved_param(const char *s) {
  if (!strcmp(s, "index") || !strcmp(s, "in"))
    return true;
  for (int j = 0; j < NLAYER_KEYS; j++)
    if (!strcmp(layer_keys[j], s))
      return true;
  return false;
}

/* block := { params: { NAME: default, ... }?, layers: [layer...], numbered? } */
static void build_block(Builder *b, YNode *key, YNode *y) {
  SpecCtx *c = b->c;
  Block *B = arena_alloc(c->tmp, sizeof *B);
  B->name = key->str;
  B->key = key;
  B->node = y;
  for (int i = 0; i < b->blocks.len; i++) {
    Block *o = b->blocks.items[i];
    if (strcmp(o->name, B->name) == 0) {
      spec_error_at(c, key, "block '%s' is defined twice", B->name);
      spec_note(c, o->key->loc, o->key->span, "first defined here");
      return;
    }
  }
  ptrvec_push(c->tmp, &b->blocks, B);
  if (y->kind != Y_MAP) {
    spec_error_at(c, y, "expected a block (a mapping with 'layers'), got %s", describe_node(c, y));
    B->invalid = true;
    return;
  }
  static const char *const keys[] = {"params", "layers", "numbered"};
  check_keys(c, y, keys, 3, arena_printf(c->tmp, "in block '%s'", B->name));
  YNode *params = spec_map_get(y, "params");
  if (params) {
    if (params->kind != Y_MAP) {
      spec_error_at(c, params,
                    "expected a mapping of parameters and their "
                    "defaults, got %s",
                    describe_node(c, params));
      B->invalid = true;
    } else {
      B->params = arena_alloc(c->tmp, sizeof(Arg) * (size_t)(params->n ? params->n : 1));
      for (int i = 0; i < params->n; i++) {
        YNode *k = params->keys[i];
        if (!is_ident(k->str)) {
          spec_error_at(c, k, "parameter name '%s' is not an identifier", k->str);
          B->invalid = true;
          continue;
        }
        if (reserved_param(k->str)) {
          spec_error_at(c, k, "'%s' is reserved and cannot name a parameter", k->str);
          B->invalid = true;
          continue;
        }
        B->params[B->nparams++] = (Arg){k->str, k, params->items[i]};
      }
    }
  }
  B->numbered = spec_map_get(y, "numbered");
  YNode *layers = spec_map_get(y, "layers");
  if (!layers) {
    spec_error_at(c, key, "block '%s' has no 'layers'", B->name);
    B->invalid = true;
  } else {
    /* bad layers are marked one by one; the block itself stays usable */
    build_layers(b, layers, &B->layers, &B->nlayers, "layers");
    if (!B->layers)
      B->invalid = true;
  }
}

static char *read_file(const char *path, size_t *len, int *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    *err = errno;
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      fclose(f);
      *err = ENOMEM;
      return NULL;
    }
    n += fread(buf + n, 1, cap - n - 1, f);
    if (ferror(f)) {
      *err = errno ? errno : EIO;
      free(buf);
      fclose(f);
      return NULL;
    }
    if (feof(f))
      break;
    if (n + 1 >= cap) {
      if (cap >= SPEC_MAX_FILE) {
        *err = EFBIG;
        free(buf);
        fclose(f);
        return NULL;
      }
      cap *= 2;
      char *nb = realloc(buf, cap);
      if (!nb)
        free(buf);
      buf = nb;
    }
  }
  fclose(f);
  buf[n] = 0;
  *len = n;
  return buf;
}

static char *dir_of(Arena *a, const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    return arena_strdup(a, ".");
  if (slash == path)
    return arena_strdup(a, "/");
  return arena_strndup(a, path, (size_t)(slash - path));
}

static void load_text(Builder *b, const char *file, const char *text, size_t len, const char *dir,
                      bool main, int depth);

/* include := path | [path, ...]   (relative to the including file) */
static void load_includes(Builder *b, YNode *inc, const char *dir, int depth) {
  SpecCtx *c = b->c;
  YNode *one[1] = {inc};
  YNode **items = inc->kind == Y_SEQ ? inc->items : one;
  int n = inc->kind == Y_SEQ ? inc->n : 1;
  for (int i = 0; i < n; i++) {
    YNode *p = items[i];
    if (p->kind != Y_SCALAR || !*p->str) {
      spec_error_at(c, p, "expected a file name to include, got %s", describe_node(c, p));
      continue;
    }
    if (depth >= SPEC_MAX_INCLUDE_DEPTH) {
      spec_error_at(c, p, "includes nested more than %d deep", SPEC_MAX_INCLUDE_DEPTH);
      continue;
    }
    const char *path = p->str[0] == '/' || !strcmp(dir, ".")
                           ? arena_strdup(c->g->arena, p->str)
                           : arena_printf(c->g->arena, "%s/%s", dir, p->str);
    char real[PATH_MAX];
    const char *key = realpath(path, real) ? real : path;
    bool seen = false;
    for (int j = 0; j < b->files.len && !seen; j++)
      seen = strcmp(b->files.items[j], key) == 0;
    if (seen)
      continue;
    ptrvec_push(c->tmp, &b->files, arena_strdup(c->tmp, key));
    size_t len;
    int err = 0;
    char *text = read_file(path, &len, &err);
    if (!text) {
      spec_error_at(c, p, "cannot read '%s': %s", path, strerror(err));
      continue;
    }
    load_text(b, path, text, len, dir_of(c->tmp, path), false, depth + 1);
    free(text);
  }
}

/* spec := { cnncc: 1, name: NAME, inputs: { NAME: shape, ... },
 *           outputs?: [ref, ...], include?: [path, ...], blocks?: { NAME: block },
 *           layers: [layer, ...] }
 * An included file has only cnncc?, include? and blocks. */
static void load_text(Builder *b, const char *file, const char *text, size_t len, const char *dir,
                      bool main, int depth) {
  SpecCtx *c = b->c;
  diag_add_source(c->diag, file, text, len);
  YNode *root = load_yaml(c, file, text, len);
  if (!root)
    return;
  if (root->kind != Y_MAP) {
    spec_error_at(c, root,
                  "a spec is a mapping of 'cnncc', 'name', 'inputs', "
                  "'layers', ...; got %s",
                  describe_node(c, root));
    return;
  }
  static const char *const main_keys[] = {"cnncc",   "name",   "inputs", "outputs",
                                          "include", "blocks", "layers"};
  static const char *const inc_keys[] = {"cnncc", "include", "blocks"};
  if (main)
    check_keys(c, root, main_keys, 7, "at the top level");
  else
    check_keys(c, root, inc_keys, 3,
               "in an included file (it may only have "
               "'cnncc', 'include' and 'blocks')");
  YNode *ver = spec_map_get(root, "cnncc");
  if (ver) {
    Value v = {0}; /* expr_literal reads a scalar's text: maps have none */
    if (ver->kind == Y_SCALAR)
      v = expr_literal(ver);
    if (ver->kind != Y_SCALAR || v.kind != V_INT)
      spec_error_at(c, ver, "expected the language version (1) for 'cnncc', got %s",
                    describe_node(c, ver));
    else if (v.i != 1)
      spec_error_at(c, ver,
                    "unsupported spec language version %lld (this cnncc "
                    "reads version 1)",
                    (long long)v.i);
  } else if (main) {
    spec_error(c, root->loc, 1, "missing 'cnncc: 1' (the spec language version)");
  }
  YNode *inc = spec_map_get(root, "include");
  if (inc)
    load_includes(b, inc, dir, depth);
  YNode *blocks = spec_map_get(root, "blocks");
  if (blocks) {
    if (blocks->kind != Y_MAP)
      spec_error_at(c, blocks, "expected a mapping of blocks, got %s", describe_node(c, blocks));
    else
      for (int i = 0; i < blocks->n; i++)
        build_block(b, blocks->keys[i], blocks->items[i]);
  }
  if (!main)
    return;

  Spec *s = b->spec;
  YNode *name = spec_map_get(root, "name");
  if (!name)
    spec_error(c, root->loc, 1, "missing 'name' (the network's name)");
  else if (name->kind != Y_SCALAR || !*name->str)
    spec_error_at(c, name, "expected the network's name, got %s", describe_node(c, name));
  else
    s->name = name->str, s->name_node = name;

  YNode *inputs = spec_map_get(root, "inputs");
  if (!inputs) {
    spec_error(c, root->loc, 1, "missing 'inputs' (e.g. 'inputs: {image: [3, 224, 224]}')");
  } else if (inputs->kind != Y_MAP || inputs->n == 0) {
    spec_error_at(c, inputs, "expected a mapping of input names to shapes, got %s",
                  describe_node(c, inputs));
  } else {
    s->inputs = arena_alloc(c->tmp, sizeof(SpecInput) * (size_t)inputs->n);
    for (int i = 0; i < inputs->n; i++) {
      if (!check_name_literal(c, inputs->keys[i]))
        continue;
      s->inputs[s->ninputs++] =
          (SpecInput){inputs->keys[i]->str, inputs->keys[i], inputs->items[i]};
    }
  }
  s->outputs = spec_map_get(root, "outputs");
  YNode *layers = spec_map_get(root, "layers");
  if (!layers)
    spec_error(c, root->loc, 1, "missing 'layers' (the network body)");
  else
    build_layers(b, layers, &s->layers, &s->nlayers, "layers");
}

/* ------------------------------------------------------------------ check */

static Block *find_block(Builder *b, const char *name) {
  for (int i = 0; i < b->blocks.len; i++)
    if (strcmp(((Block *)b->blocks.items[i])->name, name) == 0)
      return b->blocks.items[i];
  return NULL;
}

static bool has_param(const Block *B, const char *name) {
  for (int i = 0; i < B->nparams; i++)
    if (!strcmp(B->params[i].key, name))
      return true;
  return false;
}

static void param_hint(SpecCtx *c, const Block *B, const YNode *k) {
  const char **names = arena_alloc(c->tmp, sizeof(char *) * (size_t)(B->nparams + NLAYER_KEYS));
  int n = 0;
  for (int i = 0; i < B->nparams; i++)
    names[n++] = B->params[i].key;
  for (int j = 0; j < NLAYER_KEYS; j++)
    names[n++] = layer_keys[j];
  spec_hint(c, k->loc, k->str, names, n);
}

static void check_layers(Builder *b, Layer **layers, int n);

/* Resolve a block instance and match its arguments and overrides. */
static void check_layer(Builder *b, Layer *L) {
  SpecCtx *c = b->c;
  if (L->kind == LK_GROUP) {
    check_layers(b, L->layers, L->nlayers);
    return;
  }
  if (L->kind != LK_BLOCK || !L->what || L->what->kind != Y_SCALAR)
    return;
  Block *B = find_block(b, L->what->str);
  if (!B) {
    spec_error_at(c, L->what, "unknown block '%s'", L->what->str);
    const char **names = arena_alloc(c->tmp, sizeof(char *) * (size_t)(b->blocks.len + 1));
    for (int i = 0; i < b->blocks.len; i++)
      names[i] = ((Block *)b->blocks.items[i])->name;
    spec_hint(c, L->what->loc, L->what->str, names, b->blocks.len);
    L->invalid = true;
    return;
  }
  L->block = B;
  if (B->invalid)
    L->invalid = true;
  for (int i = 0; i < L->nargs; i++) {
    if (!has_param(B, L->args[i].key)) {
      spec_error_at(c, L->args[i].knode, "block '%s' has no parameter '%s'", B->name,
                    L->args[i].key);
      param_hint(c, B, L->args[i].knode);
    }
  }
  if (L->at) {
    if (L->at->kind != Y_MAP) {
      spec_error_at(c, L->at, "expected 'at: {INDEX: {param: value, ...}}', got %s",
                    describe_node(c, L->at));
      L->invalid = true;
      return;
    }
    for (int i = 0; i < L->at->n; i++) {
      Value k = expr_literal(L->at->keys[i]);
      if (k.kind != V_INT) {
        spec_error_at(c, L->at->keys[i], "expected an instance index in 'at', got %s",
                      expr_describe(c->tmp, &k));
        L->invalid = true;
      }
      YNode *ov = L->at->items[i];
      if (ov->kind != Y_MAP) {
        spec_error_at(c, ov, "expected a mapping of parameter overrides, got %s",
                      describe_node(c, ov));
        L->invalid = true;
        continue;
      }
      for (int j = 0; j < ov->n; j++) {
        if (!has_param(B, ov->keys[j]->str)) {
          spec_error_at(c, ov->keys[j], "block '%s' has no parameter '%s'", B->name,
                        ov->keys[j]->str);
          param_hint(c, B, ov->keys[j]);
        }
      }
    }
  }
}

static void check_layers(Builder *b, Layer **layers, int n) {
  for (int i = 0; i < n; i++)
    check_layer(b, layers[i]);
}

/* ------------------------------------------------------------ entry points */

static Graph *load(const char *file, const char *text, size_t len, const char *dir, Diag *d) {
  SpecCtx c = {0};
  c.diag = d;
  c.tmp = arena_new();
  c.g = ir_graph_new("net");
  int errors0 = diag_error_count(d);
  const char *gfile = arena_strdup(c.g->arena, file);
  Spec spec = {0};
  Builder b = {.c = &c, .spec = &spec};
  char real[PATH_MAX];
  ptrvec_push(c.tmp, &b.files, arena_strdup(c.tmp, realpath(gfile, real) ? real : gfile));
  load_text(&b, gfile, text, len, dir, true, 0);
  check_layers(&b, spec.layers, spec.nlayers);
  for (int i = 0; i < b.blocks.len; i++) {
    Block *B = b.blocks.items[i];
    check_layers(&b, B->layers, B->nlayers);
  }
  spec.blocks = (Block **)b.blocks.items;
  spec.nblocks = b.blocks.len;
  Graph *g = c.g;
  g->spec_file = gfile;
  if (spec.name)
    g->name = arena_strdup(g->arena, spec.name);
  bool ok = spec.ninputs > 0 && spec.nlayers > 0 && !c.stop;
  if (ok)
    ok = lower_spec(&c, &spec);
  lower_context_notes(&c);
  if (c.stop)
    diag_plain(d, DIAG_NOTE, "too many errors; stopping");
  if (!ok || diag_error_count(d) > errors0) {
    ir_graph_free(g);
    g = NULL;
  } else {
    g->num_params_orig = ir_graph_param_count(g, true);
  }
  arena_free(c.tmp);
  return g;
}

Graph *spec_load_file(const char *path, Diag *d) {
  size_t len;
  int err = 0;
  char *text = read_file(path, &len, &err);
  if (!text) {
    diag_report(d, DIAG_ERROR, (SrcLoc){path, 0, 0}, 0, "cannot read the spec: %s", strerror(err));
    return NULL;
  }
  Arena *a = arena_new();
  Graph *g = load(path, text, len, dir_of(a, path), d);
  arena_free(a);
  free(text);
  return g;
}

Graph *spec_load_string(const char *name, const char *text, Diag *d) {
  return load(name ? name : "<string>", text ? text : "", text ? strlen(text) : 0, ".", d);
}

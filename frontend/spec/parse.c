/*
 * parse.c: the YNode tree of one spec file into the AST.
 *
 * Each mapping is read against the keys it may have: the top level, blocks,
 * layers (op / block / group) and op attributes come from fixed tables, so
 * every unknown key is reported, with a "did you mean" note when one is
 * close. Values stay YNodes: they are evaluated during lowering, where block
 * parameters are known. A layer that cannot be used is marked invalid and
 * lowering treats it as poisoned, so one mistake is reported once.
 *
 * A file is read in two steps around its includes (load.c reads those), so
 * that an included file's blocks are known before the including file's:
 *   parse_root  YAML, the top-level keys and the language version;
 *   parse_body  its blocks, then (main file) the network.
 */
#include <string.h>

#include "spec_internal.h"

#define SPEC_MAX_AST 100000 /* layers built, bounds alias expansion */

const char *const parse_layer_keys[] = {"name",        "in",          "if",    "repeat",
                                        "repeat_name", "repeat_from", "at",    "numbered",
                                        "op",          "block",       "layers"};
_Static_assert(sizeof parse_layer_keys / sizeof parse_layer_keys[0] == PARSE_NLAYER_KEYS,
               "PARSE_NLAYER_KEYS counts parse_layer_keys");

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
    return spec_error_at(c, y, "expected a name, got %s", expr_describe_node(c->tmp, y));
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

static Layer *build_layer(SpecBuilder *b, YNode *y);

/* layers := '[' layer* ']' */
static bool build_layers(SpecBuilder *b, YNode *seq, Layer ***out, int *n, const char *what) {
  if (seq->kind != Y_SEQ)
    return spec_error_at(b->c, seq, "expected a list of layers for '%s', got %s", what,
                         expr_describe_node(b->c->tmp, seq));
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

/* Whether y can be a layer: within the bound on layers, a mapping, with
   exactly one of 'op', 'block' and 'layers' (reported if not). */
static bool check_layer_form(SpecBuilder *b, YNode *y, YNode *op, YNode *blk, YNode *grp) {
  SpecCtx *c = b->c;
  if (++b->ast_count > SPEC_MAX_AST) {
    if (!b->too_big)
      spec_error_at(c, y,
                    "the spec is too large (more than %d layers after "
                    "expanding YAML aliases)",
                    SPEC_MAX_AST);
    b->too_big = true;
    return false;
  }
  if (y->kind != Y_MAP)
    return spec_error_at(c, y,
                         "expected a layer (a mapping with 'op', 'block' or "
                         "'layers'), got %s",
                         expr_describe_node(c->tmp, y));
  int kinds = !!op + !!blk + !!grp;
  if (kinds == 0) {
    spec_error(c, y->loc, 1, "a layer needs one of 'op', 'block' or 'layers'");
    /* still name the unknown keys, that is likely the problem */
    check_keys(c, y, parse_layer_keys, PARSE_NLAYER_KEYS, "in a layer");
    return false;
  }
  if (kinds > 1) {
    const char *second = grp ? "layers" : "block";
    const char *first = op ? "op" : "block";
    YNode *k = ynode_key(y, second);
    return spec_error_at(c, k, "a layer cannot have both '%s' and '%s'", first, second);
  }
  return true;
}

/* The common keys of layer y into L; the others, an op's attributes or a
   block's arguments, into L->args. */
static void read_layer_keys(SpecCtx *c, Layer *L, YNode *y) {
  L->name = ynode_get(y, "name");
  L->in = ynode_get(y, "in");
  L->if_ = ynode_get(y, "if");
  L->repeat = ynode_get(y, "repeat");
  L->repeat_name = ynode_get(y, "repeat_name");
  L->repeat_from = ynode_get(y, "repeat_from");
  L->at = ynode_get(y, "at");
  L->numbered = ynode_get(y, "numbered");
  if (L->name && !check_name_literal(c, L->name))
    L->invalid = true;

  PtrVec args = {0};
  for (int i = 0; i < y->n; i++) {
    bool common = false;
    for (int j = 0; j < PARSE_NLAYER_KEYS && !common; j++)
      common = strcmp(parse_layer_keys[j], y->keys[i]->str) == 0;
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
}

/* Every argument of an op layer must be an attribute of its op (an unknown
   one is reported, not fatal: lowering goes on without it and finds other
   errors), and every required attribute must be given. */
static void check_op_attrs(SpecCtx *c, Layer *L, const YNode *y, const YNode *op) {
  const char *cands[SPEC_MAX_ATTRS + PARSE_NLAYER_KEYS];
  int nc = 0;
  for (int j = 0; j < SPEC_MAX_ATTRS && L->op->attrs[j].key; j++)
    cands[nc++] = L->op->attrs[j].key;
  for (int j = 0; j < PARSE_NLAYER_KEYS; j++)
    cands[nc++] = parse_layer_keys[j];
  for (int i = 0; i < L->nargs; i++) {
    if (!spec_op_attr(L->op, L->args[i].key)) {
      spec_error_at(c, L->args[i].knode, "unknown key '%s' for op '%s'", L->args[i].key,
                    spec_op_name(L->op));
      spec_hint(c, L->args[i].knode->loc, L->args[i].key, cands, nc);
    }
  }
  for (int j = 0; j < SPEC_MAX_ATTRS && L->op->attrs[j].key; j++) {
    const char *need = L->op->attrs[j].key;
    if (!L->op->attrs[j].required || ynode_get(y, need))
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
      spec_error_at(c, op, "op '%s' needs '%s'", spec_op_name(L->op), need);
  }
}

/* op layer := { op: NAME, name?, in?, if?, ATTRIBUTE* } */
static void build_op_layer(SpecCtx *c, Layer *L, YNode *y, YNode *op) {
  L->kind = LK_OP;
  L->what = op;
  if (op->kind != Y_SCALAR || op->quoted || strchr(op->str, '$')) {
    spec_error_at(c, op, "expected an op name, got %s", expr_describe_node(c->tmp, op));
    L->invalid = true;
    return;
  }
  L->op = spec_op_find(op->str);
  if (!L->op) {
    spec_error_at(c, op, "unknown op '%s'", op->str);
    synonym_note_unknown_op(c, op);
    L->invalid = true;
    return;
  }
  static const char *const block_only[] = {"repeat", "repeat_name", "repeat_from", "at",
                                           "numbered"};
  for (int i = 0; i < 5; i++) {
    YNode *k = ynode_key(y, block_only[i]);
    if (k) {
      spec_error_at(c, k, "'%s' is only allowed on a 'block' or 'layers' layer", block_only[i]);
    }
  }
  check_op_attrs(c, L, y, op);
}

/* block or group layer := { block: NAME | layers: [layer...], name?, in?,
 *   if?, repeat?, repeat_name?, repeat_from?, at?, numbered?, ARGUMENT* } */
static void build_compound_layer(SpecBuilder *b, Layer *L, YNode *y, YNode *blk, YNode *grp) {
  SpecCtx *c = b->c;
  static const char *const repeat_only[] = {"repeat_name", "repeat_from", "at"};
  for (int i = 0; i < 3; i++) {
    YNode *k = ynode_key(y, repeat_only[i]);
    if (k && !L->repeat) {
      spec_error_at(c, k, "'%s' needs 'repeat'", repeat_only[i]);
      L->invalid = true;
    }
  }
  if (L->numbered && !L->name && !L->repeat_name)
    spec_error_at(c, ynode_key(y, "numbered"),
                  "'numbered' needs a named layer (an "
                  "unnamed block or group joins the "
                  "enclosing scope)");
  if (blk) {
    L->kind = LK_BLOCK;
    L->what = blk;
    if (blk->kind != Y_SCALAR || blk->quoted || strchr(blk->str, '$')) {
      spec_error_at(c, blk, "expected a block name, got %s", expr_describe_node(c->tmp, blk));
      L->invalid = true;
    }
    return; /* arguments are checked once every block is known */
  }
  L->kind = LK_GROUP;
  L->what = ynode_key(y, "layers");
  for (int i = 0; i < L->nargs; i++) {
    spec_error_at(c, L->args[i].knode, "unknown key '%s' in a group of layers", L->args[i].key);
    spec_hint(c, L->args[i].knode->loc, L->args[i].key, parse_layer_keys, PARSE_NLAYER_KEYS);
  }
  if (L->at) {
    spec_error_at(c, ynode_key(y, "at"),
                  "'at' overrides block parameters and is "
                  "only allowed with 'block'");
    L->invalid = true;
  }
  build_layers(b, grp, &L->layers, &L->nlayers, "layers");
  if (!L->layers)
    L->invalid = true; /* not a list; bad children are marked one by one */
}

/* layer := { (op: NAME | block: NAME | layers: [layer...]),
 *            name?, in?, if?, repeat?, repeat_name?, repeat_from?, at?,
 *            numbered?, ATTRIBUTE-or-ARGUMENT* } */
static Layer *build_layer(SpecBuilder *b, YNode *y) {
  Layer *L = arena_alloc(b->c->tmp, sizeof *L);
  L->node = y;
  YNode *op = ynode_get(y, "op"), *blk = ynode_get(y, "block"), *grp = ynode_get(y, "layers");
  if (!check_layer_form(b, y, op, blk, grp)) {
    L->invalid = true;
    return L;
  }
  read_layer_keys(b->c, L, y);
  if (op)
    build_op_layer(b->c, L, y, op);
  else
    build_compound_layer(b, L, y, blk, grp);
  return L;
}

/* names reserved for built-in parameters and layer keys */
static bool reserved_param(const char *s) {
  if (!strcmp(s, "index") || !strcmp(s, "in"))
    return true;
  for (int j = 0; j < PARSE_NLAYER_KEYS; j++)
    if (!strcmp(parse_layer_keys[j], s))
      return true;
  return false;
}

/* block := { params: { NAME: default, ... }?, layers: [layer...], numbered? } */
static void build_block(SpecBuilder *b, YNode *key, YNode *y) {
  SpecCtx *c = b->c;
  Block *B = arena_alloc(c->tmp, sizeof *B);
  B->name = key->str;
  B->key = key;
  B->node = y;
  for (int i = 0; i < b->spec->blocks.len; i++) {
    Block *o = b->spec->blocks.items[i];
    if (strcmp(o->name, B->name) == 0) {
      spec_error_at(c, key, "block '%s' is defined twice", B->name);
      spec_note(c, o->key->loc, o->key->span, "first defined here");
      return;
    }
  }
  ptrvec_push(c->tmp, &b->spec->blocks, B);
  if (y->kind != Y_MAP) {
    spec_error_at(c, y, "expected a block (a mapping with 'layers'), got %s",
                  expr_describe_node(c->tmp, y));
    B->invalid = true;
    return;
  }
  static const char *const keys[] = {"params", "layers", "numbered"};
  check_keys(c, y, keys, 3, arena_printf(c->tmp, "in block '%s'", B->name));
  YNode *params = ynode_get(y, "params");
  if (params) {
    if (params->kind != Y_MAP) {
      spec_error_at(c, params,
                    "expected a mapping of parameters and their "
                    "defaults, got %s",
                    expr_describe_node(c->tmp, params));
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
  B->numbered = ynode_get(y, "numbered");
  YNode *layers = ynode_get(y, "layers");
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

/* spec := { cnncc: 1, name: NAME, inputs: { NAME: shape, ... },
 *           outputs?: [ref, ...], include?: [path, ...], blocks?: { NAME: block },
 *           layers: [layer, ...] }
 * An included file has only cnncc?, include? and blocks. */
YNode *parse_root(SpecBuilder *b, const char *file, const char *text, size_t len, bool main) {
  SpecCtx *c = b->c;
  YNode *root = ynode_parse(c, file, text, len);
  if (!root)
    return NULL;
  if (root->kind != Y_MAP) {
    spec_error_at(c, root,
                  "a spec is a mapping of 'cnncc', 'name', 'inputs', "
                  "'layers', ...; got %s",
                  expr_describe_node(c->tmp, root));
    return NULL;
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
  YNode *ver = ynode_get(root, "cnncc");
  if (ver) {
    Value v = {0}; /* expr_literal reads a scalar's text: maps have none */
    if (ver->kind == Y_SCALAR)
      v = expr_literal(ver);
    if (ver->kind != Y_SCALAR || v.kind != V_INT)
      spec_error_at(c, ver, "expected the language version (1) for 'cnncc', got %s",
                    expr_describe_node(c->tmp, ver));
    else if (v.i != 1)
      spec_error_at(c, ver,
                    "unsupported spec language version %lld (this cnncc "
                    "reads version 1)",
                    (long long)v.i);
  } else if (main) {
    spec_error(c, root->loc, 1, "missing 'cnncc: 1' (the spec language version)");
  }
  return root;
}

/* The network of the main file: name, inputs, outputs, layers. */
static void parse_network(SpecBuilder *b, YNode *root) {
  SpecCtx *c = b->c;
  Spec *s = b->spec;
  YNode *name = ynode_get(root, "name");
  if (!name)
    spec_error(c, root->loc, 1, "missing 'name' (the network's name)");
  else if (name->kind != Y_SCALAR || !*name->str)
    spec_error_at(c, name, "expected the network's name, got %s", expr_describe_node(c->tmp, name));
  else
    s->name = name->str, s->name_node = name;

  YNode *inputs = ynode_get(root, "inputs");
  if (!inputs) {
    spec_error(c, root->loc, 1, "missing 'inputs' (e.g. 'inputs: {image: [3, 224, 224]}')");
  } else if (inputs->kind != Y_MAP || inputs->n == 0) {
    spec_error_at(c, inputs, "expected a mapping of input names to shapes, got %s",
                  expr_describe_node(c->tmp, inputs));
  } else {
    s->inputs = arena_alloc(c->tmp, sizeof(SpecInput) * (size_t)inputs->n);
    for (int i = 0; i < inputs->n; i++) {
      if (!check_name_literal(c, inputs->keys[i]))
        continue;
      s->inputs[s->ninputs++] =
          (SpecInput){inputs->keys[i]->str, inputs->keys[i], inputs->items[i]};
    }
  }
  s->outputs = ynode_get(root, "outputs");
  YNode *layers = ynode_get(root, "layers");
  if (!layers)
    spec_error(c, root->loc, 1, "missing 'layers' (the network body)");
  else
    build_layers(b, layers, &s->layers, &s->nlayers, "layers");
}

void parse_body(SpecBuilder *b, YNode *root, bool main) {
  SpecCtx *c = b->c;
  YNode *blocks = ynode_get(root, "blocks");
  if (blocks) {
    if (blocks->kind != Y_MAP)
      spec_error_at(c, blocks, "expected a mapping of blocks, got %s",
                    expr_describe_node(c->tmp, blocks));
    else
      for (int i = 0; i < blocks->n; i++)
        build_block(b, blocks->keys[i], blocks->items[i]);
  }
  if (main)
    parse_network(b, root);
}

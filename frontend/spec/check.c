/*
 * check.c: what can be checked only once every block is known.
 *
 * The main file and every included file have been parsed, so each block
 * instance (`block: NAME`) is resolved here, unknown blocks getting a hint,
 * and its arguments and `at:` overrides are matched against the block's
 * parameters. A layer that fails is marked invalid; lowering treats it as
 * poisoned.
 */
#include <string.h>

#include "spec_internal.h"

static Block *find_block(const Spec *s, const char *name) {
  for (int i = 0; i < s->blocks.len; i++)
    if (strcmp(((Block *)s->blocks.items[i])->name, name) == 0)
      return s->blocks.items[i];
  return NULL;
}

static bool has_param(const Block *B, const char *name) {
  for (int i = 0; i < B->nparams; i++)
    if (!strcmp(B->params[i].key, name))
      return true;
  return false;
}

static void param_hint(SpecCtx *c, const Block *B, const YNode *k) {
  const char **names =
      arena_alloc(c->tmp, sizeof(char *) * (size_t)(B->nparams + PARSE_NLAYER_KEYS));
  int n = 0;
  for (int i = 0; i < B->nparams; i++)
    names[n++] = B->params[i].key;
  for (int j = 0; j < PARSE_NLAYER_KEYS; j++)
    names[n++] = parse_layer_keys[j];
  spec_hint(c, k->loc, k->str, names, n);
}

static void check_layers(SpecCtx *c, const Spec *s, Layer **layers, int n);

/* Resolve a block instance and match its arguments and overrides. */
static void check_layer(SpecCtx *c, const Spec *s, Layer *L) {
  if (L->kind == LK_GROUP) {
    check_layers(c, s, L->layers, L->nlayers);
    return;
  }
  if (L->kind != LK_BLOCK || !L->what || L->what->kind != Y_SCALAR)
    return;
  Block *B = find_block(s, L->what->str);
  if (!B) {
    spec_error_at(c, L->what, "unknown block '%s'", L->what->str);
    const char **names = arena_alloc(c->tmp, sizeof(char *) * (size_t)(s->blocks.len + 1));
    for (int i = 0; i < s->blocks.len; i++)
      names[i] = ((Block *)s->blocks.items[i])->name;
    spec_hint(c, L->what->loc, L->what->str, names, s->blocks.len);
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
                    expr_describe_node(c->tmp, L->at));
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
                      expr_describe_node(c->tmp, ov));
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

static void check_layers(SpecCtx *c, const Spec *s, Layer **layers, int n) {
  for (int i = 0; i < n; i++)
    check_layer(c, s, layers[i]);
}

void check_spec(SpecCtx *c, Spec *s) {
  check_layers(c, s, s->layers, s->nlayers);
  for (int i = 0; i < s->blocks.len; i++) {
    Block *B = s->blocks.items[i];
    check_layers(c, s, B->layers, B->nlayers);
  }
}

/*
 * yaml.c: YAML text into a tree of YNodes.
 *
 * libyaml's document API parses the text; its errors are reported with
 * libyaml's own message and position. The document becomes a tree of YNodes
 * carrying 1-based line:col (libyaml's start_mark) and a span to underline.
 * Aliases are shared, not copied; an alias cycle and a tree deeper than
 * YAML_MAX_DEPTH are errors (no stack overflow). Mapping keys must be
 * scalars and unique. A spec is one YAML document: a second one is an error.
 */
#include <string.h>
#include <yaml.h>

#include "spec_internal.h"

#define YAML_MAX_DEPTH 200

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

YNode *ynode_parse(SpecCtx *c, const char *file, const char *text, size_t len) {
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

YNode *ynode_get(const YNode *map, const char *key) {
  if (!map || map->kind != Y_MAP)
    return NULL;
  for (int i = 0; i < map->n; i++)
    if (strcmp(map->keys[i]->str, key) == 0)
      return map->items[i];
  return NULL;
}

YNode *ynode_key(const YNode *map, const char *key) {
  for (int i = 0; i < map->n; i++)
    if (strcmp(map->keys[i]->str, key) == 0)
      return map->keys[i];
  return NULL;
}

/*
 * spec_harness.c: loading spec text for the tests (see spec_harness.h).
 */
#include "spec_harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Loaded load(const char *text) {
  Loaded r = {0};
  size_t len = 0;
  FILE *f = open_memstream(&r.diag, &len);
  Diag *d = diag_new(f, false);
  r.g = spec_load_string("t.yaml", text, d);
  if (!r.g)
    cr_assert_gt(diag_error_count(d), 0, "NULL graph without an error");
  else
    cr_assert_eq(diag_error_count(d), 0);
  diag_free(d);
  fclose(f);
  return r;
}

void done(Loaded *r) {
  ir_graph_free(r->g);
  free(r->diag);
}

Graph *ok(const char *text, Loaded *r) {
  *r = load(text);
  cr_assert_not_null(r->g, "spec rejected:\n%s", r->diag);
  cr_assert_str_eq(r->diag, "");
  return r->g;
}

const char *bad(const char *text, Loaded *r) {
  *r = load(text);
  cr_assert_null(r->g, "spec accepted but should not be");
  return r->diag;
}

Node *node(Graph *g, const char *name) {
  for (int i = 0; i < g->nodes.len; i++)
    if (!strcmp(GRAPH_NODE(g, i)->name, name))
      return GRAPH_NODE(g, i);
  cr_assert_fail("no node '%s'", name);
  return NULL;
}

void shape_is(const Node *n, const char *want) {
  char buf[64];
  cr_assert_str_eq(shape_str(&n->shape, buf, sizeof buf), want, "shape of '%s'", n->name);
}

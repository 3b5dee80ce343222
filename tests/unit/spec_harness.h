/*
 * spec_harness.h: what the spec-language tests (test_frontend.c,
 * test_spec_ops.c) share: load YAML text into a graph with the
 * diagnostics captured as text, and expect acceptance or rejection.
 */
#ifndef CNNCC_TESTS_SPEC_HARNESS_H
#define CNNCC_TESTS_SPEC_HARNESS_H

#include "frontend/frontend.h"

typedef struct {
  Graph *g;
  char *diag; /* everything reported */
} Loaded;

/* Loads `text` as the file "t.yaml"; a NULL graph must come with at least
   one error, a graph with none. */
Loaded load(const char *text);
/* Frees the graph and the diagnostics. */
void done(Loaded *r);
/* Loads a spec that must be accepted silently; its graph. */
Graph *ok(const char *text, Loaded *r);
/* Loads a spec that must be rejected; the diagnostics. */
const char *bad(const char *text, Loaded *r);

/* The node of g called `name` (fails the test if there is none). */
Node *node(Graph *g, const char *name);
/* Fails unless n's shape prints as `want` ("[64, 56, 56]"). */
void shape_is(const Node *n, const char *want);
/* Fails unless the diagnostics contain s. */
#define HAS(diag, s) cr_assert(strstr((diag), (s)), "missing:\n%s\nin:\n%s", (s), (diag))

#endif

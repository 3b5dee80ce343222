/*
 * test_spec_ops.c: the ops the spec language gained for the mobile and
 * efficient networks (activations, mul, parameter, slice/chunk,
 * channel_shuffle, layernorm, pointwise_linear, adaptive/global max
 * pooling): each from YAML text to the graph, its attributes, shapes and
 * parameter names, and the errors of its bad attributes. (The language
 * itself, blocks, names and references: test_frontend.c; the exact text
 * of diagnostics: tests/diag/cases/.)
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"

/* ------------------------------------------------------------ helpers */

typedef struct {
  Graph *g;
  char *diag; /* everything reported */
} Loaded;

static Loaded load(const char *text) {
  Loaded r = {0};
  size_t len = 0;
  FILE *f = open_memstream(&r.diag, &len);
  Diag *d = diag_new(f, false);
  r.g = spec_load_string("t.yaml", text, d);
  diag_free(d);
  fclose(f);
  return r;
}

static void done(Loaded *r) {
  ir_graph_free(r->g);
  free(r->diag);
}

static Graph *ok(const char *text, Loaded *r) {
  *r = load(text);
  cr_assert_not_null(r->g, "spec rejected:\n%s", r->diag);
  cr_assert_str_eq(r->diag, "");
  return r->g;
}

static const char *bad(const char *text, Loaded *r) {
  *r = load(text);
  cr_assert_null(r->g, "spec accepted but should not be");
  return r->diag;
}

#define HAS(diag, s) cr_assert(strstr((diag), (s)), "missing:\n%s\nin:\n%s", (s), (diag))
#define HDR "cnncc: 1\nname: t\ninputs: {image: [32, 8, 8]}\n"

static Node *node(Graph *g, const char *name) {
  for (int i = 0; i < g->nodes.len; i++)
    if (!strcmp(GRAPH_NODE(g, i)->name, name))
      return GRAPH_NODE(g, i);
  cr_assert_fail("no node '%s'", name);
  return NULL;
}

static void shape_is(const Node *n, const char *want) {
  char buf[64];
  cr_assert_str_eq(shape_str(&n->shape, buf, sizeof buf), want, "shape of '%s'", n->name);
}

static void act_is(const Node *n, ActKind kind, float a, float b) {
  Act got = ir_node_act(n), want = {.kind = kind, .a = a, .b = b};
  char g1[64], w1[64];
  cr_assert(ir_act_eq(&got, &want), "'%s' computes %s, not %s", n->name,
            ir_act_str(&got, g1, sizeof g1), ir_act_str(&want, w1, sizeof w1));
}

/* --------------------------------------------------------- activations */

Test(spec_ops, every_activation_and_its_attributes_map_onto_the_ir) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n"
                    "  - {name: r6, op: relu6}\n"
                    "  - {name: c, op: clamp, min: -1.5, max: 2}\n"
                    "  - {name: lo, op: clamp, min: 0}\n"
                    "  - {name: hi, op: clamp, max: 1}\n"
                    "  - {name: s, op: sigmoid}\n"
                    "  - {name: hs, op: hardsigmoid}\n"
                    "  - {name: hs2, op: hardsigmoid, alpha: 0.2, beta: 0.5}\n"
                    "  - {name: hw, op: hardswish}\n"
                    "  - {name: si, op: silu}\n"
                    "  - {name: ge, op: gelu}\n"
                    "  - {name: gn, op: gelu, approximate: none}\n"
                    "  - {name: gt, op: gelu, approximate: tanh}\n",
                &r);
  act_is(node(g, "r6"), ACT_CLAMP, 0, 6);
  cr_assert_eq(node(g, "r6")->op, OP_CLAMP);
  act_is(node(g, "c"), ACT_CLAMP, -1.5f, 2);
  act_is(node(g, "lo"), ACT_CLAMP, 0, INFINITY);
  act_is(node(g, "hi"), ACT_CLAMP, -INFINITY, 1);
  act_is(node(g, "s"), ACT_SIGMOID, 0, 0);
  act_is(node(g, "hs"), ACT_HARDSIGMOID, 1.0f / 6, 0.5f);
  act_is(node(g, "hs2"), ACT_HARDSIGMOID, 0.2f, 0.5f);
  act_is(node(g, "hw"), ACT_HARDSWISH, 0, 0);
  act_is(node(g, "si"), ACT_SILU, 0, 0);
  act_is(node(g, "ge"), ACT_GELU, 0, 0);
  act_is(node(g, "gn"), ACT_GELU, 0, 0);
  act_is(node(g, "gt"), ACT_GELU_TANH, 0, 0);
  shape_is(node(g, "gt"), "32x8x8");
  done(&r);
}

Test(spec_ops, activations_name_themselves_like_relu) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n  - {op: relu6}\n  - {op: silu}\n  - {op: relu6}\n", &r);
  act_is(node(g, "relu61"), ACT_CLAMP, 0, 6);
  act_is(node(g, "silu1"), ACT_SILU, 0, 0);
  act_is(node(g, "relu62"), ACT_CLAMP, 0, 6);
  done(&r);
}

Test(spec_ops, bad_activation_attributes_are_errors) {
  Loaded r;
  const char *d = bad(HDR "layers:\n  - {op: clamp}\n", &r);
  HAS(d, "t.yaml:5:10: error: clamp needs 'min', 'max' or both");
  HAS(d, "note: clamp(min: 0, max: 6) is ReLU6 (also spelled relu6)");
  done(&r);
  d = bad(HDR "layers:\n  - {op: clamp, min: 2, max: 1}\n", &r);
  HAS(d, "t.yaml:5:30: error: clamp: 'max' (1) is below 'min' (2)");
  done(&r);
  d = bad(HDR "layers:\n  - {op: gelu, approximate: tanhh}\n", &r);
  HAS(d, "t.yaml:5:29: error: expected 'none' or 'tanh' for 'approximate', got string 'tanhh'");
  HAS(d, "note: did you mean 'tanh'?");
  done(&r);
  d = bad(HDR "layers:\n  - {op: gelu, approximate: true}\n", &r);
  HAS(d, "error: expected 'none' or 'tanh' for 'approximate', got");
  done(&r);
  d = bad(HDR "layers:\n  - {op: hardsigmoid, alpha: 0}\n", &r);
  HAS(d, "error: hardsigmoid: 'alpha' must not be 0");
  done(&r);
  d = bad(HDR "layers:\n  - {op: relu6, max: 3}\n", &r);
  HAS(d, "error: unknown key 'max' for op 'relu6'");
  done(&r);
  d = bad(HDR "layers:\n  - {op: sigmoid, min: 0}\n", &r);
  HAS(d, "error: unknown key 'min' for op 'sigmoid'");
  done(&r);
}

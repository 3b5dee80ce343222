/*
 * test_spec_write.c: the writers of --emit=spec, a graph back into a spec
 * (frontend/spec/write.c) and parameters into a safetensors file
 * (frontend/weights/st_write.c).
 *
 *   write      the text: one layer per line, defaults left out, `in:` and
 *              `outputs:` only where needed, aliases, every attribute kind
 *              exactly; flat names from hierarchical and foreign ones; what
 *              the language cannot express is an error naming the layer
 *   roundtrip  every zoo network (examples/ *.yaml) written and loaded
 *              again prints the same IR modulo names, its parameters named
 *              as the writer said; a few with their weights, bit for bit
 *   st_write   the safetensors file: the standard layout, read back by
 *              safetensors.c, atomic, its errors
 *
 * The whole zoo through the cnncc command, compiled both ways and run, is
 * tests/roundtrip/ (label roundtrip).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/frontend.h"
#include "frontend/weights/weights_internal.h"
#include "passes/passes.h"

/* ------------------------------------------------------------------ helpers */

typedef struct {
  char *text;         /* the written spec ("" on failure) */
  char *diag;         /* what was reported */
  NamedParam *params; /* in the graph's arena */
  int nparams;
  bool ok;
} Written;

static Written write_graph(const Graph *g, const char *comment) {
  Written w = {0};
  size_t tl = 0, dl = 0;
  FILE *t = open_memstream(&w.text, &tl), *df = open_memstream(&w.diag, &dl);
  Diag *d = diag_new(df, false);
  w.ok = spec_write(g, comment, t, &w.params, &w.nparams, d);
  cr_assert_eq(w.ok, diag_error_count(d) == 0, "spec_write's result and its errors disagree");
  diag_free(d);
  fclose(t);
  fclose(df);
  return w;
}

static void written_free(Written *w) {
  free(w->text);
  free(w->diag);
}

static Graph *load_text(const char *name, const char *text) {
  char *dt = NULL;
  size_t dl = 0;
  FILE *df = open_memstream(&dt, &dl);
  Diag *d = diag_new(df, false);
  Graph *g = spec_load_string(name, text, d);
  diag_free(d);
  fclose(df);
  cr_assert_not_null(g, "spec rejected:\n%s\n--- the spec:\n%s", dt, text);
  free(dt);
  return g;
}

static Graph *load_file(const char *path) {
  Diag *d = diag_new(stderr, false);
  Graph *g = spec_load_file(path, d);
  diag_free(d);
  cr_assert_not_null(g, "%s rejected", path);
  return g;
}

/* Write g and load the text again; the written spec must load. */
static Graph *round_trip(const Graph *g, Written *w) {
  *w = write_graph(g, NULL);
  cr_assert(w->ok, "spec_write failed:\n%s", w->diag);
  return load_text("written.yaml", w->text);
}

#define HAS(s, part) cr_assert(strstr((s), (part)), "missing:\n%s\nin:\n%s", (part), (s))
#define LACKS(s, part) cr_assert(!strstr((s), (part)), "should not have:\n%s\nin:\n%s", (part), (s))

static const char *tmpdir(void) {
  static char dir[64];
  if (!dir[0]) {
    strcpy(dir, "/tmp/cnncc-spw-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
  }
  return dir;
}

static char *tmppath(const char *name) {
  static char path[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(path[k], sizeof path[k], "%s/%s", tmpdir(), name);
  return path[k];
}

/* The number of entries of the scratch directory (temporaries left behind
   show up here). */
static int files_in_tmpdir(void) {
  DIR *d = opendir(tmpdir());
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void remove_tmpdir(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir());
  cr_assert_eq(system(cmd), 0);
}

/* ------------------------------------------------------------------- write */

Test(write, a_chain_is_one_layer_per_line_with_the_defaults_left_out) {
  Graph *g = load_text("t.yaml", "cnncc: 1\n"
                                 "name: tiny\n"
                                 "inputs: {image: [3, 32, 32]}\n"
                                 "layers:\n"
                                 "  - {name: conv1, op: conv2d, out: 8, kernel: 3, pad: 1}\n"
                                 "  - {name: bn1, op: batchnorm, eps: 0.001}\n"
                                 "  - {op: relu}\n"
                                 "  - {name: pool, op: maxpool, kernel: 2}\n"
                                 "  - {name: avg, op: avgpool, kernel: 3, stride: 1}\n"
                                 "  - {op: flatten}\n"
                                 "  - {name: fc, op: linear, out: 10, bias: false}\n");
  Written w = write_graph(g, "from t.yaml\n\nby a test");
  cr_assert(w.ok, "%s", w.diag);
  cr_assert_str_eq(w.text, "# from t.yaml\n"
                           "#\n"
                           "# by a test\n"
                           "cnncc: 1\n"
                           "name: tiny\n"
                           "inputs:\n"
                           "  image: [3, 32, 32]\n"
                           "layers:\n"
                           "  - {name: conv1, op: conv2d, out: 8, kernel: 3, pad: 1}\n"
                           "  - {name: bn1, op: batchnorm, eps: 0.001}\n"
                           "  - {name: relu1, op: relu}\n"
                           "  - {name: pool, op: maxpool, kernel: 2}\n"
                           "  - {name: avg, op: avgpool, kernel: 3, stride: 1}\n"
                           "  - {name: flatten1, op: flatten}\n"
                           "  - {name: fc, op: linear, out: 10, bias: false}\n");
  cr_assert_eq(w.nparams, 7);
  const char *names[] = {"conv1.weight",     "conv1.bias",      "bn1.weight", "bn1.bias",
                         "bn1.running_mean", "bn1.running_var", "fc.weight"};
  for (int i = 0; i < 7; i++) {
    cr_assert_str_eq(w.params[i].name, names[i]);
    cr_assert_eq(w.params[i].param, GRAPH_PARAM(g, i));
  }
  written_free(&w);
  ir_graph_free(g);
}

Test(write, in_is_written_only_where_the_input_is_not_the_previous_layer) {
  Graph *g = load_text("t.yaml", "cnncc: 1\n"
                                 "name: two\n"
                                 "inputs: {a: [4, 8, 8], b: [4, 8, 8]}\n"
                                 "layers:\n"
                                 "  - {name: cb, op: conv2d, in: b, out: 4, kernel: 1}\n"
                                 "  - {name: ca, op: conv2d, in: a, out: 4, kernel: 1}\n"
                                 "  - {name: r, op: relu}\n"
                                 "  - {name: sum, op: add, in: [r, cb]}\n"
                                 "  - {name: cat, op: concat, in: [sum]}\n");
  Written w = write_graph(g, NULL);
  cr_assert(w.ok, "%s", w.diag);
  HAS(w.text, "inputs:\n  a: [4, 8, 8]\n  b: [4, 8, 8]\nlayers:\n");
  HAS(w.text, "  - {name: cb, op: conv2d, in: b, out: 4, kernel: 1}\n"
              "  - {name: ca, op: conv2d, in: a, out: 4, kernel: 1}\n"
              "  - {name: r, op: relu}\n"
              "  - {name: sum, op: add, in: [r, cb]}\n"
              "  - {name: cat, op: concat}\n");
  LACKS(w.text, "outputs");
  written_free(&w);
  ir_graph_free(g);
}

Test(write, outputs_are_written_when_they_are_not_the_default) {
  Graph *g = load_text("t.yaml", "cnncc: 1\n"
                                 "name: heads\n"
                                 "inputs: {x: [16]}\n"
                                 "outputs: [fc1, fc2]\n"
                                 "layers:\n"
                                 "  - {name: fc1, op: linear, out: 4}\n"
                                 "  - {name: fc2, op: linear, in: x, out: 2}\n");
  Written w;
  Graph *r = round_trip(g, &w);
  HAS(w.text, "outputs: [fc1, fc2]\nlayers:\n");
  cr_assert_eq(r->noutputs, 2);
  cr_assert_str_eq(r->outputs[0].name, "fc1");
  cr_assert_str_eq(r->outputs[1].name, "fc2");
  written_free(&w);
  ir_graph_free(r);
  ir_graph_free(g);
}

Test(write, an_output_before_the_last_layer_is_listed) {
  Graph *g = load_text("t.yaml", "cnncc: 1\n"
                                 "name: early\n"
                                 "inputs: {x: [16]}\n"
                                 "outputs: [fc1]\n"
                                 "layers:\n"
                                 "  - {name: fc1, op: linear, out: 4}\n"
                                 "  - {name: fc2, op: linear, out: 2}\n");
  Written w = write_graph(g, NULL);
  HAS(w.text, "outputs: [fc1]\n");
  written_free(&w);
  ir_graph_free(g);
}

Test(write, hierarchical_names_become_flat_and_the_parameters_follow) {
  Graph *g = load_text("t.yaml", "cnncc: 1\n"
                                 "name: blocks\n"
                                 "inputs: {image: [3, 8, 8]}\n"
                                 "blocks:\n"
                                 "  unit:\n"
                                 "    layers:\n"
                                 "      - {name: conv, op: conv2d, out: 4, kernel: 3, pad: 1}\n"
                                 "      - {name: bn, op: batchnorm}\n"
                                 "layers:\n"
                                 "  - {name: layer1, block: unit, repeat: 2}\n"
                                 "  - {name: features, numbered: true, layers: [{op: relu}]}\n");
  Written w;
  Graph *r = round_trip(g, &w);
  HAS(w.text, "  - {name: layer1_0_conv, op: conv2d, out: 4, kernel: 3, pad: 1}\n"
              "  - {name: layer1_0_bn, op: batchnorm}\n"
              "  - {name: layer1_1_conv, op: conv2d, out: 4, kernel: 3, pad: 1}\n"
              "  - {name: layer1_1_bn, op: batchnorm}\n"
              "  - {name: features_0, op: relu}\n");
  cr_assert_eq(w.nparams, g->params.len);
  cr_assert_str_eq(w.params[0].name, "layer1_0_conv.weight");
  cr_assert_str_eq(w.params[7].name, "layer1_1_conv.bias");
  /* the names the written spec gives its parameters, in the same order */
  cr_assert_eq(r->params.len, w.nparams);
  for (int i = 0; i < w.nparams; i++)
    cr_assert_str_eq(GRAPH_PARAM(r, i)->name, w.params[i].name);
  cr_assert_str_eq(r->outputs[0].name, "features_0");
  written_free(&w);
  ir_graph_free(r);
  ir_graph_free(g);
}

/* A graph as another frontend might make it: names that are not names of
   the spec language. */
static Node *node(Graph *g, Op op, const char *name, Node *in) {
  Node *n = ir_node_new(g, op, name, in ? &in : NULL, in ? 1 : 0, (SrcLoc){0});
  if (op == OP_LINEAR)
    n->attr.out_features = 3;
  char err[256];
  if (op != OP_INPUT)
    cr_assert(ir_infer_shape(g, n, err, sizeof err), "%s", err);
  return n;
}

static Graph *foreign_graph(const char *const *names, int n) {
  Graph *g = ir_graph_new("main_graph");
  Node *x = node(g, OP_INPUT, "input", NULL);
  x->shape = (Shape){1, {6}};
  g->ninputs = 1;
  g->inputs = arena_alloc(g->arena, sizeof(GraphIO));
  g->inputs[0] = (GraphIO){"input", x};
  for (int i = 0; i < n; i++)
    x = node(g, i % 2 ? OP_RELU : OP_LINEAR, names[i], x);
  g->noutputs = 1;
  g->outputs = arena_alloc(g->arena, sizeof(GraphIO));
  g->outputs[0] = (GraphIO){"logits", x};
  return g;
}

Test(write, foreign_names_are_made_valid_and_unique_deterministically) {
  const char *names[] = {"/layer1/layer1.0/conv1/Gemm",
                         "a.b",
                         "a_b",
                         "0",
                         "true",
                         "",
                         "---",
                         "a_b_2",
                         "a_b",
                         "/fc/Gemm"};
  Graph *g = foreign_graph(names, 10);
  Written w;
  Graph *r = round_trip(g, &w);
  HAS(w.text, "name: main_graph\n"
              "inputs:\n"
              "  input_: [6]\n"
              "layers:\n"
              "  - {name: layer1_layer1_0_conv1_Gemm, op: linear, out: 3}\n"
              "  - {name: a_b, op: relu}\n"
              "  - {name: a_b_2, op: linear, out: 3}\n"
              "  - {name: _0, op: relu}\n"
              "  - {name: true_, op: linear, out: 3}\n"
              "  - {name: relu, op: relu}\n"
              "  - {name: linear, op: linear, out: 3}\n"
              "  - {name: a_b_2_2, op: relu}\n"
              "  - {name: a_b_3, op: linear, out: 3}\n"
              "  - {name: logits, op: relu}\n");
  cr_assert_str_eq(w.params[0].name, "layer1_layer1_0_conv1_Gemm.weight");
  cr_assert_str_eq(r->inputs[0].name, "input_");
  cr_assert_str_eq(r->outputs[0].name, "logits");
  /* the same graph gives the same text */
  Written again = write_graph(g, NULL);
  cr_assert_str_eq(again.text, w.text);
  written_free(&again);
  written_free(&w);
  ir_graph_free(r);
  ir_graph_free(g);
}

Test(write, an_unsafe_network_name_is_quoted) {
  const char *names[] = {"fc"};
  Graph *g = foreign_graph(names, 1);
  g->name = "torch-jit: \"export\" #1";
  Written w;
  Graph *r = round_trip(g, &w);
  HAS(w.text, "name: \"torch-jit: \\\"export\\\" #1\"\n");
  cr_assert_str_eq(r->name, g->name);
  written_free(&w);
  ir_graph_free(r);
  ir_graph_free(g);
}

Test(write, every_attribute_kind_reads_back_exactly) {
  Graph *g = load_text("t.yaml",
                       "cnncc: 1\n"
                       "name: attrs\n"
                       "inputs: {image: [8, 20, 20]}\n"
                       "layers:\n"
                       "  - {name: c, op: conv2d, out: 8, kernel: [3, 5], stride: [1, 2],\n"
                       "     pad: [1, 2, 0, 3], dilation: [2, 1], groups: 4, bias: false}\n"
                       "  - {name: c2, op: conv2d, out: 8, kernel: 3, pad: [1, 2]}\n"
                       "  - {name: bn, op: batchnorm, eps: 0.0000123}\n"
                       "  - {name: lrn, op: lrn, size: 3, alpha: 0.00002, beta: 0.7, k: 2}\n"
                       "  - {name: s, op: scale, factor: 0.3333333}\n"
                       "  - {name: neg, op: scale, factor: -1.5e-7}\n"
                       "  - {name: mp, op: maxpool, kernel: 3, stride: 2, pad: 1, dilation: 2,\n"
                       "     ceil_mode: true}\n"
                       "  - {name: ap, op: avgpool, kernel: 2, ceil_mode: true, count_include_pad: "
                       "false}\n"
                       "  - {name: aap, op: adaptive_avgpool, out: [2, 3]}\n"
                       "  - {name: cat, op: concat, in: [aap, aap], axis: 1}\n"
                       "  - {name: sm, op: softmax, axis: 1}\n"
                       "  - {name: d, op: dropout, p: 0.1}\n");
  Written w;
  Graph *r = round_trip(g, &w);
  HAS(w.text, "{name: c, op: conv2d, out: 8, kernel: [3, 5], stride: [1, 2], pad: [1, 2, 0, 3], "
              "dilation: [2, 1], groups: 4, bias: false}\n");
  HAS(w.text, "{name: c2, op: conv2d, out: 8, kernel: 3, pad: [1, 2]}\n");
  HAS(w.text, "{name: bn, op: batchnorm, eps: 1.23e-05}\n");
  HAS(w.text, "{name: lrn, op: lrn, size: 3, alpha: 2e-05, beta: 0.7, k: 2}\n");
  HAS(w.text, "{name: s, op: scale, factor: 0.3333333}\n");
  HAS(w.text, "{name: mp, op: maxpool, kernel: 3, stride: 2, pad: 1, dilation: 2, ceil_mode: "
              "true}\n");
  HAS(w.text, "{name: ap, op: avgpool, kernel: 2, ceil_mode: true, count_include_pad: false}\n");
  HAS(w.text, "{name: aap, op: adaptive_avgpool, out: [2, 3]}\n");
  HAS(w.text, "{name: cat, op: concat, in: [aap, aap]}\n");
  HAS(w.text, "{name: sm, op: softmax}\n");
  HAS(w.text, "{name: d, op: dropout, p: 0.1}\n");
  cr_assert_eq(r->nodes.len, g->nodes.len);
  for (int i = 0; i < g->nodes.len; i++) {
    const Attrs *a = &GRAPH_NODE(g, i)->attr, *b = &GRAPH_NODE(r, i)->attr;
    cr_assert(!memcmp(a->kernel, b->kernel, sizeof a->kernel) &&
                  !memcmp(a->stride, b->stride, sizeof a->stride) &&
                  !memcmp(a->pad, b->pad, sizeof a->pad) &&
                  !memcmp(a->dilation, b->dilation, sizeof a->dilation) && a->groups == b->groups &&
                  a->has_bias == b->has_bias && a->ceil_mode == b->ceil_mode &&
                  a->count_include_pad == b->count_include_pad &&
                  !memcmp(a->out_hw, b->out_hw, sizeof a->out_hw) && a->lrn_size == b->lrn_size &&
                  a->axis == b->axis,
              "node %d differs", i);
    float fa[6] = {a->eps, a->alpha, a->beta, a->k, a->scale, a->p};
    float fb[6] = {b->eps, b->alpha, b->beta, b->k, b->scale, b->p};
    cr_assert(!memcmp(fa, fb, sizeof fa), "a float of node %d differs", i);
  }
  written_free(&w);
  ir_graph_free(r);
  ir_graph_free(g);
}

Test(write, floats_are_the_shortest_text_that_reads_back_the_same_bits) {
  static const float xs[] = {1.0f,  0.1f,  1e-5f,           0.75f, 3.14159274f,  1e-30f, -0.0f,
                             1e29f, 16.0f, 1.17549435e-38f, 0.3f,  123456792.0f, 1e-7f};
  for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
    const char *names[] = {"s"};
    Graph *g = foreign_graph(names, 0);
    Node *s = node(g, OP_SCALE, "s", g->inputs[0].node);
    s->attr.scale = xs[i];
    g->outputs = arena_alloc(g->arena, sizeof(GraphIO));
    g->noutputs = 1;
    g->outputs[0] = (GraphIO){"s", s};
    Written w;
    Graph *r = round_trip(g, &w);
    float back = GRAPH_NODE(r, 1)->attr.scale;
    cr_assert(!memcmp(&back, &xs[i], sizeof back), "%a was written as\n%s", (double)xs[i], w.text);
    if (xs[i] == 0.1f)
      HAS(w.text, "factor: 0.1}");
    written_free(&w);
    ir_graph_free(r);
    ir_graph_free(g);
  }
}

Test(write, global_avgpool_is_written_by_its_alias) {
  Graph *g = load_text("t.yaml", "cnncc: 1\n"
                                 "name: gap\n"
                                 "inputs: {image: [3, 8, 8]}\n"
                                 "layers:\n"
                                 "  - {name: a, op: adaptive_avgpool, out: 1}\n"
                                 "  - {name: b, op: adaptive_avgpool, out: [1, 2]}\n"
                                 "  - {name: c, op: global_avgpool, in: image}\n");
  Written w = write_graph(g, NULL);
  HAS(w.text, "  - {name: a, op: global_avgpool}\n"
              "  - {name: b, op: adaptive_avgpool, out: [1, 2]}\n"
              "  - {name: c, op: global_avgpool, in: image}\n");
  written_free(&w);
  ir_graph_free(g);
}

Test(write, an_op_the_language_lacks_is_an_error_naming_the_layer_and_nothing_is_written) {
  const char *names[] = {"fc"};
  Graph *g = foreign_graph(names, 1);
  Node *fc = GRAPH_NODE(g, 1);
  Node *s = ir_node_new(g, OP_REORDER, "/Reorder_3", &fc, 1, (SrcLoc){"model.onnx", 0, 0});
  s->shape = fc->shape;
  Node *ss = ir_node_new(g, OP_SCALESHIFT, "ss", &s, 1, (SrcLoc){0});
  ss->shape = s->shape;
  g->outputs[0].node = ss;
  Written w = write_graph(g, NULL);
  cr_assert(!w.ok);
  cr_assert_str_eq(w.text, "");
  cr_assert_null(w.params);
  HAS(w.diag, "model.onnx: error: --emit=spec: cannot write layer '/Reorder_3' (reorder): the "
              "spec language has no op 'reorder'\n");
  HAS(w.diag, "cnncc: error: --emit=spec: cannot write layer 'ss' (scaleshift): the spec "
              "language has no op 'scaleshift'\n");
  written_free(&w);
  ir_graph_free(g);
}

Test(write, an_attribute_value_the_language_cannot_take_is_an_error) {
  const char *names[] = {"fc"};
  Graph *g = foreign_graph(names, 1);
  Node *sm = node(g, OP_SOFTMAX, "sm", GRAPH_NODE(g, 1));
  sm->attr.axis = 1; /* the IR's axis 1: not the channels */
  Node *d = node(g, OP_DROPOUT, "d", sm);
  d->attr.p = 1.0f;
  g->outputs[0].node = d;
  Written w = write_graph(g, NULL);
  cr_assert(!w.ok);
  HAS(w.diag, "cannot write layer 'sm' (softmax): 'axis' is the IR's axis 1; the spec language "
              "has only axis 1\n");
  HAS(w.diag, "cannot write layer 'd' (dropout): 'p' is 1, which the spec language does not "
              "take\n");
  written_free(&w);
  ir_graph_free(g);
}

Test(write, a_graph_after_the_passes_is_refused) {
  Graph *g = load_text("t.yaml", "cnncc: 1\n"
                                 "name: fused\n"
                                 "inputs: {image: [16, 8, 8]}\n"
                                 "layers:\n"
                                 "  - {name: conv, op: conv2d, out: 16, kernel: 3, pad: 1}\n"
                                 "  - {name: bn, op: batchnorm}\n"
                                 "  - {name: relu, op: relu}\n");
  weights_init_deterministic(g, 0);
  PassOptions po = {.opt_level = 2};
  passes_run(g, &po);
  Written w = write_graph(g, NULL);
  cr_assert(!w.ok);
  HAS(w.diag, "cannot write layer 'conv' (conv2d): a pass has rewritten it");
  written_free(&w);
  ir_graph_free(g);
}

/* --------------------------------------------------------------- roundtrip */

typedef struct {
  char *path;
} Net;

static void free_nets(struct criterion_test_params *p) {
  Net *n = p->params;
  for (size_t i = 0; i < p->length; i++)
    cr_free(n[i].path);
  cr_free(n);
}

ParameterizedTestParameters(roundtrip, every_zoo_network_loads_back_as_the_same_graph) {
  Net *nets = cr_malloc(sizeof(Net) * 128);
  size_t n = 0;
  DIR *d = opendir(CNNCC_SOURCE_DIR "/examples");
  for (struct dirent *e; d && (e = readdir(d)) && n < 128;) {
    size_t len = strlen(e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
      continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/examples/%s", CNNCC_SOURCE_DIR, e->d_name);
    nets[n].path = cr_malloc(strlen(path) + 1);
    strcpy(nets[n].path, path);
    n++;
  }
  if (d)
    closedir(d);
  return cr_make_param_array(Net, nets, n, free_nets);
}

ParameterizedTest(Net *net, roundtrip, every_zoo_network_loads_back_as_the_same_graph) {
  Graph *g = load_file(net->path);
  Written w;
  Graph *r = round_trip(g, &w);
  char *a = ir_print_modulo_names(g), *b = ir_print_modulo_names(r);
  cr_assert_str_eq(b, a, "%s: the written spec is another graph", net->path);
  /* every line is one layer or a header line */
  int lines = 0;
  for (const char *p = w.text; (p = strchr(p, '\n')); p++)
    lines++;
  cr_assert_eq(lines, 4 + g->nodes.len, "%s", net->path); /* cnncc, name, inputs:, layers: */
  /* the parameters: all of them, each under the written graph's name */
  cr_assert_eq(w.nparams, g->params.len);
  cr_assert_eq(r->params.len, w.nparams);
  for (int i = 0; i < w.nparams; i++) {
    cr_assert_eq(w.params[i].param, GRAPH_PARAM(g, i), "%s: parameter %d out of order", net->path,
                 i);
    cr_assert_str_eq(GRAPH_PARAM(r, i)->name, w.params[i].name);
  }
  free(a);
  free(b);
  written_free(&w);
  ir_graph_free(r);
  ir_graph_free(g);
}

/* Weights written beside the spec bind every parameter of the written
   spec, with the same bits. */
static void weights_round_trip(const char *net) {
  char path[1024];
  snprintf(path, sizeof path, "%s/examples/%s.yaml", CNNCC_SOURCE_DIR, net);
  Graph *g = load_file(path);
  weights_init_deterministic(g, 7);
  Written w;
  Graph *r = round_trip(g, &w);
  const char *st = tmppath("w.safetensors");
  Diag *d = diag_new(stderr, false);
  cr_assert(weights_save(st, w.params, w.nparams, d, NULL));
  cr_assert(weights_load(r, st, d), "%s: the written weights do not bind", net);
  diag_free(d);
  for (int i = 0; i < g->params.len; i++) {
    const Param *p = GRAPH_PARAM(g, i), *q = GRAPH_PARAM(r, i);
    cr_assert(!memcmp(p->data, q->data, sizeof(float) * (size_t)param_numel(p)),
              "%s: %s differs from %s", net, q->name, p->name);
  }
  cr_assert_eq(files_in_tmpdir(), 1, "a temporary file was left behind");
  unlink(st);
  written_free(&w);
  ir_graph_free(r);
  ir_graph_free(g);
}

Test(roundtrip, weights_bind_with_the_same_bits, .fini = remove_tmpdir) {
  weights_round_trip("lenet5");
  weights_round_trip("squeezenet1_1");
  weights_round_trip("fractalnet");
}

/* ---------------------------------------------------------------- st_write */

static const float t_a[6] = {1, -2, 3.5f, 0, -0.0f, 1e-20f};
static const float t_b[3] = {7, 8, 9};
static const float t_c[1] = {42};

static unsigned char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s not written", path);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(*n + 1);
  cr_assert_eq(fread(buf, 1, *n, f), *n);
  fclose(f);
  return buf;
}

Test(st_write, the_file_has_the_standard_layout, .fini = remove_tmpdir) {
  const int64_t sa[2] = {2, 3}, sb[1] = {3};
  StWriteTensor t[3] = {{"x.weight", 2, sa, t_a}, {"x.bias", 1, sb, t_b}, {"scalar", 0, NULL, t_c}};
  const char *path = tmppath("layout.safetensors");
  char err[256];
  cr_assert(st_write_f32(path, t, 3, NULL, err, sizeof err), "%s", err);
  size_t n;
  unsigned char *b = read_all(path, &n);
  uint64_t hl = 0;
  for (int i = 0; i < 8; i++)
    hl |= (uint64_t)b[i] << (8 * i);
  cr_assert_eq((8 + hl) % 8, 0, "the data does not start 8-byte aligned");
  cr_assert_eq(n, 8 + hl + 4 * (6 + 3 + 1));
  json_error_t je;
  json_t *h = json_loadb((const char *)b + 8, hl, 0, &je);
  cr_assert_not_null(h, "the header is not JSON: %s", je.text);
  cr_assert_eq(json_object_size(h), 3);
  const char *names[3] = {"x.weight", "x.bias", "scalar"};
  size_t begin = 0;
  for (int i = 0; i < 3; i++) {
    json_t *e = json_object_get(h, names[i]);
    cr_assert_str_eq(json_string_value(json_object_get(e, "dtype")), "F32");
    json_t *shape = json_object_get(e, "shape"), *off = json_object_get(e, "data_offsets");
    cr_assert_eq(json_array_size(shape), (size_t)t[i].rank);
    for (int k = 0; k < t[i].rank; k++)
      cr_assert_eq(json_integer_value(json_array_get(shape, k)), t[i].shape[k]);
    size_t lo = (size_t)json_integer_value(json_array_get(off, 0));
    size_t hi = (size_t)json_integer_value(json_array_get(off, 1));
    cr_assert_eq(lo, begin, "tensors are not back to back");
    cr_assert_eq(memcmp(b + 8 + hl + lo, t[i].data, hi - lo), 0);
    begin = hi;
  }
  json_decref(h);
  free(b);
  /* and the reader takes it */
  StFile *f = st_open(path, err, sizeof err);
  cr_assert_not_null(f, "%s", err);
  cr_assert_eq(st_count(f), 3);
  float back[6];
  st_to_f32(st_find(f, "x.weight"), back);
  cr_assert(!memcmp(back, t_a, sizeof back));
  st_close(f);
  cr_assert_eq(files_in_tmpdir(), 1);
}

Test(st_write, no_tensors_is_a_valid_file, .fini = remove_tmpdir) {
  const char *path = tmppath("empty.safetensors");
  char err[256];
  cr_assert(st_write_f32(path, NULL, 0, NULL, err, sizeof err), "%s", err);
  StFile *f = st_open(path, err, sizeof err);
  cr_assert_not_null(f, "%s", err);
  cr_assert_eq(st_count(f), 0);
  st_close(f);
}

Test(st_write, an_existing_file_is_replaced_whole, .fini = remove_tmpdir) {
  const char *path = tmppath("over.safetensors");
  FILE *f = fopen(path, "w");
  fputs("an old file, much longer than the new one will be ...............................", f);
  fclose(f);
  const int64_t s[1] = {1};
  StWriteTensor t = {"c", 1, s, t_c};
  char err[256];
  cr_assert(st_write_f32(path, &t, 1, NULL, err, sizeof err), "%s", err);
  StFile *st = st_open(path, err, sizeof err);
  cr_assert_not_null(st, "%s", err);
  st_close(st);
  cr_assert_eq(files_in_tmpdir(), 1);
}

Test(st_write, bad_tensors_are_errors_and_leave_nothing_behind, .fini = remove_tmpdir) {
  const int64_t s[1] = {3}, neg[1] = {-1};
  char err[256];
  StWriteTensor dup[2] = {{"w", 1, s, t_b}, {"w", 1, s, t_b}};
  cr_assert(!st_write_f32(tmppath("dup.safetensors"), dup, 2, NULL, err, sizeof err));
  cr_assert_str_eq(err, "two tensors are named 'w'");
  StWriteTensor meta = {"__metadata__", 1, s, t_b};
  cr_assert(!st_write_f32(tmppath("meta.safetensors"), &meta, 1, NULL, err, sizeof err));
  HAS(err, "is empty or reserved");
  StWriteTensor shape = {"w", 1, neg, t_b};
  cr_assert(!st_write_f32(tmppath("shape.safetensors"), &shape, 1, NULL, err, sizeof err));
  cr_assert_str_eq(err, "tensor 'w' has an invalid shape");
  StWriteTensor utf8 = {"\xff", 1, s, t_b};
  cr_assert(!st_write_f32(tmppath("utf8.safetensors"), &utf8, 1, NULL, err, sizeof err));
  HAS(err, "not UTF-8");
  cr_assert_eq(files_in_tmpdir(), 0);
  cr_assert(!st_write_f32(tmppath("no/such/dir.safetensors"), dup, 1, NULL, err, sizeof err));
  HAS(err, "cannot create a file beside");
  cr_assert_eq(files_in_tmpdir(), 0);
}

static double last_done, last_total;
static int reports;
static void on_progress(void *ctx, const char *what, double done, double total, const char *unit) {
  cr_assert_str_eq(what, "writing weights");
  cr_assert_str_eq(unit, "B");
  cr_assert_geq(done, last_done);
  last_done = done, last_total = total;
  reports++;
}

Test(st_write, progress_goes_up_to_the_data_size, .fini = remove_tmpdir) {
  int64_t s[1] = {3 << 20}; /* 12 MB: more than one report */
  float *big = calloc((size_t)s[0], sizeof(float));
  StWriteTensor t = {"big", 1, s, big};
  ProgressHook h = {on_progress, NULL};
  char err[256];
  cr_assert(st_write_f32(tmppath("big.safetensors"), &t, 1, &h, err, sizeof err), "%s", err);
  cr_assert_gt(reports, 2);
  cr_assert_eq(last_done, 12.0 * (1 << 20));
  cr_assert_eq(last_total, last_done);
  free(big);
}

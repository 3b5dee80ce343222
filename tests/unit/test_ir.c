/*
 * test_ir.c: shape inference, the verifier, the printer and memory planning
 * on graphs built directly with the IR API. Expected shapes are the ones
 * PyTorch/torchvision produce (noted beside each), not values computed by
 * the code under test.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "passes/passes.h"

static SrcLoc here = {"test", 1, 1};

static Node *input(Graph *g, int64_t c, int64_t h, int64_t w) {
  Node *n = ir_node_new(g, OP_INPUT, "image", NULL, 0, here);
  n->shape = (Shape){3, {c, h, w}};
  g->inputs = arena_alloc(g->arena, sizeof(GraphIO));
  g->inputs[0] = (GraphIO){"image", n};
  g->ninputs = 1;
  return n;
}

static Node *node1(Graph *g, Op op, const char *name, Node *in) {
  return ir_node_new(g, op, name, &in, 1, here);
}

static void infer_ok(Graph *g, Node *n) {
  char err[256];
  cr_assert(ir_infer_shape(g, n, err, sizeof err), "unexpected error: %s", err);
}

static void set_output(Graph *g, Node *n) {
  g->outputs = arena_alloc(g->arena, sizeof(GraphIO));
  g->outputs[0] = (GraphIO){n->name, n};
  g->noutputs = 1;
}

Test(shapes, alexnet_conv1_on_227_gives_96x55x55_with_34944_params) {
  Graph *g = ir_graph_new("t");
  Node *x = input(g, 3, 227, 227);
  Node *c = node1(g, OP_CONV2D, "conv1", x);
  c->attr.out_channels = 96;
  c->attr.kernel[0] = c->attr.kernel[1] = 11;
  c->attr.stride[0] = c->attr.stride[1] = 4;
  infer_ok(g, c);
  cr_assert_eq(c->shape.d[0], 96);
  cr_assert_eq(c->shape.d[1], 55);
  cr_assert_eq(c->shape.d[2], 55);
  cr_assert_eq(ir_graph_param_count(g, true), 34944);
  cr_assert_str_eq(c->params[P_WEIGHT]->name, "conv1.weight");
  cr_assert_eq(c->params[P_WEIGHT]->dims[1], 3);
  Node *p = node1(g, OP_MAXPOOL, "pool1", c);
  p->attr.kernel[0] = p->attr.kernel[1] = 3;
  p->attr.stride[0] = p->attr.stride[1] = 2;
  infer_ok(g, p);
  cr_assert_eq(p->shape.d[1], 27); /* the lecture's 27x27x96 */
  ir_graph_free(g);
}

Test(shapes, ceil_mode_maxpool_matches_torchvision_googlenet) {
  /* googlenet maxpool1: 64x112x112, k3 s2 ceil_mode -> 64x56x56;
     maxpool4 on 832x14x14, k2 s2 ceil -> 7x7; and nn.MaxPool2d(3, 2,
     ceil_mode=True) on 7x7 gives 3x3 (the last window would start past the
     input, so it is dropped). */
  Graph *g = ir_graph_new("t");
  Node *x = input(g, 64, 112, 112);
  Node *p = node1(g, OP_MAXPOOL, "p", x);
  p->attr.kernel[0] = p->attr.kernel[1] = 3;
  p->attr.stride[0] = p->attr.stride[1] = 2;
  p->attr.ceil_mode = true;
  infer_ok(g, p);
  cr_assert_eq(p->shape.d[1], 56);
  Node *x2 = ir_node_new(g, OP_INPUT, "x2", NULL, 0, here);
  x2->shape = (Shape){3, {1, 7, 7}};
  Node *q = node1(g, OP_MAXPOOL, "q", x2);
  q->attr.kernel[0] = q->attr.kernel[1] = 3;
  q->attr.stride[0] = q->attr.stride[1] = 2;
  q->attr.ceil_mode = true;
  infer_ok(g, q);
  cr_assert_eq(q->shape.d[1], 3);
  /* With padding 1: (7 + 2 - 3) / 2 ceil = 3, + 1 = 4; the 4th window starts
     at 6 - 1 = 5 < 7 + 1, so it is kept: 4x4 (PyTorch agrees). */
  Node *r = node1(g, OP_MAXPOOL, "r", x2);
  r->attr.kernel[0] = r->attr.kernel[1] = 3;
  r->attr.stride[0] = r->attr.stride[1] = 2;
  r->attr.pad[0] = r->attr.pad[1] = r->attr.pad[2] = r->attr.pad[3] = 1;
  r->attr.ceil_mode = true;
  infer_ok(g, r);
  cr_assert_eq(r->shape.d[1], 4);
  ir_graph_free(g);
}

Test(shapes, grouped_conv_with_indivisible_channels_is_an_error) {
  Graph *g = ir_graph_new("t");
  Node *x = input(g, 6, 8, 8);
  Node *c = node1(g, OP_CONV2D, "c", x);
  c->attr.out_channels = 8;
  c->attr.kernel[0] = c->attr.kernel[1] = 3;
  c->attr.groups = 4;
  char err[256];
  cr_assert_not(ir_infer_shape(g, c, err, sizeof err));
  cr_assert_str_eq(err, "cannot split the 6 input channels from 'image' into 4 groups");
  IrShapeError e;
  cr_assert_not(ir_infer_shape_at(g, c, NULL, &e));
  cr_assert_eq(e.at, IR_AT_ATTR);
  cr_assert_str_eq(e.attr, "groups");
  cr_assert_str_eq(e.note, "groups must divide both the input channels (6) and 'out' (8)");
  ir_graph_free(g);
}

Test(shapes, kernel_larger_than_input_is_an_error) {
  Graph *g = ir_graph_new("t");
  Node *x = input(g, 3, 4, 4);
  Node *c = node1(g, OP_CONV2D, "c", x);
  c->attr.out_channels = 8;
  c->attr.kernel[0] = c->attr.kernel[1] = 7;
  char err[256];
  cr_assert_not(ir_infer_shape(g, c, err, sizeof err));
  cr_assert_str_eq(err, "the 7x7 kernel does not fit the 4x4 input from 'image'");
  /* the error is about the kernel's height (item 0 of [h, w]) */
  IrShapeError e;
  cr_assert_not(ir_infer_shape_at(g, c, NULL, &e));
  cr_assert_eq(e.at, IR_AT_ATTR);
  cr_assert_str_eq(e.attr, "kernel");
  cr_assert_eq(e.index, 0);
  /* a dilation that makes a fitting kernel too wide is the dilation's fault */
  c->attr.kernel[0] = c->attr.kernel[1] = 3;
  c->attr.dilation[1] = 2;
  c->attr.pad[1] = c->attr.pad[3] = 1;
  infer_ok(g, c);
  c->attr.dilation[1] = 4;
  const char *names[1] = {"the previous layer 'image'"};
  cr_assert_not(ir_infer_shape_at(g, c, names, &e));
  cr_assert_eq(e.at, IR_AT_ATTR);
  cr_assert_str_eq(e.attr, "dilation");
  cr_assert_eq(e.index, 1);
  cr_assert_str_eq(e.msg, "the 3x3 kernel dilated to 3x9 does not fit the 4x4 input from "
                          "the previous layer 'image', even padded to 4x6");
  ir_graph_free(g);
}

Test(shapes, absurd_sizes_are_rejected_without_overflow) {
  Graph *g = ir_graph_new("t");
  Node *x = input(g, 3, 8, 8);
  Node *c = node1(g, OP_CONV2D, "c", x);
  c->attr.out_channels = 1000000000000LL;
  c->attr.kernel[0] = c->attr.kernel[1] = 1;
  char err[256];
  cr_assert_not(ir_infer_shape(g, c, err, sizeof err));
  Node *l = node1(g, OP_LINEAR, "fc", x);
  l->attr.out_features = (int64_t)1 << 30;
  cr_assert_not(ir_infer_shape(g, l, err, sizeof err));
  cr_assert(strstr(err, "too large"), "%s", err);
  ir_graph_free(g);
}

Test(shapes, add_of_different_shapes_names_both_inputs) {
  Graph *g = ir_graph_new("t");
  Node *x = input(g, 64, 8, 8);
  Node *c = node1(g, OP_CONV2D, "conv2", x);
  c->attr.out_channels = 32;
  c->attr.kernel[0] = c->attr.kernel[1] = 1;
  infer_ok(g, c);
  Node *ins[2] = {c, x};
  Node *a = ir_node_new(g, OP_ADD, "sum", ins, 2, here);
  char err[256];
  cr_assert_not(ir_infer_shape(g, a, err, sizeof err));
  cr_assert_str_eq(err, "expected 32 channels from 'image' to match 'conv2', got 64");
  IrShapeError e;
  cr_assert_not(ir_infer_shape_at(g, a, NULL, &e));
  cr_assert_eq(e.at, IR_AT_INPUT);
  cr_assert_eq(e.index, 1);
  /* other height and width: both sizes; other rank: both shapes */
  Node *p = node1(g, OP_MAXPOOL, "pool", c);
  p->attr.kernel[0] = p->attr.kernel[1] = p->attr.stride[0] = p->attr.stride[1] = 2;
  infer_ok(g, p);
  Node *c2 = node1(g, OP_CONV2D, "conv3", x);
  c2->attr.out_channels = 32;
  c2->attr.kernel[0] = c2->attr.kernel[1] = 1;
  infer_ok(g, c2);
  Node *ins2[3] = {c2, c, p};
  Node *m = ir_node_new(g, OP_MEAN, "avg", ins2, 3, here);
  cr_assert_not(ir_infer_shape_at(g, m, NULL, &e));
  cr_assert_eq(e.index, 2);
  cr_assert_str_eq(e.msg, "'pool' is 4x4 but 'conv3' is 8x8");
  Node *f = node1(g, OP_FLATTEN, "flat", x);
  infer_ok(g, f);
  Node *ins3[2] = {c, f};
  Node *cat = ir_node_new(g, OP_CONCAT, "cat", ins3, 2, here);
  cr_assert_not(ir_infer_shape_at(g, cat, NULL, &e));
  cr_assert_eq(e.index, 1);
  cr_assert_str_eq(e.msg, "concat inputs must all be [C, H, W] maps or all vectors: 'flat' "
                          "is a vector of 4096 values, 'conv2' is 32x8x8");
  Node *ins4[2] = {c, p};
  Node *cat2 = ir_node_new(g, OP_CONCAT, "cat2", ins4, 2, here);
  cr_assert_not(ir_infer_shape_at(g, cat2, NULL, &e));
  cr_assert_str_eq(e.msg, "concat inputs must agree in height and width: 'pool' is 4x4, "
                          "'conv2' is 8x8");
  ir_graph_free(g);
}

Test(printer, prints_a_stable_line_per_node) {
  Graph *g = ir_graph_new("tiny");
  Node *x = input(g, 3, 8, 8);
  Node *c = node1(g, OP_CONV2D, "conv", x);
  c->attr.out_channels = 4;
  c->attr.kernel[0] = c->attr.kernel[1] = 3;
  c->attr.pad[0] = c->attr.pad[1] = c->attr.pad[2] = c->attr.pad[3] = 1;
  infer_ok(g, c);
  Node *r = node1(g, OP_RELU, "act", c);
  infer_ok(g, r);
  set_output(g, r);
  char *buf;
  size_t len;
  FILE *f = open_memstream(&buf, &len);
  ir_print(g, f);
  fclose(f);
  cr_assert_str_eq(buf, "graph \"tiny\" {\n"
                        "  %0 input \"image\" -> 3x8x8\n"
                        "  %1 conv2d \"conv\" (%0) out=4 k=3x3 s=1x1 p=1,1,1,1 d=1x1 g=1 bias "
                        "[weight 4x3x3x3, bias 4] -> 4x8x8\n"
                        "  %2 relu \"act\" (%1) -> 4x8x8\n"
                        "  output \"act\" = %2\n"
                        "}\n");
  free(buf);
  ir_graph_free(g);
}

/* A chain with a branch: x -> a -> b -> c, and d = add(b, c) -> relu. */
static Graph *diamond(void) {
  Graph *g = ir_graph_new("d");
  Node *x = input(g, 16, 16, 16);
  Node *a = node1(g, OP_CONV2D, "a", x);
  a->attr.out_channels = 32;
  a->attr.kernel[0] = a->attr.kernel[1] = 1;
  infer_ok(g, a);
  Node *b = node1(g, OP_RELU, "b", a);
  infer_ok(g, b);
  Node *c = node1(g, OP_CONV2D, "c", b);
  c->attr.out_channels = 32;
  c->attr.kernel[0] = c->attr.kernel[1] = 1;
  infer_ok(g, c);
  Node *ins[2] = {b, c};
  Node *d = ir_node_new(g, OP_ADD, "d", ins, 2, here);
  infer_ok(g, d);
  Node *e = node1(g, OP_RELU, "e", d);
  infer_ok(g, e);
  Node *f = node1(g, OP_FLATTEN, "f", e);
  infer_ok(g, f);
  set_output(g, f);
  return g;
}

static int64_t node_addr(Node *n) {
  int64_t off = 0;
  while (n->mem.kind == MEM_ALIAS) {
    off += n->mem.offset;
    n = n->mem.alias_of;
  }
  cr_assert_eq(n->mem.kind, MEM_ARENA);
  return n->mem.offset + off;
}

Test(plan_memory, tensors_live_at_the_same_time_never_overlap) {
  Graph *g = diamond();
  pass_plan_memory(g);
  int n = g->nodes.len;
  /* Live range of each node's value: from its step to its last reader. */
  int last[16] = {0};
  for (int i = 0; i < n; i++) {
    Node *x = GRAPH_NODE(g, i);
    last[i] = i;
    for (int j = i + 1; j < n; j++)
      for (int k = 0; k < GRAPH_NODE(g, j)->nin; k++)
        if (GRAPH_NODE(g, j)->in[k] == x)
          last[i] = j;
    if (x == g->outputs[0].node || x == g->outputs[0].node->in[0])
      last[i] = n;
  }
  for (int i = 1; i < n; i++)
    for (int j = i + 1; j < n; j++) {
      Node *x = GRAPH_NODE(g, i), *y = GRAPH_NODE(g, j);
      if (x->op == OP_FLATTEN || y->op == OP_FLATTEN)
        continue;
      /* y is computed at step j; x must not be overwritten while still read,
         unless y is an elementwise op reading x as its last use. */
      bool x_live_when_y_written = last[i] > j;
      if (!x_live_when_y_written)
        continue;
      int64_t ax = node_addr(x), ay = node_addr(y);
      int64_t sx = shape_numel(&x->shape) * 4, sy = shape_numel(&y->shape) * 4;
      cr_assert(ax + sx <= ay || ay + sy <= ax, "'%s' [%lld,+%lld) and '%s' [%lld,+%lld) overlap",
                x->name, (long long)ax, (long long)sx, y->name, (long long)ay, (long long)sy);
    }
  ir_graph_free(g);
}

Test(plan_memory, planned_size_reaches_the_lower_bound_on_a_diamond) {
  /* Sizes: a, b, c, d, e are 32x16x16 floats = 32 KiB each. b = relu(a)
     runs in place; c needs its own buffer while b is live; d = add(b, c)
     and e = relu(d) reuse them. Peak: two 32 KiB buffers. */
  Graph *g = diamond();
  pass_plan_memory(g);
  cr_assert_eq(g->lower_bound_bytes, 2 * 32768);
  cr_assert_eq(g->arena_bytes, 2 * 32768);
  cr_assert_eq(g->naive_bytes, 5 * 32768);
  ir_graph_free(g);
}

Test(plan_memory, naive_plan_gives_every_tensor_its_own_slot) {
  Graph *g = diamond();
  pass_plan_memory_naive(g);
  cr_assert_eq(g->arena_bytes, 5 * 32768);
  cr_assert_eq(GRAPH_NODE(g, 0)->mem.kind, MEM_INPUT);
  cr_assert_eq(GRAPH_NODE(g, 6)->mem.kind, MEM_ALIAS); /* flatten */
  ir_graph_free(g);
}

Test(verify, reading_a_node_before_it_is_computed_is_reported) {
  Graph *g = diamond();
  for (int i = 0; i < g->nodes.len; i++)
    for (int k = 0; k < GRAPH_NODE(g, i)->nparams; k++)
      GRAPH_NODE(g, i)->params[k]->data = calloc(1, 4); /* presence only */
  cr_assert_eq(ir_verify(g, NULL), 0);
  void *t = g->nodes.items[1];
  g->nodes.items[1] = g->nodes.items[2];
  g->nodes.items[2] = t;
  cr_assert_gt(ir_verify(g, NULL), 0);
  ir_toposort(g);
  cr_assert_eq(ir_verify(g, NULL), 0);
  for (int i = 0; i < g->nodes.len; i++)
    for (int k = 0; k < GRAPH_NODE(g, i)->nparams; k++)
      free(GRAPH_NODE(g, i)->params[k]->data);
  ir_graph_free(g);
}

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
#include "spec_harness.h"

/* ------------------------------------------------------------ helpers */

#define HDR "cnncc: 1\nname: t\ninputs: {image: [32, 8, 8]}\n"

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

/* ------------------------------------------------------ mul, parameter */

static const Param *param_named(Graph *g, const char *name) {
  for (int i = 0; i < g->params.len; i++)
    if (!strcmp(GRAPH_PARAM(g, i)->name, name))
      return GRAPH_PARAM(g, i);
  cr_assert_fail("no parameter '%s'", name);
  return NULL;
}

Test(spec_ops, mul_takes_one_shape_or_one_value_per_channel_in_either_order) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n"
                    "  - {name: pool, op: global_avgpool}\n"
                    "  - {name: flat, op: flatten}\n"
                    "  - {name: a, op: mul, in: [image, image]}\n"
                    "  - {name: b, op: mul, in: [pool, image]}\n"
                    "  - {name: c, op: mul, in: [image, flat]}\n"
                    "  - {name: d, op: mul, in: [flat, flat]}\n"
                    "  - {name: e, op: mul, in: [pool, pool]}\n"
                    "  - {name: f, op: mul, in: [flat, pool]}\n"
                    "  - {name: g, op: mul, in: [pool, flat]}\n",
                &r);
  shape_is(node(g, "a"), "32x8x8");
  shape_is(node(g, "b"), "32x8x8");
  shape_is(node(g, "c"), "32x8x8");
  shape_is(node(g, "d"), "32");
  shape_is(node(g, "e"), "32x1x1");
  /* [C] by [C, 1, 1], either way round: [C, 1, 1], as PyTorch (difftest
     seeds 1090, 1161, 1320, 2321) */
  shape_is(node(g, "f"), "32x1x1");
  shape_is(node(g, "g"), "32x1x1");
  done(&r);
}

Test(spec_ops, a_parameter_is_named_by_its_layer_as_torchvisions_layer_scale) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n"
                    "  - name: features\n"
                    "    numbered: true\n"
                    "    layers:\n"
                    "      - {op: relu}\n"
                    "      - name: 1\n"
                    "        layers:\n"
                    "          - name: 0\n"
                    "            layers:\n"
                    "              - {name: block, op: relu}\n"
                    "              - {name: layer_scale, op: parameter, shape: [32, 1, 1]}\n"
                    "              - {op: mul, in: [layer_scale, block]}\n"
                    "  - {name: gamma, op: parameter, shape: [32]}\n"
                    "  - {op: mul, in: [features, gamma]}\n",
                &r);
  const Param *p = param_named(g, "features.1.0.layer_scale");
  cr_assert_eq(p->rank, 3);
  cr_assert_eq(p->dims[0], 32);
  cr_assert_eq(p->dims[1], 1);
  cr_assert_eq(p->dims[2], 1);
  cr_assert(p->trainable);
  shape_is(node(g, "features.1.0.layer_scale"), "32x1x1");
  cr_assert_eq(param_named(g, "gamma")->rank, 1);
  cr_assert_eq(ir_graph_param_count(g, true), 64);
  done(&r);
}

Test(spec_ops, bad_mul_and_parameter_layers_are_errors) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - {name: c, op: conv2d, out: 16, kernel: 1}\n"
                          "  - {op: global_avgpool}\n"
                          "  - {op: mul, in: [image, global_avgpool1]}\n",
                      &r);
  HAS(d, "error: 'global_avgpool1' has 16 channels but 'image' has 32");
  HAS(d, "note: mul multiplies element by element; one input may instead hold one value per "
         "channel of the other ([C, 1, 1] or [C])");
  done(&r);
  d = bad(HDR "layers:\n  - {op: maxpool, kernel: 2}\n  - {op: mul, in: [image, maxpool1]}\n", &r);
  HAS(d, "error: 'maxpool1' is 32x4x4 but 'image' is 32x8x8");
  done(&r);
  d = bad(HDR "layers:\n  - {op: mul}\n", &r);
  HAS(d, "error: mul takes 2 inputs, got 1");
  done(&r);
  d = bad(HDR "layers:\n  - {name: p, op: parameter, shape: [4, 4], in: image}\n", &r);
  HAS(d, "error: 'parameter' takes no input");
  done(&r);
  d = bad(HDR "layers:\n  - {name: p, op: parameter, shape: [4, 4]}\n", &r);
  HAS(d, "error: expected [C, H, W] or [F] for 'shape', got");
  done(&r);
  d = bad(HDR "layers:\n  - {name: p, op: parameter, shape: [4, 0, 1]}\n", &r);
  HAS(d, "error: 'shape' must be at least 1, got 0");
  done(&r);
  d = bad(HDR "layers:\n  - {op: parameter, shape: [4]}\n", &r);
  HAS(d, "error: a 'parameter' layer owns parameters and needs a name");
  done(&r);
  d = bad(HDR "layers:\n  - {name: p, op: parameter}\n", &r);
  HAS(d, "error: op 'parameter' needs 'shape'");
  done(&r);
}

/* ------------------------------------------- slice, chunk, channel_shuffle */

Test(spec_ops, slice_and_chunk_are_channel_ranges_as_torch_chunk_cuts_them) {
  Loaded r;
  Graph *g = ok("cnncc: 1\nname: t\ninputs: {image: [10, 4, 4]}\nlayers:\n"
                "  - {name: a, op: slice, end: 3}\n"
                "  - {name: b, op: slice, begin: 3, end: 10, in: image}\n"
                "  - {name: c0, op: chunk, chunks: 2, index: 0, in: image}\n"
                "  - {name: c1, op: chunk, chunks: 2, index: 1, in: image}\n"
                "  - {name: t2, op: chunk, chunks: 3, index: 2, in: image}\n"
                "  - {name: s, op: channel_shuffle, groups: 5, in: image}\n",
                &r);
  Node *a = node(g, "a"), *b = node(g, "b"), *t2 = node(g, "t2");
  cr_assert_eq(a->op, OP_SLICE);
  shape_is(a, "3x4x4");
  cr_assert_eq(b->attr.slice_begin, 3);
  shape_is(b, "7x4x4");
  cr_assert_eq(node(g, "c1")->attr.slice_begin, 5);
  shape_is(node(g, "c0"), "5x4x4");
  /* torch.chunk(10 channels, 3): 4, 4, 2 */
  cr_assert_eq(t2->attr.slice_begin, 8);
  shape_is(t2, "2x4x4");
  cr_assert_eq(node(g, "s")->attr.groups, 5);
  shape_is(node(g, "s"), "10x4x4");
  done(&r);
}

Test(spec_ops, bad_slices_chunks_and_shuffles_are_errors) {
  Loaded r;
  const char *d = bad(HDR "layers:\n  - {op: slice, begin: 4, end: 40}\n", &r);
  HAS(d, "error: slice: channels [4, 40) are not inside 'image' (32 channels)");
  done(&r);
  d = bad(HDR "layers:\n  - {op: slice, begin: 4, end: 4}\n", &r);
  HAS(d, "error: slice: 'end' (4) must be after 'begin' (4)");
  done(&r);
  d = bad(HDR "layers:\n  - {op: slice, begin: -1, end: 4}\n", &r);
  HAS(d, "error: 'begin' cannot be negative, got -1");
  done(&r);
  d = bad(HDR "layers:\n  - {op: chunk, chunks: 2, index: 2}\n", &r);
  HAS(d, "error: chunk 2 does not exist: 'image' has 32 channels in 2 chunks");
  done(&r);
  /* torch.chunk(32 channels, 5) gives 5 chunks of 7 (the last of 4); in 6
     it gives 6 of 6 (the last of 2); in 12, 11 chunks of 3 */
  d = bad(HDR "layers:\n  - {op: chunk, chunks: 12, index: 11}\n", &r);
  HAS(d, "error: chunk 11 does not exist: 'image' has 32 channels in 11 chunks");
  HAS(d, "note: torch.chunk cuts 32 channels into chunks of 3: there are only 11, the last of 2");
  done(&r);
  d = bad(HDR "layers:\n  - {op: chunk, chunks: 2}\n", &r);
  HAS(d, "error: op 'chunk' needs 'index'");
  done(&r);
  d = bad(HDR "layers:\n  - {op: channel_shuffle, groups: 3}\n", &r);
  HAS(d, "error: cannot shuffle the 32 channels of 'image' in 3 groups");
  done(&r);
  d = bad(HDR "layers:\n  - {op: flatten}\n  - {op: channel_shuffle, groups: 2}\n", &r);
  HAS(d, "error: channel_shuffle needs a [C, H, W] input");
  done(&r);
}

/* ------------------------------------------ layernorm, pointwise_linear */

/* torchvision's CNBlock: block.0 (depthwise 7x7), block.2 (LayerNorm over
   channels), block.3 and block.5 (nn.Linear, weights [out, in]) and the
   block's layer_scale, with PyTorch's names, shapes and count. */
Test(spec_ops, a_convnext_block_has_torchvisions_names_shapes_and_count) {
  Loaded r;
  Graph *g = ok("cnncc: 1\nname: t\ninputs: {image: [96, 14, 14]}\n"
                "blocks:\n"
                "  cnblock:\n"
                "    params: {dim: 96}\n"
                "    layers:\n"
                "      - name: block\n"
                "        layers:\n"
                "          - {name: 0, op: conv2d, out: $dim, kernel: 7, pad: 3, groups: $dim}\n"
                "          - {name: 2, op: layernorm, eps: 1e-6}\n"
                "          - {name: 3, op: pointwise_linear, out: $dim * 4}\n"
                "          - {op: gelu}\n"
                "          - {name: 5, op: pointwise_linear, out: $dim}\n"
                "      - {name: layer_scale, op: parameter, shape: [$dim, 1, 1]}\n"
                "      - {op: mul, in: [layer_scale, block]}\n"
                "      - {op: add, in: [mul1, input]}\n"
                "layers:\n"
                "  - {name: 0, block: cnblock}\n",
                &r);
  Node *l3 = node(g, "0.block.3");
  cr_assert_eq(l3->op, OP_CONV2D);
  cr_assert(l3->attr.linear_weight);
  cr_assert_eq(l3->attr.kernel[0], 1);
  shape_is(l3, "384x14x14");
  const Param *w3 = param_named(g, "0.block.3.weight");
  cr_assert_eq(w3->rank, 2);
  cr_assert_eq(w3->dims[0], 384);
  cr_assert_eq(w3->dims[1], 96);
  cr_assert_eq(param_named(g, "0.block.5.weight")->dims[1], 384);
  cr_assert_eq(param_named(g, "0.block.2.weight")->dims[0], 96);
  cr_assert_eq(param_named(g, "0.block.2.bias")->rank, 1);
  cr_assert_float_eq(node(g, "0.block.2")->attr.eps, 1e-6f, 1e-12);
  shape_is(node(g, "0.block.2"), "96x14x14");
  /* torchvision's CNBlock(96): 4,800 + 192 + 37,248 + 36,960 + 96 */
  cr_assert_eq(ir_graph_param_count(g, true), 79296);
  /* MACs as torchinfo counts them: the linears like 1x1 convs */
  cr_assert_eq(ir_node_macs(l3), (uint64_t)384 * 96 * 14 * 14);
  done(&r);
}

Test(spec_ops, layernorm_of_a_vector_normalizes_its_features) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n  - {op: flatten}\n  - {name: ln, op: layernorm}\n", &r);
  shape_is(node(g, "ln"), "2048");
  cr_assert_eq(param_named(g, "ln.weight")->dims[0], 2048);
  cr_assert_float_eq(node(g, "ln")->attr.eps, 1e-5f, 1e-12);
  done(&r);
}

Test(spec_ops, bad_layernorm_and_pointwise_linear_layers_are_errors) {
  Loaded r;
  const char *d = bad(HDR "layers:\n  - {name: ln, op: layernorm, eps: 0}\n", &r);
  HAS(d, "error: 'eps' must be positive");
  done(&r);
  d = bad(HDR "layers:\n  - {op: layernorm}\n", &r);
  HAS(d, "error: a 'layernorm' layer owns parameters and needs a name");
  done(&r);
  d = bad(HDR "layers:\n  - {op: flatten}\n  - {name: p, op: pointwise_linear, out: 4}\n", &r);
  HAS(d, "error: pointwise_linear needs a [C, H, W] input, but the previous layer 'flatten1' is "
         "a vector of 2048 values");
  done(&r);
  d = bad(HDR "layers:\n  - {name: p, op: pointwise_linear, out: 4, kernel: 3}\n", &r);
  HAS(d, "error: unknown key 'kernel' for op 'pointwise_linear'");
  done(&r);
}

/* ------------------------------------------------------- max pooling */

Test(spec_ops, global_maxpool_is_adaptive_maxpool_with_out_1) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n  - {op: global_maxpool}\n"
                    "  - {name: a, op: adaptive_maxpool, out: [2, 3], in: image}\n",
                &r);
  Node *gm = node(g, "global_maxpool1");
  cr_assert_eq(gm->op, OP_ADAPTIVE_MAXPOOL);
  shape_is(gm, "32x1x1");
  shape_is(node(g, "a"), "32x2x3");
  done(&r);
  const char *d = bad(HDR "layers:\n  - {op: adaptive_maxpool, out: [0, 2]}\n", &r);
  HAS(d, "error: 'out' must be at least 1, got 0");
  done(&r);
  d = bad(HDR "layers:\n  - {op: flatten}\n  - {op: global_maxpool}\n", &r);
  HAS(d, "error: global_maxpool needs a [C, H, W] input");
  done(&r);
}

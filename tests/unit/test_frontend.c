/*
 * test_frontend.c: the spec language, from YAML text to the graph.
 *
 * Positive tests load a spec from a string and check node names, shapes,
 * parameter names and dimensions, and counts (the ResNet-50 and VGG-16 specs
 * must give torchvision's parameter counts and state_dict names). Error
 * tests capture the diagnostics in a memstream and check the exact
 * file:line:col, message and, for a few, the whole clang-style output.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/frontend.h"
#include "spec_harness.h"
#include "frontend/spec/spec_internal.h" /* the synonym table */

/* ------------------------------------------------------------ helpers */

static int count_errors(const char *diag) {
  int n = 0;
  for (const char *p = diag; (p = strstr(p, ": error: ")); p++)
    n++;
  return n;
}

static bool has_node(Graph *g, const char *name) {
  for (int i = 0; i < g->nodes.len; i++)
    if (!strcmp(GRAPH_NODE(g, i)->name, name))
      return true;
  return false;
}

static Param *param(Graph *g, const char *name) {
  for (int i = 0; i < g->params.len; i++)
    if (!strcmp(GRAPH_PARAM(g, i)->name, name))
      return GRAPH_PARAM(g, i);
  cr_assert_fail("no parameter '%s'", name);
  return NULL;
}

static void dims_are(const Param *p, int rank, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  int64_t want[4] = {d0, d1, d2, d3};
  cr_assert_eq(p->rank, rank, "rank of %s", p->name);
  for (int i = 0; i < rank; i++)
    cr_assert_eq(p->dims[i], want[i], "dim %d of %s", i, p->name);
}

#define HDR "cnncc: 1\nname: t\ninputs: {image: [3, 8, 8]}\n"

/* ------------------------------------------------------- the doc example */

static const char *tinynet =
    "cnncc: 1\n"
    "name: tinynet\n"
    "inputs:\n"
    "  image: [3, 32, 32]\n"
    "outputs: [fc]\n"
    "blocks:\n"
    "  conv_bn_relu:\n"
    "    params: {out: 16, stride: 1}\n"
    "    layers:\n"
    "      - {name: conv, op: conv2d, out: $out, kernel: 3, stride: $stride, pad: 1, bias: false}\n"
    "      - {name: bn, op: batchnorm}\n"
    "      - {op: relu}\n"
    "layers:\n"
    "  - {name: stem, block: conv_bn_relu, out: 16}\n"
    "  - {name: stage, block: conv_bn_relu, repeat: 2, out: 32, at: {0: {stride: 2}}}\n"
    "  - {op: global_avgpool}\n"
    "  - {op: flatten}\n"
    "  - {name: fc, op: linear, out: 10}\n";

Test(spec, the_documented_example_builds_the_documented_parameters) {
  Loaded r;
  Graph *g = ok(tinynet, &r);
  cr_assert_str_eq(g->name, "tinynet");
  cr_assert_str_eq(g->spec_file, "t.yaml");
  cr_assert_eq(g->ninputs, 1);
  cr_assert_str_eq(g->inputs[0].name, "image");
  shape_is(g->inputs[0].node, "3x32x32");
  cr_assert_eq(g->noutputs, 1);
  cr_assert_str_eq(g->outputs[0].name, "fc");
  cr_assert_eq(g->outputs[0].node, node(g, "fc"));
  const char *names[] = {"stem.conv.weight",
                         "stem.bn.weight",
                         "stem.bn.bias",
                         "stem.bn.running_mean",
                         "stem.bn.running_var",
                         "stage.0.conv.weight",
                         "stage.0.bn.weight",
                         "stage.0.bn.bias",
                         "stage.0.bn.running_mean",
                         "stage.0.bn.running_var",
                         "stage.1.conv.weight",
                         "stage.1.bn.weight",
                         "stage.1.bn.bias",
                         "stage.1.bn.running_mean",
                         "stage.1.bn.running_var",
                         "fc.weight",
                         "fc.bias"};
  cr_assert_eq(g->params.len, 17);
  for (int i = 0; i < 17; i++)
    cr_assert_str_eq(GRAPH_PARAM(g, i)->name, names[i]);
  dims_are(param(g, "stem.conv.weight"), 4, 16, 3, 3, 3);
  dims_are(param(g, "stage.0.conv.weight"), 4, 32, 16, 3, 3);
  dims_are(param(g, "stage.1.conv.weight"), 4, 32, 32, 3, 3);
  dims_are(param(g, "fc.weight"), 2, 10, 32, 0, 0);
  cr_assert_eq(node(g, "stage.0.conv")->attr.stride[0], 2);
  cr_assert_eq(node(g, "stage.1.conv")->attr.stride[0], 1);
  cr_assert_eq(node(g, "stem.conv")->attr.has_bias, false);
  shape_is(node(g, "stage.1.relu1"), "32x16x16");
  shape_is(node(g, "global_avgpool1"), "32x1x1");
  cr_assert_eq(node(g, "global_avgpool1")->op, OP_ADAPTIVE_AVGPOOL);
  shape_is(node(g, "fc"), "10");
  /* 16*27 + 4*16 + 32*144 + 4*32 (2 trainable) ... counted by the IR */
  cr_assert_eq(g->num_params_orig, ir_graph_param_count(g, true));
  cr_assert_eq(g->num_params_orig,
               16 * 27 + 2 * 16 + 32 * 16 * 9 + 2 * 32 + 32 * 32 * 9 + 2 * 32 + 330);
  done(&r);
}

/* ------------------------------------------------------------ zoo checks */

static const char *resnet50 =
    "cnncc: 1\n"
    "name: resnet50\n"
    "inputs: {image: [3, 224, 224]}\n"
    "blocks:\n"
    "  bottleneck:\n"
    "    params: {planes: 64, stride: 1}\n"
    "    layers:\n"
    "      - {name: conv1, op: conv2d, out: $planes, kernel: 1, bias: false}\n"
    "      - {name: bn1, op: batchnorm}\n"
    "      - {op: relu}\n"
    "      - {name: conv2, op: conv2d, out: $planes, kernel: 3, stride: $stride, pad: 1, bias: "
    "false}\n"
    "      - {name: bn2, op: batchnorm}\n"
    "      - {op: relu}\n"
    "      - {name: conv3, op: conv2d, out: \"$planes * 4\", kernel: 1, bias: false}\n"
    "      - {name: bn3, op: batchnorm}\n"
    "      - name: downsample\n"
    "        if: \"$stride != 1 or $in != $planes * 4\"\n"
    "        in: input\n"
    "        numbered: true\n"
    "        layers:\n"
    "          - {op: conv2d, out: \"$planes * 4\", kernel: 1, stride: $stride, bias: false}\n"
    "          - {op: batchnorm}\n"
    "      - {op: add, in: [bn3, downsample]}\n"
    "      - {op: relu}\n"
    "  stage:\n"
    "    params: {planes: 64, blocks: 3, stride: 2}\n"
    "    layers:\n"
    "      - {block: bottleneck, repeat: $blocks, repeat_name: \"{}\", planes: $planes,\n"
    "         stride: \"$index == 0 ? $stride : 1\"}\n"
    "layers:\n"
    "  - {name: conv1, op: conv2d, out: 64, kernel: 7, stride: 2, pad: 3, bias: false}\n"
    "  - {name: bn1, op: batchnorm}\n"
    "  - {op: relu}\n"
    "  - {name: maxpool, op: maxpool, kernel: 3, stride: 2, pad: 1}\n"
    "  - {name: layer1, block: stage, planes: 64, blocks: 3, stride: 1}\n"
    "  - {name: layer2, block: stage, planes: 128, blocks: 4}\n"
    "  - {name: layer3, block: stage, planes: 256, blocks: 6}\n"
    "  - {name: layer4, block: stage, planes: 512, blocks: 3}\n"
    "  - {name: avgpool, op: global_avgpool}\n"
    "  - {op: flatten}\n"
    "  - {name: fc, op: linear, out: 1000}\n";

Test(zoo, resnet50_has_torchvisions_parameter_count_and_names) {
  Loaded r;
  Graph *g = ok(resnet50, &r);
  cr_assert_eq(g->num_params_orig, 25557032ull);
  dims_are(param(g, "layer1.0.downsample.0.weight"), 4, 256, 64, 1, 1);
  dims_are(param(g, "layer1.0.downsample.1.running_var"), 1, 256, 0, 0, 0);
  dims_are(param(g, "layer2.0.conv2.weight"), 4, 128, 128, 3, 3);
  dims_are(param(g, "layer4.2.bn3.bias"), 1, 2048, 0, 0, 0);
  cr_assert_eq(node(g, "layer2.0.conv2")->attr.stride[0], 2);
  cr_assert_eq(node(g, "layer2.1.conv2")->attr.stride[0], 1);
  /* the identity shortcut: layer1.1 has no downsample, its add reads the
     block's input */
  cr_assert(!has_node(g, "layer1.1.downsample.0"));
  Node *add = node(g, "layer1.1.add1");
  cr_assert_eq(add->in[1], node(g, "layer1.0.relu3"));
  shape_is(node(g, "layer4.2.relu3"), "2048x7x7");
  shape_is(node(g, "fc"), "1000");
  cr_assert_str_eq(g->outputs[0].name, "fc");
  done(&r);
}

static const char *vgg16 = "cnncc: 1\n"
                           "name: vgg16\n"
                           "inputs: {image: [3, 224, 224]}\n"
                           "blocks:\n"
                           "  conv_relu:\n"
                           "    params: {out: 64}\n"
                           "    layers:\n"
                           "      - {op: conv2d, out: $out, kernel: 3, pad: 1}\n"
                           "      - {op: relu}\n"
                           "  stage:\n"
                           "    params: {out: 64, convs: 2}\n"
                           "    layers:\n"
                           "      - {block: conv_relu, repeat: $convs, out: $out}\n"
                           "      - {op: maxpool, kernel: 2}\n"
                           "layers:\n"
                           "  - name: features\n"
                           "    numbered: true\n"
                           "    layers:\n"
                           "      - {block: stage, out: 64, convs: 2}\n"
                           "      - {block: stage, out: 128, convs: 2}\n"
                           "      - {block: stage, out: 256, convs: 3}\n"
                           "      - {block: stage, out: 512, convs: 3}\n"
                           "      - {block: stage, out: 512, convs: 3}\n"
                           "  - {name: avgpool, op: adaptive_avgpool, out: 7}\n"
                           "  - {op: flatten}\n"
                           "  - name: classifier\n"
                           "    numbered: true\n"
                           "    layers:\n"
                           "      - {op: linear, out: 4096}\n"
                           "      - {op: relu}\n"
                           "      - {op: dropout}\n"
                           "      - {op: linear, out: 4096}\n"
                           "      - {op: relu}\n"
                           "      - {op: dropout}\n"
                           "      - {op: linear, out: 1000}\n";

Test(zoo, vgg16_numbers_spliced_stage_blocks_like_nn_sequential) {
  Loaded r;
  Graph *g = ok(vgg16, &r);
  cr_assert_eq(g->num_params_orig, 138357544ull);
  cr_assert_eq(node(g, "features.0")->op, OP_CONV2D);
  cr_assert_eq(node(g, "features.1")->op, OP_RELU);
  cr_assert_eq(node(g, "features.2")->op, OP_CONV2D);
  cr_assert_eq(node(g, "features.4")->op, OP_MAXPOOL);
  cr_assert_eq(node(g, "features.28")->op, OP_CONV2D);
  cr_assert_eq(node(g, "features.30")->op, OP_MAXPOOL);
  dims_are(param(g, "features.28.weight"), 4, 512, 512, 3, 3);
  dims_are(param(g, "classifier.0.weight"), 2, 4096, 25088, 0, 0);
  dims_are(param(g, "classifier.6.bias"), 1, 1000, 0, 0, 0);
  /* pooling stride defaults to the kernel */
  cr_assert_eq(node(g, "features.4")->attr.stride[0], 2);
  shape_is(node(g, "features.30"), "512x7x7");
  cr_assert_eq(node(g, "classifier.2")->op, OP_DROPOUT);
  done(&r);
}

/* ---------------------------------------------------------- constructs */

Test(spec, layers_chain_and_the_default_output_is_the_last_layer) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n"
                    "  - {name: c, op: conv2d, out: 4, kernel: 3}\n"
                    "  - {op: relu}\n"
                    "  - {op: relu}\n",
                &r);
  Node *c = node(g, "c"), *r1 = node(g, "relu1"), *r2 = node(g, "relu2");
  cr_assert_eq(c->in[0], g->inputs[0].node);
  cr_assert_eq(r1->in[0], c);
  cr_assert_eq(r2->in[0], r1);
  cr_assert_eq(g->noutputs, 1);
  cr_assert_eq(g->outputs[0].node, r2);
  cr_assert_str_eq(g->outputs[0].name, "relu2");
  shape_is(c, "4x6x6");
  cr_assert_eq(c->loc.line, 5);
  cr_assert_str_eq(c->loc.file, "t.yaml");
  done(&r);
}

Test(spec, in_names_inputs_and_concat_axis_1_is_the_irs_axis_0) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n"
                    "  - {name: a, op: conv2d, out: 4, kernel: 1}\n"
                    "  - {name: b, op: conv2d, out: 6, kernel: 3, pad: 1, in: image}\n"
                    "  - {name: cat, op: concat, in: [a, b, input], axis: 1}\n"
                    "  - {name: sm, op: softmax, axis: 1}\n",
                &r);
  Node *cat = node(g, "cat");
  cr_assert_eq(cat->nin, 3);
  cr_assert_eq(cat->in[0], node(g, "a"));
  cr_assert_eq(cat->in[1], node(g, "b"));
  cr_assert_eq(cat->in[2], g->inputs[0].node);
  cr_assert_eq(cat->attr.axis, 0);
  cr_assert_eq(node(g, "sm")->attr.axis, 0);
  shape_is(cat, "13x8x8");
  done(&r);
}

Test(spec, a_disabled_layer_is_an_alias_of_its_input) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n"
                    "  - {name: a, op: relu}\n"
                    "  - {name: skip, op: conv2d, out: 3, kernel: 1, if: false}\n"
                    "  - {name: b, op: relu}\n"
                    "  - {name: s, op: add, in: [b, skip]}\n"
                    "  - {name: g, if: false, in: image, layers: [{name: x, op: relu}]}\n"
                    "  - {name: s2, op: add, in: [s, g]}\n",
                &r);
  cr_assert(!has_node(g, "skip"));
  cr_assert(!has_node(g, "g.x"));
  cr_assert_eq(node(g, "b")->in[0], node(g, "a")); /* chain skips it */
  cr_assert_eq(node(g, "s")->in[1], node(g, "a"));
  cr_assert_eq(node(g, "s2")->in[1], g->inputs[0].node);
  done(&r);
}

/* torchvision's MobileNetV2 InvertedResidual: conv.0 is the expansion when
   there is one, else the depthwise conv; the projection follows. */
static const char *inverted_residual =
    HDR "blocks:\n"
        "  conv_bn:\n"
        "    params: {out: 8, kernel: 1, groups: 1}\n"
        "    numbered: true\n"
        "    layers:\n"
        "      - {op: conv2d, out: $out, kernel: $kernel, pad: $kernel // 2, groups: $groups}\n"
        "      - {op: batchnorm}\n"
        "  inverted_residual:\n"
        "    params: {hidden: 3}\n"
        "    layers:\n"
        "      - name: conv\n"
        "        numbered: true\n"
        "        layers:\n"
        "          - {name: 0, block: conv_bn, out: $hidden, if: $hidden != $in}\n"
        "          - {name: 0, block: conv_bn, out: $hidden, kernel: 3, groups: $hidden,\n"
        "             if: $hidden == $in}\n"
        "          - {name: 1, block: conv_bn, out: $hidden, kernel: 3, groups: $hidden,\n"
        "             if: $hidden != $in}\n"
        "          - {op: relu, if: false}\n"
        "          - {op: conv2d, out: 3, kernel: 1, bias: false}\n"
        "          - {op: batchnorm}\n"
        "layers:\n"
        "  - {name: a, block: inverted_residual}\n"
        "  - {name: b, block: inverted_residual, hidden: 6}\n";

Test(spec, a_disabled_layer_in_a_numbered_scope_takes_neither_a_position_nor_a_name) {
  Loaded r;
  Graph *g = ok(inverted_residual, &r);
  /* a: no expansion, so the depthwise conv is conv.0 */
  dims_are(param(g, "a.conv.0.0.weight"), 4, 3, 1, 3, 3);
  dims_are(param(g, "a.conv.1.weight"), 4, 3, 3, 1, 1);
  shape_is(node(g, "a.conv.2"), "3x8x8");
  cr_assert(!has_node(g, "a.conv.3"));
  /* b: expansion conv.0, depthwise conv.1, projection conv.2 and its BN */
  dims_are(param(g, "b.conv.0.0.weight"), 4, 6, 3, 1, 1);
  dims_are(param(g, "b.conv.1.0.weight"), 4, 6, 1, 3, 3);
  dims_are(param(g, "b.conv.2.weight"), 4, 3, 6, 1, 1);
  shape_is(node(g, "b.conv.3"), "3x8x8");
  done(&r);
}

Test(errors, a_name_a_layer_disabled_in_a_numbered_scope_would_have_had_is_unknown) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - name: f\n"
                          "    numbered: true\n"
                          "    layers:\n"
                          "      - {name: se, op: relu, if: false}\n"
                          "      - {op: add, in: [input, se]}\n",
                      &r);
  cr_assert_str_eq(d, "t.yaml:9:31: error: unknown layer 'se'\n"
                      "    9 |       - {op: add, in: [input, se]}\n"
                      "      |                               ^~\n"
                      "t.yaml:8:16: note: 'se' is disabled (its 'if:' is false), and in a "
                      "numbered scope a disabled layer takes no name\n"
                      "    8 |       - {name: se, op: relu, if: false}\n"
                      "      |                ^~\n");
  done(&r);
}

Test(errors, a_layer_whose_if_failed_keeps_the_numbering_and_collides_with_nothing) {
  Loaded r;
  /* $x is unknown: the ifs fail (reported); '0' counts as enabled, so the
     relu after it is '1', not a second '0'; 'se' might have been disabled,
     so a second 'se' is not a duplicate */
  const char *d = bad(HDR "layers:\n"
                          "  - name: f\n"
                          "    numbered: true\n"
                          "    layers:\n"
                          "      - {name: 0, op: relu, if: $x}\n"
                          "      - {op: relu}\n"
                          "      - {name: se, op: relu, if: $x}\n"
                          "      - {name: se, op: relu}\n",
                      &r);
  cr_assert_eq(count_errors(d), 2, "%s", d);
  HAS(d, "t.yaml:8:33: error: unknown parameter '$x'\n");
  HAS(d, "t.yaml:10:34: error: unknown parameter '$x'\n");
  cr_assert_null(strstr(d, "duplicate"), "%s", d);
  done(&r);
}

Test(errors, a_duplicate_of_a_disabled_layers_name_says_it_is_disabled) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - {name: a, op: relu, if: false}\n"
                          "  - {name: a, op: relu}\n",
                      &r);
  cr_assert_str_eq(d, "t.yaml:6:12: error: duplicate name 'a'\n"
                      "    6 |   - {name: a, op: relu}\n"
                      "      |            ^\n"
                      "t.yaml:5:12: note: 'a' was first defined here, by a disabled layer (its "
                      "'if:' is false): the name stands for its input\n"
                      "    5 |   - {name: a, op: relu, if: false}\n"
                      "      |            ^\n");
  done(&r);
}

Test(spec, groups_open_a_scope_and_dotted_references_reach_inside) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n"
                    "  - name: branch\n"
                    "    layers:\n"
                    "      - {name: conv, op: conv2d, out: 5, kernel: 1}\n"
                    "      - {name: act, op: relu}\n"
                    "      - {name: again, op: relu, in: conv}\n"
                    "  - {name: sum, op: add, in: [branch.act, branch, branch.conv]}\n",
                &r);
  cr_assert_eq(node(g, "branch.conv")->in[0], g->inputs[0].node);
  cr_assert_eq(node(g, "branch.again")->in[0], node(g, "branch.conv"));
  Node *s = node(g, "sum");
  cr_assert_eq(s->in[0], node(g, "branch.act"));
  cr_assert_eq(s->in[1], node(g, "branch.again")); /* a group's output: its last layer */
  cr_assert_eq(s->in[2], node(g, "branch.conv"));
  dims_are(param(g, "branch.conv.weight"), 4, 5, 3, 1, 1);
  done(&r);
}

Test(spec, references_look_outward_and_input_is_the_scopes_input) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n"
                    "  - {name: pre, op: relu}\n"
                    "  - name: g\n"
                    "    layers:\n"
                    "      - {name: a, op: relu}\n"
                    "      - {name: s, op: add, in: [a, input, pre, image]}\n",
                &r);
  Node *s = node(g, "g.s");
  cr_assert_eq(s->in[1], node(g, "pre"));
  cr_assert_eq(s->in[2], node(g, "pre"));
  cr_assert_eq(s->in[3], g->inputs[0].node);
  done(&r);
}

Test(spec, repeat_name_and_repeat_from_name_instances_like_densenet) {
  Loaded r;
  Graph *g =
      ok(HDR "blocks:\n"
             "  dense_layer:\n"
             "    params: {growth: 4}\n"
             "    layers:\n"
             "      - {name: norm1, op: batchnorm}\n"
             "      - {name: conv1, op: conv2d, out: $growth, kernel: 3, pad: 1, bias: false}\n"
             "      - {op: concat, in: [input, conv1]}\n"
             "layers:\n"
             "  - {name: denseblock1, block: dense_layer, repeat: 3, repeat_from: 1,\n"
             "     repeat_name: \"denselayer{}\", growth: \"$index * 2\"}\n",
         &r);
  dims_are(param(g, "denseblock1.denselayer1.conv1.weight"), 4, 2, 3, 3, 3);
  dims_are(param(g, "denseblock1.denselayer2.norm1.weight"), 1, 5, 0, 0, 0);
  dims_are(param(g, "denseblock1.denselayer3.conv1.weight"), 4, 6, 9, 3, 3);
  shape_is(node(g, "denseblock1.denselayer3.concat1"), "15x8x8");
  cr_assert_eq(g->outputs[0].node, node(g, "denseblock1.denselayer3.concat1"));
  done(&r);
}

Test(spec, unnamed_repeat_with_repeat_name_names_instances_in_the_scope) {
  Loaded r;
  Graph *g = ok(HDR "blocks:\n"
                    "  unit: {layers: [{name: c, op: conv2d, out: 3, kernel: 1}]}\n"
                    "layers:\n"
                    "  - {block: unit, repeat: 2, repeat_name: \"u{}\"}\n"
                    "  - {name: s, op: add, in: [u0.c, u1]}\n",
                &r);
  cr_assert_eq(node(g, "u1.c")->in[0], node(g, "u0.c"));
  cr_assert_eq(node(g, "s")->in[1], node(g, "u1.c"));
  done(&r);
}

Test(spec, at_overrides_apply_to_one_instance_and_index_is_bound) {
  Loaded r;
  Graph *g = ok(HDR "blocks:\n"
                    "  b:\n"
                    "    params: {out: 4, k: 1}\n"
                    "    layers: [{name: c, op: conv2d, out: \"$out + $index\", kernel: $k}]\n"
                    "layers:\n"
                    "  - {name: s, block: b, repeat: 3, at: {1: {k: 3, out: 10}}}\n",
                &r);
  dims_are(param(g, "s.0.c.weight"), 4, 4, 3, 1, 1);
  dims_are(param(g, "s.1.c.weight"), 4, 11, 4, 3, 3);
  dims_are(param(g, "s.2.c.weight"), 4, 6, 11, 1, 1);
  done(&r);
}

Test(spec, an_if_on_a_repeated_layer_is_evaluated_per_instance) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n"
                    "  - name: r\n"
                    "    repeat: 4\n"
                    "    if: \"$index % 2 == 0\"\n"
                    "    layers: [{name: a, op: relu}]\n",
                &r);
  cr_assert(has_node(g, "r.0.a"));
  cr_assert(!has_node(g, "r.1.a"));
  cr_assert_eq(node(g, "r.2.a")->in[0], node(g, "r.0.a"));
  done(&r);
}

Test(spec, block_params_see_earlier_params_and_in_is_the_input_channels) {
  Loaded r;
  Graph *g = ok(HDR "blocks:\n"
                    "  b:\n"
                    "    params: {width: 2, out: \"$width * $in\", name_of_skip: input}\n"
                    "    layers:\n"
                    "      - {name: c, op: conv2d, out: $out, kernel: 1}\n"
                    "      - {name: d, op: conv2d, out: $in, kernel: 1}\n"
                    "      - {op: add, in: [d, $name_of_skip]}\n"
                    "layers:\n"
                    "  - {name: x, block: b}\n"
                    "  - {name: y, block: b, width: 3, name_of_skip: d}\n",
                &r);
  dims_are(param(g, "x.c.weight"), 4, 6, 3, 1, 1);
  dims_are(param(g, "y.c.weight"), 4, 9, 3, 1, 1);
  cr_assert_eq(node(g, "x.add1")->in[1], g->inputs[0].node);
  /* a string parameter holding a reference resolves in the block */
  cr_assert_eq(node(g, "y.add1")->in[1], node(g, "y.d"));
  done(&r);
}

Test(spec, a_parameter_with_a_null_default_is_required) {
  Loaded r;
  Graph *g =
      ok(HDR "blocks:\n"
             "  b: {params: {out: ~}, layers: [{name: c, op: conv2d, out: $out, kernel: 1}]}\n"
             "layers:\n"
             "  - {name: x, block: b, out: 7}\n",
         &r);
  shape_is(node(g, "x.c"), "7x8x8");
  done(&r);
}

Test(spec, a_recursive_block_stops_at_its_if_guard) {
  /* FractalNet-style: fractal(d) = mean(conv, fractal(d-1) twice) */
  Loaded r;
  Graph *g =
      ok(HDR "blocks:\n"
             "  fractal:\n"
             "    params: {depth: 1}\n"
             "    layers:\n"
             "      - {name: short, op: conv2d, out: 3, kernel: 3, pad: 1}\n"
             "      - {name: deep1, block: fractal, in: input, depth: \"$depth - 1\", if: \"$depth "
             "> 1\"}\n"
             "      - {name: deep2, block: fractal, depth: \"$depth - 1\", if: \"$depth > 1\"}\n"
             "      - {name: join, op: mean, in: [short, deep2], if: \"$depth > 1\"}\n"
             "layers:\n"
             "  - {name: f, block: fractal, depth: 3}\n",
         &r);
  cr_assert(has_node(g, "f.short"));
  cr_assert(has_node(g, "f.deep1.deep2.short"));
  cr_assert(has_node(g, "f.deep2.deep1.short"));
  cr_assert(!has_node(g, "f.deep2.deep1.deep1.short"));
  cr_assert_eq(node(g, "f.join")->in[1], node(g, "f.deep2.join"));
  done(&r);
}

Test(spec, a_numbered_scope_numbers_unnamed_layers_and_counts_named_ones) {
  Loaded r;
  Graph *g = ok(HDR "blocks:\n"
                    "  fire:\n"
                    "    params: {s: 2}\n"
                    "    layers:\n"
                    "      - {name: squeeze, op: conv2d, out: $s, kernel: 1}\n"
                    "layers:\n"
                    "  - name: features\n"
                    "    numbered: true\n"
                    "    layers:\n"
                    "      - {op: conv2d, out: 4, kernel: 3, pad: 1}\n"
                    "      - {op: relu}\n"
                    "      - {name: 2, block: fire}\n"
                    "      - {op: relu, if: false}\n"
                    "      - {op: maxpool, kernel: 2}\n"
                    "      - {block: fire, repeat: 2, repeat_from: 4, repeat_name: \"{}\"}\n"
                    "      - {op: relu}\n",
                &r);
  cr_assert_eq(node(g, "features.0")->op, OP_CONV2D);
  cr_assert_eq(node(g, "features.1")->op, OP_RELU);
  dims_are(param(g, "features.2.squeeze.weight"), 4, 2, 4, 1, 1);
  cr_assert_eq(node(g, "features.3")->op, OP_MAXPOOL);
  shape_is(node(g, "features.3"), "2x4x4");
  cr_assert(has_node(g, "features.4.squeeze"));
  cr_assert(has_node(g, "features.5.squeeze"));
  cr_assert_eq(node(g, "features.6")->op, OP_RELU);
  done(&r);
}

Test(spec, expressions_compute_with_ints_floats_and_booleans) {
  Loaded r;
  Graph *g =
      ok(HDR "blocks:\n"
             "  b:\n"
             "    params: {a: 7, f: 0.5, yes: true, s: abc}\n"
             "    layers:\n"
             "      - {name: c1, op: conv2d, kernel: 1, out: \"($a + 1) * 2 - 3 // 2\"}\n"
             "      - {name: c2, op: conv2d, kernel: 1, out: \"$a % 4 + -(-2)\"}\n"
             "      - {name: c3, op: conv2d, kernel: 1, out: \"min($a, 5, 9) + max(1, 2)\"}\n"
             "      - {name: c4, op: conv2d, kernel: 1, out: \"$a / 7 + 8 / 4\"}\n"
             "      - {name: c5, op: conv2d, kernel: 1, out: \"not $yes or $f < 1 and $s == 'abc' "
             "? 11 : 12\"}\n"
             "      - {name: c6, op: conv2d, kernel: 1, out: \"-7 // 2 + 10 + $a - $a\", bias: "
             "\"$a >= 7\"}\n"
             "      - {name: sc, op: scale, factor: \"$f * 3\"}\n"
             "      - {name: dr, op: dropout, p: \"$f / 2\"}\n"
             "layers:\n"
             "  - {name: x, block: b}\n",
         &r);
  shape_is(node(g, "x.c1"), "15x8x8");
  shape_is(node(g, "x.c2"), "5x8x8");
  shape_is(node(g, "x.c3"), "7x8x8");
  shape_is(node(g, "x.c4"), "3x8x8");
  shape_is(node(g, "x.c5"), "11x8x8");
  shape_is(node(g, "x.c6"), "6x8x8");
  cr_assert(node(g, "x.c6")->attr.has_bias);
  cr_assert_float_eq(node(g, "x.sc")->attr.scale, 1.5f, 1e-6);
  cr_assert_float_eq(node(g, "x.dr")->attr.p, 0.25f, 1e-6);
  done(&r);
}

Test(spec, op_attributes_map_onto_the_ir) {
  Loaded r;
  Graph *g =
      ok("cnncc: 1\nname: t\ninputs: {image: [4, 16, 16]}\n"
         "layers:\n"
         "  - {name: c, op: conv2d, out: 8, kernel: [3, 1], stride: [2, 1], pad: [1, 0],\n"
         "     dilation: 2, groups: 2, bias: false}\n"
         "  - {name: a, op: conv2d, out: 8, kernel: 2, pad: [0, 0, 1, 1], in: image}\n"
         "  - {name: mp, op: maxpool, kernel: 3, stride: 2, pad: 1, ceil_mode: true, in: image}\n"
         "  - {name: ap, op: avgpool, kernel: 2, count_include_pad: false, in: image}\n"
         "  - {name: ad, op: adaptive_avgpool, out: [2, 3], in: image}\n"
         "  - {name: n, op: lrn, size: 5, alpha: 0.0001, beta: 0.75, k: 2, in: image}\n"
         "  - {name: bn, op: batchnorm, eps: 0.001}\n"
         "  - {name: fc, op: linear, out: 3, bias: false}\n",
         &r);
  Node *c = node(g, "c");
  cr_assert_eq(c->attr.kernel[0], 3);
  cr_assert_eq(c->attr.kernel[1], 1);
  cr_assert_eq(c->attr.stride[0], 2);
  cr_assert_eq(c->attr.stride[1], 1);
  cr_assert_eq(c->attr.pad[0], 1);
  cr_assert_eq(c->attr.pad[1], 0);
  cr_assert_eq(c->attr.pad[2], 1);
  cr_assert_eq(c->attr.pad[3], 0);
  cr_assert_eq(c->attr.dilation[0], 2);
  cr_assert_eq(c->attr.groups, 2);
  cr_assert_eq(c->attr.out_channels, 8);
  cr_assert_eq(c->nparams, 1);
  dims_are(param(g, "c.weight"), 4, 8, 2, 3, 1);
  shape_is(c, "8x7x16");
  Node *a = node(g, "a");
  cr_assert_eq(a->attr.pad[2], 1);
  cr_assert_eq(a->attr.pad[0], 0);
  shape_is(a, "8x16x16");
  shape_is(node(g, "mp"), "4x9x9");
  cr_assert(node(g, "mp")->attr.ceil_mode);
  cr_assert(!node(g, "ap")->attr.count_include_pad);
  cr_assert_eq(node(g, "ap")->attr.stride[1], 2);
  shape_is(node(g, "ad"), "4x2x3");
  cr_assert_eq(node(g, "n")->attr.lrn_size, 5);
  cr_assert_float_eq(node(g, "n")->attr.k, 2.0f, 1e-6);
  cr_assert_float_eq(node(g, "bn")->attr.eps, 1e-3f, 1e-9);
  dims_are(param(g, "fc.weight"), 2, 3, 4 * 16 * 16, 0, 0);
  cr_assert_eq(node(g, "fc")->nparams, 1);
  done(&r);
}

Test(spec, several_inputs_and_outputs) {
  Loaded r;
  Graph *g = ok("cnncc: 1\nname: two\n"
                "inputs: {a: [3, 4, 4], b: [10]}\n"
                "outputs: [head.fc, feat]\n"
                "layers:\n"
                "  - {name: feat, op: flatten}\n"
                "  - name: head\n"
                "    in: b\n"
                "    layers: [{name: fc, op: linear, out: 2}]\n",
                &r);
  cr_assert_eq(g->ninputs, 2);
  shape_is(g->inputs[1].node, "10");
  cr_assert_eq(g->noutputs, 2);
  cr_assert_str_eq(g->outputs[0].name, "head.fc");
  cr_assert_eq(g->outputs[0].node, node(g, "head.fc"));
  cr_assert_eq(g->outputs[1].node, node(g, "feat"));
  dims_are(param(g, "head.fc.weight"), 2, 2, 10, 0, 0);
  done(&r);
}

Test(spec, include_adds_the_blocks_of_another_file) {
  char dir[] = "/tmp/cnncc_fe_XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char path[256], sub[256];
  snprintf(sub, sizeof sub, "%s/lib", dir);
  cr_assert_eq(mkdir(sub, 0700), 0);
  snprintf(path, sizeof path, "%s/lib/blocks.yaml", dir);
  FILE *f = fopen(path, "w");
  fputs("cnncc: 1\ninclude: more.yaml\nblocks:\n  cbr: {layers: [{name: conv, op: conv2d, out: 2, "
        "kernel: 1}, {block: act}]}\n",
        f);
  fclose(f);
  snprintf(path, sizeof path, "%s/lib/more.yaml", dir);
  f = fopen(path, "w");
  fputs("blocks:\n  act: {layers: [{op: relu}]}\n", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/net.yaml", dir);
  f = fopen(path, "w");
  fputs(HDR "include: [lib/blocks.yaml, lib/blocks.yaml]\nlayers:\n  - {name: x, block: cbr}\n", f);
  fclose(f);

  size_t len;
  char *out = NULL;
  FILE *m = open_memstream(&out, &len);
  Diag *d = diag_new(m, false);
  Graph *g = spec_load_file(path, d);
  diag_free(d);
  fclose(m);
  cr_assert_not_null(g, "%s", out);
  cr_assert(has_node(g, "x.conv"));
  cr_assert(has_node(g, "x.relu1"));
  cr_assert_str_eq(g->spec_file, path);
  ir_graph_free(g);
  free(out);

  /* an error inside an included file points into that file */
  snprintf(path, sizeof path, "%s/lib/more.yaml", dir);
  f = fopen(path, "w");
  fputs("blocks:\n  act: {layers: [{op: rleu}]}\n", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/net.yaml", dir);
  m = open_memstream(&out, &len);
  d = diag_new(m, false);
  g = spec_load_file(path, d);
  diag_free(d);
  fclose(m);
  cr_assert_null(g);
  char want[512];
  snprintf(want, sizeof want, "%s/lib/more.yaml:2:23: error: unknown op 'rleu'", dir);
  HAS(out, want);
  HAS(out, "note: did you mean 'relu'?");
  free(out);

  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

/* ------------------------------------------- the examples of docs/spec.md */

/* The complete specs (```yaml blocks with `cnncc: 1`) of docs/spec.md, in
   order, each NUL-terminated (malloc'ed). */
static int doc_examples(char **out, int max) {
  FILE *f = fopen(CNNCC_SOURCE_DIR "/docs/spec.md", "r");
  cr_assert_not_null(f, "cannot read docs/spec.md");
  static char doc[1 << 17];
  size_t n = fread(doc, 1, sizeof doc - 1, f);
  fclose(f);
  doc[n] = 0;
  int k = 0;
  for (char *p = doc; (p = strstr(p, "\n```yaml\n"));) {
    p += strlen("\n```yaml\n");
    char *end = strstr(p, "\n```\n");
    cr_assert_not_null(end, "a ```yaml block of docs/spec.md does not end");
    if (strncmp(p, "cnncc: 1", 8) == 0 && (p[8] == '\n' || p[8] == ' ')) {
      cr_assert_lt(k, max);
      out[k++] = strndup(p, (size_t)(end - p) + 1);
    }
    p = end;
  }
  return k;
}

/* The example of docs/spec.md whose network is `name` (the caller frees). */
static char *doc_example(const char *name) {
  char *ex[32], want[128], *found = NULL;
  int n = doc_examples(ex, 32);
  snprintf(want, sizeof want, "\nname: %s\n", name);
  for (int i = 0; i < n; i++) {
    if (!found && strstr(ex[i], want))
      found = ex[i];
    else
      free(ex[i]);
  }
  cr_assert_not_null(found, "docs/spec.md has no example named '%s'", name);
  return found;
}

Test(docs, every_complete_example_of_the_spec_reference_builds) {
  char *ex[32];
  int n = doc_examples(ex, 32);
  cr_assert_geq(n, 4, "found %d examples in docs/spec.md", n);
  for (int i = 0; i < n; i++) {
    Loaded r;
    ok(ex[i], &r);
    done(&r);
    free(ex[i]);
  }
}

Test(docs, the_numbered_scope_examples_have_the_names_the_text_gives) {
  Loaded r;
  char *text = doc_example("inverted_residuals");
  Graph *g = ok(text, &r);
  const char *b1[] = {"block1.conv.0.0", "block1.conv.0.1", "block1.conv.0.2", "block1.conv.1",
                      "block1.conv.2"};
  const char *b2[] = {"block2.conv.0.0", "block2.conv.0.2", "block2.conv.1.0",
                      "block2.conv.1.2", "block2.conv.2",   "block2.conv.3"};
  for (size_t i = 0; i < sizeof b1 / sizeof b1[0]; i++)
    cr_assert(has_node(g, b1[i]), "%s", b1[i]);
  for (size_t i = 0; i < sizeof b2 / sizeof b2[0]; i++)
    cr_assert(has_node(g, b2[i]), "%s", b2[i]);
  cr_assert_eq(node(g, "block1.conv.0.0")->attr.groups, 16); /* depthwise */
  cr_assert_eq(node(g, "block2.conv.0.0")->attr.groups, 1);  /* expansion */
  cr_assert_eq(node(g, "block2.conv.1.0")->attr.groups, 96);
  cr_assert(!has_node(g, "block1.conv.3") && !has_node(g, "block2.conv.4"));
  done(&r);
  free(text);

  text = doc_example("numbered_children");
  g = ok(text, &r);
  cr_assert_eq(node(g, "features.0")->op, OP_CONV2D);
  cr_assert_eq(node(g, "features.1")->op, OP_RELU);
  cr_assert_eq(node(g, "features.pool")->op, OP_MAXPOOL);
  cr_assert(!has_node(g, "features.2"));
  cr_assert_eq(node(g, "features.3.0")->op, OP_CONV2D);
  Node *add = node(g, "features.4");
  cr_assert_eq(add->in[0], node(g, "features.pool"));
  cr_assert_eq(add->in[1], node(g, "features.3.1"));
  cr_assert_eq(node(g, "features.5")->op, OP_CONV2D);
  shape_is(node(g, "features.6"), "32x16x16");
  done(&r);
  free(text);
}

Test(docs, input_in_a_spliced_block_is_the_blocks_input) {
  Loaded r;
  char *text = doc_example("spliced_input");
  Graph *g = ok(text, &r);
  Node *sum = node(g, "sum"), *out = node(g, "out");
  cr_assert_eq(sum->in[0], node(g, "stem")); /* the block's input */
  cr_assert_eq(sum->in[1], node(g, "conv"));
  shape_is(node(g, "conv"), "8x16x16");        /* $in: the block's input's */
  cr_assert_eq(out->in[0], sum);               /* a name the block defined */
  cr_assert_eq(out->in[1], g->inputs[0].node); /* the network's input */
  shape_is(out, "11x16x16");
  done(&r);
  free(text);
}

Test(spec, a_spliced_block_sees_the_names_before_it_and_its_own_in) {
  Loaded r;
  Graph *g = ok(HDR "blocks:\n"
                    "  b: {layers: [{name: c, op: conv2d, out: \"$in * 2\", kernel: 1, in: pre}]}\n"
                    "layers:\n"
                    "  - {name: pre, op: conv2d, out: 5, kernel: 1}\n"
                    "  - {name: g, in: image, layers: [{op: relu}, {block: b}]}\n",
                &r);
  /* $in is the spliced instance's input (g's relu, 3 channels), not the
     5 channels of its `in:`, and 'pre' is found outward */
  shape_is(node(g, "g.c"), "6x8x8");
  cr_assert_eq(node(g, "g.c")->in[0], node(g, "pre"));
  done(&r);
}

/* ---------------------------------------------------------------- errors */

Test(errors, misspelled_key_is_an_error_with_a_hint) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - name: c\n"
                          "    op: conv2d\n"
                          "    out: 4\n"
                          "    kernel: 3\n"
                          "    strid: 2\n",
                      &r);
  cr_assert_str_eq(d, "t.yaml:9:5: error: unknown key 'strid' for op 'conv2d'\n"
                      "    9 |     strid: 2\n"
                      "      |     ^~~~~\n"
                      "t.yaml:9:5: note: did you mean 'stride'?\n");
  done(&r);
}

Test(errors, every_unknown_key_in_a_file_is_reported) {
  Loaded r;
  const char *d = bad(HDR "nmae: x\n"
                          "blocks:\n"
                          "  b: {layers: [{op: relu, inplace: true}], parms: {}}\n"
                          "layers:\n"
                          "  - {name: c, op: conv2d, out: 4, kernel: 3, padding: 1}\n"
                          "  - {name: g, layers: [{op: relu}], repeats: 2}\n",
                      &r);
  HAS(d, "t.yaml:4:1: error: unknown key 'nmae' at the top level\n");
  HAS(d, "t.yaml:4:1: note: did you mean 'name'?\n");
  HAS(d, "t.yaml:6:27: error: unknown key 'inplace' for op 'relu'\n");
  HAS(d, "t.yaml:6:44: error: unknown key 'parms' in block 'b'\n");
  HAS(d, "t.yaml:6:44: note: did you mean 'params'?\n");
  HAS(d, "t.yaml:8:46: error: unknown key 'padding' for op 'conv2d'\n");
  HAS(d, "t.yaml:9:37: error: unknown key 'repeats' in a group of layers\n");
  HAS(d, "t.yaml:9:37: note: did you mean 'repeat'?\n");
  cr_assert_eq(count_errors(d), 5, "%s", d);
  done(&r);
}

Test(errors, a_wrong_type_names_the_key_and_the_value) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - {name: c, op: conv2d, out: 4, kernel: three}\n"
                          "  - {name: b, op: conv2d, out: 4.5, kernel: 1, in: image}\n"
                          "  - {name: e, op: conv2d, out: 4, kernel: 1, bias: yes, in: image}\n"
                          "  - {name: f, op: conv2d, out: 4, kernel: [1, 2, 3], in: image}\n",
                      &r);
  HAS(d, "t.yaml:5:43: error: expected an integer for 'kernel', got string 'three'\n"
         "    5 |   - {name: c, op: conv2d, out: 4, kernel: three}\n"
         "      |                                           ^~~~~\n");
  HAS(d, "t.yaml:6:32: error: expected an integer for 'out', got float 4.5\n");
  HAS(d, "t.yaml:7:52: error: expected true or false for 'bias', got string 'yes'\n");
  HAS(d, "t.yaml:8:43: error: expected an integer or [h, w] for 'kernel', got a list of 3\n");
  cr_assert_eq(count_errors(d), 4, "%s", d);
  done(&r);
}

Test(errors, a_missing_required_key_is_an_error) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - {name: c, op: conv2d, out: 4}\n"
                          "  - {name: fc, op: linear}\n",
                      &r);
  HAS(d, "t.yaml:5:19: error: op 'conv2d' needs 'kernel'\n");
  HAS(d, "t.yaml:6:20: error: op 'linear' needs 'out'\n");
  cr_assert_eq(count_errors(d), 2, "%s", d);
  done(&r);
}

Test(errors, a_spec_without_version_name_inputs_or_layers_is_rejected) {
  Loaded r;
  const char *d = bad("cnncc: 2\nfoo: 1\n", &r);
  HAS(d, "t.yaml:1:8: error: unsupported spec language version 2 (this cnncc reads version 1)\n");
  HAS(d, "t.yaml:2:1: error: unknown key 'foo' at the top level\n");
  HAS(d, "t.yaml:1:1: error: missing 'name' (the network's name)\n");
  HAS(d, "t.yaml:1:1: error: missing 'inputs'");
  HAS(d, "t.yaml:1:1: error: missing 'layers' (the network body)\n");
  done(&r);
  d = bad("name: x\ninputs: {a: [1]}\nlayers: [{op: relu}]\n", &r);
  cr_assert_str_eq(d, "t.yaml:1:1: error: missing 'cnncc: 1' (the spec language version)\n"
                      "    1 | name: x\n"
                      "      | ^\n");
  done(&r);
}

Test(errors, duplicate_names_in_a_scope_point_at_the_first) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - {name: a, op: relu}\n"
                          "  - {name: a, op: relu}\n"
                          "  - {name: image, op: relu}\n",
                      &r);
  cr_assert_str_eq(d, "t.yaml:6:12: error: duplicate name 'a'\n"
                      "    6 |   - {name: a, op: relu}\n"
                      "      |            ^\n"
                      "t.yaml:5:12: note: 'a' was first defined here\n"
                      "    5 |   - {name: a, op: relu}\n"
                      "      |            ^\n"
                      "t.yaml:7:12: error: duplicate name 'image'\n"
                      "    7 |   - {name: image, op: relu}\n"
                      "      |            ^~~~~\n"
                      "t.yaml:3:10: note: 'image' was first defined here\n"
                      "    3 | inputs: {image: [3, 8, 8]}\n"
                      "      |          ^~~~~\n");
  done(&r);
}

Test(errors, a_dangling_reference_suggests_a_close_name) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - {name: conv1, op: conv2d, out: 3, kernel: 1}\n"
                          "  - {name: s, op: add, in: [conv1, covn1]}\n"
                          "  - {name: t, op: add, in: [conv1, conv1.x]}\n"
                          "  - {name: u, op: relu, in: nothing_like_it}\n",
                      &r);
  HAS(d, "t.yaml:6:36: error: unknown layer 'covn1'\n"
         "    6 |   - {name: s, op: add, in: [conv1, covn1]}\n"
         "      |                                    ^~~~~\n"
         "t.yaml:6:36: note: did you mean 'conv1'?\n");
  HAS(d, "t.yaml:7:36: error: 'conv1' is a single layer; it has no layer 'x'\n");
  HAS(d, "t.yaml:8:29: error: unknown layer 'nothing_like_it'\n    8 |");
  cr_assert_eq(count_errors(d), 3, "%s", d);
  done(&r);
}

Test(errors, a_reference_into_a_scope_names_what_is_missing) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - {name: g, layers: [{name: conv, op: conv2d, out: 3, kernel: 1}]}\n"
                          "  - {name: s, op: relu, in: g.cnov}\n",
                      &r);
  cr_assert_str_eq(d, "t.yaml:6:29: error: 'g' has no layer 'cnov'\n"
                      "    6 |   - {name: s, op: relu, in: g.cnov}\n"
                      "      |                             ^~~~~~\n"
                      "t.yaml:6:29: note: did you mean 'conv'?\n");
  done(&r);
}

Test(errors, a_reference_to_a_later_layer_or_itself_is_a_cycle) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - {name: a, op: add, in: [image, b]}\n"
                          "  - {name: b, op: relu, in: b}\n"
                          "  - {name: g, layers: [{name: x, op: relu, in: g}]}\n",
                      &r);
  cr_assert_str_eq(d, "t.yaml:5:36: error: 'b' refers to a later layer; a layer can only "
                      "use the outputs of earlier ones\n"
                      "    5 |   - {name: a, op: add, in: [image, b]}\n"
                      "      |                                    ^\n"
                      "t.yaml:6:12: note: 'b' is defined here\n"
                      "    6 |   - {name: b, op: relu, in: b}\n"
                      "      |            ^\n"
                      "t.yaml:6:29: error: layer 'b' cannot use its own output\n"
                      "    6 |   - {name: b, op: relu, in: b}\n"
                      "      |                             ^\n"
                      "t.yaml:7:48: error: 'g' is the group or block this layer is in; "
                      "it cannot use its own output\n"
                      "    7 |   - {name: g, layers: [{name: x, op: relu, in: g}]}\n"
                      "      |                                                ^\n");
  done(&r);
}

Test(errors, unknown_ops_and_blocks_get_suggestions) {
  Loaded r;
  const char *d = bad(HDR "blocks:\n"
                          "  bottleneck: {layers: [{op: relu}]}\n"
                          "layers:\n"
                          "  - {op: maxpol, kernel: 2}\n"
                          "  - {name: b, block: botleneck}\n",
                      &r);
  cr_assert_str_eq(d, "t.yaml:7:10: error: unknown op 'maxpol'\n"
                      "    7 |   - {op: maxpol, kernel: 2}\n"
                      "      |          ^~~~~~\n"
                      "t.yaml:7:10: note: did you mean 'maxpool'?\n"
                      "t.yaml:8:22: error: unknown block 'botleneck'\n"
                      "    8 |   - {name: b, block: botleneck}\n"
                      "      |                      ^~~~~~~~~\n"
                      "t.yaml:8:22: note: did you mean 'bottleneck'?\n");
  done(&r);
}

/* The diagnostics of a spec whose one layer is {op: NAME}. */
static char *unknown_op(const char *name) {
  Loaded r;
  char text[256];
  snprintf(text, sizeof text, HDR "layers:\n  - {op: %s}\n", name);
  char *d = strdup(bad(text, &r));
  done(&r);
  return d;
}

Test(errors, an_unknown_op_in_another_case_or_from_another_framework_gets_cnnccs_name) {
  const char *cases[][2] = {
      {"ReLU", "note: did you mean 'relu'?\n"},
      {"Conv2d", "note: did you mean 'conv2d'?\n"},
      {"global_avg_pool", "note: did you mean 'global_avgpool'?\n"},
      {"MaxPool2d", "note: 'MaxPool2d' is called 'maxpool' in cnncc\n"},
      {"BatchNorm2d", "note: 'BatchNorm2d' is called 'batchnorm' in cnncc\n"},
      {"Dense", "note: 'Dense' is called 'linear' in cnncc\n"},
      {"maxpol", "note: did you mean 'maxpool'?\n"}, /* a misspelling */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *d = unknown_op(cases[i][0]);
    HAS(d, cases[i][1]);
    cr_assert(!strstr(d, "ops are"), "%s", d);
    free(d);
  }
}

Test(errors, an_unknown_op_is_no_misspelling_of_another_function) {
  /* relu6 is clamp 0..6, conv3d another conv, elu another activation: not
     'relu' or 'conv2d' misspelled */
  const char *other[] = {"relu6", "conv3d", "elu", "selu", "prelu", "bilinear", "unflatten"};
  Arena *a = arena_new();
  for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
    if (spec_op_find(other[i]) || synonym_spelling(a, other[i]))
      continue; /* the language has it (relu6), or a hint for it: tested below */
    char *d = unknown_op(other[i]);
    cr_assert(!strstr(d, "did you mean"), "%s", d);
    HAS(d, "note: the spec language's ops are conv2d, ");
    free(d);
  }
  arena_free(a);
}

Test(errors, every_synonym_hint_names_an_op_that_exists_as_it_is_written) {
  Arena *a = arena_new();
  int n = 0;
  for (const char *w; (w = synonym_word(n)); n++) {
    for (const char *p = w; *p; p++)
      cr_assert((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'), "'%s' is not normalized", w);
    for (int j = 0; j < n; j++)
      cr_assert_str_neq(synonym_word(j), w, "'%s' twice in the table", w);
    const char *s = synonym_spelling(a, w);
    if (!s)
      continue; /* an op still to come, or a function cnncc has not */
    Loaded r;
    char text[512];
    snprintf(text, sizeof text, HDR "layers:\n  - {op: %s}\n", w);
    r = load(text);
    if (r.g) { /* the word is an op itself now (a row for an op to come) */
      done(&r);
      continue;
    }
    if (s[0] == '{') {
      char want[256];
      snprintf(want, sizeof want, "note: '%s' is %s in cnncc\n", w, s);
      HAS(r.diag, want);
      done(&r);
      /* and what it says compiles */
      snprintf(text, sizeof text, HDR "layers:\n  - %s\n", s);
      ok(text, &r);
    } else {
      cr_assert(strstr(r.diag, "did you mean") || strstr(r.diag, "is called"), "%s", r.diag);
      cr_assert_not_null(spec_op_find(s), "'%s' for '%s'", s, w);
    }
    done(&r);
  }
  cr_assert_gt(n, 20);
  arena_free(a);
}

Test(errors, relu6_is_clamp_from_0_to_6) {
  /* relu6 is an op of the language (an alias of clamp): never an unknown
     op that 'relu' would be offered for. */
  Diag *dg = diag_new(stderr, false);
  Graph *g = spec_load_string("t.yaml", HDR "layers:\n  - {op: relu6}\n", dg);
  cr_assert_not_null(g);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ir_print(g, f);
  fclose(f);
  cr_assert(strstr(text, "clamp") && strstr(text, "min=0") && strstr(text, "max=6"), "%s", text);
  free(text);
  ir_graph_free(g);
  diag_free(dg);
}

Test(errors, the_ops_are_listed_once_from_the_op_table) {
  Loaded r;
  const char *d = bad(HDR "layers:\n  - {op: elu}\n  - {op: swishy}\n", &r);
  cr_assert_eq(count_errors(d), 2, "%s", d);
  const char *head = "note: the spec language's ops are ",
             *tail = " (docs/spec.md describes each)\n";
  const char *list = strstr(d, head);
  cr_assert_not_null(list, "%s", d);
  cr_assert_null(strstr(list + 1, head), "listed twice:\n%s", d);
  list += strlen(head);
  const char *end = strstr(list, tail);
  cr_assert_not_null(end, "%s", d);
  /* the list, as ", name, ", against the op table */
  char items[2048];
  snprintf(items, sizeof items, ", %.*s, ", (int)(end - list), list);
  for (int o = 0; o < OP_COUNT_; o++) {
    char item[64];
    snprintf(item, sizeof item, ", %s, ", ir_ops[o].name);
    if (ir_ops[o].flags & OPF_NOSPEC)
      cr_assert_null(strstr(items, item), "'%s' is no op of the spec:\n%s", ir_ops[o].name, d);
    else
      cr_assert_not_null(strstr(items, item), "'%s' is not listed:\n%s", ir_ops[o].name, d);
  }
  HAS(items, ", global_avgpool, "); /* aliases too */
  done(&r);
}

Test(errors, an_undeclared_block_parameter_is_an_error) {
  Loaded r;
  const char *d =
      bad(HDR "blocks:\n"
              "  b:\n"
              "    params: {planes: 4, stride: 1}\n"
              "    layers: [{name: c, op: conv2d, out: $planes, kernel: 1, stride: $stride}]\n"
              "layers:\n"
              "  - {name: x, block: b, strides: 2}\n"
              "  - {name: y, block: b, repeat: 2, at: {1: {plane: 3}}}\n",
          &r);
  HAS(d, "t.yaml:9:25: error: block 'b' has no parameter 'strides'\n");
  HAS(d, "t.yaml:9:25: note: did you mean 'stride'?\n");
  HAS(d, "t.yaml:10:45: error: block 'b' has no parameter 'plane'\n");
  HAS(d, "t.yaml:10:45: note: did you mean 'planes'?\n");
  cr_assert_eq(count_errors(d), 2, "%s", d);
  done(&r);
}

Test(errors, an_unknown_parameter_in_an_expression_names_the_instance) {
  Loaded r;
  const char *d = bad(HDR "blocks:\n"
                          "  b:\n"
                          "    params: {planes: 4}\n"
                          "    layers: [{name: c, op: conv2d, out: \"$plane * 2\", kernel: 1}]\n"
                          "layers:\n"
                          "  - {name: x, block: b}\n"
                          "  - {name: y, block: b}\n",
                      &r);
  cr_assert_str_eq(d,
                   "t.yaml:7:42: error: unknown parameter '$plane'\n"
                   "    7 |     layers: [{name: c, op: conv2d, out: \"$plane * 2\", kernel: 1}]\n"
                   "      |                                          ^~~~~~\n"
                   "t.yaml:7:42: note: did you mean '$planes'?\n"
                   "t.yaml:9:22: note: in block 'b' instantiated as 'x'\n"
                   "    9 |   - {name: x, block: b}\n"
                   "      |                      ^\n");
  done(&r);
}

Test(errors, repeat_must_be_at_least_one) {
  Loaded r;
  const char *d = bad(HDR "blocks:\n  b: {layers: [{op: relu}]}\n"
                          "layers:\n"
                          "  - {name: x, block: b, repeat: 0}\n"
                          "  - {name: y, block: b, repeat: \"-1\"}\n"
                          "  - {name: z, block: b, repeat: 1000000000}\n"
                          "  - {name: w, block: b, repeat: two}\n",
                      &r);
  HAS(d, "t.yaml:7:33: error: 'repeat' must be at least 1, got 0\n");
  HAS(d, "t.yaml:8:33: error: expected an integer for 'repeat', got string '-1'\n");
  HAS(d, "t.yaml:9:33: error: 'repeat' is too large (1000000000; the limit is 100000)\n");
  HAS(d, "t.yaml:10:33: error: expected an integer for 'repeat', got string 'two'\n");
  done(&r);
}

Test(errors, non_positive_channels_and_absurd_sizes_are_errors) {
  Loaded r;
  const char *d =
      bad("cnncc: 1\nname: t\n"
          "inputs: {a: [3, 2147483648, 2], b: [0, 4, 4], c: [3, 4], d: [3, 300000, 300000]}\n"
          "layers:\n"
          "  - {name: x, op: conv2d, out: 0, kernel: 1}\n"
          "  - {name: y, op: conv2d, out: -5, kernel: 1}\n"
          "  - {name: z, op: linear, out: 9223372036854775807}\n"
          "  - {name: w, op: linear, out: 99999999999999999999}\n",
          &r);
  HAS(d, "t.yaml:3:17: error: dimension 2147483648 is too large (the limit is 2^31-1)\n");
  HAS(d, "t.yaml:3:37: error: a dimension must be positive, got 0\n");
  HAS(d,
      "t.yaml:3:50: error: expected the shape of input 'c' as [C, H, W] or [F], got a list of 2\n");
  HAS(d, "t.yaml:3:61: error: input 'd' (3x300000x300000) has too many elements (the limit "
         "is 2^36)\n");
  HAS(d, "t.yaml:5:32: error: 'out' must be at least 1, got 0\n");
  HAS(d, "t.yaml:6:32: error: 'out' must be at least 1, got -5\n");
  HAS(d, "t.yaml:7:32: error: 'out' is too large (9223372036854775807; the limit is 2^31-1)\n");
  HAS(d, "t.yaml:8:32: error: integer 99999999999999999999 is out of range\n");
  done(&r);
}

Test(errors, shape_mismatches_point_at_the_offending_token) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - {name: conv2, op: conv2d, out: 64, kernel: 1}\n"
                          "  - {name: s, op: add, in: [conv2, input]}\n"
                          "  - {name: c, op: conv2d, out: 4, kernel: 9, in: image}\n"
                          "  - {name: g, op: conv2d, out: 4, kernel: 1, groups: 2, in: image}\n"
                          "  - {op: flatten, in: image}\n"
                          "  - {op: maxpool, kernel: 2}\n"
                          "  - {name: p, op: maxpool, kernel: [2, 3], pad: [1, 2], in: image}\n",
                      &r);
  /* the second input, named as written ('input', not 'image') */
  HAS(d, "t.yaml:6:36: error: expected 64 channels from 'input' to match 'conv2', got 3\n"
         "    6 |   - {name: s, op: add, in: [conv2, input]}\n"
         "      |                                    ^~~~~\n"
         "t.yaml:6:36: note: add combines its inputs element by element: they must have "
         "the same shape\n");
  HAS(d, "t.yaml:7:43: error: the 9x9 kernel does not fit the 8x8 input from 'image'\n");
  HAS(d, "t.yaml:8:54: error: cannot split the 3 input channels from 'image' into 2 groups\n");
  /* an implicit input: the op, and where the input comes from */
  HAS(d, "t.yaml:10:10: error: maxpool needs a [C, H, W] input, but the previous layer "
         "'flatten1' is a vector of 192 values\n"
         "   10 |   - {op: maxpool, kernel: 2}\n"
         "      |          ^~~~~~~\n"
         "t.yaml:9:5: note: 'flatten1' is defined here\n");
  /* the item of a list at fault: pad [1, 2] is [h, w], the width's 2 */
  HAS(d, "t.yaml:11:53: error: padding 2 is more than half the kernel width 3\n");
  cr_assert_eq(count_errors(d), 5, "%s", d);
  done(&r);
}

Test(errors, an_unnamed_block_instance_is_called_so_in_notes) {
  Loaded r;
  const char *d = bad(HDR "blocks:\n"
                          "  b:\n"
                          "    layers: [{name: c, op: conv2d, out: 4, kernel: 1, groups: 2}]\n"
                          "layers:\n"
                          "  - {block: b}\n"
                          "  - {name: r, op: relu, in: image}\n"
                          "  - name: g\n"
                          "    layers: [{block: b}]\n",
                      &r);
  HAS(d, "t.yaml:8:13: note: in an unnamed instance of block 'b'\n");
  HAS(d, "t.yaml:11:22: note: in an unnamed instance of block 'b' in 'g'\n");
  cr_assert(!strstr(d, "(unnamed)"), "%s", d);
  done(&r);
}

Test(errors, a_layer_with_parameters_needs_a_name) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - {op: batchnorm}\n",
                      &r);
  cr_assert_str_eq(d, "t.yaml:5:10: error: a 'batchnorm' layer owns parameters and needs a name\n"
                      "    5 |   - {op: batchnorm}\n"
                      "      |          ^~~~~~~~~\n"
                      "t.yaml:5:10: note: add 'name: ...', or put it in a 'numbered' scope\n");
  done(&r);
}

Test(errors, malformed_yaml_reports_libyamls_message_and_position) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - {name: a, op: relu\n"
                          "  - {name: b}\n",
                      &r);
  HAS(d, "t.yaml:6:5: error: invalid YAML: did not find expected ',' or '}'\n");
  HAS(d, "t.yaml:5:5: note: while parsing a flow mapping\n");
  done(&r);
  d = bad(HDR "layers:\n  - op: relu\n   name: x\n", &r);
  HAS(d, "t.yaml:6:4: error: invalid YAML: did not find expected '-' indicator\n");
  HAS(d, "t.yaml:5:3: note: while parsing a block collection\n");
  done(&r);
  d = bad("", &r);
  cr_assert_str_eq(d, "t.yaml: error: the spec is empty\n");
  done(&r);
  d = bad(HDR "layers: [{op: relu}]\n---\nx: 1\n", &r);
  HAS(d, "t.yaml:6:1: error: a spec is one YAML document; found a second one\n");
  done(&r);
}

Test(errors, duplicate_yaml_keys_are_errors) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - {name: a, op: relu, name: b}\n",
                      &r);
  HAS(d, "t.yaml:5:25: error: duplicate key 'name'\n");
  HAS(d, "t.yaml:5:6: note: first given here\n");
  done(&r);
}

Test(errors, unbounded_recursion_stops_at_depth_64) {
  Loaded r;
  const char *d = bad(HDR "blocks:\n"
                          "  forever:\n"
                          "    layers: [{name: again, block: forever}]\n"
                          "layers:\n"
                          "  - {name: x, block: forever}\n",
                      &r);
  HAS(d, "t.yaml:6:35: error: block recursion is too deep (more than 64 nested block "
         "instances)\n");
  HAS(d, "note: a recursive block needs an 'if:' that stops it\n");
  HAS(d, "note: in block 'forever' instantiated as 'x' (through 61 more instances)\n");
  cr_assert_eq(count_errors(d), 1, "%s", d);
  done(&r);
}

Test(errors, a_required_block_parameter_must_be_given) {
  Loaded r;
  const char *d =
      bad(HDR "blocks:\n"
              "  b: {params: {out: ~}, layers: [{name: c, op: conv2d, out: $out, kernel: 1}]}\n"
              "layers:\n"
              "  - {name: x, block: b}\n",
          &r);
  HAS(d, "t.yaml:7:22: error: block 'b' needs a value for parameter 'out'\n");
  HAS(d, "t.yaml:5:16: note: 'out' has no default\n");
  cr_assert_eq(count_errors(d), 1, "%s", d);
  done(&r);
}

Test(errors, expression_errors_point_into_the_expression) {
  Loaded r;
  const char *d = bad(
      HDR
      "blocks:\n"
      "  b:\n"
      "    params: {a: 4}\n"
      "    layers:\n"
      "      - {name: c1, op: conv2d, kernel: 1, out: \"$a / 0\"}\n"
      "      - {name: c2, op: conv2d, kernel: 1, out: \"$a * * 2\", in: input}\n"
      "      - {name: c3, op: conv2d, kernel: 1, out: \"9223372036854775807 + $a\", in: input}\n"
      "      - {name: c4, op: conv2d, kernel: 1, out: \"$a + 'x'\", in: input}\n"
      "      - {name: c5, op: conv2d, kernel: 1, out: \"a + $a\", in: input}\n"
      "      - {name: c6, op: relu, if: \"$a\", in: input}\n"
      "layers:\n"
      "  - {name: x, block: b}\n",
      &r);
  HAS(d, "t.yaml:8:52: error: division by zero\n");
  HAS(d, "t.yaml:9:54: error: invalid expression: unexpected character '*'\n");
  HAS(d, "t.yaml:10:69: error: integer overflow in expression\n");
  HAS(d, "t.yaml:11:52: error: '+' needs numbers, got integer and string\n");
  HAS(d, "t.yaml:12:49: error: invalid expression: unknown name 'a' (parameters are written '$a', "
         "strings in quotes)\n");
  HAS(d, "t.yaml:13:34: error: expected true or false for 'if', got integer 4\n");
  cr_assert_eq(count_errors(d), 6, "%s", d);
  done(&r);
}

Test(errors, at_indexes_outside_the_repeat_are_errors) {
  Loaded r;
  const char *d = bad(HDR "blocks:\n  b: {params: {k: 1}, layers: [{op: relu}]}\n"
                          "layers:\n"
                          "  - {name: x, block: b, repeat: 2, at: {2: {k: 3}}}\n"
                          "  - {name: y, block: b, at: {0: {k: 3}}}\n",
                      &r);
  HAS(d, "t.yaml:7:41: error: 'at' index 2 is out of range (the instances are 0 to 1)\n");
  HAS(d, "t.yaml:8:25: error: 'at' needs 'repeat'\n");
  done(&r);
}

Test(errors, a_missing_include_file_is_reported_at_the_include) {
  Loaded r;
  const char *d = bad(HDR "include: [/nonexistent/cnncc/blocks.yaml]\nlayers: [{op: relu}]\n", &r);
  HAS(d, "t.yaml:4:11: error: cannot read '/nonexistent/cnncc/blocks.yaml': No such file or "
         "directory\n");
  done(&r);
}

Test(errors, names_with_dots_or_reserved_words_are_rejected) {
  Loaded r;
  const char *d = bad(HDR "blocks:\n  b: {params: {in: 1, index: 2}, layers: [{op: relu}]}\n"
                          "layers:\n"
                          "  - {name: a.b, op: relu}\n"
                          "  - {name: input, op: relu}\n",
                      &r);
  HAS(d, "t.yaml:5:16: error: 'in' is reserved and cannot name a parameter\n");
  HAS(d, "t.yaml:5:23: error: 'index' is reserved and cannot name a parameter\n");
  HAS(d, "t.yaml:7:12: error: a name cannot contain '.' ('a.b')\n");
  HAS(d, "t.yaml:8:12: error: 'input' is reserved for a scope's input and cannot name a layer\n");
  done(&r);
}

Test(errors, hostile_yaml_does_not_crash) {
  Loaded r;
  /* an alias that contains itself */
  const char *d = bad(HDR "layers: &a [*a]\n", &r);
  HAS(d, "error:");
  done(&r);
  /* deep nesting */
  char *deep = malloc(20000);
  strcpy(deep, HDR "layers: ");
  for (int i = 0; i < 5000; i++)
    strcat(deep, "[");
  d = bad(deep, &r);
  HAS(d, "error:");
  done(&r);
  /* alias expansion: 2^20 layers would be built */
  strcpy(deep, HDR "x0: &x0 [{op: relu}, {op: relu}]\n");
  char line[128];
  for (int i = 1; i <= 22; i++) {
    snprintf(line, sizeof line, "x%d: &x%d [{layers: *x%d}, {layers: *x%d}]\n", i, i, i - 1, i - 1);
    strcat(deep, line);
  }
  strcat(deep, "layers: *x22\n");
  d = bad(deep, &r);
  HAS(d, "error:");
  done(&r);
  free(deep);
  /* NUL bytes, tabs, garbage */
  d = bad("cnncc: 1\n\tname: x\n", &r);
  HAS(d, "t.yaml:2:1: error: invalid YAML: found a tab character that violates indentation\n");
  done(&r);
  d = bad("[1, 2, 3]\n", &r);
  HAS(d, "t.yaml:1:1: error: a spec is a mapping");
  done(&r);
}

Test(errors, numbered_on_an_unnamed_layer_is_an_error) {
  Loaded r;
  const char *d = bad(HDR "layers:\n"
                          "  - {numbered: true, layers: [{op: relu}]}\n",
                      &r);
  cr_assert_str_eq(d, "t.yaml:5:6: error: 'numbered' needs a named layer (an unnamed "
                      "block or group joins the enclosing scope)\n"
                      "    5 |   - {numbered: true, layers: [{op: relu}]}\n"
                      "      |      ^~~~~~~~\n");
  done(&r);
}

Test(spec, in_at_the_top_level_is_the_first_inputs_channels) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n"
                    "  - {name: c, op: conv2d, out: \"$in * 2\", kernel: 1}\n"
                    "  - {name: g, layers: [{name: d, op: conv2d, out: \"$in + 1\", kernel: 1}]}\n",
                &r);
  shape_is(node(g, "c"), "6x8x8");
  shape_is(node(g, "g.d"), "7x8x8");
  done(&r);
}

Test(errors, too_many_errors_stop_the_report) {
  Loaded r;
  char *text = malloc(100000);
  strcpy(text, HDR "layers:\n");
  for (int i = 0; i < 200; i++) {
    char line[96];
    snprintf(line, sizeof line, "  - {name: l%d, op: relu, in: nope%d}\n", i, i);
    strcat(text, line);
  }
  const char *d = bad(text, &r);
  cr_assert_eq(count_errors(d), 50);
  HAS(d, "cnncc: note: too many errors; stopping\n");
  done(&r);
  free(text);
}

Test(errors, a_bad_if_in_a_block_is_reported_once_for_all_instances) {
  Loaded r;
  const char *d = bad(HDR "blocks:\n  b: {layers: [{op: relu, if: \"$x > 1\"}]}\n"
                          "layers:\n"
                          "  - {name: s, block: b, repeat: 16}\n",
                      &r);
  cr_assert_eq(count_errors(d), 1, "%s", d);
  HAS(d, "t.yaml:5:32: error: unknown parameter '$x'\n");
  HAS(d, "note: in block 'b' instantiated as 's.0'\n");
  done(&r);
}

Test(errors, ops_that_cnncc_makes_itself_are_not_ops_of_the_spec) {
  /* OPF_NOSPEC in ir/ops.def: graph inputs and the rewrites of passes */
  const char *internal[] = {"input", "scaleshift", "reorder"};
  for (int i = 0; i < 3; i++) {
    Loaded r;
    char text[256];
    snprintf(text, sizeof text, HDR "layers:\n  - {op: %s}\n", internal[i]);
    const char *d = bad(text, &r);
    char want[64];
    snprintf(want, sizeof want, "error: unknown op '%s'\n", internal[i]);
    HAS(d, want);
    done(&r);
  }
}

Test(spec, an_alias_keeps_its_name_and_sets_what_its_name_implies) {
  Loaded r;
  Graph *g = ok(HDR "layers:\n"
                    "  - {op: global_avgpool}\n"
                    "  - {op: adaptive_avgpool, out: [2, 2]}\n"
                    "  - {op: global_avgpool}\n",
                &r);
  Node *a = node(g, "global_avgpool1");
  cr_assert_eq(a->op, OP_ADAPTIVE_AVGPOOL);
  cr_assert_eq(a->attr.out_hw[0], 1);
  cr_assert_eq(a->attr.out_hw[1], 1);
  shape_is(node(g, "adaptive_avgpool1"), "3x2x2");
  shape_is(node(g, "global_avgpool2"), "3x1x1");
  done(&r);
}

/*
 * test_weights.c: binding safetensors to graph parameters, and the
 * deterministic initialization (frontend/weights/weights.c).
 *
 * The graph is built with the IR API directly (no spec parser):
 *   image [3,8,8] -> conv1 (4, 3x3, pad 1, bias) -> bn1 -> relu -> fc (10)
 * whose parameters are conv1.weight [4,3,3,3], conv1.bias [4], bn1.weight,
 * bn1.bias, bn1.running_mean, bn1.running_var [4], fc.weight [10,256],
 * fc.bias [10]. Diagnostics go to a memstream whose text the tests search.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "frontend/frontend.h"
#include "st_writer.h"

static Graph *g;
static Diag *diag;
static char *diag_text;
static size_t diag_len;
static FILE *diag_out;

static Node *add(Op op, const char *name, Node *in) {
  Node *n = ir_node_new(g, op, name, in ? &in : NULL, in ? 1 : 0, (SrcLoc){"net.yaml", 7, 5});
  return n;
}

static void infer(Node *n) {
  char err[256];
  cr_assert(ir_infer_shape(g, n, err, sizeof err), "%s: %s", n->name, err);
}

static void setup(void) {
  g = ir_graph_new("tiny");
  Node *x = add(OP_INPUT, "image", NULL);
  x->shape = (Shape){3, {3, 8, 8}};
  infer(x);
  Node *c = add(OP_CONV2D, "conv1", x);
  c->attr.out_channels = 4;
  c->attr.kernel[0] = c->attr.kernel[1] = 3;
  c->attr.pad[0] = c->attr.pad[1] = c->attr.pad[2] = c->attr.pad[3] = 1;
  c->attr.has_bias = true;
  infer(c);
  Node *b = add(OP_BATCHNORM, "bn1", c);
  infer(b);
  Node *r = add(OP_RELU, "relu", b);
  infer(r);
  Node *f = add(OP_LINEAR, "fc", r);
  f->attr.out_features = 10;
  f->attr.has_bias = true;
  infer(f);
  cr_assert_eq(g->params.len, 8);

  diag_out = open_memstream(&diag_text, &diag_len);
  diag = diag_new(diag_out, false);
}

static void teardown(void) {
  diag_free(diag);
  fclose(diag_out);
  free(diag_text);
  ir_graph_free(g);
  st_tmpdir_remove();
}

TestSuite(weights, .init = setup, .fini = teardown);

static const char *diagnostics(void) {
  fflush(diag_out);
  return diag_text ? diag_text : "";
}

#define EXPECT_DIAG(needle)                                                                        \
  cr_expect(strstr(diagnostics(), needle), "diagnostics lack '%s':\n%s", needle, diagnostics())

/* Values of parameter i: 100*i + k, so every element is distinguishable. */
static float *values(int i, int64_t n) {
  float *v = malloc((size_t)n * sizeof *v);
  for (int64_t k = 0; k < n; k++)
    v[k] = 100.0f * (float)i + (float)k;
  return v;
}

/* One TestTensor per param, F32, shaped as the graph wants. */
static int full_set(TestTensor *ts, float **bufs) {
  for (int i = 0; i < g->params.len; i++) {
    Param *p = GRAPH_PARAM(g, i);
    int64_t n = param_numel(p);
    bufs[i] = values(i, n);
    ts[i] = (TestTensor){p->name, "F32", p->rank, {0}, bufs[i], (size_t)n * sizeof(float)};
    for (int k = 0; k < p->rank; k++)
      ts[i].shape[k] = p->dims[k];
  }
  return g->params.len;
}

static Param *param(const char *name) {
  for (int i = 0; i < g->params.len; i++)
    if (strcmp(GRAPH_PARAM(g, i)->name, name) == 0)
      return GRAPH_PARAM(g, i);
  cr_assert_fail("no parameter '%s'", name);
  return NULL;
}

Test(weights, binds_every_parameter_from_a_complete_file) {
  TestTensor ts[16];
  float *bufs[16];
  int n = full_set(ts, bufs);
  char *path = st_tmpfile("w.safetensors");
  st_write(path, ts, n, NULL);
  cr_assert(weights_load(g, path, diag), "weights_load failed:\n%s", diagnostics());
  cr_expect_eq(diag_error_count(diag), 0);
  for (int i = 0; i < g->params.len; i++) {
    Param *p = GRAPH_PARAM(g, i);
    cr_assert_not_null(p->data, "%s not bound", p->name);
    cr_expect_eq((uintptr_t)p->data % 64, 0, "%s not 64-byte aligned", p->name);
    cr_expect(memcmp(p->data, bufs[i], param_numel(p) * 4) == 0, "%s differs", p->name);
  }
  for (int i = 0; i < n; i++)
    free(bufs[i]);
}

Test(weights, ignores_num_batches_tracked_and_converts_other_float_types) {
  TestTensor ts[16];
  float *bufs[16];
  int n = full_set(ts, bufs);
  /* bn1.bias in BF16 and fc.bias in F64. */
  uint16_t bf[4] = {0x3F80, 0xC000, 0x0000, 0x4040}; /* 1 -2 0 3 */
  double db[10];
  for (int k = 0; k < 10; k++)
    db[k] = k * 0.5;
  for (int i = 0; i < n; i++) {
    if (strcmp(ts[i].name, "bn1.bias") == 0) {
      ts[i].dtype = "BF16";
      ts[i].data = bf;
      ts[i].nbytes = sizeof bf;
    } else if (strcmp(ts[i].name, "fc.bias") == 0) {
      ts[i].dtype = "F64";
      ts[i].data = db;
      ts[i].nbytes = sizeof db;
    }
  }
  int64_t counter = 123;
  ts[n++] = (TestTensor){"bn1.num_batches_tracked", "I64", 0, {0}, &counter, 8};
  char *path = st_tmpfile("w.safetensors");
  st_write(path, ts, n, NULL);
  cr_assert(weights_load(g, path, diag), "weights_load failed:\n%s", diagnostics());
  Param *b = param("bn1.bias");
  cr_expect_eq(b->data[0], 1.0f);
  cr_expect_eq(b->data[1], -2.0f);
  cr_expect_eq(b->data[3], 3.0f);
  Param *fb = param("fc.bias");
  cr_expect_eq(fb->data[9], 4.5f);
  for (int i = 0; i < g->params.len; i++)
    free(bufs[i]);
}

Test(weights, reports_every_missing_unexpected_misshaped_and_bad_dtype_tensor) {
  TestTensor ts[16];
  float *bufs[16];
  int n = full_set(ts, bufs);
  int64_t ivar[4] = {1, 1, 1, 1};
  float extra[3] = {0};
  int m = 0;
  for (int i = 0; i < n; i++) {
    TestTensor t = ts[i];
    if (strcmp(t.name, "conv1.bias") == 0)
      continue; /* missing */
    if (strcmp(t.name, "fc.weight") == 0) {
      t.shape[0] = 256; /* transposed */
      t.shape[1] = 10;
    }
    if (strcmp(t.name, "conv1.weight") == 0) {
      t.shape[0] = 2; /* same byte count, wrong shape: 2x6x3x3 */
      t.shape[1] = 6;
    }
    if (strcmp(t.name, "bn1.running_var") == 0) {
      t.dtype = "I64";
      t.data = ivar;
      t.nbytes = sizeof ivar;
    }
    ts[m++] = t;
  }
  ts[m++] = (TestTensor){"fc.wieght", "F32", 1, {3}, extra, sizeof extra};
  ts[m++] = (TestTensor){"classifier.bias", "F32", 1, {3}, extra, sizeof extra};
  char *path = st_tmpfile("bad.safetensors");
  st_write(path, ts, m, NULL);

  cr_expect_not(weights_load(g, path, diag));
  const char *text = diagnostics();
  cr_expect_eq(diag_error_count(diag), 6, "errors:\n%s", text);
  EXPECT_DIAG("missing tensor 'conv1.bias' of shape [4] (conv2d 'conv1')");
  EXPECT_DIAG("expected shape [10, 256] for 'fc.weight' (linear 'fc'), got [256, 10]");
  EXPECT_DIAG("transposed");
  EXPECT_DIAG("expected shape [4, 3, 3, 3] for 'conv1.weight' (conv2d 'conv1'), got [2, 6, 3, 3]");
  EXPECT_DIAG("tensor 'bn1.running_var' (batchnorm 'bn1') has dtype I64");
  EXPECT_DIAG("1 missing tensor, 2 unexpected tensors, 2 mis-shaped tensors, 1 tensor with "
              "an unsupported dtype; the spec defines 8 parameters, the file has 9 tensors");
  EXPECT_DIAG("unexpected tensor 'fc.wieght'");
  /* fc.weight has its tensor (mis-shaped): the misnamed tensor is not it */
  cr_expect_not(strstr(text, "did you mean 'fc.weight'?"), "%s", text);
  EXPECT_DIAG("unexpected tensor 'classifier.bias'");
  EXPECT_DIAG(path);           /* reported at the weights file */
  EXPECT_DIAG("net.yaml:7:5"); /* the parameter's definition, as a note */
  for (int i = 0; i < g->params.len; i++)
    free(bufs[i]);
}

Test(weights, suggests_for_an_unexpected_tensor_only_a_missing_parameter_of_its_shape_first) {
  TestTensor ts[16];
  float *bufs[16];
  int n = full_set(ts, bufs);
  float extra[10] = {0};
  int m = 0;
  for (int i = 0; i < n; i++)
    if (strcmp(ts[i].name, "bn1.bias") != 0 && strcmp(ts[i].name, "fc.bias") != 0)
      ts[m++] = ts[i]; /* bn1.bias [4] and fc.bias [10] missing */
  /* closest by name to bn1.bias, but of fc.bias's shape */
  ts[m++] = (TestTensor){"fn1.bias", "F32", 1, {10}, extra, 10 * 4};
  /* close to bn1.weight, which has its tensor: no hint */
  ts[m++] = (TestTensor){"bn1.weigth", "F32", 1, {4}, extra, 4 * 4};
  /* no missing parameter of its shape: the closest one, with its shape */
  ts[m++] = (TestTensor){"fc.bais", "F32", 1, {3}, extra, 3 * 4};
  char *path = st_tmpfile("renamed.safetensors");
  st_write(path, ts, m, NULL);

  cr_expect_not(weights_load(g, path, diag));
  char want[2048];
  snprintf(want, sizeof want,
           "%s: error: unexpected tensor 'fn1.bias' (F32, shape [10]): the spec has no "
           "parameter of that name\n"
           "%s: note: did you mean 'fc.bias'?\n"
           "%s: error: unexpected tensor 'bn1.weigth' (F32, shape [4]): the spec has no "
           "parameter of that name\n"
           "%s: error: unexpected tensor 'fc.bais' (F32, shape [3]): the spec has no "
           "parameter of that name\n"
           "%s: note: did you mean 'fc.bias'? (its shape in the spec is [10])\n",
           path, path, path, path, path);
  EXPECT_DIAG(want);
  for (int i = 0; i < g->params.len; i++)
    free(bufs[i]);
}

static int count_of(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, needle)); p++)
    n++;
  return n;
}

Test(weights, shows_the_first_50_errors_and_says_how_many_more_there_were) {
  TestTensor ts[80];
  float *bufs[16];
  int n = full_set(ts, bufs);
  float extra[10] = {0};
  char names[70][32];
  int m = 0;
  for (int i = 0; i < n; i++)
    if (strcmp(ts[i].name, "fc.bias") != 0) /* missing: the first error */
      ts[m++] = ts[i];
  for (int i = 0; i < 60; i++) { /* errors 2 to 61 */
    snprintf(names[i], sizeof names[i], "head.%d.bias", i);
    ts[m++] = (TestTensor){names[i], "F32", 1, {10}, extra, sizeof extra};
  }
  /* error 62, not shown: nor is its hint */
  ts[m++] = (TestTensor){"fc.bais", "F32", 1, {10}, extra, sizeof extra};
  char *path = st_tmpfile("many.safetensors");
  st_write(path, ts, m, NULL);

  cr_expect_not(weights_load(g, path, diag));
  const char *text = diagnostics();
  cr_expect_eq(diag_error_count(diag), 50, "errors:\n%s", text);
  cr_expect_eq(count_of(text, ": error: "), 50, "%s", text);
  EXPECT_DIAG("missing tensor 'fc.bias' of shape [10] (linear 'fc')");
  EXPECT_DIAG("unexpected tensor 'head.48.bias'");
  cr_expect_not(strstr(text, "head.49.bias"), "%s", text);
  cr_expect_not(strstr(text, "fc.bais"), "%s", text);
  cr_expect_not(strstr(text, "did you mean"), "%s", text);
  EXPECT_DIAG("note: 12 more errors not shown (cnncc shows at most 50)\n");
  /* the counts include the errors not shown */
  EXPECT_DIAG("note: 1 missing tensor, 61 unexpected tensors; the spec defines 8 parameters, "
              "the file has 68 tensors\n");
  for (int i = 0; i < g->params.len; i++)
    free(bufs[i]);
}

Test(weights, reports_a_corrupt_file_at_its_path) {
  char *path = st_tmpfile("corrupt.safetensors");
  st_write_raw(path, "\x0a\0\0\0\0\0\0\0{not json}", 18);
  cr_expect_not(weights_load(g, path, diag));
  cr_expect_eq(diag_error_count(diag), 1);
  EXPECT_DIAG(path);
  EXPECT_DIAG("not valid JSON");
}

/* --------------------------------------------- deterministic initialization */

Test(weights, initializes_conv_and_linear_uniformly_within_pytorch_bounds) {
  weights_init_deterministic(g, 0);
  struct {
    const char *name;
    double fan_in;
  } cases[] = {{"conv1.weight", 27}, {"conv1.bias", 27}, {"fc.weight", 256}, {"fc.bias", 256}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    Param *p = param(cases[c].name);
    cr_assert_not_null(p->data);
    double bound = 1.0 / sqrt(cases[c].fan_in), lo = 1, hi = -1;
    int64_t n = param_numel(p);
    for (int64_t i = 0; i < n; i++) {
      cr_assert(fabs(p->data[i]) <= bound, "%s[%lld] = %g beyond %g", p->name, (long long)i,
                p->data[i], bound);
      lo = fmin(lo, p->data[i] / bound);
      hi = fmax(hi, p->data[i] / bound);
    }
    if (n >= 100) /* spread over the whole range, not a constant */
      cr_expect(lo < -0.9 && hi > 0.9, "%s spans [%g, %g] of its bound", p->name, lo, hi);
    else
      cr_expect(hi > lo, "%s is constant", p->name);
  }
}

Test(weights, initializes_batchnorm_to_the_identity) {
  weights_init_deterministic(g, 42);
  const char *names[] = {"bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"};
  const float want[] = {1, 0, 0, 1};
  for (int k = 0; k < 4; k++) {
    Param *p = param(names[k]);
    for (int i = 0; i < 4; i++)
      cr_expect_eq(p->data[i], want[k], "%s[%d] = %g", names[k], i, p->data[i]);
  }
}

Test(weights, initial_values_depend_only_on_seed_and_name) {
  weights_init_deterministic(g, 7);
  Param *fc = param("fc.weight");
  float first[8];
  memcpy(first, fc->data, sizeof first);

  /* Another graph with an extra layer in front: fc keeps its values. */
  Graph *g2 = ir_graph_new("bigger");
  Graph *saved = g;
  g = g2;
  Node *x = add(OP_INPUT, "image", NULL);
  x->shape = (Shape){1, {256}};
  infer(x);
  Node *pre = add(OP_LINEAR, "pre", x);
  pre->attr.out_features = 256;
  infer(pre);
  Node *f = add(OP_LINEAR, "fc", pre);
  f->attr.out_features = 10;
  infer(f);
  weights_init_deterministic(g2, 7);
  cr_expect(memcmp(param("fc.weight")->data, first, sizeof first) == 0);
  weights_init_deterministic(g2, 8);
  cr_expect(memcmp(param("fc.weight")->data, first, sizeof first) != 0,
            "a different seed gives different values");
  g = saved;
  ir_graph_free(g2);

  /* Parameters of the same shape but different names differ. */
  cr_expect(memcmp(param("conv1.bias")->data, param("fc.bias")->data, 16) != 0);
}

/* Golden values computed by an independent (Python) implementation of the
   algorithm documented at the top of frontend/weights/weights.c: the documentation
   and the code agree, and the values never change silently. */
Test(weights, initial_values_follow_the_documented_algorithm_exactly) {
  weights_init_deterministic(g, 0);
  const float fc_bias[3] = {-0x1.6e294p-9f, -0x1.3bb0cp-9f, -0x1.c26e5p-6f};
  for (int i = 0; i < 3; i++)
    cr_expect_eq(param("fc.bias")->data[i], fc_bias[i], "fc.bias[%d] = %a", i,
                 param("fc.bias")->data[i]);
  weights_init_deterministic(g, 3);
  const float conv_w[3] = {0x1.0eeb3cp-3f, 0x1.2a51aep-6f, -0x1.68103cp-3f};
  for (int i = 0; i < 3; i++)
    cr_expect_eq(param("conv1.weight")->data[i], conv_w[i], "conv1.weight[%d] = %a", i,
                 param("conv1.weight")->data[i]);
}

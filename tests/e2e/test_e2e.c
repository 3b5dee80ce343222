/*
 * test_e2e.c: zoo specs compiled by cnncc, run, and compared with PyTorch.
 *
 * For each network (one Criterion suite per network, one test per batch
 * size):
 *   1. reference data from tests/e2e/make_ref.py in CNNCC_E2E_DATA/NET
 *      (weights.safetensors, inputs, PyTorch's outputs, manifest.json); ctest
 *      runs make_ref.py as a fixture, and a test run by hand generates the
 *      data itself if it is missing;
 *   2. `cnncc examples/NET.yaml --weights .../weights.safetensors -o
 *      TMP/NET.so`, in a fresh temporary directory;
 *   3. dlopen the .so; cnn_get_info must report the network's name, the
 *      parameter count PyTorch counts, and the input/output names and dims;
 *   4. cnn_run at the test's batch size and compare with PyTorch:
 *         max |ours - ref| <= 1e-4 * max |ref|
 *      Both numbers are printed, pass or fail.
 *
 * Run one network by hand:  build/tests/e2e/test_e2e --filter=resnet50/'*'
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/cnn.h"

#ifndef CNNCC_E2E_DATA
#define CNNCC_E2E_DATA CNNCC_BINARY_DIR "/e2e-data"
#endif
#ifndef CNNCC_PYTHON
#define CNNCC_PYTHON "/usr/bin/python3"
#endif

#define TOLERANCE 1e-4

typedef struct {
  const char *net;        /* spec examples/NET.yaml, make_ref.py name */
  const char *input_name; /* the spec's input */
  const char *output_name; /* the spec's output (its last layer) */
} Network;

static const Network networks[] = {
    {"lenet5", "image", "output"},   {"alexnet", "image", "classifier.6"},
    {"vgg16", "image", "classifier.6"}, {"resnet50", "image", "fc"},
    {"googlenet", "image", "fc"},
};

static const Network *network(const char *net) {
  for (size_t i = 0; i < sizeof networks / sizeof networks[0]; i++)
    if (strcmp(networks[i].net, net) == 0)
      return &networks[i];
  cr_assert_fail("unknown network %s", net);
  return NULL;
}

/* dir/name into buf; fails the test rather than truncate. */
static char *join(char *buf, size_t n, const char *dir, const char *name) {
  int k = snprintf(buf, n, "%s/%s", dir, name ? name : "(null)");
  cr_assert(k >= 0 && (size_t)k < n, "path too long: %s/%s", dir, name);
  return buf;
}

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* The reference directory for net, generated if missing. */
static void reference_dir(const char *net, char *dir, size_t n) {
  join(dir, n, CNNCC_E2E_DATA, net);
  char manifest[1024], cmd[4096];
  join(manifest, sizeof manifest, dir, "manifest.json");
  if (exists(manifest))
    return;
  snprintf(cmd, sizeof cmd, "'%s' '%s/tests/e2e/make_ref.py' %s '%s'",
           CNNCC_PYTHON, CNNCC_SOURCE_DIR, net, dir);
  cr_log_info("generating reference data: %s", cmd);
  cr_assert_eq(system(cmd), 0, "make_ref.py failed: %s", cmd);
  cr_assert(exists(manifest), "make_ref.py wrote no %s", manifest);
}

static float *read_floats(const char *path, size_t count) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot open %s", path);
  float *v = malloc(count * sizeof *v);
  cr_assert_not_null(v);
  size_t got = fread(v, sizeof *v, count, f);
  int extra = fgetc(f);
  fclose(f);
  cr_assert_eq(got, count, "%s: %zu floats, expected %zu", path, got, count);
  cr_assert_eq(extra, EOF, "%s: longer than %zu floats", path, count);
  return v;
}

/* cnncc NET.yaml --weights W -o TMP/NET.so; returns the .so path (static). */
static const char *compile(const char *net, const char *weights, char *tmpdir) {
  static char so[1024];
  char cmd[4096], log[1024];
  snprintf(so, sizeof so, "%s/%s.so", tmpdir, net);
  snprintf(log, sizeof log, "%s/cnncc.log", tmpdir);
  snprintf(cmd, sizeof cmd,
           "'%s' '%s/examples/%s.yaml' --weights '%s' -o '%s' > '%s' 2>&1",
           CNNCC_EXE, CNNCC_SOURCE_DIR, net, weights, so, log);
  int rc = system(cmd);
  if (rc != 0) {
    char text[8192] = "";
    FILE *f = fopen(log, "r");
    if (f) {
      size_t k = fread(text, 1, sizeof text - 1, f);
      text[k] = 0;
      fclose(f);
    }
    cr_assert_fail("cnncc failed (status %d): %s\n%s", rc, cmd, text);
  }
  return so;
}

typedef const cnn_info *(*get_info_fn)(void);
typedef cnn_model *(*create_fn)(const char *, char *, size_t);
typedef int (*run_fn)(cnn_model *, int64_t, const float *const *, float *const *);
typedef const char *(*last_error_fn)(const cnn_model *);
typedef void (*destroy_fn)(cnn_model *);

static void *sym(void *h, const char *name) {
  void *p = dlsym(h, name);
  cr_assert_not_null(p, "the .so does not export %s", name);
  return p;
}

static void check_desc(const cnn_tensor_desc *d, const char *name,
                       json_t *shape, const char *what) {
  cr_expect_str_eq(d->name, name, "%s name", what);
  cr_assert_eq(d->rank, 1 + (int)json_array_size(shape), "%s rank", what);
  cr_expect_eq(d->dims[0], 1, "%s batch dim", what);
  for (size_t i = 0; i < json_array_size(shape); i++)
    cr_expect_eq(d->dims[i + 1], json_integer_value(json_array_get(shape, i)),
                 "%s dims[%zu]", what, i + 1);
}

static void run_case(const char *net, int batch) {
  const Network *nw = network(net);
  char dir[1024], path[1024];
  reference_dir(net, dir, sizeof dir);

  join(path, sizeof path, dir, "manifest.json");
  json_error_t jerr;
  json_t *man = json_load_file(path, 0, &jerr);
  cr_assert_not_null(man, "%s: %s", path, jerr.text);
  json_t *in_shape = json_object_get(man, "input_shape");
  json_t *out_shape = json_object_get(man, "output_shape");
  uint64_t want_params = json_integer_value(json_object_get(man, "num_params"));
  json_t *c, *cas = NULL;
  size_t i;
  json_array_foreach(json_object_get(man, "cases"), i, c) {
    if (json_integer_value(json_object_get(c, "batch")) == batch)
      cas = c;
  }
  cr_assert_not_null(cas, "no batch %d case in %s", batch, path);

  char tmpdir[] = "/tmp/cnncc-e2e-XXXXXX";
  cr_assert_not_null(mkdtemp(tmpdir));
  char weights[1100];
  join(weights, sizeof weights, dir,
       json_string_value(json_object_get(man, "weights")));
  const char *so = compile(net, weights, tmpdir);

  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  cr_assert_not_null(h, "dlopen %s: %s", so, dlerror());
  get_info_fn get_info = (get_info_fn)sym(h, "cnn_get_info");
  create_fn create = (create_fn)sym(h, "cnn_create");
  run_fn run = (run_fn)sym(h, "cnn_run");
  last_error_fn last_error = (last_error_fn)sym(h, "cnn_last_error");
  destroy_fn destroy = (destroy_fn)sym(h, "cnn_destroy");

  const cnn_info *info = get_info();
  cr_assert_not_null(info);
  cr_expect_eq(info->abi_version, CNN_ABI_VERSION);
  cr_expect_str_eq(info->name, net);
  cr_expect_eq(info->num_params, want_params,
               "num_params %llu, PyTorch counts %llu",
               (unsigned long long)info->num_params,
               (unsigned long long)want_params);
  cr_assert_eq(info->num_inputs, 1);
  cr_assert_eq(info->num_outputs, 1);
  check_desc(&info->inputs[0], nw->input_name, in_shape, "input");
  check_desc(&info->outputs[0], nw->output_name, out_shape, "output");

  size_t in_n = 1, out_n = 1;
  for (int k = 1; k < info->inputs[0].rank; k++)
    in_n *= info->inputs[0].dims[k];
  for (int k = 1; k < info->outputs[0].rank; k++)
    out_n *= info->outputs[0].dims[k];

  join(path, sizeof path, dir, json_string_value(json_object_get(cas, "input")));
  float *x = read_floats(path, batch * in_n);
  join(path, sizeof path, dir, json_string_value(json_object_get(cas, "output")));
  float *ref = read_floats(path, batch * out_n);
  float *y = malloc(batch * out_n * sizeof *y);
  for (size_t k = 0; k < batch * out_n; k++)
    y[k] = NAN;

  char err[512] = "";
  cnn_model *m = create(NULL, err, sizeof err);
  cr_assert_not_null(m, "cnn_create: %s", err);
  const float *ins[1] = {x};
  float *outs[1] = {y};
  int rc = run(m, batch, ins, outs);
  cr_assert_eq(rc, CNN_OK, "cnn_run returned %d: %s", rc, last_error(m));

  double max_err = 0, max_ref = 0;
  size_t worst = 0;
  for (size_t k = 0; k < batch * out_n; k++) {
    double e = fabs((double)y[k] - (double)ref[k]);
    if (!(e <= max_err)) { /* also catches NaN */
      max_err = isnan(e) ? INFINITY : e;
      worst = k;
    }
    max_ref = fmax(max_ref, fabs((double)ref[k]));
  }
  printf("e2e %-10s batch %d: max|ours - ref| = %.3g, max|ref| = %.6g, "
         "ratio %.3g (tolerance %g); worst at [%zu][%zu]: ours %.7g ref %.7g\n",
         net, batch, max_err, max_ref, max_err / max_ref, TOLERANCE,
         worst / out_n, worst % out_n, y[worst], ref[worst]);
  fflush(stdout);
  cr_expect(max_err <= TOLERANCE * max_ref,
            "%s batch %d: max|ours - ref| = %g > %g * max|ref| = %g", net, batch,
            max_err, TOLERANCE, TOLERANCE * max_ref);

  destroy(m);
  dlclose(h);
  free(x);
  free(ref);
  free(y);
  json_decref(man);
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0)
    cr_log_warn("could not remove %s", tmpdir);
}

Test(lenet5, matches_pytorch_at_batch_1) { run_case("lenet5", 1); }
Test(lenet5, matches_pytorch_at_batch_3) { run_case("lenet5", 3); }
Test(alexnet, matches_pytorch_at_batch_1, .timeout = 1800) { run_case("alexnet", 1); }
Test(alexnet, matches_pytorch_at_batch_3, .timeout = 1800) { run_case("alexnet", 3); }
Test(vgg16, matches_pytorch_at_batch_1, .timeout = 1800) { run_case("vgg16", 1); }
Test(vgg16, matches_pytorch_at_batch_3, .timeout = 1800) { run_case("vgg16", 3); }
Test(resnet50, matches_pytorch_at_batch_1, .timeout = 1800) { run_case("resnet50", 1); }
Test(resnet50, matches_pytorch_at_batch_3, .timeout = 1800) { run_case("resnet50", 3); }
Test(googlenet, matches_pytorch_at_batch_1, .timeout = 1800) { run_case("googlenet", 1); }
Test(googlenet, matches_pytorch_at_batch_3, .timeout = 1800) { run_case("googlenet", 3); }

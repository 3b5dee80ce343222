/*
 * test_e2e.c: zoo specs compiled by cnncc, run, and compared with PyTorch.
 *
 * For each network (one Criterion suite per network, one test that runs
 * every batch size of the network from one compiled .so):
 *   1. reference data from tests/e2e/make_ref.py in CNNCC_E2E_DATA/NET
 *      (weights.safetensors, inputs, PyTorch's outputs, manifest.json); ctest
 *      runs make_ref.py as a fixture, and a test run by hand generates the
 *      data itself if it is missing;
 *   2. `cnncc examples/NET.yaml --weights .../weights.safetensors -o
 *      TMP/NET.so`, once, in a fresh temporary directory (a test network
 *      that is not in the zoo, modern_blocks, padded_blocks or
 *      shuffle_blocks, has its spec in tests/e2e/);
 *   3. dlopen the .so; cnn_get_info must report the network's name, the
 *      parameter count PyTorch counts, and the input/output names and dims
 *      (the output name is the manifest's output_name);
 *   4. for each batch size in the manifest (1 and 3 for the original five,
 *      1 and 2 for the others: make_ref.py's NETWORKS), cnn_run and compare
 *      with PyTorch:
 *         max |ours - ref| <= 1e-4 * max |ref|
 *      For the networks with a batched tail (LeNet-5, AlexNet, VGG-16, the
 *      lecture's AlexNet) also batches of 8 and 11 made of those samples,
 *      at 1 and 2 threads, each sample the same bits as alone (batch 1).
 *      Both numbers and the time of cnncc and of each run are printed, pass
 *      or fail, on lines starting with "e2e " (tools/zoo_table.sh and the
 *      reports read them). Each batch runs twice, with the input and output
 *      buffers 64-byte aligned and then 4 bytes off that boundary: the
 *      outputs must be the same bits (docs/robustness.md, "Faults").
 *
 * The suite `summary` checks `cnncc --summary` against the lecture's AlexNet
 * facts (CONV1 96x55x55 with 34,944 parameters, POOL1 96x27x27 with none).
 *
 * Run one network by hand:  build/tests/e2e/test_e2e --filter=resnet50/'*'
 * Extra cnncc options for every compile: CNNCC_E2E_FLAGS='--passes=fuse-bn'.
 *
 * Another architecture (docs/targets.md): with CNNCC_E2E_FLAGS
 * --target=TRIPLE, CNNCC_E2E_TARGET=TRIPLE and CNNCC_E2E_RUNNER the command
 * that runs tests/e2e/cross_runner.c for it (qemu-aarch64-static -cpu
 * cortex-a72 -L SYSROOT .../cross_runner_aarch64), the .so is not loaded
 * here: each batch of CNNCC_E2E_BATCHES (default 1,3; a batch of 3 is the
 * manifest's batches 1 and 2 together where it has no 3) runs in the
 * runner with each thread count of CNNCC_E2E_THREADS (default 1,2), and
 * its outputs and cnn_info (name, parameter count, tensor names, the
 * triple in cnn_info.compiler) are checked as above.
 * Another bound than 1e-4 (a documented one, e.g. --precision=bf16's):
 * CNNCC_E2E_TOLERANCE=2e-2.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cnn.h"

#ifndef CNNCC_E2E_DATA
#define CNNCC_E2E_DATA CNNCC_BINARY_DIR "/e2e-data"
#endif
#ifndef CNNCC_PYTHON
#define CNNCC_PYTHON "/usr/bin/python3"
#endif

#define DEFAULT_TOLERANCE 1e-4

/* The bound on max|ours - ref| / max|ref|: CNNCC_E2E_TOLERANCE, else 1e-4. */
static double tolerance(void) {
  const char *s = getenv("CNNCC_E2E_TOLERANCE");
  if (!s || !*s)
    return DEFAULT_TOLERANCE;
  char *end;
  double t = strtod(s, &end);
  cr_assert(*end == 0 && t > 0 && t < 1, "CNNCC_E2E_TOLERANCE='%s' is not in (0, 1)", s);
  return t;
}
/* make_ref.py's REF_VERSION: older reference data is regenerated */
#define REF_VERSION 2

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

/* A manifest written by the current make_ref.py. */
static bool manifest_current(const char *path) {
  json_error_t jerr;
  json_t *m = json_load_file(path, 0, &jerr);
  bool ok = m && json_is_string(json_object_get(m, "output_name")) &&
            json_integer_value(json_object_get(m, "ref_version")) == REF_VERSION;
  json_decref(m);
  return ok;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The reference directory for net, generated if missing or stale. */
static void reference_dir(const char *net, char *dir, size_t n) {
  join(dir, n, CNNCC_E2E_DATA, net);
  char manifest[1024], cmd[4096];
  join(manifest, sizeof manifest, dir, "manifest.json");
  if (exists(manifest) && manifest_current(manifest))
    return;
  snprintf(cmd, sizeof cmd, "'%s' '%s/tests/e2e/make_ref.py' %s '%s'", CNNCC_PYTHON,
           CNNCC_SOURCE_DIR, net, dir);
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
  char cmd[8192], log[1024];
  snprintf(so, sizeof so, "%s/%s.so", tmpdir, net);
  snprintf(log, sizeof log, "%s/cnncc.log", tmpdir);
  /* CNNCC_E2E_FLAGS: extra cnncc options (e.g. --passes=... to bisect a
     pass, -O0), appended unquoted */
  const char *flags = getenv("CNNCC_E2E_FLAGS");
  /* a zoo network's spec, or a test network's beside this file */
  char spec[1024];
  snprintf(spec, sizeof spec, "%s/examples/%s.yaml", CNNCC_SOURCE_DIR, net);
  if (!exists(spec))
    snprintf(spec, sizeof spec, "%s/tests/e2e/%s.yaml", CNNCC_SOURCE_DIR, net);
  snprintf(cmd, sizeof cmd, "'%s' '%s' --weights '%s' -o '%s' %s > '%s' 2>&1", CNNCC_EXE, spec,
           weights, so, flags ? flags : "", log);
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

static void check_desc(const cnn_tensor_desc *d, const char *name, json_t *shape,
                       const char *what) {
  cr_expect_str_eq(d->name, name, "%s name", what);
  cr_assert_eq(d->rank, 1 + (int)json_array_size(shape), "%s rank", what);
  cr_expect_eq(d->dims[0], 1, "%s batch dim", what);
  for (size_t i = 0; i < json_array_size(shape); i++)
    cr_expect_eq(d->dims[i + 1], json_integer_value(json_array_get(shape, i)), "%s dims[%zu]", what,
                 i + 1);
}

/* Compares batch outputs y with PyTorch's ref (n floats); prints the line
   tools/zoo_table.sh reads; true when within tolerance. `how` says how it
   ran ("" natively; "threads 2" under an emulator). */
static bool compare(const char *net, int batch, const char *how, const float *y, const float *ref,
                    size_t n, size_t out_n, double secs) {
  double max_err = 0, max_ref = 0;
  size_t worst = 0;
  for (size_t k = 0; k < n; k++) {
    double e = fabs((double)y[k] - (double)ref[k]);
    if (!(e <= max_err)) { /* also catches NaN */
      max_err = isnan(e) ? INFINITY : e;
      worst = k;
    }
    max_ref = fmax(max_ref, fabs((double)ref[k]));
  }
  const double tol = tolerance();
  bool ok = max_err <= tol * max_ref;
  printf("e2e %-16s batch %d%s%s: max|ours - ref| = %.3g, max|ref| = %.6g, "
         "ratio %.3g (tolerance %g) %s; run %.3f s; worst at [%zu][%zu]: "
         "ours %.7g ref %.7g\n",
         net, batch, *how ? " " : "", how, max_err, max_ref, max_err / max_ref, tol,
         ok ? "PASS" : "FAIL", secs, worst / out_n, worst % out_n, y[worst], ref[worst]);
  fflush(stdout);
  cr_expect(ok, "%s batch %d%s%s: max|ours - ref| = %g > %g * max|ref| = %g", net, batch,
            *how ? " " : "", how, max_err, tol, tol * max_ref);
  return ok;
}

/* A buffer of n floats whose first float sits `off` bytes past a 64-byte
   boundary (0 or 4); *base is what to free. */
static float *buffer_at(size_t n, size_t off, void **base) {
  *base = aligned_alloc(64, (n * sizeof(float) + off + 63) & ~(size_t)63);
  cr_assert_not_null(*base);
  return (float *)((char *)*base + off);
}

/* Runs one batch of one case, on input and output buffers 64-byte aligned
   and then both 4 bytes off that boundary (docs/abi.md asks only for
   contiguous floats: a host's plain malloc or a slice of a bigger array);
   the two runs must give the same bits. True when within tolerance. */
static bool run_batch(const char *net, run_fn run, last_error_fn last_error, cnn_model *m,
                      const char *dir, json_t *cas, size_t in_n, size_t out_n) {
  char path[1024];
  int batch = (int)json_integer_value(json_object_get(cas, "batch"));
  join(path, sizeof path, dir, json_string_value(json_object_get(cas, "input")));
  float *x = read_floats(path, batch * in_n);
  join(path, sizeof path, dir, json_string_value(json_object_get(cas, "output")));
  float *ref = read_floats(path, batch * out_n);
  float *y[2];
  double secs = 0;
  int rc = CNN_OK;
  void *bases[4];
  for (int mis = 0; mis < 2; mis++) {
    float *xa = buffer_at(batch * in_n, mis * 4, &bases[2 * mis]);
    memcpy(xa, x, batch * in_n * sizeof *x);
    y[mis] = buffer_at(batch * out_n, mis * 4, &bases[2 * mis + 1]);
    for (size_t k = 0; k < batch * out_n; k++)
      y[mis][k] = NAN;
    const float *ins[1] = {xa};
    float *outs[1] = {y[mis]};
    double t0 = now_s();
    int r = run(m, batch, ins, outs);
    if (!mis)
      secs = now_s() - t0;
    cr_expect_eq(r, CNN_OK, "%s batch %d%s: cnn_run returned %d: %s", net, batch,
                 mis ? " (buffers 4 bytes off alignment)" : "", r, last_error(m));
    rc = rc == CNN_OK ? r : rc;
  }
  bool ok = compare(net, batch, "", y[0], ref, batch * out_n, out_n, secs) && rc == CNN_OK;
  bool same = !memcmp(y[0], y[1], batch * out_n * sizeof(float));
  cr_expect(same,
            "%s batch %d: outputs with buffers 4 bytes off a 64-byte boundary differ from "
            "the aligned run",
            net, batch);
  for (int k = 0; k < 4; k++)
    free(bases[k]);
  free(x);
  free(ref);
  return ok && same;
}

/* ------------------------------------------------------- bigger batches */

/* The networks with a batched tail (linear layers at the end) whose bigger
   batches are checked too: batches 8 (one group of the tail) and 11 (a
   group and a part of one), made of the manifest's samples over again, at
   1 and 2 threads. Each sample's output must match PyTorch within the
   tolerance and be the same bits as the sample alone in a batch of 1
   (docs/abi.md: results do not depend on the batch size or on where in
   the batch a sample is). */
static const char *const big_batch_nets[] = {"lenet5", "alexnet", "vgg16", "alexnet_lecture"};

typedef int (*threads_fn)(cnn_model *, int);

static void run_big_batches(const char *net, run_fn run, threads_fn set_threads, cnn_model *m,
                            const char *dir, json_t *cases, size_t in_n, size_t out_n) {
  bool listed = false;
  for (size_t i = 0; i < sizeof big_batch_nets / sizeof *big_batch_nets; i++)
    listed |= !strcmp(net, big_batch_nets[i]);
  if (!listed)
    return;
  /* the manifest's samples, one after the other */
  float *xs = NULL, *refs = NULL;
  size_t ns = 0;
  char path[1024];
  json_t *c;
  size_t ci;
  json_array_foreach(cases, ci, c) {
    size_t b = (size_t)json_integer_value(json_object_get(c, "batch"));
    join(path, sizeof path, dir, json_string_value(json_object_get(c, "input")));
    float *x = read_floats(path, b * in_n);
    join(path, sizeof path, dir, json_string_value(json_object_get(c, "output")));
    float *r = read_floats(path, b * out_n);
    xs = realloc(xs, (ns + b) * in_n * sizeof *xs);
    refs = realloc(refs, (ns + b) * out_n * sizeof *refs);
    cr_assert(xs && refs);
    memcpy(xs + ns * in_n, x, b * in_n * sizeof *x);
    memcpy(refs + ns * out_n, r, b * out_n * sizeof *r);
    ns += b;
    free(x);
    free(r);
  }
  /* each sample alone: the bits every batch must reproduce */
  float *alone = malloc(ns * out_n * sizeof *alone);
  cr_assert_not_null(alone);
  for (size_t k = 0; k < ns; k++) {
    const float *ins[1] = {xs + k * in_n};
    float *outs[1] = {alone + k * out_n};
    cr_assert_eq(run(m, 1, ins, outs), CNN_OK);
  }
  const int batches[2] = {8, 11}, threads[2] = {1, 2};
  for (int bi = 0; bi < 2; bi++) {
    size_t B = (size_t)batches[bi];
    float *x = malloc(B * in_n * sizeof *x), *ref = malloc(B * out_n * sizeof *ref);
    float *y = malloc(B * out_n * sizeof *y);
    cr_assert(x && ref && y);
    for (size_t k = 0; k < B; k++) {
      memcpy(x + k * in_n, xs + (k % ns) * in_n, in_n * sizeof *x);
      memcpy(ref + k * out_n, refs + (k % ns) * out_n, out_n * sizeof *ref);
    }
    for (int ti = 0; ti < 2; ti++) {
      cr_assert_eq(set_threads(m, threads[ti]), CNN_OK);
      for (size_t k = 0; k < B * out_n; k++)
        y[k] = NAN;
      const float *ins[1] = {x};
      float *outs[1] = {y};
      double t0 = now_s();
      cr_assert_eq(run(m, (int64_t)B, ins, outs), CNN_OK);
      char how[32];
      snprintf(how, sizeof how, "threads %d", threads[ti]);
      compare(net, (int)B, how, y, ref, B * out_n, out_n, now_s() - t0);
      for (size_t k = 0; k < B; k++)
        cr_expect(!memcmp(y + k * out_n, alone + (k % ns) * out_n, out_n * sizeof *y),
                  "%s batch %zu, %d threads: sample %zu differs from its batch-1 output", net, B,
                  threads[ti], k);
    }
    free(x);
    free(ref);
    free(y);
  }
  cr_assert_eq(set_threads(m, 0), CNN_OK);
  free(alone);
  free(xs);
  free(refs);
}

/* ------------------------------------------------- another architecture */

/* The batches and thread counts of a run under an emulator: a list like
   "1,3" from the environment (default dflt), at most 8 numbers. */
static int env_list(const char *name, const char *dflt, int *v) {
  const char *s = getenv(name);
  if (!s || !*s)
    s = dflt;
  int n = 0;
  for (char *end; *s && n < 8; s = *end ? end + 1 : end) {
    v[n] = (int)strtol(s, &end, 10);
    cr_assert(v[n] > 0 && (*end == ',' || !*end), "%s: bad list '%s'", name, s);
    n++;
  }
  return n;
}

/* The case of the manifest with this batch, or NULL. */
static json_t *case_of(json_t *cases, int batch) {
  json_t *c;
  size_t i;
  json_array_foreach(cases, i,
                     c) if (json_integer_value(json_object_get(c, "batch")) == batch) return c;
  return NULL;
}

/* batch samples of input and PyTorch output: a case of the manifest, or
   (batch 3 where the manifest has 1 and 2) those two cases one after the
   other: the samples of a batch are independent, so PyTorch's outputs of
   the two calls are the reference of the batch of three. */
static void batch_data(const char *dir, json_t *cases, int batch, size_t in_n, size_t out_n,
                       float **x, float **ref) {
  char path[1024];
  json_t *c = case_of(cases, batch);
  if (c) {
    join(path, sizeof path, dir, json_string_value(json_object_get(c, "input")));
    *x = read_floats(path, batch * in_n);
    join(path, sizeof path, dir, json_string_value(json_object_get(c, "output")));
    *ref = read_floats(path, batch * out_n);
    return;
  }
  json_t *c1 = case_of(cases, 1), *c2 = case_of(cases, 2);
  cr_assert(batch == 3 && c1 && c2, "no reference case for batch %d in %s", batch, dir);
  *x = malloc(3 * in_n * sizeof **x);
  *ref = malloc(3 * out_n * sizeof **ref);
  cr_assert(*x && *ref);
  json_t *parts[2] = {c1, c2};
  for (int k = 0; k < 2; k++) {
    join(path, sizeof path, dir, json_string_value(json_object_get(parts[k], "input")));
    float *xi = read_floats(path, (k + 1) * in_n);
    join(path, sizeof path, dir, json_string_value(json_object_get(parts[k], "output")));
    float *ri = read_floats(path, (k + 1) * out_n);
    memcpy(*x + k * in_n, xi, (k + 1) * in_n * sizeof *xi);
    memcpy(*ref + k * out_n, ri, (k + 1) * out_n * sizeof *ri);
    free(xi);
    free(ri);
  }
}

/* The value of "key=" among the runner's output lines, or "". */
static const char *runner_value(const char *text, const char *key, char *buf, size_t n) {
  char pat[64];
  snprintf(pat, sizeof pat, "\n%s=", key);
  const char *p = strstr(text, pat);
  buf[0] = 0;
  if (p) {
    p += strlen(pat);
    size_t k = strcspn(p, "\n");
    snprintf(buf, n, "%.*s", (int)(k < n ? k : n - 1), p);
  }
  return buf;
}

/* The .so through CNNCC_E2E_RUNNER (an emulator and tests/e2e/cross_runner.c
   built for the target): every batch of CNNCC_E2E_BATCHES (default 1,3)
   with every thread count of CNNCC_E2E_THREADS (default 1,2), each run a
   process of its own; its cnn_info as the runner prints it. The outputs of
   a batch are bit-identical for every thread count (docs/performance.md:
   the same chunks in the same order), which is checked too. */
static void run_cross(const char *net, const char *runner, const char *so, const char *tmpdir,
                      const char *dir, json_t *man, const char *in_name, const char *out_name) {
  size_t in_n = 1, out_n = 1;
  json_t *in_shape = json_object_get(man, "input_shape"),
         *out_shape = json_object_get(man, "output_shape");
  for (size_t i = 0; i < json_array_size(in_shape); i++)
    in_n *= json_integer_value(json_array_get(in_shape, i));
  for (size_t i = 0; i < json_array_size(out_shape); i++)
    out_n *= json_integer_value(json_array_get(out_shape, i));
  int batches[8], threads[8];
  int nb = env_list("CNNCC_E2E_BATCHES", "1,3", batches);
  int nt = env_list("CNNCC_E2E_THREADS", "1,2", threads);
  const char *target = getenv("CNNCC_E2E_TARGET");
  for (int b = 0; b < nb; b++) {
    float *x, *ref;
    batch_data(dir, json_object_get(man, "cases"), batches[b], in_n, out_n, &x, &ref);
    char in_path[1100], out_path[1100], cmd[4096];
    snprintf(in_path, sizeof in_path, "%s/in.bin", tmpdir);
    snprintf(out_path, sizeof out_path, "%s/out.bin", tmpdir);
    FILE *f = fopen(in_path, "wb");
    cr_assert(f && fwrite(x, sizeof *x, batches[b] * in_n, f) == batches[b] * in_n &&
              fclose(f) == 0);
    float *y0 = NULL; /* the output with threads[0] */
    for (int t = 0; t < nt; t++) {
      unlink(out_path);
      snprintf(cmd, sizeof cmd, "%s '%s' '%s' %d %d '%s' 2>&1", runner, so, in_path, batches[b],
               threads[t], out_path);
      FILE *p = popen(cmd, "r");
      cr_assert_not_null(p, "popen %s", cmd);
      char text[8192] = "\n";
      size_t len = fread(text + 1, 1, sizeof text - 2, p);
      text[len + 1] = 0;
      int rc = pclose(p);
      cr_assert_eq(rc, 0, "%s failed (status %d):\n%s", cmd, rc, text);
      char v[1024], want[1200];
      cr_expect_str_eq(runner_value(text, "name", v, sizeof v), net);
      cr_expect_eq(strtoull(runner_value(text, "num_params", v, sizeof v), NULL, 10),
                   (unsigned long long)json_integer_value(json_object_get(man, "num_params")));
      snprintf(want, sizeof want, "target=%s ", target ? target : "");
      cr_expect(strstr(runner_value(text, "compiler", v, sizeof v), want),
                "cnn_info.compiler '%s' does not name %s", v, want);
      cr_expect(!strncmp(runner_value(text, "input", v, sizeof v), in_name, strlen(in_name)),
                "input '%s'", v);
      cr_expect(!strncmp(runner_value(text, "output", v, sizeof v), out_name, strlen(out_name)),
                "output '%s'", v);
      float *y = read_floats(out_path, batches[b] * out_n);
      char how[64];
      snprintf(how, sizeof how, "threads %d under %s", threads[t], target ? target : "a runner");
      compare(net, batches[b], how, y, ref, batches[b] * out_n, out_n,
              atof(runner_value(text, "run_seconds", v, sizeof v)));
      if (!y0) {
        y0 = y;
        continue;
      }
      cr_expect(!memcmp(y, y0, batches[b] * out_n * sizeof *y),
                "%s batch %d: the output with %d threads differs from the one with %d", net,
                batches[b], threads[t], threads[0]);
      free(y);
    }
    free(y0);
    free(x);
    free(ref);
  }
}

/* Compiles NET once and checks every batch size of its manifest. */
static void run_network(const char *net) {
  char dir[1024], path[1024];
  reference_dir(net, dir, sizeof dir);

  join(path, sizeof path, dir, "manifest.json");
  json_error_t jerr;
  json_t *man = json_load_file(path, 0, &jerr);
  cr_assert_not_null(man, "%s: %s", path, jerr.text);
  json_t *in_shape = json_object_get(man, "input_shape");
  json_t *out_shape = json_object_get(man, "output_shape");
  const char *in_name = json_string_value(json_object_get(man, "input_name"));
  const char *out_name = json_string_value(json_object_get(man, "output_name"));
  cr_assert(in_name && out_name, "%s: no input_name/output_name (rerun make_ref.py)", path);
  uint64_t want_params = json_integer_value(json_object_get(man, "num_params"));
  json_t *cases = json_object_get(man, "cases");
  cr_assert(json_array_size(cases) > 0, "no cases in %s", path);

  char tmpdir[] = "/tmp/cnncc-e2e-XXXXXX";
  cr_assert_not_null(mkdtemp(tmpdir));
  char weights[1100];
  join(weights, sizeof weights, dir, json_string_value(json_object_get(man, "weights")));
  double t0 = now_s();
  const char *so = compile(net, weights, tmpdir);
  printf("e2e %-16s compile: %.2f s\n", net, now_s() - t0);
  fflush(stdout);
  const char *runner = getenv("CNNCC_E2E_RUNNER");
  if (runner && *runner) {
    run_cross(net, runner, so, tmpdir, dir, man, in_name, out_name);
    json_decref(man);
    char rm[1100];
    snprintf(rm, sizeof rm, "rm -rf '%s'", tmpdir);
    if (system(rm) != 0)
      cr_log_warn("could not remove %s", tmpdir);
    return;
  }

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
  cr_expect_eq(info->num_params, want_params, "num_params %llu, PyTorch counts %llu",
               (unsigned long long)info->num_params, (unsigned long long)want_params);
  printf("e2e %-16s params: ours %llu, PyTorch %llu\n", net, (unsigned long long)info->num_params,
         (unsigned long long)want_params);
  cr_assert_eq(info->num_inputs, 1);
  cr_assert_eq(info->num_outputs, 1);
  check_desc(&info->inputs[0], in_name, in_shape, "input");
  check_desc(&info->outputs[0], out_name, out_shape, "output");

  size_t in_n = 1, out_n = 1;
  for (int k = 1; k < info->inputs[0].rank; k++)
    in_n *= info->inputs[0].dims[k];
  for (int k = 1; k < info->outputs[0].rank; k++)
    out_n *= info->outputs[0].dims[k];

  char err[512] = "";
  cnn_model *m = create(NULL, err, sizeof err);
  cr_assert_not_null(m, "cnn_create: %s", err);
  json_t *c;
  size_t i;
  json_array_foreach(cases, i, c) run_batch(net, run, last_error, m, dir, c, in_n, out_n);
  run_big_batches(net, run, (threads_fn)sym(h, "cnn_set_num_threads"), m, dir, cases, in_n, out_n);

  destroy(m);
  dlclose(h);
  json_decref(man);
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0)
    cr_log_warn("could not remove %s", tmpdir);
}

/* One suite per network (ctest: test_e2e --filter=NET/'*'); the list must
   match make_ref.py's NETWORKS and tests/e2e/CMakeLists.txt. */
#define E2E(net)                                                                                   \
  Test(net, matches_pytorch, .timeout = 1800) { run_network(#net); }
E2E(lenet5)
E2E(alexnet)
E2E(vgg16)
E2E(resnet50)
E2E(googlenet)
E2E(vgg19)
E2E(resnet18)
E2E(resnet34)
E2E(resnet101)
E2E(resnet152)
E2E(resnext50_32x4d)
E2E(wide_resnet50_2)
E2E(densenet121)
E2E(densenet201)
E2E(squeezenet1_0)
E2E(squeezenet1_1)
E2E(alexnet_lecture)
E2E(zfnet)
E2E(inception_v4)
E2E(preact_resnet18)
E2E(preact_resnet164)
E2E(wrn28_10)
E2E(stochastic_depth)
E2E(fractalnet)
E2E(nin)
E2E(modern_blocks)
E2E(padded_blocks)
E2E(shuffle_blocks)
E2E(shufflenet_v2_x1_0)
E2E(regnet_y_400mf)
E2E(regnet_x_1_6gf)
E2E(inception_v3)
E2E(convnext_tiny)
E2E(mobilenet_v2)
E2E(mobilenet_v3_small)
E2E(mobilenet_v3_large)
E2E(efficientnet_b0)
E2E(efficientnet_b3)
E2E(mnasnet1_0)

/* ------------------------------------------------ the lecture's AlexNet facts */

typedef struct {
  char layer[128], op[64], output[64];
  long long params;
} SummaryRow;

/* Parses `cnncc --summary SPEC` rows "layer op output params MACs act". */
static int summary_rows(const char *spec, SummaryRow *rows, int max) {
  char cmd[2048], line[1024];
  snprintf(cmd, sizeof cmd, "'%s' --summary '%s/examples/%s' 2>&1", CNNCC_EXE, CNNCC_SOURCE_DIR,
           spec);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p, "popen %s", cmd);
  int n = 0;
  while (fgets(line, sizeof line, p) && n < max) {
    SummaryRow r;
    if (sscanf(line, "%127s %63s %63s %lld", r.layer, r.op, r.output, &r.params) == 4)
      rows[n++] = r;
  }
  cr_assert_eq(pclose(p), 0, "%s failed", cmd);
  return n;
}

static const SummaryRow *find_row(const SummaryRow *rows, int n, const char *layer) {
  for (int i = 0; i < n; i++)
    if (strcmp(rows[i].layer, layer) == 0)
      return &rows[i];
  cr_assert_fail("no row '%s' in the summary", layer);
  return NULL;
}

Test(summary, alexnet_lecture_conv1_and_pool1) {
  static SummaryRow rows[256];
  int n = summary_rows("alexnet_lecture.yaml", rows, 256);
  const SummaryRow *in = find_row(rows, n, "image");
  cr_expect_str_eq(in->output, "3x227x227");
  const SummaryRow *conv1 = find_row(rows, n, "conv1");
  cr_expect_str_eq(conv1->op, "conv2d");
  cr_expect_str_eq(conv1->output, "96x55x55");
  cr_expect_eq(conv1->params, 34944, "CONV1: (11*11*3)*96 + 96 = 34,944, got %lld", conv1->params);
  const SummaryRow *pool1 = find_row(rows, n, "pool1");
  cr_expect_str_eq(pool1->op, "maxpool");
  cr_expect_str_eq(pool1->output, "96x27x27");
  cr_expect_eq(pool1->params, 0);
  printf("e2e summary alexnet_lecture: conv1 %s %s %lld params, pool1 %s %s %lld params\n",
         conv1->op, conv1->output, conv1->params, pool1->op, pool1->output, pool1->params);
}

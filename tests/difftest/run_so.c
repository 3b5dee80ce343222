/*
 * run_so.c: cnn_difftest_run, one compiled network over the run matrix.
 *
 *   cnn_difftest_run SO --dir DIR --batch B [--weights BLOB] [--no-concurrent]
 *
 * DIR/in<i>.f32 holds B samples of input i (float32, as cnn_info orders
 * the inputs). The reference run is batch B on one thread with 64-byte
 * aligned buffers; its outputs go to DIR/out<i>.f32, for difftest.py to
 * compare with PyTorch. Every other run must give the same bits:
 *
 *   each sample alone (batch 1), its buffers 4 bytes past a 64-byte
 *   boundary every other sample; batch B on 2 threads (whole samples per
 *   thread) with buffers 4 bytes off; batch B on 2 threads, every sample on
 *   both; batch B again on one thread, 4 bytes off; two threads calling
 *   cnn_run on the model at once (one batch each).
 *
 * Outputs are surrounded by guard floats that must stay untouched, inputs
 * must be unchanged after every run. With DIR/in<i>.nonfinite.f32 (NaN
 * and infinities among the values) it also runs those on 1 and 2 threads,
 * writes DIR/out<i>.nonfinite.f32 and checks the two agree (a NaN equals
 * a NaN). Each problem is a line "FAIL <what>" on stdout; the info of the
 * model is printed first as "INFO <json>". Exit 0 whatever the checks
 * found (difftest.py reads the lines), 2 when the model cannot be loaded.
 */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cnn.h"

#define GUARD 16 /* floats before and after each output buffer */
#define GUARD_VALUE 1234.5f

typedef struct {
  void *h;
  const cnn_info *(*info)(void);
  cnn_model *(*create)(const char *, char *, size_t);
  int (*run)(cnn_model *, int64_t, const float *const *, float *const *);
  int (*threads)(cnn_model *, int);
  int (*batch_parallel)(cnn_model *, int);
  const char *(*last_error)(const cnn_model *);
  void (*destroy)(cnn_model *);
} Api;

static int nfail;
static bool concurrent = true; /* --no-concurrent: no two host threads at once */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("FAIL ");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
  nfail++;
}

static int64_t numel(const cnn_tensor_desc *d) {
  int64_t n = 1;
  for (int i = 1; i < d->rank; i++)
    n *= d->dims[i];
  return n;
}

static float *read_floats(const char *path, int64_t n) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
  size_t got = fread(x, sizeof(float), (size_t)n, f);
  fclose(f);
  if (got != (size_t)n) {
    fprintf(stderr, "cnn_difftest_run: %s: %zu of %lld floats\n", path, got, (long long)n);
    exit(2);
  }
  return x;
}

static void write_floats(const char *path, const float *x, int64_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(x, sizeof(float), (size_t)n, f) != (size_t)n || fclose(f) != 0) {
    fprintf(stderr, "cnn_difftest_run: cannot write %s: %s\n", path, strerror(errno));
    exit(2);
  }
}

/* A buffer of n floats starting `off` bytes past a 64-byte boundary, with
   GUARD floats of GUARD_VALUE on both sides (for outputs). */
typedef struct {
  void *mem;
  float *p;
  int64_t n;
} Region;

static Region region(int64_t n, int off) {
  Region r = {0};
  size_t bytes = sizeof(float) * (size_t)(n + 2 * GUARD) + 128;
  if (posix_memalign(&r.mem, 64, bytes) != 0)
    abort();
  r.p = (float *)((char *)r.mem + 64 * ((GUARD * 4 + 63) / 64) + off);
  r.n = n;
  for (int i = -GUARD; i < n + GUARD; i++)
    r.p[i] = GUARD_VALUE;
  return r;
}

static bool guards_intact(const Region *r) {
  for (int i = 1; i <= GUARD; i++)
    if (memcmp(&r->p[-i], &(float){GUARD_VALUE}, 4) ||
        memcmp(&r->p[r->n - 1 + i], &(float){GUARD_VALUE}, 4))
      return false;
  return true;
}

/* bits equal, or both NaN */
static bool same_bits(const float *a, const float *b, int64_t n, bool nan_equal, int64_t *at) {
  for (int64_t i = 0; i < n; i++) {
    if (memcmp(&a[i], &b[i], 4) == 0 || (nan_equal && isnan(a[i]) && isnan(b[i])))
      continue;
    *at = i;
    return false;
  }
  return true;
}

typedef struct {
  Api *api;
  cnn_model *m;
  const cnn_info *info;
  float **x;    /* inputs, B samples each */
  int64_t *xin; /* numel per sample */
  int64_t *yon;
  int64_t B;
} Ctx;

/* Runs samples [s0, s0 + n) with buffers `off` bytes off 64; copies the
   outputs into y[o] + s0 * yon[o]. */
static void run_slice(Ctx *c, int64_t s0, int64_t n, int off, float **y, const char *what) {
  int ni = c->info->num_inputs, no = c->info->num_outputs;
  Region rin[16], rout[16];
  const float *ins[16];
  float *outs[16];
  for (int i = 0; i < ni; i++) {
    rin[i] = region(n * c->xin[i], off);
    memcpy(rin[i].p, c->x[i] + s0 * c->xin[i], sizeof(float) * (size_t)(n * c->xin[i]));
    ins[i] = rin[i].p;
  }
  for (int o = 0; o < no; o++) {
    rout[o] = region(n * c->yon[o], off);
    for (int64_t k = 0; k < n * c->yon[o]; k++)
      rout[o].p[k] = NAN;
    outs[o] = rout[o].p;
  }
  int rc = c->api->run(c->m, n, ins, outs);
  if (rc != CNN_OK)
    fail("%s: cnn_run returned %d: %s", what, rc, c->api->last_error(c->m));
  for (int i = 0; i < ni; i++) {
    if (memcmp(rin[i].p, c->x[i] + s0 * c->xin[i], sizeof(float) * (size_t)(n * c->xin[i])))
      fail("%s: input %d was written to", what, i);
    free(rin[i].mem);
  }
  for (int o = 0; o < no; o++) {
    if (!guards_intact(&rout[o]))
      fail("%s: output %d: a write outside its buffer", what, o);
    memcpy(y[o] + s0 * c->yon[o], rout[o].p, sizeof(float) * (size_t)(n * c->yon[o]));
    free(rout[o].mem);
  }
}

static float **alloc_outputs(Ctx *c) {
  float **y = calloc(16, sizeof *y);
  for (int o = 0; o < c->info->num_outputs; o++)
    y[o] = malloc(sizeof(float) * (size_t)(c->B * c->yon[o]));
  return y;
}

static void free_outputs(Ctx *c, float **y) {
  for (int o = 0; o < c->info->num_outputs; o++)
    free(y[o]);
  free(y);
}

static void compare(Ctx *c, float **ref, float **y, const char *what, bool nan_equal) {
  for (int o = 0; o < c->info->num_outputs; o++) {
    int64_t at;
    if (!same_bits(ref[o], y[o], c->B * c->yon[o], nan_equal, &at))
      fail("%s: output %d ('%s') differs from the reference run at [%lld][%lld]: %.9g vs %.9g",
           what, o, c->info->outputs[o].name, (long long)(at / c->yon[o]),
           (long long)(at % c->yon[o]), ref[o][at], y[o][at]);
  }
}

typedef struct {
  Ctx *c;
  float **y;
} Conc;

static void *conc_main(void *arg) {
  Conc *k = arg;
  for (int rep = 0; rep < 3; rep++)
    run_slice(k->c, 0, k->c->B, rep % 2 ? 4 : 0, k->y, "two threads at once");
  return NULL;
}

/* The matrix of runs, each compared with ref (batch B, 1 thread). */
static void matrix(Ctx *c, float **ref) {
  float **y = alloc_outputs(c);
  char what[64];
  for (int64_t s = 0; s < c->B; s++) { /* each sample alone */
    snprintf(what, sizeof what, "sample %lld alone", (long long)s);
    run_slice(c, s, 1, s % 2 ? 4 : 0, y, what);
  }
  compare(c, ref, y, "every sample alone (batch 1)", false);
  run_slice(c, 0, c->B, 4, y, "batch, 1 thread, misaligned");
  compare(c, ref, y, "batch, 1 thread, buffers 4 bytes off", false);
  c->api->threads(c->m, 2);
  run_slice(c, 0, c->B, 4, y, "batch, 2 threads");
  compare(c, ref, y, "batch, 2 threads, sample-parallel, buffers 4 bytes off", false);
  c->api->batch_parallel(c->m, 0);
  run_slice(c, 0, c->B, 0, y, "batch, 2 threads, not sample-parallel");
  compare(c, ref, y, "batch, 2 threads, every sample on both", false);
  c->api->batch_parallel(c->m, 1);
  /* two host threads on the model at once */
  float **y2 = alloc_outputs(c);
  Conc a = {c, y}, b = {c, y2};
  pthread_t t;
  if (concurrent && pthread_create(&t, NULL, conc_main, &a) == 0) {
    conc_main(&b);
    pthread_join(t, NULL);
    compare(c, ref, y, "two host threads at once (first)", false);
    compare(c, ref, y2, "two host threads at once (second)", false);
  }
  free_outputs(c, y2);
  c->api->threads(c->m, 1);
  free_outputs(c, y);
}

static void *sym(Api *a, const char *name, bool need) {
  void *p = dlsym(a->h, name);
  if (!p && need) {
    fprintf(stderr, "cnn_difftest_run: the .so has no %s\n", name);
    exit(2);
  }
  return p;
}

static void print_info(const cnn_info *info) {
  printf("INFO {\"name\": \"%s\", \"inputs\": [", info->name);
  for (int k = 0; k < 2; k++) {
    int n = k ? info->num_outputs : info->num_inputs;
    const cnn_tensor_desc *d = k ? info->outputs : info->inputs;
    for (int i = 0; i < n; i++) {
      printf("%s{\"name\": \"%s\", \"dims\": [", i ? ", " : "", d[i].name);
      for (int j = 0; j < d[i].rank; j++)
        printf("%s%lld", j ? ", " : "", (long long)d[i].dims[j]);
      printf("]}");
    }
    printf(k ? "]" : "], \"outputs\": [");
  }
  printf(", \"arena_bytes\": %llu}\n", (unsigned long long)info->arena_bytes);
  fflush(stdout);
}

/* The inputs from DIR (suffix "" or ".nonfinite"); NULL if absent. */
static float **read_inputs(Ctx *c, const char *dir, const char *suffix) {
  float **x = calloc(16, sizeof *x);
  for (int i = 0; i < c->info->num_inputs; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/in%d%s.f32", dir, i, suffix);
    if (!(x[i] = read_floats(path, c->B * c->xin[i]))) {
      for (int k = 0; k < i; k++)
        free(x[k]);
      free(x);
      return NULL;
    }
  }
  return x;
}

static void write_outputs(Ctx *c, float **y, const char *dir, const char *suffix) {
  for (int o = 0; o < c->info->num_outputs; o++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/out%d%s.f32", dir, o, suffix);
    write_floats(path, y[o], c->B * c->yon[o]);
  }
}

/* NaN and infinities: 1 and 2 threads agree, the outputs are written. */
static void nonfinite(Ctx *c, const char *dir) {
  float **x = read_inputs(c, dir, ".nonfinite");
  if (!x)
    return;
  float **keep = c->x;
  c->x = x;
  float **y1 = alloc_outputs(c), **y2 = alloc_outputs(c);
  run_slice(c, 0, c->B, 0, y1, "non-finite inputs, 1 thread");
  c->api->threads(c->m, 2);
  run_slice(c, 0, c->B, 4, y2, "non-finite inputs, 2 threads");
  c->api->threads(c->m, 1);
  compare(c, y1, y2, "non-finite inputs: 2 threads against 1", true);
  write_outputs(c, y1, dir, ".nonfinite");
  free_outputs(c, y1);
  free_outputs(c, y2);
  for (int i = 0; i < c->info->num_inputs; i++)
    free(x[i]);
  free(x);
  c->x = keep;
}

int main(int argc, char **argv) {
  const char *so = NULL, *dir = NULL, *weights = NULL;
  int64_t B = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      dir = argv[++i];
    else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
      B = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--weights") && i + 1 < argc)
      weights = argv[++i];
    else if (!strcmp(argv[i], "--no-concurrent"))
      concurrent = false;
    else
      so = argv[i];
  }
  if (!so || !dir || B < 1) {
    fprintf(stderr,
            "usage: cnn_difftest_run SO --dir DIR --batch B [--weights BLOB] [--no-concurrent]\n");
    return 2;
  }
  Api a = {0};
  a.h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!a.h) {
    fprintf(stderr, "cnn_difftest_run: %s\n", dlerror());
    return 2;
  }
  *(void **)&a.info = sym(&a, "cnn_get_info", true);
  *(void **)&a.create = sym(&a, "cnn_create", true);
  *(void **)&a.run = sym(&a, "cnn_run", true);
  *(void **)&a.threads = sym(&a, "cnn_set_num_threads", true);
  *(void **)&a.batch_parallel = sym(&a, "cnn_set_batch_parallel", true);
  *(void **)&a.last_error = sym(&a, "cnn_last_error", true);
  *(void **)&a.destroy = sym(&a, "cnn_destroy", true);
  Ctx c = {.api = &a, .info = a.info(), .B = B};
  print_info(c.info);
  if (c.info->num_inputs > 16 || c.info->num_outputs > 16) {
    fprintf(stderr, "cnn_difftest_run: more than 16 inputs or outputs\n");
    return 2;
  }
  char err[512];
  c.m = a.create(weights, err, sizeof err);
  if (!c.m) {
    fail("cnn_create: %s", err);
    return 0;
  }
  a.threads(c.m, 1);
  c.xin = calloc(16, sizeof *c.xin);
  c.yon = calloc(16, sizeof *c.yon);
  for (int i = 0; i < c.info->num_inputs; i++)
    c.xin[i] = numel(&c.info->inputs[i]);
  for (int o = 0; o < c.info->num_outputs; o++)
    c.yon[o] = numel(&c.info->outputs[o]);
  c.x = read_inputs(&c, dir, "");
  if (!c.x) {
    fprintf(stderr, "cnn_difftest_run: no inputs in %s\n", dir);
    return 2;
  }
  float **ref = alloc_outputs(&c);
  run_slice(&c, 0, B, 0, ref, "reference run");
  write_outputs(&c, ref, dir, "");
  matrix(&c, ref);
  nonfinite(&c, dir);
  printf("DONE %d problems\n", nfail);
  free_outputs(&c, ref);
  for (int i = 0; i < c.info->num_inputs; i++)
    free(c.x[i]);
  free(c.x);
  free(c.xin);
  free(c.yon);
  a.destroy(c.m);
  dlclose(a.h);
  return 0;
}

/*
 * bench_host.c: times cnn_run of a model compiled by cnncc.
 *
 *   bench_host MODEL.so [--threads N] [--batch N] [--runs N] [--warmup N]
 *                       [--input FILE] [--output FILE] [--weights BLOB] [--serve]
 *
 * dlopen()s the model (only runtime/cnn.h is used), creates it, sets the
 * thread count (cnn_set_num_threads), reads the batch-1 input (raw float32
 * NCHW from FILE, or a fixed pseudo-random image), does --warmup untimed runs
 * (default 3), writes the output of the first one to --output, then:
 *
 *   without --serve: times --runs runs (default 20) and prints one line
 *     BENCH result {"engine": "cnncc", "median_ms": ..., "times_ms": [...], ...}
 *   with --serve: prints "BENCH ready {...}" and then answers commands read
 *     from stdin, one per line, so that bench.py can interleave engines:
 *       run K   time K runs, answer "BENCH times t1 t2 ... tK" (ms)
 *       quit    exit (also on end of input)
 *
 * bench/ort_bench.js and bench/torch_bench.py speak the same protocol. Each
 * run is timed alone with CLOCK_MONOTONIC around cnn_run; the host does no
 * other work between runs.
 *
 * --batch N (default 1) runs N copies of the input in one cnn_run; every
 * time reported is then per image (the cnn_run time / N), and the first
 * warm-up checks that all N outputs are bit-identical to the first (a
 * sample's result must not depend on its place in the batch).
 * Exit status: 0, or 1 with a message on stderr.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cnn.h"

typedef const cnn_info *(*get_info_fn)(void);
typedef cnn_model *(*create_fn)(const char *, char *, size_t);
typedef int (*run_fn)(cnn_model *, int64_t, const float *const *, float *const *);
typedef int (*threads_fn)(cnn_model *, int);
typedef const char *(*last_error_fn)(const cnn_model *);
typedef void (*destroy_fn)(cnn_model *);

typedef struct {
  get_info_fn get_info;
  create_fn create;
  run_fn run;
  threads_fn set_threads;
  last_error_fn last_error;
  destroy_fn destroy;
  cnn_model *model;
  float **ins, **outs;
  int64_t batch;
} host;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int64_t numel(const cnn_tensor_desc *t) {
  int64_t n = 1;
  for (int i = 1; i < t->rank; i++)
    n *= t->dims[i];
  return n;
}

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "bench_host: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  exit(1);
}

static void *sym(void *h, const char *name) {
  void *p = dlsym(h, name);
  if (!p)
    die("the model does not export %s", name);
  return p;
}

/* Prints s as a JSON string (the names come from specs; be safe anyway). */
static void json_string(const char *s) {
  putchar('"');
  for (; s && *s; s++) {
    if (*s == '"' || *s == '\\')
      printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      printf("\\u%04x", *s);
    else
      putchar(*s);
  }
  putchar('"');
}

static void timed_runs(host *h, int n, double *ms) {
  for (int r = 0; r < n; r++) {
    double t0 = now_ms();
    int rc = h->run(h->model, h->batch, (const float *const *)h->ins, h->outs);
    ms[r] = (now_ms() - t0) / (double)h->batch;
    if (rc != 0)
      die("cnn_run failed: %s", h->last_error(h->model));
  }
}

static long max_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* The command line. */
typedef struct {
  const char *path, *input, *output, *weights;
  int threads, runs, warmup, serve, batch;
} options;

/* 0, or 1 after printing the usage. */
static int parse_args(int argc, char **argv, options *o) {
  *o = (options){.threads = 1, .runs = 20, .warmup = 3, .batch = 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--threads") == 0 && v)
      o->threads = atoi(v), i++;
    else if (strcmp(a, "--batch") == 0 && v)
      o->batch = atoi(v), i++;
    else if (strcmp(a, "--runs") == 0 && v)
      o->runs = atoi(v), i++;
    else if (strcmp(a, "--warmup") == 0 && v)
      o->warmup = atoi(v), i++;
    else if (strcmp(a, "--input") == 0 && v)
      o->input = v, i++;
    else if (strcmp(a, "--output") == 0 && v)
      o->output = v, i++;
    else if (strcmp(a, "--weights") == 0 && v)
      o->weights = v, i++;
    else if (strcmp(a, "--serve") == 0)
      o->serve = 1;
    else if (a[0] != '-' && !o->path)
      o->path = a;
    else
      o->path = NULL, i = argc;
  }
  if (!o->path || o->runs < 1 || o->warmup < 1 || o->threads < 0 || o->batch < 1) {
    fprintf(stderr, "usage: bench_host MODEL.so [--threads N] [--batch N] [--runs N] "
                    "[--warmup N] [--input FILE] [--output FILE] [--weights BLOB] [--serve]\n");
    return 1;
  }
  return 0;
}

/* dlopen()s the model, creates it and sets its threads; returns the
   dlopen handle. */
static void *open_model(const options *o, host *h) {
  const char *path = o->path;
  char abspath[4096];
  if (!strchr(path, '/'))
    snprintf(abspath, sizeof abspath, "./%s", path), path = abspath;
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!dl)
    die("%s", dlerror());
  h->get_info = (get_info_fn)sym(dl, "cnn_get_info");
  h->create = (create_fn)sym(dl, "cnn_create");
  h->run = (run_fn)sym(dl, "cnn_run");
  h->set_threads = (threads_fn)sym(dl, "cnn_set_num_threads");
  h->last_error = (last_error_fn)sym(dl, "cnn_last_error");
  h->destroy = (destroy_fn)sym(dl, "cnn_destroy");
  if (h->get_info()->abi_version != CNN_ABI_VERSION)
    die("%s: ABI version mismatch", path);
  char err[512];
  h->model = h->create(o->weights, err, sizeof err);
  if (!h->model)
    die("cnn_create: %s", err);
  if (h->set_threads(h->model, o->threads) != 0)
    die("cnn_set_num_threads: %s", h->last_error(h->model));
  return dl;
}

/* The batch: --batch copies of input 0 (from --input, or pseudo-random)
   and of the other inputs (pseudo-random); zeroed outputs. */
static void make_buffers(host *h, const cnn_info *info, const options *o) {
  int batch = o->batch;
  h->batch = batch;
  h->ins = calloc((size_t)info->num_inputs, sizeof *h->ins);
  h->outs = calloc((size_t)info->num_outputs, sizeof *h->outs);
  for (int i = 0; i < info->num_inputs; i++) {
    int64_t n = numel(&info->inputs[i]);
    h->ins[i] = malloc(sizeof(float) * (size_t)(n * batch));
    if (!h->ins[i])
      die("out of memory for a batch of %s", o->path);
    if (o->input && i == 0) {
      FILE *f = fopen(o->input, "rb");
      if (!f || fread(h->ins[i], sizeof(float), (size_t)n, f) != (size_t)n)
        die("cannot read the input from %s", o->input);
      fclose(f);
    } else {
      uint32_t s = 12345u + (uint32_t)i;
      for (int64_t k = 0; k < n; k++) {
        s = s * 1664525u + 1013904223u;
        h->ins[i][k] = (float)((s >> 8) & 0xffff) / 65536.0f * 2.0f - 1.0f;
      }
    }
    for (int b = 1; b < batch; b++)
      memcpy(h->ins[i] + b * n, h->ins[i], sizeof(float) * (size_t)n);
  }
  for (int i = 0; i < info->num_outputs; i++) {
    h->outs[i] = calloc((size_t)(numel(&info->outputs[i]) * batch), sizeof(float));
    if (!h->outs[i])
      die("out of memory for a batch of %s", o->path);
  }
}

/* --warmup untimed runs (their times in ms); checks that every sample of
   the batch gave the same output and writes output 0 to --output.
   Returns the time of the first run. */
static double warm_up(host *h, const cnn_info *info, const options *o, double *ms) {
  timed_runs(h, o->warmup, ms);
  for (int i = 0; i < info->num_outputs; i++) {
    int64_t n = numel(&info->outputs[i]);
    for (int b = 1; b < o->batch; b++)
      if (memcmp(h->outs[i], h->outs[i] + b * n, sizeof(float) * (size_t)n) != 0)
        die("output differs between samples of a batch (%s)", info->outputs[i].name);
  }
  if (o->output) {
    int64_t n = numel(&info->outputs[0]);
    FILE *f = fopen(o->output, "wb");
    if (!f || fwrite(h->outs[0], sizeof(float), (size_t)n, f) != (size_t)n)
      die("cannot write %s", o->output);
    fclose(f);
  }
  return ms[0];
}

/* Everything a table row needs from this engine, as one JSON object on
   one line: "BENCH ready {...}" with --serve, else "BENCH result {...}"
   with the times of --runs runs (ms has room for them). */
static void print_result(host *h, const cnn_info *info, const options *o, double t_load,
                         double first_ms, double *ms) {
  printf(o->serve ? "BENCH ready {" : "BENCH result {");
  printf("\"engine\": \"cnncc\", \"model\": ");
  json_string(info->name);
  printf(", \"compiler\": ");
  json_string(info->compiler);
  printf(", \"threads\": %d, \"batch\": %d, \"macs\": %llu, \"num_params\": %llu, "
         "\"weight_bytes\": %llu, "
         "\"arena_bytes\": %llu, \"load_ms\": %.3f, \"first_run_ms\": %.3f, \"warmup\": %d",
         o->threads, o->batch, (unsigned long long)info->macs, (unsigned long long)info->num_params,
         (unsigned long long)info->weight_bytes, (unsigned long long)info->arena_bytes, t_load,
         first_ms, o->warmup);
  if (!o->serve) {
    int runs = o->runs;
    timed_runs(h, runs, ms);
    printf(", \"runs\": %d, \"times_ms\": [", runs);
    for (int r = 0; r < runs; r++)
      printf(r ? ", %.4f" : "%.4f", ms[r]);
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    printf("], \"median_ms\": %.4f, \"min_ms\": %.4f", ms[runs / 2], ms[0]);
  }
  printf(", \"max_rss_kb\": %ld}\n", max_rss_kb());
  fflush(stdout);
}

/* Answers "run K" and "quit" from stdin (see the top of this file); ms
   holds *cap times and grows as needed. Returns ms. */
static double *serve(host *h, double *ms, int *cap) {
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    int k;
    if (strncmp(line, "quit", 4) == 0)
      break;
    if (sscanf(line, "run %d", &k) != 1 || k < 1)
      die("bad command: %s", line);
    if (k > *cap) {
      *cap = k;
      ms = realloc(ms, sizeof(double) * (size_t)*cap);
    }
    timed_runs(h, k, ms);
    printf("BENCH times");
    for (int r = 0; r < k; r++)
      printf(" %.4f", ms[r]);
    printf("\n");
    fflush(stdout);
  }
  return ms;
}

int main(int argc, char **argv) {
  options o;
  if (parse_args(argc, argv, &o) != 0)
    return 1;
  host h = {0};
  double t_load = now_ms();
  void *dl = open_model(&o, &h);
  const cnn_info *info = h.get_info();
  make_buffers(&h, info, &o);
  t_load = now_ms() - t_load;

  int cap = o.runs > o.warmup ? o.runs : o.warmup;
  double *ms = malloc(sizeof(double) * (size_t)cap);
  double first_ms = warm_up(&h, info, &o, ms);
  print_result(&h, info, &o, t_load, first_ms, ms);
  if (o.serve)
    ms = serve(&h, ms, &cap);

  free(ms);
  for (int i = 0; i < info->num_inputs; i++)
    free(h.ins[i]);
  for (int i = 0; i < info->num_outputs; i++)
    free(h.outs[i]);
  free(h.ins);
  free(h.outs);
  h.destroy(h.model);
  dlclose(dl);
  return 0;
}

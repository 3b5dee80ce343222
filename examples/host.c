/*
 * host.c: a host program that loads any .so made by cnncc.
 *
 *   cnn_host MODEL.so [--input FILE] [--batch N] [--threads N] [--runs N]
 *                     [--weights BLOB] [--output FILE]
 *
 * It dlopen()s the model, prints its cnn_info, runs one input (raw float32
 * NCHW from FILE, or a fixed pseudo-random image), prints the top-5 classes
 * of the first output with their softmax probabilities, and the latency
 * (median of --runs runs). Only the public header runtime/cnn.h is used.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnn.h"

typedef const cnn_info *(*get_info_fn)(void);
typedef cnn_model *(*create_fn)(const char *, char *, size_t);
typedef int (*run_fn)(cnn_model *, int64_t, const float *const *, float *const *);
typedef int (*threads_fn)(cnn_model *, int);
typedef const char *(*last_error_fn)(const cnn_model *);
typedef void (*destroy_fn)(cnn_model *);

static int64_t numel(const cnn_tensor_desc *t) {
  int64_t n = 1;
  for (int i = 1; i < t->rank; i++)
    n *= t->dims[i];
  return n;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void *sym(void *h, const char *name) {
  void *p = dlsym(h, name);
  if (!p) {
    fprintf(stderr, "cnn_host: the model does not export %s\n", name);
    exit(1);
  }
  return p;
}

/* The command line. */
typedef struct {
  const char *path, *input, *weights, *output;
  int64_t batch;
  int threads, runs; /* threads -1: the model's default */
} options;

/* The model's functions, found by name in the .so. */
typedef struct {
  void *h;
  const cnn_info *info;
  create_fn create;
  run_fn run;
  threads_fn set_threads;
  last_error_fn last_error;
  destroy_fn destroy;
} model_api;

static int usage(void) {
  fprintf(stderr, "usage: cnn_host MODEL.so [--input FILE] [--batch N] [--threads N] "
                  "[--runs N] [--weights BLOB] [--output FILE]\n");
  return 1;
}

/* 0, or 1 after printing the usage. */
static int parse_args(int argc, char **argv, options *o) {
  *o = (options){.batch = 1, .threads = -1, .runs = 10};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--input") == 0 && v)
      o->input = v, i++;
    else if (strcmp(a, "--weights") == 0 && v)
      o->weights = v, i++;
    else if (strcmp(a, "--output") == 0 && v)
      o->output = v, i++;
    else if (strcmp(a, "--batch") == 0 && v)
      o->batch = atoll(v), i++;
    else if (strcmp(a, "--threads") == 0 && v)
      o->threads = atoi(v), i++;
    else if (strcmp(a, "--runs") == 0 && v)
      o->runs = atoi(v), i++;
    else if (a[0] != '-' && !o->path)
      o->path = a;
    else
      return usage();
  }
  if (!o->path || o->batch < 1 || o->runs < 1)
    return usage();
  return 0;
}

/* dlopen()s the .so and finds the functions; 0 or 1 with a message. */
static int load(const char *path, model_api *api) {
  char abspath[4096];
  if (!strchr(path, '/'))
    snprintf(abspath, sizeof abspath, "./%s", path), path = abspath;
  api->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!api->h) {
    fprintf(stderr, "cnn_host: %s\n", dlerror());
    return 1;
  }
  get_info_fn get_info = (get_info_fn)sym(api->h, "cnn_get_info");
  api->create = (create_fn)sym(api->h, "cnn_create");
  api->run = (run_fn)sym(api->h, "cnn_run");
  api->set_threads = (threads_fn)sym(api->h, "cnn_set_num_threads");
  api->last_error = (last_error_fn)sym(api->h, "cnn_last_error");
  api->destroy = (destroy_fn)sym(api->h, "cnn_destroy");
  api->info = get_info();
  return 0;
}

static void print_tensor(const char *kind, int i, const cnn_tensor_desc *t) {
  printf("%s %d   %s [", kind, i, t->name);
  for (int k = 0; k < t->rank; k++)
    printf(k ? ", %lld" : "%lld", (long long)t->dims[k]);
  printf("]\n");
}

static void print_info(const cnn_info *info) {
  printf("model      %s (ABI %u)\n", info->name, info->abi_version);
  printf("compiler   %s\n", info->compiler);
  for (int i = 0; i < info->num_inputs; i++)
    print_tensor("input ", i, &info->inputs[i]);
  for (int i = 0; i < info->num_outputs; i++)
    print_tensor("output", i, &info->outputs[i]);
  printf("params     %llu\nMACs       %llu (%.3f G)\nweights    %.1f MB\narena      %.1f MB\n",
         (unsigned long long)info->num_params, (unsigned long long)info->macs, info->macs / 1e9,
         info->weight_bytes / 1048576.0, info->arena_bytes / 1048576.0);
}

/* Input 0 from --input (raw float32), the others (or all) pseudo-random;
   NULL after a message if the file is short. */
static float **make_inputs(const cnn_info *info, const options *o) {
  float **ins = calloc((size_t)info->num_inputs, sizeof *ins);
  for (int i = 0; i < info->num_inputs; i++) {
    int64_t n = numel(&info->inputs[i]) * o->batch;
    ins[i] = malloc(sizeof(float) * (size_t)n);
    if (o->input && i == 0) {
      FILE *f = fopen(o->input, "rb");
      if (!f || fread(ins[i], sizeof(float), (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cnn_host: cannot read %lld floats from %s\n", (long long)n, o->input);
        return NULL;
      }
      fclose(f);
    } else {
      uint32_t s = 12345u + (uint32_t)i;
      for (int64_t k = 0; k < n; k++) {
        s = s * 1664525u + 1013904223u;
        ins[i][k] = (float)((s >> 8) & 0xffff) / 65536.0f * 2.0f - 1.0f;
      }
    }
  }
  return ins;
}

/* A warm-up run, then --runs timed ones; prints the latency. 0, or 1
   after a message. */
static int time_runs(const model_api *api, cnn_model *m, const options *o, float **ins,
                     float **outs) {
  double *ms = malloc(sizeof(double) * (size_t)o->runs);
  int rc = api->run(m, o->batch, (const float *const *)ins, outs); /* warm-up */
  for (int r = 0; rc == 0 && r < o->runs; r++) {
    double t0 = now_ms();
    rc = api->run(m, o->batch, (const float *const *)ins, outs);
    ms[r] = now_ms() - t0;
  }
  if (rc != 0) {
    fprintf(stderr, "cnn_host: cnn_run failed (%d): %s\n", rc, api->last_error(m));
    return 1;
  }
  qsort(ms, (size_t)o->runs, sizeof *ms, cmp_double);
  printf("latency    %.3f ms median of %d runs (batch %lld; min %.3f ms)\n", ms[o->runs / 2],
         o->runs, (long long)o->batch, ms[0]);
  free(ms);
  return 0;
}

/* The 5 best classes of sample 0 of the output t, with their softmax
   probabilities. */
static void print_top5(const cnn_tensor_desc *t, const float *y) {
  int64_t nc = numel(t);
  double mx = -INFINITY, sum = 0;
  for (int64_t k = 0; k < nc; k++)
    mx = y[k] > mx ? y[k] : mx;
  for (int64_t k = 0; k < nc; k++)
    sum += exp(y[k] - mx);
  printf("top-5 of %s (sample 0):\n", t->name);
  char *taken = calloc(nc > 0 ? (size_t)nc : 1, 1);
  for (int r = 0; r < 5 && r < nc; r++) {
    int64_t best = -1;
    for (int64_t k = 0; k < nc; k++)
      if (!taken[k] && (best < 0 || y[k] > y[best]))
        best = k;
    taken[best] = 1;
    printf("  class %5lld  score %10.5f  p %.4f\n", (long long)best, y[best],
           exp(y[best] - mx) / sum);
  }
  free(taken);
}

/* All samples of output 0 to --output (raw float32); 0, or 1 after a
   message. */
static int write_output(const char *path, const float *y, int64_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(y, sizeof(float), (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "cnn_host: cannot write %s\n", path);
    return 1;
  }
  fclose(f);
  return 0;
}

int main(int argc, char **argv) {
  options o;
  model_api api;
  if (parse_args(argc, argv, &o) != 0 || load(o.path, &api) != 0)
    return 1;
  const cnn_info *info = api.info;
  print_info(info);

  char err[512];
  cnn_model *m = api.create(o.weights, err, sizeof err);
  if (!m) {
    fprintf(stderr, "cnn_host: cnn_create: %s\n", err);
    return 1;
  }
  if (o.threads >= 0 && api.set_threads(m, o.threads) != 0) {
    fprintf(stderr, "cnn_host: cnn_set_num_threads: %s\n", api.last_error(m));
    return 1;
  }
  float **ins = make_inputs(info, &o);
  if (!ins)
    return 1;
  float **outs = calloc((size_t)info->num_outputs, sizeof *outs);
  for (int i = 0; i < info->num_outputs; i++)
    outs[i] = calloc((size_t)(numel(&info->outputs[i]) * o.batch), sizeof(float));
  if (time_runs(&api, m, &o, ins, outs) != 0)
    return 1;
  print_top5(&info->outputs[0], outs[0]);
  if (o.output && write_output(o.output, outs[0], numel(&info->outputs[0]) * o.batch) != 0)
    return 1;

  for (int i = 0; i < info->num_inputs; i++)
    free(ins[i]);
  for (int i = 0; i < info->num_outputs; i++)
    free(outs[i]);
  free(ins);
  free(outs);
  api.destroy(m);
  dlclose(api.h);
  return 0;
}

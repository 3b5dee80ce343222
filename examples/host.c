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

int main(int argc, char **argv) {
  const char *path = NULL, *input = NULL, *weights = NULL, *output = NULL;
  int64_t batch = 1;
  int threads = -1, runs = 10;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--input") == 0 && v)
      input = v, i++;
    else if (strcmp(a, "--weights") == 0 && v)
      weights = v, i++;
    else if (strcmp(a, "--output") == 0 && v)
      output = v, i++;
    else if (strcmp(a, "--batch") == 0 && v)
      batch = atoll(v), i++;
    else if (strcmp(a, "--threads") == 0 && v)
      threads = atoi(v), i++;
    else if (strcmp(a, "--runs") == 0 && v)
      runs = atoi(v), i++;
    else if (a[0] != '-' && !path)
      path = a;
    else {
      fprintf(stderr, "usage: cnn_host MODEL.so [--input FILE] [--batch N] [--threads N] "
                      "[--runs N] [--weights BLOB] [--output FILE]\n");
      return 1;
    }
  }
  if (!path || batch < 1 || runs < 1) {
    fprintf(stderr, "usage: cnn_host MODEL.so [--input FILE] [--batch N] [--threads N] "
                    "[--runs N] [--weights BLOB] [--output FILE]\n");
    return 1;
  }
  char abspath[4096];
  if (!strchr(path, '/'))
    snprintf(abspath, sizeof abspath, "./%s", path), path = abspath;
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "cnn_host: %s\n", dlerror());
    return 1;
  }
  get_info_fn get_info = (get_info_fn)sym(h, "cnn_get_info");
  create_fn create = (create_fn)sym(h, "cnn_create");
  run_fn run = (run_fn)sym(h, "cnn_run");
  threads_fn set_threads = (threads_fn)sym(h, "cnn_set_num_threads");
  last_error_fn last_error = (last_error_fn)sym(h, "cnn_last_error");
  destroy_fn destroy = (destroy_fn)sym(h, "cnn_destroy");

  const cnn_info *info = get_info();
  printf("model      %s (ABI %u)\n", info->name, info->abi_version);
  printf("compiler   %s\n", info->compiler);
  for (int i = 0; i < info->num_inputs; i++) {
    const cnn_tensor_desc *t = &info->inputs[i];
    printf("input  %d   %s [", i, t->name);
    for (int k = 0; k < t->rank; k++)
      printf(k ? ", %lld" : "%lld", (long long)t->dims[k]);
    printf("]\n");
  }
  for (int i = 0; i < info->num_outputs; i++) {
    const cnn_tensor_desc *t = &info->outputs[i];
    printf("output %d   %s [", i, t->name);
    for (int k = 0; k < t->rank; k++)
      printf(k ? ", %lld" : "%lld", (long long)t->dims[k]);
    printf("]\n");
  }
  printf("params     %llu\nMACs       %llu (%.3f G)\nweights    %.1f MB\narena      %.1f MB\n",
         (unsigned long long)info->num_params, (unsigned long long)info->macs, info->macs / 1e9,
         info->weight_bytes / 1048576.0, info->arena_bytes / 1048576.0);

  char err[512];
  cnn_model *m = create(weights, err, sizeof err);
  if (!m) {
    fprintf(stderr, "cnn_host: cnn_create: %s\n", err);
    return 1;
  }
  if (threads >= 0 && set_threads(m, threads) != 0) {
    fprintf(stderr, "cnn_host: cnn_set_num_threads: %s\n", last_error(m));
    return 1;
  }

  float **ins = calloc((size_t)info->num_inputs, sizeof *ins);
  float **outs = calloc((size_t)info->num_outputs, sizeof *outs);
  for (int i = 0; i < info->num_inputs; i++) {
    int64_t n = numel(&info->inputs[i]) * batch;
    ins[i] = malloc(sizeof(float) * (size_t)n);
    if (input && i == 0) {
      FILE *f = fopen(input, "rb");
      if (!f || fread(ins[i], sizeof(float), (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cnn_host: cannot read %lld floats from %s\n", (long long)n, input);
        return 1;
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
  for (int i = 0; i < info->num_outputs; i++)
    outs[i] = calloc((size_t)(numel(&info->outputs[i]) * batch), sizeof(float));

  double *ms = malloc(sizeof(double) * (size_t)runs);
  int rc = run(m, batch, (const float *const *)ins, outs); /* warm-up */
  for (int r = 0; rc == 0 && r < runs; r++) {
    double t0 = now_ms();
    rc = run(m, batch, (const float *const *)ins, outs);
    ms[r] = now_ms() - t0;
  }
  if (rc != 0) {
    fprintf(stderr, "cnn_host: cnn_run failed (%d): %s\n", rc, last_error(m));
    return 1;
  }
  qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
  printf("latency    %.3f ms median of %d runs (batch %lld; min %.3f ms)\n", ms[runs / 2], runs,
         (long long)batch, ms[0]);

  const cnn_tensor_desc *o0 = &info->outputs[0];
  int64_t nc = numel(o0);
  const float *y = outs[0];
  double mx = -INFINITY, sum = 0;
  for (int64_t k = 0; k < nc; k++)
    mx = y[k] > mx ? y[k] : mx;
  for (int64_t k = 0; k < nc; k++)
    sum += exp(y[k] - mx);
  printf("top-5 of %s (sample 0):\n", o0->name);
  char *taken = calloc((size_t)nc, 1);
  for (int t = 0; t < 5 && t < nc; t++) {
    int64_t best = -1;
    for (int64_t k = 0; k < nc; k++)
      if (!taken[k] && (best < 0 || y[k] > y[best]))
        best = k;
    taken[best] = 1;
    printf("  class %5lld  score %10.5f  p %.4f\n", (long long)best, y[best],
           exp(y[best] - mx) / sum);
  }
  if (output) {
    FILE *f = fopen(output, "wb");
    if (!f || fwrite(outs[0], sizeof(float), (size_t)(nc * batch), f) != (size_t)(nc * batch)) {
      fprintf(stderr, "cnn_host: cannot write %s\n", output);
      return 1;
    }
    fclose(f);
  }
  free(taken);
  free(ms);
  for (int i = 0; i < info->num_inputs; i++)
    free(ins[i]);
  for (int i = 0; i < info->num_outputs; i++)
    free(outs[i]);
  free(ins);
  free(outs);
  destroy(m);
  dlclose(h);
  return 0;
}

/*
 * leak_host.c: N create/run/destroy cycles of a model, for valgrind.
 *
 *   leak_host MODEL.so [N] [WEIGHTS]
 *
 * Uses only runtime/cnn.h through dlopen, like any host. Each cycle creates
 * a model (embedded weights, or WEIGHTS mapped), sets 1 or 2 threads and
 * sample parallelism on or off, turns profiling on (and off again, but in
 * the first cycle, whose table goes to stderr), runs a batch of 2, checks
 * the outputs are finite, makes bad cnn_run and cnn_set_* calls, and
 * destroys it; then a failed create. Run under valgrind (ctest
 * valgrind_runtime), every byte the runtime allocates must be freed, every
 * read initialized and in bounds. Exit 0 on success, 1 on a wrong result.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"

#define LOAD(h, var, name)                                                                         \
  do {                                                                                             \
    *(void **)&var = dlsym(h, name);                                                               \
    if (!var) {                                                                                    \
      fprintf(stderr, "leak_host: %s missing\n", name);                                            \
      return 1;                                                                                    \
    }                                                                                              \
  } while (0)

static int64_t numel(const cnn_tensor_desc *t) {
  int64_t n = 1;
  for (int i = 1; i < t->rank; i++)
    n *= t->dims[i];
  return n;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: leak_host MODEL.so [N] [WEIGHTS]\n");
    return 2;
  }
  int cycles = argc > 2 ? atoi(argv[2]) : 100;
  const char *weights = argc > 3 ? argv[3] : NULL;
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "leak_host: %s\n", dlerror());
    return 1;
  }
  const cnn_info *(*info_fn)(void);
  cnn_model *(*create)(const char *, char *, size_t);
  int (*run)(cnn_model *, int64_t, const float *const *, float *const *);
  int (*threads)(cnn_model *, int);
  int (*profile)(cnn_model *, const char *);
  int (*batch_parallel)(cnn_model *, int);
  const char *(*last_error)(const cnn_model *);
  void (*destroy)(cnn_model *);
  LOAD(h, info_fn, "cnn_get_info");
  LOAD(h, create, "cnn_create");
  LOAD(h, run, "cnn_run");
  LOAD(h, threads, "cnn_set_num_threads");
  LOAD(h, profile, "cnn_set_profile");
  LOAD(h, batch_parallel, "cnn_set_batch_parallel");
  LOAD(h, last_error, "cnn_last_error");
  LOAD(h, destroy, "cnn_destroy");

  const cnn_info *info = info_fn();
  const int64_t batch = 2;
  float *in[8] = {0}, *out[8] = {0};
  for (int i = 0; i < info->num_inputs && i < 8; i++) {
    int64_t n = numel(&info->inputs[i]) * batch;
    in[i] = malloc(sizeof(float) * (size_t)n);
    for (int64_t k = 0; k < n; k++)
      in[i][k] = (float)((k * 7919 + i * 31) % 2001) / 1000.0f - 1.0f;
  }
  for (int i = 0; i < info->num_outputs && i < 8; i++)
    out[i] = malloc(sizeof(float) * (size_t)(numel(&info->outputs[i]) * batch));

  char err[256];
  int bad = 0;
  for (int c = 0; c < cycles && !bad; c++) {
    cnn_model *m = create(weights, err, sizeof err);
    if (!m) {
      fprintf(stderr, "leak_host: cnn_create: %s\n", err);
      return 1;
    }
    if (threads(m, 1 + c % 2) != CNN_OK || batch_parallel(m, c / 2 % 2) != CNN_OK ||
        profile(m, "on") != CNN_OK || profile(m, c == 0 ? "on" : "off") != CNN_OK ||
        run(m, batch, (const float *const *)in, out) != CNN_OK) {
      fprintf(stderr, "leak_host: cycle %d: %s\n", c, last_error(m));
      bad = 1;
    }
    for (int i = 0; i < info->num_outputs && !bad; i++)
      for (int64_t k = 0; k < numel(&info->outputs[i]) * batch; k++)
        if (!isfinite(out[i][k])) {
          fprintf(stderr, "leak_host: output %d[%lld] is %g\n", i, (long long)k, (double)out[i][k]);
          bad = 1;
          break;
        }
    /* the error paths must not leak either */
    if (run(m, 0, (const float *const *)in, out) != CNN_EINVAL ||
        run(m, batch, NULL, out) != CNN_EINVAL || threads(m, -1) != CNN_EINVAL ||
        profile(m, "sometimes") != CNN_EINVAL || batch_parallel(m, 2) != CNN_EINVAL)
      bad = 1;
    destroy(m);
  }
  if (create("/nonexistent/cnncc.weights", err, sizeof err) != NULL)
    bad = 1;
  for (int i = 0; i < 8; i++) {
    free(in[i]);
    free(out[i]);
  }
  if (!bad)
    printf("leak_host: %d cycles of %s\n", cycles, info->name);
  dlclose(h); /* info points into the library */
  return bad;
}

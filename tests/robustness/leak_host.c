/*
 * leak_host.c: N create/run/destroy cycles of a model, for valgrind and
 * for another architecture under qemu.
 *
 *   leak_host MODEL.so [N] [WEIGHTS [FOREIGN]] [--heap]
 *
 * Uses only runtime/cnn.h through dlopen and libc, like any host (so it
 * cross-builds with the target's gcc alone). Each cycle creates a model
 * (embedded weights, or WEIGHTS), sets 1 or 2 threads and sample
 * parallelism on or off, turns profiling on (and off again, but in the
 * first cycle, whose table goes to stderr), runs a batch of 2 (in odd
 * cycles on input and output buffers 4 bytes off a 64-byte boundary),
 * checks the outputs are finite and the same bits as the first cycle's
 * (determinism across thread counts, sample parallelism and alignment),
 * makes bad cnn_run and cnn_set_* calls, and destroys it; then a failed
 * create, and (with FOREIGN: another network's weights file) a refused one.
 * Under valgrind (ctest valgrind_runtime) every byte the runtime allocates
 * must be freed, every read initialized and in bounds. Where valgrind
 * cannot go (aarch64 under qemu: ctest aarch64_abi), --heap compares the C
 * library's count of bytes in use (mallinfo2: malloc'd and mmapped blocks)
 * half way and after the last cycle: it must not grow. (The C library's own
 * caches grow over the first ~20 cycles here, by 9 KB, then stay flat:
 * give N >= 100.) Exit 0 on success, 1 on a wrong result.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <math.h>
#include <stdbool.h>
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

/* Bytes the C library has handed out and not had back. */
static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

/* n floats at `off` bytes past a 64-byte boundary; *base is what to free. */
static float *buffer_at(int64_t n, size_t off, void **base) {
  *base = aligned_alloc(64, ((size_t)n * sizeof(float) + off + 63) & ~(size_t)63);
  return *base ? (float *)((char *)*base + off) : NULL;
}

int main(int argc, char **argv) {
  bool heap = argc > 1 && !strcmp(argv[argc - 1], "--heap");
  argc -= heap;
  if (argc < 2) {
    fprintf(stderr, "usage: leak_host MODEL.so [N] [WEIGHTS [FOREIGN]] [--heap]\n");
    return 2;
  }
  int cycles = argc > 2 ? atoi(argv[2]) : 100;
  const char *weights = argc > 3 ? argv[3] : NULL;
  const char *foreign = argc > 4 ? argv[4] : NULL;
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
  /* [0]: 64-byte aligned, [1]: 4 bytes off; first: cycle 0's outputs */
  float *in[2][8] = {{0}}, *out[2][8] = {{0}}, *first[8] = {0};
  void *bases[32] = {0};
  int nb = 0;
  for (int a = 0; a < 2; a++) {
    for (int i = 0; i < info->num_inputs && i < 8; i++) {
      int64_t n = numel(&info->inputs[i]) * batch;
      in[a][i] = buffer_at(n, 4 * a, &bases[nb++]);
      for (int64_t k = 0; k < n; k++)
        in[a][i][k] = (float)((k * 7919 + i * 31) % 2001) / 1000.0f - 1.0f;
    }
    for (int i = 0; i < info->num_outputs && i < 8; i++)
      out[a][i] = buffer_at(numel(&info->outputs[i]) * batch, 4 * a, &bases[nb++]);
  }
  for (int i = 0; i < info->num_outputs && i < 8; i++)
    first[i] = malloc(sizeof(float) * (size_t)(numel(&info->outputs[i]) * batch));
  size_t heap_base = 0;
  char err[256];
  int bad = 0;
  for (int c = 0; c < cycles && !bad; c++) {
    if (c == cycles / 2)
      heap_base = heap_in_use();
    cnn_model *m = create(weights, err, sizeof err);
    if (!m) {
      fprintf(stderr, "leak_host: cnn_create: %s\n", err);
      return 1;
    }
    float **o = out[c % 2];
    if (threads(m, 1 + c % 2) != CNN_OK || batch_parallel(m, c / 2 % 2) != CNN_OK ||
        profile(m, "on") != CNN_OK || profile(m, c == 0 ? "on" : "off") != CNN_OK ||
        run(m, batch, (const float *const *)in[c % 2], o) != CNN_OK) {
      fprintf(stderr, "leak_host: cycle %d: %s\n", c, last_error(m));
      bad = 1;
    }
    for (int i = 0; i < info->num_outputs && i < 8 && !bad; i++) {
      int64_t n = numel(&info->outputs[i]) * batch;
      for (int64_t k = 0; k < n && !bad; k++)
        if (!isfinite(o[i][k])) {
          fprintf(stderr, "leak_host: output %d[%lld] is %g\n", i, (long long)k, (double)o[i][k]);
          bad = 1;
        }
      if (c == 0)
        memcpy(first[i], o[i], sizeof(float) * (size_t)n);
      else if (!bad && memcmp(first[i], o[i], sizeof(float) * (size_t)n)) {
        fprintf(stderr,
                "leak_host: cycle %d (%d threads, sample parallelism %s, buffers %s): output "
                "%d differs from cycle 0's bits\n",
                c, 1 + c % 2, c / 2 % 2 ? "on" : "off", c % 2 ? "4 bytes off" : "aligned", i);
        bad = 1;
      }
    }
    /* the error paths must not leak either */
    if (run(m, 0, (const float *const *)in[0], out[0]) != CNN_EINVAL ||
        run(m, batch, NULL, out[0]) != CNN_EINVAL || threads(m, -1) != CNN_EINVAL ||
        profile(m, "sometimes") != CNN_EINVAL || batch_parallel(m, 2) != CNN_EINVAL) {
      fprintf(stderr, "leak_host: cycle %d: a bad call was not refused with CNN_EINVAL\n", c);
      bad = 1;
    }
    destroy(m);
  }
  if (heap && !bad) {
    size_t now = heap_in_use();
    printf("leak_host: heap in use after cycle %d: %zu bytes, after cycle %d: %zu\n", cycles / 2,
           heap_base, cycles, now);
    if (now > heap_base) {
      fprintf(stderr, "leak_host: %zu bytes more in use after %d more cycles\n", now - heap_base,
              cycles - cycles / 2);
      bad = 1;
    }
  }
  if (create("/nonexistent/cnncc.weights", err, sizeof err) != NULL)
    bad = 1;
  if (foreign && create(foreign, err, sizeof err) != NULL) {
    fprintf(stderr, "leak_host: the weights of another network were accepted: %s\n", foreign);
    bad = 1;
  }
  for (int k = 0; k < nb; k++)
    free(bases[k]);
  for (int i = 0; i < 8; i++)
    free(first[i]);
  if (!bad)
    printf("leak_host: %d cycles of %s\n", cycles, info->name);
  dlclose(h); /* info points into the library */
  return bad;
}

/*
 * cross_runner.c: runs a .so of another architecture for test_e2e.c, under
 * an emulator (qemu-aarch64-static; docs/targets.md). Plain C and libc
 * only, so that it cross-builds with the target's gcc and nothing else.
 *
 *   cross_runner MODEL.so INPUT.bin BATCH THREADS OUTPUT.bin
 *
 * Loads the model through runtime/cnn.h with dlopen, prints its cnn_info
 * as "key=value" lines (name, num_params, compiler, input and output
 * names and dims), reads BATCH samples of float32 from INPUT.bin, runs
 * them with THREADS threads (cnn_set_num_threads), and writes the outputs
 * to OUTPUT.bin, raw float32. test_e2e compares them with PyTorch's. Exit
 * 0 on success; 1 with a message on stderr otherwise.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cnn.h"

static int fail(const char *what, const char *detail) {
  fprintf(stderr, "cross_runner: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  return 1;
}

static int64_t numel(const cnn_tensor_desc *t) {
  int64_t n = 1;
  for (int i = 1; i < t->rank; i++)
    n *= t->dims[i];
  return n;
}

static void print_desc(const char *key, const cnn_tensor_desc *t) {
  printf("%s=%s %d", key, t->name, (int)t->rank);
  for (int i = 0; i < t->rank; i++)
    printf(" %lld", (long long)t->dims[i]);
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc != 6)
    return fail("usage: cross_runner MODEL.so INPUT.bin BATCH THREADS OUTPUT.bin", NULL);
  int batch = atoi(argv[3]), threads = atoi(argv[4]);
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h)
    return fail("dlopen", dlerror());
  const cnn_info *(*get_info)(void);
  cnn_model *(*create)(const char *, char *, size_t);
  int (*run)(cnn_model *, int64_t, const float *const *, float *const *);
  int (*set_threads)(cnn_model *, int);
  const char *(*last_error)(const cnn_model *);
  void (*destroy)(cnn_model *);
  *(void **)&get_info = dlsym(h, "cnn_get_info");
  *(void **)&create = dlsym(h, "cnn_create");
  *(void **)&run = dlsym(h, "cnn_run");
  *(void **)&set_threads = dlsym(h, "cnn_set_num_threads");
  *(void **)&last_error = dlsym(h, "cnn_last_error");
  *(void **)&destroy = dlsym(h, "cnn_destroy");
  if (!get_info || !create || !run || !set_threads || !last_error || !destroy)
    return fail("the .so does not export the cnn.h functions", NULL);
  const cnn_info *info = get_info();
  if (info->num_inputs != 1 || info->num_outputs != 1)
    return fail("expected one input and one output", NULL);
  printf("abi_version=%u\nname=%s\nnum_params=%llu\ncompiler=%s\n", info->abi_version, info->name,
         (unsigned long long)info->num_params, info->compiler);
  print_desc("input", &info->inputs[0]);
  print_desc("output", &info->outputs[0]);

  int64_t in_n = numel(&info->inputs[0]) * batch, out_n = numel(&info->outputs[0]) * batch;
  float *x = malloc((size_t)in_n * sizeof *x), *y = malloc((size_t)out_n * sizeof *y);
  FILE *f = fopen(argv[2], "rb");
  if (!x || !y || !f)
    return fail("cannot read", argv[2]);
  size_t got = fread(x, sizeof *x, (size_t)in_n, f);
  fclose(f);
  if (got != (size_t)in_n)
    return fail("input file too short", argv[2]);
  char err[256] = "";
  cnn_model *m = create(NULL, err, sizeof err);
  if (!m)
    return fail("cnn_create", err);
  if (set_threads(m, threads) != CNN_OK)
    return fail("cnn_set_num_threads", last_error(m));
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rc = run(m, batch, (const float *const[]){x}, (float *const[]){y});
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (rc != CNN_OK)
    return fail("cnn_run", last_error(m));
  printf("run_seconds=%.3f\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
  f = fopen(argv[5], "wb");
  if (!f || fwrite(y, sizeof *y, (size_t)out_n, f) != (size_t)out_n || fclose(f) != 0)
    return fail("cannot write", argv[5]);
  destroy(m);
  dlclose(h);
  free(x);
  free(y);
  return 0;
}

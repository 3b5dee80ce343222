/*
 * alloc_faults.c: cnn_create when an allocation fails (docs/robustness.md,
 * "Faults").
 *
 *   alloc_faults MODEL.so [WEIGHTS]
 *
 * This program defines malloc, calloc, realloc, free, posix_memalign and
 * aligned_alloc itself (on glibc's __libc_* functions), so the runtime in
 * the .so it loads allocates through them. For k = 1, 2, ...: the k-th
 * allocation of cnn_create fails (and, in a second round, every allocation
 * from the k-th on). Each cnn_create must either return NULL with a
 * message, or a model that computes the same bits as one created without
 * a failure; and once cnn_destroy has run (or cnn_create returned NULL),
 * every block cnn_create allocated must have been freed. The rounds end
 * when cnn_create no longer reaches the k-th allocation. With one pool
 * thread (CNN_NUM_THREADS=1, set here) so that the C library's own
 * per-thread allocations do not count; a last run with two threads checks
 * only "NULL and a message, or a working model".
 * Exit 0 when all is as it should be, 1 otherwise.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

/* ------------------------------------------------------------ the hooks */
static atomic_bool armed;  /* counting (only around cnn_create) */
static atomic_long count;  /* allocations while armed */
static long fail_at;       /* the first failing one (1-based) */
static bool fail_after;    /* and every one after it */
static atomic_long failed; /* failures injected */
#define TRACK 4096
static void *live[TRACK]; /* blocks allocated while armed, not yet freed */
static atomic_flag live_lock = ATOMIC_FLAG_INIT;

static bool inject(void) {
  if (!atomic_load(&armed))
    return false;
  long n = atomic_fetch_add(&count, 1) + 1;
  if (n == fail_at || (fail_after && n > fail_at)) {
    atomic_fetch_add(&failed, 1);
    errno = ENOMEM; /* as the C library's own allocators do */
    return true;
  }
  return false;
}

static void track(void *p, void *old) {
  while (atomic_flag_test_and_set(&live_lock))
    ;
  for (int i = 0; i < TRACK; i++)
    if (old && live[i] == old) {
      live[i] = NULL;
      break;
    }
  if (p && atomic_load(&armed))
    for (int i = 0; i < TRACK; i++)
      if (!live[i]) {
        live[i] = p;
        break;
      }
  atomic_flag_clear(&live_lock);
}

void *malloc(size_t n) {
  if (inject())
    return NULL;
  void *p = __libc_malloc(n);
  track(p, NULL);
  return p;
}

void *calloc(size_t a, size_t b) {
  if (inject())
    return NULL;
  void *p = __libc_calloc(a, b);
  track(p, NULL);
  return p;
}

void *realloc(void *q, size_t n) {
  if (inject())
    return NULL;
  void *p = __libc_realloc(q, n);
  if (p)
    track(p, q);
  return p;
}

int posix_memalign(void **out, size_t align, size_t n) {
  if (inject())
    return ENOMEM;
  void *p = __libc_memalign(align, n);
  if (!p)
    return ENOMEM;
  track(p, NULL);
  *out = p;
  return 0;
}

void *aligned_alloc(size_t align, size_t n) {
  if (inject())
    return NULL;
  void *p = __libc_memalign(align, n);
  track(p, NULL);
  return p;
}

void free(void *p) {
  if (!p)
    return;
  track(NULL, p);
  __libc_free(p);
}

/* ------------------------------------------------------------ the test */
typedef struct {
  cnn_model *(*create)(const char *, char *, size_t);
  int (*run)(cnn_model *, int64_t, const float *const *, float *const *);
  void (*destroy)(cnn_model *);
  const cnn_info *info;
} Api;

static float *in[8], *out[8], *ref[8];
static int64_t out_n[8];

static int64_t numel(const cnn_tensor_desc *d) {
  int64_t n = 1;
  for (int i = 1; i < d->rank; i++)
    n *= d->dims[i];
  return n;
}

static int live_blocks(void) {
  int n = 0;
  for (int i = 0; i < TRACK; i++)
    n += live[i] != NULL;
  return n;
}

/* One cnn_create with the k-th allocation failing; 1 on a problem, and
 *reached = whether cnn_create made at least k allocations. */
static int one(const Api *a, const char *weights, long k, bool after, bool check_leaks,
               bool *reached) {
  char err[512] = "";
  fail_at = k;
  fail_after = after;
  atomic_store(&count, 0);
  atomic_store(&failed, 0);
  atomic_store(&armed, true);
  cnn_model *m = a->create(weights, err, sizeof err);
  atomic_store(&armed, false);
  *reached = atomic_load(&count) >= k;
  int bad = 0;
  if (!m && !err[0]) {
    fprintf(stderr, "alloc_faults: allocation %ld failing: cnn_create returned NULL, no message\n",
            k);
    bad = 1;
  }
  if (m) {
    if (a->run(m, 1, (const float *const *)in, out) != CNN_OK) {
      fprintf(stderr, "alloc_faults: allocation %ld failing: cnn_run failed\n", k);
      bad = 1;
    }
    for (int o = 0; o < a->info->num_outputs; o++)
      if (memcmp(out[o], ref[o], sizeof(float) * out_n[o]) != 0) {
        fprintf(stderr, "alloc_faults: allocation %ld failing: output %d differs\n", k, o);
        bad = 1;
      }
    a->destroy(m);
  }
  if (check_leaks && live_blocks()) {
    fprintf(stderr, "alloc_faults: allocation %ld failing%s: %d blocks of cnn_create leaked\n", k,
            after ? " (and all after)" : "", live_blocks());
    bad = 1;
    memset(live, 0, sizeof live);
  }
  if (k <= 3 || bad)
    printf("  allocation %ld%s fails: %s%s\n", k, after ? " and all after" : "",
           m ? "a working model" : "NULL: ", m ? "" : err);
  return bad;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: alloc_faults MODEL.so [WEIGHTS]\n");
    return 2;
  }
  const char *weights = argc > 2 ? argv[2] : NULL;
  setenv("CNN_NUM_THREADS", "1", 1);
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "alloc_faults: %s\n", dlerror());
    return 2;
  }
  Api a;
  *(void **)&a.create = dlsym(h, "cnn_create");
  *(void **)&a.run = dlsym(h, "cnn_run");
  *(void **)&a.destroy = dlsym(h, "cnn_destroy");
  const cnn_info *(*get_info)(void);
  *(void **)&get_info = dlsym(h, "cnn_get_info");
  a.info = get_info();
  for (int i = 0; i < a.info->num_inputs && i < 8; i++) {
    int64_t n = numel(&a.info->inputs[i]);
    in[i] = __libc_malloc(sizeof(float) * n);
    for (int64_t j = 0; j < n; j++)
      in[i][j] = (float)((j * 37 + i) % 17) / 8.0f - 1.0f;
  }
  for (int o = 0; o < a.info->num_outputs && o < 8; o++) {
    out_n[o] = numel(&a.info->outputs[o]);
    out[o] = __libc_malloc(sizeof(float) * out_n[o]);
    ref[o] = __libc_malloc(sizeof(float) * out_n[o]);
  }
  char err[512];
  cnn_model *m = a.create(weights, err, sizeof err);
  if (!m || a.run(m, 1, (const float *const *)in, ref) != CNN_OK) {
    fprintf(stderr, "alloc_faults: the model does not run: %s\n", m ? "cnn_run" : err);
    return 1;
  }
  a.destroy(m);

  int bad = 0;
  long rounds = 0;
  for (int after = 0; after < 2; after++) {
    bool reached = true;
    long k;
    for (k = 1; reached && k < 10000; k++, rounds++)
      bad |= one(&a, weights, k, after, true, &reached);
    printf("alloc_faults: %s: %ld allocations in cnn_create, each made to fail%s\n", argv[1], k - 2,
           after ? " with all after it" : "");
  }
  setenv("CNN_NUM_THREADS", "2", 1);
  bool reached = true;
  for (long k = 1; reached && k < 10000; k++, rounds++)
    bad |= one(&a, weights, k, false, false, &reached);
  printf("alloc_faults: %ld cnn_create calls with a failing allocation: %s\n", rounds,
         bad ? "FAILED" : "NULL with a message or a working model, nothing leaked");
  dlclose(h);
  return bad;
}

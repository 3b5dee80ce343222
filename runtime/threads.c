/*
 * threads.c: the persistent thread pool behind cnnrt_parallel_for.
 *
 * Each model owns one pool (no global state): nthreads - 1 worker threads
 * plus the calling thread, which always takes part. A launch splits [0, n)
 * into nthreads static contiguous chunks (chunk i = [n*i/T, n*(i+1)/T)),
 * publishes the job by bumping a generation counter, and then every thread,
 * the caller first, claims chunks from an atomic counter until none is left;
 * the caller waits for the last one to finish. The layers of a CNN are
 * regular, so equal chunks balance well; claiming (rather than chunk i
 * belonging to thread i) only matters on a busy machine, where a worker
 * that is not scheduled in time no longer holds everyone up. The chunk
 * boundaries never change, so results are identical for any schedule.
 *
 * Waiting is a brief spin (kernels follow each other within microseconds
 * during a forward pass) and then a condition-variable sleep, so idle pools
 * cost nothing. Workers block all signals: the host's signal handling is not
 * disturbed by threads it did not create.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cnnrt.h"

#define CNNRT_MAX_THREADS 1024
#define CNNRT_SPIN 20000 /* pause iterations before sleeping (~0.1-1 ms) */

typedef struct {
  cnnrt_ctx *ctx;
  int index;
} Worker;

struct cnnrt_ctx {
  int nthreads; /* including the caller */
  double *prof_ms;      /* per layer, NULL unless profiling */
  double *prof_min;     /* fastest call per layer (a busy machine's noise) */
  int64_t *prof_calls;
  pthread_t *threads;
  Worker *workers;
  pthread_mutex_t mu;
  pthread_cond_t wake, done_cv;
  /* The current job. fn/ptrs/n are written before `next` is reset
     (release) and read after a chunk is claimed from it (acquire). */
  cnnrt_kernel_fn fn;
  void *const *ptrs;
  int64_t n;
  atomic_int next;              /* next unclaimed chunk */
  atomic_int done;              /* chunks finished */
  atomic_uint_fast64_t gen;     /* bumped per launch: wakes the workers */
  atomic_bool stop;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Claims and runs chunks until none is left. Chunk i is always the same
   range, whoever runs it, so results do not depend on the schedule; a
   worker that wakes late (descheduled on a busy machine) simply finds
   the work done by the others. */
static void run_chunks(cnnrt_ctx *c) {
  int t = c->nthreads;
  for (;;) {
    int i = atomic_fetch_add_explicit(&c->next, 1, memory_order_acq_rel);
    if (i >= t)
      return;
    int64_t n = c->n;
    int64_t lo = n * i / t, hi = n * (i + 1) / t;
    if (lo < hi)
      c->fn(c->ptrs, lo, hi);
    if (atomic_fetch_add_explicit(&c->done, 1, memory_order_acq_rel) == t - 1) {
      pthread_mutex_lock(&c->mu);
      pthread_cond_signal(&c->done_cv);
      pthread_mutex_unlock(&c->mu);
    }
  }
}

static void *worker_main(void *arg) {
  Worker *w = arg;
  cnnrt_ctx *c = w->ctx;
  uint_fast64_t seen = 0;
  for (;;) {
    uint_fast64_t g = atomic_load_explicit(&c->gen, memory_order_acquire);
    for (int s = 0; g == seen && s < CNNRT_SPIN; s++) {
      cpu_relax();
      g = atomic_load_explicit(&c->gen, memory_order_acquire);
    }
    if (g == seen) {
      pthread_mutex_lock(&c->mu);
      while ((g = atomic_load_explicit(&c->gen, memory_order_acquire)) == seen)
        pthread_cond_wait(&c->wake, &c->mu);
      pthread_mutex_unlock(&c->mu);
    }
    seen = g;
    if (atomic_load_explicit(&c->stop, memory_order_acquire))
      return NULL;
    run_chunks(c);
  }
}

void cnnrt_parallel_for(cnnrt_ctx *c, cnnrt_kernel_fn fn, void *const *ptrs,
                        int64_t n) {
  if (n <= 0)
    return;
  if (!c || c->nthreads <= 1 || n == 1) {
    fn(ptrs, 0, n);
    return;
  }
  /* The previous launch has fully finished (done == nthreads), so no
     thread holds a chunk: the job can be replaced. */
  c->fn = fn;
  c->ptrs = ptrs;
  c->n = n;
  atomic_store_explicit(&c->done, 0, memory_order_relaxed);
  atomic_store_explicit(&c->next, 0, memory_order_release);
  pthread_mutex_lock(&c->mu);
  atomic_fetch_add_explicit(&c->gen, 1, memory_order_release);
  pthread_cond_broadcast(&c->wake);
  pthread_mutex_unlock(&c->mu);

  run_chunks(c);

  int t = c->nthreads;
  for (int s = 0; s < CNNRT_SPIN; s++) {
    if (atomic_load_explicit(&c->done, memory_order_acquire) == t)
      return;
    cpu_relax();
  }
  pthread_mutex_lock(&c->mu);
  while (atomic_load_explicit(&c->done, memory_order_acquire) != t)
    pthread_cond_wait(&c->done_cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void cnnrt_launch(cnnrt_ctx *c, cnnrt_kernel_fn fn, void *const *ptrs, int64_t n,
                  int32_t layer) {
  if (!c || !c->prof_ms || layer < 0 || layer >= cnnrt_num_layers) {
    cnnrt_parallel_for(c, fn, ptrs, n);
    return;
  }
  double t0 = now_ms();
  cnnrt_parallel_for(c, fn, ptrs, n);
  double dt = now_ms() - t0;
  c->prof_ms[layer] += dt;
  if (c->prof_calls[layer] == 0 || dt < c->prof_min[layer])
    c->prof_min[layer] = dt;
  c->prof_calls[layer]++;
}

static void print_profile(const cnnrt_ctx *c) {
  int nl = cnnrt_num_layers;
  int64_t runs = 0;
  for (int i = 0; i < nl; i++)
    if (c->prof_calls[i] > runs)
      runs = c->prof_calls[i];
  if (runs == 0)
    return;
  double total = 0, tmin = 0, tflop = 0;
  fprintf(stderr, "cnn profile: %s, %d thread%s, %lld sample run%s (ms per sample)\n",
          cnnrt_info.name, c->nthreads, c->nthreads == 1 ? "" : "s", (long long)runs,
          runs == 1 ? "" : "s");
  fprintf(stderr, "%4s  %-44s %-22s %9s %6s %9s %9s\n", "#", "layer", "op", "ms(mean)", "%",
          "ms(min)", "GFLOP/s");
  for (int i = 0; i < nl; i++) {
    total += c->prof_ms[i] / (double)runs;
    tmin += c->prof_min[i];
  }
  for (int i = 0; i < nl; i++) {
    const char *nm = cnnrt_layer_names[i], *tab = strchr(nm, '\t');
    int nlen = tab ? (int)(tab - nm) : (int)strlen(nm);
    double ms = c->prof_ms[i] / (double)runs, mn = c->prof_min[i];
    double gf = mn > 0 ? (double)cnnrt_layer_flops[i] / (mn * 1e6) : 0;
    tflop += (double)cnnrt_layer_flops[i];
    fprintf(stderr, "%4d  %-44.*s %-22s %9.3f %6.1f %9.3f %9.1f\n", i, nlen > 44 ? 44 : nlen,
            nm, tab ? tab + 1 : "", ms, total > 0 ? 100 * ms / total : 0, mn, gf);
  }
  fprintf(stderr, "      %-44s %-22s %9.3f %6s %9.3f %9.1f\n", "total", "", total, "", tmin,
          tmin > 0 ? tflop / (tmin * 1e6) : 0);
}

int cnnrt_cores(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0)
      return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)(n > CNNRT_MAX_THREADS ? CNNRT_MAX_THREADS : n) : 1;
}

int cnnrt_default_threads(void) {
  const char *s = getenv("CNN_NUM_THREADS");
  if (s && *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end == 0 && v >= 1 && v <= CNNRT_MAX_THREADS)
      return (int)v;
    if (*end == 0 && v == 0)
      return cnnrt_cores();
  }
  return cnnrt_cores();
}

int cnnrt_pool_threads(const cnnrt_ctx *c) { return c ? c->nthreads : 1; }

cnnrt_ctx *cnnrt_pool_create(int nthreads) {
  if (nthreads < 1)
    nthreads = 1;
  if (nthreads > CNNRT_MAX_THREADS)
    nthreads = CNNRT_MAX_THREADS;
  cnnrt_ctx *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->threads = calloc((size_t)nthreads, sizeof *c->threads);
  c->workers = calloc((size_t)nthreads, sizeof *c->workers);
  if (!c->threads || !c->workers) {
    free(c->threads);
    free(c->workers);
    free(c);
    return NULL;
  }
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->wake, NULL);
  pthread_cond_init(&c->done_cv, NULL);
  atomic_init(&c->gen, 0);
  atomic_init(&c->next, 0);
  atomic_init(&c->done, 0);
  atomic_init(&c->stop, false);
  c->nthreads = 1;
  const char *prof = getenv("CNN_PROFILE");
  if (prof && *prof && strcmp(prof, "0") != 0 && cnnrt_num_layers > 0) {
    c->prof_ms = calloc((size_t)cnnrt_num_layers, sizeof *c->prof_ms);
    c->prof_calls = calloc((size_t)cnnrt_num_layers, sizeof *c->prof_calls);
    c->prof_min = calloc((size_t)cnnrt_num_layers, sizeof *c->prof_min);
    if (!c->prof_ms || !c->prof_calls || !c->prof_min) {
      free(c->prof_ms);
      free(c->prof_calls);
      free(c->prof_min);
      c->prof_min = NULL;
      c->prof_ms = NULL;
      c->prof_calls = NULL;
    }
  }

  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (int i = 1; i < nthreads; i++) {
    c->workers[i].ctx = c;
    c->workers[i].index = i;
    if (pthread_create(&c->threads[i], NULL, worker_main, &c->workers[i]) != 0)
      break; /* run with the threads we got */
    c->nthreads = i + 1;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return c;
}

void cnnrt_pool_destroy(cnnrt_ctx *c) {
  if (!c)
    return;
  if (c->prof_ms) {
    print_profile(c);
    free(c->prof_ms);
    free(c->prof_calls);
    free(c->prof_min);
  }
  pthread_mutex_lock(&c->mu);
  atomic_store_explicit(&c->stop, true, memory_order_release);
  atomic_fetch_add_explicit(&c->gen, 1, memory_order_release);
  pthread_cond_broadcast(&c->wake);
  pthread_mutex_unlock(&c->mu);
  for (int i = 1; i < c->nthreads; i++)
    pthread_join(c->threads[i], NULL);
  pthread_cond_destroy(&c->wake);
  pthread_cond_destroy(&c->done_cv);
  pthread_mutex_destroy(&c->mu);
  free(c->threads);
  free(c->workers);
  free(c);
}

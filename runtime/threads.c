/*
 * threads.c: the persistent thread pool behind cnnrt_parallel_for.
 *
 * Each model owns one pool (no global state): nthreads - 1 worker threads
 * plus the calling thread, which always takes part. A launch splits [0, n)
 * into C = max(CNNRT_CHUNKS, nthreads) contiguous chunks (chunk i =
 * [n*i/C, n*(i+1)/C), empty when n < C), publishes the job by bumping a
 * generation counter, and then every thread, the caller first, claims
 * chunks until none is left; the caller waits for the last one to finish.
 * Thread j (the caller is 0) owns chunks [C*j/T, C*(j+1)/T): it claims
 * those first, in order, from its own counter, then helps the others by
 * claiming from theirs. When the threads keep pace, each runs exactly its
 * own contiguous share, the same part of every layer (rows that the next
 * layer reads stay in that core's cache: the two cores of this machine
 * exchange data slowly); when one falls behind, the other takes over its
 * remaining chunks. With one thread (or a serial context, used for
 * sample parallelism) the same chunks run in order on the caller.
 *
 * The chunks do not depend on the thread count (up to CNNRT_CHUNKS
 * threads): a kernel whose result depends on how its items are split (a
 * reduction the vectorizer reorders differently in a short range) still
 * gives the same bits with 1 or 2 threads, and a sample computed by one
 * thread of a batch the same bits as alone on all threads. Several
 * chunks per thread rather than one also balance: a thread that is slowed
 * down (a core shared with another process, a late wake-up, items of
 * unequal cost) delays the launch by one small chunk, not by its whole
 * share, while each chunk stays a contiguous run of items (the rows of one
 * output-channel group, which share their weights).
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

#define CNNRT_SPIN 20000 /* pause iterations before sleeping (~0.1-1 ms) */
#define CNNRT_CHUNKS 8   /* chunks per launch (more with more threads) */

/* Thread j's chunks are [C*j/T, C*(j+1)/T): it runs them first, in
   order, then takes what is left of the others' (from their front). Each
   counter on its own cache line. */
typedef struct {
  _Alignas(64) atomic_int v;
} ClaimCounter;

typedef struct {
  cnnrt_ctx *ctx;
  int index;
  double lag_ms; /* profiling: launch to this worker's first claim, or -1 */
  /* tracing: this launch's items run by this worker (0: none yet), from
     t_first (its first chunk began) to t_end (its last one ended); read by
     the caller once the launch is done (trace.c) */
  int64_t items;
  double t_first, t_end;
} Worker;

struct cnnrt_ctx {
  int nthreads;      /* including the caller */
  double *prof_ms;   /* per layer, NULL unless profiling */
  double *prof_min;  /* fastest call per layer (a busy machine's noise) */
  double *prof_wait; /* caller's wait for the other threads after its own chunks */
  double *prof_lag;  /* launch to the first worker's first claim (mean of workers) */
  int64_t *prof_calls;
  double t_launch;    /* profiling: when the current job was published */
  cnnrt_trace *trace; /* the model's trace (trace:FILE), or NULL */
  pthread_t *threads;
  Worker *workers;
  pthread_mutex_t mu;
  pthread_cond_t wake, done_cv;
  /* The current job. fn/ptrs/n are written before the claim counters
     are reset (release) and read after a chunk is claimed (acquire). */
  cnnrt_kernel_fn fn;
  void *const *ptrs;
  int64_t n;
  int nchunks; /* C, constant: a late worker may compare a stale claim with it */
  /* Each counter on its own cache line: claiming a chunk then does not
     take the line holding the job (read by every claimant) from the
     other cores. */
  ClaimCounter *next;                    /* per thread: its next unclaimed chunk */
  _Alignas(64) atomic_int done;          /* chunks finished */
  _Alignas(64) atomic_uint_fast64_t gen; /* bumped per launch: wakes the workers */
  atomic_bool stop;
};

/* Zeroed, and aligned as its cache-line members require. */
static cnnrt_ctx *ctx_alloc(void) {
  cnnrt_ctx *c = aligned_alloc(_Alignof(cnnrt_ctx), sizeof *c);
  if (c)
    memset(c, 0, sizeof *c);
  return c;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static double now_ms(void);

static int chunks_for(int nthreads) { return nthreads > CNNRT_CHUNKS ? nthreads : CNNRT_CHUNKS; }

/* All chunks, in order, on the calling thread. */
static void run_serial(int nchunks, cnnrt_kernel_fn fn, void *const *ptrs, int64_t n) {
  for (int i = 0; i < nchunks; i++) {
    int64_t lo = n * i / nchunks, hi = n * (i + 1) / nchunks;
    if (lo < hi)
      fn(ptrs, lo, hi);
  }
}

/* Claims and runs chunks until none is left. Chunk i is always the same
   range, whoever runs it, so results do not depend on the schedule; a
   worker that wakes late (descheduled on a busy machine) simply finds
   the work done by the others. Returns the items this thread ran. */
static int64_t run_chunks(cnnrt_ctx *c, Worker *w) {
  int t = c->nchunks, T = c->nthreads, self = w ? w->index : 0;
  int64_t mine = 0;
  for (int k = 0; k < T;) {
    int j = (self + k) % T, end = (int)((int64_t)t * (j + 1) / T);
    int i = atomic_fetch_add_explicit(&c->next[j].v, 1, memory_order_acq_rel);
    if (i >= end) {
      k++; /* thread j's chunks are all taken: help the next one */
      continue;
    }
    if (w && c->prof_ms && w->lag_ms < 0)
      w->lag_ms = now_ms() - c->t_launch;
    int64_t n = c->n;
    int64_t lo = n * i / t, hi = n * (i + 1) / t;
    bool timed = w && c->trace && lo < hi;
    if (timed && w->items == 0)
      w->t_first = now_ms();
    if (lo < hi)
      c->fn(c->ptrs, lo, hi);
    mine += hi - lo;
    if (timed) { /* before the chunk is counted done: the caller reads these then */
      w->t_end = now_ms();
      w->items += hi - lo;
    }
    if (atomic_fetch_add_explicit(&c->done, 1, memory_order_acq_rel) == t - 1) {
      pthread_mutex_lock(&c->mu);
      pthread_cond_signal(&c->done_cv);
      pthread_mutex_unlock(&c->mu);
    }
  }
  return mine;
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
    run_chunks(c, w);
  }
}

/* *wait_ms (profiling or tracing only): the caller's wait for the others;
 *mine: the items the caller ran itself. */
static void parallel_for(cnnrt_ctx *c, cnnrt_kernel_fn fn, void *const *ptrs, int64_t n,
                         double *wait_ms, int64_t *mine) {
  if (n <= 0)
    return;
  if (!c || c->nthreads <= 1 || n == 1) {
    run_serial(c ? c->nchunks : CNNRT_CHUNKS, fn, ptrs, n);
    if (mine)
      *mine = n;
    return;
  }
  if (wait_ms) {
    for (int i = 1; i < c->nthreads; i++) {
      c->workers[i].lag_ms = -1;
      c->workers[i].items = 0;
    }
    c->t_launch = now_ms();
  }
  /* The previous launch has fully finished (done == nthreads), so no
     thread holds a chunk: the job can be replaced. */
  c->fn = fn;
  c->ptrs = ptrs;
  c->n = n;
  atomic_store_explicit(&c->done, 0, memory_order_relaxed);
  for (int j = 0; j < c->nthreads; j++)
    atomic_store_explicit(&c->next[j].v, (int)((int64_t)c->nchunks * j / c->nthreads),
                          memory_order_release);
  pthread_mutex_lock(&c->mu);
  atomic_fetch_add_explicit(&c->gen, 1, memory_order_release);
  pthread_cond_broadcast(&c->wake);
  pthread_mutex_unlock(&c->mu);

  int64_t own = run_chunks(c, NULL);
  if (mine)
    *mine = own;

  int t = c->nchunks;
  double t0 = wait_ms ? now_ms() : 0;
  for (int s = 0; s < CNNRT_SPIN; s++) {
    if (atomic_load_explicit(&c->done, memory_order_acquire) == t)
      goto out;
    cpu_relax();
  }
  pthread_mutex_lock(&c->mu);
  while (atomic_load_explicit(&c->done, memory_order_acquire) != t)
    pthread_cond_wait(&c->done_cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
out:
  if (wait_ms)
    *wait_ms = now_ms() - t0;
}

void cnnrt_parallel_for(cnnrt_ctx *c, cnnrt_kernel_fn fn, void *const *ptrs, int64_t n) {
  parallel_for(c, fn, ptrs, n, NULL, NULL);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The launch's slices: the caller's, from the launch to the end, and one
   per worker that ran a chunk (the spans it noted in run_chunks). */
static void trace_launch(cnnrt_ctx *c, double t0, double t1, int32_t layer, int64_t n, int64_t mine,
                         double wait) {
  cnnrt_trace_slice(c->trace, t0, t1, layer, 0, mine, n, wait);
  if (c->nthreads <= 1 || n <= 1)
    return;
  for (int i = 1; i < c->nthreads; i++) {
    const Worker *w = &c->workers[i];
    if (w->items > 0)
      cnnrt_trace_slice(c->trace, w->t_first, w->t_end, layer, i, w->items, n, 0);
  }
}

void cnnrt_launch(cnnrt_ctx *c, cnnrt_kernel_fn fn, void *const *ptrs, int64_t n, int32_t layer) {
  if (!c || (!c->prof_ms && !c->trace) || layer < 0 || layer >= cnnrt_num_layers) {
    cnnrt_parallel_for(c, fn, ptrs, n);
    return;
  }
  double t0 = now_ms(), wait = 0;
  int64_t mine = 0;
  parallel_for(c, fn, ptrs, n, &wait, &mine);
  double t1 = now_ms(), dt = t1 - t0;
  if (c->trace)
    trace_launch(c, t0, t1, layer, n, mine, wait);
  if (!c->prof_ms)
    return;
  c->prof_ms[layer] += dt;
  c->prof_wait[layer] += wait;
  if (c->nthreads > 1 && n > 1) {
    double lag = 0;
    int nw = 0;
    for (int i = 1; i < c->nthreads; i++)
      if (c->workers[i].lag_ms >= 0)
        lag += c->workers[i].lag_ms, nw++;
    c->prof_lag[layer] += nw ? lag / nw : dt; /* no claim: the caller did it all */
  }
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
  double total = 0, tmin = 0, tflop = 0, tbytes = 0, twait = 0, tlag = 0;
  fprintf(stderr, "cnn profile: %s, %d thread%s, %lld sample run%s (ms per sample)\n",
          cnnrt_info.name, c->nthreads, c->nthreads == 1 ? "" : "s", (long long)runs,
          runs == 1 ? "" : "s");
  fprintf(stderr, "%4s  %-44s %-14s %-9s %9s %6s %9s %9s %7s %8s %8s\n", "#", "layer", "op",
          "kernel", "ms(mean)", "%", "ms(min)", "GFLOP/s", "GB/s", "wait", "lag");
  for (int i = 0; i < nl; i++) {
    total += c->prof_ms[i] / (double)runs;
    tmin += c->prof_min[i];
  }
  for (int i = 0; i < nl; i++) {
    /* "name\top\tkernel" */
    const char *nm = cnnrt_layer_names[i], *tab = strchr(nm, '\t');
    const char *op = tab ? tab + 1 : "", *tab2 = strchr(op, '\t');
    const char *kernel = tab2 ? tab2 + 1 : "";
    int nlen = tab ? (int)(tab - nm) : (int)strlen(nm);
    int oplen = tab2 ? (int)(tab2 - op) : (int)strlen(op);
    double ms = c->prof_ms[i] / (double)runs, mn = c->prof_min[i];
    double gf = mn > 0 ? (double)cnnrt_layer_flops[i] / (mn * 1e6) : 0;
    double gb = mn > 0 ? (double)cnnrt_layer_bytes[i] / (mn * 1e6) : 0;
    tflop += (double)cnnrt_layer_flops[i];
    tbytes += (double)cnnrt_layer_bytes[i];
    double wt = c->prof_wait[i] / (double)runs, lg = c->prof_lag[i] / (double)runs;
    twait += wt, tlag += lg;
    fprintf(stderr, "%4d  %-44.*s %-14.*s %-9s %9.3f %6.1f %9.3f %9.1f %7.1f %8.3f %8.3f\n", i,
            nlen > 44 ? 44 : nlen, nm, oplen, op, kernel, ms, total > 0 ? 100 * ms / total : 0, mn,
            gf, gb, wt, lg);
  }
  fprintf(stderr, "      %-44s %-24s %9.3f %6s %9.3f %9.1f %7.1f %8.3f %8.3f\n", "total", "", total,
          "", tmin, tmin > 0 ? tflop / (tmin * 1e6) : 0, tmin > 0 ? tbytes / (tmin * 1e6) : 0,
          twait, tlag);
  if (c->nthreads > 1)
    fprintf(stderr, "(wait: mean ms the calling thread waited for the others after its own "
                    "chunks; lag: mean ms from a launch to a worker's first chunk)\n");
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

int cnnrt_pool_threads(const cnnrt_ctx *c) { return c ? c->nthreads : 1; }

int cnnrt_pool_profiling(const cnnrt_ctx *c) { return c && (c->prof_ms || c->trace); }

void cnnrt_pool_set_trace(cnnrt_ctx *c, cnnrt_trace *t) {
  if (c)
    c->trace = t;
}

static void free_profile(cnnrt_ctx *c) {
  free(c->prof_ms);
  free(c->prof_calls);
  free(c->prof_min);
  free(c->prof_wait);
  free(c->prof_lag);
  c->prof_ms = c->prof_min = c->prof_wait = c->prof_lag = NULL;
  c->prof_calls = NULL;
}

/* The pool is idle (no launch in flight) whenever this is called: the
   workers read prof_ms only while running a chunk, after the release that
   publishes the next launch, so they see the new counters. */
int cnnrt_pool_set_profiling(cnnrt_ctx *c, int on) {
  if (!c)
    return 0;
  if (!on) {
    if (c->prof_ms)
      print_profile(c);
    free_profile(c);
    return 0;
  }
  if (c->prof_ms || cnnrt_num_layers <= 0)
    return 0;
  size_t n = (size_t)cnnrt_num_layers;
  c->prof_ms = calloc(n, sizeof *c->prof_ms);
  c->prof_calls = calloc(n, sizeof *c->prof_calls);
  c->prof_min = calloc(n, sizeof *c->prof_min);
  c->prof_wait = calloc(n, sizeof *c->prof_wait);
  c->prof_lag = calloc(n, sizeof *c->prof_lag);
  if (!c->prof_ms || !c->prof_calls || !c->prof_min || !c->prof_wait || !c->prof_lag) {
    free_profile(c);
    return -1;
  }
  return 0;
}

cnnrt_ctx *cnnrt_serial_create(const cnnrt_ctx *pool) {
  cnnrt_ctx *c = ctx_alloc();
  if (!c)
    return NULL;
  c->nthreads = 1;
  c->nchunks = pool ? pool->nchunks : chunks_for(1);
  return c;
}

void cnnrt_serial_destroy(cnnrt_ctx *c) { free(c); }

cnnrt_ctx *cnnrt_pool_create(int nthreads) {
  if (nthreads < 1)
    nthreads = 1;
  if (nthreads > CNNRT_MAX_THREADS)
    nthreads = CNNRT_MAX_THREADS;
  cnnrt_ctx *c = ctx_alloc();
  if (!c)
    return NULL;
  c->threads = calloc((size_t)nthreads, sizeof *c->threads);
  c->workers = calloc((size_t)nthreads, sizeof *c->workers);
  c->next = aligned_alloc(_Alignof(ClaimCounter), (size_t)nthreads * sizeof *c->next);
  if (!c->threads || !c->workers || !c->next) {
    free(c->threads);
    free(c->workers);
    free(c->next);
    free(c);
    return NULL;
  }
  for (int j = 0; j < nthreads; j++)
    atomic_init(&c->next[j].v, 1 << 30); /* nothing to claim before a launch */
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->wake, NULL);
  pthread_cond_init(&c->done_cv, NULL);
  atomic_init(&c->gen, 0);
  atomic_init(&c->done, 0);
  atomic_init(&c->stop, false);
  c->nthreads = 1;
  c->nchunks = chunks_for(1);

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
  c->nchunks = chunks_for(c->nthreads);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return c;
}

void cnnrt_pool_destroy(cnnrt_ctx *c) {
  if (!c)
    return;
  cnnrt_pool_set_profiling(c, 0);
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
  free(c->next);
  free(c);
}

/*
 * runtime.c: the host ABI (cnn.h) on top of the generated code (cnnrt.h).
 *
 * Linked into every .so cnncc emits; depends on libc, libm and libpthread
 * only, and exports nothing but the cnn_* functions of cnn.h (the library
 * is built with hidden visibility; those are marked CNN_EXPORT).
 *
 * A cnn_model holds everything one model instance needs at run time, all
 * allocated by cnn_create so cnn_run never allocates: the weights (the blob
 * embedded in the .so, or a weights file read into memory: not mapped,
 * see read_weights), the activation
 * arena (64-byte aligned, arena_bytes from the memory plan), per-sample
 * pointer arrays and the thread pool. A weights file is checked before it
 * is used: magic, size, and the build id that ties it to the exact network
 * and layout it was packed for.
 *
 * cnn_run walks the batch one sample at a time, pointing the forward
 * function at that sample's slice of each input and output. With T > 1
 * threads and a batch of at least T samples, whole samples go to threads
 * instead: each thread runs its share of the batch one sample at a time
 * on its own arena (lane), with no synchronization inside a forward pass;
 * the batch % T samples left over then run one by one on all threads.
 * The extra T - 1 arenas are allocated with the pool (cnn_create,
 * cnn_set_num_threads) and only touched by batched runs. A lane runs its
 * kernels through a serial context that splits every launch into the same
 * chunks as the pool (threads.c), so a sample gives the same bits in a lane
 * as alone on all threads. CNN_BATCH_PARALLEL=0 turns sample parallelism
 * off (or cnn_set_batch_parallel); so does profiling (the per-layer times
 * are the pool's).
 *
 * A network with a batched tail (cnnrt.h: cnnrt_tail_tile > 0, its last
 * layers linear) runs a batch in groups of up to cnnrt_tail_tile samples
 * instead: each sample's head (cnnrt_forward_head) into its slot of the
 * tail arena, on the lanes or one by one on all threads, then the group's
 * tail (cnnrt_forward_tail) once on all threads, so the tail's weights are
 * read once per group. The tail arena is allocated by cnn_create (and one
 * per spare); a profiling pool runs groups of one sample.
 *
 * One model may be run by many host threads at once. The first caller
 * gets the pool and the arenas above; a caller that comes while they are
 * taken runs its whole batch on its own thread, one sample at a time,
 * through a serial context (the same chunks as the pool: the same bits)
 * on a spare arena. Spares are kept in a free list and reused, so a
 * server that calls from N threads allocates N - 1 of them once, at its
 * first concurrent calls; when one cannot be allocated, the caller waits
 * for the pool instead (cnn_run never fails for want of memory). A
 * cnn_set_* call waits until no run is in progress, and runs that come
 * meanwhile wait for it. The model's mutex guards only that bookkeeping
 * and the error message; a forward pass holds no lock.
 *
 * Profiling has two forms: the per-layer table on stderr (threads.c) and a
 * Chrome trace-event file (trace.c). The trace belongs to the model, not
 * to the pool: it goes on, into one file, when cnn_set_num_threads makes a
 * new pool, and is written when tracing stops or at cnn_destroy.
 *
 * The environment (CNN_NUM_THREADS, CNN_PROFILE, CNN_BATCH_PARALLEL) is
 * read in one place, settings_from_env, once per cnn_create: it gives the
 * model's initial settings, which the cnn_set_* functions change later;
 * nothing else in the runtime calls getenv.
 * A value that is not one of those documented in docs/abi.md is ignored
 * (the default holds).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#endif

#include "cnnrt.h"

#define CNN_EXPORT __attribute__((visibility("default")))

/* What a host may change on a model: initially from the environment at
   cnn_create, then through the cnn_set_* functions. */
typedef struct {
  int threads;            /* 0 = one per core */
  int profile;            /* a profile_mode */
  const char *trace_path; /* PROFILE_TRACE from the environment: its file
                             (only during cnn_create) */
  bool batch_parallel;    /* whole samples per thread in batches */
} Settings;

/* A spare arena for a caller that finds the pool taken (one sample at a
   time on its own thread). */
typedef struct Spare {
  struct Spare *next;
  cnnrt_ctx *ctx; /* serial, with the pool's chunks */
  float *arena;
  void *tail; /* the batched tail's slots, or NULL */
  const float **in_ptrs;
  float **out_ptrs;
} Spare;

/* The profile modes (cnn_set_profile, CNN_PROFILE). */
enum {
  PROFILE_OFF,
  PROFILE_TABLE, /* "on", "1": per-layer times on stderr when it stops */
  PROFILE_TRACE, /* "trace:FILE": Chrome trace-event JSON (trace.c) */
};

struct cnn_model {
  Settings settings;
  /* Guards pool_busy, active, configuring, spares and err. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool pool_busy;            /* a run is on the pool (arena, lanes, par_*) */
  bool configuring;          /* a cnn_set_* call is changing the pool or lanes */
  int active;                /* runs in progress, on the pool or on spares */
  Spare *spares;             /* free spare arenas */
  const unsigned char *blob; /* header + data */
  void *owned;               /* a weights file read into memory, or NULL */
  const float *weights;      /* blob data */
  float *arena;
  void *tail; /* the batched tail's slots (tail_size bytes), or NULL */
  cnnrt_ctx *pool;
  cnnrt_trace *trace; /* PROFILE_TRACE: the slices so far, and the file */
  const float **in_ptrs;
  float **out_ptrs;
  /* Lanes for sample parallelism: lane 0 is arena/in_ptrs/out_ptrs above,
     lanes 1..nlanes-1 have their own (nlanes = 1: no sample parallelism). */
  int nlanes;
  cnnrt_ctx **lane_ctx; /* serial contexts */
  float **lane_arena;
  const float ***lane_in;
  float ***lane_out;
  /* The batch being run in parallel (read by the lane kernel). */
  int64_t par_batch;
  int64_t par_first; /* the batched tail: the group's first sample */
  const float *const *par_inputs;
  float *const *par_outputs;
  int64_t *in_numel, *out_numel;
  char err[512];
};

/* "1"/"on": 1, "0"/"off": 0, anything else: -1. */
static int parse_switch(const char *s) {
  if (!strcmp(s, "1") || !strcmp(s, "on"))
    return 1;
  if (!strcmp(s, "0") || !strcmp(s, "off"))
    return 0;
  return -1;
}

/* The profile mode of a string: NULL, "0", "off": PROFILE_OFF; "1", "on":
   PROFILE_TABLE; "trace:FILE" with a FILE: PROFILE_TRACE; else -1. */
static int profile_mode(const char *mode) {
  if (!mode)
    return PROFILE_OFF;
  if (strncmp(mode, "trace:", 6) == 0)
    return mode[6] ? PROFILE_TRACE : -1;
  int on = parse_switch(mode);
  return on < 0 ? -1 : on ? PROFILE_TABLE : PROFILE_OFF;
}

/* The environment's settings, read once per cnn_create; an unset variable
   or a value that is not valid leaves the default. */
static Settings settings_from_env(void) {
  Settings st = {.threads = 0, .profile = 0, .batch_parallel = true};
  const char *s = getenv("CNN_NUM_THREADS");
  if (s && *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end == 0 && v >= 0 && v <= CNNRT_MAX_THREADS)
      st.threads = (int)v;
  }
  s = getenv("CNN_PROFILE");
  int on = s ? profile_mode(s) : -1;
  if (on >= 0)
    st.profile = on;
  if (on == PROFILE_TRACE)
    st.trace_path = s + 6;
  s = getenv("CNN_BATCH_PARALLEL");
  on = s ? parse_switch(s) : -1;
  if (on >= 0)
    st.batch_parallel = on;
  return st;
}

static void set_err(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t len, const char *fmt, ...) {
  if (!err || len == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
}

static int64_t desc_numel(const cnn_tensor_desc *d) {
  int64_t n = 1;
  for (int i = 1; i < d->rank && i < 8; i++)
    n *= d->dims[i];
  return n;
}

CNN_EXPORT const cnn_info *cnn_get_info(void) { return &cnnrt_info; }

/* Checks a blob (header + data of `size` bytes); what names it in errors. */
static int check_blob(const unsigned char *blob, uint64_t size, const char *what, char *err,
                      size_t len) {
  CnnrtBlobHeader h;
  if (size < sizeof h) {
    set_err(err, len, "%s is too small to be a cnncc weights blob (%llu bytes)", what,
            (unsigned long long)size);
    return -1;
  }
  memcpy(&h, blob, sizeof h);
  if (memcmp(h.magic, CNNRT_BLOB_MAGIC, 8) != 0) {
    set_err(err, len, "%s is not a cnncc weights blob (bad magic)", what);
    return -1;
  }
  h.build_id[sizeof h.build_id - 1] = 0;
  if (strcmp(h.build_id, cnnrt_build_id) != 0) {
    set_err(err, len,
            "%s: weights blob was made for another network or build "
            "(blob build id %s, this model is %s)",
            what, h.build_id, cnnrt_build_id);
    return -1;
  }
  if (h.data_bytes != size - sizeof h) {
    set_err(err, len,
            "%s is truncated or has trailing data (%llu data bytes "
            "announced, %llu present)",
            what, (unsigned long long)h.data_bytes, (unsigned long long)(size - sizeof h));
    return -1;
  }
  if (h.data_bytes != cnnrt_info.weight_bytes) {
    set_err(err, len, "%s holds %llu bytes of weights, the model needs %llu", what,
            (unsigned long long)h.data_bytes, (unsigned long long)cnnrt_info.weight_bytes);
    return -1;
  }
  return 0;
}

/* Reads a weights file into memory the model owns. It is not mapped: a
   file truncated or rewritten while the model lives (a redeploy copying
   over it) would make every later run read pages that no longer exist,
   and the host die of SIGBUS; a copy costs the weights' size in memory
   and one read, and cannot change under the model. */
static int read_weights(cnn_model *m, const char *path, char *err, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    set_err(err, len, "cannot open weights '%s': %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    set_err(err, len, "weights '%s' is not a regular file", path);
    close(fd);
    return -1;
  }
  if ((uint64_t)st.st_size < sizeof(CnnrtBlobHeader)) {
    set_err(err, len,
            "weights '%s' is too small to be a cnncc weights blob "
            "(%lld bytes)",
            path, (long long)st.st_size);
    close(fd);
    return -1;
  }
  void *p = NULL;
  if (posix_memalign(&p, 64, (size_t)st.st_size) != 0) {
    set_err(err, len, "cannot allocate %lld bytes for the weights '%s'", (long long)st.st_size,
            path);
    close(fd);
    return -1;
  }
  m->owned = p;
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t r = read(fd, (char *)p + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      set_err(err, len, "cannot read weights '%s': %s", path,
              r < 0 ? strerror(errno) : "the file shrank while it was read");
      close(fd);
      return -1;
    }
    got += (size_t)r;
  }
  close(fd);
  char what[256];
  snprintf(what, sizeof what, "weights '%s'", path);
  if (check_blob(p, (uint64_t)st.st_size, what, err, len) != 0)
    return -1;
  m->blob = p;
  return 0;
}

static void free_lanes(cnn_model *m) {
  for (int l = 0; l < m->nlanes && m->lane_ctx; l++)
    cnnrt_serial_destroy(m->lane_ctx[l]);
  for (int l = 1; l < m->nlanes; l++) {
    free(m->lane_arena[l]);
    free(m->lane_in[l]);
    free(m->lane_out[l]);
  }
  free(m->lane_ctx);
  free(m->lane_arena);
  free(m->lane_in);
  free(m->lane_out);
  m->lane_ctx = NULL;
  m->lane_arena = NULL;
  m->lane_in = NULL;
  m->lane_out = NULL;
  m->nlanes = 1;
}

/* The batched tail's arena: cnnrt_tail_tile slots (0: no tail). */
static size_t tail_size(void) {
  return cnnrt_tail_tile > 0 ? (size_t)cnnrt_tail_tile * (size_t)cnnrt_tail_slot_bytes : 0;
}

/* A 64-byte aligned block of n > 0 bytes, or NULL. */
static void *alloc64(size_t n) {
  void *a = NULL;
  return posix_memalign(&a, 64, n) == 0 ? a : NULL;
}

static size_t arena_size(void) {
  size_t arena = ((size_t)cnnrt_info.arena_bytes + 63) & ~(size_t)63;
  return arena ? arena : 64;
}

/* One lane per pool thread, if the settings ask for sample parallelism.
   Without memory (-1), batches simply run sample by sample on all threads.
   Untouched, the extra arenas cost address space only. */
static int make_lanes(cnn_model *m) {
  free_lanes(m);
  int t = cnnrt_pool_threads(m->pool);
  if (t < 2 || !m->settings.batch_parallel)
    return 0;
  size_t ni = (size_t)(cnnrt_info.num_inputs > 0 ? cnnrt_info.num_inputs : 1);
  size_t no = (size_t)(cnnrt_info.num_outputs > 0 ? cnnrt_info.num_outputs : 1);
  m->lane_ctx = calloc((size_t)t, sizeof *m->lane_ctx);
  m->lane_arena = calloc((size_t)t, sizeof *m->lane_arena);
  m->lane_in = calloc((size_t)t, sizeof *m->lane_in);
  m->lane_out = calloc((size_t)t, sizeof *m->lane_out);
  if (!m->lane_ctx || !m->lane_arena || !m->lane_in || !m->lane_out) {
    free_lanes(m);
    return -1;
  }
  m->nlanes = 1; /* so that free_lanes frees lane 0's context on failure */
  m->lane_ctx[0] = cnnrt_serial_create(m->pool);
  if (!m->lane_ctx[0]) {
    free_lanes(m);
    return -1;
  }
  m->lane_arena[0] = m->arena;
  m->lane_in[0] = m->in_ptrs;
  m->lane_out[0] = m->out_ptrs;
  for (int l = 1; l < t; l++) {
    void *a = NULL;
    m->nlanes = l + 1; /* so that free_lanes frees lane l on failure */
    if (posix_memalign(&a, 64, arena_size()) != 0)
      a = NULL;
    m->lane_arena[l] = a;
    m->lane_in[l] = calloc(ni, sizeof **m->lane_in);
    m->lane_out[l] = calloc(no, sizeof **m->lane_out);
    m->lane_ctx[l] = cnnrt_serial_create(m->pool);
    if (!a || !m->lane_in[l] || !m->lane_out[l] || !m->lane_ctx[l]) {
      free_lanes(m);
      return -1;
    }
  }
  m->nlanes = t;
  return 0;
}

static void spare_free(Spare *s) {
  if (!s)
    return;
  cnnrt_serial_destroy(s->ctx);
  free(s->arena);
  free(s->tail);
  free(s->in_ptrs);
  free(s->out_ptrs);
  free(s);
}

static void free_spares(cnn_model *m) {
  while (m->spares) {
    Spare *s = m->spares;
    m->spares = s->next;
    spare_free(s);
  }
}

/* A spare arena with a serial context that splits launches like the
   pool; NULL without memory. Called without the lock: the pool is not
   replaced while a run is in progress. */
static Spare *spare_new(cnn_model *m) {
  Spare *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  size_t ni = (size_t)(cnnrt_info.num_inputs > 0 ? cnnrt_info.num_inputs : 1);
  size_t no = (size_t)(cnnrt_info.num_outputs > 0 ? cnnrt_info.num_outputs : 1);
  void *a = NULL;
  if (posix_memalign(&a, 64, arena_size()) != 0)
    a = NULL;
  s->arena = a;
  s->in_ptrs = calloc(ni, sizeof *s->in_ptrs);
  s->out_ptrs = calloc(no, sizeof *s->out_ptrs);
  s->ctx = cnnrt_serial_create(m->pool);
  s->tail = tail_size() ? alloc64(tail_size()) : NULL;
  if (!s->arena || !s->in_ptrs || !s->out_ptrs || !s->ctx || (tail_size() && !s->tail)) {
    spare_free(s);
    return NULL;
  }
  return s;
}

CNN_EXPORT void cnn_destroy(cnn_model *m) {
  if (!m)
    return;
  free_spares(m);
  pthread_mutex_destroy(&m->mu);
  pthread_cond_destroy(&m->cv);
  free_lanes(m);
  cnnrt_pool_destroy(m->pool);
  cnnrt_trace_close(m->trace); /* writes the file */
  free(m->owned);
  free(m->arena);
  free(m->tail);
  free(m->in_ptrs);
  free(m->out_ptrs);
  free(m->in_numel);
  free(m->out_numel);
  free(m);
}

/* CNN_PROFILE=trace:FILE: a file that cannot be written leaves the model
   without a profile, with a line on stderr (the variable's other bad
   values are ignored silently, but this one names a file the user wants). */
static void start_trace_from_env(cnn_model *m) {
  char e[320];
  m->trace = cnnrt_trace_open(m->settings.trace_path, CNNRT_TRACE_SLICES, e, sizeof e);
  m->settings.trace_path = NULL;
  if (!m->trace) {
    fprintf(stderr, "cnn: CNN_PROFILE: %s; not tracing\n", e);
    m->settings.profile = PROFILE_OFF;
    return;
  }
  cnnrt_pool_set_trace(m->pool, m->trace);
}

/* The AMX tile state a model with AMX kernels needs (cnnrt_uses_amx):
   Linux (5.16 and later) grants it to a process on request, once. */
static int request_amx(char *err, size_t err_len) {
  if (!cnnrt_uses_amx)
    return 0;
#if defined(__x86_64__) && defined(__linux__)
  if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0)
    return 0;
  set_err(err, err_len,
          "model '%s' runs on AMX tiles and this system does not grant them (arch_prctl: %s); "
          "compile it with --tune amx=0 or for another --target-cpu",
          cnnrt_info.name, strerror(errno));
#else
  set_err(err, err_len, "model '%s' runs on AMX tiles, which only x86-64 Linux has",
          cnnrt_info.name);
#endif
  return -1;
}

CNN_EXPORT cnn_model *cnn_create(const char *weights_path, char *err, size_t err_len) {
  const cnn_info *info = &cnnrt_info;
  if (err && err_len)
    err[0] = 0;
  cnn_model *m = calloc(1, sizeof *m);
  if (!m) {
    set_err(err, err_len, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->cv, NULL);
  if (request_amx(err, err_len) != 0)
    goto fail;
  if (weights_path) {
    if (read_weights(m, weights_path, err, err_len) != 0)
      goto fail;
  } else {
    if (cnnrt_blob_size == 0) {
      set_err(err, err_len,
              "model '%s' was compiled with external weights: pass the path "
              "of its .weights file to cnn_create",
              info->name);
      goto fail;
    }
    if (check_blob(cnnrt_blob, cnnrt_blob_size, "the embedded weights", err, err_len) != 0)
      goto fail;
    m->blob = cnnrt_blob;
  }
  m->weights = (const float *)(m->blob + sizeof(CnnrtBlobHeader));

  size_t arena = arena_size();
  void *a = NULL;
  if (posix_memalign(&a, 64, arena) != 0) {
    set_err(err, err_len, "cannot allocate the %zu-byte activation arena", arena);
    goto fail;
  }
  m->arena = a;
  if (tail_size() && !(m->tail = alloc64(tail_size()))) {
    set_err(err, err_len, "cannot allocate the %zu-byte arena of the batched tail", tail_size());
    goto fail;
  }
  size_t ni = (size_t)(info->num_inputs > 0 ? info->num_inputs : 1);
  size_t no = (size_t)(info->num_outputs > 0 ? info->num_outputs : 1);
  m->in_ptrs = calloc(ni, sizeof *m->in_ptrs);
  m->out_ptrs = calloc(no, sizeof *m->out_ptrs);
  m->in_numel = calloc(ni, sizeof *m->in_numel);
  m->out_numel = calloc(no, sizeof *m->out_numel);
  if (!m->in_ptrs || !m->out_ptrs || !m->in_numel || !m->out_numel) {
    set_err(err, err_len, "out of memory");
    goto fail;
  }
  for (int i = 0; i < info->num_inputs; i++)
    m->in_numel[i] = desc_numel(&info->inputs[i]);
  for (int i = 0; i < info->num_outputs; i++)
    m->out_numel[i] = desc_numel(&info->outputs[i]);
  m->nlanes = 1;
  m->settings = settings_from_env();
  m->pool = cnnrt_pool_create(m->settings.threads ? m->settings.threads : cnnrt_cores());
  if (!m->pool) {
    set_err(err, err_len, "cannot create the thread pool");
    goto fail;
  }
  if (m->settings.profile == PROFILE_TABLE && cnnrt_pool_set_profiling(m->pool, 1) != 0) {
    set_err(err, err_len, "cannot allocate the profile counters");
    goto fail;
  }
  if (m->settings.profile == PROFILE_TRACE)
    start_trace_from_env(m);
  make_lanes(m);
  return m;

fail:
  cnn_destroy(m);
  return NULL;
}

/* Sample s of the batch with the given arena and pointer arrays. */
static void run_sample(cnn_model *m, cnnrt_ctx *pool, float *arena, const float **in_ptrs,
                       float **out_ptrs, int64_t s, const float *const *inputs,
                       float *const *outputs) {
  for (int i = 0; i < cnnrt_info.num_inputs; i++)
    in_ptrs[i] = inputs[i] + s * m->in_numel[i];
  for (int i = 0; i < cnnrt_info.num_outputs; i++)
    out_ptrs[i] = outputs[i] + s * m->out_numel[i];
  cnnrt_forward(pool, m->weights, arena, in_ptrs, out_ptrs);
}

/* The batched tail: sample s's head into slot b of `tail`. */
static void run_head(cnn_model *m, cnnrt_ctx *pool, float *arena, const float **in_ptrs, void *tail,
                     int64_t b, int64_t s, const float *const *inputs) {
  for (int i = 0; i < cnnrt_info.num_inputs; i++)
    in_ptrs[i] = inputs[i] + s * m->in_numel[i];
  cnnrt_forward_head(pool, m->weights, arena, in_ptrs, (char *)tail + b * cnnrt_tail_slot_bytes);
}

/* The batched tail: the nb slots' tail, outputs from sample s0 on. */
static void run_tail(cnn_model *m, cnnrt_ctx *pool, float **out_ptrs, void *tail, int64_t s0,
                     int64_t nb, float *const *outputs) {
  for (int i = 0; i < cnnrt_info.num_outputs; i++)
    out_ptrs[i] = outputs[i] + s0 * m->out_numel[i];
  cnnrt_forward_tail(pool, m->weights, tail, nb, out_ptrs);
}

/* A whole batch on one context (a spare, or the pool without lanes):
   sample by sample, or with a batched tail in groups of cnnrt_tail_tile
   samples (one at a time while the pool profiles: per-sample times). */
static void run_serial(cnn_model *m, cnnrt_ctx *ctx, float *arena, const float **in_ptrs,
                       float **out_ptrs, void *tail, int64_t batch, const float *const *inputs,
                       float *const *outputs) {
  if (!tail) {
    for (int64_t s = 0; s < batch; s++)
      run_sample(m, ctx, arena, in_ptrs, out_ptrs, s, inputs, outputs);
    return;
  }
  int64_t step = cnnrt_pool_profiling(ctx) ? 1 : cnnrt_tail_tile;
  for (int64_t s0 = 0; s0 < batch; s0 += step) {
    int64_t nb = batch - s0 < step ? batch - s0 : step;
    for (int64_t b = 0; b < nb; b++)
      run_head(m, ctx, arena, in_ptrs, tail, b, s0 + b, inputs);
    run_tail(m, ctx, out_ptrs, tail, s0, nb, outputs);
  }
}

/* The sample-parallel kernel: items are lanes; each runs its samples on
   one thread, through a serial context that splits every kernel launch
   into the same chunks as the pool (the same bits as a sample run alone).
   With a batched tail, a lane runs only the heads of its samples of the
   group from par_first, into their slots. */
static void run_lanes(void *const *ptrs, int64_t lo, int64_t hi) {
  cnn_model *m = ptrs[0];
  for (int64_t l = lo; l < hi; l++)
    for (int64_t s = l; s < m->par_batch; s += m->nlanes) {
      if (m->tail)
        run_head(m, m->lane_ctx[l], m->lane_arena[l], m->lane_in[l], m->tail, s, m->par_first + s,
                 m->par_inputs);
      else
        run_sample(m, m->lane_ctx[l], m->lane_arena[l], m->lane_in[l], m->lane_out[l], s,
                   m->par_inputs, m->par_outputs);
    }
}

/* The model's error message, under its lock (other threads may be
   failing or succeeding at the same time). */
static void model_err(cnn_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void model_err(cnn_model *m, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&m->mu);
  vsnprintf(m->err, sizeof m->err, fmt, ap);
  pthread_mutex_unlock(&m->mu);
  va_end(ap);
}

static int check_run_args(cnn_model *m, int64_t batch, const float *const *inputs,
                          float *const *outputs) {
  const cnn_info *info = &cnnrt_info;
  if (batch < 1) {
    model_err(m, "cnn_run: batch must be at least 1, got %lld", (long long)batch);
    return CNN_EINVAL;
  }
  /* No buffer of batch samples can exceed the address space (2^63 bytes):
     such a batch is a caller's error, not one to serve or allocate. */
  for (int i = 0; i < info->num_inputs + info->num_outputs; i++) {
    int64_t n = i < info->num_inputs ? m->in_numel[i] : m->out_numel[i - info->num_inputs];
    if (n > 0 && batch > INT64_MAX / 4 / n) {
      model_err(m,
                "cnn_run: a batch of %lld samples of '%s' (%lld floats each) is larger than "
                "any buffer can be",
                (long long)batch,
                i < info->num_inputs ? info->inputs[i].name
                                     : info->outputs[i - info->num_inputs].name,
                (long long)n);
      return CNN_EINVAL;
    }
  }
  if ((info->num_inputs > 0 && !inputs) || (info->num_outputs > 0 && !outputs)) {
    model_err(m, "cnn_run: %s array is NULL", !inputs ? "inputs" : "outputs");
    return CNN_EINVAL;
  }
  for (int i = 0; i < info->num_inputs; i++)
    if (!inputs[i]) {
      model_err(m, "cnn_run: inputs[%d] ('%s') is NULL", i, info->inputs[i].name);
      return CNN_EINVAL;
    }
  for (int i = 0; i < info->num_outputs; i++)
    if (!outputs[i]) {
      model_err(m, "cnn_run: outputs[%d] ('%s') is NULL", i, info->outputs[i].name);
      return CNN_EINVAL;
    }
  return CNN_OK;
}

/* The batch on the pool with a batched tail: groups of cnnrt_tail_tile
   samples, their heads on the lanes (whole samples per thread) or one by
   one on all threads, then the group's tail on all threads. */
static void run_tail_groups(cnn_model *m, int64_t batch, const float *const *inputs,
                            float *const *outputs) {
  int T = m->nlanes;
  if (T < 2 || cnnrt_pool_profiling(m->pool)) {
    run_serial(m, m->pool, m->arena, m->in_ptrs, m->out_ptrs, m->tail, batch, inputs, outputs);
    return;
  }
  for (int64_t s0 = 0; s0 < batch; s0 += cnnrt_tail_tile) {
    int64_t nb = batch - s0 < cnnrt_tail_tile ? batch - s0 : cnnrt_tail_tile;
    int64_t b = 0;
    if (nb >= T) {
      m->par_first = s0;
      m->par_batch = nb - nb % T;
      m->par_inputs = inputs;
      void *ptrs[1] = {m};
      cnnrt_parallel_for(m->pool, run_lanes, ptrs, T);
      b = m->par_batch;
    }
    for (; b < nb; b++)
      run_head(m, m->pool, m->arena, m->in_ptrs, m->tail, b, s0 + b, inputs);
    run_tail(m, m->pool, m->out_ptrs, m->tail, s0, nb, outputs);
  }
}

/* The batch on the pool and its lanes (the caller holds pool_busy). */
static void run_on_pool(cnn_model *m, int64_t batch, const float *const *inputs,
                        float *const *outputs) {
  double t_run = m->trace ? cnnrt_trace_now() : 0;
  int64_t s = 0;
  int T = m->nlanes;
  if (m->tail) {
    run_tail_groups(m, batch, inputs, outputs);
    s = batch;
  } else if (T > 1 && batch >= T && !cnnrt_pool_profiling(m->pool)) {
    /* batch / T samples per lane, lane l taking samples l, l + T, ...;
       work item l of this launch is lane l. */
    m->par_batch = batch - batch % T;
    m->par_inputs = inputs;
    m->par_outputs = outputs;
    void *ptrs[1] = {m};
    cnnrt_parallel_for(m->pool, run_lanes, ptrs, T);
    s = m->par_batch;
  }
  for (; s < batch; s++)
    run_sample(m, m->pool, m->arena, m->in_ptrs, m->out_ptrs, s, inputs, outputs);
  if (m->trace)
    cnnrt_trace_slice(m->trace, t_run, cnnrt_trace_now(), -1, 0, 0, 0, (double)batch);
}

CNN_EXPORT int cnn_run(cnn_model *m, int64_t batch, const float *const *inputs,
                       float *const *outputs) {
  if (!m)
    return CNN_ESTATE;
  int rc = check_run_args(m, batch, inputs, outputs);
  if (rc != CNN_OK)
    return rc;
  pthread_mutex_lock(&m->mu);
  while (m->configuring)
    pthread_cond_wait(&m->cv, &m->mu);
  m->err[0] = 0;
  m->active++;
  Spare *sp = NULL;
  bool on_pool = !m->pool_busy;
  if (on_pool) {
    m->pool_busy = true;
  } else if (m->spares) {
    sp = m->spares;
    m->spares = sp->next;
  }
  pthread_mutex_unlock(&m->mu);
  if (!on_pool && !sp && !(sp = spare_new(m))) {
    pthread_mutex_lock(&m->mu); /* no memory for a spare: wait for the pool */
    while (m->pool_busy)
      pthread_cond_wait(&m->cv, &m->mu);
    m->pool_busy = on_pool = true;
    pthread_mutex_unlock(&m->mu);
  }
  if (on_pool)
    run_on_pool(m, batch, inputs, outputs);
  else
    run_serial(m, sp->ctx, sp->arena, sp->in_ptrs, sp->out_ptrs, sp->tail, batch, inputs, outputs);
  pthread_mutex_lock(&m->mu);
  if (on_pool)
    m->pool_busy = false;
  else {
    sp->next = m->spares;
    m->spares = sp;
  }
  m->active--;
  pthread_cond_broadcast(&m->cv);
  pthread_mutex_unlock(&m->mu);
  return CNN_OK;
}

/* A cnn_set_* call has the model to itself between these two: runs in
   progress finish first, new ones wait. */
static void config_begin(cnn_model *m) {
  pthread_mutex_lock(&m->mu);
  while (m->configuring)
    pthread_cond_wait(&m->cv, &m->mu);
  m->configuring = true;
  while (m->active > 0)
    pthread_cond_wait(&m->cv, &m->mu);
  pthread_mutex_unlock(&m->mu);
}

static void config_end(cnn_model *m) {
  pthread_mutex_lock(&m->mu);
  m->configuring = false;
  pthread_cond_broadcast(&m->cv);
  pthread_mutex_unlock(&m->mu);
}

static int set_num_threads(cnn_model *m, int n) {
  int t = n ? n : cnnrt_cores();
  if (t != cnnrt_pool_threads(m->pool)) {
    cnnrt_ctx *p = cnnrt_pool_create(t);
    if (p && m->settings.profile == PROFILE_TABLE && cnnrt_pool_set_profiling(p, 1) != 0) {
      cnnrt_pool_destroy(p);
      p = NULL;
    }
    if (!p) {
      model_err(m, "cnn_set_num_threads: out of memory");
      return CNN_ENOMEM;
    }
    cnnrt_pool_destroy(m->pool); /* prints its profile */
    m->pool = p;
    cnnrt_pool_set_trace(p, m->trace); /* the trace goes on, in one file */
    make_lanes(m);
    free_spares(m); /* their contexts split launches as the old pool did */
  }
  m->settings.threads = n;
  return CNN_OK;
}

CNN_EXPORT int cnn_set_num_threads(cnn_model *m, int n) {
  if (!m)
    return CNN_ESTATE;
  if (n < 0 || n > CNNRT_MAX_THREADS) {
    model_err(m, "cnn_set_num_threads: %d threads (use 0 for one per core, or 1..1024)", n);
    return CNN_EINVAL;
  }
  config_begin(m);
  int rc = set_num_threads(m, n);
  config_end(m);
  return rc;
}

/* Ends the trace, if any: its file is written. */
static void stop_trace(cnn_model *m) {
  cnnrt_pool_set_trace(m->pool, NULL);
  cnnrt_trace_close(m->trace);
  m->trace = NULL;
}

/* "trace:FILE": the same file again goes on recording; another starts a
   new trace (the old one's file is written), and the table, if it was
   on, is printed. The file is created here, so a path that cannot be
   written is refused at once, changing nothing. */
static int set_trace(cnn_model *m, const char *path) {
  if (m->trace && cnnrt_trace_same_file(m->trace, path))
    return CNN_OK;
  char e[320];
  cnnrt_trace *t = cnnrt_trace_open(path, CNNRT_TRACE_SLICES, e, sizeof e);
  if (!t) {
    model_err(m, "cnn_set_profile: %s", e);
    return strstr(e, "out of memory") ? CNN_ENOMEM : CNN_EINVAL;
  }
  cnnrt_pool_set_profiling(m->pool, 0); /* the table, if it was on */
  stop_trace(m);
  m->trace = t;
  cnnrt_pool_set_trace(m->pool, t);
  return CNN_OK;
}

CNN_EXPORT int cnn_set_profile(cnn_model *m, const char *mode) {
  if (!m)
    return CNN_ESTATE;
  int pm = profile_mode(mode);
  if (pm < 0) {
    model_err(m,
              "cnn_set_profile: unknown mode '%s' (use \"on\" or \"1\", \"off\" or \"0\", "
              "\"trace:FILE\")",
              mode);
    return CNN_EINVAL;
  }
  config_begin(m);
  int rc = CNN_OK;
  if (pm == PROFILE_TRACE) {
    rc = set_trace(m, mode + 6);
  } else {
    /* "on" while on goes on counting; the trace, if any, is written */
    if (cnnrt_pool_set_profiling(m->pool, pm == PROFILE_TABLE) != 0) {
      model_err(m, "cnn_set_profile: out of memory for the profile counters");
      rc = CNN_ENOMEM;
    } else {
      stop_trace(m);
    }
  }
  if (rc == CNN_OK)
    m->settings.profile = pm;
  config_end(m);
  return rc;
}

CNN_EXPORT int cnn_set_batch_parallel(cnn_model *m, int on) {
  if (!m)
    return CNN_ESTATE;
  if (on != 0 && on != 1) {
    model_err(m, "cnn_set_batch_parallel: %d (use 1 for on, 0 for off)", on);
    return CNN_EINVAL;
  }
  config_begin(m);
  m->settings.batch_parallel = on;
  int rc = CNN_OK;
  if (make_lanes(m) != 0) {
    model_err(m, "cnn_set_batch_parallel: out of memory for the per-thread arenas "
                 "(batches run sample by sample)");
    rc = CNN_ENOMEM;
  }
  config_end(m);
  return rc;
}

CNN_EXPORT const char *cnn_last_error(const cnn_model *m) {
  if (!m)
    return "no model (cnn_create failed or was not called)";
  return m->err;
}

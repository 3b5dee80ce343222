/*
 * runtime.c: the host ABI (cnn.h) on top of the generated code (cnnrt.h).
 *
 * Linked into every .so cnncc emits; depends on libc, libm and libpthread
 * only, and exports nothing but the cnn_* functions of cnn.h (the library
 * is built with hidden visibility; those are marked CNN_EXPORT).
 *
 * A cnn_model holds everything one model instance needs at run time, all
 * allocated by cnn_create so cnn_run never allocates: the weights (the blob
 * embedded in the .so, or a weights file mapped read-only), the activation
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
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* The profile modes (cnn_set_profile, CNN_PROFILE). */
enum {
  PROFILE_OFF,
  PROFILE_TABLE, /* "on", "1": per-layer times on stderr when it stops */
  PROFILE_TRACE, /* "trace:FILE": Chrome trace-event JSON (trace.c) */
};

struct cnn_model {
  Settings settings;
  const unsigned char *blob; /* header + data */
  void *map;                 /* mmap'd weights file, or NULL */
  size_t map_len;
  const float *weights; /* blob data */
  float *arena;
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

static int map_weights(cnn_model *m, const char *path, char *err, size_t len) {
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
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    set_err(err, len, "cannot map weights '%s': %s", path, strerror(errno));
    return -1;
  }
  m->map = p;
  m->map_len = (size_t)st.st_size;
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

CNN_EXPORT void cnn_destroy(cnn_model *m) {
  if (!m)
    return;
  free_lanes(m);
  cnnrt_pool_destroy(m->pool);
  cnnrt_trace_close(m->trace); /* writes the file */
  if (m->map)
    munmap(m->map, m->map_len);
  free(m->arena);
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

CNN_EXPORT cnn_model *cnn_create(const char *weights_path, char *err, size_t err_len) {
  const cnn_info *info = &cnnrt_info;
  if (err && err_len)
    err[0] = 0;
  cnn_model *m = calloc(1, sizeof *m);
  if (!m) {
    set_err(err, err_len, "out of memory");
    return NULL;
  }
  if (weights_path) {
    if (map_weights(m, weights_path, err, err_len) != 0)
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

/* The sample-parallel kernel: items are lanes; each runs its samples on
   one thread, through a serial context that splits every kernel launch
   into the same chunks as the pool (the same bits as a sample run alone). */
static void run_lanes(void *const *ptrs, int64_t lo, int64_t hi) {
  cnn_model *m = ptrs[0];
  for (int64_t l = lo; l < hi; l++)
    for (int64_t s = l; s < m->par_batch; s += m->nlanes)
      run_sample(m, m->lane_ctx[l], m->lane_arena[l], m->lane_in[l], m->lane_out[l], s,
                 m->par_inputs, m->par_outputs);
}

CNN_EXPORT int cnn_run(cnn_model *m, int64_t batch, const float *const *inputs,
                       float *const *outputs) {
  if (!m)
    return CNN_ESTATE;
  const cnn_info *info = &cnnrt_info;
  if (batch < 1) {
    set_err(m->err, sizeof m->err, "cnn_run: batch must be at least 1, got %lld", (long long)batch);
    return CNN_EINVAL;
  }
  if ((info->num_inputs > 0 && !inputs) || (info->num_outputs > 0 && !outputs)) {
    set_err(m->err, sizeof m->err, "cnn_run: %s array is NULL", !inputs ? "inputs" : "outputs");
    return CNN_EINVAL;
  }
  for (int i = 0; i < info->num_inputs; i++)
    if (!inputs[i]) {
      set_err(m->err, sizeof m->err, "cnn_run: inputs[%d] ('%s') is NULL", i, info->inputs[i].name);
      return CNN_EINVAL;
    }
  for (int i = 0; i < info->num_outputs; i++)
    if (!outputs[i]) {
      set_err(m->err, sizeof m->err, "cnn_run: outputs[%d] ('%s') is NULL", i,
              info->outputs[i].name);
      return CNN_EINVAL;
    }
  m->err[0] = 0;
  double t_run = m->trace ? cnnrt_trace_now() : 0;
  int64_t s = 0;
  int T = m->nlanes;
  if (T > 1 && batch >= T && !cnnrt_pool_profiling(m->pool)) {
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
  return CNN_OK;
}

CNN_EXPORT int cnn_set_num_threads(cnn_model *m, int n) {
  if (!m)
    return CNN_ESTATE;
  if (n < 0 || n > CNNRT_MAX_THREADS) {
    set_err(m->err, sizeof m->err,
            "cnn_set_num_threads: %d threads (use 0 for one per core, or 1..1024)", n);
    return CNN_EINVAL;
  }
  int t = n ? n : cnnrt_cores();
  if (t != cnnrt_pool_threads(m->pool)) {
    cnnrt_ctx *p = cnnrt_pool_create(t);
    if (p && m->settings.profile == PROFILE_TABLE && cnnrt_pool_set_profiling(p, 1) != 0) {
      cnnrt_pool_destroy(p);
      p = NULL;
    }
    if (!p) {
      set_err(m->err, sizeof m->err, "cnn_set_num_threads: out of memory");
      return CNN_ENOMEM;
    }
    cnnrt_pool_destroy(m->pool); /* prints its profile */
    m->pool = p;
    cnnrt_pool_set_trace(p, m->trace); /* the trace goes on, in one file */
    make_lanes(m);
  }
  m->settings.threads = n;
  return CNN_OK;
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
    set_err(m->err, sizeof m->err, "cnn_set_profile: %s", e);
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
    set_err(m->err, sizeof m->err,
            "cnn_set_profile: unknown mode '%s' (use \"on\" or \"1\", \"off\" or \"0\", "
            "\"trace:FILE\")",
            mode);
    return CNN_EINVAL;
  }
  if (pm == PROFILE_TRACE) {
    int rc = set_trace(m, mode + 6);
    if (rc != CNN_OK)
      return rc;
  } else {
    /* "on" while on goes on counting; the trace, if any, is written */
    if (cnnrt_pool_set_profiling(m->pool, pm == PROFILE_TABLE) != 0) {
      set_err(m->err, sizeof m->err, "cnn_set_profile: out of memory for the profile counters");
      return CNN_ENOMEM;
    }
    stop_trace(m);
  }
  m->settings.profile = pm;
  return CNN_OK;
}

CNN_EXPORT int cnn_set_batch_parallel(cnn_model *m, int on) {
  if (!m)
    return CNN_ESTATE;
  if (on != 0 && on != 1) {
    set_err(m->err, sizeof m->err, "cnn_set_batch_parallel: %d (use 1 for on, 0 for off)", on);
    return CNN_EINVAL;
  }
  m->settings.batch_parallel = on;
  if (make_lanes(m) != 0) {
    set_err(m->err, sizeof m->err,
            "cnn_set_batch_parallel: out of memory for the per-thread arenas "
            "(batches run sample by sample)");
    return CNN_ENOMEM;
  }
  return CNN_OK;
}

CNN_EXPORT const char *cnn_last_error(const cnn_model *m) {
  if (!m)
    return "no model (cnn_create failed or was not called)";
  return m->err;
}

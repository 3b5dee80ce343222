/*
 * trace.c: the per-layer profile as a Chrome trace-event file.
 *
 * cnn_set_profile(m, "trace:FILE") (or CNN_PROFILE=trace:FILE at
 * cnn_create) records one slice per kernel launch and thread, and one per
 * cnn_run call, and writes them as the JSON that chrome://tracing and
 * Perfetto (ui.perfetto.dev) open: the "JSON Object Format" of Google's
 * Trace Event Format, with complete events ("ph": "X", ts and dur in
 * microseconds) and the thread-name metadata events ("ph": "M").
 *
 * Recording never allocates: cnnrt_trace_open allocates a buffer of
 * CNNRT_TRACE_SLICES slices (cnnrt.h) up front, and cnnrt_trace_slice only copies
 * into it. When the buffer is full the later slices are dropped and
 * counted; the file then says how many (otherData.dropped_slices) and a
 * line on stderr does too. The file is opened (created or truncated) when
 * tracing starts, so a path that cannot be written is refused right away,
 * and written when tracing ends: cnn_set_profile with another mode, or
 * cnn_destroy.
 *
 * Only the calling thread of cnn_run (or of the cnn_set_* functions)
 * calls in here: the pool's workers note the span of their chunks in
 * their own slots, and the caller copies them out once the launch is done
 * (threads.c). So there is one writer and no locking.
 *
 * The slices:
 *   tid 0 (the thread that called cnn_run): one "cnn_run" slice per call
 *     (args: batch), and inside it one slice per kernel launch, from the
 *     launch to the end of its last chunk on any thread (args: layer
 *     index, op, kernel, GFLOP/s of the launch, bytes, the work items
 *     this thread ran itself, and wait_ms: how long it waited for the
 *     others after its own chunks);
 *   tid j >= 1 (worker j of the pool): one slice per launch it took part
 *     in, from its first chunk to the end of its last (args: the work
 *     items it ran, and the GFLOP/s of its share, counted as the layer's
 *     FLOPs times its items over all items).
 * A file holds one model's slices; two models tracing into one FILE
 * overwrite each other's file (the last one written stays), so give each
 * its own, or "%p" for one per process.
 * Timestamps are CLOCK_MONOTONIC, from the moment tracing started.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cnnrt.h"

/* One slice. layer -1: a cnn_run call. */
typedef struct {
  double t0, t1; /* ms, CLOCK_MONOTONIC */
  int32_t layer;
  int32_t tid;
  int64_t items, n; /* the work items this thread ran, of the launch's n */
  double extra;     /* caller: wait ms; cnn_run: the batch */
} TraceSlice;

struct cnnrt_trace {
  FILE *f;
  char *path; /* as given */
  double t_start;
  TraceSlice *slices;
  int64_t n, cap, dropped;
  int max_tid;
};

double cnnrt_trace_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* path with every "%p" replaced by the process id (malloc'd). */
static char *expand_path(const char *path) {
  char pid[24];
  int np = snprintf(pid, sizeof pid, "%d", (int)getpid());
  size_t n = strlen(path) + 1;
  for (const char *p = strstr(path, "%p"); p; p = strstr(p + 2, "%p"))
    n += (size_t)np;
  char *out = malloc(n), *o = out;
  if (!out)
    return NULL;
  for (const char *p = path; *p;) {
    if (p[0] == '%' && p[1] == 'p') {
      memcpy(o, pid, (size_t)np);
      o += np, p += 2;
    } else {
      *o++ = *p++;
    }
  }
  *o = 0;
  return out;
}

cnnrt_trace *cnnrt_trace_open(const char *path, int64_t capacity, char *err, size_t len) {
  cnnrt_trace *t = calloc(1, sizeof *t);
  if (t) {
    t->path = strdup(path);
    t->cap = capacity > 0 ? capacity : 1;
    t->slices = malloc((size_t)t->cap * sizeof *t->slices);
  }
  if (!t || !t->path || !t->slices) {
    snprintf(err, len, "out of memory for %lld trace slices", (long long)capacity);
    cnnrt_trace_discard(t);
    return NULL;
  }
  char *file = expand_path(path);
  t->f = file ? fopen(file, "w") : NULL;
  if (!t->f) {
    snprintf(err, len, "cannot write the trace file '%s': %s", file ? file : path,
             file ? strerror(errno) : "out of memory");
    free(file);
    cnnrt_trace_discard(t);
    return NULL;
  }
  free(file);
  t->t_start = cnnrt_trace_now();
  return t;
}

int cnnrt_trace_same_file(const cnnrt_trace *t, const char *path) {
  return t && strcmp(t->path, path) == 0;
}

void cnnrt_trace_slice(cnnrt_trace *t, double t0, double t1, int32_t layer, int32_t tid,
                       int64_t items, int64_t n, double extra) {
  if (!t)
    return;
  if (t->n == t->cap) {
    t->dropped++;
    return;
  }
  t->slices[t->n++] = (TraceSlice){t0, t1 > t0 ? t1 : t0, layer, tid, items, n, extra};
  if (tid > t->max_tid)
    t->max_tid = tid;
}

/* s as a JSON string body (quotes, backslashes and control characters
   escaped), at most n bytes of it. */
static void put_json_string(FILE *f, const char *s, size_t n) {
  for (size_t i = 0; i < n && s[i]; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
}

/* cnnrt_layer_names[layer] is "name\top\tkernel": field k of it. */
static void layer_field(int32_t layer, int k, const char **s, size_t *n) {
  const char *p = cnnrt_layer_names[layer];
  for (; k > 0 && p; k--) {
    p = strchr(p, '\t');
    p = p ? p + 1 : NULL;
  }
  if (!p) {
    *s = "", *n = 0;
    return;
  }
  const char *tab = strchr(p, '\t');
  *s = p;
  *n = tab ? (size_t)(tab - p) : strlen(p);
}

static void put_field(FILE *f, int32_t layer, int k) {
  const char *s;
  size_t n;
  layer_field(layer, k, &s, &n);
  put_json_string(f, s, n);
}

static void put_slice(FILE *f, const cnnrt_trace *t, const TraceSlice *e, int pid) {
  double ts = (e->t0 - t->t_start) * 1e3, dur = (e->t1 - e->t0) * 1e3;
  if (e->layer < 0) {
    fprintf(f,
            ",\n{\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,"
            "\"name\":\"cnn_run\",\"cat\":\"run\",\"args\":{\"batch\":%.0f}}",
            pid, e->tid, ts, dur, e->extra);
    return;
  }
  double flops = (double)cnnrt_layer_flops[e->layer];
  if (e->tid > 0 && e->n > 0) /* a worker's share */
    flops = flops * (double)e->items / (double)e->n;
  fprintf(f, ",\n{\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,\"name\":\"", pid,
          e->tid, ts, dur);
  put_field(f, e->layer, 0);
  fprintf(f, "\",\"cat\":\"");
  put_field(f, e->layer, 1);
  fprintf(f, "\",\"args\":{\"layer\":%d,\"op\":\"", e->layer);
  put_field(f, e->layer, 1);
  fprintf(f, "\",\"kernel\":\"");
  put_field(f, e->layer, 2);
  fprintf(f, "\",\"gflop_per_s\":%.2f,\"flops\":%.0f,\"bytes\":%lld,\"items\":%lld,\"of\":%lld",
          dur > 0 ? flops / (dur * 1e3) : 0.0, flops, (long long)cnnrt_layer_bytes[e->layer],
          (long long)e->items, (long long)e->n);
  if (e->tid == 0)
    fprintf(f, ",\"wait_ms\":%.4f", e->extra);
  fprintf(f, "}}");
}

/* The whole file: metadata, then the slices in the order recorded. */
static int write_json(cnnrt_trace *t) {
  FILE *f = t->f;
  int pid = (int)getpid();
  fprintf(f, "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"network\":\"");
  put_json_string(f, cnnrt_info.name, (size_t)-1);
  fprintf(f, "\",\"compiler\":\"");
  put_json_string(f, cnnrt_info.compiler, (size_t)-1);
  fprintf(f, "\",\"layers\":%d,\"slices\":%lld,\"dropped_slices\":%lld,\"capacity\":%lld},\n",
          cnnrt_num_layers, (long long)t->n, (long long)t->dropped, (long long)t->cap);
  fprintf(f,
          "\"traceEvents\":[\n{\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"name\":\"process_name\","
          "\"args\":{\"name\":\"cnn ",
          pid);
  put_json_string(f, cnnrt_info.name, (size_t)-1);
  fprintf(f, "\"}}");
  for (int j = 0; j <= t->max_tid; j++) {
    if (j == 0)
      fprintf(f,
              ",\n{\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"name\":\"thread_name\","
              "\"args\":{\"name\":\"cnn_run caller\"}}",
              pid);
    else
      fprintf(f,
              ",\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"name\":\"thread_name\","
              "\"args\":{\"name\":\"cnn worker %d\"}}",
              pid, j, j);
  }
  for (int64_t i = 0; i < t->n; i++)
    put_slice(f, t, &t->slices[i], pid);
  fprintf(f, "\n]}\n");
  return ferror(f) ? -1 : 0;
}

int cnnrt_trace_close(cnnrt_trace *t) {
  if (!t)
    return 0;
  int rc = write_json(t);
  if (fclose(t->f) != 0)
    rc = -1;
  t->f = NULL;
  if (rc != 0)
    fprintf(stderr, "cnn trace: could not write '%s'\n", t->path);
  if (t->dropped)
    fprintf(stderr,
            "cnn trace: '%s' holds the first %lld slices; %lld more were dropped (the buffer "
            "holds %lld)\n",
            t->path, (long long)t->n, (long long)t->dropped, (long long)t->cap);
  cnnrt_trace_discard(t);
  return rc;
}

void cnnrt_trace_discard(cnnrt_trace *t) {
  if (!t)
    return;
  if (t->f)
    fclose(t->f);
  free(t->path);
  free(t->slices);
  free(t);
}

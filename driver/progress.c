/*
 * progress.c: the status line of progress.h.
 *
 * State is one static struct guarded by a mutex. A line is
 *
 *   "\rcnncc: [I/N] STEP  PP% (DONE/TOTAL UNIT)  T s\033[K"
 *
 * (the percentage part only when the stage gave a total). It is drawn by
 * the ticker thread, which wakes every 100 ms so the elapsed time moves
 * while a stage is busy in one call, and by the stages' reports, both
 * throttled to one redraw per interval (100 ms; CNNCC_PROGRESS_INTERVAL
 * milliseconds if set) except the report that completes a step (100%),
 * which is always drawn. A redraw that would write the same line is
 * skipped. Every write of the diagnostics stream first erases a drawn line
 * ("\r\033[K"), under the same mutex.
 */
#include "progress.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 100    /* the ticker's period */
#define INTERVAL 0.1   /* default: at most 10 redraws a second */
#define SHOW_AFTER 0.2 /* on a terminal, quick steps never flash a line */

struct Progress {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  bool enabled, thread_running, stop;
  bool active; /* a step is running */
  bool shown;  /* a status line is on the screen */
  bool fresh;  /* started by progress_step, no stage report yet */
  double t0, last_draw, interval, show_after;
  double done, total; /* total <= 0: no estimate */
  char unit[24];
  int index, nsteps;
  char step[200], what[200]; /* shown name; the stage's `what` */
  char last[512];            /* the line drawn last */
  FILE *stream;
  ProgressHook hook;
};

static Progress g_progress = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void write_all(const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(2, s, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    s += w;
    n -= (size_t)w;
  }
}

/* Callers hold p->mu. */
static void erase_locked(Progress *p) {
  if (p->shown) {
    write_all("\r\033[K", 4);
    p->shown = false;
    p->last[0] = 0;
  }
}

/* "42% (103/244 MB)", "40% (23/58 kernels)", "42%" or "" into buf. */
static void amount(const Progress *p, char *buf, size_t n) {
  buf[0] = 0;
  if (p->total <= 0 || p->done < 0)
    return;
  double f = p->done / p->total;
  int pct = (int)(f * 100 + 1e-9); /* 100% only when done */
  if (pct > 100)
    pct = 100;
  if (strcmp(p->unit, "B") == 0) {
    double mb = 1024.0 * 1024.0;
    int dec = p->total < 10 * mb ? 1 : 0;
    snprintf(buf, n, "  %3d%% (%.*f/%.*f MB)", pct, dec, p->done / mb, dec, p->total / mb);
  } else if (p->unit[0]) {
    snprintf(buf, n, "  %3d%% (%.0f/%.0f %s)", pct, p->done, p->total, p->unit);
  } else {
    snprintf(buf, n, "  %3d%%", pct);
  }
}

/* force: ignore the redraw interval (not the initial delay). */
static void draw_locked(Progress *p, bool force) {
  double now = now_s(), t = now - p->t0;
  if (!p->enabled || !p->active || t < p->show_after)
    return;
  if (!force && p->shown && now - p->last_draw < p->interval)
    return;
  int cols = 80;
  struct winsize ws;
  if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
    cols = ws.ws_col;
  char head[24] = "", tail[96], amt[64], line[512];
  if (p->nsteps > 0)
    snprintf(head, sizeof head, "[%d/%d] ", p->index, p->index > p->nsteps ? p->index : p->nsteps);
  amount(p, amt, sizeof amt);
  snprintf(tail, sizeof tail, "%s  %.1f s", amt, t);
  /* Cut the step name, not the numbers, to fit the terminal's width. */
  int room = cols - 1 - (int)strlen("cnncc: ") - (int)strlen(head) - (int)strlen(tail);
  if (room < 8)
    room = 8;
  int n = snprintf(line, sizeof line, "\rcnncc: %s%.*s%s\033[K", head, room, p->step, tail);
  if (n <= 0)
    return;
  if ((size_t)n >= sizeof line)
    n = sizeof line - 1;
  if (p->shown && strcmp(line, p->last) == 0)
    return;
  write_all(line, (size_t)n);
  memcpy(p->last, line, (size_t)n + 1);
  p->shown = true;
  p->last_draw = now;
}

static void *ticker(void *arg) {
  Progress *p = arg;
  pthread_mutex_lock(&p->mu);
  while (!p->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += TICK_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    if (!p->stop)
      draw_locked(p, false);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* The diagnostics stream: erase the line, then write through to fd 2. */
static ssize_t stream_write(void *cookie, const char *buf, size_t n) {
  Progress *p = cookie;
  pthread_mutex_lock(&p->mu);
  erase_locked(p);
  write_all(buf, n);
  pthread_mutex_unlock(&p->mu);
  return (ssize_t)n;
}

static void at_exit(void) {
  Progress *p = &g_progress;
  if (p->stream)
    fflush(p->stream);
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  p->active = false;
  erase_locked(p);
  bool join = p->thread_running;
  p->thread_running = false;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  if (join)
    pthread_join(p->thread, NULL);
}

Progress *progress_init(void) {
  Progress *p = &g_progress;
  const char *term = getenv("TERM");
  p->enabled = isatty(2) && !(term && strcmp(term, "dumb") == 0);
  p->done = -1;
  p->interval = INTERVAL;
  const char *iv = getenv("CNNCC_PROGRESS_INTERVAL");
  if (iv && *iv) {
    char *end;
    double ms = strtod(iv, &end);
    if (!*end && ms >= 0)
      p->interval = ms / 1000.0;
  }
  p->show_after = SHOW_AFTER;
  if (!p->stream) {
    p->stream = fopencookie(p, "w", (cookie_io_functions_t){.write = stream_write});
    if (p->stream)
      setvbuf(p->stream, NULL, _IONBF, 0);
    atexit(at_exit);
  }
  return p;
}

void progress_force(Progress *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  p->enabled = true;
  p->show_after = 0;
  pthread_mutex_unlock(&p->mu);
}

void progress_disable(Progress *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  erase_locked(p);
  p->enabled = false;
  pthread_mutex_unlock(&p->mu);
}

bool progress_enabled(const Progress *p) { return p && p->enabled; }

FILE *progress_stream(Progress *p) { return p && p->stream ? p->stream : stderr; }

void progress_plan(Progress *p, int nsteps) {
  if (p)
    p->nsteps = nsteps;
}

/* Callers hold p->mu. */
static void start_locked(Progress *p, const char *name) {
  erase_locked(p);
  snprintf(p->step, sizeof p->step, "%s", name);
  p->t0 = now_s();
  p->done = -1;
  p->total = 0;
  p->unit[0] = 0;
  p->index++;
  p->active = true;
  if (!p->thread_running && !p->stop)
    p->thread_running = pthread_create(&p->thread, NULL, ticker, p) == 0;
  draw_locked(p, true);
}

void progress_step(Progress *p, const char *fmt, ...) {
  if (!p || !p->enabled)
    return;
  char name[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&p->mu);
  start_locked(p, name);
  p->fresh = true;
  p->what[0] = 0;
  pthread_mutex_unlock(&p->mu);
}

static void hook_fn(void *ctx, const char *what, double done, double total, const char *unit) {
  Progress *p = ctx;
  if (!p->enabled || !what)
    return;
  pthread_mutex_lock(&p->mu);
  if (p->active && p->fresh) {
    snprintf(p->what, sizeof p->what, "%s", what); /* the driver's step goes on */
    p->fresh = false;
  } else if (!p->active || strcmp(what, p->what) != 0) {
    start_locked(p, what);
    snprintf(p->what, sizeof p->what, "%s", what);
    p->fresh = false;
  }
  p->done = done;
  p->total = total;
  snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
  draw_locked(p, total > 0 && done >= total);
  pthread_mutex_unlock(&p->mu);
}

const ProgressHook *progress_hook(Progress *p) {
  if (!p || !p->enabled)
    return NULL;
  p->hook = (ProgressHook){hook_fn, p};
  return &p->hook;
}

void progress_done(Progress *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  p->active = false;
  erase_locked(p);
  pthread_mutex_unlock(&p->mu);
}

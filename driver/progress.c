/*
 * progress.c: the status line of progress.h.
 *
 * State is one static struct guarded by a mutex. The ticker thread wakes
 * every 100 ms and, if a step has run for at least SHOW_AFTER seconds,
 * redraws "\rcnncc: STEP  NN%  T s\033[K". Every write of the diagnostics
 * stream first erases a drawn line ("\r\033[K"), under the same mutex.
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

#define TICK_MS 100       /* at most 10 redraws a second */
#define SHOW_AFTER 0.2    /* quick steps never flash a line */

struct Progress {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  bool enabled, thread_running, stop;
  bool active; /* a step is running */
  bool shown;  /* a status line is on the screen */
  double t0, done;
  char step[200];
  FILE *stream;
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
  }
}

static void draw_locked(Progress *p) {
  double t = now_s() - p->t0;
  if (!p->enabled || !p->active || t < SHOW_AFTER)
    return;
  int cols = 80;
  struct winsize ws;
  if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
    cols = ws.ws_col;
  char tail[32], line[512];
  if (p->done >= 0)
    snprintf(tail, sizeof tail, "  %3d%%  %.1f s", (int)(p->done * 100 + 0.5), t);
  else
    snprintf(tail, sizeof tail, "  %.1f s", t);
  /* Cut the step name, not the numbers, to fit the terminal's width. */
  int room = cols - 1 - (int)strlen("cnncc: ") - (int)strlen(tail);
  if (room < 8)
    room = 8;
  int n = snprintf(line, sizeof line, "\rcnncc: %.*s%s\033[K", room, p->step, tail);
  if (n > 0)
    write_all(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  p->shown = true;
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
      draw_locked(p);
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
  if (!p->stream) {
    p->stream = fopencookie(p, "w", (cookie_io_functions_t){.write = stream_write});
    if (p->stream)
      setvbuf(p->stream, NULL, _IONBF, 0);
    atexit(at_exit);
  }
  return p;
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

void progress_step(Progress *p, const char *fmt, ...) {
  if (!p || !p->enabled)
    return;
  pthread_mutex_lock(&p->mu);
  erase_locked(p);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->step, sizeof p->step, fmt, ap);
  va_end(ap);
  p->t0 = now_s();
  p->done = -1;
  p->active = true;
  if (!p->thread_running && !p->stop)
    p->thread_running = pthread_create(&p->thread, NULL, ticker, p) == 0;
  pthread_mutex_unlock(&p->mu);
}

void progress_set(Progress *p, double done) {
  if (!p || !p->enabled)
    return;
  pthread_mutex_lock(&p->mu);
  p->done = done < 0 ? -1 : done > 1 ? 1 : done;
  pthread_mutex_unlock(&p->mu);
}

static void hook_fn(void *ctx, double done) { progress_set(ctx, done); }

ProgressHook progress_hook(Progress *p) { return (ProgressHook){hook_fn, p}; }

void progress_done(Progress *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  p->active = false;
  erase_locked(p);
  pthread_mutex_unlock(&p->mu);
}

/*
 * progress.h: a one-line status display for the driver's long steps.
 *
 * On a terminal, while a step runs longer than 0.2 s, stderr shows one line
 *
 *   cnncc: reading weights resnet50.safetensors  37%  1.4 s
 *
 * redrawn in place with '\r' at most 10 times a second by a small ticker
 * thread (so the elapsed time moves even while a stage is busy in one long
 * call) and erased when the step ends: nothing is left on the screen. When
 * stderr is not a terminal, or the display is disabled (-q, -v), nothing is
 * ever drawn.
 *
 * Diagnostics must go through progress_stream(): a stdio stream onto stderr
 * that erases the status line before each write, so an error never lands
 * in the middle of it (the line comes back below at the next tick).
 *
 * A stage reports how far it is through a ProgressHook, which is plain data
 * (a function pointer and its context) and needs nothing else from this
 * header: pass one down (e.g. a `const ProgressHook *progress` member of
 * BackendOptions) and call progress_report(hook, done) with done in [0, 1]
 * as the work goes; a NULL hook makes that a no-op.
 */
#ifndef CNNCC_PROGRESS_H
#define CNNCC_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

typedef struct Progress Progress;

/* The fraction-done callback a stage may be given. done in [0, 1]; a
   negative value means "busy, no estimate". */
typedef struct ProgressHook {
  void (*fn)(void *ctx, double done);
  void *ctx;
} ProgressHook;

static inline void progress_report(const ProgressHook *h, double done) {
  if (h && h->fn)
    h->fn(h->ctx, done);
}

/* The display on stderr; enabled when stderr is a terminal. One per
   process: the status line is erased at exit (atexit), even on an early
   return from main. */
Progress *progress_init(void);
/* Never draw again (for -q, -v, --print-after: other output on stderr). */
void progress_disable(Progress *p);
bool progress_enabled(const Progress *p);
/* A stream onto stderr for diagnostics (stderr itself if p is NULL). */
FILE *progress_stream(Progress *p);

/* Start a step (ending the previous one); printf-style name. */
void progress_step(Progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fraction of the current step done, in [0, 1]; negative: unknown. */
void progress_set(Progress *p, double done);
/* A hook that forwards to progress_set(p, ...). */
ProgressHook progress_hook(Progress *p);
/* End the current step and erase the line. */
void progress_done(Progress *p);

#endif

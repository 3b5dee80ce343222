/*
 * progress.h: the driver's one-line status display for long steps.
 *
 * On a terminal, while a step runs longer than 0.2 s, stderr shows one line
 *
 *   cnncc: [4/8] packing weights   45% (105/233 MB)  0.6 s
 *
 * redrawn in place with '\r' at most 10 times a second (a small ticker
 * thread keeps the elapsed time moving even while a stage is busy in one
 * long call, such as LLVM's optimizer) and erased when the step ends:
 * nothing is left on the screen. When stderr is not a terminal, or the
 * display is disabled (-q, -v, --print-after), nothing is ever drawn, so
 * piped output is the same bytes with and without this file.
 * progress_force() (cnncc --progress=always, CNNCC_PROGRESS=always) draws
 * even when stderr is not a terminal, from the first moment of every step:
 * that is how the display is tested.
 *
 * The stages report how far they are through a ProgressHook (support/progress.h),
 * which needs nothing from this header; progress_hook() makes one that
 * feeds this display. A report with a new `what` starts a new step, unless
 * the driver has just started one with progress_step() (the stage's first
 * report then moves the driver's step on: "reading weights W.safetensors").
 *
 * Diagnostics must go through progress_stream(): a stdio stream onto stderr
 * that erases the status line before each write, so an error never lands
 * in the middle of it (the line comes back below at the next tick).
 */
#ifndef CNNCC_PROGRESS_H
#define CNNCC_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#include "../support/progress.h"

typedef struct Progress Progress;

/* The display on stderr; enabled when stderr is a terminal (and TERM is not
   "dumb"). One per process: the status line is erased at exit (atexit),
   even on an early return from main. */
Progress *progress_init(void);
/* Draw even when stderr is not a terminal, without the 0.2 s delay. */
void progress_force(Progress *p);
/* Never draw again (for -q, -v, --print-after: other output on stderr). */
void progress_disable(Progress *p);
bool progress_enabled(const Progress *p);
/* A stream onto stderr for diagnostics (stderr itself if p is NULL). */
FILE *progress_stream(Progress *p);
/* The number of steps the run will take, for the "[i/n]" prefix (0: no
   prefix). A step past n raises n. */
void progress_plan(Progress *p, int nsteps);

/* Start a step (ending the previous one); printf-style name. */
void progress_step(Progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A hook that reports into p; NULL when p does not draw, so the stages
   skip their reports altogether. */
const ProgressHook *progress_hook(Progress *p);
/* End the current step and erase the line. */
void progress_done(Progress *p);

#endif

/*
 * progress.h: how a long step says how far it is, without depending on who
 * shows it.
 *
 * A ProgressHook is plain data (a function and its context) that the driver
 * hands down to the stages (weights_load_progress, BackendOptions.progress).
 * A stage calls progress_report() as its work goes:
 *
 *   progress_report(h, "packing weights", bytes_done, bytes_total, "B");
 *   progress_report(h, "generating kernels", k, nkernels, "kernels");
 *   progress_report(h, "optimizing with LLVM", 0, -1, NULL);   busy, no estimate
 *
 * `what` names the step: a report with a new `what` starts a new step on the
 * display, further reports with the same `what` move it on. `done` out of
 * `total` is in `unit`s: "B" for bytes (shown in MB), any other noun is a
 * count ("kernels"), NULL shows a bare percentage; total <= 0 means busy,
 * with no estimate (the display then shows the elapsed time only). A stage
 * should report done == total when it finishes. A NULL hook (or fn) makes
 * every report a no-op, so stages call it unconditionally; reports are cheap
 * (the display throttles its redraws) but a stage should not make more than
 * a few thousand of them.
 */
#ifndef CNNCC_SUPPORT_PROGRESS_H
#define CNNCC_SUPPORT_PROGRESS_H

typedef struct ProgressHook {
  void (*fn)(void *ctx, const char *what, double done, double total, const char *unit);
  void *ctx;
} ProgressHook;

static inline void progress_report(const ProgressHook *h, const char *what, double done,
                                   double total, const char *unit) {
  if (h && h->fn)
    h->fn(h->ctx, what, done, total, unit);
}

#endif

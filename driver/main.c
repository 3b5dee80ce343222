/*
 * main.c: the cnncc command.
 *
 *   spec.yaml -frontend-> Graph -weights-> -passes-> -backend-> .so
 *
 * The driver parses the command line (options.c) and calls each stage's
 * entry point in turn; the stages report user errors through one Diag.
 * Exit status: 0 success, 1 user error (spec, weights, flags), 2 internal
 * error.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver.h"
#include "frontend/frontend.h"
#include "progress.h"

/* The directory an output goes to must exist and be writable. */
static bool output_dir_ok(const char *path, Diag *d) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  if (!slash)
    snprintf(dir, sizeof dir, ".");
  else if (slash == path)
    snprintf(dir, sizeof dir, "/");
  else
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    diag_plain(d, DIAG_ERROR, "cannot write '%s': directory '%s' does not exist", path, dir);
    return false;
  }
  if (access(dir, W_OK) != 0) {
    diag_plain(d, DIAG_ERROR, "cannot write '%s': directory '%s' is not writable", path, dir);
    return false;
  }
  return true;
}

/* The progress line: --progress=WHEN, else $CNNCC_PROGRESS (always or 1,
   never or 0, auto); -q, -v and --print-after turn it off whatever WHEN.
   The steps, for "[i/n]": spec, weights, passes, then the backend's
   (backend/codegen.c): packing weights, generating kernels, optimizing
   with LLVM, machine code or LLVM IR, and linking for a .so. */
static void setup_progress(Progress *prog, const Options *o) {
  const char *when = o->progress ? o->progress : getenv("CNNCC_PROGRESS");
  if (when && (strcmp(when, "always") == 0 || strcmp(when, "1") == 0))
    progress_force(prog);
  if (o->quiet || o->verbose || o->print_after ||
      (when && (strcmp(when, "never") == 0 || strcmp(when, "0") == 0)))
    progress_disable(prog);
  progress_plan(prog, o->summary ? 1
                                 : 2 + (o->weights != NULL) +
                                       (o->emit_ir || o->emit_dot || o->emit_header || o->emit_spec
                                            ? 0
                                            : 4 + (o->emit == EMIT_SO)));
}

/* An ONNX model: its weights come with it. */
static Graph *load_onnx(const Options *o, Diag *d) {
  if (o->weights) {
    diag_plain(d, DIAG_ERROR,
               "'%s' is an ONNX model, which carries its own weights: --weights is "
               "for specs",
               o->spec);
    return NULL;
  }
  OnnxOptions oo = {.shapes = o->shapes, .nshapes = o->nshapes};
  return onnx_load_file(o->spec, &oo, d);
}

/* The weights from --weights, or the deterministic initialization; an ONNX
   model's are bound already. */
static bool bind_weights(Graph *g, const Options *o, bool onnx, Progress *prog, Diag *d) {
  if (onnx)
    return true;
  if (!o->weights) {
    weights_init_deterministic(g, o->seed);
    if (!o->quiet)
      diag_plain(d, DIAG_NOTE,
                 "no --weights given: using the deterministic initialization (seed %llu)",
                 (unsigned long long)o->seed);
    return true;
  }
  progress_step(prog, "reading weights %s", o->weights);
  bool ok = weights_load_progress(g, o->weights, d, progress_hook(prog));
  progress_done(prog);
  return ok;
}

/* The backend with everything the driver knows: the flags, the runtime
   library and cross linker (targets.c), the environment's CC and TMPDIR. */
static int compile(Graph *g, Options *o, Progress *prog, Diag *d) {
  char rtbuf[PATH_MAX], lldbuf[PATH_MAX];
  o->tune.winograd = o->winograd >= 0 ? o->winograd : o->opt >= 2;
  const char *cc = getenv("CC");
  BackendOptions bo = {
      .output = o->output,
      .emit = o->emit,
      .opt_level = o->opt,
      .target_triple = o->target_triple,
      .target_cpu = o->target_cpu,
      .target_features = o->target_features,
      .external_weights = o->external_weights,
      .cc = cc && *cc ? cc : "cc",
      .tmpdir = getenv("TMPDIR"),
      .compiler_ident = NULL,
      .verbose = o->verbose,
      .progress = progress_hook(prog),
      .tune = o->tune,
      .precision = o->precision,
  };
  if (!targets_check_link(o, &bo, rtbuf, sizeof rtbuf, lldbuf, sizeof lldbuf, d))
    return EXIT_USER;
  char *ident = options_compiler_ident(o);
  bo.compiler_ident = ident;
  int rc = backend_compile(g, &bo, d); /* its steps come through bo.progress */
  progress_done(prog);
  free(ident);
  return rc;
}

/* --precision=int8: the activation ranges (calibrate.c). A second graph
   of the same network, through the same passes with the quantize pass in
   collect mode, compiled in fp32 for the host into a temporary directory,
   run on every calibration input. plan gets the ranges (its names copied:
   the second graph is freed). */
static int calibrate(const Options *o, bool onnx, const PassOptions *po, Progress *prog,
                     QuantPlan *plan, Diag *d) {
  Options oc = *o;
  oc.quiet = true; /* the notes were printed for the first graph */
  Graph *g2 = onnx ? load_onnx(&oc, d) : spec_load_file(o->spec, d);
  if (!g2 || !bind_weights(g2, &oc, onnx, prog, d)) {
    ir_graph_free(g2);
    return EXIT_USER;
  }
  float *data = NULL;
  int64_t n = 0, numel = g2->ninputs == 1 ? shape_numel(&g2->inputs[0].node->shape) : 0;
  if (g2->ninputs != 1)
    diag_plain(d, DIAG_ERROR, "--precision=int8: calibration supports networks with one input");
  if (g2->ninputs != 1 || !calib_load(o->calibrate, numel, &data, &n, d)) {
    ir_graph_free(g2);
    return EXIT_USER;
  }
  *plan = (QuantPlan){.collect = true};
  g2->quant = plan;
  PassOptions p2 = *po;
  p2.print_after = NULL;
  passes_run(g2, &p2);
  const char *tmp = getenv("TMPDIR");
  char dir[PATH_MAX], so[PATH_MAX + 16];
  snprintf(dir, sizeof dir, "%s/cnncc-calib-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  int rc = EXIT_USER;
  if (!mkdtemp(dir)) {
    diag_plain(d, DIAG_ERROR, "--calibrate: cannot create a directory '%s': %s", dir,
               strerror(errno));
  } else {
    snprintf(so, sizeof so, "%s/calib.so", dir);
    oc.output = so, oc.precision = PRECISION_FP32, oc.emit = EMIT_SO, oc.header = NULL;
    oc.target_triple = oc.target_cpu = oc.target_features = NULL;
    oc.external_weights = false;
    rc = compile(g2, &oc, prog, d);
    plan->lo = xcalloc((size_t)plan->n + 1, sizeof(float));
    plan->hi = xcalloc((size_t)plan->n + 1, sizeof(float));
    progress_step(prog, "calibrating on %lld inputs", (long long)n);
    if (rc == 0 &&
        !calib_measure(so, plan, data, n, numel, o->calib_percentile, o->calib_entropy, d))
      rc = EXIT_USER;
    progress_done(prog);
    remove(so);
    rmdir(dir);
  }
  for (int i = 0; i < plan->n; i++)
    plan->names[i] = xstrdup(plan->names[i]);
  plan->collect = false;
  free(data);
  ir_graph_free(g2);
  return rc;
}

static void quant_plan_free(QuantPlan *p) {
  for (int i = 0; i < p->n; i++)
    free((char *)p->names[i]);
  free(p->names);
  free(p->output);
  free(p->lo);
  free(p->hi);
}

/* --header FILE beside a compiled output; if it cannot be written, the
   output goes too (a failed run leaves nothing behind). */
static int write_header_too(const Graph *g, const Options *o, Diag *d) {
  if (!o->header || header_write(g, o->header, d))
    return 0;
  if (strcmp(o->output, "-") != 0)
    remove(o->output);
  return EXIT_USER;
}

/* Weights, passes, then the output: the graph itself or the backend's. */
/* The passes, then the output: the graph itself or the backend's. */
static int passes_and_output(Graph *g, Options *o, const PassOptions *po, Progress *prog, Diag *d) {
  progress_step(prog, "running the passes (-O%d)", o->opt);
  int convs0, kernels0 = report_count_kernels(g, &convs0);
  passes_run(g, po);
  progress_done(prog);
  if (o->stats)
    report_stats(g, kernels0, convs0, stderr);
  if (o->emit_header)
    return header_write(g, o->output, d) ? 0 : EXIT_USER;
  int rc;
  if (o->emit_ir || o->emit_dot) {
    rc = report_write_graph(g, o->emit_dot, o->output, d) ? 0 : EXIT_USER;
  } else {
    int nstats = g->stats.len;
    rc = compile(g, o, prog, d);
    if (o->stats) /* the backend's: which kernel runs how many layers */
      report_stats_since(g, nstats, stderr);
  }
  return rc == 0 ? write_header_too(g, o, d) : rc;
}

/* Weights, the calibration (int8), the passes and the output. */
static int run(Graph *g, Options *o, bool onnx, const PassOptions *po, Progress *prog, Diag *d) {
  if (!bind_weights(g, o, onnx, prog, d))
    return EXIT_USER;
  if (o->verbose)
    fprintf(stderr, "cnncc: %s: %d nodes, %llu parameters, %.3f GMAC\n", g->name, g->nodes.len,
            (unsigned long long)g->num_params_orig, (double)ir_graph_macs(g) / 1e9);
  if (o->emit_spec) /* as the frontend made it: before the passes */
    return emit_spec_write(g, o, prog, d);
  QuantPlan plan = {0};
  int rc = 0;
  if (o->precision == PRECISION_INT8)
    rc = calibrate(o, onnx, po, prog, &plan, d);
  if (rc == 0) {
    g->quant = o->precision == PRECISION_INT8 ? &plan : NULL;
    rc = passes_and_output(g, o, po, prog, d);
    g->quant = NULL;
  }
  quant_plan_free(&plan);
  return rc;
}

int main(int argc, char **argv) {
  /* A file size limit (ulimit -f) makes a write fail with EFBIG, reported
     like a full disk, instead of killing cnncc (SIGXFSZ) with its files
     half written; the linker it runs inherits this. */
  signal(SIGXFSZ, SIG_IGN);
  Progress *prog = progress_init(); /* erases its line at exit */
  Diag *d = diag_new(progress_stream(prog), isatty(2));
  Options o;
  PassOptions po;
  int rc = options_parse(argc, argv, &o, d);
  if (rc) {
    diag_free(d);
    return rc - 1;
  }
  /* The passes and the outputs' directories are checked before any work. */
  char defout[PATH_MAX];
  if (!o.output)
    o.output = options_default_output(&o, defout, sizeof defout);
  if (!options_passes(&o, &po, d) || (strcmp(o.output, "-") != 0 && !output_dir_ok(o.output, d)) ||
      (o.header && !output_dir_ok(o.header, d)) || (o.emit_spec && !emit_spec_check(&o, d))) {
    diag_free(d);
    return EXIT_USER;
  }
  /* A cross target's runtime, linker and C library, before any work. */
  if (!o.summary && !o.emit_ir && !o.emit_dot && !o.emit_spec) {
    char rt[PATH_MAX], lld[PATH_MAX];
    BackendOptions bo = {0};
    if (!targets_check_link(&o, &bo, rt, sizeof rt, lld, sizeof lld, d)) {
      diag_free(d);
      return EXIT_USER;
    }
  }
  setup_progress(prog, &o);
  progress_step(prog, "reading %s", o.spec);
  bool onnx = onnx_file_sniff(o.spec);
  Graph *g = onnx ? load_onnx(&o, d) : spec_load_file(o.spec, d);
  progress_done(prog);
  if (!g)
    rc = EXIT_USER;
  else if (o.summary)
    report_summary(g, stdout);
  else
    rc = run(g, &o, onnx, &po, prog, d);
  ir_graph_free(g);
  diag_free(d);
  return rc;
}

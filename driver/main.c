/*
 * main.c: the cnncc command.
 *
 *   spec.yaml -frontend-> Graph -weights-> -passes-> -backend-> .so
 *
 * The driver only parses flags and calls each stage's entry point in turn;
 * the stages report user errors through one Diag. Exit status: 0 success,
 * 1 user error (spec, weights, flags), 2 internal error.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "frontend/frontend.h"
#include "ir/ir.h"
#include "passes/passes.h"
#include "progress.h"

#define EXIT_USER 1
#define EXIT_INTERNAL 2

static const char usage[] =
    "usage: cnncc SPEC.yaml [-o OUT] [options]\n"
    "\n"
    "Compiles a network spec into a shared object exporting the cnn.h ABI.\n"
    "\n"
    "options:\n"
    "  -o FILE              output file (default: SPEC's base name + .so/.ll/.s/.o/.ir)\n"
    "  --weights FILE       safetensors weights, names as in PyTorch's state_dict()\n"
    "                       (default: deterministic initialization, see docs/spec.md)\n"
    "  --seed N             seed of the deterministic initialization (default 0)\n"
    "  --external-weights   write the packed weights beside the output (OUT.weights)\n"
    "                       instead of embedding them; cnn_create(path) maps them\n"
    "  -O0 | -O1 | -O2 | -O3  optimization level (default -O2); -O0 runs no passes\n"
    "  --passes=a,b,c       run exactly these passes (see --list-passes)\n"
    "  --list-passes        list the passes and exit\n"
    "  --print-after=PASS   print the IR after PASS (or 'all') to stderr\n"
    "  --emit=KIND          so (default) | obj | asm | llvm | ir (IR text) | dot (Graphviz;\n"
    "                       after the passes, or as written with -O0)\n"
    "  --target-cpu=CPU     LLVM CPU name (default: this host's), e.g. x86-64-v3\n"
    "  --target-features=F  LLVM feature string (default: the host's when no CPU given)\n"
    "  --winograd=on|off    Winograd F(4x4,3x3) for large 3x3 stride-1 convs (default:\n"
    "                       on at -O2/-O3, off at -O0/-O1); error <= 1e-3 * max|output|\n"
    "  --tune KEY=VALUE     set a kernel tuning value (repeatable; the keys are below);\n"
    "                       values other than the defaults are named in cnn_info.compiler\n"
    "  --summary            print a per-layer table (shapes, params, MACs) and exit\n"
    "  --stats              print what each pass did\n"
    "  -v                   verbose: show the steps and the link command\n"
    "  -q, --quiet          no progress line (shown on a terminal during long steps)\n"
    "                       and no notes; errors and warnings are still printed\n"
    "  --progress=WHEN      the progress line: auto (default: when stderr is a\n"
    "                       terminal), always (also into a pipe or file), never\n"
    "  --help, --version\n"
    "\n"
    "exit status: 0 success, 1 error in the input or flags, 2 internal error\n";

typedef struct {
  const char *spec, *output, *weights;
  uint64_t seed;
  bool external_weights, summary, stats, verbose, quiet;
  const char *progress; /* --progress=WHEN; NULL: $CNNCC_PROGRESS, else auto */
  int opt;
  int winograd; /* -1: by -O level; 0 off; 1 on */
  Tuning tune;  /* --tune KEY=VALUE, over the defaults */
  const char *passes, *print_after, *target_cpu, *target_features;
  EmitKind emit;
  bool emit_ir, emit_dot;
} Options;

static bool starts(const char *s, const char *p, const char **rest) {
  size_t n = strlen(p);
  if (strncmp(s, p, n) != 0)
    return false;
  *rest = s + n;
  return true;
}

/* Returns 0 to go on, or an exit code + 1 (so 1 = exit 0). */
static int parse_args(int argc, char **argv, Options *o, Diag *d) {
  o->opt = 2;
  o->winograd = -1;
  o->emit = EMIT_SO;
  tuning_defaults(&o->tune);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage, stdout);
      fputs("\ntuning keys (--tune KEY=VALUE), with their defaults:\n", stdout);
      tuning_print_help(stdout);
      return 1;
    } else if (strcmp(a, "--tune") == 0 || starts(a, "--tune=", &v)) {
      if (strcmp(a, "--tune") == 0) {
        if (i + 1 >= argc) {
          diag_plain(d, DIAG_ERROR, "option '--tune' needs a value (KEY=VALUE, or help)");
          return EXIT_USER + 1;
        }
        v = argv[++i];
      }
      if (strcmp(v, "help") == 0) {
        printf("tuning keys (--tune KEY=VALUE), with their defaults:\n");
        tuning_print_help(stdout);
        return 1;
      }
      char err[256];
      if (!tuning_set(&o->tune, v, err, sizeof err)) {
        diag_plain(d, DIAG_ERROR, "%s", err);
        return EXIT_USER + 1;
      }
    } else if (strcmp(a, "--version") == 0) {
      printf("cnncc %s (LLVM %s)\n", CNNCC_VERSION, backend_llvm_version());
      return 1;
    } else if (strcmp(a, "--list-passes") == 0) {
      for (int k = 0; k < passes_count; k++)
        printf("%-16s -O%d  %s\n", passes_all[k].name, passes_all[k].min_opt,
               passes_all[k].summary);
      return 1;
    } else if (strcmp(a, "-o") == 0 || strcmp(a, "--weights") == 0 || strcmp(a, "--seed") == 0) {
      if (i + 1 >= argc) {
        diag_plain(d, DIAG_ERROR, "option '%s' needs a value", a);
        return EXIT_USER + 1;
      }
      const char *val = argv[++i];
      if (a[1] == 'o')
        o->output = val;
      else if (a[2] == 'w')
        o->weights = val;
      else {
        char *end;
        errno = 0;
        o->seed = strtoull(val, &end, 0);
        if (errno || *end || !*val) {
          diag_plain(d, DIAG_ERROR, "--seed expects an unsigned integer, got '%s'", val);
          return EXIT_USER + 1;
        }
      }
    } else if (starts(a, "--weights=", &v)) {
      o->weights = v;
    } else if (strcmp(a, "--external-weights") == 0) {
      o->external_weights = true;
    } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
      o->opt = a[2] - '0';
    } else if (a[0] == '-' && a[1] == 'O') {
      diag_plain(d, DIAG_ERROR, "unknown optimization level '%s': use -O0, -O1, -O2 or -O3", a);
      return EXIT_USER + 1;
    } else if (starts(a, "--passes=", &v)) {
      o->passes = v;
    } else if (starts(a, "--print-after=", &v)) {
      o->print_after = v;
    } else if (starts(a, "--emit=", &v)) {
      static const char *const kinds[] = {"ir", "llvm", "asm", "obj", "so", "dot"};
      int k = 0;
      while (k < 6 && strcmp(v, kinds[k]) != 0)
        k++;
      if (k == 6) {
        const char *s = diag_suggest(v, kinds, 6);
        diag_plain(d, DIAG_ERROR, "unknown --emit kind '%s' (ir, dot, llvm, asm, obj or so)%s%s%s",
                   v, s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
        return EXIT_USER + 1;
      }
      o->emit_ir = k == 0;
      o->emit_dot = k == 5;
      o->emit = k == 1 ? EMIT_LLVM : k == 2 ? EMIT_ASM : k == 3 ? EMIT_OBJ : EMIT_SO;
    } else if (starts(a, "--target-cpu=", &v)) {
      o->target_cpu = v;
    } else if (starts(a, "--target-features=", &v)) {
      o->target_features = v;
    } else if (starts(a, "--winograd=", &v)) {
      if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
        diag_plain(d, DIAG_ERROR, "--winograd expects 'on' or 'off', got '%s'", v);
        return EXIT_USER + 1;
      }
      o->winograd = strcmp(v, "on") == 0;
    } else if (starts(a, "--progress=", &v)) {
      if (strcmp(v, "auto") && strcmp(v, "always") && strcmp(v, "never")) {
        diag_plain(d, DIAG_ERROR, "--progress expects 'auto', 'always' or 'never', got '%s'", v);
        return EXIT_USER + 1;
      }
      o->progress = v;
    } else if (strcmp(a, "--summary") == 0) {
      o->summary = true;
    } else if (strcmp(a, "--stats") == 0) {
      o->stats = true;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
      o->verbose = true;
    } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
      o->quiet = true;
    } else if (a[0] == '-' && a[1]) {
      static const char *const known[] = {"--help",
                                          "--version",
                                          "--weights",
                                          "--seed",
                                          "--external-weights",
                                          "--passes",
                                          "--print-after",
                                          "--emit",
                                          "--target-cpu",
                                          "--target-features",
                                          "--winograd=on",
                                          "--winograd=off",
                                          "--tune",
                                          "--summary",
                                          "--stats",
                                          "--list-passes",
                                          "-o",
                                          "-O2",
                                          "--quiet",
                                          "--progress=always"};
      const char *s = diag_suggest(a, known, (int)(sizeof known / sizeof *known));
      diag_plain(d, DIAG_ERROR, "unknown option '%s'%s%s%s (see --help)", a,
                 s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
      return EXIT_USER + 1;
    } else if (!o->spec) {
      o->spec = a;
    } else {
      diag_plain(d, DIAG_ERROR, "more than one spec file given ('%s' and '%s')", o->spec, a);
      return EXIT_USER + 1;
    }
  }
  if (!o->spec) {
    diag_plain(d, DIAG_ERROR, "no spec file given (usage: cnncc SPEC.yaml -o OUT.so; see --help)");
    return EXIT_USER + 1;
  }
  return 0;
}

/* "net" from "dir/net.yaml", plus ext. */
static const char *default_output(const char *spec, const char *ext, char *out, size_t n) {
  const char *base = strrchr(spec, '/');
  base = base ? base + 1 : spec;
  size_t len = strlen(base);
  const char *dot = strrchr(base, '.');
  if (dot && dot != base)
    len = (size_t)(dot - base);
  snprintf(out, n, "%.*s%s", (int)len, base, ext);
  return out;
}

/* The runtime library: $CNNCC_RUNTIME, next to an installed cnncc
   (BIN/../lib/cnncc/libcnnrt.a), the configured install path, or the build
   tree this cnncc was built in. */
static const char *find_runtime(char *buf, size_t n) {
  const char *env = getenv("CNNCC_RUNTIME");
  if (env && *env)
    return env;
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len > 0) {
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = 0;
      int len1 = snprintf(buf, n, "%s/../lib/cnncc/libcnnrt.a", exe);
      if (len1 > 0 && (size_t)len1 < n && access(buf, R_OK) == 0)
        return buf;
      int len2 = snprintf(buf, n, "%s/libcnnrt.a", exe);
      if (len2 > 0 && (size_t)len2 < n && access(buf, R_OK) == 0)
        return buf;
    }
  }
  if (access(CNNCC_RUNTIME_INSTALL_PATH, R_OK) == 0)
    return CNNCC_RUNTIME_INSTALL_PATH;
  return CNNCC_RUNTIME_BUILD_PATH;
}

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

/* Kernel launches per sample: every live node but inputs, views, elided
   concats and the slices of split convs (written by their producer). */
static int count_kernels(const Graph *g, int *convs) {
  int k = 0;
  *convs = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    if (n->dead || n->op == OP_INPUT || (ir_ops[n->op].flags & OPF_VIEW) || n->elided)
      continue;
    k++;
    *convs += n->op == OP_CONV2D;
  }
  return k;
}

static void human_bytes(int64_t b, char *buf, size_t n) {
  if (b >= 10 * 1024 * 1024)
    snprintf(buf, n, "%.1f MB", (double)b / (1024.0 * 1024.0));
  else if (b >= 10 * 1024)
    snprintf(buf, n, "%.1f KB", (double)b / 1024.0);
  else
    snprintf(buf, n, "%lld B", (long long)b);
}

static void print_summary(const Graph *g, FILE *out) {
  char shp[64], bytes[32];
  fprintf(out, "%-36s %-18s %-16s %14s %16s %12s\n", "layer", "op", "output", "params", "MACs",
          "activations");
  uint64_t tp = 0, tm = 0;
  int64_t ta = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    if (n->dead)
      continue;
    uint64_t p = 0;
    for (int k = 0; k < n->nparams; k++)
      if (n->params[k] && n->params[k]->trainable)
        p += (uint64_t)param_numel(n->params[k]);
    uint64_t m = ir_node_macs(n);
    int64_t a = shape_numel(&n->shape) * 4;
    tp += p;
    tm += m;
    ta += a;
    human_bytes(a, bytes, sizeof bytes);
    fprintf(out, "%-36s %-18s %-16s %14llu %16llu %12s\n", n->name, ir_ops[n->op].name,
            shape_str(&n->shape, shp, sizeof shp), (unsigned long long)p, (unsigned long long)m,
            bytes);
  }
  human_bytes(ta, bytes, sizeof bytes);
  fprintf(out, "%-36s %-18s %-16s %14llu %16llu %12s\n", "total", "", "", (unsigned long long)tp,
          (unsigned long long)tm, bytes);
  fprintf(out, "parameters: %llu (%.2f M)   MACs: %llu (%.3f G)   activations: %s per sample\n",
          (unsigned long long)tp, (double)tp / 1e6, (unsigned long long)tm, (double)tm / 1e9,
          bytes);
}

/* "PREFIXunknown pass 'NAME'; did you mean 'X'? (see --list-passes)" */
static void unknown_pass(Diag *d, const char *prefix, const char *name) {
  const char *cands[64];
  int nc = 0;
  for (int i = 0; i < passes_count && nc < 64; i++)
    cands[nc++] = passes_all[i].name;
  const char *s = diag_suggest(name, cands, nc);
  diag_plain(d, DIAG_ERROR, "%sunknown pass '%s'%s%s%s (see --list-passes)", prefix, name,
             s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
}

static bool split_passes(const char *list, PassOptions *po, Diag *d) {
  static const char *names[64];
  int n = 0;
  char *copy = strdup(list);
  bool ok = true;
  for (char *save, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    const PassInfo *p = passes_lookup(t);
    if (!p) {
      unknown_pass(d, "", t);
      ok = false;
    } else if (n < 64) {
      names[n++] = p->name;
    }
  }
  free(copy);
  po->only = names;
  po->nonly = n;
  return ok;
}

/* cnn_info.compiler: "cnncc VERSION (LLVM X) -On cpu=CPU", then whatever
   else changed the generated code: a --winograd other than the -O level's
   default and the --tune values other than the defaults (malloc'd). */
static char *compiler_ident(const Options *o) {
  char *cpu = o->target_cpu ? NULL : backend_host_cpu();
  char *tune = tuning_describe(&o->tune);
  bool wino_default = o->winograd < 0 || o->winograd == (o->opt >= 2);
  char *s = xasprintf("cnncc %s (LLVM %s) -O%d cpu=%s%s%s%s", CNNCC_VERSION, backend_llvm_version(),
                      o->opt, o->target_cpu ? o->target_cpu : cpu,
                      wino_default  ? ""
                      : o->winograd ? " winograd=on"
                                    : " winograd=off",
                      *tune ? " tune=" : "", tune);
  free(tune);
  free(cpu);
  return s;
}

int main(int argc, char **argv) {
  Progress *prog = progress_init(); /* erases its line at exit */
  Diag *d = diag_new(progress_stream(prog), isatty(2));
  Options o = {0};
  int rc = parse_args(argc, argv, &o, d);
  if (rc) {
    diag_free(d);
    return rc - 1;
  }
  PassOptions po = {.opt_level = o.opt, .print_after = o.print_after, .print_out = stderr};
  if (o.passes && !split_passes(o.passes, &po, d)) {
    diag_free(d);
    return EXIT_USER;
  }
  if (o.print_after && strcmp(o.print_after, "all") != 0 && !passes_lookup(o.print_after)) {
    unknown_pass(d, "--print-after: ", o.print_after);
    diag_free(d);
    return EXIT_USER;
  }

  /* The output's directory is checked before any work, with one message
     for every output kind. */
  static const char *const exts[] = {
      [EMIT_LLVM] = ".ll", [EMIT_ASM] = ".s", [EMIT_OBJ] = ".o", [EMIT_SO] = ".so"};
  char defout[PATH_MAX];
  if (!o.output)
    o.output = default_output(o.spec,
                              o.emit_ir    ? ".ir"
                              : o.emit_dot ? ".dot"
                                           : exts[o.emit],
                              defout, sizeof defout);
  if (strcmp(o.output, "-") != 0 && !output_dir_ok(o.output, d)) {
    diag_free(d);
    return EXIT_USER;
  }

  /* The progress line: --progress=WHEN, else $CNNCC_PROGRESS (always or 1,
     never or 0, auto); -q, -v and --print-after turn it off whatever WHEN. */
  const char *when = o.progress ? o.progress : getenv("CNNCC_PROGRESS");
  if (when && (strcmp(when, "always") == 0 || strcmp(when, "1") == 0))
    progress_force(prog);
  if (o.quiet || o.verbose || o.print_after ||
      (when && (strcmp(when, "never") == 0 || strcmp(when, "0") == 0)))
    progress_disable(prog);
  /* The steps, for "[i/n]": spec, weights, passes, then the backend's
     (backend/codegen.c): packing weights, generating kernels, optimizing
     with LLVM, machine code or LLVM IR, and linking for a .so. */
  progress_plan(prog, o.summary ? 1
                                : 2 + (o.weights != NULL) +
                                      (o.emit_ir || o.emit_dot ? 0 : 4 + (o.emit == EMIT_SO)));
  progress_step(prog, "reading %s", o.spec);
  Graph *g = spec_load_file(o.spec, d);
  progress_done(prog);
  if (!g) {
    diag_free(d);
    return EXIT_USER;
  }
  if (o.summary) {
    print_summary(g, stdout);
    ir_graph_free(g);
    diag_free(d);
    return 0;
  }
  if (o.weights) {
    progress_step(prog, "reading weights %s", o.weights);
    bool ok = weights_load_progress(g, o.weights, d, progress_hook(prog));
    progress_done(prog);
    if (!ok) {
      ir_graph_free(g);
      diag_free(d);
      return EXIT_USER;
    }
  } else {
    weights_init_deterministic(g, o.seed);
    if (!o.quiet)
      diag_plain(d, DIAG_NOTE,
                 "no --weights given: using the deterministic initialization (seed %llu)",
                 (unsigned long long)o.seed);
  }
  if (o.verbose)
    fprintf(stderr, "cnncc: %s: %d nodes, %llu parameters, %.3f GMAC\n", g->name, g->nodes.len,
            (unsigned long long)g->num_params_orig, (double)ir_graph_macs(g) / 1e9);

  po.verify = true; /* ir_verify after every pass: cheap, and a broken pass stops here */
  progress_step(prog, "running the passes (-O%d)", o.opt);
  int convs0, kernels0 = count_kernels(g, &convs0);
  passes_run(g, &po);
  progress_done(prog);
  if (o.stats) {
    for (int i = 0; i < g->stats.len; i++) {
      PassStat *s = g->stats.items[i];
      fprintf(stderr, "%s: %s\n", s->pass, s->text);
    }
    int convs1, kernels1 = count_kernels(g, &convs1);
    fprintf(stderr, "kernels: %d launched per sample (%d convs); as written: %d (%d convs)\n",
            kernels1, convs1, kernels0, convs0);
  }

  if (o.emit_ir || o.emit_dot) {
    FILE *f = strcmp(o.output, "-") == 0 ? stdout : fopen(o.output, "w");
    if (!f) {
      diag_plain(d, DIAG_ERROR, "cannot write '%s': %s", o.output, strerror(errno));
      rc = EXIT_USER;
    } else {
      if (o.emit_dot)
        ir_print_dot(g, f);
      else
        ir_print(g, f);
      if (f != stdout && fclose(f) != 0) {
        diag_plain(d, DIAG_ERROR, "cannot write '%s': %s", o.output, strerror(errno));
        remove(o.output);
        rc = EXIT_USER;
      }
    }
  } else {
    char rtbuf[PATH_MAX];
    o.tune.winograd = o.winograd >= 0 ? o.winograd : o.opt >= 2;
    char *ident = compiler_ident(&o);
    const char *cc = getenv("CC");
    BackendOptions bo = {
        .output = o.output,
        .emit = o.emit,
        .opt_level = o.opt,
        .target_cpu = o.target_cpu,
        .target_features = o.target_features,
        .external_weights = o.external_weights,
        .runtime_lib = find_runtime(rtbuf, sizeof rtbuf),
        .cc = cc && *cc ? cc : "cc",
        .tmpdir = getenv("TMPDIR"),
        .compiler_ident = ident,
        .verbose = o.verbose,
        .progress = progress_hook(prog),
        .tune = o.tune,
    };
    rc = backend_compile(g, &bo, d); /* its steps come through bo.progress */
    progress_done(prog);
    free(ident);
  }
  ir_graph_free(g);
  diag_free(d);
  return rc;
}

/*
 * options.c: the command line of cnncc.
 *
 * One table lists every option: its name (and short alias), whether it
 * takes a value, the function that applies it to Options, and its lines of
 * --help. An option with a value takes it as the next argument or after
 * '=' (`--emit llvm`, `--emit=llvm`; short options only the former:
 * `-o out.so`). Each apply function checks its value and reports a wrong one
 * itself, naming the option and what it expects. An unknown option gets a
 * "did you mean" from the table's names.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

/* Returns 0 to go on, EXIT_USER + 1 after a reported error, 1 to exit 0. */
typedef int (*ApplyFn)(Options *o, const char *v, Diag *d);

typedef struct {
  const char *name, *alias; /* "--quiet", "-q" */
  bool value;               /* takes a value */
  const char *hint;         /* after "option '-o' needs a value"; NULL: none */
  ApplyFn apply;            /* NULL: handled by the parser itself (-O0..-O3) */
  const char *usage;        /* the left column of --help; NULL: not listed */
  const char *help;         /* its lines of --help */
} OptionDef;

static int bad(Diag *d, const char *fmt, const char *a, const char *b) {
  diag_plain(d, DIAG_ERROR, fmt, a, b);
  return EXIT_USER + 1;
}

/* --------------------------------------------------------- apply functions */

static void print_tuning_keys(void) {
  printf("tuning keys (--tune KEY=VALUE), with their defaults:\n");
  tuning_print_help(stdout);
}

static void print_help(void);

static int opt_help(Options *o, const char *v, Diag *d) {
  print_help();
  return 1;
}
static int opt_version(Options *o, const char *v, Diag *d) {
  printf("cnncc %s (LLVM %s)\n", CNNCC_VERSION, backend_llvm_version());
  return 1;
}
static int opt_list_passes(Options *o, const char *v, Diag *d) {
  for (int k = 0; k < passes_count; k++)
    if (passes_all[k].min_opt == PASS_NAMED_ONLY)
      printf("%-16s --passes only  %s\n", passes_all[k].name, passes_all[k].summary);
    else
      printf("%-16s -O%d  %s\n", passes_all[k].name, passes_all[k].min_opt, passes_all[k].summary);
  return 1;
}
static int opt_output(Options *o, const char *v, Diag *d) {
  o->output = v;
  return 0;
}
static int opt_weights(Options *o, const char *v, Diag *d) {
  o->weights = v;
  return 0;
}
static int opt_seed(Options *o, const char *v, Diag *d) {
  char *end;
  errno = 0;
  o->seed = strtoull(v, &end, 0);
  if (errno || *end || !*v)
    return bad(d, "--seed expects an unsigned integer, got '%s'%s", v, "");
  return 0;
}
static int opt_external_weights(Options *o, const char *v, Diag *d) {
  o->external_weights = true;
  return 0;
}
static int opt_passes(Options *o, const char *v, Diag *d) {
  o->passes = v;
  return 0;
}
static int opt_print_after(Options *o, const char *v, Diag *d) {
  o->print_after = v;
  return 0;
}
static int opt_emit_header(Options *o, const char *v, Diag *d);
static int opt_emit(Options *o, const char *v, Diag *d) {
  static const char *const kinds[] = {"ir", "llvm", "asm", "obj", "so", "dot", "spec", "header"};
  int k = 0;
  while (k < 8 && strcmp(v, kinds[k]) != 0)
    k++;
  if (k == 8) {
    const char *s = diag_suggest(v, kinds, 8);
    diag_plain(d, DIAG_ERROR,
               "unknown --emit kind '%s' (ir, dot, spec, header, llvm, asm, obj or so)%s%s%s", v,
               s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
    return EXIT_USER + 1;
  }
  if (k == 7) /* `--emit header`, the form without '=' */
    return opt_emit_header(o, v, d);
  o->emit_header = false; /* the last --emit given wins */
  o->emit_ir = k == 0;
  o->emit_dot = k == 5;
  o->emit_spec = k == 6;
  o->emit = k == 1 ? EMIT_LLVM : k == 2 ? EMIT_ASM : k == 3 ? EMIT_OBJ : EMIT_SO;
  return 0;
}
static int opt_target(Options *o, const char *v, Diag *d) {
  const BackendTarget *t = backend_find_target(v);
  if (t) {
    o->target_triple = t->triple;
    return 0;
  }
  int n;
  const BackendTarget *all = backend_targets(&n);
  const char *cands[16];
  for (int i = 0; i < n && i < 16; i++)
    cands[i] = all[i].triple;
  const char *s = diag_suggest(v, cands, n < 16 ? n : 16);
  char list[256] = "";
  for (int i = 0; i < n; i++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", all[i].triple);
  diag_plain(d, DIAG_ERROR, "unknown target '%s' (cnncc compiles for %s; see --list-targets)%s%s%s",
             v, list, s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
  return EXIT_USER + 1;
}
static int opt_list_targets(Options *o, const char *v, Diag *d) {
  targets_list(stdout);
  return 1;
}
/* --emit=header: a row of its own (its line in --help), before --emit's,
   so that it is matched first; `--emit header` comes through opt_emit. */
static int opt_emit_header(Options *o, const char *v, Diag *d) {
  o->emit_ir = o->emit_dot = o->emit_spec = false;
  o->emit = EMIT_SO;
  o->emit_header = true;
  return 0;
}
static int opt_header(Options *o, const char *v, Diag *d) {
  o->header = v;
  return 0;
}
static int opt_target_cpu(Options *o, const char *v, Diag *d) {
  o->target_cpu = v;
  return 0;
}
static int opt_target_features(Options *o, const char *v, Diag *d) {
  o->target_features = v;
  return 0;
}
static int opt_winograd(Options *o, const char *v, Diag *d) {
  if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
    return bad(d, "--winograd expects 'on' or 'off', got '%s'%s", v, "");
  o->winograd = strcmp(v, "on") == 0;
  return 0;
}
static int opt_precision(Options *o, const char *v, Diag *d) {
  if (strcmp(v, "fp32") != 0 && strcmp(v, "bf16") != 0 && strcmp(v, "int8") != 0)
    return bad(d, "--precision expects 'fp32', 'bf16' or 'int8', got '%s'%s", v, "");
  o->precision = strcmp(v, "bf16") == 0   ? PRECISION_BF16
                 : strcmp(v, "int8") == 0 ? PRECISION_INT8
                                          : PRECISION_FP32;
  return 0;
}
static int opt_calibrate(Options *o, const char *v, Diag *d) {
  o->calibrate = v;
  return 0;
}
/* minmax, entropy, or percentile[:P] with 50 < P <= 100 (default 99.99). */
static int opt_calibrate_method(Options *o, const char *v, Diag *d) {
  o->calib_entropy = strcmp(v, "entropy") == 0;
  if (strcmp(v, "minmax") == 0 || o->calib_entropy) {
    o->calib_percentile = 0;
    return 0;
  }
  if (strncmp(v, "percentile", 10) == 0 && (!v[10] || v[10] == ':')) {
    o->calib_percentile = 99.99;
    if (!v[10])
      return 0;
    char *end;
    errno = 0;
    double p = strtod(v + 11, &end);
    if (!errno && end != v + 11 && !*end && p > 50 && p <= 100) {
      o->calib_percentile = p;
      return 0;
    }
  }
  return bad(d,
             "--calibrate-method expects 'minmax', 'entropy', 'percentile' or 'percentile:P' "
             "(50 < P <= 100), got '%s'%s",
             v, "");
}
static int opt_tune(Options *o, const char *v, Diag *d) {
  if (strcmp(v, "help") == 0) {
    print_tuning_keys();
    return 1;
  }
  char err[256];
  if (!tuning_set(&o->tune, v, err, sizeof err))
    return bad(d, "%s%s", err, "");
  return 0;
}
/* NAME=CxHxW or NAME=F: an ONNX input's shape per sample. */
static int opt_input_shape(Options *o, const char *v, Diag *d) {
  const char *eq = strrchr(v, '=');
  if (!eq || eq == v)
    return bad(d, "--input-shape expects NAME=CxHxW or NAME=F, got '%s'%s", v, "");
  if (o->nshapes == (int)(sizeof o->shapes / sizeof o->shapes[0]))
    return bad(d, "too many --input-shape options (at most 16)%s%s", "", "");
  OnnxInputShape *s = &o->shapes[o->nshapes];
  s->name = strndup(v, (size_t)(eq - v));
  s->rank = 0;
  for (const char *p = eq + 1;;) {
    char *end;
    errno = 0;
    long long x = strtoll(p, &end, 10);
    if (end == p || errno || x <= 0 || x > ((int64_t)1 << 31) || s->rank == 3 ||
        (*end && *end != 'x'))
      return bad(d, "--input-shape expects NAME=CxHxW or NAME=F with positive sizes, got '%s'%s", v,
                 "");
    s->dims[s->rank++] = x;
    if (!*end)
      break;
    p = end + 1;
  }
  if (s->rank == 2)
    return bad(d, "--input-shape '%s': a per-sample shape is CxHxW (an image) or F (a vector)%s", v,
               "");
  o->nshapes++;
  return 0;
}

static int opt_summary(Options *o, const char *v, Diag *d) {
  o->summary = true;
  return 0;
}
static int opt_stats(Options *o, const char *v, Diag *d) {
  o->stats = true;
  return 0;
}
static int opt_verbose(Options *o, const char *v, Diag *d) {
  o->verbose = true;
  return 0;
}
static int opt_quiet(Options *o, const char *v, Diag *d) {
  o->quiet = true;
  return 0;
}
static int opt_progress(Options *o, const char *v, Diag *d) {
  if (strcmp(v, "auto") && strcmp(v, "always") && strcmp(v, "never"))
    return bad(d, "--progress expects 'auto', 'always' or 'never', got '%s'%s", v, "");
  o->progress = v;
  return 0;
}

/* ---------------------------------------------------------------- the table */

static const OptionDef options[] = {
    {"-o", NULL, true, NULL, opt_output, "-o FILE",
     "output file (default: SPEC's base name + .so/.ll/.s/.o/.ir/.yaml)"},
    {"--weights", NULL, true, NULL, opt_weights, "--weights FILE",
     "safetensors weights, names as in PyTorch's state_dict()\n"
     "(default: deterministic initialization, see docs/spec.md)"},
    {"--seed", NULL, true, NULL, opt_seed, "--seed N",
     "seed of the deterministic initialization (default 0)"},
    {"--external-weights", NULL, false, NULL, opt_external_weights, "--external-weights",
     "write the packed weights beside the output (OUT.weights)\n"
     "instead of embedding them; cnn_create(path) maps them"},
    {"-O", NULL, false, NULL, NULL, "-O0 | -O1 | -O2 | -O3",
     "optimization level (default -O2); -O0 runs no passes"},
    {"--passes", NULL, true, NULL, opt_passes, "--passes=a,b,c",
     "run exactly these passes (see --list-passes)"},
    {"--list-passes", NULL, false, NULL, opt_list_passes, "--list-passes",
     "list the passes and exit"},
    {"--print-after", NULL, true, NULL, opt_print_after, "--print-after=PASS",
     "print the IR after PASS (or 'all') to stderr"},
    {"--emit=header", NULL, false, NULL, opt_emit_header, "--emit=header",
     "the typed C header of the network (names, sizes, inline\n"
     "wrappers over cnn_run; docs/abi.md) instead of code"},
    {"--header", NULL, true, NULL, opt_header, "--header FILE",
     "also write the typed C header to FILE (with a .so)"},
    {"--emit", NULL, true, NULL, opt_emit, "--emit=KIND",
     "so (default) | obj | asm | llvm | ir (IR text) | dot (Graphviz;\n"
     "after the passes, or as written with -O0) | spec (the network\n"
     "as a flat spec, OUT.yaml, with its weights, OUT.safetensors)\n"
     "| header (as --emit=header); the last --emit given counts"},
    {"--target", NULL, true, NULL, opt_target, "--target=TRIPLE",
     "the machine the .so is for: x86_64-linux-gnu or\n"
     "aarch64-linux-gnu (default: this host's; see --list-targets)"},
    {"--list-targets", NULL, false, NULL, opt_list_targets, "--list-targets",
     "list the target triples, their tested CPUs, and exit"},
    {"--target-cpu", NULL, true, NULL, opt_target_cpu, "--target-cpu=CPU",
     "LLVM CPU name (default: this host's, or the triple's\n"
     "default), e.g. x86-64-v3, cortex-a72"},
    {"--target-features", NULL, true, NULL, opt_target_features, "--target-features=F",
     "LLVM feature string (default: the host's when no CPU given)"},
    {"--winograd", NULL, true, NULL, opt_winograd, "--winograd=on|off",
     "Winograd F(4x4,3x3) for large 3x3 stride-1 convs (default:\n"
     "on at -O2/-O3, off at -O0/-O1); error <= 1e-3 * max|output|"},
    {"--precision", NULL, true, NULL, opt_precision, "--precision=P",
     "fp32 (default); bf16: conv and linear weights stored as\n"
     "bfloat16 (half the bytes), computed in fp32, error <= 2e-2 *\n"
     "max|output|; int8: conv and linear layers quantized (u8\n"
     "activations, s8 weights per channel; VNNI, AVX2 or AMX), needs\n"
     "--calibrate (docs/precision.md)"},
    {"--calibrate", NULL, true, NULL, opt_calibrate, "--calibrate=FILE",
     "int8: calibration inputs, float32, raw (a whole number of\n"
     "inputs) or .npy; the activation ranges are measured on them"},
    {"--calibrate-method", NULL, true, NULL, opt_calibrate_method, "--calibrate-method=M",
     "int8: minmax, entropy, or percentile[:P] (default:\n"
     "percentile:99.99): each activation range clipped to its P-th\n"
     "percentiles, or where the KL divergence of its quantization is least"},
    {"--tune", NULL, true, " (KEY=VALUE, or help)", opt_tune, "--tune KEY=VALUE",
     "set a kernel tuning value (repeatable; the keys are below);\n"
     "values other than the defaults are named in cnn_info.compiler"},
    {"--input-shape", NULL, true, NULL, opt_input_shape, "--input-shape N=CxHxW",
     "an ONNX input's shape per sample, where the model leaves it\n"
     "symbolic (repeatable; the first dimension is always the batch)"},
    {"--summary", NULL, false, NULL, opt_summary, "--summary",
     "print a per-layer table (shapes, params, MACs) and exit"},
    {"--stats", NULL, false, NULL, opt_stats, "--stats",
     "print what each pass did and which kernel runs each layer"},
    {"--verbose", "-v", false, NULL, opt_verbose, "-v",
     "verbose: show the steps and the link command"},
    {"--quiet", "-q", false, NULL, opt_quiet, "-q, --quiet",
     "no progress line (shown on a terminal during long steps)\n"
     "and no notes; errors and warnings are still printed"},
    {"--progress", NULL, true, NULL, opt_progress, "--progress=WHEN",
     "the progress line: auto (default: when stderr is a\n"
     "terminal), always (also into a pipe or file), never"},
    {"--help", "-h", false, NULL, opt_help, "--help, --version", ""},
    {"--version", NULL, false, NULL, opt_version, NULL, NULL},
};
#define NOPTIONS ((int)(sizeof options / sizeof options[0]))

static void print_help(void) {
  printf("usage: cnncc SPEC.yaml|MODEL.onnx [-o OUT] [options]\n"
         "\n"
         "Compiles a network spec or an ONNX model into a shared object exporting\n"
         "the cnn.h ABI. The input's kind is decided by its content.\n"
         "\n"
         "options:\n");
  for (int k = 0; k < NOPTIONS; k++) {
    const OptionDef *od = &options[k];
    if (!od->usage)
      continue;
    int len = (int)strlen(od->usage);
    printf("  %s%*s", od->usage, len > 20 ? 2 : 21 - len, "");
    for (const char *p = od->help; *p; p++) {
      putchar(*p);
      if (*p == '\n')
        printf("  %-20s ", "");
    }
    putchar('\n');
  }
  printf("\n"
         "exit status: 0 success, 1 error in the input or flags, 2 internal error\n"
         "\n");
  print_tuning_keys();
}

/* ------------------------------------------------------------------ parsing */

static const OptionDef *find_option(const char *arg, const char **value) {
  *value = NULL;
  for (int k = 0; k < NOPTIONS; k++) {
    const OptionDef *od = &options[k];
    if (!od->apply)
      continue;
    if (strcmp(arg, od->name) == 0 || (od->alias && strcmp(arg, od->alias) == 0))
      return od;
    size_t n = strlen(od->name);
    if (od->value && od->name[1] == '-' && strncmp(arg, od->name, n) == 0 && arg[n] == '=') {
      *value = arg + n + 1;
      return od;
    }
  }
  return NULL;
}

static int unknown_option(const char *a, Diag *d) {
  const char *cands[NOPTIONS * 2 + 8];
  int nc = 0;
  for (int k = 0; k < NOPTIONS; k++) {
    if (!options[k].apply)
      continue;
    cands[nc++] = options[k].name;
    if (options[k].alias)
      cands[nc++] = options[k].alias;
  }
  cands[nc++] = "--winograd=on";
  cands[nc++] = "--winograd=off";
  cands[nc++] = "--progress=always";
  cands[nc++] = "--precision=bf16";
  cands[nc++] = "-O2";
  const char *s = diag_suggest(a, cands, nc);
  diag_plain(d, DIAG_ERROR, "unknown option '%s'%s%s%s (see --help)", a,
             s ? "; did you mean '" : "", s ? s : "", s ? "'?" : "");
  return EXIT_USER + 1;
}

int options_parse(int argc, char **argv, Options *o, Diag *d) {
  memset(o, 0, sizeof *o);
  o->opt = 2;
  o->winograd = -1;
  o->calib_percentile = 99.99; /* --calibrate-method=percentile */
  o->emit = EMIT_SO;
  tuning_defaults(&o->tune);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    const OptionDef *od = a[0] == '-' ? find_option(a, &v) : NULL;
    int rc = 0;
    if (od) {
      if (od->value && !v) {
        if (i + 1 >= argc)
          return bad(d, "option '%s' needs a value%s", a, od->hint ? od->hint : "");
        v = argv[++i];
      }
      rc = od->apply(o, v, d);
    } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
      o->opt = a[2] - '0';
    } else if (a[0] == '-' && a[1] == 'O') {
      rc = bad(d, "unknown optimization level '%s': use -O0, -O1, -O2 or -O3%s", a, "");
    } else if (a[0] == '-' && a[1]) {
      rc = unknown_option(a, d);
    } else if (!o->spec) {
      o->spec = a;
    } else {
      rc = bad(d, "more than one spec file given ('%s' and '%s')", o->spec, a);
    }
    if (rc)
      return rc;
  }
  if (!o->spec)
    return bad(d, "no spec file given (usage: cnncc SPEC.yaml -o OUT.so; see --help)%s%s", "", "");
  if (o->precision == PRECISION_INT8 && !o->calibrate && !o->summary && !o->emit_spec)
    return bad(d, "--precision=int8 needs --calibrate=FILE (float32 inputs, raw or .npy)%s%s", "",
               "");
  if (o->calibrate && o->precision != PRECISION_INT8)
    return bad(d, "--calibrate is for --precision=int8%s%s", "", "");
  if (o->header && o->emit_spec) /* the spec is written before the passes; the header after */
    return bad(d, "--header goes with a compiled output or --emit=ir/dot, not --emit=spec%s%s", "",
               "");
  return 0;
}

/* ------------------------------------------------------------ derived values */

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

bool options_passes(const Options *o, PassOptions *po, Diag *d) {
  static const char *names[64];
  *po = (PassOptions){.opt_level = o->opt, .print_after = o->print_after, .print_out = stderr};
  po->verify = true; /* ir_verify after every pass: cheap, and a broken pass stops there */
  bool ok = true;
  if (o->passes) {
    int n = 0;
    char *copy = xstrdup(o->passes);
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
  }
  if (ok && o->print_after && strcmp(o->print_after, "all") != 0 &&
      !passes_lookup(o->print_after)) {
    unknown_pass(d, "--print-after: ", o->print_after);
    ok = false;
  }
  return ok;
}

const char *options_default_output(const Options *o, char *buf, size_t n) {
  static const char *const exts[] = {
      [EMIT_LLVM] = ".ll", [EMIT_ASM] = ".s", [EMIT_OBJ] = ".o", [EMIT_SO] = ".so"};
  const char *ext = o->emit_header ? ".h"
                    : o->emit_ir   ? ".ir"
                    : o->emit_dot  ? ".dot"
                    : o->emit_spec ? ".yaml"
                                   : exts[o->emit];
  const char *base = strrchr(o->spec, '/');
  base = base ? base + 1 : o->spec;
  size_t len = strlen(base);
  const char *dot = strrchr(base, '.');
  if (dot && dot != base)
    len = (size_t)(dot - base);
  snprintf(buf, n, "%.*s%s", (int)len, base, ext);
  return buf;
}

char *options_compiler_ident(const Options *o) {
  const BackendTarget *t =
      o->target_triple ? backend_find_target(o->target_triple) : backend_host_target();
  bool cross = targets_is_cross(o->target_triple);
  char *cpu = o->target_cpu ? NULL : cross ? xstrdup(t->default_cpu) : backend_host_cpu();
  char *tune = tuning_describe(&o->tune);
  bool wino_default = o->winograd < 0 || o->winograd == (o->opt >= 2);
  char *s = xasprintf("cnncc %s (LLVM %s) -O%d target=%s cpu=%s%s%s%s%s%s%s", CNNCC_VERSION,
                      backend_llvm_version(), o->opt, t ? t->triple : "unknown",
                      o->target_cpu ? o->target_cpu : cpu, o->target_features ? " features=" : "",
                      o->target_features ? o->target_features : "",
                      wino_default  ? ""
                      : o->winograd ? " winograd=on"
                                    : " winograd=off",
                      o->precision == PRECISION_BF16   ? " precision=bf16"
                      : o->precision == PRECISION_INT8 ? " precision=int8"
                                                       : "",
                      *tune ? " tune=" : "", tune);
  free(tune);
  free(cpu);
  return s;
}

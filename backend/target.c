/*
 * target.c: the machine side of the backend.
 *
 * The target is the host by default: LLVMGetHostCPUName() for the CPU and,
 * separately, LLVMGetHostCPUFeatures() for the features (on virtual machines
 * the name can be wrong while the feature list is right, so the features
 * are never inferred from the name). --target-cpu/--target-features
 * override them; a CPU given without features gets that CPU's defaults.
 * Code is position independent (it goes into a shared object).
 *
 * Optimization is the new pass manager's default<On> pipeline. Emission
 * writes an object or assembly file; the final link runs the C compiler
 * driver with fork/execvp (no shell, so no quoting problems) and captures
 * its stderr for the error message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "backend_internal.h"

#ifndef CNNCC_LLVM_VERSION
#define CNNCC_LLVM_VERSION "19"
#endif

const char *backend_llvm_version(void) {
  static char buf[32];
  unsigned maj, min, pat;
  LLVMGetVersion(&maj, &min, &pat);
  snprintf(buf, sizeof buf, "%u.%u.%u", maj, min, pat);
  return buf;
}

char *backend_host_cpu(void) {
  char *s = LLVMGetHostCPUName();
  char *r = strdup(s ? s : "");
  LLVMDisposeMessage(s);
  return r;
}

char *backend_host_features(void) {
  char *s = LLVMGetHostCPUFeatures();
  char *r = strdup(s ? s : "");
  LLVMDisposeMessage(s);
  return r;
}

/* ------------------------------------------------------------ the targets */

/* Every triple cnncc compiles for: the table --target and --list-targets
   read. A triple other than the host's needs its runtime built at cnncc's
   build time (CMakeLists.txt, CNNCC_CROSS_TARGETS) and ld.lld to link. */
static const BackendTarget targets[] = {
    {"x86_64-linux-gnu", "x86_64-pc-linux-gnu", NULL,
     "native, x86-64-v4 (AVX-512), x86-64-v3 (AVX2+FMA), x86-64-v2 (SSE4.2)",
     "x86-64 Linux, glibc; the default CPU is the host's"},
    {"aarch64-linux-gnu", "aarch64-unknown-linux-gnu", "generic",
     "generic (ARMv8.0-A, NEON), cortex-a72",
     "64-bit Arm Linux, glibc (Raspberry Pi 4/5, Graviton, Ampere)"},
};
#define NTARGETS ((int)(sizeof targets / sizeof targets[0]))

const BackendTarget *backend_targets(int *n) {
  *n = NTARGETS;
  return targets;
}

/* The architecture part of a triple ("aarch64" of "aarch64-unknown-linux-gnu"),
   with LLVM's other names for it. */
static size_t arch_len(const char *triple) {
  const char *dash = strchr(triple, '-');
  return dash ? (size_t)(dash - triple) : strlen(triple);
}

static bool same_arch(const char *a, const char *b) {
  size_t la = arch_len(a), lb = arch_len(b);
  bool a64 = (la == 7 && strncmp(a, "aarch64", 7) == 0) || (la == 5 && strncmp(a, "arm64", 5) == 0);
  bool b64 = (lb == 7 && strncmp(b, "aarch64", 7) == 0) || (lb == 5 && strncmp(b, "arm64", 5) == 0);
  if (a64 || b64)
    return a64 && b64;
  bool ax = (la == 6 && strncmp(a, "x86_64", 6) == 0) || (la == 5 && strncmp(a, "amd64", 5) == 0);
  bool bx = (lb == 6 && strncmp(b, "x86_64", 6) == 0) || (lb == 5 && strncmp(b, "amd64", 5) == 0);
  return ax && bx;
}

const BackendTarget *backend_find_target(const char *triple) {
  if (!triple)
    return NULL;
  /* ARCH-linux-gnu, or ARCH-VENDOR-linux-gnu with any vendor */
  const char *rest = triple + arch_len(triple);
  if (*rest == '-') {
    const char *os = rest + 1;
    if (strcmp(os, "linux-gnu") != 0) {
      const char *dash = strchr(os, '-');
      os = dash ? dash + 1 : os;
    }
    if (strcmp(os, "linux-gnu") != 0)
      return NULL;
  } else {
    return NULL;
  }
  for (int i = 0; i < NTARGETS; i++)
    if (same_arch(triple, targets[i].triple))
      return &targets[i];
  return NULL;
}

const BackendTarget *backend_host_target(void) {
  char *host = LLVMGetDefaultTargetTriple();
  const BackendTarget *t = NULL;
  for (int i = 0; i < NTARGETS && !t; i++)
    if (same_arch(host, targets[i].triple))
      t = &targets[i];
  LLVMDisposeMessage(host);
  return t;
}

static bool is_host(const BackendTarget *t) { return t && t == backend_host_target(); }

static void init_llvm(void) {
  /* Idempotent in LLVM; the asm parser is needed for module-level .incbin.
     The native target and AArch64 (the cross target). */
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  LLVMInitializeNativeAsmParser();
  LLVMInitializeX86TargetInfo();
  LLVMInitializeX86Target();
  LLVMInitializeX86TargetMC();
  LLVMInitializeX86AsmPrinter();
  LLVMInitializeX86AsmParser();
  LLVMInitializeAArch64TargetInfo();
  LLVMInitializeAArch64Target();
  LLVMInitializeAArch64TargetMC();
  LLVMInitializeAArch64AsmPrinter();
  LLVMInitializeAArch64AsmParser();
}

/* What the probe learnt about a CPU and feature string. */
typedef struct {
  int lanes; /* 0: not probed */
  bool fma;
  int vnni;     /* AVX512-VNNI (--precision=int8); -1: not probed */
  int amx;      /* AMX-BF16 (--precision=bf16); -1: not probed */
  int amx_int8; /* AMX-INT8 (--precision=int8); -1: not probed */
  int bf16dp;   /* AVX512_BF16 (--precision=bf16 without AMX); -1: not probed */
} Caps;

/* A module of one function, probe(p) { *p = INTRINSIC(*p, x, x) } on
   vectors of type v, x being *p itself, or *p bitcast to `as` when that is
   not NULL (an overloaded intrinsic is declared for v), or NULL if LLVM
   does not know the intrinsic. */
static LLVMModuleRef probe_module(LLVMContextRef ctx, LLVMTypeRef v, const char *intrinsic,
                                  bool overloaded, LLVMTypeRef as) {
  unsigned id = LLVMLookupIntrinsicID(intrinsic, strlen(intrinsic));
  if (!id)
    return NULL;
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("probe", ctx);
  LLVMTypeRef ptr = LLVMPointerTypeInContext(ctx, 0);
  LLVMValueRef fn =
      LLVMAddFunction(m, "probe", LLVMFunctionType(LLVMVoidTypeInContext(ctx), &ptr, 1, 0));
  LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
  LLVMValueRef x = LLVMBuildLoad2(b, v, LLVMGetParam(fn, 0), "");
  LLVMValueRef xo = as ? LLVMBuildBitCast(b, x, as, "") : x;
  LLVMValueRef args[3] = {x, xo, xo};
  size_t ntys = overloaded ? 1 : 0;
  LLVMValueRef y = LLVMBuildCall2(b, LLVMIntrinsicGetType(ctx, id, &v, ntys),
                                  LLVMGetIntrinsicDeclaration(m, id, &v, ntys), args, 3, "");
  LLVMBuildStore(b, y, LLVMGetParam(fn, 0));
  LLVMBuildRetVoid(b);
  LLVMDisposeBuilder(b);
  return m;
}

/* Whether the target machine turns module m into assembly containing
   `mnemonic`: emitted in a process of its own (fork), as LLVM aborts on an
   intrinsic the CPU lacks ("Cannot select"); its exit status is the
   answer. m is built in the child by make(ctx). */
static int probe_selects(LLVMTargetMachineRef tm, LLVMModuleRef (*make)(LLVMContextRef),
                         const char *mnemonic) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    return 0;
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stderr))
      _exit(1);
    LLVMModuleRef m = make(LLVMContextCreate());
    char *msg = NULL;
    LLVMMemoryBufferRef buf = NULL;
    if (!m || LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMAssemblyFile, &msg, &buf))
      _exit(1);
    _exit(memmem(LLVMGetBufferStart(buf), LLVMGetBufferSize(buf), mnemonic, strlen(mnemonic)) ? 0
                                                                                              : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* llvm.x86.avx512.vpdpbusd.512 (AVX512-VNNI, --precision=int8). */
static LLVMModuleRef vnni_module(LLVMContextRef ctx) {
  return probe_module(ctx, LLVMVectorType(LLVMInt32TypeInContext(ctx), 16),
                      "llvm.x86.avx512.vpdpbusd.512", false, NULL);
}

/* probe(p) { *p = vdpbf16ps(*p, *p as bf16, *p as bf16) } (AVX512_BF16). */
static LLVMModuleRef bf16dp_module(LLVMContextRef ctx) {
  return probe_module(ctx, LLVMVectorType(LLVMFloatTypeInContext(ctx), 16),
                      "llvm.x86.avx512bf16.dpbf16ps.512", false,
                      LLVMVectorType(LLVMBFloatTypeInContext(ctx), 32));
}

/* llvm.x86.NAME(0, 1, 2), a tile multiply (amx.c). */
static LLVMModuleRef tile_module(LLVMContextRef ctx, const char *name) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  if (!id)
    return NULL;
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("probe", ctx);
  LLVMValueRef fn =
      LLVMAddFunction(m, "probe", LLVMFunctionType(LLVMVoidTypeInContext(ctx), NULL, 0, 0));
  LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
  LLVMTypeRef i8 = LLVMInt8TypeInContext(ctx);
  LLVMValueRef args[3] = {LLVMConstInt(i8, 0, 0), LLVMConstInt(i8, 1, 0), LLVMConstInt(i8, 2, 0)};
  LLVMBuildCall2(b, LLVMIntrinsicGetType(ctx, id, NULL, 0),
                 LLVMGetIntrinsicDeclaration(m, id, NULL, 0), args, 3, "");
  LLVMBuildRetVoid(b);
  LLVMDisposeBuilder(b);
  return m;
}

/* AMX-BF16 (--precision=bf16) and AMX-INT8 (--precision=int8). */
static LLVMModuleRef amx_module(LLVMContextRef ctx) {
  return tile_module(ctx, "llvm.x86.tdpbf16ps");
}
static LLVMModuleRef amx_int8_module(LLVMContextRef ctx) {
  return tile_module(ctx, "llvm.x86.tdpbusd");
}

/* The probe's child: a <16 x float> fma through the target machine, as
   assembly; which registers and instructions it became tells the vector
   width and whether the CPU has FMA (else the fma is a call of fmaf). The
   answer goes to stderr as a line "cnncc-probe lanes=N fma=B". */
static int probe_child(LLVMTargetRef t, const char *triple, const char *cpu, const char *features) {
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(
      t, triple, cpu, features, LLVMCodeGenLevelDefault, LLVMRelocPIC, LLVMCodeModelDefault);
  if (!tm)
    return 3;
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef m =
      probe_module(ctx, LLVMVectorType(LLVMFloatTypeInContext(ctx), 16), "llvm.fma", true, NULL);
  char *msg = NULL;
  LLVMMemoryBufferRef buf = NULL;
  if (!m || LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMAssemblyFile, &msg, &buf))
    return 3;
  size_t n = LLVMGetBufferSize(buf);
  char *text = malloc(n + 1);
  memcpy(text, LLVMGetBufferStart(buf), n);
  text[n] = 0;
  int lanes = strstr(text, "zmm") ? 16 : strstr(text, "ymm") ? 8 : 4;
  bool x86 = strstr(triple, "x86_64") != NULL;
  fprintf(stderr, "cnncc-probe lanes=%d fma=%d vnni=%d amx=%d amx8=%d dp=%d\n", lanes,
          !strstr(text, "fmaf"), x86 ? probe_selects(tm, vnni_module, "vpdpbusd") : 0,
          x86 ? probe_selects(tm, amx_module, "tdpbf16ps") : 0,
          x86 ? probe_selects(tm, amx_int8_module, "tdpbusd") : 0,
          x86 ? probe_selects(tm, bf16dp_module, "vdpbf16ps") : 0);
  return 0;
}

/* A CPU name or feature string given by the user is checked before use:
   LLVM only warns about an unknown CPU and may then abort deep inside code
   generation ("64-bit code requested on a subtarget that doesn't support
   it"). LLVM-C has no query for valid names, so a child process emits a
   small function with the target machine, its stderr captured; a warning
   or a failure there is reported as a user error. The same function tells
   the vector width and FMA of the CPU (probe_child), which LLVM-C has no
   query for either. */
static bool probe_target(LLVMTargetRef t, const char *triple, const char *cpu, const char *features,
                         const BackendOptions *o, Caps *caps, char *err, size_t errlen) {
  int fds[2];
  if (pipe(fds) != 0)
    return true; /* cannot check: let code generation try */
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return true;
  }
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    int rc = probe_child(t, triple, cpu, features);
    fflush(stderr);
    _exit(rc);
  }
  close(fds[1]);
  char text[2048];
  size_t len = 0;
  ssize_t k;
  while ((k = read(fds[0], text + len, sizeof text - 1 - len)) > 0)
    len += (size_t)k;
  text[len] = 0;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  char *line = strstr(text, "cnncc-probe ");
  if (line) {
    int lanes = 0, fma = 0, vnni = 0, amx = 0, amx8 = 0, dp = 0;
    if (sscanf(line, "cnncc-probe lanes=%d fma=%d vnni=%d amx=%d amx8=%d dp=%d", &lanes, &fma,
               &vnni, &amx, &amx8, &dp) == 6)
      caps->lanes = lanes, caps->fma = fma, caps->vnni = vnni, caps->amx = amx,
      caps->amx_int8 = amx8, caps->bf16dp = dp;
    *line = 0;
  }
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && !strstr(text, "not a recognized");
  if (!ok) {
    char *nl = strchr(text, '\n');
    if (nl)
      *nl = 0;
    const char *tt = o->target_triple ? o->target_triple : "this target";
    snprintf(err, errlen, "--target-cpu=%s%s%s cannot be used for %s%s%s", cpu,
             o->target_features ? " --target-features=" : "",
             o->target_features ? o->target_features : "", tt, text[0] ? ": LLVM says: " : "",
             text);
  }
  return ok;
}

/* The triple's entry, or a user error listing the supported ones. */
static const BackendTarget *target_of(const BackendOptions *o, char *err, size_t errlen) {
  if (!o->target_triple) {
    const BackendTarget *h = backend_host_target();
    if (!h)
      snprintf(err, errlen, "cnncc does not know this machine's triple (see --list-targets)");
    return h;
  }
  const BackendTarget *t = backend_find_target(o->target_triple);
  if (!t) {
    size_t used =
        (size_t)snprintf(err, errlen, "unknown target '%s'; cnncc compiles for", o->target_triple);
    for (int i = 0; i < NTARGETS && used < errlen; i++)
      used += (size_t)snprintf(err + used, errlen - used, "%s %s", i ? "," : "", targets[i].triple);
    if (used < errlen)
      snprintf(err + used, errlen - used, " (see --list-targets)");
  }
  return t;
}

LLVMTargetMachineRef be_target_machine(const BackendOptions *o, BeTarget *d, char *err,
                                       size_t errlen) {
  init_llvm();
  memset(d, 0, sizeof *d);
  const BackendTarget *bt = target_of(o, err, errlen);
  if (!bt)
    return NULL;
  bool host = is_host(bt);
  char *cpu, *features;
  if (o->target_cpu)
    cpu = strdup(o->target_cpu);
  else
    cpu = host ? backend_host_cpu() : strdup(bt->default_cpu);
  if (o->target_features)
    features = strdup(o->target_features);
  else
    features = o->target_cpu || !host ? strdup("") : backend_host_features();
  d->cpu = cpu;
  d->features = features;
  d->triple = bt->triple;

  /* The host's own spelling of its triple (it is in the module). */
  char *triple = host ? LLVMGetDefaultTargetTriple() : LLVMCreateMessage(bt->llvm_triple);
  LLVMTargetRef t;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(triple, &t, &msg)) {
    snprintf(err, errlen, "no LLVM target for '%s': %s", triple, msg ? msg : "");
    LLVMDisposeMessage(msg);
    LLVMDisposeMessage(triple);
    return NULL;
  }
  LLVMCodeGenOptLevel lvl = o->opt_level <= 0   ? LLVMCodeGenLevelNone
                            : o->opt_level == 1 ? LLVMCodeGenLevelLess
                            : o->opt_level == 2 ? LLVMCodeGenLevelDefault
                                                : LLVMCodeGenLevelAggressive;
  Caps caps = {.vnni = -1, .amx = -1, .amx_int8 = -1, .bf16dp = -1};
  if ((o->target_cpu || o->target_features) &&
      !probe_target(t, triple, cpu, features, o, &caps, err, errlen)) {
    LLVMDisposeMessage(triple);
    return NULL;
  }
  be_target_describe(bt, cpu, features, caps.lanes, caps.fma, caps.vnni, caps.amx, caps.amx_int8,
                     caps.bf16dp, d);
  LLVMTargetMachineRef tm =
      LLVMCreateTargetMachine(t, triple, cpu, features, lvl, LLVMRelocPIC, LLVMCodeModelDefault);
  LLVMDisposeMessage(triple);
  if (!tm)
    snprintf(err, errlen, "cannot create a target machine for cpu '%s'", cpu);
  return tm;
}

bool be_has_feature(const char *features, const char *name) {
  size_t n = strlen(name);
  for (const char *p = features; p && *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n + 1 && p[0] == '+' && strncmp(p + 1, name, n) == 0)
      return true;
    p = e ? e + 1 : NULL;
  }
  return false;
}

void be_target_describe(const BackendTarget *bt, const char *cpu, const char *features,
                        int probed_lanes, bool probed_fma, int probed_vnni, int probed_amx,
                        int probed_amx_int8, int probed_bf16dp, BeTarget *d) {
  d->cpu = cpu;
  d->features = features;
  d->triple = bt->triple;
  if (same_arch(bt->triple, "aarch64")) {
    /* NEON is part of every aarch64 Linux machine: 4 lanes, 32 registers,
       fmla */
    d->arch = BE_AARCH64;
    d->lanes = 4;
    d->nvregs = 32;
    d->fma = true;
  } else {
    d->arch = BE_X86_64;
    if (probed_lanes) { /* a CPU or features given: what LLVM made of them */
      d->lanes = probed_lanes;
      d->fma = probed_fma;
    } else { /* the host's full feature list */
      d->lanes = be_has_feature(features, "avx512f") ? 16 : be_has_feature(features, "avx") ? 8 : 4;
      d->fma = be_has_feature(features, "fma");
    }
    d->nvregs = d->lanes == 16 ? 32 : 16;
  }
  d->vnni = d->arch == BE_X86_64 &&
            (probed_vnni >= 0 ? probed_vnni == 1 : be_has_feature(features, "avx512vnni"));
  d->amx = d->arch == BE_X86_64 && (probed_amx >= 0 ? probed_amx == 1
                                                    : be_has_feature(features, "amx-tile") &&
                                                          be_has_feature(features, "amx-bf16"));
  d->amx_int8 =
      d->arch == BE_X86_64 && (probed_amx_int8 >= 0 ? probed_amx_int8 == 1
                                                    : be_has_feature(features, "amx-tile") &&
                                                          be_has_feature(features, "amx-int8"));
  d->avx512bf16 =
      d->arch == BE_X86_64 &&
      (probed_bf16dp >= 0 ? probed_bf16dp == 1 : be_has_feature(features, "avx512bf16"));
  d->avx512 = d->lanes == 16;
}

bool be_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt_level, char *err,
                 size_t errlen) {
  char pipeline[32];
  if (opt_level < 0)
    opt_level = 0;
  if (opt_level > 3)
    opt_level = 3;
  snprintf(pipeline, sizeof pipeline, "default<O%d>", opt_level);
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  if (opt_level >= 2) {
    LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
    LLVMPassBuilderOptionsSetLoopInterleaving(po, 1);
    LLVMPassBuilderOptionsSetLoopUnrolling(po, 1);
  }
  LLVMErrorRef e = LLVMRunPasses(m, pipeline, tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (e) {
    char *msg = LLVMGetErrorMessage(e);
    snprintf(err, errlen, "LLVM pipeline %s failed: %s", pipeline, msg);
    LLVMDisposeErrorMessage(msg);
    return false;
  }
  return true;
}

bool be_emit_file(LLVMModuleRef m, LLVMTargetMachineRef tm, const char *path, bool assembly,
                  char *err, size_t errlen) {
  char *msg = NULL;
  /* The C API takes a non-const char*. */
  char *p = strdup(path);
  LLVMBool bad =
      LLVMTargetMachineEmitToFile(tm, m, p, assembly ? LLVMAssemblyFile : LLVMObjectFile, &msg);
  free(p);
  if (bad) {
    snprintf(err, errlen, "LLVM could not emit '%s': %s", path, msg ? msg : "");
    LLVMDisposeMessage(msg);
    return false;
  }
  return true;
}

/* The argument vector of the final link (NULL-terminated, static
   storage). The host's C compiler driver knows its C library; a cross
   link is ld.lld with the target's libc.so and libm.so from
   o->target_libdir (Debian's libc6-dev-arm64-cross: crt files are not
   needed for a shared object without constructors). */
static const char **link_argv(const BackendOptions *o, const char *obj, const char *out,
                              char *libdir_arg, size_t n) {
  static const char *argv[32];
  int k = 0;
  bool cross = o->target_triple && !is_host(backend_find_target(o->target_triple));
  if (!cross) {
    argv[k++] = o->cc && *o->cc ? o->cc : "cc";
    argv[k++] = "-shared";
  } else {
    argv[k++] = o->lld;
    argv[k++] = "-shared";
    argv[k++] = "--eh-frame-hdr";
    argv[k++] = "--hash-style=gnu";
  }
  argv[k++] = "-o";
  argv[k++] = out;
  argv[k++] = obj;
  /* the ABI functions are not referenced by obj: take every member of the
     runtime */
  const char *pre = cross ? "" : "-Wl,";
  static char wa[32], nwa[32], an[32];
  snprintf(wa, sizeof wa, "%s--whole-archive", pre);
  snprintf(nwa, sizeof nwa, "%s--no-whole-archive", pre);
  snprintf(an, sizeof an, "%s--as-needed", pre);
  argv[k++] = wa;
  argv[k++] = o->runtime_lib;
  argv[k++] = nwa;
  argv[k++] = an;
  if (cross) {
    snprintf(libdir_arg, n, "-L%s", o->target_libdir ? o->target_libdir : ".");
    argv[k++] = libdir_arg;
    argv[k++] = "-lm";
    argv[k++] = "-lc";
    argv[k++] = "-z";
    argv[k++] = "noexecstack";
    argv[k++] = "-z";
    argv[k++] = "relro";
    argv[k++] = "-z";
    argv[k++] = "now";
  } else {
    argv[k++] = "-lm";
    argv[k++] = "-lpthread";
    argv[k++] = "-Wl,-z,noexecstack";
    argv[k++] = "-Wl,-z,relro";
    argv[k++] = "-Wl,-z,now";
  }
  argv[k] = NULL;
  return argv;
}

bool be_link_shared(const BackendOptions *o, const char *obj, const char *out, char *err,
                    size_t errlen) {
  char libdir[4200];
  const char **argv = link_argv(o, obj, out, libdir, sizeof libdir);
  const char *cc = argv[0];
  if (!cc) {
    snprintf(err, errlen, "no linker for %s: ld.lld was not found (Debian: apt-get install lld-19)",
             o->target_triple);
    return false;
  }
  if (o->verbose) {
    fprintf(stderr, "cnncc: link:");
    for (int i = 0; argv[i]; i++)
      fprintf(stderr, " %s", argv[i]);
    fprintf(stderr, "\n");
  }
  int pipefd[2];
  if (pipe(pipefd) != 0) {
    snprintf(err, errlen, "pipe: %s", strerror(errno));
    return false;
  }
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(err, errlen, "fork: %s", strerror(errno));
    close(pipefd[0]);
    close(pipefd[1]);
    return false;
  }
  if (pid == 0) {
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    close(pipefd[1]);
    execvp(cc, (char *const *)argv);
    fprintf(stderr, "cannot run '%s': %s\n", cc, strerror(errno));
    _exit(127);
  }
  close(pipefd[1]);
  size_t used = 0;
  if (errlen)
    err[0] = 0;
  char buf[4096];
  ssize_t r;
  while ((r = read(pipefd[0], buf, sizeof buf)) != 0) {
    if (r < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (ssize_t i = 0; i < r && used + 1 < errlen; i++)
      err[used++] = buf[i];
    if (errlen)
      err[used] = 0;
  }
  close(pipefd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return true;
  if (used == 0)
    snprintf(err, errlen, "'%s' failed (status %d)", cc,
             WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  /* Strip a trailing newline so the diagnostic reads cleanly. */
  while (used > 0 && err[used - 1] == '\n')
    err[--used] = 0;
  return false;
}

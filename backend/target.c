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

static void init_llvm(void) {
  /* Idempotent in LLVM; the asm parser is needed for module-level .incbin. */
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  LLVMInitializeNativeAsmParser();
}

/* A CPU name or feature string given by the user is checked before use:
   LLVM only warns about an unknown CPU and may then abort deep inside code
   generation ("64-bit code requested on a subtarget that doesn't support
   it"). LLVM-C has no query for valid names, so a child process emits an
   empty function with the target machine, its stderr captured; a warning
   or a failure there is reported as a user error. */
static bool probe_target(LLVMTargetRef t, const char *triple, const char *cpu, const char *features,
                         const BackendOptions *o, char *err, size_t errlen) {
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
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(
        t, triple, cpu, features, LLVMCodeGenLevelNone, LLVMRelocPIC, LLVMCodeModelDefault);
    if (!tm)
      _exit(3);
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef m = LLVMModuleCreateWithNameInContext("probe", ctx);
    LLVMValueRef fn =
        LLVMAddFunction(m, "probe", LLVMFunctionType(LLVMVoidTypeInContext(ctx), NULL, 0, 0));
    LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
    LLVMBuildRetVoid(b);
    char *msg = NULL;
    LLVMMemoryBufferRef buf = NULL;
    _exit(LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMObjectFile, &msg, &buf) ? 3 : 0);
  }
  close(fds[1]);
  char text[1024];
  size_t len = 0;
  ssize_t k;
  while ((k = read(fds[0], text + len, sizeof text - 1 - len)) > 0)
    len += (size_t)k;
  text[len] = 0;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && !strstr(text, "not a recognized");
  if (!ok) {
    char *nl = strchr(text, '\n');
    if (nl)
      *nl = 0;
    snprintf(err, errlen, "--target-cpu=%s%s%s cannot be used for this target%s%s",
             o->target_cpu ? o->target_cpu : "(host)",
             o->target_features ? " --target-features=" : "",
             o->target_features ? o->target_features : "", text[0] ? ": LLVM says: " : "", text);
  }
  return ok;
}

LLVMTargetMachineRef be_target_machine(const BackendOptions *o, char **cpu, char **features,
                                       char *err, size_t errlen) {
  init_llvm();
  *cpu = o->target_cpu ? strdup(o->target_cpu) : backend_host_cpu();
  if (o->target_features)
    *features = strdup(o->target_features);
  else
    *features = o->target_cpu ? strdup("") : backend_host_features();

  char *triple = LLVMGetDefaultTargetTriple();
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
  if ((o->target_cpu || o->target_features) &&
      !probe_target(t, triple, *cpu, *features, o, err, errlen)) {
    LLVMDisposeMessage(triple);
    return NULL;
  }
  LLVMTargetMachineRef tm =
      LLVMCreateTargetMachine(t, triple, *cpu, *features, lvl, LLVMRelocPIC, LLVMCodeModelDefault);
  LLVMDisposeMessage(triple);
  if (!tm)
    snprintf(err, errlen, "cannot create a target machine for cpu '%s'", *cpu);
  return tm;
}

bool be_target_has_avx512(const char *cpu, const char *features) {
  if (features && strstr(features, "+avx512f"))
    return true;
  if (features && strstr(features, "-avx512f"))
    return false;
  static const char *const wide[] = {"skylake-avx512",
                                     "cascadelake",
                                     "cooperlake",
                                     "cannonlake",
                                     "icelake",
                                     "tigerlake",
                                     "rocketlake",
                                     "sapphirerapids",
                                     "emeraldrapids",
                                     "graniterapids",
                                     "alderlake-avx512",
                                     "znver4",
                                     "znver5",
                                     "x86-64-v4",
                                     "diamondrapids",
                                     "knl",
                                     "knm"};
  for (size_t i = 0; cpu && i < sizeof wide / sizeof wide[0]; i++)
    if (strncmp(cpu, wide[i], strlen(wide[i])) == 0)
      return true;
  return false;
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

bool be_link_shared(const BackendOptions *o, const char *obj, const char *out, char *err,
                    size_t errlen) {
  const char *cc = o->cc && *o->cc ? o->cc : "cc";
  const char *argv[] = {cc, "-shared", "-o", out, obj,
                        /* the ABI functions are not referenced by obj:
                           take every member of the runtime */
                        "-Wl,--whole-archive", o->runtime_lib, "-Wl,--no-whole-archive",
                        "-Wl,--as-needed", "-lm", "-lpthread", "-Wl,-z,noexecstack", "-Wl,-z,relro",
                        "-Wl,-z,now", NULL};
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

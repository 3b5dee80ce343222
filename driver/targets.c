/*
 * targets.c: what the driver finds for a target triple (--target): its
 * runtime library, the linker and the target's C library for a cross link,
 * and the table --list-targets prints.
 *
 * The host's triple links as before: the C compiler driver (CC, default
 * cc) with the runtime built beside cnncc. Another triple (backend/target.c's
 * table) needs
 *   - its runtime, cross-built with clang-19 when cnncc was built
 *     (CMakeLists.txt, CNNCC_CROSS_TARGETS): TRIPLE/libcnnrt.a under
 *     $CNNCC_RUNTIME_DIR if set (only there), else BIN/../lib/cnncc/
 *     (installed) or BIN/runtime/ (the build tree);
 *   - ld.lld: $CNNCC_LLD, else ld.lld-19 or ld.lld on PATH, else
 *     /usr/lib/llvm-19/bin/ld.lld;
 *   - the target's libc.so and libm.so: the directory configured at build
 *     time (CNNCC_AARCH64_LIBDIR, Debian's libc6-dev-arm64-cross:
 *     /usr/aarch64-linux-gnu/lib), or $CNNCC_TARGET_LIBDIR.
 * Each missing piece is one error naming what to install (exit 1).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"

#ifndef CNNCC_RUNTIME_INSTALL_DIR
#define CNNCC_RUNTIME_INSTALL_DIR "/usr/local/lib/cnncc"
#endif
#ifndef CNNCC_RUNTIME_BUILD_DIR
#define CNNCC_RUNTIME_BUILD_DIR "."
#endif
#ifndef CNNCC_AARCH64_LIBDIR
#define CNNCC_AARCH64_LIBDIR "/usr/aarch64-linux-gnu/lib"
#endif

/* The directory of the running cnncc (into buf), or NULL. */
static const char *exe_dir(char *buf, size_t n) {
  ssize_t len = readlink("/proc/self/exe", buf, n - 1);
  if (len <= 0)
    return NULL;
  buf[len] = 0;
  char *slash = strrchr(buf, '/');
  if (!slash)
    return NULL;
  *slash = 0;
  return buf;
}

static bool readable(const char *path) { return access(path, R_OK) == 0; }

bool targets_is_cross(const char *triple) {
  const BackendTarget *t = triple ? backend_find_target(triple) : NULL;
  return t && t != backend_host_target();
}

const char *targets_runtime(const char *triple, char *buf, size_t n) {
  char exe[PATH_MAX];
  const char *dir = exe_dir(exe, sizeof exe);
  if (!targets_is_cross(triple)) {
    /* $CNNCC_RUNTIME, next to an installed cnncc (BIN/../lib/cnncc/libcnnrt.a),
       the configured install path, or the build tree this cnncc was built in */
    const char *env = getenv("CNNCC_RUNTIME");
    if (env && *env)
      return env;
    if (dir) {
      int k = snprintf(buf, n, "%s/../lib/cnncc/libcnnrt.a", dir);
      if (k > 0 && (size_t)k < n && readable(buf))
        return buf;
      k = snprintf(buf, n, "%s/libcnnrt.a", dir);
      if (k > 0 && (size_t)k < n && readable(buf))
        return buf;
    }
    if (readable(CNNCC_RUNTIME_INSTALL_DIR "/libcnnrt.a"))
      return CNNCC_RUNTIME_INSTALL_DIR "/libcnnrt.a";
    return CNNCC_RUNTIME_BUILD_DIR "/libcnnrt.a";
  }
  const char *t = backend_find_target(triple)->triple;
  const char *rdir = getenv("CNNCC_RUNTIME_DIR");
  if (rdir && *rdir) {
    int k = snprintf(buf, n, "%s/%s/libcnnrt.a", rdir, t);
    return k > 0 && (size_t)k < n && readable(buf) ? buf : NULL;
  }
  const char *forms[] = {"%s/../lib/cnncc/%s/libcnnrt.a", "%s/runtime/%s/libcnnrt.a"};
  for (int i = 0; dir && i < 2; i++) {
    int k = snprintf(buf, n, forms[i], dir, t);
    if (k > 0 && (size_t)k < n && readable(buf))
      return buf;
  }
  snprintf(buf, n, "%s/%s/libcnnrt.a", CNNCC_RUNTIME_INSTALL_DIR, t);
  if (readable(buf))
    return buf;
  snprintf(buf, n, "%s/runtime/%s/libcnnrt.a", CNNCC_RUNTIME_BUILD_DIR, t);
  return readable(buf) ? buf : NULL;
}

/* name found on PATH (into buf), or NULL. */
static const char *on_path(const char *name, char *buf, size_t n) {
  const char *path = getenv("PATH");
  if (!path || !*path)
    path = "/usr/bin:/bin";
  for (const char *p = path; *p;) {
    const char *e = strchr(p, ':');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    int k = snprintf(buf, n, "%.*s/%s", (int)len, len ? p : ".", name);
    if (k > 0 && (size_t)k < n && access(buf, X_OK) == 0)
      return buf;
    if (!e)
      break;
    p = e + 1;
  }
  return NULL;
}

const char *targets_lld(char *buf, size_t n) {
  const char *env = getenv("CNNCC_LLD");
  if (env && *env)
    return access(env, X_OK) == 0 ? env : NULL;
  const char *f = on_path("ld.lld-19", buf, n);
  if (!f)
    f = on_path("ld.lld", buf, n);
  if (!f && access("/usr/lib/llvm-19/bin/ld.lld", X_OK) == 0)
    f = "/usr/lib/llvm-19/bin/ld.lld";
  return f;
}

const char *targets_libdir(const char *triple) {
  const char *env = getenv("CNNCC_TARGET_LIBDIR");
  if (env && *env)
    return env;
  if (triple && strncmp(backend_find_target(triple)->triple, "aarch64", 7) == 0)
    return CNNCC_AARCH64_LIBDIR;
  return NULL;
}

bool targets_check_link(const Options *o, BackendOptions *bo, char *rtbuf, size_t rtn, char *lldbuf,
                        size_t lldn, Diag *d) {
  bo->runtime_lib = targets_runtime(o->target_triple, rtbuf, rtn);
  if (!targets_is_cross(o->target_triple) || o->emit != EMIT_SO)
    return true;
  const char *t = o->target_triple;
  if (!bo->runtime_lib) {
    diag_plain(d, DIAG_ERROR,
               "no runtime for %s: no %s/libcnnrt.a beside cnncc, in its install prefix or in "
               "$CNNCC_RUNTIME_DIR (cnncc's build makes it when clang-19 and the target's C "
               "headers are there, Debian: clang-19 libc6-dev-arm64-cross; docs/targets.md)",
               t, t);
    return false;
  }
  bo->lld = targets_lld(lldbuf, lldn);
  if (!bo->lld) {
    diag_plain(d, DIAG_ERROR,
               "linking a .so for %s needs ld.lld, which was not found (Debian: apt-get "
               "install lld-19; or set CNNCC_LLD)",
               t);
    return false;
  }
  bo->target_libdir = targets_libdir(t);
  char libc[PATH_MAX];
  snprintf(libc, sizeof libc, "%s/libc.so", bo->target_libdir ? bo->target_libdir : "");
  if (!bo->target_libdir || !readable(libc)) {
    diag_plain(d, DIAG_ERROR,
               "linking a .so for %s needs the target's C library: no %s (Debian: apt-get "
               "install libc6-dev-arm64-cross; or set CNNCC_TARGET_LIBDIR)",
               t, libc);
    return false;
  }
  return true;
}

void targets_list(FILE *out) {
  int n;
  const BackendTarget *t = backend_targets(&n);
  const BackendTarget *host = backend_host_target();
  char rt[PATH_MAX], lld[PATH_MAX];
  const char *linker = targets_lld(lld, sizeof lld);
  for (int i = 0; i < n; i++) {
    const char *r = targets_runtime(t[i].triple, rt, sizeof rt);
    bool cross = &t[i] != host;
    fprintf(out, "%s%s\n", t[i].triple, cross ? "" : " (this machine: the default)");
    fprintf(out, "  %s\n", t[i].about);
    fprintf(out, "  default CPU: %s\n", t[i].default_cpu ? t[i].default_cpu : "the host's");
    fprintf(out, "  tested CPUs: %s\n", t[i].tested);
    fprintf(out, "  runtime:     %s\n", r && readable(r) ? r : "not built");
    if (cross)
      fprintf(out, "  linker:      %s\n", linker ? linker : "ld.lld not found");
  }
}

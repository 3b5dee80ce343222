/*
 * emit_spec.c: --emit=spec, the network as a spec with its weights beside it.
 *
 *   cnncc IN --emit=spec -o net.yaml    writes net.yaml and net.safetensors
 *
 * The graph is written as the frontend made it, weights bound, before any
 * pass (the passes would fold batchnorms into convolutions and so on). The
 * driver glues two rooms that do not know each other: the spec writer
 * (frontend/spec/write.c) gives every parameter the name the written spec
 * will give it, and the weights writer (frontend/weights/st_write.c) saves
 * the values under those names; so `cnncc net.yaml --weights
 * net.safetensors` binds every tensor, none missing, none unexpected.
 *
 * Both files appear or neither: the spec goes to a temporary file beside
 * its name, the weights are written (atomically, themselves), then the
 * spec's temporary is renamed; on a failure every file made is removed.
 * `-o -` writes the spec alone to stdout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver.h"
#include "frontend/frontend.h"
#include "progress.h"
#include "support/files.h"

const char *emit_spec_weights_path(const char *output, char *buf, size_t n) {
  const char *base = strrchr(output, '/');
  base = base ? base + 1 : output;
  const char *dot = strrchr(base, '.');
  size_t len = dot && dot != base ? (size_t)(dot - output) : strlen(output);
  snprintf(buf, n, "%.*s.safetensors", (int)len, output);
  return buf;
}

/* Whether a and b name one existing file. */
static bool same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

bool emit_spec_check(const Options *o, Diag *d) {
  if (!strcmp(o->output, "-"))
    return true;
  char wbuf[4096];
  const char *w = emit_spec_weights_path(o->output, wbuf, sizeof wbuf);
  const char *outs[2] = {o->output, w};
  const char *what[2] = {"the spec", "the weights (written beside the spec, as NAME.safetensors)"};
  for (int i = 0; i < 2; i++) {
    const char *in = same_file(outs[i], o->spec)      ? o->spec
                     : same_file(outs[i], o->weights) ? o->weights
                                                      : NULL;
    if (in) {
      diag_plain(d, DIAG_ERROR,
                 "--emit=spec would overwrite the input '%s' with %s; name another output "
                 "with -o",
                 in, what[i]);
      return false;
    }
  }
  if (!strcmp(o->output, w)) {
    diag_plain(d, DIAG_ERROR,
               "--emit=spec writes the spec and its weights to two files: '%s' cannot be "
               "both; name the spec NAME.yaml",
               w);
    return false;
  }
  return true;
}

/* The lines at the top of the written spec: where it comes from, and how
   to compile it with its weights (the paths as given to this command). */
static char *comment(const Options *o, const char *weights) {
  if (!weights)
    return xasprintf("Written by cnncc --emit=spec from %s, without its weights (-o -).", o->spec);
  const char *base = strrchr(o->output, '/');
  base = base ? base + 1 : o->output;
  const char *dot = strrchr(base, '.');
  int len = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
  return xasprintf("Written by cnncc --emit=spec from %s.\n"
                   "Compile it with its weights:\n"
                   "  cnncc %s --weights %s -o %.*s.so",
                   o->spec, o->output, weights, len, base);
}

static int to_stdout(const Graph *g, const Options *o, Diag *d) {
  NamedParam *params;
  int n;
  char *c = comment(o, NULL);
  bool ok = spec_write(g, c, stdout, &params, &n, d) && fflush(stdout) == 0;
  free(c);
  if (ok && !o->quiet)
    diag_plain(d, DIAG_NOTE, "-o -: the spec only; -o NAME.yaml writes NAME.safetensors too");
  return ok ? 0 : EXIT_USER;
}

int emit_spec_write(const Graph *g, const Options *o, Progress *prog, Diag *d) {
  if (!strcmp(o->output, "-"))
    return to_stdout(g, o, d);
  char wbuf[4096];
  const char *wpath = emit_spec_weights_path(o->output, wbuf, sizeof wbuf);
  progress_step(prog, "writing %s and %s", o->output, wpath);
  char *tmp = xasprintf("%s.tmpXXXXXX", o->output);
  int fd = mkstemp(tmp);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) {
    diag_plain(d, DIAG_ERROR, "cannot create a file beside '%s': %s", o->output, strerror(errno));
    if (fd >= 0)
      close(fd), unlink(tmp);
    free(tmp);
    progress_done(prog);
    return EXIT_USER;
  }
  mode_t mask = umask(0); /* mkstemp makes it 0600: the mode fopen would */
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  NamedParam *params;
  int n;
  char *c = comment(o, wpath);
  bool written = spec_write(g, c, f, &params, &n, d);
  free(c);
  bool ok = written;
  if (fclose(f) != 0 && ok) {
    diag_plain(d, DIAG_ERROR, "cannot write '%s': %s", o->output, strerror(errno));
    ok = false;
  }
  ok = ok && weights_save(wpath, params, n, d, progress_hook(prog));
  if (ok && file_publish(tmp, o->output) != 0) {
    diag_plain(d, DIAG_ERROR, "cannot write '%s': %s", o->output, strerror(errno));
    unlink(wpath);
    ok = false;
  }
  if (!ok)
    unlink(tmp);
  free(tmp);
  progress_done(prog);
  return ok ? 0 : EXIT_USER;
}

/*
 * load.c: the entry points of the spec language, spec_load_file and
 * spec_load_string (frontend/frontend.h).
 *
 * Loading a spec goes in four steps, each reporting every error it can:
 *
 *  1. Files. The main file, then the files it includes (paths relative to
 *     the including file; spec_load_string resolves them from the current
 *     directory), depth-first, each read once however often it is
 *     included. Each file's YAML becomes a YNode tree (yaml.c).
 *  2. AST. Each file's tree is read into the AST (parse.c): an included
 *     file adds its blocks, the main file the network too.
 *  3. Check. With every block known, block instances are resolved and their
 *     arguments matched (check.c).
 *  4. Lowering builds the Graph (lower.c).
 *
 * Errors go through spec_error (errors.c); after SPEC_MAX_ERRORS, loading
 * stops and says so. Only the Graph survives: everything else lives in one
 * temporary arena, freed at the end.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "spec_internal.h"

#define SPEC_MAX_INCLUDE_DEPTH 16
#define SPEC_MAX_FILE                                                                              \
  ((size_t)16 << 20) /* bytes of one spec file: the zoo's                                          \
                        largest is 7 KB; `include:                                                 \
                        /dev/zero` must stop early */

typedef struct {
  SpecBuilder b;
  PtrVec files; /* real paths read (include once) */
} Loader;

static char *read_file(const char *path, size_t *len, int *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    *err = errno;
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = xmalloc(cap);
  for (;;) {
    n += fread(buf + n, 1, cap - n - 1, f);
    if (ferror(f)) {
      *err = errno ? errno : EIO;
      free(buf);
      fclose(f);
      return NULL;
    }
    if (feof(f))
      break;
    if (n + 1 >= cap) {
      if (cap >= SPEC_MAX_FILE) {
        *err = EFBIG;
        free(buf);
        fclose(f);
        return NULL;
      }
      cap *= 2;
      buf = xrealloc(buf, cap);
    }
  }
  fclose(f);
  buf[n] = 0;
  *len = n;
  return buf;
}

static char *dir_of(Arena *a, const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    return arena_strdup(a, ".");
  if (slash == path)
    return arena_strdup(a, "/");
  return arena_strndup(a, path, (size_t)(slash - path));
}

static void load_text(Loader *ld, const char *file, const char *text, size_t len, const char *dir,
                      bool main, int depth);

/* include := path | [path, ...]   (relative to the including file) */
static void load_includes(Loader *ld, YNode *inc, const char *dir, int depth) {
  SpecCtx *c = ld->b.c;
  YNode *one[1] = {inc};
  YNode **items = inc->kind == Y_SEQ ? inc->items : one;
  int n = inc->kind == Y_SEQ ? inc->n : 1;
  for (int i = 0; i < n; i++) {
    YNode *p = items[i];
    if (p->kind != Y_SCALAR || !*p->str) {
      spec_error_at(c, p, "expected a file name to include, got %s", expr_describe_node(c->tmp, p));
      continue;
    }
    if (depth >= SPEC_MAX_INCLUDE_DEPTH) {
      spec_error_at(c, p, "includes nested more than %d deep", SPEC_MAX_INCLUDE_DEPTH);
      continue;
    }
    const char *path = p->str[0] == '/' || !strcmp(dir, ".")
                           ? arena_strdup(c->g->arena, p->str)
                           : arena_printf(c->g->arena, "%s/%s", dir, p->str);
    char real[PATH_MAX];
    const char *key = realpath(path, real) ? real : path;
    bool seen = false;
    for (int j = 0; j < ld->files.len && !seen; j++)
      seen = strcmp(ld->files.items[j], key) == 0;
    if (seen)
      continue;
    ptrvec_push(c->tmp, &ld->files, arena_strdup(c->tmp, key));
    size_t len;
    int err = 0;
    char *text = read_file(path, &len, &err);
    if (!text) {
      spec_error_at(c, p, "cannot read '%s': %s", path, strerror(err));
      continue;
    }
    load_text(ld, path, text, len, dir_of(c->tmp, path), false, depth + 1);
    free(text);
  }
}

/* A file: its text for quoting, its root and top-level keys, the files it
   includes (depth-first, so their blocks come first), its blocks and, for
   the main file, the network. */
static void load_text(Loader *ld, const char *file, const char *text, size_t len, const char *dir,
                      bool main, int depth) {
  diag_add_source(ld->b.c->diag, file, text, len);
  YNode *root = parse_root(&ld->b, file, text, len, main);
  if (!root)
    return;
  YNode *inc = ynode_get(root, "include");
  if (inc)
    load_includes(ld, inc, dir, depth);
  parse_body(&ld->b, root, main);
}

/* ------------------------------------------------------------ entry points */

static Graph *load(const char *file, const char *text, size_t len, const char *dir, Diag *d) {
  SpecCtx c = {0};
  c.diag = d;
  c.tmp = arena_new();
  c.g = ir_graph_new("net");
  int errors0 = diag_error_count(d);
  const char *gfile = arena_strdup(c.g->arena, file);
  Spec spec = {0};
  Loader ld = {.b = {.c = &c, .spec = &spec}};
  char real[PATH_MAX];
  ptrvec_push(c.tmp, &ld.files, arena_strdup(c.tmp, realpath(gfile, real) ? real : gfile));
  load_text(&ld, gfile, text, len, dir, true, 0);
  check_spec(&c, &spec);
  Graph *g = c.g;
  g->spec_file = gfile;
  if (spec.name)
    g->name = arena_strdup(g->arena, spec.name);
  bool ok = spec.ninputs > 0 && spec.nlayers > 0 && !c.stop;
  if (ok)
    ok = lower_spec(&c, &spec);
  if (c.stop)
    diag_plain(d, DIAG_NOTE, "too many errors; stopping");
  if (!ok || diag_error_count(d) > errors0) {
    ir_graph_free(g);
    g = NULL;
  } else {
    g->num_params_orig = ir_graph_param_count(g, true);
  }
  arena_free(c.tmp);
  return g;
}

Graph *spec_load_file(const char *path, Diag *d) {
  size_t len;
  int err = 0;
  char *text = read_file(path, &len, &err);
  if (!text) {
    diag_report(d, DIAG_ERROR, (SrcLoc){path, 0, 0}, 0, "cannot read the spec: %s", strerror(err));
    return NULL;
  }
  Arena *a = arena_new();
  Graph *g = load(path, text, len, dir_of(a, path), d);
  arena_free(a);
  free(text);
  return g;
}

Graph *spec_load_string(const char *name, const char *text, Diag *d) {
  return load(name ? name : "<string>", text ? text : "", text ? strlen(text) : 0, ".", d);
}

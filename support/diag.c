/*
 * diag.c: clang-style diagnostics.
 *
 * A Diag collects nothing but a count: every report is written at once to
 * its stream, in the form
 *
 *     net.yaml:12:7: error: unknown key 'strid' for op 'conv2d'
 *        12 |       strid: 2
 *           |       ^~~~~
 *     net.yaml:12:7: note: did you mean 'stride'?
 *
 * To quote a line the Diag keeps a copy of every source text it was given
 * (diag_add_source) with a table of line starts. A location whose file was
 * never added, or whose line is 0, is reported without a quote. Notes with a
 * span of 0 are printed without a quote too (a hint about the line just
 * shown). The gutter is at least five columns wide; tabs in the quoted line
 * are kept in the caret line so the caret stays under its token.
 *
 * diag_suggest ranks candidates by the optimal-string-alignment distance
 * (Levenshtein plus transposition of neighbours), so "strdie" is one edit
 * from "stride".
 *
 * A stage may install a hook (diag_set_hook) that runs before each error or
 * warning is printed; notes never trigger it, so the notes the hook prints
 * do not call it again.
 *
 * All state lives in the Diag object: no globals.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "diag.h"

typedef struct {
  char *file;
  char *text;
  size_t len;
  size_t *line_start; /* line_start[i] = offset of line i+1 */
  int nlines;
} Source;

struct Diag {
  FILE *out;
  bool color;
  int errors, warnings;
  Source *src;
  int nsrc, capsrc;
  DiagHook hook;
  bool in_hook;
};

Diag *diag_new(FILE *out, bool color) {
  Diag *d = xrealloc(NULL, sizeof *d);
  memset(d, 0, sizeof *d);
  d->out = out ? out : stderr;
  d->color = color;
  return d;
}

void diag_free(Diag *d) {
  if (!d)
    return;
  for (int i = 0; i < d->nsrc; i++) {
    free(d->src[i].file);
    free(d->src[i].text);
    free(d->src[i].line_start);
  }
  free(d->src);
  free(d);
}

static Source *find_source(Diag *d, const char *file) {
  if (!file)
    return NULL;
  for (int i = d->nsrc - 1; i >= 0; i--)
    if (strcmp(d->src[i].file, file) == 0)
      return &d->src[i];
  return NULL;
}

void diag_add_source(Diag *d, const char *file, const char *text, size_t len) {
  Source *s = find_source(d, file);
  if (!s) {
    if (d->nsrc == d->capsrc) {
      d->capsrc = d->capsrc ? 2 * d->capsrc : 4;
      d->src = xrealloc(d->src, sizeof(Source) * (size_t)d->capsrc);
    }
    s = &d->src[d->nsrc++];
    memset(s, 0, sizeof *s);
    size_t fl = strlen(file);
    s->file = xrealloc(NULL, fl + 1);
    memcpy(s->file, file, fl + 1);
  } else {
    free(s->text);
    free(s->line_start);
  }
  s->text = xrealloc(NULL, len + 1);
  memcpy(s->text, text, len);
  s->text[len] = 0;
  s->len = len;
  int cap = 64;
  s->line_start = xrealloc(NULL, sizeof(size_t) * (size_t)cap);
  s->nlines = 0;
  s->line_start[s->nlines++] = 0;
  for (size_t i = 0; i < len; i++) {
    if (text[i] == '\n' || (text[i] == '\r' && (i + 1 >= len || text[i + 1] != '\n'))) {
      if (s->nlines == cap) {
        cap *= 2;
        s->line_start = xrealloc(s->line_start, sizeof(size_t) * (size_t)cap);
      }
      s->line_start[s->nlines++] = i + 1;
    }
  }
}

/* ANSI colour codes, empty when colour is off. */
static const char *c_bold(const Diag *d) { return d->color ? "\033[1m" : ""; }
static const char *c_reset(const Diag *d) { return d->color ? "\033[0m" : ""; }
static const char *c_green(const Diag *d) { return d->color ? "\033[1;32m" : ""; }
static const char *c_level(const Diag *d, DiagLevel l) {
  if (!d->color)
    return "";
  return l == DIAG_ERROR ? "\033[1;31m" : l == DIAG_WARNING ? "\033[1;35m" : "\033[1;36m";
}
static const char *level_name(DiagLevel l) {
  return l == DIAG_ERROR ? "error" : l == DIAG_WARNING ? "warning" : "note";
}

DiagHook diag_set_hook(Diag *d, DiagHook hook) {
  DiagHook old = d->hook;
  d->hook = hook;
  return old;
}

/* Before an error or a warning: the stage's hook, once. */
static void run_hook(Diag *d, DiagLevel level) {
  if (level == DIAG_NOTE || !d->hook.fn || d->in_hook)
    return;
  d->in_hook = true;
  d->hook.fn(d->hook.ctx);
  d->in_hook = false;
}

static void count(Diag *d, DiagLevel level) {
  if (level == DIAG_ERROR)
    d->errors++;
  else if (level == DIAG_WARNING)
    d->warnings++;
}

/* Quote line `line` of s with a caret line under columns [col, col+span). */
static void quote(Diag *d, const Source *s, int line, int col, int span) {
  if (line < 1 || line > s->nlines)
    return;
  size_t start = s->line_start[line - 1], end = start;
  while (end < s->len && s->text[end] != '\n' && s->text[end] != '\r')
    end++;
  int width = (int)(end - start);
  fprintf(d->out, "%5d | %.*s\n", line, width, s->text + start);
  if (col < 1)
    col = 1;
  if (col > width + 1)
    col = width + 1;
  if (span < 1)
    span = 1;
  if (col - 1 + span > width && width >= col)
    span = width - col + 1;
  fprintf(d->out, "      | ");
  for (int i = 0; i < col - 1; i++)
    fputc(s->text[start + (size_t)i] == '\t' ? '\t' : ' ', d->out);
  fprintf(d->out, "%s^", c_green(d));
  for (int i = 1; i < span; i++)
    fputc('~', d->out);
  fprintf(d->out, "%s\n", c_reset(d));
}

void diag_vreport(Diag *d, DiagLevel level, SrcLoc loc, int span, const char *fmt, va_list ap) {
  run_hook(d, level);
  count(d, level);
  const char *file = loc.file ? loc.file : "<unknown>";
  if (loc.line > 0)
    fprintf(d->out, "%s%s:%d:%d: ", c_bold(d), file, loc.line, loc.col > 0 ? loc.col : 1);
  else
    fprintf(d->out, "%s%s: ", c_bold(d), file);
  fprintf(d->out, "%s%s:%s%s ", c_level(d, level), level_name(level), c_reset(d), c_bold(d));
  vfprintf(d->out, fmt, ap);
  fprintf(d->out, "%s\n", c_reset(d));
  if (loc.line <= 0 || (level == DIAG_NOTE && span <= 0))
    return;
  const Source *s = find_source(d, loc.file);
  if (s)
    quote(d, s, loc.line, loc.col, span);
}

void diag_report(Diag *d, DiagLevel level, SrcLoc loc, int span, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vreport(d, level, loc, span, fmt, ap);
  va_end(ap);
}

void diag_plain(Diag *d, DiagLevel level, const char *fmt, ...) {
  run_hook(d, level);
  count(d, level);
  fprintf(d->out, "%scnncc: %s%s:%s%s ", c_bold(d), c_level(d, level), level_name(level),
          c_reset(d), c_bold(d));
  va_list ap;
  va_start(ap, fmt);
  vfprintf(d->out, fmt, ap);
  va_end(ap);
  fprintf(d->out, "%s\n", c_reset(d));
}

int diag_error_count(const Diag *d) { return d ? d->errors : 0; }

/* Optimal string alignment distance between a and b, giving up (returning
   limit + 1) as soon as it must exceed `limit`. */
static int edit_distance(const char *a, const char *b, int limit) {
  int n = (int)strlen(a), m = (int)strlen(b);
  if (abs(n - m) > limit)
    return limit + 1;
  if (n > 256 || m > 256)
    return limit + 1;
  /* three rows: i-2, i-1, i */
  int *rows = malloc(sizeof(int) * 3 * (size_t)(m + 1));
  if (!rows)
    return limit + 1;
  int *pp = rows, *p = rows + (m + 1), *c = rows + 2 * (m + 1);
  for (int j = 0; j <= m; j++)
    p[j] = j;
  for (int i = 1; i <= n; i++) {
    c[0] = i;
    int rowmin = c[0];
    for (int j = 1; j <= m; j++) {
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int v = p[j] + 1;
      if (c[j - 1] + 1 < v)
        v = c[j - 1] + 1;
      if (p[j - 1] + cost < v)
        v = p[j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
        v = pp[j - 2] + 1;
      c[j] = v;
      if (v < rowmin)
        rowmin = v;
    }
    if (rowmin > limit) {
      free(rows);
      return limit + 1;
    }
    int *t = pp;
    pp = p;
    p = c;
    c = t;
  }
  int r = p[m];
  free(rows);
  return r;
}

const char *diag_suggest(const char *word, const char *const *candidates, int n) {
  if (!word || !*word)
    return NULL;
  int len = (int)strlen(word);
  /* a third of the length, at least 1; words of 4+ letters get 2 */
  int limit = len / 3;
  if (limit < 1)
    limit = 1;
  if (len >= 4 && limit < 2)
    limit = 2;
  const char *best = NULL;
  int bestd = limit + 1;
  for (int i = 0; i < n; i++) {
    if (!candidates[i] || strcmp(candidates[i], word) == 0)
      continue;
    int clen = (int)strlen(candidates[i]);
    /* never suggest by replacing the whole of a short word */
    int lim = limit;
    if (clen <= lim || len <= lim)
      lim = (clen < len ? clen : len) - 1;
    if (lim < 1)
      continue;
    int dist = edit_distance(word, candidates[i], lim);
    if (dist <= lim && dist < bestd) {
      best = candidates[i];
      bestd = dist;
    }
  }
  return best;
}

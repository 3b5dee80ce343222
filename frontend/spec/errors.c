/*
 * errors.c: how the spec room reports a user error.
 *
 * Every error of the spec language goes through spec_error, which
 *   - drops exact repeats (same place, same message): a block instantiated
 *     16 times reports its error once, and the notes of a dropped error are
 *     dropped with it (spec_note is quiet until the next error is printed);
 *   - stops after SPEC_MAX_ERRORS (load.c says so at the end).
 * The notes naming the block instances around an error are not printed
 * here: lower.c owes them, and prints them from the Diag's hook, just
 * before the next error, or when it leaves the block.
 */
#include <stdarg.h>
#include <string.h>

#include "spec_internal.h"

/* set when the last error was a repeat: its notes are dropped too */
static bool suppressed(SpecCtx *c, SrcLoc loc, const char *msg) {
  char *key = arena_printf(c->tmp, "%s:%d:%d:%s", loc.file ? loc.file : "", loc.line, loc.col, msg);
  for (int i = 0; i < c->seen.len; i++)
    if (strcmp(c->seen.items[i], key) == 0)
      return true;
  ptrvec_push(c->tmp, &c->seen, key);
  return false;
}

bool spec_error(SpecCtx *c, SrcLoc loc, int span, const char *fmt, ...) {
  if (c->stop) {
    c->quiet = true;
    return false;
  }
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (suppressed(c, loc, msg)) {
    c->quiet = true;
    return false;
  }
  c->quiet = false;
  diag_report(c->diag, DIAG_ERROR, loc, span, "%s", msg);
  if (diag_error_count(c->diag) >= SPEC_MAX_ERRORS)
    c->stop = true; /* the note saying so comes at the end */
  return false;
}

bool spec_error_at(SpecCtx *c, const YNode *y, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return spec_error(c, y->loc, y->span, "%s", msg);
}

void spec_note(SpecCtx *c, SrcLoc loc, int span, const char *fmt, ...) {
  if (c->quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  diag_vreport(c->diag, DIAG_NOTE, loc, span, fmt, ap);
  va_end(ap);
}

void spec_hint(SpecCtx *c, SrcLoc loc, const char *word, const char *const *cands, int n) {
  const char *best = diag_suggest(word, cands, n);
  if (best)
    spec_note(c, loc, 0, "did you mean '%s'?", best);
}

/*
 * diag.h: clang-style diagnostics (file:line:col, the source line, a caret,
 * notes), the ground floor every stage reports user errors through.
 *
 * The support/ room holds what every stage uses and nothing stage-specific:
 *   support/diag.h, diag.c   diagnostics (this header)
 *   support/progress.h       how a long step reports how far it is
 *   support/check.h, check.c always-on internal checks (exit 2)
 *   support/files.h, files.c putting a finished output file in place
 * It depends on nothing but libc; ir/, frontend/, passes/, backend/ and the
 * driver include it, never the other way round.
 */
#ifndef CNNCC_SUPPORT_DIAG_H
#define CNNCC_SUPPORT_DIAG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

/* A position in a source file (spec, model), for diagnostics. */
typedef struct {
  const char *file; /* never NULL once set; "<builtin>" for synthesized */
  int line, col;    /* 1-based; 0 if unknown */
} SrcLoc;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

typedef struct Diag Diag;
/* Diagnostics are written to `out` (stderr in the driver, a memstream in
   tests). color: use ANSI colours. */
Diag *diag_new(FILE *out, bool color);
void diag_free(Diag *d);
/* Remember a file's text so diagnostics can quote its lines (copied). */
void diag_add_source(Diag *d, const char *file, const char *text, size_t len);
/* Report at loc; span = length of the underlined token (>= 1). A loc with
   line 0 prints "file: error: ..." without a caret. */
void diag_report(Diag *d, DiagLevel level, SrcLoc loc, int span, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void diag_vreport(Diag *d, DiagLevel level, SrcLoc loc, int span, const char *fmt, va_list ap);
/* Error without a location: "cnncc: error: ..." */
void diag_plain(Diag *d, DiagLevel level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int diag_error_count(const Diag *d);
/* How many errors a stage shows before it stops showing them (docs/spec.md,
   docs/cnncc.1.md): the spec room stops there, the weights room counts the
   rest and says how many there were. */
#define DIAG_MAX_ERRORS 50

/* A function the Diag calls just before it prints an error or a warning
   (never before a note, nor while the hook itself runs). A stage that owes
   notes to the error it reported last (the spec lowering names the block
   instances around it only once their own notes are out) prints them
   there, so they stay with their error whatever reports the next one. */
typedef struct {
  void (*fn)(void *ctx);
  void *ctx;
} DiagHook;
/* Install `hook` ({NULL, NULL}: none); returns the hook it replaces, for the
   stage to put back when it ends. */
DiagHook diag_set_hook(Diag *d, DiagHook hook);
/* The closest candidate by edit distance if it is close enough to be a
   plausible misspelling, else NULL. */
const char *diag_suggest(const char *word, const char *const *candidates, int n);

#endif

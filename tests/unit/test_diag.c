/*
 * test_diag.c: clang-style diagnostics and "did you mean" suggestions.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/diag.h"

typedef struct {
  char *buf;
  size_t len;
  FILE *f;
  Diag *d;
} Cap;

static void cap_open(Cap *c, bool color) {
  c->buf = NULL;
  c->f = open_memstream(&c->buf, &c->len);
  c->d = diag_new(c->f, color);
}

static const char *cap_text(Cap *c) {
  fflush(c->f);
  return c->buf;
}

static void cap_close(Cap *c) {
  diag_free(c->d);
  fclose(c->f);
  free(c->buf);
}

Test(diag, an_error_quotes_its_line_with_a_caret_under_the_span) {
  Cap c;
  cap_open(&c, false);
  const char *src = "layers:\n  - name: c\n      strid: 2\n";
  diag_add_source(c.d, "net.yaml", src, strlen(src));
  diag_report(c.d, DIAG_ERROR, (SrcLoc){"net.yaml", 3, 7}, 5, "unknown key '%s' for op '%s'",
              "strid", "conv2d");
  diag_report(c.d, DIAG_NOTE, (SrcLoc){"net.yaml", 3, 7}, 0, "did you mean '%s'?", "stride");
  cr_assert_str_eq(cap_text(&c), "net.yaml:3:7: error: unknown key 'strid' for op 'conv2d'\n"
                                 "    3 |       strid: 2\n"
                                 "      |       ^~~~~\n"
                                 "net.yaml:3:7: note: did you mean 'stride'?\n");
  cr_assert_eq(diag_error_count(c.d), 1);
  cap_close(&c);
}

Test(diag, a_span_past_the_end_of_the_line_is_clipped_and_tabs_are_kept) {
  Cap c;
  cap_open(&c, false);
  const char *src = "a:\tbc\r\nxy";
  diag_add_source(c.d, "f", src, strlen(src));
  diag_report(c.d, DIAG_WARNING, (SrcLoc){"f", 1, 4}, 40, "w");
  diag_report(c.d, DIAG_ERROR, (SrcLoc){"f", 2, 2}, 1, "e");
  cr_assert_str_eq(cap_text(&c), "f:1:4: warning: w\n"
                                 "    1 | a:\tbc\n"
                                 "      |   \t^~\n"
                                 "f:2:2: error: e\n"
                                 "    2 | xy\n"
                                 "      |  ^\n");
  cap_close(&c);
}

Test(diag, locations_without_a_line_or_a_known_file_print_no_quote) {
  Cap c;
  cap_open(&c, false);
  diag_report(c.d, DIAG_ERROR, (SrcLoc){"w.safetensors", 0, 0}, 1, "missing tensor '%s'",
              "fc.bias");
  diag_report(c.d, DIAG_ERROR, (SrcLoc){"other.yaml", 4, 2}, 1, "x");
  diag_plain(c.d, DIAG_ERROR, "no input files");
  cr_assert_str_eq(cap_text(&c), "w.safetensors: error: missing tensor 'fc.bias'\n"
                                 "other.yaml:4:2: error: x\n"
                                 "cnncc: error: no input files\n");
  cr_assert_eq(diag_error_count(c.d), 3);
  cap_close(&c);
}

Test(diag, colour_wraps_the_level_in_ansi_codes) {
  Cap c;
  cap_open(&c, true);
  diag_report(c.d, DIAG_ERROR, (SrcLoc){"f", 0, 0}, 1, "boom");
  cr_assert(strstr(cap_text(&c), "\033[1;31merror:"));
  cap_close(&c);
}

Test(diag, suggest_finds_misspellings_and_transpositions) {
  const char *keys[] = {"out", "kernel", "stride", "pad", "dilation", "groups", "bias"};
  cr_assert_str_eq(diag_suggest("strid", keys, 7), "stride");
  cr_assert_str_eq(diag_suggest("stirde", keys, 7), "stride");
  cr_assert_str_eq(diag_suggest("kernal", keys, 7), "kernel");
  cr_assert_str_eq(diag_suggest("dilatoin", keys, 7), "dilation");
  cr_assert_str_eq(diag_suggest("ot", keys, 7), "out");
  cr_assert_null(diag_suggest("padding_mode", keys, 7));
  cr_assert_null(diag_suggest("x", keys, 7));
  cr_assert_null(diag_suggest("weights", keys, 7));
  cr_assert_null(diag_suggest("", keys, 7));
  cr_assert_null(diag_suggest("stride", keys, 0));
}

/* A hook that prints the note it owes to the previous error, as the spec
   lowering does with its "in block ..." notes. */
typedef struct {
  Diag *d;
  int calls;
  bool owed;
} Owed;

static void flush_owed(void *ctx) {
  Owed *o = ctx;
  o->calls++;
  if (o->owed)
    diag_report(o->d, DIAG_NOTE, (SrcLoc){"f", 0, 0}, 0, "owed");
  o->owed = false;
}

Test(diag, the_hook_runs_before_each_error_or_warning_but_not_before_notes) {
  Cap c;
  cap_open(&c, false);
  Owed o = {c.d, 0, false};
  DiagHook old = diag_set_hook(c.d, (DiagHook){flush_owed, &o});
  cr_assert_null(old.fn);
  diag_report(c.d, DIAG_ERROR, (SrcLoc){"f", 0, 0}, 1, "first");
  o.owed = true;
  diag_report(c.d, DIAG_NOTE, (SrcLoc){"f", 0, 0}, 0, "its own note");
  diag_report(c.d, DIAG_WARNING, (SrcLoc){"f", 0, 0}, 1, "second");
  o.owed = true;
  diag_plain(c.d, DIAG_ERROR, "third");
  cr_assert_eq(o.calls, 3);
  cr_assert_str_eq(cap_text(&c), "f: error: first\n"
                                 "f: note: its own note\n"
                                 "f: note: owed\n"
                                 "f: warning: second\n"
                                 "f: note: owed\n"
                                 "cnncc: error: third\n");
  old = diag_set_hook(c.d, old);
  cr_assert_eq(old.fn, flush_owed);
  diag_report(c.d, DIAG_ERROR, (SrcLoc){"f", 0, 0}, 1, "fourth");
  cr_assert_eq(o.calls, 3);
  cap_close(&c);
}

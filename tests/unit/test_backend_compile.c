/*
 * test_backend_compile.c: what backend_compile writes and how it fails:
 * LLVM IR, assembly and object files; a missing output directory (a user
 * error, nothing written), an unplanned graph (an internal error) and a
 * failed link (the linker named, no file left behind). Graphs and helpers:
 * backend_harness.h.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend_harness.h"

/* backend_compile with its diagnostics in *text (the caller frees). */
static int compile_capturing(Graph *g, const BackendOptions *o, char **text) {
  size_t len = 0;
  FILE *f = open_memstream(text, &len);
  Diag *d = diag_new(f, false);
  int rc = backend_compile(g, o, d);
  diag_free(d);
  fclose(f);
  return rc;
}

Test(backend, missing_output_directory_is_a_user_error_and_writes_nothing) {
  Graph *g = small_net();
  plan(g);
  BackendOptions o = opts_for("/tmp/cnncc-no-such-dir-for-sure/net.so");
  char *text = NULL;
  cr_assert_eq(compile_capturing(g, &o, &text), 1);
  cr_assert(strstr(text, "does not exist"), "%s", text);
  free(text);
  ir_graph_free(g);
}

Test(backend, unplanned_graph_is_an_internal_error) {
  Graph *g = small_net();
  Lib l = {0};
  tmpdir_new(&l);
  BackendOptions o = opts_for(l.so);
  char *text = NULL;
  cr_assert_eq(compile_capturing(g, &o, &text), 2);
  cr_assert(strstr(text, "no planned storage"), "%s", text);
  free(text);
  cr_assert(access(l.so, F_OK) != 0, "a failed compile left %s", l.so);
  lib_close(&l);
  ir_graph_free(g);
}

Test(backend, failed_link_reports_the_linker_and_leaves_no_output) {
  Graph *g = small_net();
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  BackendOptions o = opts_for(l.so);
  o.runtime_lib = "/dev/null"; /* exists, but is no library */
  char *text = NULL;
  cr_assert_eq(compile_capturing(g, &o, &text), 1);
  cr_assert(strstr(text, "linking"), "%s", text);
  free(text);
  DIR *dir = opendir(l.dir);
  struct dirent *e;
  int files = 0;
  while ((e = readdir(dir)))
    files += e->d_name[0] != '.';
  closedir(dir);
  cr_assert_eq(files, 0, "temporary files left behind in %s", l.dir);
  lib_close(&l);
  ir_graph_free(g);
}

Test(backend, llvm_ir_assembly_and_object_can_be_emitted) {
  Graph *g = small_net();
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  static const struct {
    EmitKind k;
    const char *name, *needle;
  } kinds[] = {{EMIT_LLVM, "net.ll", "define hidden void @cnnrt_forward"},
               {EMIT_ASM, "net.s", "cnnrt_forward:"},
               {EMIT_OBJ, "net.o", NULL}};
  for (int i = 0; i < 3; i++) {
    char path[200];
    snprintf(path, sizeof path, "%s/%s", l.dir, kinds[i].name);
    BackendOptions o = opts_for(path);
    o.emit = kinds[i].k;
    cr_assert_eq(compile(g, &o), 0, "%s", kinds[i].name);
    struct stat st;
    cr_assert(stat(path, &st) == 0 && st.st_size > 0, "%s", path);
    if (kinds[i].needle) {
      char cmd[512];
      snprintf(cmd, sizeof cmd, "grep -c '%s' '%s'", kinds[i].needle, path);
      char *out = run_cmd(cmd);
      cr_assert(atoi(out) > 0, "%s lacks %s", path, kinds[i].needle);
      free(out);
    }
  }
  lib_close(&l);
  ir_graph_free(g);
}

/*
 * test_passes.c: golden regression tests for the passes.
 *
 * Every case is a spec snippet tests/passes/<pass>/<case>.yaml with the
 * expected IR text after the passes beside it, <case>.expected. The snippet
 * names the passes to run in a comment on its first line:
 *     # passes: fuse-bn,fuse-epilogue
 * (default: the directory's name). Weights come from the deterministic
 * initialization (seed 0). A failing case prints `diff -u expected actual`.
 * The expected files are written and reviewed by hand: they state what a
 * pass must do (and, for negative cases, what it must leave alone).
 *
 * Criterion runs a parameterized test with no parameters zero times and
 * passes, so golden/the_case_directory_exists_and_holds_cases fails the run
 * when the directory is missing or holds no case; CNNCC_GOLDEN_DIR points
 * the runner at another directory (golden_runner/ uses it to check that).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frontend/frontend.h"
#include "passes/passes.h"

typedef struct {
  char *dir;  /* pass directory name */
  char *path; /* the .yaml */
} Case;

static void free_cases(struct criterion_test_params *p) {
  Case *c = p->params;
  for (size_t i = 0; i < p->length; i++) {
    cr_free(c[i].dir);
    cr_free(c[i].path);
  }
  cr_free(c);
}

static char *cr_strdup(const char *s) {
  char *p = cr_malloc(strlen(s) + 1);
  strcpy(p, s);
  return p;
}

#define MAX_CASES 512

static const char *golden_dir(void) {
  const char *dir = getenv("CNNCC_GOLDEN_DIR");
  return dir && *dir ? dir : CNNCC_SOURCE_DIR "/tests/passes";
}

/* Finds root/<pass>/<case>.yaml: fills the first `cap` into cases (NULL
   when cap is 0) and returns how many there are, or -1 when root cannot
   be opened. */
static long find_cases(const char *root, Case *cases, size_t cap) {
  DIR *d = opendir(root);
  if (!d)
    return -1;
  long n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/%s", root, e->d_name);
    DIR *sd = opendir(sub);
    struct dirent *f;
    while (sd && (f = readdir(sd))) {
      size_t len = strlen(f->d_name);
      if (len < 6 || strcmp(f->d_name + len - 5, ".yaml") != 0)
        continue;
      if ((size_t)n < cap) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", sub, f->d_name);
        cases[n].dir = cr_strdup(e->d_name);
        cases[n].path = cr_strdup(path);
      }
      n++;
    }
    if (sd)
      closedir(sd);
  }
  closedir(d);
  return n;
}

Test(golden, the_case_directory_exists_and_holds_cases) {
  const char *root = golden_dir();
  long n = find_cases(root, NULL, 0);
  cr_assert_geq(n, 0, "the golden pass cases: cannot open the directory %s", root);
  cr_assert_gt(n, 0, "the golden pass cases: no <pass>/<case>.yaml in %s", root);
  cr_assert_leq(n, MAX_CASES, "the golden pass cases: %ld in %s, only the first %d run", n, root,
                MAX_CASES);
}

ParameterizedTestParameters(golden, pass_output_matches_expected_ir) {
  Case *cases = cr_malloc(sizeof(Case) * MAX_CASES);
  long n = find_cases(golden_dir(), cases, MAX_CASES);
  size_t got = n < 0 ? 0 : n > MAX_CASES ? MAX_CASES : (size_t)n;
  return cr_make_param_array(Case, cases, got, free_cases);
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = 0;
  fclose(f);
  return s;
}

ParameterizedTest(Case *c, golden, pass_output_matches_expected_ir) {
  char *src = read_all(c->path);
  cr_assert(src, "cannot read %s", c->path);
  char passes[256];
  snprintf(passes, sizeof passes, "%s", c->dir);
  if (strncmp(src, "# passes:", 9) == 0) {
    const char *p = src + 9;
    while (*p == ' ')
      p++;
    size_t k = 0;
    while (p[k] && p[k] != '\n' && k + 1 < sizeof passes) {
      passes[k] = p[k];
      k++;
    }
    passes[k] = 0;
  }
  char *diags;
  size_t dlen;
  FILE *df = open_memstream(&diags, &dlen);
  Diag *d = diag_new(df, false);
  Graph *g = spec_load_file(c->path, d);
  fflush(df);
  cr_assert(g, "%s does not load:\n%s", c->path, diags);
  weights_init_deterministic(g, 0);
  char *save;
  for (char *t = strtok_r(passes, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    const PassInfo *p = passes_lookup(t);
    cr_assert(p, "%s: unknown pass '%s'", c->path, t);
    p->fn(g);
    ir_compact(g);
    cr_assert_eq(ir_verify(g, stderr), 0, "%s: IR invalid after %s", c->path, t);
  }
  char actual_path[2100], expected_path[2100];
  snprintf(expected_path, sizeof expected_path, "%.*s.expected", (int)(strlen(c->path) - 5),
           c->path);
  snprintf(actual_path, sizeof actual_path, "%s/golden_%d.actual", P_tmpdir, (int)getpid());
  FILE *af = fopen(actual_path, "w");
  ir_print(g, af);
  fclose(af);
  char *actual = read_all(actual_path), *expected = read_all(expected_path);
  if (!expected && getenv("CNNCC_WRITE_GOLDEN")) {
    /* Bootstrapping a new case: write it, then review it by hand. */
    FILE *ef = fopen(expected_path, "w");
    fputs(actual, ef);
    fclose(ef);
    expected = read_all(expected_path);
  }
  cr_assert(expected, "missing %s (run with CNNCC_WRITE_GOLDEN=1 once, then review it)",
            expected_path);
  if (strcmp(actual, expected) != 0) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "diff -u '%s' '%s' 2>&1", expected_path, actual_path);
    FILE *p = popen(cmd, "r");
    char diff[8192];
    size_t n = fread(diff, 1, sizeof diff - 1, p);
    diff[n] = 0;
    pclose(p);
    remove(actual_path);
    cr_assert_fail("%s: IR after '%s' differs from the expected text:\n%s", c->path, c->dir, diff);
  }
  remove(actual_path);
  free(actual);
  free(expected);
  free(src);
  ir_graph_free(g);
  diag_free(d);
  fclose(df);
  free(diags);
}

/* ------------------------------------------------- the runner, run on itself */

/* Runs this executable's golden tests on the cases in dir; returns its exit
   status and its output in *out (caller frees). In a clean environment:
   Criterion tells its workers apart through the environment (BoxFort's
   BXFI_MAP), and a child that inherited it would take itself for one. */
static int run_golden_on(const char *dir, char **out) {
  char self[1024];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  cr_assert(n > 0, "readlink /proc/self/exe");
  self[n] = 0;
  char cmd[2400];
  snprintf(cmd, sizeof cmd, "env -i CNNCC_GOLDEN_DIR='%s' '%s' --filter='golden/*' -j1 2>&1", dir,
           self);
  FILE *p = popen(cmd, "r");
  cr_assert(p, "popen %s", cmd);
  size_t len;
  FILE *m = open_memstream(out, &len);
  char line[1024];
  while (fgets(line, sizeof line, p))
    fputs(line, m);
  fclose(m);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(golden_runner, fails_with_a_message_when_the_case_directory_is_missing_or_empty) {
  char *out;
  cr_assert_neq(run_golden_on("/nonexistent/cnncc-golden", &out), 0, "%s", out);
  cr_assert(strstr(out, "cannot open the directory /nonexistent/cnncc-golden"), "%s", out);
  free(out);
  /* a pass directory, but no case in it */
  char dir[] = "/tmp/cnncc-golden-XXXXXX", sub[64];
  cr_assert(mkdtemp(dir));
  snprintf(sub, sizeof sub, "%s/fuse-bn", dir);
  cr_assert_eq(mkdir(sub, 0700), 0);
  int rc = run_golden_on(dir, &out);
  rmdir(sub);
  rmdir(dir);
  cr_assert_neq(rc, 0, "%s", out);
  cr_assert(strstr(out, "no <pass>/<case>.yaml in"), "%s", out);
  free(out);
}

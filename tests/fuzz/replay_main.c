/*
 * replay_main.c: runs a libFuzzer target over files, without libFuzzer.
 *
 *   fuzz_replay_spec FILE|DIR...
 *
 * Every regular file named (directories: every file in them, recursively)
 * is passed once to LLVMFuzzerTestOneInput. This is how the seeds and
 * tests/fuzz/regressions/ run in every build, with gcc, under ASan or not;
 * a crash or a trap fails the ctest test. Prints the number of inputs run.
 */
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Optional in a target, as in libFuzzer. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  char **v;
  int n, cap;
} Paths;

static void add(Paths *p, const char *path) {
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 64;
    p->v = realloc(p->v, sizeof *p->v * (size_t)p->cap);
  }
  p->v[p->n++] = realpath(path, NULL);
}

static int cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void collect(Paths *p, const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    perror(path);
    exit(1);
  }
  if (S_ISREG(st.st_mode)) {
    add(p, path);
    return;
  }
  DIR *d = opendir(path);
  if (!d) {
    perror(path);
    exit(1);
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    collect(p, sub);
  }
  closedir(d);
}

int main(int argc, char **argv) {
  Paths p = {0};
  for (int i = 1; i < argc; i++)
    collect(&p, argv[i]);
  qsort(p.v, (size_t)p.n, sizeof *p.v, cmp);
  if (LLVMFuzzerInitialize) /* may chdir: the paths are absolute now */
    LLVMFuzzerInitialize(&argc, &argv);
  for (int i = 0; i < p.n; i++) {
    FILE *f = fopen(p.v[i], "rb");
    if (!f) {
      perror(p.v[i]);
      return 1;
    }
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
      n += got;
      if (n == cap)
        buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    fprintf(stderr, "replay: %s (%zu bytes)\n", p.v[i], n);
    /* An exact-size copy, so ASan catches a read one past the end. */
    unsigned char *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    free(p.v[i]);
  }
  printf("replayed %d inputs\n", p.n);
  free(p.v);
  return 0;
}

/*
 * test_runtime.c: the cnn.h ABI under abuse, through dlopen as a host uses
 * it (the runtime and backend are tested only through their public ABI).
 *
 * Models (compiled at build time from the specs in tests/robustness, see
 * CMakeLists.txt): tiny (two inputs, two outputs, every kind of kernel),
 * tiny_ext (the same, weights in tiny_ext.so.weights), other and other_ext
 * (a different network).
 *
 * Leaks are checked three ways: file descriptors, threads and mappings of
 * the process before and after 1000 cycles (every build), LeakSanitizer
 * when the tests are built with CNNCC_SANITIZE, and valgrind on leak_host
 * (ctest valgrind_runtime).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/cnn.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
#endif

#define MODEL(name) RB_MODELS "/" name

typedef struct {
  void *h;
  const cnn_info *info;
  cnn_model *(*create)(const char *, char *, size_t);
  int (*run)(cnn_model *, int64_t, const float *const *, float *const *);
  int (*threads)(cnn_model *, int);
  int (*profile)(cnn_model *, const char *);
  int (*batch_parallel)(cnn_model *, int);
  const char *(*last_error)(const cnn_model *);
  void (*destroy)(cnn_model *);
} Lib;

static Lib lib_open(const char *path) {
  Lib l = {0};
  l.h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  cr_assert(l.h, "dlopen %s: %s", path, dlerror());
  const cnn_info *(*info)(void);
  *(void **)&info = dlsym(l.h, "cnn_get_info");
  *(void **)&l.create = dlsym(l.h, "cnn_create");
  *(void **)&l.run = dlsym(l.h, "cnn_run");
  *(void **)&l.threads = dlsym(l.h, "cnn_set_num_threads");
  *(void **)&l.profile = dlsym(l.h, "cnn_set_profile");
  *(void **)&l.batch_parallel = dlsym(l.h, "cnn_set_batch_parallel");
  *(void **)&l.last_error = dlsym(l.h, "cnn_last_error");
  *(void **)&l.destroy = dlsym(l.h, "cnn_destroy");
  cr_assert(info && l.create && l.run && l.threads && l.profile && l.batch_parallel &&
            l.last_error && l.destroy);
  l.info = info();
  cr_assert_eq(l.info->abi_version, CNN_ABI_VERSION);
  return l;
}

static void lib_close(Lib *l) {
  dlclose(l->h);
  l->h = NULL;
}

static int64_t numel(const cnn_tensor_desc *t) {
  int64_t n = 1;
  for (int i = 1; i < t->rank; i++)
    n *= t->dims[i];
  return n;
}

/* Input and output buffers for `batch` samples; inputs pseudo-random,
   outputs NaN. */
typedef struct {
  int64_t batch;
  int nin, nout;
  float *in[8], *out[8];
  int64_t out_n[8];
} Bufs;

static Bufs bufs_new(const cnn_info *info, int64_t batch, uint32_t seed) {
  Bufs b = {.batch = batch, .nin = info->num_inputs, .nout = info->num_outputs};
  cr_assert(b.nin <= 8 && b.nout <= 8);
  for (int i = 0; i < b.nin; i++) {
    int64_t n = numel(&info->inputs[i]) * batch;
    b.in[i] = malloc(sizeof(float) * (size_t)n);
    for (int64_t k = 0; k < n; k++) {
      seed = seed * 1664525u + 1013904223u;
      b.in[i][k] = (float)(seed >> 8) / (float)(1 << 24) * 2.0f - 1.0f;
    }
  }
  for (int i = 0; i < b.nout; i++) {
    b.out_n[i] = numel(&info->outputs[i]) * batch;
    b.out[i] = malloc(sizeof(float) * (size_t)b.out_n[i]);
    for (int64_t k = 0; k < b.out_n[i]; k++)
      b.out[i][k] = NAN;
  }
  return b;
}

static void bufs_free(Bufs *b) {
  for (int i = 0; i < b->nin; i++)
    free(b->in[i]);
  for (int i = 0; i < b->nout; i++)
    free(b->out[i]);
}

static int run(const Lib *l, cnn_model *m, Bufs *b) {
  return l->run(m, b->batch, (const float *const *)b->in, b->out);
}

/* Copies of the outputs, to compare runs. */
static float *snapshot(const Bufs *b) {
  int64_t total = 0;
  for (int i = 0; i < b->nout; i++)
    total += b->out_n[i];
  float *s = malloc(sizeof(float) * (size_t)total), *p = s;
  for (int i = 0; i < b->nout; i++) {
    memcpy(p, b->out[i], sizeof(float) * (size_t)b->out_n[i]);
    p += b->out_n[i];
  }
  return s;
}

static int64_t snapshot_len(const Bufs *b) {
  int64_t total = 0;
  for (int i = 0; i < b->nout; i++)
    total += b->out_n[i];
  return total;
}

static cnn_model *create_ok(const Lib *l, const char *weights) {
  char err[512];
  cnn_model *m = l->create(weights, err, sizeof err);
  cr_assert(m, "cnn_create(%s): %s", weights ? weights : "NULL", err);
  return m;
}

/* ------------------------------------------------------ failed models */

Test(runtime, every_call_on_a_model_that_failed_to_load_returns_an_error) {
  Lib l = lib_open(MODEL("tiny_ext.so"));
  char err[512];
  cnn_model *m = l.create("/nonexistent/dir/tiny.weights", err, sizeof err);
  cr_assert_null(m);
  cr_assert(strstr(err, "/nonexistent/dir/tiny.weights"), "%s", err);
  /* the failed model (NULL) is refused by every call, with a message */
  Bufs b = bufs_new(l.info, 1, 1);
  cr_assert_eq(run(&l, m, &b), CNN_ESTATE);
  cr_assert_eq(l.threads(m, 2), CNN_ESTATE);
  cr_assert_eq(l.profile(m, "on"), CNN_ESTATE);
  cr_assert_eq(l.batch_parallel(m, 1), CNN_ESTATE);
  cr_assert(strstr(l.last_error(m), "cnn_create failed"), "%s", l.last_error(m));
  l.destroy(m);
  /* an external-weights model without its blob fails the same way */
  cr_assert_null(l.create(NULL, err, sizeof err));
  cr_assert(strstr(err, "external weights"), "%s", err);
  bufs_free(&b);
  lib_close(&l);
}

Test(runtime, cnn_create_writes_errors_only_within_the_given_buffer) {
  Lib l = lib_open(MODEL("tiny_ext.so"));
  cr_assert_null(l.create("/nonexistent.weights", NULL, 0));
  cr_assert_null(l.create("/nonexistent.weights", NULL, 100));
  char one[1] = {'x'};
  cr_assert_null(l.create("/nonexistent.weights", one, 1));
  cr_assert_eq(one[0], 0);
  char small[16];
  memset(small, '#', sizeof small);
  cr_assert_null(l.create("/nonexistent.weights", small, 8));
  cr_assert_eq(strlen(small), 7, "not terminated within 8 bytes");
  for (int i = 8; i < 16; i++)
    cr_assert_eq(small[i], '#', "byte %d past the buffer was written", i);
  lib_close(&l);
}

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert(f, "%s", path);
  if (n)
    cr_assert_eq(fwrite(p, 1, n, f), n);
  fclose(f);
}

static unsigned char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  cr_assert(f, "%s", path);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *p = malloc(*n + 1);
  cr_assert_eq(fread(p, 1, *n, f), *n);
  fclose(f);
  return p;
}

Test(runtime, corrupt_or_foreign_weight_files_are_refused_with_a_message) {
  Lib l = lib_open(MODEL("tiny_ext.so"));
  char dir[] = "/tmp/cnncc-rt-XXXXXX", path[256], err[512];
  cr_assert(mkdtemp(dir));
  size_t n;
  unsigned char *blob = read_all(MODEL("tiny_ext.so.weights"), &n);
  cr_assert_gt(n, 64);
  struct {
    const char *what, *expect;
    const void *bytes;
    size_t len;
  } cases[] = {
      {"empty", "too small", "", 0},           {"garbage", "too small", "garbage", 7},
      {"bad magic", "bad magic", NULL, 0}, /* the blob with its magic flipped */
      {"truncated", "truncated", blob, n - 1}, {"trailing byte", "trailing data", NULL, 0},
  };
  unsigned char *flipped = malloc(n + 1);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    snprintf(path, sizeof path, "%s/case%zu.weights", dir, i);
    if (!strcmp(cases[i].what, "bad magic")) {
      memcpy(flipped, blob, n);
      flipped[0] ^= 0xff;
      write_bytes(path, flipped, n);
    } else if (!strcmp(cases[i].what, "trailing byte")) {
      memcpy(flipped, blob, n);
      flipped[n] = 0;
      write_bytes(path, flipped, n + 1);
    } else {
      write_bytes(path, cases[i].bytes, cases[i].len);
    }
    err[0] = 0;
    cr_expect_null(l.create(path, err, sizeof err), "%s accepted", cases[i].what);
    cr_expect(strstr(err, cases[i].expect), "%s: '%s' lacks '%s'", cases[i].what, err,
              cases[i].expect);
    unlink(path);
  }
  /* not regular files */
  cr_assert_null(l.create(dir, err, sizeof err));
  cr_expect(strstr(err, "not a regular file"), "%s", err);
  cr_assert_null(l.create("/dev/zero", err, sizeof err));
  cr_expect(strstr(err, "not a regular file"), "%s", err);
  /* a blob made for another spec (cnncc --external-weights of other.yaml) */
  cr_assert_null(l.create(MODEL("other_ext.so.weights"), err, sizeof err));
  cr_expect(strstr(err, "another network"), "%s", err);
  /* and the right one still loads */
  cnn_model *m = create_ok(&l, MODEL("tiny_ext.so.weights"));
  l.destroy(m);
  free(flipped);
  free(blob);
  rmdir(dir);
  lib_close(&l);
}

/* -------------------------------------------------------- bad arguments */

Test(runtime, cnn_run_refuses_bad_arguments_with_a_message_and_then_works) {
  Lib l = lib_open(MODEL("tiny.so"));
  cnn_model *m = create_ok(&l, NULL);
  Bufs b = bufs_new(l.info, 2, 7);
  const float *const *in = (const float *const *)b.in;
  const int64_t batches[] = {0, -1, INT64_MIN};
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(l.run(m, batches[i], in, b.out), CNN_EINVAL);
    cr_assert(strstr(l.last_error(m), "batch"), "%s", l.last_error(m));
  }
  cr_assert_eq(l.run(m, 2, NULL, b.out), CNN_EINVAL);
  cr_assert(strstr(l.last_error(m), "inputs"), "%s", l.last_error(m));
  cr_assert_eq(l.run(m, 2, in, NULL), CNN_EINVAL);
  cr_assert(strstr(l.last_error(m), "outputs"), "%s", l.last_error(m));
  const float *in_hole[2] = {b.in[0], NULL};
  cr_assert_eq(l.run(m, 2, in_hole, b.out), CNN_EINVAL);
  cr_assert(strstr(l.last_error(m), "inputs[1] ('extra')"), "%s", l.last_error(m));
  float *out_hole[2] = {b.out[0], NULL};
  cr_assert_eq(l.run(m, 2, in, out_hole), CNN_EINVAL);
  cr_assert(strstr(l.last_error(m), "outputs[1] ('side')"), "%s", l.last_error(m));
  cr_assert_eq(l.threads(m, -1), CNN_EINVAL);
  cr_assert_eq(l.threads(m, 1025), CNN_EINVAL);
  cr_assert(strstr(l.last_error(m), "1025"), "%s", l.last_error(m));
  /* nothing was written, and the model still works */
  for (int i = 0; i < b.nout; i++)
    for (int64_t k = 0; k < b.out_n[i]; k++)
      cr_assert(isnan(b.out[i][k]), "a refused cnn_run wrote outputs[%d][%lld]", i, (long long)k);
  cr_assert_eq(l.threads(m, 0), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK, "%s", l.last_error(m));
  cr_assert_str_eq(l.last_error(m), "");
  for (int64_t k = 0; k < b.out_n[0]; k++)
    cr_assert(isfinite(b.out[0][k]));
  bufs_free(&b);
  l.destroy(m);
  lib_close(&l);
}

/* ----------------------------------------------------------------- leaks */

static int count_dir(const char *path) {
  DIR *d = opendir(path);
  cr_assert(d, "%s", path);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static int count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  cr_assert(f);
  int n = 0, c;
  while ((c = fgetc(f)) != EOF)
    n += c == '\n';
  fclose(f);
  return n;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &kb) == 1)
      break;
  fclose(f);
  return kb;
}

typedef struct {
  int fds, threads, maps;
  long rss;
} Usage;

static Usage usage(void) {
  return (Usage){count_dir("/proc/self/fd"), count_dir("/proc/self/task"),
                 count_lines("/proc/self/maps"), rss_kb()};
}

static void cycles(Lib *l, const char *weights, int n, Bufs *b) {
  for (int c = 0; c < n; c++) {
    cnn_model *m = create_ok(l, weights);
    cr_assert_eq(l->threads(m, 1 + c % 2), CNN_OK);
    cr_assert_eq(run(l, m, b), CNN_OK, "%s", l->last_error(m));
    cr_assert_eq(l->run(m, 0, (const float *const *)b->in, b->out), CNN_EINVAL);
    l->destroy(m);
  }
  char err[128];
  cr_assert_null(l->create("/nonexistent.weights", err, sizeof err));
}

Test(runtime, a_thousand_create_run_destroy_cycles_leak_nothing) {
  Lib emb = lib_open(MODEL("tiny.so")), ext = lib_open(MODEL("tiny_ext.so"));
  Bufs b = bufs_new(emb.info, 2, 3);
  /* warm up: the first cycles map code pages and let malloc settle */
  cycles(&emb, NULL, 5, &b);
  cycles(&ext, MODEL("tiny_ext.so.weights"), 5, &b);
  Usage before = usage();
  for (int i = 0; i < 10; i++) {
    cycles(&emb, NULL, 50, &b);
    cycles(&ext, MODEL("tiny_ext.so.weights"), 50, &b);
  }
  Usage after = usage();
  cr_expect_eq(after.fds, before.fds, "file descriptors: %d before, %d after", before.fds,
               after.fds);
  cr_expect_eq(after.threads, before.threads, "threads: %d before, %d after", before.threads,
               after.threads);
  bufs_free(&b);
  lib_close(&emb);
  lib_close(&ext);
#ifdef HAVE_LSAN
  /* ASan's allocator keeps freed memory in quarantine and maps as it
     pleases: mappings and RSS say nothing here, LeakSanitizer does. */
  cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks (see stderr)");
#else
  cr_expect_eq(after.maps, before.maps, "mappings: %d before, %d after", before.maps, after.maps);
  cr_expect_lt(after.rss - before.rss, 8 * 1024, "RSS grew by %ld KB", after.rss - before.rss);
#endif
}

/* ------------------------------------------------- determinism, threads */

Test(runtime, the_same_input_gives_the_same_output_bits_on_every_run) {
  Lib l = lib_open(MODEL("tiny.so"));
  cnn_model *m = create_ok(&l, NULL);
  Bufs b = bufs_new(l.info, 3, 11);
  int64_t n = snapshot_len(&b);
  for (int threads = 1; threads <= 2; threads++) {
    cr_assert_eq(l.threads(m, threads), CNN_OK);
    cr_assert_eq(run(&l, m, &b), CNN_OK);
    float *first = snapshot(&b);
    for (int r = 0; r < 50; r++) {
      cr_assert_eq(run(&l, m, &b), CNN_OK);
      float *again = snapshot(&b);
      cr_assert_eq(memcmp(first, again, sizeof(float) * (size_t)n), 0,
                   "run %d with %d thread(s) differs from the first", r, threads);
      free(again);
    }
    free(first);
  }
  /* a fresh model gives the same bits too */
  float *before = snapshot(&b);
  l.destroy(m);
  m = create_ok(&l, NULL);
  cr_assert_eq(l.threads(m, 2), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  float *fresh = snapshot(&b);
  cr_assert_eq(memcmp(before, fresh, sizeof(float) * (size_t)n), 0);
  free(before);
  free(fresh);
  bufs_free(&b);
  l.destroy(m);
  lib_close(&l);
}

Test(runtime, one_and_two_threads_agree_and_a_batch_equals_its_samples) {
  Lib l = lib_open(MODEL("tiny.so"));
  cnn_model *m = create_ok(&l, NULL);
  /* 5 samples: with 2 threads, 4 run two by two on their own arenas (one
     thread each) and the fifth on both threads (runtime.c). */
  Bufs b = bufs_new(l.info, 5, 5);
  cr_assert_eq(l.threads(m, 1), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  float *one = snapshot(&b);
  cr_assert_eq(l.threads(m, 2), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  float *two = snapshot(&b);
  int64_t n = snapshot_len(&b);
  for (int64_t k = 0; k < n; k++)
    cr_assert(fabsf(one[k] - two[k]) <= 1e-5f * (1.0f + fabsf(one[k])),
              "value %lld: %.9g with 1 thread, %.9g with 2", (long long)k, (double)one[k],
              (double)two[k]);
  /* sample s of the batch, run alone */
  for (int s = 0; s < 5; s++) {
    const float *in1[2];
    float *out1[2];
    for (int i = 0; i < b.nin; i++)
      in1[i] = b.in[i] + s * numel(&l.info->inputs[i]);
    for (int i = 0; i < b.nout; i++)
      out1[i] = malloc(sizeof(float) * (size_t)numel(&l.info->outputs[i]));
    cr_assert_eq(l.run(m, 1, in1, out1), CNN_OK);
    for (int i = 0; i < b.nout; i++) {
      int64_t on = numel(&l.info->outputs[i]);
      cr_assert_eq(memcmp(out1[i], b.out[i] + s * on, sizeof(float) * (size_t)on), 0,
                   "output %d of sample %d alone differs from it in the batch", i, s);
      free(out1[i]);
    }
  }
  free(one);
  free(two);
  bufs_free(&b);
  l.destroy(m);
  lib_close(&l);
}

typedef struct {
  const Lib *l;
  const char *weights;
  int threads, runs;
  const float *expect;
  int64_t n;
  int mismatches, errors;
} Job;

static void *job_main(void *arg) {
  Job *j = arg;
  char err[256];
  cnn_model *m = j->l->create(j->weights, err, sizeof err);
  if (!m) {
    j->errors++;
    return NULL;
  }
  if (j->l->threads(m, j->threads) != CNN_OK)
    j->errors++;
  Bufs b = bufs_new(j->l->info, 2, 99);
  for (int r = 0; r < j->runs; r++) {
    if (run(j->l, m, &b) != CNN_OK) {
      j->errors++;
      continue;
    }
    float *s = snapshot(&b);
    j->mismatches += memcmp(s, j->expect, sizeof(float) * (size_t)j->n) != 0;
    free(s);
  }
  bufs_free(&b);
  j->l->destroy(m);
  return NULL;
}

/* The reference outputs of a model on the jobs' input, run alone. */
static float *reference(const Lib *l, const char *weights, int threads, int64_t *n) {
  cnn_model *m = create_ok(l, weights);
  cr_assert_eq(l->threads(m, threads), CNN_OK);
  Bufs b = bufs_new(l->info, 2, 99);
  cr_assert_eq(run(l, m, &b), CNN_OK);
  float *s = snapshot(&b);
  *n = snapshot_len(&b);
  bufs_free(&b);
  l->destroy(m);
  return s;
}

static void two_jobs(Job *a, Job *b) {
  pthread_t ta, tb;
  cr_assert_eq(pthread_create(&ta, NULL, job_main, a), 0);
  cr_assert_eq(pthread_create(&tb, NULL, job_main, b), 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  cr_assert_eq(a->errors + b->errors, 0, "cnn_create/cnn_run failed in a thread");
  cr_assert_eq(a->mismatches, 0, "%d of %d runs of the first model differ", a->mismatches, a->runs);
  cr_assert_eq(b->mismatches, 0, "%d of %d runs of the second model differ", b->mismatches,
               b->runs);
}

Test(runtime, two_models_in_two_threads_give_the_results_of_one_at_a_time) {
  Lib tiny = lib_open(MODEL("tiny.so")), other = lib_open(MODEL("other_ext.so"));
  int64_t nt, no;
  for (int threads = 1; threads <= 2; threads++) {
    float *rt = reference(&tiny, NULL, threads, &nt);
    float *ro = reference(&other, MODEL("other_ext.so.weights"), threads, &no);
    /* two different networks */
    Job a = {&tiny, NULL, threads, 100, rt, nt, 0, 0};
    Job b = {&other, MODEL("other_ext.so.weights"), threads, 100, ro, no, 0, 0};
    two_jobs(&a, &b);
    /* two instances of the same network */
    Job c = {&tiny, NULL, threads, 100, rt, nt, 0, 0};
    Job d = {&tiny, NULL, threads, 100, rt, nt, 0, 0};
    two_jobs(&c, &d);
    free(rt);
    free(ro);
  }
  lib_close(&tiny);
  lib_close(&other);
}

/* ----------------------------------------------------------- environment */

/* stderr (fd 2) goes to a temporary file from stderr_begin to stderr_end,
   which returns what was written (to free). */
typedef struct {
  FILE *file;
  int saved_fd;
} Capture;

static Capture stderr_begin(void) {
  fflush(stderr);
  Capture c = {tmpfile(), dup(2)};
  cr_assert(c.file && c.saved_fd >= 0);
  cr_assert_geq(dup2(fileno(c.file), 2), 0);
  return c;
}

static char *stderr_end(Capture *c) {
  fflush(stderr);
  dup2(c->saved_fd, 2);
  close(c->saved_fd);
  fseek(c->file, 0, SEEK_END);
  long n = ftell(c->file);
  rewind(c->file);
  char *s = calloc((size_t)n + 1, 1);
  cr_assert_eq(fread(s, 1, (size_t)n, c->file), (size_t)n);
  fclose(c->file);
  return s;
}

static int count_str(const char *s, const char *sub) {
  int n = 0;
  for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
    n++;
  return n;
}

static void clear_env(void) {
  unsetenv("CNN_NUM_THREADS");
  unsetenv("CNN_PROFILE");
  unsetenv("CNN_BATCH_PARALLEL");
}

/* The threads of this process while a model made with CNN_NUM_THREADS=value
   lives. */
static int threads_with_env(const Lib *l, const char *value) {
  setenv("CNN_NUM_THREADS", value, 1);
  cnn_model *m = create_ok(l, NULL);
  unsetenv("CNN_NUM_THREADS");
  int n = count_dir("/proc/self/task");
  l->destroy(m);
  return n;
}

/* What a model made with CNN_PROFILE=value writes on stderr while it runs a
   batch and is destroyed. */
static char *stderr_with_profile_env(const Lib *l, const char *value) {
  setenv("CNN_PROFILE", value, 1);
  cnn_model *m = create_ok(l, NULL);
  unsetenv("CNN_PROFILE");
  Bufs b = bufs_new(l->info, 2, 17);
  Capture c = stderr_begin();
  cr_assert_eq(run(l, m, &b), CNN_OK, "%s", l->last_error(m));
  l->destroy(m);
  bufs_free(&b);
  return stderr_end(&c);
}

Test(runtime, the_environment_is_read_at_cnn_create_and_bad_values_are_ignored) {
  Lib l = lib_open(MODEL("tiny.so"));
  clear_env();
  int base = count_dir("/proc/self/task");
  cr_expect_eq(threads_with_env(&l, "1"), base, "CNN_NUM_THREADS=1 started threads");
  cr_expect_eq(threads_with_env(&l, "2"), base + 1, "CNN_NUM_THREADS=2: not one worker");
  int per_core = threads_with_env(&l, "0");
  const char *bad_threads[] = {"", "abc", "2x", "-1", "1025"};
  for (size_t i = 0; i < sizeof bad_threads / sizeof *bad_threads; i++)
    cr_expect_eq(threads_with_env(&l, bad_threads[i]), per_core,
                 "CNN_NUM_THREADS='%s' is not ignored (one thread per core)", bad_threads[i]);
  const char *on[] = {"1", "on"}, *off[] = {"0", "off", "", "yes", "2", "ON"};
  for (size_t i = 0; i < sizeof on / sizeof *on; i++) {
    char *err = stderr_with_profile_env(&l, on[i]);
    cr_expect_eq(count_str(err, "cnn profile: tiny,"), 1, "CNN_PROFILE=%s: '%s'", on[i], err);
    free(err);
  }
  for (size_t i = 0; i < sizeof off / sizeof *off; i++) {
    char *err = stderr_with_profile_env(&l, off[i]);
    cr_expect_str_empty(err, "CNN_PROFILE='%s' profiles: '%s'", off[i], err);
    free(err);
  }
  lib_close(&l);
}

/* CNN_BATCH_PARALLEL changes no result (a sample gives the same bits in a
   lane as on all threads), so it is only flipped here, not observed. */
Test(runtime, changing_the_environment_after_cnn_create_changes_nothing) {
  Lib l = lib_open(MODEL("tiny.so"));
  Bufs b = bufs_new(l.info, 4, 19);
  clear_env();
  /* made without profiling: setting CNN_PROFILE later, even before the
     thread pool is remade, does not turn it on */
  setenv("CNN_NUM_THREADS", "2", 1);
  cnn_model *m = create_ok(&l, NULL);
  int threads = count_dir("/proc/self/task");
  setenv("CNN_PROFILE", "1", 1);
  setenv("CNN_NUM_THREADS", "1", 1);
  setenv("CNN_BATCH_PARALLEL", "0", 1);
  Capture c = stderr_begin();
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_expect_eq(count_dir("/proc/self/task"), threads);
  cr_assert_eq(l.threads(m, 1), CNN_OK);
  cr_assert_eq(l.threads(m, 2), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  l.destroy(m);
  char *err = stderr_end(&c);
  cr_expect_str_empty(err, "CNN_PROFILE set after cnn_create profiles: '%s'", err);
  free(err);
  /* made with profiling: unsetting CNN_PROFILE later does not stop it;
     each pool prints its table (2 threads, then 1) */
  clear_env();
  setenv("CNN_NUM_THREADS", "2", 1);
  setenv("CNN_PROFILE", "1", 1);
  setenv("CNN_BATCH_PARALLEL", "0", 1);
  m = create_ok(&l, NULL);
  clear_env();
  setenv("CNN_PROFILE", "0", 1);
  c = stderr_begin();
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_assert_eq(l.threads(m, 1), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  l.destroy(m);
  err = stderr_end(&c);
  cr_expect_eq(count_str(err, "cnn profile: tiny, 2 threads, 4 sample runs"), 1, "'%s'", err);
  cr_expect_eq(count_str(err, "cnn profile: tiny, 1 thread, 4 sample runs"), 1, "'%s'", err);
  free(err);
  clear_env();
  bufs_free(&b);
  lib_close(&l);
}

/* ---------------------------------------------- the settings through the API */

Test(runtime, cnn_set_profile_and_cnn_set_batch_parallel_refuse_bad_arguments_and_then_work) {
  Lib l = lib_open(MODEL("tiny.so"));
  clear_env();
  cnn_model *m = create_ok(&l, NULL);
  cr_assert_eq(l.threads(m, 2), CNN_OK);
  Bufs b = bufs_new(l.info, 4, 23);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  float *expect = snapshot(&b);
  int64_t n = snapshot_len(&b);
  Capture c = stderr_begin();
  const char *bad_modes[] = {"", "yes", "ON", "2", "trace", "on "};
  for (size_t i = 0; i < sizeof bad_modes / sizeof *bad_modes; i++) {
    cr_expect_eq(l.profile(m, bad_modes[i]), CNN_EINVAL, "mode '%s' accepted", bad_modes[i]);
    char want[64];
    snprintf(want, sizeof want, "cnn_set_profile: unknown mode '%s'", bad_modes[i]);
    cr_expect(strstr(l.last_error(m), want), "%s", l.last_error(m));
  }
  const int bad_on[] = {-1, 2, 100};
  for (size_t i = 0; i < sizeof bad_on / sizeof *bad_on; i++) {
    cr_expect_eq(l.batch_parallel(m, bad_on[i]), CNN_EINVAL, "on = %d accepted", bad_on[i]);
    cr_expect(strstr(l.last_error(m), "cnn_set_batch_parallel"), "%s", l.last_error(m));
  }
  /* every accepted value, in every order, gives the same bits */
  const char *modes[] = {"on", "off", "1", "0", NULL, "on", "on", "off", "off"};
  for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
    cr_assert_eq(l.profile(m, modes[i]), CNN_OK, "mode %s: %s", modes[i] ? modes[i] : "NULL",
                 l.last_error(m));
    for (int on = 0; on <= 1; on++) {
      cr_assert_eq(l.batch_parallel(m, on), CNN_OK, "%s", l.last_error(m));
      cr_assert_eq(l.batch_parallel(m, on), CNN_OK, "%s", l.last_error(m));
      cr_assert_eq(run(&l, m, &b), CNN_OK, "%s", l.last_error(m));
      float *got = snapshot(&b);
      cr_assert_eq(memcmp(got, expect, sizeof(float) * (size_t)n), 0,
                   "profile %s, batch parallel %d: other bits", modes[i] ? modes[i] : "NULL", on);
      free(got);
    }
  }
  l.destroy(m);
  free(stderr_end(&c));
  free(expect);
  bufs_free(&b);
  lib_close(&l);
}

Test(runtime, cnn_set_profile_prints_the_per_layer_table_when_profiling_stops) {
  Lib l = lib_open(MODEL("tiny.so"));
  clear_env();
  cnn_model *m = create_ok(&l, NULL);
  cr_assert_eq(l.threads(m, 2), CNN_OK);
  Bufs b = bufs_new(l.info, 3, 29);
  Capture c = stderr_begin();
  cr_assert_eq(run(&l, m, &b), CNN_OK); /* not profiled */
  cr_assert_eq(l.profile(m, "on"), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_assert_eq(l.profile(m, "on"), CNN_OK); /* already on: goes on counting */
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_assert_eq(l.profile(m, "off"), CNN_OK); /* prints the 6 samples */
  char *err = stderr_end(&c);
  cr_expect_eq(count_str(err, "cnn profile: tiny, 2 threads, 6 sample runs (ms per sample)\n"), 1,
               "'%s'", err);
  cr_expect(strstr(err, "ms(mean)") && strstr(err, "GFLOP/s") && strstr(err, "total"), "'%s'", err);
  /* one row per layer, named as in the spec */
  cr_expect(strstr(err, " conv1 ") && strstr(err, " prob "), "'%s'", err);
  free(err);
  /* on again: a fresh count, printed by cnn_set_num_threads (the pool's
     table) and by cnn_destroy; off again: nothing */
  c = stderr_begin();
  cr_assert_eq(l.profile(m, "1"), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_assert_eq(l.threads(m, 1), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  l.destroy(m);
  m = create_ok(&l, NULL);
  cr_assert_eq(l.threads(m, 1), CNN_OK);
  cr_assert_eq(l.profile(m, "on"), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_assert_eq(l.profile(m, NULL), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_assert_eq(l.profile(m, "0"), CNN_OK);
  l.destroy(m);
  err = stderr_end(&c);
  cr_expect_eq(count_str(err, "cnn profile: tiny, 2 threads, 3 sample runs"), 1, "'%s'", err);
  cr_expect_eq(count_str(err, "cnn profile: tiny, 1 thread, 6 sample runs"), 1, "'%s'", err);
  cr_expect_eq(count_str(err, "cnn profile: tiny, 1 thread, 3 sample runs"), 1, "'%s'", err);
  cr_expect_eq(count_str(err, "cnn profile: tiny,"), 3, "'%s'", err);
  free(err);
  bufs_free(&b);
  lib_close(&l);
}

/* ------------------------------------------------- the trace (trace:FILE) */

/* A fresh scratch directory for trace files (left for a look after a
   failure; /tmp is cleaned by the system). */
static const char *trace_dir(void) {
  static char dir[64];
  snprintf(dir, sizeof dir, "/tmp/cnncc-trace-XXXXXX");
  cr_assert(mkdtemp(dir), "mkdtemp");
  return dir;
}

/* What a trace file holds, read with jansson: its complete ("X") slices
   checked for the fields every slice has. */
typedef struct {
  int runs;         /* "cnn_run" slices */
  int64_t batches;  /* the sum of their batch sizes */
  int caller;       /* layer slices on tid 0 */
  int workers;      /* layer slices on tids >= 1 */
  int max_tid;      /* of the slices */
  int named_tids;   /* thread_name metadata events */
  int layers;       /* otherData.layers */
  int64_t slices;   /* otherData.slices */
  int64_t dropped;  /* otherData.dropped_slices */
  int64_t capacity; /* otherData.capacity */
} TraceFile;

static TraceFile read_trace(const char *path) {
  json_error_t e;
  json_t *j = json_load_file(path, 0, &e);
  cr_assert(j, "%s is not JSON: %s (line %d)", path, e.text, e.line);
  TraceFile t = {.max_tid = -1};
  json_t *other = json_object_get(j, "otherData"), *events = json_object_get(j, "traceEvents");
  cr_assert(json_is_object(other) && json_is_array(events), "%s: no otherData or traceEvents",
            path);
  cr_expect_str_eq(json_string_value(json_object_get(other, "network")), "tiny");
  t.layers = (int)json_integer_value(json_object_get(other, "layers"));
  t.slices = json_integer_value(json_object_get(other, "slices"));
  t.dropped = json_integer_value(json_object_get(other, "dropped_slices"));
  t.capacity = json_integer_value(json_object_get(other, "capacity"));
  size_t i;
  json_t *ev;
  int64_t xs = 0;
  json_array_foreach(events, i, ev) {
    const char *ph = json_string_value(json_object_get(ev, "ph"));
    const char *name = json_string_value(json_object_get(ev, "name"));
    json_t *args = json_object_get(ev, "args");
    int tid = (int)json_integer_value(json_object_get(ev, "tid"));
    cr_assert(ph && name && json_is_object(args) && json_is_integer(json_object_get(ev, "pid")),
              "%s: event %zu lacks ph, name, pid or args", path, i);
    if (strcmp(ph, "M") == 0) {
      t.named_tids += strcmp(name, "thread_name") == 0;
      continue;
    }
    cr_assert_str_eq(ph, "X", "%s: event %zu", path, i);
    cr_assert(json_is_number(json_object_get(ev, "ts")) &&
              json_is_number(json_object_get(ev, "dur")));
    cr_assert_geq(json_number_value(json_object_get(ev, "dur")), 0);
    xs++;
    if (tid > t.max_tid)
      t.max_tid = tid;
    if (strcmp(name, "cnn_run") == 0) {
      cr_assert_eq(tid, 0);
      t.runs++;
      t.batches += json_integer_value(json_object_get(args, "batch"));
      continue;
    }
    const char *keys[] = {"layer", "op", "kernel", "gflop_per_s", "flops", "bytes", "items"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
      cr_assert(json_object_get(args, keys[k]), "%s: slice %s has no %s", path, name, keys[k]);
    cr_assert_gt(json_integer_value(json_object_get(args, "bytes")), 0, "%s: %s", path, name);
    if (tid == 0)
      t.caller++;
    else
      t.workers++;
  }
  cr_expect_eq(xs, t.slices, "%s: otherData.slices %lld, %lld slices", path, (long long)t.slices,
               (long long)xs);
  json_decref(j);
  return t;
}

Test(trace, trace_FILE_records_a_slice_per_run_and_launch_and_writes_the_file_when_it_stops) {
  Lib l = lib_open(MODEL("tiny.so"));
  clear_env();
  const char *dir = trace_dir();
  char path[128];
  snprintf(path, sizeof path, "%s/tiny.json", dir);
  cnn_model *m = create_ok(&l, NULL);
  cr_assert_eq(l.threads(m, 2), CNN_OK);
  Bufs b = bufs_new(l.info, 3, 31);
  char mode[160];
  snprintf(mode, sizeof mode, "trace:%s", path);
  cr_assert_eq(l.profile(m, mode), CNN_OK, "%s", l.last_error(m));
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  Capture c = stderr_begin();
  cr_assert_eq(l.profile(m, "off"), CNN_OK); /* writes the file */
  char *err = stderr_end(&c);
  cr_expect_str_empty(err, "tracing printed '%s'", err);
  free(err);
  cr_assert_eq(run(&l, m, &b), CNN_OK); /* not traced */
  TraceFile t = read_trace(path);
  cr_expect_eq(t.runs, 2);
  cr_expect_eq(t.batches, 6);
  cr_expect_gt(t.layers, 5);
  cr_expect_eq(t.caller, 6 * t.layers, "%d slices of the caller for 6 samples of %d layers",
               t.caller, t.layers);
  cr_expect_leq(t.max_tid, 1);
  cr_expect_eq(t.named_tids, t.max_tid + 1);
  cr_expect_eq(t.dropped, 0);
  l.destroy(m);
  bufs_free(&b);
  lib_close(&l);
}

Test(trace, a_traced_run_gives_the_same_bits) {
  Lib l = lib_open(MODEL("tiny.so"));
  clear_env();
  char mode[160];
  snprintf(mode, sizeof mode, "trace:%s/bits.json", trace_dir());
  for (int threads = 1; threads <= 2; threads++) {
    cnn_model *m = create_ok(&l, NULL);
    cr_assert_eq(l.threads(m, threads), CNN_OK);
    Bufs b = bufs_new(l.info, 5, 37);
    cr_assert_eq(run(&l, m, &b), CNN_OK);
    float *expect = snapshot(&b);
    cr_assert_eq(l.profile(m, mode), CNN_OK, "%s", l.last_error(m));
    cr_assert_eq(run(&l, m, &b), CNN_OK);
    float *got = snapshot(&b);
    cr_expect_eq(memcmp(got, expect, sizeof(float) * (size_t)snapshot_len(&b)), 0,
                 "%d threads: other bits when traced", threads);
    free(got);
    free(expect);
    l.destroy(m);
    bufs_free(&b);
  }
  lib_close(&l);
}

Test(trace, a_bad_trace_mode_is_refused_and_changes_nothing) {
  Lib l = lib_open(MODEL("tiny.so"));
  clear_env();
  cnn_model *m = create_ok(&l, NULL);
  cr_assert_eq(l.threads(m, 1), CNN_OK);
  Bufs b = bufs_new(l.info, 2, 41);
  cr_assert_eq(l.profile(m, "on"), CNN_OK);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_expect_eq(l.profile(m, "trace:"), CNN_EINVAL);
  cr_expect(strstr(l.last_error(m), "unknown mode 'trace:'"), "%s", l.last_error(m));
  cr_expect_eq(l.profile(m, "trace:/nonexistent-dir/t.json"), CNN_EINVAL);
  cr_expect(strstr(l.last_error(m), "cannot write the trace file '/nonexistent-dir/t.json'"), "%s",
            l.last_error(m));
  /* the table is still on, counting both runs */
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  Capture c = stderr_begin();
  cr_assert_eq(l.profile(m, "off"), CNN_OK);
  char *err = stderr_end(&c);
  cr_expect_eq(count_str(err, "cnn profile: tiny, 1 thread, 4 sample runs"), 1, "'%s'", err);
  free(err);
  l.destroy(m);
  bufs_free(&b);
  lib_close(&l);
}

Test(trace, one_trace_goes_on_across_thread_counts_and_a_new_file_ends_the_old_one) {
  Lib l = lib_open(MODEL("tiny.so"));
  clear_env();
  const char *dir = trace_dir();
  char f1[128], f2[128], m1[160], m2[160];
  snprintf(f1, sizeof f1, "%s/one.json", dir);
  snprintf(f2, sizeof f2, "%s/two.json", dir);
  snprintf(m1, sizeof m1, "trace:%s", f1);
  snprintf(m2, sizeof m2, "trace:%s", f2);
  cnn_model *m = create_ok(&l, NULL);
  cr_assert_eq(l.threads(m, 2), CNN_OK);
  Bufs b = bufs_new(l.info, 1, 43);
  cr_assert_eq(l.profile(m, m1), CNN_OK, "%s", l.last_error(m));
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_assert_eq(l.threads(m, 1), CNN_OK); /* a new pool, the same trace */
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_assert_eq(l.profile(m, m1), CNN_OK); /* the same file: goes on */
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_assert_eq(l.profile(m, m2), CNN_OK); /* another: one.json is written */
  TraceFile t1 = read_trace(f1);
  cr_expect_eq(t1.runs, 3);
  cr_expect_eq(t1.caller, 3 * t1.layers);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  cr_assert_eq(l.profile(m, "on"), CNN_OK); /* the table: two.json is written */
  TraceFile t2 = read_trace(f2);
  cr_expect_eq(t2.runs, 1);
  cr_expect_eq(t2.max_tid, 0, "one thread: only the caller's slices");
  Capture c = stderr_begin();
  l.destroy(m);
  char *err = stderr_end(&c);
  cr_expect_eq(count_str(err, "cnn profile: tiny,"), 0, "no run since 'on': '%s'", err);
  free(err);
  bufs_free(&b);
  lib_close(&l);
}

Test(trace, CNN_PROFILE_trace_FILE_traces_from_cnn_create_to_cnn_destroy) {
  Lib l = lib_open(MODEL("tiny.so"));
  clear_env();
  const char *dir = trace_dir();
  char env[160], path[160];
  snprintf(env, sizeof env, "trace:%s/env-%%p.json", dir);
  snprintf(path, sizeof path, "%s/env-%d.json", dir, (int)getpid());
  setenv("CNN_PROFILE", env, 1);
  cnn_model *m = create_ok(&l, NULL);
  clear_env();
  Bufs b = bufs_new(l.info, 2, 47);
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  l.destroy(m);
  TraceFile t = read_trace(path);
  cr_expect_eq(t.runs, 1);
  cr_expect_eq(t.caller, 2 * t.layers);
  /* a file that cannot be written: a line on stderr, and no profile */
  setenv("CNN_PROFILE", "trace:/nonexistent-dir/t.json", 1);
  Capture c = stderr_begin();
  m = create_ok(&l, NULL);
  clear_env();
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  l.destroy(m);
  char *err = stderr_end(&c);
  cr_expect_eq(count_str(err, "cannot write the trace file '/nonexistent-dir/t.json'"), 1, "'%s'",
               err);
  cr_expect_eq(count_str(err, "not tracing"), 1, "'%s'", err);
  free(err);
  bufs_free(&b);
  lib_close(&l);
}

Test(trace, a_full_buffer_keeps_the_first_slices_and_counts_the_others) {
  Lib l = lib_open(MODEL("tiny.so"));
  clear_env();
  char path[160], mode[170];
  snprintf(path, sizeof path, "%s/full.json", trace_dir());
  snprintf(mode, sizeof mode, "trace:%s", path);
  cnn_model *m = create_ok(&l, NULL);
  cr_assert_eq(l.threads(m, 1), CNN_OK); /* one slice per launch */
  /* more samples than the buffer (131072 slices) holds launches */
  Bufs b = bufs_new(l.info, 20000, 53);
  cr_assert_eq(l.profile(m, mode), CNN_OK, "%s", l.last_error(m));
  cr_assert_eq(run(&l, m, &b), CNN_OK);
  Capture c = stderr_begin();
  l.destroy(m);
  char *err = stderr_end(&c);
  TraceFile t = read_trace(path);
  int64_t all = 20000 * (int64_t)t.layers + 1; /* + the cnn_run slice */
  cr_assert_gt(all, t.capacity, "the test needs more slices than the buffer holds");
  cr_expect_eq(t.slices, t.capacity);
  cr_expect_eq(t.dropped, all - t.capacity);
  cr_expect_eq(t.caller, t.capacity, "the first slices are the launches");
  cr_expect_eq(count_str(err, "more were dropped"), 1, "'%s'", err);
  free(err);
  bufs_free(&b);
  lib_close(&l);
}

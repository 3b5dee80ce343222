/*
 * classify_digits.c: classify handwritten digits with a LeNet-5 that cnncc
 * compiled, and compare with PyTorch.
 *
 *   cnn_digits MODEL.so [DATA_DIR] [--show N] [--batch N] [--threads N]
 *
 * DATA_DIR (default out/digits) is what examples/digits/train_digits.py
 * wrote: test_images.f32 (N x 1 x 32 x 32 float32), test_labels.i32 and,
 * when present, torch_pred.i32 (PyTorch's predictions) and test_digits8.u8
 * (the original 8x8 scans, for the pictures). The program dlopen()s the
 * model, classifies all N images (in one cnn_run call, or --batch at a time), prints the accuracy,
 * draws the first N (--show, default 4) digits and the first mistake as
 * ASCII art with their predicted and true labels, and checks that every
 * prediction equals PyTorch's. Exit status: 0, or 1 if anything fails or a
 * prediction differs from PyTorch's. Only the public header cnn.h is used.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cnn.h"

typedef const cnn_info *(*get_info_fn)(void);
typedef cnn_model *(*create_fn)(const char *, char *, size_t);
typedef int (*run_fn)(cnn_model *, int64_t, const float *const *, float *const *);
typedef int (*threads_fn)(cnn_model *, int);
typedef const char *(*last_error_fn)(const cnn_model *);
typedef void (*destroy_fn)(cnn_model *);

#define SIDE 32

/* The whole file, its size in *len; NULL (and a message) if unreadable
   unless optional. */
static void *read_file(const char *dir, const char *name, size_t *len, int optional) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (!optional)
      fprintf(stderr, "cnn_digits: cannot open %s (run examples/digits/train_digits.py first)\n",
              path);
    return NULL;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *buf = malloc(n > 0 ? (size_t)n : 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "cnn_digits: cannot read %s\n", path);
    fclose(f);
    free(buf);
    return NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static void *sym(void *h, const char *name) {
  void *p = dlsym(h, name);
  if (!p) {
    fprintf(stderr, "cnn_digits: the model does not export %s\n", name);
    exit(1);
  }
  return p;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One row of a digit's picture: from the 8x8 scan (two characters per
   pixel, so it keeps its aspect ratio), or else from the 32x32 input. */
static void picture_row(const uint8_t *d8, const float *img, int row, char *out) {
  static const char ramp[] = " .:-=+*#%@";
  if (d8) {
    for (int c = 0; c < 8; c++) {
      char ch = ramp[d8[row * 8 + c] * 9 / 16];
      out[2 * c] = out[2 * c + 1] = ch;
    }
    out[16] = 0;
    return;
  }
  /* 32x32 -> 8 rows x 16 columns: averages of 4x2 pixels. */
  for (int c = 0; c < 16; c++) {
    float s = 0;
    for (int y = 0; y < 4; y++)
      for (int x = 0; x < 2; x++)
        s += img[(row * 4 + y) * SIDE + c * 2 + x];
    int k = (int)(s / 8 * 9.99f);
    out[c] = ramp[k < 0 ? 0 : k > 9 ? 9 : k];
  }
  out[16] = 0;
}

/* Draws the digits idx[0..n) side by side, 20 columns each, with their
   labels: 4 fit in 80 columns. */
static void draw(const int *idx, int n, const uint8_t *d8, const float *images, const int *pred,
                 const int32_t *label) {
  char cell[64];
  for (int k = 0; k < n; k++) {
    snprintf(cell, sizeof cell, "  #%d", idx[k]);
    printf("%-20s", cell);
  }
  putchar('\n');
  for (int r = -1; r <= 8; r++) {
    for (int k = 0; k < n; k++) {
      if (r < 0 || r == 8) {
        printf("  +----------------+");
        continue;
      }
      char row[17];
      picture_row(d8 ? d8 + (size_t)idx[k] * 64 : NULL, images + (size_t)idx[k] * SIDE * SIDE, r,
                  row);
      printf("  |%s|", row);
    }
    putchar('\n');
  }
  for (int k = 0; k < n; k++) {
    int i = idx[k];
    snprintf(cell, sizeof cell, "  pred %d true %d%s", pred[i], label[i],
             pred[i] == label[i] ? "" : "  X");
    printf("%-20s", cell);
  }
  printf("\n\n");
}

/* The command line. */
typedef struct {
  const char *model_path, *dir;
  int show, threads, batch; /* threads -1: the model's default; batch 0: all */
} options;

/* The model's functions, found by name in the .so. */
typedef struct {
  const cnn_info *info;
  create_fn create;
  run_fn run;
  threads_fn set_threads;
  last_error_fn last_error;
  destroy_fn destroy;
} model_api;

/* The held-out set; torch_pred and d8 may be NULL. */
typedef struct {
  int n;
  float *images; /* n x 32 x 32 */
  int32_t *labels, *torch_pred;
  uint8_t *d8; /* n x 8 x 8 */
} digits;

/* The predictions, scored against the labels and PyTorch's. */
typedef struct {
  int *pred;
  int right, agree, first_wrong, first_disagree; /* first_*: -1 if none */
} results;

static int usage(void) {
  fprintf(stderr, "usage: cnn_digits MODEL.so [DATA_DIR] [--show N] [--batch N] [--threads N]\n");
  return 1;
}

/* 0, or 1 after printing the usage. */
static int parse_args(int argc, char **argv, options *o) {
  *o = (options){.dir = "out/digits", .show = 4, .threads = -1};
  int have_dir = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--show") == 0 && v)
      o->show = atoi(v), i++;
    else if (strcmp(a, "--batch") == 0 && v)
      o->batch = atoi(v), i++;
    else if (strcmp(a, "--threads") == 0 && v)
      o->threads = atoi(v), i++;
    else if (a[0] != '-' && !o->model_path)
      o->model_path = a;
    else if (a[0] != '-' && !have_dir)
      o->dir = a, have_dir = 1;
    else
      return usage();
  }
  return o->model_path ? 0 : usage();
}

/* dlopen()s the model and checks that it is a 1x32x32 -> 10 classifier;
   0, or 1 after a message. dlopen needs a slash to look at a relative
   path. */
static int load_model(const char *model_path, model_api *api) {
  char so[4096];
  snprintf(so, sizeof so, "%s%s", strchr(model_path, '/') ? "" : "./", model_path);
  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "cnn_digits: %s\n", dlerror());
    return 1;
  }
  api->info = ((get_info_fn)sym(h, "cnn_get_info"))();
  api->create = (create_fn)sym(h, "cnn_create");
  api->run = (run_fn)sym(h, "cnn_run");
  api->set_threads = (threads_fn)sym(h, "cnn_set_num_threads");
  api->last_error = (last_error_fn)sym(h, "cnn_last_error");
  api->destroy = (destroy_fn)sym(h, "cnn_destroy");
  const cnn_tensor_desc *in = &api->info->inputs[0], *out = &api->info->outputs[0];
  if (api->info->num_inputs != 1 || in->rank != 4 || in->dims[1] != 1 || in->dims[2] != SIDE ||
      in->dims[3] != SIDE || out->rank != 2 || out->dims[1] != 10) {
    fprintf(stderr, "cnn_digits: %s is not a 1x32x32 -> 10 classifier (see examples/lenet5.yaml)\n",
            model_path);
    return 1;
  }
  return 0;
}

/* Reads the held-out set from dir; 0, or 1 after a message. A PyTorch
   prediction file or a file of scans of the wrong size is left out. */
static int load_digits(const char *dir, digits *d) {
  size_t nimg_bytes = 0, nlab_bytes = 0, npred_bytes = 0, n8_bytes = 0;
  d->images = read_file(dir, "test_images.f32", &nimg_bytes, 0);
  d->labels = read_file(dir, "test_labels.i32", &nlab_bytes, 0);
  if (!d->images || !d->labels)
    return 1;
  d->torch_pred = read_file(dir, "torch_pred.i32", &npred_bytes, 1);
  d->d8 = read_file(dir, "test_digits8.u8", &n8_bytes, 1);
  d->n = (int)(nlab_bytes / sizeof *d->labels);
  if (d->n == 0 || nimg_bytes != (size_t)d->n * SIDE * SIDE * sizeof(float)) {
    fprintf(stderr, "cnn_digits: %s: %zu bytes of images for %d labels\n", dir, nimg_bytes, d->n);
    return 1;
  }
  if (d->torch_pred && npred_bytes != nlab_bytes) {
    fprintf(stderr, "cnn_digits: %s/torch_pred.i32 has the wrong size; ignored\n", dir);
    free(d->torch_pred);
    d->torch_pred = NULL;
  }
  if (d->d8 && n8_bytes != (size_t)d->n * 64) {
    free(d->d8);
    d->d8 = NULL;
  }
  return 0;
}

/* The scores of all digits, --batch at a time (all in one batch by
   default), into scores (n x 10); the time taken in *ms. 0, or 1 after a
   message. */
static int classify(const model_api *api, cnn_model *m, const digits *d, int batch, float *scores,
                    double *ms) {
  double t0 = now_ms();
  if (batch <= 0 || batch > d->n)
    batch = d->n;
  for (int i = 0; i < d->n; i += batch) {
    int b = d->n - i < batch ? d->n - i : batch;
    const float *x = d->images + (size_t)i * SIDE * SIDE;
    if (api->run(m, b, (const float *const[]){x}, (float *const[]){scores + (size_t)i * 10}) !=
        CNN_OK) {
      fprintf(stderr, "cnn_digits: cnn_run: %s\n", api->last_error(m));
      return 1;
    }
  }
  *ms = now_ms() - t0;
  return 0;
}

/* The best class of each digit, counted against the labels and PyTorch. */
static results score(const digits *d, const float *scores) {
  results r = {
      .pred = malloc((size_t)d->n * sizeof *r.pred), .first_wrong = -1, .first_disagree = -1};
  for (int i = 0; i < d->n; i++) {
    int best = 0;
    for (int c = 1; c < 10; c++)
      if (scores[i * 10 + c] > scores[i * 10 + best])
        best = c;
    r.pred[i] = best;
    r.right += best == d->labels[i];
    if (best != d->labels[i] && r.first_wrong < 0)
      r.first_wrong = i;
    if (d->torch_pred) {
      r.agree += best == d->torch_pred[i];
      if (best != d->torch_pred[i] && r.first_disagree < 0)
        r.first_disagree = i;
    }
  }
  return r;
}

/* The first --show digits and the first mistake as pictures, the
   accuracy and the comparison with PyTorch; 0, or 1 if a prediction
   differs from PyTorch's. */
static int report(const options *o, const char *name, const digits *d, const results *r,
                  double ms) {
  int n = d->n;
  printf("%s (%s): %d held-out digits in %.1f ms\n\n", name, o->model_path, n, ms);
  int idx[4];
  for (int s = 0; s < o->show && s < n; s += 4) {
    int k = 0;
    for (; k < 4 && s + k < o->show && s + k < n; k++)
      idx[k] = s + k;
    draw(idx, k, d->d8, d->images, r->pred, d->labels);
  }
  if (o->show > 0 && r->first_wrong >= o->show) {
    printf("the first mistake:\n");
    draw(&r->first_wrong, 1, d->d8, d->images, r->pred, d->labels);
  }
  printf("accuracy: %d/%d = %.2f%%\n", r->right, n, 100.0 * r->right / n);
  if (!d->torch_pred)
    return 0;
  if (r->agree == n) {
    printf("same prediction as PyTorch on all %d digits\n", n);
    return 0;
  }
  int f = r->first_disagree;
  printf("DIFFERENT from PyTorch on %d of %d digits (first: #%d, cnncc %d, PyTorch %d)\n",
         n - r->agree, n, f, r->pred[f], d->torch_pred[f]);
  return 1;
}

int main(int argc, char **argv) {
  options o;
  model_api api;
  digits d = {0};
  if (parse_args(argc, argv, &o) != 0 || load_model(o.model_path, &api) != 0 ||
      load_digits(o.dir, &d) != 0)
    return 1;

  char err[256];
  cnn_model *m = api.create(NULL, err, sizeof err);
  if (!m) {
    fprintf(stderr, "cnn_digits: cnn_create: %s\n", err);
    return 1;
  }
  if (o.threads >= 0)
    api.set_threads(m, o.threads);
  float *scores = malloc((size_t)d.n * 10 * sizeof *scores);
  double ms;
  if (classify(&api, m, &d, o.batch, scores, &ms) != 0)
    return 1;
  results r = score(&d, scores);
  int rc = report(&o, api.info->name, &d, &r, ms);

  api.destroy(m);
  free(scores);
  free(r.pred);
  free(d.images);
  free(d.labels);
  free(d.torch_pred);
  free(d.d8);
  return rc;
}

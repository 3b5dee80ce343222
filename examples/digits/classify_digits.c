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

int main(int argc, char **argv) {
  const char *model_path = NULL, *dir = "out/digits";
  int show = 4, threads = -1, have_dir = 0, batch = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--show") == 0 && v)
      show = atoi(v), i++;
    else if (strcmp(a, "--batch") == 0 && v)
      batch = atoi(v), i++;
    else if (strcmp(a, "--threads") == 0 && v)
      threads = atoi(v), i++;
    else if (a[0] != '-' && !model_path)
      model_path = a;
    else if (a[0] != '-' && !have_dir)
      dir = a, have_dir = 1;
    else {
      fprintf(stderr,
              "usage: cnn_digits MODEL.so [DATA_DIR] [--show N] [--batch N] [--threads N]\n");
      return 1;
    }
  }
  if (!model_path) {
    fprintf(stderr, "usage: cnn_digits MODEL.so [DATA_DIR] [--show N] [--batch N] [--threads N]\n");
    return 1;
  }

  /* The model. dlopen needs a slash to look at a relative path. */
  char so[4096];
  snprintf(so, sizeof so, "%s%s", strchr(model_path, '/') ? "" : "./", model_path);
  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "cnn_digits: %s\n", dlerror());
    return 1;
  }
  const cnn_info *info = ((get_info_fn)sym(h, "cnn_get_info"))();
  create_fn create = (create_fn)sym(h, "cnn_create");
  run_fn run = (run_fn)sym(h, "cnn_run");
  threads_fn set_threads = (threads_fn)sym(h, "cnn_set_num_threads");
  last_error_fn last_error = (last_error_fn)sym(h, "cnn_last_error");
  destroy_fn destroy = (destroy_fn)sym(h, "cnn_destroy");
  const cnn_tensor_desc *in = &info->inputs[0], *out = &info->outputs[0];
  if (info->num_inputs != 1 || in->rank != 4 || in->dims[1] != 1 || in->dims[2] != SIDE ||
      in->dims[3] != SIDE || out->rank != 2 || out->dims[1] != 10) {
    fprintf(stderr, "cnn_digits: %s is not a 1x32x32 -> 10 classifier (see examples/lenet5.yaml)\n",
            model_path);
    return 1;
  }

  /* The held-out set. */
  size_t nimg_bytes = 0, nlab_bytes = 0, npred_bytes = 0, n8_bytes = 0;
  float *images = read_file(dir, "test_images.f32", &nimg_bytes, 0);
  int32_t *labels = read_file(dir, "test_labels.i32", &nlab_bytes, 0);
  if (!images || !labels)
    return 1;
  int32_t *torch_pred = read_file(dir, "torch_pred.i32", &npred_bytes, 1);
  uint8_t *d8 = read_file(dir, "test_digits8.u8", &n8_bytes, 1);
  int n = (int)(nlab_bytes / sizeof *labels);
  if (n == 0 || nimg_bytes != (size_t)n * SIDE * SIDE * sizeof(float)) {
    fprintf(stderr, "cnn_digits: %s: %zu bytes of images for %d labels\n", dir, nimg_bytes, n);
    return 1;
  }
  if (torch_pred && npred_bytes != nlab_bytes) {
    fprintf(stderr, "cnn_digits: %s/torch_pred.i32 has the wrong size; ignored\n", dir);
    free(torch_pred);
    torch_pred = NULL;
  }
  if (d8 && n8_bytes != (size_t)n * 64) {
    free(d8);
    d8 = NULL;
  }

  /* Classify all of them in one batch. */
  char err[256];
  cnn_model *m = create(NULL, err, sizeof err);
  if (!m) {
    fprintf(stderr, "cnn_digits: cnn_create: %s\n", err);
    return 1;
  }
  if (threads >= 0)
    set_threads(m, threads);
  float *scores = malloc((size_t)n * 10 * sizeof *scores);
  double t0 = now_ms();
  if (batch <= 0 || batch > n)
    batch = n;
  for (int i = 0; i < n; i += batch) {
    int b = n - i < batch ? n - i : batch;
    const float *x = images + (size_t)i * SIDE * SIDE;
    if (run(m, b, (const float *const[]){x}, (float *const[]){scores + (size_t)i * 10}) != CNN_OK) {
      fprintf(stderr, "cnn_digits: cnn_run: %s\n", last_error(m));
      return 1;
    }
  }
  double ms = now_ms() - t0;
  int *pred = malloc((size_t)n * sizeof *pred);
  int right = 0, agree = 0, first_wrong = -1, first_disagree = -1;
  for (int i = 0; i < n; i++) {
    int best = 0;
    for (int c = 1; c < 10; c++)
      if (scores[i * 10 + c] > scores[i * 10 + best])
        best = c;
    pred[i] = best;
    right += best == labels[i];
    if (best != labels[i] && first_wrong < 0)
      first_wrong = i;
    if (torch_pred) {
      agree += best == torch_pred[i];
      if (best != torch_pred[i] && first_disagree < 0)
        first_disagree = i;
    }
  }

  printf("%s (%s): %d held-out digits in %.1f ms\n\n", info->name, model_path, n, ms);
  int idx[4];
  for (int s = 0; s < show && s < n; s += 4) {
    int k = 0;
    for (; k < 4 && s + k < show && s + k < n; k++)
      idx[k] = s + k;
    draw(idx, k, d8, images, pred, labels);
  }
  if (show > 0 && first_wrong >= show) {
    printf("the first mistake:\n");
    draw(&first_wrong, 1, d8, images, pred, labels);
  }
  printf("accuracy: %d/%d = %.2f%%\n", right, n, 100.0 * right / n);
  int rc = 0;
  if (torch_pred) {
    if (agree == n) {
      printf("same prediction as PyTorch on all %d digits\n", n);
    } else {
      printf("DIFFERENT from PyTorch on %d of %d digits (first: #%d, cnncc %d, PyTorch %d)\n",
             n - agree, n, first_disagree, pred[first_disagree], torch_pred[first_disagree]);
      rc = 1;
    }
  }
  destroy(m);
  free(scores);
  free(pred);
  free(images);
  free(labels);
  free(torch_pred);
  free(d8);
  return rc;
}

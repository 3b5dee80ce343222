/*
 * typed_dlopen.c: a host that dlopen()s two networks and runs them through
 * their typed headers' _run_with wrappers:
 *
 *   typed_dlopen TINY.so AWKWARD.so
 *
 * tiny (tests/robustness/tiny.yaml: two inputs, two outputs) and awkward
 * (make_awkward.py: an ONNX model whose names are not C identifiers, so
 * this file only compiles while the header names them as docs/abi.md
 * says: input_1, class_, fc_Gemm, fc_gemm_2, t_191). Compiled as C11 and as
 * C++17 with -Wall -Wextra -Werror by tests/header/run.sh.
 *
 * Checks: each header's _check accepts its own .so and refuses the other;
 * the typed wrapper gives the same bits as cnn_run with untyped pointers.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "awkward.h"
#include "tiny.h"

typedef char names_as_documented[AWKWARD_INPUT_1_SIZE == 3 * 8 * 8 && AWKWARD_CLASS_SIZE == 4 &&
                                         AWKWARD_FC_GEMM_SIZE == 10 &&
                                         AWKWARD_FC_GEMM_2_SIZE == 6 &&
                                         AWKWARD_T_191_SIZE == 4 * 8 * 8
                                     ? 1
                                     : -1];

typedef struct {
  const cnn_info *info;
  cnn_model *(*create)(const char *, char *, size_t);
  int (*run)(cnn_model *, int64_t, const float *const *, float *const *);
  const char *(*last_error)(const cnn_model *);
  void (*destroy)(cnn_model *);
  cnn_model *m;
} Net;

static int fail(const char *what, const char *more) {
  fprintf(stderr, "typed_dlopen: %s%s\n", what, more ? more : "");
  return 1;
}

static int open_net(const char *path, Net *n) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h)
    return fail("dlopen: ", dlerror());
  const cnn_info *(*get_info)(void);
  *(void **)&get_info = dlsym(h, "cnn_get_info");
  *(void **)&n->create = dlsym(h, "cnn_create");
  *(void **)&n->run = dlsym(h, "cnn_run");
  *(void **)&n->last_error = dlsym(h, "cnn_last_error");
  *(void **)&n->destroy = dlsym(h, "cnn_destroy");
  if (!get_info || !n->create || !n->run || !n->last_error || !n->destroy)
    return fail("a cnn_* function is missing in ", path);
  n->info = get_info();
  char err[256];
  n->m = n->create(NULL, err, sizeof err);
  return n->m ? 0 : fail("cnn_create: ", err);
}

static void fill(float *p, int n, int seed) {
  for (int i = 0; i < n; i++)
    p[i] = (float)(((i + seed) * 7919) % 2001 - 1000) / 1000.0f;
}

/* tiny: batch 2 through tiny_run_with, and through cnn_run. */
static float t_image[2][TINY_IMAGE_C][TINY_IMAGE_H][TINY_IMAGE_W], t_extra[2][TINY_EXTRA_SIZE];
static float t_prob[2][TINY_PROB_SIZE], t_side[2][TINY_SIDE_SIZE];
static float p_prob[2][TINY_PROB_SIZE], p_side[2][TINY_SIDE_SIZE];

static int run_tiny(Net *n) {
  fill(&t_image[0][0][0][0], (int)(sizeof t_image / sizeof(float)), 1);
  fill(&t_extra[0][0], (int)(sizeof t_extra / sizeof(float)), 2);
  if (tiny_run_with(n->run, n->m, 2,
                    (const float(*)[TINY_IMAGE_C][TINY_IMAGE_H][TINY_IMAGE_W])t_image,
                    (const float(*)[TINY_EXTRA_SIZE])t_extra, t_prob, t_side) != CNN_OK)
    return fail("tiny_run_with: ", n->last_error(n->m));
  const float *in[2];
  float *out[2];
  in[TINY_IMAGE_INDEX] = &t_image[0][0][0][0];
  in[TINY_EXTRA_INDEX] = &t_extra[0][0];
  out[TINY_PROB_INDEX] = &p_prob[0][0];
  out[TINY_SIDE_INDEX] = &p_side[0][0];
  if (n->run(n->m, 2, in, out) != CNN_OK)
    return fail("cnn_run: ", n->last_error(n->m));
  if (memcmp(t_prob, p_prob, sizeof t_prob) != 0 || memcmp(t_side, p_side, sizeof t_side) != 0)
    return fail("tiny_run_with and cnn_run differ", NULL);
  return 0;
}

/* awkward: batch 3. */
static float a_x[3][3][8][8], a_c[3][4], a_fc[3][10], a_side[3][6], a_relu[3][4][8][8];
static float b_fc[3][10], b_side[3][6], b_relu[3][4][8][8];

static int run_awkward(Net *n) {
  fill(&a_x[0][0][0][0], 3 * 3 * 8 * 8, 3);
  fill(&a_c[0][0], 3 * 4, 4);
  if (awkward_run_with(n->run, n->m, 3, (const float(*)[3][8][8])a_x, (const float(*)[4])a_c, a_fc,
                       a_side, a_relu) != CNN_OK)
    return fail("awkward_run_with: ", n->last_error(n->m));
  const float *in[2] = {&a_x[0][0][0][0], &a_c[0][0]};
  float *out[3] = {&b_fc[0][0], &b_side[0][0], &b_relu[0][0][0][0]};
  if (n->run(n->m, 3, in, out) != CNN_OK)
    return fail("cnn_run: ", n->last_error(n->m));
  if (memcmp(a_fc, b_fc, sizeof a_fc) != 0 || memcmp(a_side, b_side, sizeof a_side) != 0 ||
      memcmp(a_relu, b_relu, sizeof a_relu) != 0)
    return fail("awkward_run_with and cnn_run differ", NULL);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3)
    return fail("usage: typed_dlopen TINY.so AWKWARD.so", NULL);
  Net tiny, awk;
  if (open_net(argv[1], &tiny) || open_net(argv[2], &awk))
    return 1;
  if (tiny_check(tiny.info) != 0 || awkward_check(awk.info) != 0)
    return fail("a header refuses its own network", NULL);
  if (tiny_check(awk.info) != -1 || awkward_check(tiny.info) != -1)
    return fail("a header accepts another network", NULL);
  if (run_tiny(&tiny) || run_awkward(&awk))
    return 1;
  printf("typed_dlopen: tiny and awkward: the typed wrappers == cnn_run (%s)\n",
#ifdef __cplusplus
         "C++"
#else
         "C"
#endif
  );
  tiny.destroy(tiny.m);
  awk.destroy(awk.m);
  return 0;
}

/*
 * typed_linked.c: a host linked with lenet5.so that runs it through the
 * typed header cnncc wrote beside it (--header lenet5.h). Compiled as C11
 * and as C++17 with -Wall -Wextra -Werror by tests/header/run.sh, with
 * resnet50.h (cnncc --emit=header) included too.
 *
 * Checks: lenet5_check accepts the .so's cnn_info and resnet50_check
 * refuses it; the constants are the network's sizes; lenet5_run gives the
 * same bits as cnn_run with untyped pointers, at batch 3. Exit status 0
 * or 1 (with a message).
 */
#include <stdio.h>
#include <string.h>

#include "lenet5.h"
#include "resnet50.h"

/* Compile-time checks that work in C11 and C++. */
typedef char input_is_1x32x32[LENET5_IMAGE_SIZE == 1 * 32 * 32 ? 1 : -1];
typedef char output_is_10[LENET5_OUTPUT_SIZE == 10 && LENET5_OUTPUT_RANK == 2 ? 1 : -1];
typedef char resnet50_is_3x224x224[RESNET50_IMAGE_C == 3 && RESNET50_IMAGE_H == 224 ? 1 : -1];

static float x[3][LENET5_IMAGE_C][LENET5_IMAGE_H][LENET5_IMAGE_W];
static float typed[3][LENET5_OUTPUT_SIZE], plain[3][LENET5_OUTPUT_SIZE];

static int fail(const char *what) {
  fprintf(stderr, "typed_linked: %s\n", what);
  return 1;
}

int main(void) {
  if (lenet5_check(cnn_get_info()) != 0)
    return fail("lenet5_check refuses lenet5.so");
  if (resnet50_check(cnn_get_info()) != -1)
    return fail("resnet50_check accepts lenet5.so");
  for (int i = 0; i < 3 * 32 * 32; i++)
    (&x[0][0][0][0])[i] = (float)((i * 7919) % 1000) / 1000.0f;
  for (int i = 0; i < 3 * 10; i++)
    (&typed[0][0])[i] = 1.0f, (&plain[0][0])[i] = 2.0f;
  char err[256];
  cnn_model *m = cnn_create(NULL, err, sizeof err);
  if (!m)
    return fail(err);
  const float(*image)[1][32][32] = (const float(*)[1][32][32])x;
  if (lenet5_run(m, 3, image, typed) != CNN_OK)
    return fail(cnn_last_error(m));
  const float *in[1] = {&x[0][0][0][0]};
  float *out[1] = {&plain[0][0]};
  if (cnn_run(m, 3, in, out) != CNN_OK)
    return fail(cnn_last_error(m));
  if (memcmp(typed, plain, sizeof typed) != 0)
    return fail("lenet5_run and cnn_run differ");
  printf("typed_linked: %s: lenet5_run == cnn_run on 3 samples (%s)\n", LENET5_NAME,
#ifdef __cplusplus
         "C++"
#else
         "C"
#endif
  );
  cnn_destroy(m);
  return 0;
}

/* typed: a host linked with the model cnncc_add_model() built, calling it
   through the typed header it generated (HEADER: lenet5.h, lenet5_run). */
#include <stdio.h>

#include "lenet5.h"

static float images[2][LENET5_IMAGE_C][LENET5_IMAGE_H][LENET5_IMAGE_W];
static float scores[2][LENET5_OUTPUT_SIZE];

int main(void) {
  if (lenet5_check(cnn_get_info()) != 0) {
    fprintf(stderr, "typed: the linked .so is not the network of lenet5.h\n");
    return 1;
  }
  for (int n = 0; n < 2; n++)
    for (int y = 0; y < LENET5_IMAGE_H; y++)
      for (int x = 0; x < LENET5_IMAGE_W; x++)
        images[n][0][y][x] = (float)((x * (n + 1) + y) % 7) / 7.0f;
  char err[256];
  cnn_model *m = cnn_create(NULL, err, sizeof err);
  if (!m) {
    fprintf(stderr, "typed: cnn_create: %s\n", err);
    return 1;
  }
  if (lenet5_run(m, 2, (const float(*)[1][32][32])images, scores) != CNN_OK) {
    fprintf(stderr, "typed: %s\n", cnn_last_error(m));
    return 1;
  }
  for (int n = 0; n < 2; n++) {
    int best = 0;
    for (int k = 1; k < LENET5_OUTPUT_SIZE; k++)
      if (scores[n][k] > scores[n][best])
        best = k;
    printf("%s: sample %d: class %d\n", LENET5_NAME, n, best);
  }
  cnn_destroy(m);
  return 0;
}

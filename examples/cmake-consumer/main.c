/* classify: loads the model cnncc_add_model() built and runs one input. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include <cnn.h>

int main(void) {
  void *h = dlopen(MODEL_PATH, RTLD_NOW);
  if (!h) {
    fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  const cnn_info *(*get_info)(void) = (const cnn_info *(*)(void))dlsym(h, "cnn_get_info");
  cnn_model *(*create)(const char *, char *, size_t) =
      (cnn_model * (*)(const char *, char *, size_t)) dlsym(h, "cnn_create");
  int (*run)(cnn_model *, int64_t, const float *const *, float *const *) =
      (int (*)(cnn_model *, int64_t, const float *const *, float *const *))dlsym(h, "cnn_run");
  void (*destroy)(cnn_model *) = (void (*)(cnn_model *))dlsym(h, "cnn_destroy");
  const cnn_info *info = get_info();
  int64_t nin = 1, nout = 1;
  for (int i = 1; i < info->inputs[0].rank; i++)
    nin *= info->inputs[0].dims[i];
  for (int i = 1; i < info->outputs[0].rank; i++)
    nout *= info->outputs[0].dims[i];
  float *x = calloc((size_t)nin, sizeof *x), *y = calloc((size_t)nout, sizeof *y);
  for (int64_t i = 0; i < nin; i++)
    x[i] = (float)(i % 7) / 7.0f;
  char err[256];
  cnn_model *m = create(NULL, err, sizeof err);
  if (!m || run(m, 1, (const float *const[]){x}, (float *const[]){y}) != 0) {
    fprintf(stderr, "classify: failed: %s\n", m ? "cnn_run" : err);
    return 1;
  }
  int best = 0;
  for (int64_t i = 1; i < nout; i++)
    if (y[i] > y[best])
      best = (int)i;
  printf("%s: %lld outputs, class %d\n", info->name, (long long)nout, best);
  destroy(m);
  free(x);
  free(y);
  return 0;
}

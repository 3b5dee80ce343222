/*
 * fuzz_safetensors.c: libFuzzer target for the safetensors reader.
 *
 * One input is the bytes of a file. st_open_mem validates it; if it is
 * accepted, every tensor must be findable by name, lie inside the input,
 * and convert to float32 (ST_OTHER dtypes are skipped, as weights_load
 * refuses them before converting). ASan sees every byte read: the input is
 * libFuzzer's exact-size heap copy, unlike a mapping rounded up to a page.
 *
 * Then the same bytes, as a file (a memfd, so nothing touches the disk),
 * are bound by weights_load to a small graph whose parameter names match the
 * seeds (conv.*, bn.*, fc.*): it may fail only with a diagnostic (a tensor
 * missing, unexpected, mis-shaped or of a dtype it cannot read), and the
 * bound graph must verify.
 *
 * In the replay build (CNNCC_FUZZ_REPLAY) each input also goes through
 * st_open on a temporary file, which must give the same verdict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/mman.h>

#include "frontend/weights/weights_internal.h"

/* Parameters conv.weight [4,3,1,1], conv.bias [4], bn.{weight,bias,
   running_mean,running_var} [4], fc.weight [2,2], fc.bias [2]. */
static const char *const spec =
    "cnncc: 1\nname: st\ninputs: {image: [3, 4, 4], v: [2]}\noutputs: [bn, fc]\n"
    "layers:\n"
    "  - {name: conv, op: conv2d, out: 4, kernel: 1}\n"
    "  - {name: bn, op: batchnorm}\n"
    "  - {name: fc, op: linear, out: 2, in: v}\n";

static FILE *sink;

static void bind_to_a_graph(const uint8_t *data, size_t size, bool opened) {
  if (!sink)
    sink = fopen("/dev/null", "w");
  int fd = memfd_create("fuzz.safetensors", MFD_CLOEXEC);
  if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size)) {
    perror("memfd");
    abort();
  }
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  Diag *d = diag_new(sink, false);
  Graph *g = spec_load_string("st.yaml", spec, d);
  if (!g)
    abort();
  bool ok = weights_load(g, path, d);
  if (ok != (diag_error_count(d) == 0) || (ok && !opened)) {
    fprintf(stderr, "weights_load returned %d with %d errors (st_open_mem: %d)\n", ok,
            diag_error_count(d), opened);
    __builtin_trap();
  }
#ifdef CNNCC_FUZZ_REPLAY
  fprintf(stderr, "  %s; weights_load: %s\n", opened ? "valid" : "refused",
          ok ? "bound" : "refused");
#endif
  if (ok && ir_verify(g, stderr) != 0) {
    fprintf(stderr, "weights_load bound a graph that does not verify\n");
    __builtin_trap();
  }
  ir_graph_free(g);
  diag_free(d);
  close(fd);
}

static void check_file(const StFile *f, const uint8_t *data, size_t size) {
  for (int i = 0; i < st_count(f); i++) {
    const StTensor *t = st_tensor(f, i);
    if (st_find(f, t->name) != t) {
      fprintf(stderr, "st_find('%s') does not find it\n", t->name);
      __builtin_trap();
    }
    if (t->nbytes && (t->data < data || t->data + t->nbytes > data + size)) {
      fprintf(stderr, "tensor '%s' lies outside the file\n", t->name);
      __builtin_trap();
    }
    if (t->dtype == ST_OTHER)
      continue;
    int item = t->dtype == ST_F32 ? 4 : t->dtype == ST_F64 ? 8 : 2;
    uint64_t numel = t->nbytes / (uint64_t)item;
    float *dst = malloc((numel ? numel : 1) * sizeof *dst);
    if (!dst)
      return;
    st_to_f32(t, dst);
    free(dst);
  }
}

#ifdef CNNCC_FUZZ_REPLAY
static void same_from_a_file(const uint8_t *data, size_t size, bool mem_ok) {
  char path[] = "/tmp/cnncc-fuzz-st-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size)) {
    perror("temporary file");
    abort();
  }
  close(fd);
  char err[512];
  StFile *f = st_open(path, err, sizeof err);
  unlink(path);
  if ((f != NULL) != mem_ok) {
    fprintf(stderr, "st_open and st_open_mem disagree (%s)\n", f ? "file ok" : err);
    __builtin_trap();
  }
  st_close(f);
}
#endif

/* libFuzzer's entry point (it declares it itself). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[512];
  err[0] = 0;
  StFile *f = st_open_mem(data, size, err, sizeof err);
  if (!f && !err[0]) {
    fprintf(stderr, "st_open_mem failed without a message\n");
    __builtin_trap();
  }
  if (f) {
    check_file(f, data, size);
    /* (a file st_open_mem refuses fails weights_load's st_open the same
       way; the replay checks st_open agrees) */
    bind_to_a_graph(data, size, true);
  }
#ifdef CNNCC_FUZZ_REPLAY
  same_from_a_file(data, size, f != NULL);
#endif
  st_close(f);
  return 0;
}

/*
 * gen_main.c: cnn_gen, the network generator from a seed (gen.h).
 *
 *   cnn_gen --seed N [--out DIR] [--small] [--name NAME]
 *
 * writes DIR/net.yaml (the spec) and DIR/net.json (its twin), or, without
 * --out, the spec to stdout. The same seed gives the same network.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

static int write_file(const char *dir, const char *name, const char *text) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
    fprintf(stderr, "cnn_gen: cannot write '%s': %s\n", path, strerror(errno));
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *out = NULL, *name = NULL;
  unsigned long long seed = 0;
  int small = 0, have_seed = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
      char *end;
      seed = strtoull(argv[++i], &end, 10);
      have_seed = *end == 0;
    } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
      out = argv[++i];
    } else if (!strcmp(argv[i], "--name") && i + 1 < argc) {
      name = argv[++i];
    } else if (!strcmp(argv[i], "--small")) {
      small = 1;
    } else {
      fprintf(stderr, "usage: cnn_gen --seed N [--out DIR] [--small] [--name NAME]\n");
      return 2;
    }
  }
  if (!have_seed) {
    fprintf(stderr, "cnn_gen: --seed N is required\n");
    return 2;
  }
  GenOptions o;
  if (small)
    gen_options_small(&o);
  else
    gen_options_default(&o);
  char defname[64];
  snprintf(defname, sizeof defname, "gen%llu", seed);
  o.name = name ? name : defname;
  GenRng r;
  gen_rng_seed(&r, seed);
  GenNet net;
  gen_network(&r, &o, &net);
  int rc = 0;
  if (out)
    rc = write_file(out, "net.yaml", net.spec) || write_file(out, "net.json", net.twin);
  else
    fputs(net.spec, stdout);
  gen_free(&net);
  return rc;
}

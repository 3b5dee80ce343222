/*
 * fuzz_codegen.c: libFuzzer target from the network generator down to
 * machine code.
 *
 * The input bytes are not a spec: they are the choices of the generator of
 * tests/difftest/gen.h (each byte one decision, 0 past the end), which
 * turns any input into a small valid network: a structure-aware fuzzer,
 * whose mutations are mutations of graphs (another op here, another
 * stride there) rather than of text the parser would mostly reject. Its
 * first bytes choose the compile:
 *
 *   byte 0   -O0..-O3 (low 2 bits), Winograd on all 3x3 convs it can run
 *            (bit 2), conv.tile=3 (bit 3), the generator's SE blocks
 *            (bit 4: GenOptions.se_blocks)
 *   then     the network (gen_network, gen_options_small)
 *
 * and the network goes through everything cnncc does except the link:
 *
 *   spec_load_string -> weights_init_deterministic -> ir_verify
 *     -> passes_run (ir_verify after every pass) -> backend_compile
 *        (LLVM optimization and code generation, an object file)
 *
 * Every generated network is valid, so a refusal (the frontend's, or
 * exit 1 or 2 from the backend) traps, as does a failed verification.
 * The object goes to a private temporary directory and is removed.
 *
 * Built like the other targets (tests/fuzz/CMakeLists.txt): a libFuzzer
 * binary in the fuzz build (tools/fuzz.sh codegen), and fuzz_replay_codegen
 * in every build, which runs tests/fuzz/seeds/codegen/ and
 * tests/fuzz/regressions/codegen/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "frontend/frontend.h"
#include "gen.h"
#include "ir/ir.h"
#include "passes/passes.h"

static FILE *sink;
static char dir[64];
static char out[128];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cleanup(void) {
  unlink(out);
  rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  sink = fopen("/dev/null", "w");
  snprintf(dir, sizeof dir, "/tmp/cnncc-fuzz-codegen-XXXXXX");
  if (!sink || !mkdtemp(dir))
    abort();
  snprintf(out, sizeof out, "%s/net.o", dir);
  atexit(cleanup);
  return 0;
}

static void trap(const char *what, const char *spec) {
  fprintf(stderr, "fuzz_codegen: %s\n--- the generated spec:\n%s\n", what, spec);
  __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!sink)
    LLVMFuzzerInitialize(NULL, NULL);
  uint8_t how = size ? data[0] : 0;
  GenRng r;
  gen_rng_bytes(&r, size ? data + 1 : data, size ? size - 1 : 0);
  GenOptions go;
  gen_options_small(&go);
  go.se_blocks = how & 16;
  GenNet net;
  gen_network(&r, &go, &net);

  Diag *d = diag_new(stderr, false); /* quiet: the spec is valid */
  Graph *g = spec_load_string("fuzz.yaml", net.spec, d);
  if (!g)
    trap("the frontend refused a generated spec", net.spec);
  weights_init_deterministic(g, 1);
  if (ir_verify(g, stderr) != 0)
    trap("the frontend built a graph that does not verify", net.spec);
  PassOptions po = {.opt_level = how & 3, .print_out = sink, .verify = true};
  passes_run(g, &po);

  BackendOptions bo = {.output = out,
                       .emit = EMIT_OBJ,
                       .opt_level = how & 3,
                       .compiler_ident = "cnncc fuzz_codegen"};
  tuning_defaults(&bo.tune);
  bo.tune.winograd = (how & 3) >= 2 || (how & 4);
  if (how & 4)
    bo.tune.winograd_min_ic = bo.tune.winograd_min_hw = 1;
  if (how & 8)
    bo.tune.conv_tile = 3;
  Diag *bd = diag_new(stderr, false);
  int rc = backend_compile(g, &bo, bd);
  if (rc != 0)
    trap("backend_compile failed on a generated network", net.spec);
#ifdef CNNCC_FUZZ_REPLAY
  fprintf(stderr, "  -O%d%s: %d nodes, compiled\n", how & 3, how & 4 ? " winograd-all" : "",
          g->nodes.len);
#endif
  unlink(out);
  diag_free(bd);
  diag_free(d);
  ir_graph_free(g);
  gen_free(&net);
  return 0;
}

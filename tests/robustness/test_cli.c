/*
 * test_cli.c: bad input through the cnncc command.
 *
 * Each case writes its files into a fresh directory, runs cnncc there and
 * checks the three things a user sees: exit status 1 (a user error, never a
 * crash nor 2), a message that names the problem, and an output directory
 * holding nothing but what the test put there (no .so, no .weights, no
 * temporary file). The messages themselves, with their file:line:col and
 * carets, are tested at the API level in tests/unit/test_frontend.c,
 * test_safetensors.c and test_weights.c; this file checks that each class
 * of bad input reaches the user as an error, through the real binary.
 *
 * The atomic-output tests force a failure at each stage of a compile (spec,
 * weights, link, write) with an older output already in place and check it
 * is left untouched.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/st_writer.h"

static char dir[64];

static void setup(void) {
  strcpy(dir, "/tmp/cnncc-cli-XXXXXX");
  cr_assert(mkdtemp(dir));
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) {
    /* best effort */
  }
}

TestSuite(cli, .init = setup, .fini = teardown);

static const char *at(const char *name) {
  static char paths[4][256];
  static int k;
  char *p = paths[k++ % 4];
  snprintf(p, 256, "%s/%s", dir, name);
  return p;
}

static void put(const char *name, const char *text) {
  FILE *f = fopen(at(name), "w");
  cr_assert(f);
  fputs(text, f);
  fclose(f);
}

typedef struct {
  int status; /* exit status, or 128 + signal */
  char *out;  /* stdout + stderr */
} Result;

/* Runs `cnncc ARGS` in dir (with optional environment prefix). */
static Result cnncc(const char *env, const char *fmt, ...) {
  char args[1024], cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' %s 2>&1", dir, env ? env : "", CNNCC_EXE, args);
  FILE *p = popen(cmd, "r");
  cr_assert(p);
  Result r = {0};
  size_t len = 0, cap = 4096;
  r.out = malloc(cap);
  size_t got;
  while ((got = fread(r.out + len, 1, cap - len - 1, p)) > 0) {
    len += got;
    if (len + 1 >= cap)
      r.out = realloc(r.out, cap *= 2);
  }
  r.out[len] = 0;
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

/* The output of a shell command (caller frees). */
static char *sh_out(const char *cmd) {
  FILE *p = popen(cmd, "r");
  cr_assert(p);
  char *out = calloc(1, 8192);
  size_t n = fread(out, 1, 8191, p);
  out[n] = 0;
  pclose(p);
  return out;
}

/* The names in dir, sorted, joined by spaces. */
static char *listing(void) {
  struct dirent **names;
  int n = scandir(dir, &names, NULL, alphasort);
  cr_assert_geq(n, 0);
  char *s = calloc(1, 4096);
  for (int i = 0; i < n; i++) {
    if (names[i]->d_name[0] != '.' && strlen(s) + strlen(names[i]->d_name) + 2 < 4096) {
      strcat(s, *s ? " " : "");
      strcat(s, names[i]->d_name);
    }
    free(names[i]);
  }
  free(names);
  return s;
}

/* cnncc ARGS must exit 1 with `expect` in its output and leave exactly the
   files `files` (space-separated, sorted) in dir. */
static void fails(const char *env, const char *args, const char *expect, const char *files) {
  Result r = cnncc(env, "%s", args);
  cr_expect_eq(r.status, 1, "cnncc %s: exit %d, not 1:\n%s", args, r.status, r.out);
  cr_expect(strstr(r.out, expect), "cnncc %s: message lacks '%s':\n%s", args, expect, r.out);
  char *ls = listing();
  cr_expect_str_eq(ls, files, "cnncc %s left files behind", args);
  free(ls);
  free(r.out);
}

#define HDR "cnncc: 1\nname: t\ninputs: {image: [3, 8, 8]}\n"

/* A spec that must fail, alone in dir. */
static void bad_spec(const char *text, const char *expect) {
  put("bad.yaml", text);
  fails(NULL, "bad.yaml -o out.so --external-weights", expect, "bad.yaml");
  unlink(at("bad.yaml"));
}

/* --------------------------------------------------------------- specs */

Test(cli, malformed_yaml_and_files_that_are_not_specs_exit_1) {
  bad_spec(HDR "layers:\n  - {name: a, op: relu\n", "invalid YAML");
  bad_spec(HDR "layers:\n  - op: relu\n   name: x\n", "invalid YAML");
  bad_spec("", "the spec is empty");
  bad_spec("- a\n- b\n", "a spec is a mapping");
  bad_spec(HDR "layers: [{op: relu}]\n---\nx: 1\n", "found a second one");
  bad_spec(HDR "layers: &a [*a]\n", "error:");
  /* found by fuzz_spec: a mapping for the version (was: NULL dereference) */
  bad_spec("cnncc: {version: 1}\nname: t\ninputs: {x: [3]}\nlayers: [{op: relu}]\n",
           "expected the language version (1) for 'cnncc', got a mapping");
  bad_spec("\x7f"
           "ELF\x02\x01\x01\x00\x00\x00garbage\xff\xfe\n",
           "error:");
  /* a NUL byte inside the text */
  FILE *f = fopen(at("nul.yaml"), "wb");
  fwrite(HDR "layers: [{op: relu}]\n\0\0\0\n", 1, sizeof HDR + 24, f);
  fclose(f);
  fails(NULL, "nul.yaml -o out.so", "error:", "nul.yaml");
  unlink(at("nul.yaml"));
  /* not a file */
  fails(NULL, "missing.yaml -o out.so", "cannot read the spec: No such file", "");
  mkdir(at("adir.yaml"), 0755);
  fails(NULL, "adir.yaml -o out.so", "cannot read the spec: Is a directory", "adir.yaml");
  rmdir(at("adir.yaml"));
}

Test(cli, unknown_ops_keys_and_blocks_exit_1_with_a_suggestion) {
  bad_spec(HDR "layers:\n  - {op: convv2d, out: 4, kernel: 1}\n", "unknown op 'convv2d'");
  bad_spec(HDR "layers:\n  - {name: c, op: conv2d, out: 4, kernel: 1, strid: 2}\n",
           "did you mean 'stride'?");
  bad_spec(HDR "layer:\n  - {op: relu}\n", "unknown key 'layer' at the top level");
  bad_spec(HDR "layers:\n  - {name: s, op: reorder}\n", "unknown op 'reorder'");
  bad_spec(HDR "layers:\n  - {name: b, block: nothere}\n", "unknown block 'nothere'");
}

Test(cli, cycles_and_self_references_in_blocks_exit_1) {
  /* a layer of a block using its own output, and a later layer */
  bad_spec(HDR "blocks:\n  b: {layers: [{name: r, op: relu, in: r}]}\n"
               "layers:\n  - {name: x, block: b}\n",
           "layer 'r' cannot use its own output");
  bad_spec(HDR "blocks:\n  b: {layers: [{name: p, op: add, in: [input, q]}, {name: q, op: relu}]}\n"
               "layers:\n  - {name: x, block: b}\n",
           "'q' refers to a later layer");
  /* a block instance referring to itself from inside */
  bad_spec(HDR "blocks:\n  b: {layers: [{name: r, op: relu, in: x}]}\n"
               "layers:\n  - {name: x, block: b}\n",
           "it cannot use its own output");
  /* mutual recursion without a guard */
  bad_spec(HDR
           "blocks:\n  a: {layers: [{name: i, block: b}]}\n  b: {layers: [{name: j, block: a}]}\n"
           "layers:\n  - {name: x, block: a}\n",
           "block recursion is too deep");
  /* a file including itself is read once: its blocks are defined once */
  put("self.yaml", HDR "include: self.yaml\nlayers: [{op: relu}]\n");
  Result r = cnncc(NULL, "self.yaml --summary");
  cr_expect(r.status == 0 || r.status == 1, "exit %d:\n%s", r.status, r.out);
  free(r.out);
  /* includes in a cycle are read once */
  put("a.yaml", "cnncc: 1\ninclude: b.yaml\nblocks: {ba: {layers: [{op: relu}]}}\n");
  put("b.yaml", "cnncc: 1\ninclude: a.yaml\nblocks: {bb: {layers: [{op: relu}]}}\n");
  put("main.yaml", HDR "include: a.yaml\nlayers: [{name: x, block: ba}, {name: y, block: bb}]\n");
  r = cnncc(NULL, "main.yaml --summary");
  cr_expect_eq(r.status, 0, "%s", r.out);
  free(r.out);
}

Test(cli, an_include_of_a_device_or_a_directory_exits_1) {
  bad_spec(HDR "include: /dev/zero\nlayers: [{op: relu}]\n",
           "cannot read '/dev/zero': File too large");
  bad_spec(HDR "include: /tmp\nlayers: [{op: relu}]\n", "cannot read '/tmp'");
}

Test(cli, absurd_sizes_exit_1_without_overflow) {
  bad_spec(HDR "layers:\n  - {name: c, op: conv2d, out: 1e12, kernel: 1}\n",
           "expected an integer for 'out', got float 1e+12");
  bad_spec(HDR "layers:\n  - {name: c, op: conv2d, out: 1000000000000, kernel: 1}\n",
           "'out' is too large (1000000000000; the limit is 2^31-1)");
  bad_spec(HDR "layers:\n  - {name: c, op: conv2d, out: 99999999999999999999999, kernel: 1}\n",
           "out of range");
  bad_spec("cnncc: 1\nname: t\ninputs: {image: [0, 8, 8]}\nlayers: [{op: relu}]\n",
           "a dimension must be positive, got 0");
  bad_spec("cnncc: 1\nname: t\ninputs: {image: [3, -8, 8]}\nlayers: [{op: relu}]\n",
           "a dimension must be positive, got -8");
  bad_spec("cnncc: 1\nname: t\ninputs: {image: [3, 300000, 300000]}\nlayers: [{op: relu}]\n",
           "too many elements");
  bad_spec(HDR "layers:\n  - {name: c, op: conv2d, out: 4, kernel: 9}\n",
           "the 9x9 kernel does not fit the 8x8 input");
  bad_spec(HDR "layers:\n  - {name: c, op: conv2d, out: 4, kernel: 3, dilation: 1000000}\n",
           "does not fit");
  bad_spec(HDR "layers:\n  - {op: maxpool, kernel: 2, stride: 0}\n", "'stride' must be at least 1");
  bad_spec(HDR "layers:\n  - {op: maxpool, kernel: 2, pad: -1}\n",
           "'pad' cannot be negative, got -1");
  bad_spec(HDR "layers:\n  - {name: c, op: conv2d, out: 4, kernel: 1, groups: 0}\n",
           "'groups' must be at least 1");
  /* each weight tensor is small enough, their sum is not (was: abort, out
     of memory, in the deterministic initialization) */
  bad_spec("cnncc: 1\nname: t\ninputs: {x: [32]}\nlayers:\n  - {name: fc, op: linear, out: "
           "2147483647}\n",
           "more than 2^32 parameter values");
  bad_spec(HDR "layers:\n  - {name: fc, op: linear, out: \"$in * 9223372036854775807\"}\n",
           "integer overflow in expression");
  bad_spec(HDR "blocks:\n  b: {layers: [{op: relu}, {op: relu}, {op: relu}, {op: relu}, {op: relu},"
               " {op: relu}, {op: relu}, {op: relu}, {op: relu}, {op: relu}, {op: relu}]}\n"
               "layers:\n  - {name: s, block: b, repeat: 100000}\n",
           "more than 1000000 layers");
}

/* -------------------------------------------------------------- weights */

static const char *good = HDR "layers:\n  - {name: c, op: conv2d, out: 2, kernel: 1}\n";

static void weights_fail(const char *expect) {
  fails(NULL, "net.yaml --weights w.safetensors -o out.so --external-weights", expect,
        "net.yaml w.safetensors");
}

Test(cli, corrupt_safetensors_exit_1_and_name_the_problem) {
  put("net.yaml", good);
  float w[6] = {1, 2, 3, 4, 5, 6}, b[2] = {0.5f, -0.5f};
  TestTensor ok[2] = {{"c.weight", "F32", 4, {2, 3, 1, 1}, w, sizeof w},
                      {"c.bias", "F32", 1, {2}, b, sizeof b}};
  /* truncated: the data cut short */
  st_write(at("w.safetensors"), ok, 2, NULL);
  cr_assert_eq(truncate(at("w.safetensors"), 8 + 40), 0);
  weights_fail("runs past the end of the file");
  st_write(at("w.safetensors"), ok, 2, NULL);
  struct stat st;
  stat(at("w.safetensors"), &st);
  cr_assert_eq(truncate(at("w.safetensors"), st.st_size - 4), 0);
  weights_fail("run past the end of the data area");
  /* corrupt header, header length past the file, absurd length */
  st_write_header(at("w.safetensors"), "{\"c.weight\": {\"dtype\": \"F32\",", 0);
  weights_fail("header is not valid JSON");
  unsigned char raw[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
  st_write_raw(at("w.safetensors"), raw, sizeof raw);
  weights_fail("runs past the end of the file");
  st_write_raw(at("w.safetensors"), "abc", 3);
  weights_fail("too short");
  /* wrong dtype: I64 where a float was wanted; an unknown one */
  TestTensor wrong[2] = {{"c.weight", "I64", 4, {2, 3, 1, 1}, NULL, 48},
                         {"c.bias", "F32", 1, {2}, b, sizeof b}};
  unsigned char zeros[48] = {0};
  wrong[0].data = zeros;
  st_write(at("w.safetensors"), wrong, 2, NULL);
  weights_fail("I64");
  st_write_header(at("w.safetensors"),
                  "{\"c.weight\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
  weights_fail("unknown dtype 'Q4'");
  /* duplicate tensor names */
  st_write_header(at("w.safetensors"),
                  "{\"c.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"c.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                  16);
  weights_fail("duplicate tensor name");
  /* missing and mis-shaped tensors */
  st_write(at("w.safetensors"), ok, 1, NULL);
  weights_fail("c.bias");
  TestTensor shaped[2] = {{"c.weight", "F32", 2, {2, 3}, w, sizeof w},
                          {"c.bias", "F32", 1, {2}, b, sizeof b}};
  st_write(at("w.safetensors"), shaped, 2, NULL);
  weights_fail("c.weight");
  /* not a file */
  unlink(at("w.safetensors"));
  fails(NULL, "net.yaml --weights /dev/zero -o out.so", "not a regular file", "net.yaml");
  fails(NULL, "net.yaml --weights nope.safetensors -o out.so", "No such file", "net.yaml");
  /* the good file is accepted (the cases above fail for their own reason) */
  st_write(at("w.safetensors"), ok, 2, NULL);
  Result r = cnncc(NULL, "net.yaml --weights w.safetensors -o out.so --target-cpu=x86-64");
  cr_assert_eq(r.status, 0, "%s", r.out);
  free(r.out);
}

/* --------------------------------------------------------------- output */

static void slurp_eq(const char *name, const char *want) {
  FILE *f = fopen(at(name), "r");
  cr_assert(f, "%s is gone", name);
  char buf[64] = {0};
  cr_assert(fgets(buf, sizeof buf, f) || !*want);
  fclose(f);
  cr_expect_str_eq(buf, want, "%s was overwritten by a failed compile", name);
}

Test(cli, an_output_in_a_missing_or_unwritable_place_exits_1) {
  put("net.yaml", good);
  fails(NULL, "net.yaml -o nodir/out.so", "does not exist", "net.yaml");
  fails(NULL, "net.yaml -o nodir/out.so --external-weights", "does not exist", "net.yaml");
  fails(NULL, "net.yaml -o nodir/out.ir --emit=ir", "nodir/out.ir", "net.yaml");
  /* /proc refuses new files even to root */
  fails(NULL, "net.yaml -o /proc/cnncc-test.so", "/proc", "net.yaml");
  fails(NULL, "net.yaml -o /proc/cnncc-test.so --external-weights", "/proc", "net.yaml");
  /* the output is a directory */
  mkdir(at("out.so"), 0755);
  fails(NULL, "net.yaml -o out.so", "out.so", "net.yaml out.so");
  rmdir(at("out.so"));
  /* a path through a regular file */
  fails(NULL, "net.yaml -o net.yaml/out.so", "net.yaml", "net.yaml");
}

/* A failure at each stage leaves the previous outputs as they were. */
Test(cli, a_failed_compile_leaves_no_partial_output_and_keeps_the_old_one) {
  put("net.yaml", good);
  put("bad.yaml", HDR "layers: [{op: nope}]\n");
  put("out.so", "old so\n");
  put("out.so.weights", "old weights\n");
  const char *files = "bad.yaml net.yaml out.so out.so.weights";
  /* spec */
  fails(NULL, "bad.yaml -o out.so --external-weights", "unknown op", files);
  /* weights */
  put("w.safetensors", "garbage");
  fails(NULL, "net.yaml --weights w.safetensors -o out.so --external-weights", "too short",
        "bad.yaml net.yaml out.so out.so.weights w.safetensors");
  unlink(at("w.safetensors"));
  /* link: no runtime library */
  fails("CNNCC_RUNTIME=/nonexistent/libcnnrt.a", "net.yaml -o out.so --external-weights",
        "error:", files);
  fails("CNNCC_RUNTIME=/nonexistent/libcnnrt.a", "net.yaml -o out.so", "error:", files);
  /* link: a C compiler that fails */
  fails("CC=false", "net.yaml -o out.so --external-weights", "error:", files);
  slurp_eq("out.so", "old so\n");
  slurp_eq("out.so.weights", "old weights\n");
  /* and a successful compile replaces both */
  Result r = cnncc(NULL, "net.yaml -o out.so --external-weights --target-cpu=x86-64");
  cr_assert_eq(r.status, 0, "%s", r.out);
  free(r.out);
  char *ls = listing();
  cr_expect_str_eq(ls, files);
  free(ls);
  FILE *f = fopen(at("out.so"), "rb");
  char magic[4] = {0};
  cr_assert_eq(fread(magic, 1, 4, f), 4);
  fclose(f);
  cr_expect_eq(memcmp(magic,
                      "\x7f"
                      "ELF",
                      4),
               0);
}

/* --emit=spec writes its two files, both or neither, never over its
   inputs; a failure keeps the previous ones. */
Test(cli, emit_spec_writes_both_files_or_neither_and_never_over_its_inputs) {
  put("net.yaml", good);
  put("bad.yaml", HDR "layers: [{op: nope}]\n");
  put("out.yaml", "old spec\n");
  put("out.safetensors", "old weights\n");
  const char *files = "bad.yaml net.yaml out.safetensors out.yaml";
  /* spec */
  fails(NULL, "bad.yaml --emit=spec -o out.yaml", "unknown op", files);
  /* weights */
  put("w.safetensors", "garbage");
  fails(NULL, "net.yaml --weights w.safetensors --emit=spec -o out.yaml", "too short",
        "bad.yaml net.yaml out.safetensors out.yaml w.safetensors");
  /* writing the weights fails after the spec is written (a directory is
     in the way): the spec's temporary goes too */
  mkdir(at("w.safetensors.d"), 0755);
  unlink(at("w.safetensors"));
  rename(at("w.safetensors.d"), at("w.safetensors"));
  fails(NULL, "net.yaml --emit=spec -o w.yaml", "w.safetensors",
        "bad.yaml net.yaml out.safetensors out.yaml w.safetensors");
  rmdir(at("w.safetensors"));
  slurp_eq("out.yaml", "old spec\n");
  slurp_eq("out.safetensors", "old weights\n");
  /* never over the input spec (the default output here) or --weights */
  fails(NULL, "net.yaml --emit=spec", "would overwrite the input 'net.yaml'", files);
  Result r = cnncc(NULL, "net.yaml --emit=spec -o out.yaml");
  cr_assert_eq(r.status, 0, "%s", r.out);
  free(r.out);
  fails(NULL, "out.yaml --weights out.safetensors --emit=spec -o out.yaml",
        "would overwrite the input 'out.yaml'", files);
  fails(NULL, "net.yaml --weights out.safetensors --emit=spec -o out.yml",
        "would overwrite the input 'out.safetensors'", files);
  /* the success above replaced both */
  slurp_eq("out.yaml", "# Written by cnncc --emit=spec from net.yaml.\n");
  r = cnncc(NULL, "out.yaml --weights out.safetensors -o out.so");
  cr_assert_eq(r.status, 0, "the written spec does not compile with its weights:\n%s", r.out);
  free(r.out);
  unlink(at("out.so"));
  /* -o -: the spec alone, to stdout */
  r = cnncc(NULL, "net.yaml -q --emit=spec -o -");
  cr_assert_eq(r.status, 0, "%s", r.out);
  cr_expect(strstr(r.out, "\ncnncc: 1\nname: t\n"), "%s", r.out);
  free(r.out);
  char *ls = listing();
  cr_expect_str_eq(ls, files);
  free(ls);
}

Test(cli, bad_flags_exit_1) {
  put("net.yaml", good);
  fails(NULL, "net.yaml --emit=sooo", "unknown --emit kind 'sooo'", "net.yaml");
  fails(NULL, "net.yaml --emit=lvm", "did you mean 'llvm'", "net.yaml");
  fails(NULL, "net.yaml --seed -3x", "--seed expects an unsigned integer", "net.yaml");
  fails(NULL, "net.yaml --passes=fuse-bm", "unknown pass 'fuse-bm'", "net.yaml");
  fails(NULL, "net.yaml --precision=fp16", "--precision expects 'fp32', 'bf16' or 'int8'",
        "net.yaml");
  fails(NULL, "net.yaml -o", "needs a value", "net.yaml");
  fails(NULL, "", "no spec file given", "net.yaml");
}

static void put_bytes(const char *name, const void *data, size_t n) {
  FILE *f = fopen(at(name), "wb");
  cr_assert(f);
  cr_assert_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

/* --precision=int8's calibration file: missing, of the wrong size or type,
   or not finite, is a user error that names the problem (the input of
   `good` is 3x8x8 = 192 floats); nothing is left behind. */
Test(cli, int8_calibration_errors_exit_1) {
  put("net.yaml", good);
  fails(NULL, "net.yaml --precision=int8", "--precision=int8 needs --calibrate=FILE", "net.yaml");
  fails(NULL, "net.yaml --calibrate=x.f32", "--calibrate is for --precision=int8", "net.yaml");
  fails(NULL, "net.yaml --precision=int8 --calibrate=none.f32 -o out.so",
        "--calibrate: cannot open 'none.f32'", "net.yaml");
  fails(NULL, "net.yaml --precision=int8 --calibrate=x.f32 --calibrate-method=median",
        "--calibrate-method expects 'minmax', 'entropy', 'percentile'", "net.yaml");
  fails(NULL, "net.yaml --precision=int8 --calibrate=x.f32 --calibrate-method=percentile:20",
        "--calibrate-method expects", "net.yaml");
  float v[192 + 1] = {0};
  put_bytes("short.f32", v, 191 * sizeof(float));
  fails(NULL, "net.yaml --precision=int8 --calibrate=short.f32 -o out.so",
        "holds 191 float32 values, not a positive multiple of the input's 192",
        "net.yaml short.f32");
  remove(at("short.f32"));
  put_bytes("odd.f32", v, 10);
  fails(NULL, "net.yaml --precision=int8 --calibrate=odd.f32 -o out.so",
        "10 bytes is not a whole number of float32s", "net.yaml odd.f32");
  remove(at("odd.f32"));
  v[5] = NAN;
  put_bytes("nan.f32", v, 192 * sizeof(float));
  fails(NULL, "net.yaml --precision=int8 --calibrate=nan.f32 -o out.so", "value 5 is not finite",
        "nan.f32 net.yaml");
  remove(at("nan.f32"));
  /* a .npy of float64 */
  char npy[128];
  const char *hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (192,), }";
  memset(npy, ' ', sizeof npy);
  memcpy(npy, "\x93NUMPY\x01\x00\x76\x00", 10); /* version 1.0, 118 header bytes */
  memcpy(npy + 10, hdr, strlen(hdr));
  npy[127] = '\n';
  put_bytes("c.npy", npy, 128);
  fails(NULL, "net.yaml --precision=int8 --calibrate=c.npy -o out.so",
        "the array's dtype must be float32 ('<f4')", "c.npy net.yaml");
  remove(at("c.npy"));
}

/* LLVM only warns about an unknown CPU or feature and may abort later in
   code generation; the backend probes the target first and reports a user
   error (it once died with "64-bit code requested on a subtarget that
   doesn't support it!", exit 134). */
Test(cli, an_unknown_target_cpu_or_feature_exits_1) {
  put("net.yaml", good);
  fails(NULL, "net.yaml --target-cpu=no-such-cpu -o out.so", "no-such-cpu", "net.yaml");
  fails(NULL, "net.yaml --target-cpu=x86-64 --target-features=+bogus -o out.so",
        "is not a recognized feature", "net.yaml");
}

/* --target (docs/targets.md): an unknown triple, a CPU of another
   architecture, and each missing piece of a cross link (the target's
   runtime, ld.lld, the target's C library) is one error, exit 1, nothing
   written. */
Test(cli, an_unknown_triple_or_a_cpu_of_another_target_exits_1) {
  put("net.yaml", good);
  fails(NULL, "net.yaml --target=sparc64-linux-gnu -o out.so",
        "unknown target 'sparc64-linux-gnu' (cnncc compiles for x86_64-linux-gnu, "
        "aarch64-linux-gnu",
        "net.yaml");
  fails(NULL, "net.yaml --target=aarch64-linux-musl -o out.so", "unknown target", "net.yaml");
  fails(NULL, "net.yaml --target=aarch64-linux-gnu --target-cpu=skylake -o out.so",
        "cannot be used for aarch64-linux-gnu", "net.yaml");
  fails(NULL, "net.yaml --target=aarch64-linux-gnu --target-cpu=x86-64-v3 --emit=obj -o out.o",
        "cannot be used for aarch64-linux-gnu", "net.yaml");
}

Test(cli, a_cross_link_without_runtime_lld_or_c_library_exits_1) {
  put("net.yaml", good);
  fails("CNNCC_RUNTIME_DIR=/nonexistent", "net.yaml --target=aarch64-linux-gnu -o out.so",
        "no runtime for aarch64-linux-gnu", "net.yaml");
  fails("CNNCC_LLD=/nonexistent/ld.lld", "net.yaml --target=aarch64-linux-gnu -o out.so",
        "needs ld.lld, which was not found", "net.yaml");
  fails("CNNCC_TARGET_LIBDIR=/nonexistent", "net.yaml --target=aarch64-linux-gnu -o out.so",
        "needs the target's C library", "net.yaml");
}

/* The same network for aarch64 from the same machine: an aarch64 shared
   object needing libc only (libm where it calls pow), named in
   cnn_info.compiler; no runtime or linker is needed for an object file. */
Test(cli, target_aarch64_makes_an_aarch64_shared_object) {
  put("net.yaml", good);
  Result r = cnncc(NULL, "net.yaml -q --target=aarch64-linux-gnu -o out.so");
  cr_assert_eq(r.status, 0, "%s", r.out);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "file '%s/out.so'", dir);
  char *f = sh_out(cmd);
  cr_expect(strstr(f, "ARM aarch64") && strstr(f, "shared object"), "%s", f);
  free(f);
  snprintf(cmd, sizeof cmd, "llvm-readelf-19 -d '%s/out.so' | grep NEEDED", dir);
  f = sh_out(cmd);
  cr_expect(strstr(f, "[libc.so.6]") && !strstr(f, "pthread"), "%s", f);
  free(f);
  snprintf(cmd, sizeof cmd, "strings '%s/out.so' | grep 'target=aarch64-linux-gnu cpu=generic'",
           dir);
  f = sh_out(cmd);
  cr_expect(strstr(f, "-O2 target=aarch64-linux-gnu cpu=generic"), "%s", f);
  free(f);
  r = cnncc("CNNCC_RUNTIME_DIR=/nonexistent CNNCC_LLD=/nonexistent",
            "net.yaml -q --target=aarch64-linux-gnu --emit=obj -o out.o");
  cr_expect_eq(r.status, 0, "%s", r.out);
}

/* Outputs are written beside their name and renamed into place; a rename
   onto a device, a FIFO or /dev/stdout would replace the node itself (as
   root, /dev/null became a regular file of 406,928 bytes after `cnncc
   lenet5.yaml -o /dev/null`). Into a FIFO, a link to a plain file and a
   dangling link, for the .so, --emit=spec and --emit=llvm: the node stays
   what it was and the bytes arrive. */
Test(cli, outputs_into_a_fifo_or_through_a_link_keep_the_node) {
  put("net.yaml",
      "cnncc: 1\nname: t\ninputs: {x: [3, 8, 8]}\n"
      "layers:\n  - {name: c, op: conv2d, out: 4, kernel: 3}\n  - {name: r, op: relu}\n");
  static const char *const kinds[3] = {"", "--emit=spec", "--emit=llvm"};
  for (int k = 0; k < 3; k++) {
    Result ref = cnncc(NULL, "net.yaml -q %s -o ref.out", kinds[k]);
    cr_assert_eq(ref.status, 0, "%s", ref.out);
    struct stat rs;
    cr_assert_eq(stat(at("ref.out"), &rs), 0);
    /* a FIFO, drained by cat into a file */
    cr_assert_eq(mkfifo(at("fifo"), 0600), 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "timeout 20 cat '%s' > '%s' 2>/dev/null </dev/null &", at("fifo"),
             at("drained"));
    cr_assert_eq(system(cmd), 0);
    Result r = cnncc(NULL, "net.yaml -q %s -o fifo", kinds[k]);
    cr_assert_eq(r.status, 0, "%s %s", kinds[k], r.out);
    struct stat fs;
    cr_assert_eq(lstat(at("fifo"), &fs), 0);
    cr_assert(S_ISFIFO(fs.st_mode), "%s: the FIFO was replaced", kinds[k]);
    for (int t = 0; t < 100 && (stat(at("drained"), &fs) != 0 || fs.st_size < rs.st_size); t++)
      usleep(20000);
    /* the text outputs name their file (a spec its weights), so their
       sizes may differ by the length of the names */
    long long slack = k ? 64 : 0, diff = (long long)(fs.st_size - rs.st_size);
    cr_assert(fs.st_size > 0 && diff <= slack && -diff <= slack,
              "%s: %lld bytes through the FIFO, %lld in a file", kinds[k], (long long)fs.st_size,
              (long long)rs.st_size);
    /* a link to a plain file, and a dangling one */
    put("target", "old");
    cr_assert_eq(symlink("target", at("link")), 0);
    cr_assert_eq(symlink("missing", at("dangling")), 0);
    r = cnncc(NULL, "net.yaml -q %s -o link", kinds[k]);
    cr_assert_eq(r.status, 0, "%s", r.out);
    r = cnncc(NULL, "net.yaml -q %s -o dangling", kinds[k]);
    cr_assert_eq(r.status, 0, "%s", r.out);
    const char *names[2] = {"link", "dangling"}, *targets[2] = {"target", "missing"};
    for (int i = 0; i < 2; i++) {
      cr_assert_eq(lstat(at(names[i]), &fs), 0);
      cr_assert(S_ISLNK(fs.st_mode), "%s: '%s' is no longer a link", kinds[k], names[i]);
      cr_assert_eq(stat(at(targets[i]), &fs), 0);
      diff = (long long)(fs.st_size - rs.st_size);
      cr_assert(fs.st_size > 0 && diff <= slack && -diff <= slack,
                "%s: '%s' holds %lld bytes, the file %lld", kinds[k], targets[i],
                (long long)fs.st_size, (long long)rs.st_size);
    }
    snprintf(cmd, sizeof cmd,
             "cd '%s' && rm -f fifo drained link dangling target missing "
             "ref.out *.safetensors",
             dir);
    cr_assert_eq(system(cmd), 0);
  }
}

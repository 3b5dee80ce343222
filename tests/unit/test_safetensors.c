/*
 * test_safetensors.c: the safetensors reader (frontend/weights/safetensors.c).
 *
 * Each test writes a file into a temporary directory, opens it, and checks
 * either the tensors read back or that the error names the offender. The
 * conversion tests check bit-exact values for F16, BF16 and F64.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "frontend/weights/weights_internal.h"
#include "st_writer.h"

static char err[512];

static void teardown(void) { st_tmpdir_remove(); }

TestSuite(safetensors, .fini = teardown);

/* Opens `path`, expects failure, and returns the message. */
static const char *open_fails(const char *path) {
  err[0] = 0;
  StFile *f = st_open(path, err, sizeof err);
  cr_assert_null(f, "st_open unexpectedly succeeded");
  cr_assert(err[0], "no error message");
  return err;
}

static void header_fails_with(const char *header, size_t data_len, const char *needle1,
                              const char *needle2) {
  char *p = st_tmpfile("bad.safetensors");
  st_write_header(p, header, data_len);
  const char *msg = open_fails(p);
  cr_expect(strstr(msg, needle1), "message '%s' lacks '%s'", msg, needle1);
  if (needle2)
    cr_expect(strstr(msg, needle2), "message '%s' lacks '%s'", msg, needle2);
}

Test(safetensors, reads_a_valid_file_with_metadata_and_finds_tensors_by_name) {
  float w[6] = {1, 2, 3, 4, 5, 6}, b[2] = {-1, 0.25f};
  TestTensor ts[] = {
      {"layer1.conv.weight", "F32", 2, {2, 3}, w, sizeof w},
      {"layer1.conv.bias", "F32", 1, {2}, b, sizeof b},
      {"empty", "F32", 2, {0, 5}, NULL, 0},
  };
  char *p = st_tmpfile("ok.safetensors");
  st_write(p, ts, 3, "{\"format\":\"pt\"}");
  StFile *f = st_open(p, err, sizeof err);
  cr_assert_not_null(f, "st_open failed: %s", err);
  cr_assert_eq(st_count(f), 3);
  cr_expect_str_eq(st_tensor(f, 0)->name, "layer1.conv.weight");

  const StTensor *t = st_find(f, "layer1.conv.weight");
  cr_assert_not_null(t);
  cr_expect_eq(t->dtype, ST_F32);
  cr_expect_str_eq(t->dtype_name, "F32");
  cr_expect_eq(t->rank, 2);
  cr_expect_eq(t->shape[0], 2);
  cr_expect_eq(t->shape[1], 3);
  cr_expect_eq(t->nbytes, 24);
  float out[6];
  st_to_f32(t, out);
  cr_expect_arr_eq(out, w, sizeof w);

  t = st_find(f, "layer1.conv.bias");
  cr_assert_not_null(t);
  st_to_f32(t, out);
  cr_expect_eq(out[0], -1.0f);
  cr_expect_eq(out[1], 0.25f);

  t = st_find(f, "empty");
  cr_assert_not_null(t);
  cr_expect_eq(t->nbytes, 0);
  cr_expect_null(st_find(f, "layer1.conv"));
  cr_expect_null(st_find(f, "zzz"));
  st_close(f);
}

Test(safetensors, reads_a_file_with_no_tensors) {
  char *p = st_tmpfile("empty.safetensors");
  st_write_header(p, "{}", 0);
  StFile *f = st_open(p, err, sizeof err);
  cr_assert_not_null(f, "st_open failed: %s", err);
  cr_expect_eq(st_count(f), 0);
  cr_expect_null(st_find(f, "x"));
  st_close(f);
}

Test(safetensors, reports_a_file_that_does_not_exist) {
  const char *msg = open_fails(st_tmpfile("nope.safetensors"));
  cr_expect(strstr(msg, "No such file"), "got '%s'", msg);
}

Test(safetensors, refuses_a_file_shorter_than_eight_bytes) {
  char *p = st_tmpfile("short.safetensors");
  st_write_raw(p, "\x02\0\0", 3);
  const char *msg = open_fails(p);
  cr_expect(strstr(msg, "3 bytes"), "got '%s'", msg);
  cr_expect(strstr(msg, "too short"), "got '%s'", msg);
}

Test(safetensors, refuses_a_header_length_past_the_end_of_the_file) {
  char *p = st_tmpfile("past.safetensors");
  unsigned char buf[8 + 4] = {0};
  st_put_le64(buf, 1000);
  memcpy(buf + 8, "{}  ", 4);
  st_write_raw(p, buf, sizeof buf);
  const char *msg = open_fails(p);
  cr_expect(strstr(msg, "header length 1000"), "got '%s'", msg);
  cr_expect(strstr(msg, "past the end"), "got '%s'", msg);
}

Test(safetensors, refuses_a_truncated_file_whose_data_is_cut_short) {
  float w[4] = {1, 2, 3, 4};
  TestTensor ts[] = {{"fc.weight", "F32", 2, {2, 2}, w, sizeof w}};
  char *p = st_tmpfile("full.safetensors");
  st_write(p, ts, 1, NULL);
  cr_assert_eq(truncate(p, 8 + 80), 0); /* header (>= 80 bytes) survives */
  FILE *fp = fopen(p, "rb");
  unsigned char len[8];
  cr_assert_eq(fread(len, 1, 8, fp), 8);
  fclose(fp);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--)
    hlen = hlen << 8 | len[i];
  cr_assert(hlen < 80, "test assumes a short header");
  cr_assert_eq(truncate(p, 8 + hlen + 6), 0); /* 6 of 16 data bytes */
  const char *msg = open_fails(p);
  cr_expect(strstr(msg, "'fc.weight'"), "got '%s'", msg);
  cr_expect(strstr(msg, "past the end of the data area"), "got '%s'", msg);
}

Test(safetensors, refuses_an_absurd_header_length) {
  /* A sparse 200 MB file whose first 8 bytes claim a 150 MB header. */
  char *p = st_tmpfile("huge.safetensors");
  unsigned char buf[8];
  st_put_le64(buf, (uint64_t)150 << 20);
  st_write_raw(p, buf, 8);
  cr_assert_eq(truncate(p, (off_t)200 << 20), 0);
  const char *msg = open_fails(p);
  cr_expect(strstr(msg, "absurd"), "got '%s'", msg);
}

Test(safetensors, refuses_a_header_that_is_not_json) {
  header_fails_with("{\"a\": {\"dtype\": \"F32\",", 0, "not valid JSON", NULL);
}

Test(safetensors, refuses_a_header_that_is_not_an_object) {
  header_fails_with("[1, 2, 3]", 0, "not a JSON object", NULL);
}

Test(safetensors, refuses_duplicate_tensor_names_and_names_the_duplicate) {
  header_fails_with("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                    "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                    12, "duplicate", "fc.bias");
}

Test(safetensors, refuses_an_unknown_dtype_and_names_the_tensor) {
  header_fails_with("{\"conv.weight\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                    "'conv.weight'", "unknown dtype 'F33'");
}

Test(safetensors, accepts_a_known_dtype_it_cannot_convert_as_other) {
  char *p = st_tmpfile("i64.safetensors");
  st_write_header(
      p, "{\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}", 8);
  StFile *f = st_open(p, err, sizeof err);
  cr_assert_not_null(f, "st_open failed: %s", err);
  const StTensor *t = st_find(f, "bn.num_batches_tracked");
  cr_assert_not_null(t);
  cr_expect_eq(t->dtype, ST_OTHER);
  cr_expect_str_eq(t->dtype_name, "I64");
  cr_expect_eq(t->rank, 0);
  cr_expect_eq(t->nbytes, 8);
  st_close(f);
}

Test(safetensors, refuses_a_dtype_that_is_not_a_string) {
  header_fails_with("{\"x\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'x'",
                    "dtype");
}

Test(safetensors, refuses_an_entry_missing_its_offsets) {
  header_fails_with("{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "'fc.weight'",
                    "missing 'data_offsets'");
}

Test(safetensors, refuses_an_entry_that_is_not_an_object) {
  header_fails_with("{\"fc.weight\":[1,2]}", 0, "'fc.weight'", "not an object");
}

Test(safetensors, refuses_a_negative_dimension) {
  header_fails_with("{\"conv.weight\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,0]}}",
                    0, "'conv.weight'", "negative");
}

Test(safetensors, refuses_a_shape_whose_element_count_overflows) {
  header_fails_with("{\"big\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                    "\"data_offsets\":[0,0]}}",
                    0, "'big'", "overflow");
}

Test(safetensors, refuses_a_shape_that_is_not_a_list_of_integers) {
  header_fails_with("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,\"3\"],\"data_offsets\":[0,24]}}", 24,
                    "'w'", "shape[1]");
}

Test(safetensors, refuses_offsets_outside_the_data_area) {
  header_fails_with("{\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}", 20,
                    "'fc.bias'", "past the end of the data area");
}

Test(safetensors, refuses_offsets_in_the_wrong_order) {
  header_fails_with("{\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 20,
                    "'fc.bias'", "bad data_offsets");
}

Test(safetensors, refuses_a_byte_range_that_does_not_match_dtype_and_shape) {
  header_fails_with("{\"fc.weight\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,24]}}",
                    24, "'fc.weight'", "needs 12");
}

Test(safetensors, refuses_overlapping_tensors_and_names_both) {
  header_fails_with("{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                    "\"b.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                    16, "'a.weight'", "'b.weight'");
  cr_expect(strstr(err, "overlap"), "got '%s'", err);
}

Test(safetensors, accepts_empty_tensors_at_any_offset) {
  char *p = st_tmpfile("empties.safetensors");
  st_write_header(p,
                  "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
                  8);
  StFile *f = st_open(p, err, sizeof err);
  cr_assert_not_null(f, "st_open failed: %s", err);
  st_close(f);
}

Test(safetensors, refuses_metadata_that_is_not_string_to_string) {
  header_fails_with("{\"__metadata__\":{\"format\":1}}", 0, "__metadata__", "'format'");
}

Test(safetensors, converts_f16_exactly_including_subnormals_and_infinities) {
  const uint16_t h[] = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x03FF,
                        0x0400, 0x7C00, 0xFC00, 0x8000, 0x3555};
  const float want[] = {1.0f,     -2.0f,    0.5f,      65504.0f, 0x1p-24f,   1023 * 0x1p-24f,
                        0x1p-14f, INFINITY, -INFINITY, -0.0f,    0x1.554p-2f};
  size_t n = sizeof h / sizeof h[0];
  TestTensor ts[] = {{"h", "F16", 1, {(int64_t)n}, h, sizeof h},
                     {"nan", "F16", 1, {1}, &(uint16_t){0x7E00}, 2}};
  char *p = st_tmpfile("f16.safetensors");
  st_write(p, ts, 2, NULL);
  StFile *f = st_open(p, err, sizeof err);
  cr_assert_not_null(f, "st_open failed: %s", err);
  float out[16];
  st_to_f32(st_find(f, "h"), out);
  for (size_t i = 0; i < n; i++)
    cr_expect(memcmp(&out[i], &want[i], 4) == 0, "f16 %#06x -> %a, want %a", h[i], out[i], want[i]);
  st_to_f32(st_find(f, "nan"), out);
  cr_expect(isnan(out[0]));
  st_close(f);
}

Test(safetensors, converts_bf16_exactly) {
  const uint16_t h[] = {0x3F80, 0xC040, 0x3FC0, 0x7F80, 0x0001, 0x4049};
  const float want[] = {1.0f, -3.0f, 1.5f, INFINITY, 0x1p-133f, 3.140625f};
  size_t n = sizeof h / sizeof h[0];
  TestTensor ts[] = {{"b", "BF16", 2, {2, 3}, h, sizeof h}};
  char *p = st_tmpfile("bf16.safetensors");
  st_write(p, ts, 1, NULL);
  StFile *f = st_open(p, err, sizeof err);
  cr_assert_not_null(f, "st_open failed: %s", err);
  float out[8];
  st_to_f32(st_find(f, "b"), out);
  for (size_t i = 0; i < n; i++)
    cr_expect(memcmp(&out[i], &want[i], 4) == 0, "bf16 %#06x -> %a, want %a", h[i], out[i],
              want[i]);
  st_close(f);
}

Test(safetensors, converts_f64_by_rounding_to_nearest_float) {
  const double d[] = {1.5, -0.1, 1e300, 0x1.000001p0, 0x1.0000018p0, 0.0};
  const float want[] = {1.5f, -0.1f, INFINITY, 1.0f, 0x1.000002p0f, 0.0f};
  size_t n = sizeof d / sizeof d[0];
  TestTensor ts[] = {{"pad", "F16", 1, {1}, &(uint16_t){0x3C00}, 2},
                     {"d", "F64", 1, {(int64_t)n}, d, sizeof d}};
  char *p = st_tmpfile("f64.safetensors"); /* "d" starts unaligned */
  st_write(p, ts, 2, NULL);
  StFile *f = st_open(p, err, sizeof err);
  cr_assert_not_null(f, "st_open failed: %s", err);
  float out[8];
  st_to_f32(st_find(f, "d"), out);
  for (size_t i = 0; i < n; i++)
    cr_expect(memcmp(&out[i], &want[i], 4) == 0, "f64 %a -> %a, want %a", d[i], out[i], want[i]);
  st_close(f);
}

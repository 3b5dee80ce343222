/*
 * tuning.c: the knobs of the kernel planners, in one table.
 *
 * A Tuning (backend.h) holds every value besides the IR, the target and the
 * optimization level that changes the generated code: register tile sizes,
 * the Winograd thresholds, the weight prefetch distance. The driver fills it
 * once (tuning_defaults, then one tuning_set per --tune KEY=VALUE) and hands
 * it to the backend in BackendOptions; nothing in the backend reads the
 * environment. tuning_describe lists the values that differ from the
 * defaults, and the driver puts that list into cnn_info.compiler, so a .so
 * says how it was made.
 *
 * Each row of the table names a key as the command line spells it, the
 * field (by offsetof), the default, the accepted range and a line of help.
 * A default of 0 means "the planner decides" wherever the help says "auto".
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

typedef struct {
  const char *key;
  size_t offset;
  int def, min, max;
  const char *help;
} TuneKey;

static const TuneKey keys[] = {
    {"conv.tile", offsetof(Tuning, conv_tile), 0, 0, 32,
     "pixels per register tile of the blocked direct conv (0: auto)"},
    {"conv.ocb", offsetof(Tuning, conv_ocb), 0, 0, 4,
     "16-channel output blocks per register tile (0: auto; ignored where it does not divide)"},
    {"conv.prefetch", offsetof(Tuning, conv_prefetch), 1024, 0, 1 << 20,
     "weight prefetch distance of the direct convs, in floats (0: none)"},
    {"conv.order", offsetof(Tuning, conv_order), 2, 0, 3,
     "work item order: 0 group-major, 1 row-major, 2 the cheaper for 1x1 convs, 3 for all"},
    {"grouped.tile", offsetof(Tuning, grouped_tile), 0, 0, 64,
     "pixels per register tile of the small-group conv (0: auto)"},
    {"depthwise", offsetof(Tuning, depthwise), 1, 0, 2,
     "depthwise convs on the depthwise kernel: 1 the 3x3 stride-1 ones, 2 all, "
     "0 none (the small-group kernel)"},
    {"depthwise.rows", offsetof(Tuning, depthwise_rows), 0, 0, 8,
     "output rows per register tile of the depthwise kernel (0: auto)"},
    {"depthwise.tile", offsetof(Tuning, depthwise_tile), 0, 0, 32,
     "pixels per register tile row of the depthwise kernel (0: auto)"},
    {"depthwise.mode", offsetof(Tuning, depthwise_mode), 0, 0, 3, "experiment"},
    {"winograd.m", offsetof(Tuning, winograd_m), 0, 0, 4,
     "Winograd output tile: 0 by plane size, 2 for F(2x2,3x3), 4 for F(4x4,3x3)"},
    {"winograd.min_ic", offsetof(Tuning, winograd_min_ic), 16, 1, 1 << 20,
     "fewest input channels of a Winograd conv"},
    {"winograd.min_hw", offsetof(Tuning, winograd_min_hw), 13, 1, 1 << 20,
     "smallest output height and width of a Winograd conv"},
    {"winograd.min_hw2", offsetof(Tuning, winograd_min_hw2), 7, 1, 1 << 20,
     "fp32 3x3 convs on smaller planes than winograd.min_hw: F(2x2) from this height and width"},
    {"winograd.tile", offsetof(Tuning, winograd_tile), 0, 0, 32,
     "transform tiles per register tile (0: auto)"},
    {"winograd.chunk", offsetof(Tuning, winograd_chunk), 1, 1, 64,
     "register tiles per chunk of a work item"},
    {"winograd.v_kb", offsetof(Tuning, winograd_v_kb), 256, 1, 4096,
     "stack budget of the transformed inputs, in KB"},
    {"winograd.m_kb", offsetof(Tuning, winograd_m_kb), 64, 1, 4096,
     "stack budget of the transformed outputs, in KB"},
    {"amx", offsetof(Tuning, amx), 1, 0, 1,
     "--precision=bf16: ungrouped convs on AMX tiles where the target has AMX-BF16 (0: off)"},
    {"amx.rows", offsetof(Tuning, amx_rows), 0, 0, 256,
     "output rows per band of the AMX and dpbf16 convs (0: auto)"},
    {"dpbf16", offsetof(Tuning, dpbf16), 1, 0, 1,
     "--precision=bf16: ungrouped convs by AVX512_BF16 vdpbf16ps where the target has it and "
     "AMX is absent or off (0: off)"},
    {"linear.tile", offsetof(Tuning, linear_tile), 0, 0, 4,
     "16-feature blocks per register tile of the fp32 linear kernel at full rows (0: auto)"},
};
#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

static int *field(Tuning *t, const TuneKey *k) { return (int *)((char *)t + k->offset); }
static int value(const Tuning *t, const TuneKey *k) {
  return *(const int *)((const char *)t + k->offset);
}

void tuning_defaults(Tuning *t) {
  memset(t, 0, sizeof *t);
  for (int i = 0; i < NKEYS; i++)
    *field(t, &keys[i]) = keys[i].def;
}

static const TuneKey *find_key(const char *name, size_t len) {
  for (int i = 0; i < NKEYS; i++)
    if (strlen(keys[i].key) == len && strncmp(keys[i].key, name, len) == 0)
      return &keys[i];
  return NULL;
}

bool tuning_set(Tuning *t, const char *assignment, char *err, size_t errlen) {
  const char *eq = strchr(assignment, '=');
  if (!eq) {
    snprintf(err, errlen, "--tune expects KEY=VALUE, got '%s' (see --tune=help)", assignment);
    return false;
  }
  const TuneKey *k = find_key(assignment, (size_t)(eq - assignment));
  if (!k) {
    snprintf(err, errlen, "unknown tuning key '%.*s' (see --tune=help)", (int)(eq - assignment),
             assignment);
    return false;
  }
  const char *v = eq + 1;
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (!*v || *end || errno || x < k->min || x > k->max) {
    snprintf(err, errlen, "--tune %s expects an integer in [%d, %d], got '%s'", k->key, k->min,
             k->max, v);
    return false;
  }
  if (k->offset == offsetof(Tuning, winograd_m) && x != 0 && x != 2 && x != 4) {
    snprintf(err, errlen, "--tune winograd.m expects 0, 2 or 4, got '%s'", v);
    return false;
  }
  *field(t, k) = (int)x;
  return true;
}

char *tuning_describe(const Tuning *t) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  int n = 0;
  for (int i = 0; i < NKEYS; i++)
    if (value(t, &keys[i]) != keys[i].def)
      fprintf(f, "%s%s=%d", n++ ? "," : "", keys[i].key, value(t, &keys[i]));
  fclose(f);
  return buf;
}

void tuning_print_help(FILE *out) {
  for (int i = 0; i < NKEYS; i++)
    fprintf(out, "  %-17s %-9d %s\n", keys[i].key, keys[i].def, keys[i].help);
}

/*
 * header.c: the typed C header of a network (--emit=header, --header FILE).
 *
 * cnn.h is the same for every network: untyped float pointers, sizes read
 * at run time from cnn_info. The header made here knows one network, from
 * its graph after the passes: its name and its inputs' and outputs' names
 * and sizes as constants, and inline wrappers whose parameters are
 * pointers to arrays of the exact per-sample shape, so that the compiler
 * checks what a host passes:
 *
 *   static inline int resnet50_run(cnn_model *model, int64_t batch,
 *                                  const float (*image)[3][224][224],
 *                                  float (*fc)[1000]);
 *
 * resnet50_run calls cnn_run (a host linked with the .so);
 * resnet50_run_with takes the cnn_run a host found with dlsym;
 * resnet50_check(info) tells whether a loaded .so is the network the
 * header describes. The header includes cnn.h and compiles as C99 and
 * later and as C++ (tested with -Wall -Wextra -Wpedantic -Werror as C11
 * and C++17).
 *
 * Names become C identifiers by the rules of ident() below, written down
 * in docs/abi.md ("A typed header"): an ONNX model's "/fc/Gemm" is fc_Gemm,
 * "input.1" is input_1, "191" is t_191, "class" is class_; identifiers
 * equal but for case get _2, _3, ... (macros are upper case).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "support/files.h"

/* Words a name may not become: C and C++ keywords, the wrappers' own
   parameters and locals, and object-like macros of the headers the
   header includes. */
static const char *const reserved[] = {
    /* C17, C23 */
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
    "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict",
    "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
    "unsigned", "void", "volatile", "while", "bool", "true", "false", "nullptr", "alignas",
    "alignof", "constexpr", "static_assert", "thread_local", "typeof", "typeof_unqual",
    /* C++20 */
    "and", "and_eq", "asm", "bitand", "bitor", "catch", "char8_t", "char16_t", "char32_t", "class",
    "compl", "concept", "consteval", "constinit", "const_cast", "co_await", "co_return", "co_yield",
    "decltype", "delete", "dynamic_cast", "explicit", "export", "friend", "mutable", "namespace",
    "new", "noexcept", "not", "not_eq", "operator", "or", "or_eq", "private", "protected", "public",
    "reinterpret_cast", "requires", "static_cast", "template", "this", "throw", "try", "typeid",
    "typename", "using", "virtual", "wchar_t", "xor", "xor_eq",
    /* the wrappers' parameters and locals; macros of stddef.h */
    "model", "batch", "run", "info", "cnncc_in", "cnncc_out", "NULL", "offsetof"};

/* Object-like macros of stdint.h (INT8_MAX, SIZE_MAX, ...) and cnn.h
   (CNN_OK, ...): a name ending in _MAX or _MIN, or starting with CNN_ or
   cnn_, is not used as it is. */
static bool is_reserved(const char *s) {
  for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
    if (strcmp(s, reserved[i]) == 0)
      return true;
  size_t n = strlen(s);
  if (n >= 4 && (strcmp(s + n - 4, "_MAX") == 0 || strcmp(s + n - 4, "_MIN") == 0))
    return true;
  return strncmp(s, "CNN_", 4) == 0 || strncmp(s, "cnn_", 4) == 0;
}

/* A name as a C identifier (malloc'd):
   1. every character but A-Z, a-z, 0-9 becomes '_'; runs of '_' become
      one; '_' at the start and the end is dropped (no reserved _X or __x);
   2. empty, or starting with a digit: `prefix` before it ("t_191");
   3. if `keywords`, a keyword or a reserved word: '_' after it ("class_").
   The network's name becomes the prefix of everything the header defines
   ("resnet50_run"), so it needs no rule 3. */
static char *ident(const char *name, const char *prefix, bool keywords) {
  size_t n = strlen(name);
  char *out = xmalloc(strlen(prefix) + n + 2), *o = out;
  for (const char *p = name; *p; p++) {
    unsigned char c = (unsigned char)*p;
    char x = (char)(isalnum(c) && c < 128 ? c : '_');
    if (x == '_' && (o == out || o[-1] == '_'))
      continue;
    *o++ = x;
  }
  if (o > out && o[-1] == '_')
    o--;
  *o = 0;
  if (!*out || isdigit((unsigned char)out[0])) {
    char *t = xasprintf("%s%s", prefix, out);
    free(out);
    out = t;
  }
  if (keywords && is_reserved(out)) {
    char *t = xasprintf("%s_", out);
    free(out);
    out = t;
  }
  return out;
}

static char *upper(const char *s) {
  char *u = xstrdup(s);
  for (char *p = u; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  return u;
}

/* One input or output as the header sees it. */
typedef struct {
  const char *name; /* as in cnn_info */
  char *id, *ID;    /* identifier, and upper case for the macros */
  int rank;         /* as in cnn_info: 4 ([N, C, H, W]) or 2 ([N, F]) */
  int64_t dims[4];  /* dims[0] = 1, the batch */
  bool input;
} Tensor;

/* cnn_info's rank and dims of a per-sample shape: rank 3 is [N, C, H, W],
   anything else [N, F] (as backend/codegen.c's tensor_descs writes them). */
static void abi_dims(const Shape *s, Tensor *t) {
  t->dims[0] = 1;
  if (s->rank == 3) {
    t->rank = 4;
    t->dims[1] = s->d[0], t->dims[2] = s->d[1], t->dims[3] = s->d[2];
  } else {
    t->rank = 2;
    t->dims[1] = shape_numel(s), t->dims[2] = t->dims[3] = 0;
  }
}

/* The macro form of an identifier: upper case, without the '_' that rule
   3 added (no "__" in a name: C++ reserves those). */
static char *macro_form(const char *id) {
  char *u = upper(id);
  size_t n = strlen(u);
  if (n > 1 && u[n - 1] == '_')
    u[n - 1] = 0;
  return u;
}

/* The inputs, then the outputs, with identifiers unique ignoring case and
   none the name of a wrapper (p: the network's prefix). */
static Tensor *tensors(const Graph *g, const char *p, int *count) {
  int n = g->ninputs + g->noutputs;
  Tensor *t = xcalloc((size_t)(n ? n : 1), sizeof *t);
  for (int i = 0; i < n; i++) {
    bool in = i < g->ninputs;
    const GraphIO *io = in ? &g->inputs[i] : &g->outputs[i - g->ninputs];
    t[i].name = io->name ? io->name : io->node->name;
    t[i].input = in;
    abi_dims(&io->node->shape, &t[i]);
    char *base = ident(t[i].name, "t_", true), *id = xstrdup(base);
    char *wrapper = xasprintf("%s_run_with", p);
    if (strcmp(id, wrapper) == 0) { /* a parameter would hide the function */
      free(id);
      id = xasprintf("%s_", base);
    }
    free(wrapper);
    for (int k = 2;; k++) {
      char *ID = macro_form(id);
      bool clash = false;
      for (int j = 0; j < i && !clash; j++)
        clash = strcmp(t[j].ID, ID) == 0;
      if (!clash) {
        t[i].id = id, t[i].ID = ID;
        break;
      }
      free(ID);
      free(id);
      id = xasprintf("%s_%d", base, k);
    }
    free(base);
  }
  *count = n;
  return t;
}

/* "[3][224][224]" */
static void array_dims(FILE *f, const Tensor *t) {
  for (int k = 1; k < t->rank; k++)
    fprintf(f, "[%lld]", (long long)t->dims[k]);
}

static int64_t per_sample(const Tensor *t) {
  int64_t n = 1;
  for (int k = 1; k < t->rank; k++)
    n *= t->dims[k];
  return n;
}

/* A string as a C string literal's body. */
static void c_string(FILE *f, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20 || c >= 0x7f)
      fprintf(f, "\\%03o", c);
    else
      fputc(c, f);
  }
}

/* The parameter list after `model, batch`: one array pointer per tensor. */
static void params(FILE *f, const Tensor *t, int n, int indent) {
  for (int i = 0; i < n; i++) {
    fprintf(f, ",\n%*s%sfloat (*%s)", indent, "", t[i].input ? "const " : "", t[i].id);
    array_dims(f, &t[i]);
  }
}

static void write_macros(FILE *f, const Graph *g, const char *P, const Tensor *t, int n) {
  fprintf(f, "#define %s_NAME \"", P);
  c_string(f, g->name ? g->name : "net");
  fprintf(f, "\"\n#define %s_NUM_INPUTS %d\n#define %s_NUM_OUTPUTS %d\n", P, g->ninputs, P,
          g->noutputs);
  for (int i = 0; i < n; i++) {
    const Tensor *x = &t[i];
    fprintf(f, "\n/* %s %d: \"", x->input ? "input" : "output", x->input ? i : i - g->ninputs);
    c_string(f, x->name);
    fprintf(f, "\", float32 [N");
    for (int k = 1; k < x->rank; k++)
      fprintf(f, ", %lld", (long long)x->dims[k]);
    fprintf(f, "] */\n#define %s_%s_NAME \"", P, x->ID);
    c_string(f, x->name);
    fprintf(f, "\"\n#define %s_%s_INDEX %d\n#define %s_%s_RANK %d\n", P, x->ID,
            x->input ? i : i - g->ninputs, P, x->ID, x->rank);
    if (x->rank == 4)
      fprintf(f, "#define %s_%s_C %lld\n#define %s_%s_H %lld\n#define %s_%s_W %lld\n", P, x->ID,
              (long long)x->dims[1], P, x->ID, (long long)x->dims[2], P, x->ID,
              (long long)x->dims[3]);
    fprintf(f, "#define %s_%s_SIZE %lld /* floats per sample */\n", P, x->ID,
            (long long)per_sample(x));
  }
}

static void write_run(FILE *f, const Graph *g, const char *p, const Tensor *t, int n) {
  int ni = g->ninputs, no = g->noutputs;
  fprintf(
      f,
      "\n/* The .so's cnn_run, as a host that dlopen()s it finds it with dlsym. */\n"
      "typedef int (*%s_cnn_run_fn)(cnn_model *, int64_t, const float *const *, float *const *);\n",
      p);
  fprintf(f,
          "\n/* Runs `batch` samples through run: each pointer points at `batch`\n"
          "   contiguous samples of its tensor. Returns cnn_run's code (0: CNN_OK). */\n"
          "static inline int %s_run_with(%s_cnn_run_fn run, cnn_model *model, int64_t batch",
          p, p);
  params(f, t, n, 4);
  fprintf(f, ") {\n  const float *const cnncc_in[%d] = {", ni ? ni : 1);
  for (int i = 0; i < ni; i++)
    fprintf(f, "%s(const float *)%s", i ? ", " : "", t[i].id);
  if (!ni)
    fprintf(f, "0");
  fprintf(f, "};\n  float *const cnncc_out[%d] = {", no ? no : 1);
  for (int i = 0; i < no; i++)
    fprintf(f, "%s(float *)%s", i ? ", " : "", t[ni + i].id);
  if (!no)
    fprintf(f, "0");
  fprintf(f, "};\n  return run(model, batch, cnncc_in, cnncc_out);\n}\n");

  fprintf(f,
          "\n/* The same through cnn_run itself: for a host linked with the .so\n"
          "   (cc app.c net.so), which cnn.h's declarations then name. */\n"
          "static inline int %s_run(cnn_model *model, int64_t batch",
          p);
  params(f, t, n, 4);
  fprintf(f, ") {\n  return %s_run_with(cnn_run, model, batch", p);
  for (int i = 0; i < n; i++)
    fprintf(f, ", %s", t[i].id);
  fprintf(f, ");\n}\n");
}

static void write_check(FILE *f, const Graph *g, const char *p, const char *P, const Tensor *t,
                        int n) {
  fprintf(f,
          "\n/* 0 if info (the .so's cnn_get_info()) describes this network: its\n"
          "   name, and its inputs' and outputs' names and shapes; else -1. */\n"
          "static inline int %s_check(const cnn_info *info) {\n",
          p);
  fprintf(f, "  static const char *const names[%d] = {", n ? n : 1);
  for (int i = 0; i < n; i++) {
    fprintf(f, "%s\"", i ? ", " : "");
    c_string(f, t[i].name);
    fprintf(f, "\"");
  }
  if (!n)
    fprintf(f, "0");
  fprintf(f, "};\n  static const int32_t ranks[%d] = {", n ? n : 1);
  for (int i = 0; i < n; i++)
    fprintf(f, "%s%d", i ? ", " : "", t[i].rank);
  if (!n)
    fprintf(f, "0");
  fprintf(f, "};\n  static const int64_t dims[%d][4] = {", n ? n : 1);
  for (int i = 0; i < n; i++)
    fprintf(f, "%s{%lld, %lld, %lld, %lld}", i ? ", " : "", (long long)t[i].dims[0],
            (long long)t[i].dims[1], (long long)t[i].dims[2], (long long)t[i].dims[3]);
  if (!n)
    fprintf(f, "{0, 0, 0, 0}");
  fprintf(f,
          "};\n"
          "  if (!info || info->abi_version != CNN_ABI_VERSION || strcmp(info->name, %s_NAME) != 0 "
          "||\n"
          "      info->num_inputs != %s_NUM_INPUTS || info->num_outputs != %s_NUM_OUTPUTS)\n"
          "    return -1;\n"
          "  for (int i = 0; i < %d; i++) {\n"
          "    const cnn_tensor_desc *t = i < %d ? &info->inputs[i] : &info->outputs[i - %d];\n"
          "    if (strcmp(t->name, names[i]) != 0 || t->rank != ranks[i])\n"
          "      return -1;\n"
          "    for (int k = 1; k < t->rank; k++)\n"
          "      if (t->dims[k] != dims[i][k])\n"
          "        return -1;\n"
          "  }\n"
          "  return 0;\n"
          "}\n",
          P, P, P, n, g->ninputs, g->ninputs);
}

static void write_header(FILE *f, const Graph *g, const char *path) {
  char *p = ident(g->name ? g->name : "net", "net_", false), *P = upper(p);
  int n;
  Tensor *t = tensors(g, p, &n);
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (strcmp(path, "-") == 0)
    fprintf(f, "/*\n * %s.h: the typed interface of the network '", p);
  else
    fprintf(f, "/*\n * %s: the typed interface of the network '", base);
  c_string(f, g->name ? g->name : "net");
  fprintf(f, "',\n * generated by cnncc %s from %s; do not edit.\n *\n", CNNCC_VERSION,
          g->spec_file ? g->spec_file : "?");
  fprintf(f, " * float32, NCHW, any batch size N first:\n");
  for (int i = 0; i < n; i++) {
    fprintf(f, " *   %-6s %-20s [N", t[i].input ? "input" : "output", t[i].id);
    for (int k = 1; k < t[i].rank; k++)
      fprintf(f, ", %lld", (long long)t[i].dims[k]);
    fprintf(f, "]\n");
  }
  fprintf(f,
          " * %s_run() calls the .so's cnn_run() (link the .so); with dlopen(),\n"
          " * pass the cnn_run that dlsym() found to %s_run_with(). docs/abi.md,\n"
          " * \"A typed header\", says how names become identifiers.\n */\n",
          p, p);
  fprintf(f, "#ifndef CNNCC_%s_H\n#define CNNCC_%s_H\n\n", P, P);
  fprintf(f, "#include <stdint.h>\n#include <string.h>\n\n#include \"cnn.h\"\n\n");
  write_macros(f, g, P, t, n);
  write_run(f, g, p, t, n);
  write_check(f, g, p, P, t, n);
  fprintf(f, "\n#endif /* CNNCC_%s_H */\n", P);
  for (int i = 0; i < n; i++)
    free(t[i].id), free(t[i].ID);
  free(t);
  free(p);
  free(P);
}

bool header_write(const Graph *g, const char *path, Diag *d) {
  if (strcmp(path, "-") == 0) {
    write_header(stdout, g, path);
    return fflush(stdout) == 0;
  }
  /* Written beside the target and renamed into place: never half a header. */
  char *tmp = xasprintf("%s.%d.tmp", path, (int)getpid());
  FILE *f = fopen(tmp, "w");
  bool ok = f != NULL;
  if (f) {
    write_header(f, g, path);
    ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
  }
  if (ok && file_publish(tmp, path) != 0)
    ok = false;
  if (!ok) {
    diag_plain(d, DIAG_ERROR, "cannot write '%s': %s", path, strerror(errno));
    remove(tmp);
  }
  free(tmp);
  return ok;
}

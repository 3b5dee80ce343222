/*
 * synonyms.c: what the spec language says about an op name it does not know.
 *
 * After "unknown op 'NAME'", parse.c asks for one note, the most useful of:
 *
 *  1. The same name spelled another way: a different case or underscores
 *     ('ReLU', 'Conv2d', 'global_avg_pool') is "did you mean 'relu'?".
 *  2. A name another framework uses (PyTorch, ONNX, Keras, Caffe), from the
 *     table below: 'MaxPool2d' is called 'maxpool' in cnncc; 'relu6' is
 *     {op: clamp, min: 0, max: 6}. The note appears only while the op of
 *     the row exists in the op table (and has the attributes the row sets),
 *     so a row may name an op still to come: until it comes, the name gets
 *     no hint. A row without an op is a function cnncc does not have.
 *     Either way, a name of the table is never taken for a misspelling:
 *     'elu', 'gelu' and 'relu6' are other functions than 'relu'.
 *  3. A misspelling: the closest op name by edit distance (diag_suggest),
 *     among the ops whose name has the same digits, because a number in a
 *     name is part of what it means (relu6, conv3d, maxpool1d).
 *  4. Otherwise, every op of the language, from the op table (ops.c), and
 *     where they are described: after the first such error only, since
 *     the list is the same every time.
 *
 * Names are compared normalized: lower case, without '_'.
 */
#include <ctype.h>
#include <string.h>

#include "spec_internal.h"

/* A name used elsewhere and how cnncc writes it. */
typedef struct {
  const char *word;     /* normalized: lower case, no '_' */
  const char *op;       /* cnncc's op; NULL: cnncc has no such function */
  const char *attrs[5]; /* key, value, key, value, NULL: what the name fixes */
} Synonym;

static const Synonym table[] = {
    /* the same functions under other names */
    {"conv", "conv2d", {NULL}},
    {"convolution", "conv2d", {NULL}},
    {"batchnorm2d", "batchnorm", {NULL}},
    {"batchnormalization", "batchnorm", {NULL}},
    {"bn", "batchnorm", {NULL}},
    {"maxpool2d", "maxpool", {NULL}},
    {"maxpooling2d", "maxpool", {NULL}},
    {"avgpool2d", "avgpool", {NULL}},
    {"averagepool", "avgpool", {NULL}},
    {"averagepooling2d", "avgpool", {NULL}},
    {"adaptiveavgpool2d", "adaptive_avgpool", {NULL}},
    {"globalaveragepool", "global_avgpool", {NULL}},
    {"globalaveragepooling2d", "global_avgpool", {NULL}},
    {"globalmaxpooling2d", "global_maxpool", {NULL}},
    {"localresponsenorm", "lrn", {NULL}},
    {"dense", "linear", {NULL}},
    {"fc", "linear", {NULL}},
    {"fullyconnected", "linear", {NULL}},
    {"innerproduct", "linear", {NULL}},
    {"dropout2d", "dropout", {NULL}},
    {"cat", "concat", {NULL}},
    {"concatenate", "concat", {NULL}},
    {"sum", "add", {NULL}},
    {"softmax2d", "softmax", {NULL}},
    {"relu6", "clamp", {"min", "0", "max", "6", NULL}},
    {"hardtanh", "clamp", {"min", "-1", "max", "1", NULL}},
    {"clip", "clamp", {NULL}},
    {"swish", "silu", {NULL}},
    {"silu", "silu", {NULL}},
    {"gelu", "gelu", {NULL}},
    {"sigmoid", "sigmoid", {NULL}},
    {"logistic", "sigmoid", {NULL}},
    {"hardswish", "hardswish", {NULL}},
    {"hswish", "hardswish", {NULL}},
    {"hardsigmoid", "hardsigmoid", {NULL}},
    {"hsigmoid", "hardsigmoid", {NULL}},
    {"multiply", "mul", {NULL}},
    {"layernormalization", "layernorm", {NULL}},
    {"layernorm2d", "layernorm", {NULL}},
    /* other functions, whose names are close to the name of an op */
    {"elu", NULL, {NULL}},
    {"selu", NULL, {NULL}},
    {"celu", NULL, {NULL}},
    {"prelu", NULL, {NULL}},
    {"rrelu", NULL, {NULL}},
    {"softmin", NULL, {NULL}},
    {"logsoftmax", NULL, {NULL}},
    {"logsigmoid", NULL, {NULL}},
    {"bilinear", NULL, {NULL}},
    {"unflatten", NULL, {NULL}},
    {"maxunpool", NULL, {NULL}},
};
#define NTABLE ((int)(sizeof table / sizeof table[0]))

/* s in lower case without '_', in a. */
static char *normalized(Arena *a, const char *s) {
  char *out = arena_alloc(a, strlen(s) + 1), *o = out;
  for (; *s; s++)
    if (*s != '_')
      *o++ = (char)tolower((unsigned char)*s);
  *o = 0;
  return out;
}

static const Synonym *find_row(Arena *a, const char *word) {
  const char *w = normalized(a, word);
  for (int i = 0; i < NTABLE; i++)
    if (!strcmp(table[i].word, w))
      return &table[i];
  return NULL;
}

/* How cnncc writes row r, in a: "{op: clamp, min: 0, max: 6}", or the op's
   name when the row fixes no attribute; NULL while its op (or one of its
   attributes) does not exist. */
static const char *spelling(Arena *a, const Synonym *r) {
  const SpecOp *op = r->op ? spec_op_find(r->op) : NULL;
  if (!op)
    return NULL;
  if (!r->attrs[0])
    return r->op;
  const char *s = arena_printf(a, "{op: %s", r->op);
  for (int i = 0; r->attrs[i]; i += 2) {
    if (!spec_op_attr(op, r->attrs[i]))
      return NULL;
    s = arena_printf(a, "%s, %s: %s", s, r->attrs[i], r->attrs[i + 1]);
  }
  return arena_printf(a, "%s}", s);
}

const char *synonym_spelling(Arena *a, const char *word) {
  const Synonym *r = find_row(a, word);
  return r ? spelling(a, r) : NULL;
}

const char *synonym_word(int i) { return i >= 0 && i < NTABLE ? table[i].word : NULL; }

/* The digits of s, in order ("conv2d" -> "2"), in a. */
static const char *digits(Arena *a, const char *s) {
  char *out = arena_alloc(a, strlen(s) + 1), *o = out;
  for (; *s; s++)
    if (*s >= '0' && *s <= '9')
      *o++ = *s;
  *o = 0;
  return out;
}

/* The op whose name is `word` in another case or with other underscores
   (1.), or NULL. */
static const char *same_name(Arena *a, const char *word, const char **names, int n) {
  const char *w = normalized(a, word);
  for (int i = 0; i < n; i++)
    if (!strcmp(normalized(a, names[i]), w))
      return names[i];
  return NULL;
}

/* The op whose name `word` looks like a misspelling of (3.), or NULL. */
static const char *misspelled(Arena *a, const char *word, const char **names, int n) {
  const char *wd = digits(a, word);
  const char **cands = arena_alloc(a, sizeof(char *) * (size_t)(n ? n : 1));
  int nc = 0;
  for (int i = 0; i < n; i++)
    if (!strcmp(digits(a, names[i]), wd))
      cands[nc++] = names[i];
  return diag_suggest(word, cands, nc);
}

void synonym_note_unknown_op(SpecCtx *c, const YNode *op) {
  const char **names;
  int n = spec_op_names(c->tmp, &names);
  const char *best = same_name(c->tmp, op->str, names, n);
  if (best) {
    spec_note(c, op->loc, 0, "did you mean '%s'?", best);
    return;
  }
  const Synonym *r = find_row(c->tmp, op->str);
  const char *s = r ? spelling(c->tmp, r) : NULL;
  if (s && r->attrs[0]) {
    spec_note(c, op->loc, 0, "'%s' is %s in cnncc", op->str, s);
    return;
  }
  if (s) {
    spec_note(c, op->loc, 0, "'%s' is called '%s' in cnncc", op->str, s);
    return;
  }
  if (!r && (best = misspelled(c->tmp, op->str, names, n))) {
    spec_note(c, op->loc, 0, "did you mean '%s'?", best);
    return;
  }
  if (c->ops_listed || c->quiet)
    return;
  const char *list = names[0];
  for (int i = 1; i < n; i++)
    list = arena_printf(c->tmp, "%s, %s", list, names[i]);
  spec_note(c, op->loc, 0, "the spec language's ops are %s (docs/spec.md describes each)", list);
  c->ops_listed = true;
}

/*
 * spec_internal.h: the spec language's room, its internal map.
 *
 *   frontend/spec/load.c    the entry points (frontend.h): files, includes,
 *                           then parse, check, lower; SPEC_MAX_ERRORS
 *   frontend/spec/yaml.c    YAML text -> YNode tree with line:col (libyaml)
 *   frontend/spec/parse.c   YNode tree of one file -> AST (Spec, Block, Layer)
 *   frontend/spec/check.c   block instances resolved once every block is known
 *   frontend/spec/lower.c   AST -> Graph: blocks, repetition, names, shapes
 *   frontend/spec/expr.c    values of YAML scalars; the expression language
 *   frontend/spec/ops.c     the op table of the language, attributes included
 *   frontend/spec/synonyms.c what an unknown op name is: other frameworks'
 *                           names for ops, misspellings, the list of ops
 *   frontend/spec/errors.c  spec_error and its notes: repeats dropped, a cap
 *   frontend/spec/write.c   a Graph back into a flat spec (--emit=spec)
 *
 *   text --yaml.c--> YNode tree --parse.c--> AST --check.c--> checked AST
 *        --lower.c--> Graph (expr.c evaluates values on the way)
 *
 * Calls between the files go one way, so they form no cycle:
 *   load   -> parse, check, lower     (the steps, in order)
 *   check  -> parse                   (the layer keys)
 *   parse  -> synonyms -> ops, errors (an unknown op's note)
 *   parse, check, lower -> yaml, ops, expr, errors
 *   yaml, expr -> errors -> support/diag
 *   write  -> ops, expr               (the op table; how literals read)
 * The notes lower.c owes to an error (the block instances around it) are
 * printed from the Diag's hook (diag_set_hook), so errors.c, which every
 * file calls, calls no file back.
 *
 * The YNode tree is libyaml's document with every node's 1-based line:col.
 * The AST keeps YNodes for every value, because values are only evaluated
 * during lowering (they may be expressions over block parameters), and a
 * value's diagnostics point at its YNode.
 *
 * All of this lives in one temporary Arena (SpecCtx.tmp) freed when loading
 * ends; only the Graph survives.
 */
#ifndef CNNCC_SPEC_INTERNAL_H
#define CNNCC_SPEC_INTERNAL_H

#include "../frontend.h"

/* ------------------------------------------------------------ YAML tree */

typedef enum { Y_SCALAR, Y_SEQ, Y_MAP } YKind;
typedef struct ExprNode ExprNode;
typedef struct YNode YNode;
struct YNode {
  YKind kind;
  SrcLoc loc;
  int span;        /* columns to underline */
  const char *str; /* scalar text (NUL-terminated) */
  size_t len;
  bool quoted;   /* scalar written in quotes or as a block scalar */
  int text_col;  /* column of the scalar's first character of text when
                    offsets into it map to columns (one line, no escapes
                    before); 0 if they do not */
  YNode **items; /* sequence items, or mapping values */
  YNode **keys;  /* mapping keys */
  int n;
  /* expression cache (expr.c) */
  ExprNode *expr;
  bool expr_done, expr_bad;
};

/* ----------------------------------------------------------------- values */

typedef enum { V_NULL, V_INT, V_FLOAT, V_BOOL, V_STR, V_LIST, V_MAP } VKind;
typedef struct Value Value;
struct Value {
  VKind kind;
  int64_t i;
  double f;
  bool b;
  const char *s;
  Value *items;
  int n;
};

/* Parameters in scope of an expression: a chain of bindings. A binding with
   `poisoned` set stands for a value that could not be computed (an error was
   already reported); using it fails silently. */
typedef struct Env Env;
struct Env {
  const Env *up;
  const char *name;
  Value v;
  bool poisoned;
};

/* ---------------------------------------------------------------- the AST */

typedef struct SpecOp SpecOp;
typedef struct Block Block;
typedef struct Layer Layer;

typedef enum { LK_OP, LK_BLOCK, LK_GROUP } LayerKind;

/* A key: value pair of a layer that is not one of the common keys: an op's
   attribute or a block's argument. */
typedef struct {
  const char *key;
  YNode *knode, *val;
} Arg;

struct Layer {
  LayerKind kind;
  YNode *node;      /* the layer's mapping */
  bool invalid;     /* an error was reported by the checker */
  YNode *name;      /* NULL: unnamed */
  YNode *what;      /* value of op/block */
  const SpecOp *op; /* LK_OP */
  Block *block;     /* LK_BLOCK (resolved by the checker) */
  Layer **layers;   /* LK_GROUP */
  int nlayers;
  YNode *in, *if_, *repeat, *repeat_name, *repeat_from, *at, *numbered;
  Arg *args;
  int nargs;
};

struct Block {
  const char *name;
  YNode *node, *key;
  Arg *params; /* name + default (val; a null scalar: required) */
  int nparams;
  Layer **layers;
  int nlayers;
  YNode *numbered;
  bool invalid;
};

typedef struct {
  const char *name;
  YNode *node; /* the key */
  YNode *shape;
} SpecInput;

typedef struct {
  const char *name;
  YNode *name_node;
  SpecInput *inputs;
  int ninputs;
  YNode *outputs; /* sequence (or scalar) of references; NULL: default */
  PtrVec blocks;  /* Block*, of this file and the files it includes */
  Layer **layers;
  int nlayers;
} Spec;

/* Attribute kinds of spec ops (lower.c converts values by kind). */
typedef enum {
  AK_INT,   /* positive int: an int64_t field */
  AK_INDEX, /* int >= 0: an int64_t field */
  AK_PAIR,  /* int or [h, w]: an int64_t[2] field */
  AK_PAD,   /* int, [h, w] or [top, left, bottom, right]: int64_t[4] */
  AK_BOOL,  /* a bool field */
  AK_FLOAT,
  AK_AXIS,   /* must be 1: an int field, set to 0 (the IR's channels) */
  AK_CHOICE, /* one of the strings AttrSpec.choices: an int field, its index */
  AK_SHAPE,  /* [C, H, W] or [F], positive: a Shape field */
} AttrKind;

/* What an attribute's value must also satisfy, beyond its kind. */
typedef enum {
  AR_NONE,
  AR_POSITIVE,         /* AK_FLOAT > 0 */
  AR_PROBABILITY,      /* AK_FLOAT in [0, 1) */
  AR_KERNEL_IF_ABSENT, /* AK_PAIR: not given, it is the kernel (a pool's stride) */
} AttrRule;

/* An attribute of a spec op, and where lowering puts its value. */
typedef struct {
  const char *key;
  AttrKind kind;
  bool required;
  size_t field; /* offsetof(Attrs, ...), of the type the kind writes */
  AttrRule rule;
  const char *const *choices; /* AK_CHOICE: the words, NULL-terminated */
} AttrSpec;

#define SPEC_MAX_ATTRS 8
/* An op as the spec language names it: an IR op under its IR name, or an
   alias of one. */
struct SpecOp {
  Op op;
  const char *alias;              /* NULL: the op's IR name, ir_ops[op].name */
  AttrSpec attrs[SPEC_MAX_ATTRS]; /* a NULL key ends them */
  void (*implied)(Attrs *a);      /* an alias: sets what its name fixes */
};

/* ----------------------------------------------------- the shared context */

typedef struct {
  Diag *diag;
  Arena *tmp;      /* AST, values, scopes: freed at the end */
  Graph *g;        /* being built; file names live in its arena */
  PtrVec seen;     /* reported "file:line:col:msg" keys (dedupe) */
  bool stop;       /* too many errors: stop early */
  bool quiet;      /* the last error was a repeat: drop its notes */
  bool ops_listed; /* an unknown op's note listed the ops (once is enough) */
} SpecCtx;

#define SPEC_MAX_ERRORS DIAG_MAX_ERRORS
#define SPEC_MAX_DEPTH 64      /* nested block instances */
#define SPEC_MAX_NODES 1000000 /* nodes in one network */
#define SPEC_MAX_REPEAT 100000
#define SPEC_MAX_PARAM_ELEMS ((int64_t)1 << 32) /* 16 GiB of float32 weights */

/* ------------------------------------------------------------- errors.c */

/* Report an error at a location (exact repeats dropped, at most
   SPEC_MAX_ERRORS). Returns false, for `return spec_error(...)`. */
bool spec_error(SpecCtx *c, SrcLoc loc, int span, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Error at a YNode. */
bool spec_error_at(SpecCtx *c, const YNode *y, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A note after an error; dropped with its error when that was a repeat. */
void spec_note(SpecCtx *c, SrcLoc loc, int span, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "did you mean 'x'?" note after an error, if a candidate is close. */
void spec_hint(SpecCtx *c, SrcLoc loc, const char *word, const char *const *cands, int n);

/* --------------------------------------------------------------- yaml.c */

/* The tree of a file's text; NULL after reporting an error. */
YNode *ynode_parse(SpecCtx *c, const char *file, const char *text, size_t len);
/* The value of mapping key `key`, or NULL. */
YNode *ynode_get(const YNode *map, const char *key);
/* The key node itself, or NULL (map must be a mapping). */
YNode *ynode_key(const YNode *map, const char *key);

/* --------------------------------------------------------------- expr.c */

/* The value of a YAML node in env: a literal scalar (int, float, bool, null,
   string), an expression (a scalar with '$'), a list of values, or V_MAP for
   a mapping. false on error (reported, or silent when it uses a poisoned
   binding). */
bool expr_value(SpecCtx *c, YNode *y, const Env *env, Value *out);
Env *expr_bind(Arena *a, const Env *up, const char *name, Value v);
Env *expr_bind_poisoned(Arena *a, const Env *up, const char *name);
/* "integer 3", "string 'three'", "a list", ... for messages. */
const char *expr_describe(Arena *a, const Value *v);
/* The same for a node as written: "a mapping", "a list", or its literal. */
const char *expr_describe_node(Arena *a, const YNode *y);
/* A plain scalar's literal value (no expressions). */
Value expr_literal(const YNode *y);

/* ---------------------------------------------------------------- ops.c */

/* The spec op called `name`, or NULL. */
const SpecOp *spec_op_find(const char *name);
/* Its name in the spec (aliases keep theirs). */
const char *spec_op_name(const SpecOp *op);
/* Its attribute `key`, or NULL. */
const AttrSpec *spec_op_attr(const SpecOp *op, const char *key);
/* Every op name of the spec language, in ops.def order, each op followed by
   its aliases (for "did you mean"): an array in `a` and its length. */
int spec_op_names(Arena *a, const char ***names);

/* ----------------------------------------------------------- synonyms.c */

/* The note after "unknown op 'NAME'" at op: the op it is another spelling
   or another framework's name of, the op it is a misspelling of, or else
   the list of ops. */
void synonym_note_unknown_op(SpecCtx *c, const YNode *op);
/* How cnncc writes a name another framework uses ("relu6" ->
   "{op: clamp, min: 0, max: 6}", "MaxPool2d" -> "maxpool"), in a; NULL if
   the name is not in the table or its op (or attribute) does not exist. */
const char *synonym_spelling(Arena *a, const char *word);
/* The i-th name of the table, NULL past the end (for tests). */
const char *synonym_word(int i);

/* -------------------------------------------------------------- parse.c */

/* The keys every layer may have, besides an op's attributes or a block's
   arguments. */
#define PARSE_NLAYER_KEYS 11
extern const char *const parse_layer_keys[];

/* The AST being built from a spec and the files it includes. */
typedef struct {
  SpecCtx *c;
  Spec *spec;
  int ast_count; /* layers built (bounds YAML alias expansion) */
  bool too_big;
} SpecBuilder;
/* A file's tree, checked for the top-level keys of a main or an included
   file and for the language version; NULL when nothing more can be read
   from it (reported). */
YNode *parse_root(SpecBuilder *b, const char *file, const char *text, size_t len, bool main);
/* A file's blocks and, for the main file, the network: name, inputs,
   outputs, layers. */
void parse_body(SpecBuilder *b, YNode *root, bool main);

/* -------------------------------------------------------------- check.c */

/* Resolve every block instance of s and match its arguments and `at:`
   overrides against the block's parameters; failures mark layers invalid. */
void check_spec(SpecCtx *c, Spec *s);

/* -------------------------------------------------------------- lower.c */

/* Lower a checked spec into c->g. false if any error was reported. */
bool lower_spec(SpecCtx *c, Spec *s);

/* -------------------------------------------------------------- write.c */

/* The entry point spec_write: frontend/frontend.h. */

/* --------------------------------------------------------------- load.c */

/* The entry points spec_load_file and spec_load_string: frontend/frontend.h. */

#endif

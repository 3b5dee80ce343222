/*
 * expr.c: values of YAML nodes and the expression language of block params.
 *
 * A plain YAML scalar is resolved to a literal the way YAML's core schema
 * does it, but strictly: decimal integers, decimal floats, true/false, null,
 * and anything else is a string (so `kernel: three` is a string that the op
 * then rejects). A quoted scalar is always a string. A scalar containing '$'
 * is an expression, parsed once into a tree (cached on its YNode) and
 * evaluated in an Env each time its layer is instantiated.
 *
 * Values are int (int64, every operation checked for overflow), float
 * (double), bool, string and, from YAML sequences only, lists. Division of
 * two ints is an int when exact and a float otherwise; `//` is floor
 * division and `%` the matching modulo (Python's). `and`, `or`, `not` and
 * `? :` take booleans and short-circuit, so `$depth > 0 ? ... : ...` may
 * guard a branch that would fail. Comparing values of different kinds (other
 * than int with float) is an error rather than false.
 *
 * Errors point into the scalar: the column is the scalar's text column plus
 * the offset of the offending token, when the scalar is on one line.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spec_internal.h"

/* ----------------------------------------------------------------- trees */

typedef enum {
  E_INT,
  E_FLOAT,
  E_BOOL,
  E_STR,
  E_VAR,
  E_NEG,
  E_NOT,
  E_ADD,
  E_SUB,
  E_MUL,
  E_DIV,
  E_FLOORDIV,
  E_MOD,
  E_EQ,
  E_NE,
  E_LT,
  E_LE,
  E_GT,
  E_GE,
  E_AND,
  E_OR,
  E_COND,
  E_MIN,
  E_MAX,
} EKind;

struct ExprNode {
  EKind kind;
  int pos, len; /* offset and length in the scalar's text */
  int64_t i;
  double f;
  bool b;
  const char *s;        /* E_STR value, E_VAR name */
  ExprNode *a, *b2, *c; /* operands (E_COND: a ? b2 : c) */
  ExprNode **args;      /* E_MIN/E_MAX */
  int nargs;
};

/* Location of offset `pos` in scalar y. */
static SrcLoc loc_at(const YNode *y, int pos) {
  SrcLoc l = y->loc;
  if (y->text_col > 0)
    l.col = y->text_col + pos;
  return l;
}

/* ------------------------------------------------------------- literals */

static bool is_int_text(const char *s) {
  if (*s == '-' || *s == '+')
    s++;
  if (!isdigit((unsigned char)*s))
    return false;
  while (isdigit((unsigned char)*s))
    s++;
  return *s == 0;
}

static bool is_float_text(const char *s) {
  if (*s == '-' || *s == '+')
    s++;
  bool digits = false;
  while (isdigit((unsigned char)*s)) {
    s++;
    digits = true;
  }
  if (*s == '.') {
    s++;
    while (isdigit((unsigned char)*s)) {
      s++;
      digits = true;
    }
  }
  if (!digits)
    return false;
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '-' || *s == '+')
      s++;
    if (!isdigit((unsigned char)*s))
      return false;
    while (isdigit((unsigned char)*s))
      s++;
  }
  return *s == 0;
}

Value expr_literal(const YNode *y) {
  Value v = {0};
  const char *s = y->str;
  if (y->quoted) {
    v.kind = V_STR;
    v.s = s;
    return v;
  }
  if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL")) {
    v.kind = V_NULL;
  } else if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
    v.kind = V_BOOL;
    v.b = true;
  } else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
    v.kind = V_BOOL;
    v.b = false;
  } else if (is_int_text(s)) {
    errno = 0;
    long long x = strtoll(s, NULL, 10);
    if (errno == ERANGE) { /* too large: a float, rejected by integer uses */
      v.kind = V_FLOAT;
      v.f = strtod(s, NULL);
    } else {
      v.kind = V_INT;
      v.i = x;
    }
  } else if (is_float_text(s)) {
    v.kind = V_FLOAT;
    v.f = strtod(s, NULL);
  } else {
    v.kind = V_STR;
    v.s = s;
  }
  return v;
}

const char *expr_describe(Arena *a, const Value *v) {
  switch (v->kind) {
  case V_NULL:
    return "null";
  case V_INT:
    return arena_printf(a, "integer %lld", (long long)v->i);
  case V_FLOAT:
    return arena_printf(a, "float %g", v->f);
  case V_BOOL:
    return v->b ? "boolean true" : "boolean false";
  case V_STR:
    return arena_printf(a, "string '%s'", v->s);
  case V_LIST:
    return arena_printf(a, "a list of %d", v->n);
  case V_MAP:
    return "a mapping";
  }
  return "?";
}

const char *expr_describe_node(Arena *a, const YNode *y) {
  if (y->kind == Y_MAP)
    return "a mapping";
  if (y->kind == Y_SEQ)
    return "a list";
  Value v = expr_literal(y);
  return expr_describe(a, &v);
}

static const char *kind_name(VKind k) {
  switch (k) {
  case V_NULL:
    return "null";
  case V_INT:
    return "integer";
  case V_FLOAT:
    return "float";
  case V_BOOL:
    return "boolean";
  case V_STR:
    return "string";
  case V_LIST:
    return "list";
  case V_MAP:
    return "mapping";
  }
  return "?";
}

Env *expr_bind(Arena *a, const Env *up, const char *name, Value v) {
  Env *e = arena_alloc(a, sizeof *e);
  e->up = up;
  e->name = name;
  e->v = v;
  return e;
}

Env *expr_bind_poisoned(Arena *a, const Env *up, const char *name) {
  Env *e = expr_bind(a, up, name, (Value){0});
  e->poisoned = true;
  return e;
}

/* ---------------------------------------------------------------- parser */

typedef struct {
  SpecCtx *c;
  const YNode *y;
  const char *s;
  int p; /* cursor */
  int depth;
  bool failed;
} Parser;

static bool perr(Parser *ps, int pos, int len, const char *msg) {
  if (!ps->failed)
    spec_error(ps->c, loc_at(ps->y, pos), len > 0 ? len : 1, "invalid expression: %s", msg);
  ps->failed = true;
  return false;
}

static void skip_ws(Parser *ps) {
  while (ps->s[ps->p] == ' ' || ps->s[ps->p] == '\t' || ps->s[ps->p] == '\n')
    ps->p++;
}

/* Consume `tok` if next (identifiers only as whole words). */
static bool accept(Parser *ps, const char *tok) {
  skip_ws(ps);
  size_t n = strlen(tok);
  if (strncmp(ps->s + ps->p, tok, n) != 0)
    return false;
  if (isalpha((unsigned char)tok[0])) {
    char nx = ps->s[ps->p + (int)n];
    if (isalnum((unsigned char)nx) || nx == '_')
      return false;
  }
  ps->p += (int)n;
  return true;
}

static ExprNode *mk(Parser *ps, EKind k, int pos) {
  ExprNode *e = arena_alloc(ps->c->tmp, sizeof *e);
  e->kind = k;
  e->pos = pos;
  e->len = 1;
  return e;
}

static ExprNode *parse_expr(Parser *ps);

/* primary := INT | FLOAT | 'true' | 'false' | '$' IDENT | STRING
 *          | ('min' | 'max') '(' expr (',' expr)+ ')' | '(' expr ')' */
static ExprNode *parse_primary(Parser *ps) {
  skip_ws(ps);
  const char *s = ps->s;
  int start = ps->p;
  char ch = s[start];
  if (isdigit((unsigned char)ch) || (ch == '.' && isdigit((unsigned char)s[start + 1]))) {
    int q = start;
    bool isf = false;
    while (isdigit((unsigned char)s[q]))
      q++;
    if (s[q] == '.') {
      isf = true;
      q++;
      while (isdigit((unsigned char)s[q]))
        q++;
    }
    if ((s[q] == 'e' || s[q] == 'E') &&
        (isdigit((unsigned char)s[q + 1]) ||
         ((s[q + 1] == '-' || s[q + 1] == '+') && isdigit((unsigned char)s[q + 2])))) {
      isf = true;
      q += 2;
      while (isdigit((unsigned char)s[q]))
        q++;
    }
    char *txt = arena_strndup(ps->c->tmp, s + start, (size_t)(q - start));
    ExprNode *e = mk(ps, isf ? E_FLOAT : E_INT, start);
    e->len = q - start;
    if (isf) {
      e->f = strtod(txt, NULL);
    } else {
      errno = 0;
      e->i = strtoll(txt, NULL, 10);
      if (errno == ERANGE)
        return perr(ps, start, q - start, "integer literal is too large"), NULL;
    }
    ps->p = q;
    return e;
  }
  if (ch == '$') {
    int q = start + 1;
    if (!isalpha((unsigned char)s[q]) && s[q] != '_')
      return perr(ps, start, 1, "expected a parameter name after '$'"), NULL;
    while (isalnum((unsigned char)s[q]) || s[q] == '_')
      q++;
    ExprNode *e = mk(ps, E_VAR, start);
    e->s = arena_strndup(ps->c->tmp, s + start + 1, (size_t)(q - start - 1));
    e->len = q - start;
    ps->p = q;
    return e;
  }
  if (ch == '\'' || ch == '"') {
    int q = start + 1;
    while (s[q] && s[q] != ch)
      q++;
    if (!s[q])
      return perr(ps, start, 1, "unterminated string"), NULL;
    ExprNode *e = mk(ps, E_STR, start);
    e->s = arena_strndup(ps->c->tmp, s + start + 1, (size_t)(q - start - 1));
    e->len = q - start + 1;
    ps->p = q + 1;
    return e;
  }
  if (ch == '(') {
    ps->p++;
    ExprNode *e = parse_expr(ps);
    if (!e)
      return NULL;
    if (!accept(ps, ")"))
      return perr(ps, ps->p, 1, "expected ')'"), NULL;
    return e;
  }
  if (isalpha((unsigned char)ch) || ch == '_') {
    int q = start;
    while (isalnum((unsigned char)s[q]) || s[q] == '_')
      q++;
    int n = q - start;
    if ((n == 4 && !strncmp(s + start, "true", 4)) || (n == 5 && !strncmp(s + start, "false", 5))) {
      ExprNode *e = mk(ps, E_BOOL, start);
      e->b = n == 4;
      e->len = n;
      ps->p = q;
      return e;
    }
    if ((n == 3 && !strncmp(s + start, "min", 3)) || (n == 3 && !strncmp(s + start, "max", 3))) {
      ExprNode *e = mk(ps, s[start + 1] == 'i' ? E_MIN : E_MAX, start);
      e->len = n;
      ps->p = q;
      if (!accept(ps, "("))
        return perr(ps, ps->p, 1, "expected '(' after min/max"), NULL;
      PtrVec args = {0};
      do {
        ExprNode *x = parse_expr(ps);
        if (!x)
          return NULL;
        ptrvec_push(ps->c->tmp, &args, x);
      } while (accept(ps, ","));
      if (!accept(ps, ")"))
        return perr(ps, ps->p, 1, "expected ')' or ','"), NULL;
      if (args.len < 2)
        return perr(ps, start, n, "min and max take at least two arguments"), NULL;
      e->args = (ExprNode **)args.items;
      e->nargs = args.len;
      return e;
    }
    char *word = arena_strndup(ps->c->tmp, s + start, (size_t)n);
    perr(ps, start, n,
         arena_printf(ps->c->tmp,
                      "unknown name '%s' (parameters are written '$%s', "
                      "strings in quotes)",
                      word, word));
    return NULL;
  }
  if (!ch)
    return perr(ps, start, 1, "unexpected end of expression"), NULL;
  return perr(ps, start, 1, arena_printf(ps->c->tmp, "unexpected character '%c'", ch)), NULL;
}

/* unary := ('-' | '+' | 'not') unary | primary */
static ExprNode *parse_unary(Parser *ps) {
  if (++ps->depth > 100)
    return perr(ps, ps->p, 1, "expression nested too deeply"), NULL;
  skip_ws(ps);
  int pos = ps->p;
  ExprNode *e;
  if (accept(ps, "-")) {
    ExprNode *x = parse_unary(ps);
    if (!x)
      return NULL;
    e = mk(ps, E_NEG, pos);
    e->a = x;
  } else if (accept(ps, "+")) {
    e = parse_unary(ps);
  } else if (accept(ps, "not")) {
    ExprNode *x = parse_unary(ps);
    if (!x)
      return NULL;
    e = mk(ps, E_NOT, pos);
    e->len = 3;
    e->a = x;
  } else {
    e = parse_primary(ps);
  }
  ps->depth--;
  return e;
}

static ExprNode *binary(Parser *ps, EKind k, int pos, int len, ExprNode *a, ExprNode *b) {
  ExprNode *e = mk(ps, k, pos);
  e->len = len;
  e->a = a;
  e->b2 = b;
  return e;
}

/* mul := unary (('*' | '//' | '/' | '%') unary)* */
static ExprNode *parse_mul(Parser *ps) {
  ExprNode *e = parse_unary(ps);
  while (e) {
    skip_ws(ps);
    int pos = ps->p;
    EKind k;
    int len = 1;
    if (accept(ps, "*"))
      k = E_MUL;
    else if (accept(ps, "//"))
      k = E_FLOORDIV, len = 2;
    else if (accept(ps, "/"))
      k = E_DIV;
    else if (accept(ps, "%"))
      k = E_MOD;
    else
      break;
    ExprNode *r = parse_unary(ps);
    if (!r)
      return NULL;
    e = binary(ps, k, pos, len, e, r);
  }
  return e;
}

/* add := mul (('+' | '-') mul)* */
static ExprNode *parse_add(Parser *ps) {
  ExprNode *e = parse_mul(ps);
  while (e) {
    skip_ws(ps);
    int pos = ps->p;
    EKind k;
    if (accept(ps, "+"))
      k = E_ADD;
    else if (accept(ps, "-"))
      k = E_SUB;
    else
      break;
    ExprNode *r = parse_mul(ps);
    if (!r)
      return NULL;
    e = binary(ps, k, pos, 1, e, r);
  }
  return e;
}

/* cmp := add (('==' | '!=' | '<=' | '>=' | '<' | '>') add)? */
static ExprNode *parse_cmp(Parser *ps) {
  ExprNode *e = parse_add(ps);
  if (!e)
    return NULL;
  skip_ws(ps);
  int pos = ps->p;
  static const struct {
    const char *t;
    EKind k;
  } ops[] = {{"==", E_EQ}, {"!=", E_NE}, {"<=", E_LE}, {">=", E_GE}, {"<", E_LT}, {">", E_GT}};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    if (accept(ps, ops[i].t)) {
      ExprNode *r = parse_add(ps);
      if (!r)
        return NULL;
      return binary(ps, ops[i].k, pos, (int)strlen(ops[i].t), e, r);
    }
  }
  return e;
}

/* and := cmp ('and' cmp)* */
static ExprNode *parse_and(Parser *ps) {
  ExprNode *e = parse_cmp(ps);
  while (e) {
    skip_ws(ps);
    int pos = ps->p;
    if (!accept(ps, "and"))
      break;
    ExprNode *r = parse_cmp(ps);
    if (!r)
      return NULL;
    e = binary(ps, E_AND, pos, 3, e, r);
  }
  return e;
}

/* or := and ('or' and)* */
static ExprNode *parse_or(Parser *ps) {
  ExprNode *e = parse_and(ps);
  while (e) {
    skip_ws(ps);
    int pos = ps->p;
    if (!accept(ps, "or"))
      break;
    ExprNode *r = parse_and(ps);
    if (!r)
      return NULL;
    e = binary(ps, E_OR, pos, 2, e, r);
  }
  return e;
}

/* expr := or ('?' expr ':' expr)? */
static ExprNode *parse_expr(Parser *ps) {
  if (++ps->depth > 100)
    return perr(ps, ps->p, 1, "expression nested too deeply"), NULL;
  ExprNode *e = parse_or(ps);
  if (e) {
    skip_ws(ps);
    int pos = ps->p;
    if (accept(ps, "?")) {
      ExprNode *t = parse_expr(ps);
      if (!t)
        return NULL;
      if (!accept(ps, ":"))
        return perr(ps, ps->p, 1, "expected ':' of '? :'"), NULL;
      ExprNode *f = parse_expr(ps);
      if (!f)
        return NULL;
      ExprNode *x = mk(ps, E_COND, pos);
      x->a = e;
      x->b2 = t;
      x->c = f;
      e = x;
    }
  }
  ps->depth--;
  return e;
}

/* The parsed expression of scalar y (cached), or NULL after an error. */
static ExprNode *parse_scalar(SpecCtx *c, YNode *y) {
  if (y->expr_done)
    return y->expr_bad ? NULL : y->expr;
  y->expr_done = true;
  Parser ps = {.c = c, .y = y, .s = y->str};
  ExprNode *e = parse_expr(&ps);
  if (e) {
    skip_ws(&ps);
    if (ps.s[ps.p]) {
      perr(&ps, ps.p, 1,
           arena_printf(c->tmp, "unexpected '%c' after the end of the expression", ps.s[ps.p]));
      e = NULL;
    }
  }
  y->expr = e;
  y->expr_bad = e == NULL;
  return e;
}

/* ------------------------------------------------------------- evaluation */

typedef struct {
  SpecCtx *c;
  const YNode *y;
  const Env *env;
} Eval;

static bool eerr(Eval *ev, const ExprNode *e, const char *fmt, const char *a, const char *b) {
  char msg[512];
  snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
  spec_error(ev->c, loc_at(ev->y, e->pos), e->len, "%s", msg);
  return false;
}

static bool is_num(const Value *v) { return v->kind == V_INT || v->kind == V_FLOAT; }
static double as_f(const Value *v) { return v->kind == V_INT ? (double)v->i : v->f; }

static bool eval(Eval *ev, const ExprNode *e, Value *out);

static bool eval_bool(Eval *ev, const ExprNode *e, bool *b, const char *what) {
  Value v;
  if (!eval(ev, e, &v))
    return false;
  if (v.kind != V_BOOL)
    return eerr(ev, e, "%s needs a boolean, got %s", what, expr_describe(ev->c->tmp, &v));
  *b = v.b;
  return true;
}

static bool overflow(Eval *ev, const ExprNode *e) {
  return eerr(ev, e, "integer overflow in expression", NULL, NULL);
}

static bool arith(Eval *ev, const ExprNode *e, const Value *a, const Value *b, Value *out) {
  static const char *names[] = {[E_ADD] = "+", [E_SUB] = "-",       [E_MUL] = "*",
                                [E_DIV] = "/", [E_FLOORDIV] = "//", [E_MOD] = "%"};
  if (e->kind == E_ADD && a->kind == V_STR && b->kind == V_STR) {
    out->kind = V_STR;
    out->s = arena_printf(ev->c->tmp, "%s%s", a->s, b->s);
    return true;
  }
  if (!is_num(a) || !is_num(b)) {
    char m[128];
    snprintf(m, sizeof m, "'%s' needs numbers, got %%s and %%s", names[e->kind]);
    return eerr(ev, e, m, kind_name(a->kind), kind_name(b->kind));
  }
  memset(out, 0, sizeof *out);
  if ((e->kind == E_DIV || e->kind == E_FLOORDIV || e->kind == E_MOD) && as_f(b) == 0)
    return eerr(ev, e, "division by zero", NULL, NULL);
  if (a->kind == V_INT && b->kind == V_INT) {
    int64_t x = a->i, y = b->i, r = 0;
    out->kind = V_INT;
    switch (e->kind) {
    case E_ADD:
      if (__builtin_add_overflow(x, y, &r))
        return overflow(ev, e);
      break;
    case E_SUB:
      if (__builtin_sub_overflow(x, y, &r))
        return overflow(ev, e);
      break;
    case E_MUL:
      if (__builtin_mul_overflow(x, y, &r))
        return overflow(ev, e);
      break;
    case E_DIV:
      if (x == INT64_MIN && y == -1)
        return overflow(ev, e);
      if (x % y == 0) {
        r = x / y;
      } else {
        out->kind = V_FLOAT;
        out->f = (double)x / (double)y;
        return true;
      }
      break;
    case E_FLOORDIV:
    case E_MOD: {
      if (x == INT64_MIN && y == -1)
        return overflow(ev, e);
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        q--;
        m += y;
      }
      r = e->kind == E_FLOORDIV ? q : m;
      break;
    }
    default:
      break;
    }
    out->i = r;
    return true;
  }
  double x = as_f(a), y = as_f(b), r = 0;
  switch (e->kind) {
  case E_ADD:
    r = x + y;
    break;
  case E_SUB:
    r = x - y;
    break;
  case E_MUL:
    r = x * y;
    break;
  case E_DIV:
    r = x / y;
    break;
  case E_FLOORDIV:
    r = floor(x / y);
    break;
  case E_MOD:
    r = x - floor(x / y) * y;
    break;
  default:
    break;
  }
  if (!isfinite(r))
    return eerr(ev, e, "the result is not a finite number", NULL, NULL);
  out->kind = V_FLOAT;
  out->f = r;
  return true;
}

static bool compare(Eval *ev, const ExprNode *e, const Value *a, const Value *b, Value *out) {
  int cmp;
  bool ordered = true;
  if (is_num(a) && is_num(b)) {
    if (a->kind == V_INT && b->kind == V_INT)
      cmp = a->i < b->i ? -1 : a->i > b->i;
    else
      cmp = as_f(a) < as_f(b) ? -1 : as_f(a) > as_f(b);
  } else if (a->kind == b->kind && a->kind == V_STR) {
    cmp = strcmp(a->s, b->s);
  } else if (a->kind == b->kind && a->kind == V_BOOL) {
    cmp = a->b != b->b;
    ordered = false;
  } else if (a->kind == b->kind && a->kind == V_NULL) {
    cmp = 0;
    ordered = false;
  } else {
    return eerr(ev, e, "cannot compare %s with %s", kind_name(a->kind), kind_name(b->kind));
  }
  if (!ordered && e->kind != E_EQ && e->kind != E_NE)
    return eerr(ev, e, "cannot order %ss", kind_name(a->kind), NULL);
  memset(out, 0, sizeof *out);
  out->kind = V_BOOL;
  switch (e->kind) {
  case E_EQ:
    out->b = cmp == 0;
    break;
  case E_NE:
    out->b = cmp != 0;
    break;
  case E_LT:
    out->b = cmp < 0;
    break;
  case E_LE:
    out->b = cmp <= 0;
    break;
  case E_GT:
    out->b = cmp > 0;
    break;
  case E_GE:
    out->b = cmp >= 0;
    break;
  default:
    break;
  }
  return true;
}

static bool eval(Eval *ev, const ExprNode *e, Value *out) {
  memset(out, 0, sizeof *out);
  switch (e->kind) {
  case E_INT:
    out->kind = V_INT;
    out->i = e->i;
    return true;
  case E_FLOAT:
    out->kind = V_FLOAT;
    out->f = e->f;
    return true;
  case E_BOOL:
    out->kind = V_BOOL;
    out->b = e->b;
    return true;
  case E_STR:
    out->kind = V_STR;
    out->s = e->s;
    return true;
  case E_VAR: {
    for (const Env *x = ev->env; x; x = x->up) {
      if (strcmp(x->name, e->s) == 0) {
        if (x->poisoned)
          return false; /* reported where it was bound */
        *out = x->v;
        return true;
      }
    }
    spec_error(ev->c, loc_at(ev->y, e->pos), e->len, "unknown parameter '$%s'", e->s);
    PtrVec names = {0};
    for (const Env *x = ev->env; x; x = x->up)
      ptrvec_push(ev->c->tmp, &names, arena_printf(ev->c->tmp, "%s", x->name));
    const char *best = diag_suggest(e->s, (const char *const *)names.items, names.len);
    if (best)
      spec_note(ev->c, loc_at(ev->y, e->pos), 0, "did you mean '$%s'?", best);
    return false;
  }
  case E_NEG: {
    Value v;
    if (!eval(ev, e->a, &v))
      return false;
    if (v.kind == V_INT) {
      if (v.i == INT64_MIN)
        return overflow(ev, e);
      out->kind = V_INT;
      out->i = -v.i;
      return true;
    }
    if (v.kind == V_FLOAT) {
      out->kind = V_FLOAT;
      out->f = -v.f;
      return true;
    }
    return eerr(ev, e, "'-' needs a number, got %s", expr_describe(ev->c->tmp, &v), NULL);
  }
  case E_NOT: {
    bool b;
    if (!eval_bool(ev, e->a, &b, "'not'"))
      return false;
    out->kind = V_BOOL;
    out->b = !b;
    return true;
  }
  case E_AND:
  case E_OR: {
    bool b;
    const char *what = e->kind == E_AND ? "'and'" : "'or'";
    if (!eval_bool(ev, e->a, &b, what))
      return false;
    if (b == (e->kind == E_AND) && !eval_bool(ev, e->b2, &b, what))
      return false;
    out->kind = V_BOOL;
    out->b = b;
    return true;
  }
  case E_COND: {
    bool b;
    if (!eval_bool(ev, e->a, &b, "'? :'"))
      return false;
    return eval(ev, b ? e->b2 : e->c, out);
  }
  case E_MIN:
  case E_MAX: {
    Value best;
    for (int i = 0; i < e->nargs; i++) {
      Value v;
      if (!eval(ev, e->args[i], &v))
        return false;
      if (!is_num(&v))
        return eerr(ev, e->args[i], "min/max need numbers, got %s", expr_describe(ev->c->tmp, &v),
                    NULL);
      bool better = i == 0;
      if (!better) {
        bool lt = (v.kind == V_INT && best.kind == V_INT) ? v.i < best.i : as_f(&v) < as_f(&best);
        bool gt = (v.kind == V_INT && best.kind == V_INT) ? v.i > best.i : as_f(&v) > as_f(&best);
        better = e->kind == E_MIN ? lt : gt;
      }
      if (better)
        best = v;
    }
    *out = best;
    return true;
  }
  case E_EQ:
  case E_NE:
  case E_LT:
  case E_LE:
  case E_GT:
  case E_GE:
  case E_ADD:
  case E_SUB:
  case E_MUL:
  case E_DIV:
  case E_FLOORDIV:
  case E_MOD: {
    Value a, b;
    if (!eval(ev, e->a, &a) || !eval(ev, e->b2, &b))
      return false;
    if (e->kind >= E_EQ)
      return compare(ev, e, &a, &b, out);
    return arith(ev, e, &a, &b, out);
  }
  }
  return false;
}

bool expr_value(SpecCtx *c, YNode *y, const Env *env, Value *out) {
  memset(out, 0, sizeof *out);
  switch (y->kind) {
  case Y_MAP:
    out->kind = V_MAP;
    return true;
  case Y_SEQ: {
    out->kind = V_LIST;
    out->n = y->n;
    out->items = arena_alloc(c->tmp, sizeof(Value) * (size_t)(y->n ? y->n : 1));
    bool ok = true;
    for (int i = 0; i < y->n; i++)
      ok = expr_value(c, y->items[i], env, &out->items[i]) && ok;
    return ok;
  }
  case Y_SCALAR:
    break;
  }
  if (!strchr(y->str, '$')) {
    *out = expr_literal(y);
    if (out->kind == V_FLOAT && is_int_text(y->str))
      return spec_error_at(c, y, "integer %s is out of range", y->str);
    if (out->kind == V_FLOAT && !isfinite(out->f))
      return spec_error_at(c, y, "number %s is out of range", y->str);
    return true;
  }
  ExprNode *e = parse_scalar(c, y);
  if (!e)
    return false;
  Eval ev = {c, y, env};
  return eval(&ev, e, out);
}

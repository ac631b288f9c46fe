/* SPDX-License-Identifier: Apache-2.0 */
/* Parser and type checker for IAM Conditions: a recursive-descent parser
 * over CEL's precedence levels that builds a flat node array, checks every
 * operand's static type, and folds what can be known before any request
 * (timestamp/date/duration literals, fixed time zones, extract()
 * templates), so that evaluation is a walk that neither allocates nor
 * re-parses. It enforces the length, nesting and logical-operator limits
 * of include/wisp/cond.h. It does not evaluate anything. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "wisp/alloc.h"
#include "iam/cond_int.h"

/* More nodes than any 2048-byte expression can produce (each node needs at
 * least one token of its own); a guard, not a tuning knob. */
#define MAX_NODES 4096
#define MAX_ARGS 4

struct parser {
    struct cond_lexer lx;
    const char *src;         /* borrowed from the caller */
    size_t len;              /* bytes of src */
    struct cond_node *nodes; /* grows by doubling; indexes stay valid */
    size_t n_nodes;
    size_t cap;
    int depth;     /* current nesting: parentheses, calls, lists, unary operators */
    int n_logical; /* &&, || and ! seen so far */
    unsigned attrs;
    int failed;
    char *msg; /* caller's message slot, may be NULL */
    size_t msglen;
};

#define N(p, i) (&(p)->nodes[(i)])

/* --- messages ----------------------------------------------------------------- */

/* Records the first failure as "at line L, column C: problem". Columns
 * count code points, as CEL's own messages do. Later failures (the callers
 * unwinding) are ignored. Returns -1 so callers can `return fail(...)`. */
static int32_t fail(struct parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int32_t fail(struct parser *p, size_t pos, const char *fmt, ...)
{
    if (p->failed)
        return -1;
    p->failed = 1;
    if (!p->msg || p->msglen == 0)
        return -1;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < p->len; i++) {
        unsigned char ch = (unsigned char)p->src[i];
        if (ch == '\n') {
            line++;
            col = 1;
        } else if ((ch & 0xc0) != 0x80) {
            col++;
        }
    }
    int n = snprintf(p->msg, p->msglen, "at line %zu, column %zu: ", line, col);
    if (n >= 0 && (size_t)n < p->msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->msg + n, p->msglen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    /* Everything formatted in is escaped already; this is the backstop
     * that keeps the message one printable line whatever slipped in. */
    for (char *s = p->msg; *s; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
    }
    return -1;
}

/* Copies bytes into buf for quoting in a message: printable ASCII as is,
 * ' and \ and everything else as \xNN, cut at about 48 bytes with "...". */
static const char *quote(char *buf, size_t bufsz, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (o + 8 >= bufsz || i >= 48) {
            snprintf(buf + o, bufsz - o, "...");
            return buf;
        }
        if (ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '\\')
            buf[o++] = (char)ch;
        else
            o += (size_t)snprintf(buf + o, bufsz - o, "\\x%02x", ch);
    }
    buf[o] = '\0';
    return buf;
}

static const char *type_name(int t)
{
    switch (t) {
    case CT_BOOL:
        return "bool";
    case CT_INT:
        return "int";
    case CT_STRING:
        return "string";
    case CT_TIMESTAMP:
        return "timestamp";
    case CT_DURATION:
        return "duration";
    case CT_LIST:
        return "list";
    default:
        return "any";
    }
}

/* The current token is not what the grammar needs here. A lexer error is
 * reported as itself, since it is the real cause. */
static int32_t tok_fail(struct parser *p, const char *expected)
{
    const struct cond_token *t = &p->lx.tok;
    if (t->kind == TK_ERROR)
        return fail(p, p->lx.err_pos, "%s", p->lx.err);
    if (t->kind == TK_IDENT)
        return fail(p, t->pos, "expected %s, got '%.*s'", expected,
                    (int)(t->len > 64 ? 64 : t->len), p->src + t->pos);
    return fail(p, t->pos, "expected %s, got %s", expected, wisp__cond_tok_name(t->kind));
}

/* --- tokens and nodes --------------------------------------------------------- */

static void advance(struct parser *p)
{
    wisp__cond_lex_next(&p->lx);
}

static int tok_is(const struct parser *p, const char *word)
{
    const struct cond_token *t = &p->lx.tok;
    return t->kind == TK_IDENT && strlen(word) == t->len &&
           memcmp(p->src + t->pos, word, t->len) == 0;
}

static int expect(struct parser *p, enum cond_tok kind)
{
    if (p->lx.tok.kind != kind)
        return tok_fail(p, wisp__cond_tok_name(kind));
    advance(p);
    return 0;
}

/* Nesting guard for everything that recurses in the parser, so a run of
 * '(' or '!' cannot exhaust the stack. */
static int enter(struct parser *p, size_t pos)
{
    if (++p->depth > WISP_COND_MAX_DEPTH)
        return fail(p, pos, "expression nests deeper than %d levels", WISP_COND_MAX_DEPTH);
    return 0;
}

static void leave(struct parser *p)
{
    p->depth--;
}

/* Google documents at most 12 logical operators per condition; counting
 * them also bounds the work an expression can ask for. */
static int count_logical(struct parser *p, size_t pos)
{
    if (++p->n_logical > WISP_COND_MAX_LOGICAL)
        return fail(p, pos, "more than %d logical operators (&&, ||, !) in one condition",
                    WISP_COND_MAX_LOGICAL);
    return 0;
}

/* A new node over operands a and b (-1 for none). Its height bounds the
 * evaluator's recursion, so it is checked here against the same limit as
 * the parser's nesting: left-associative chains like 1+1+1+... grow the
 * tree without any parenthesis. */
static int32_t node_new(struct parser *p, enum cond_op op, enum cond_type type, size_t pos,
                        int32_t a, int32_t b)
{
    int h = 0;
    if (a >= 0)
        h = N(p, a)->height;
    if (b >= 0 && N(p, b)->height > h)
        h = N(p, b)->height;
    if (h + 1 > WISP_COND_MAX_DEPTH)
        return fail(p, pos, "expression nests deeper than %d levels", WISP_COND_MAX_DEPTH);
    if (p->n_nodes == p->cap) {
        if (p->cap >= MAX_NODES)
            return fail(p, pos, "expression is too complex");
        p->cap *= 2;
        p->nodes = wisp_xrealloc(p->nodes, p->cap * sizeof *p->nodes);
    }
    int32_t i = (int32_t)p->n_nodes++;
    struct cond_node *n = N(p, i);
    memset(n, 0, sizeof *n);
    n->op = (uint8_t)op;
    n->type = (uint8_t)type;
    n->height = (uint8_t)(h + 1);
    n->a = a;
    n->b = b;
    n->next = -1;
    n->pos = (uint32_t)pos;
    return i;
}

static int need_type(struct parser *p, int32_t i, enum cond_type t, size_t pos, const char *what)
{
    if (N(p, i)->type != t)
        return fail(p, pos, "%s needs %s, got %s", what, type_name(t), type_name(N(p, i)->type));
    return 0;
}

/* The bytes of a string constant, in the pool. */
static const char *const_str(const struct parser *p, int32_t i, size_t *len_out)
{
    *len_out = N(p, i)->u.s.len;
    return p->lx.pool + N(p, i)->u.s.off;
}

/* --- expressions -------------------------------------------------------------------- */

static int32_t parse_or(struct parser *p);

/* '(' args ')' with the cursor on '('. */
static int parse_args(struct parser *p, int32_t *args, int *n_out)
{
    size_t open = p->lx.tok.pos;
    if (enter(p, open) != 0)
        return -1;
    advance(p);
    int n = 0;
    if (p->lx.tok.kind != TK_RPAREN) {
        for (;;) {
            size_t at = p->lx.tok.pos;
            int32_t a = parse_or(p);
            if (a < 0)
                return -1;
            if (n == MAX_ARGS)
                return fail(p, at, "too many arguments");
            args[n++] = a;
            if (p->lx.tok.kind != TK_COMMA)
                break;
            advance(p);
        }
    }
    if (p->lx.tok.kind != TK_RPAREN)
        return tok_fail(p, "',' or ')'");
    advance(p);
    leave(p);
    *n_out = n;
    return 0;
}

/* timestamp(s), date(s), duration(s). A constant argument is converted
 * now and the string node becomes the result; if the conversion fails the
 * node becomes a constant error, because CEL reports bad literals when
 * evaluating (WIRE.md §4.4: "invalid input ⇒ condition never grants"). */
static int32_t conversion(struct parser *p, const char *fname, enum cond_op op, enum cond_type type,
                          size_t pos, const int32_t *args, int n)
{
    if (n != 1)
        return fail(p, pos, "%s() takes 1 argument, got %d", fname, n);
    char what[48];
    snprintf(what, sizeof what, "%s()", fname);
    if (need_type(p, args[0], CT_STRING, N(p, args[0])->pos, what) != 0)
        return -1;
    struct cond_node *a = N(p, args[0]);
    if (a->op != OP_CONST)
        return node_new(p, op, type, pos, args[0], -1);
    size_t len;
    const char *s = const_str(p, args[0], &len);
    int rc;
    if (op == OP_TIMESTAMP) {
        struct cond_ts ts;
        rc = wisp__cond_parse_timestamp(s, len, &ts);
        a->u.ts = ts;
    } else if (op == OP_DATE) {
        struct cond_ts ts;
        rc = wisp__cond_parse_date(s, len, &ts);
        a->u.ts = ts;
    } else {
        int64_t ns;
        rc = wisp__cond_parse_duration(s, len, &ns);
        a->u.i = ns;
    }
    if (rc != 0)
        memset(&a->u, 0, sizeof a->u);
    a->op = rc == 0 ? OP_CONST : OP_CONST_ERR;
    a->type = (uint8_t)type;
    return args[0];
}

/* CEL functions wisp knows of but does not provide, to say so plainly
 * instead of "unknown function". */
static const char *const unsupported_functions[] = {
    "size", "int",     "uint",     "double", "string", "bytes",      "bool", "dyn",    "type",
    "has",  "matches", "contains", "exists", "all",    "exists_one", "map",  "filter", NULL,
};

static int32_t parse_call(struct parser *p, size_t pos, size_t name_len)
{
    const char *name = p->src + pos;
    int32_t args[MAX_ARGS];
    int n = 0;
    static const struct {
        const char *name;
        enum cond_op op;
        enum cond_type type;
    } conv[] = {
        {"timestamp", OP_TIMESTAMP, CT_TIMESTAMP},
        {"date", OP_DATE, CT_TIMESTAMP},
        {"duration", OP_DURATION, CT_DURATION},
    };
    for (size_t i = 0; i < sizeof conv / sizeof conv[0]; i++) {
        if (strlen(conv[i].name) == name_len && memcmp(conv[i].name, name, name_len) == 0) {
            if (parse_args(p, args, &n) != 0)
                return -1;
            return conversion(p, conv[i].name, conv[i].op, conv[i].type, pos, args, n);
        }
    }
    int nl = (int)(name_len > 64 ? 64 : name_len);
    for (int i = 0; unsupported_functions[i]; i++) {
        if (strlen(unsupported_functions[i]) == name_len &&
            memcmp(unsupported_functions[i], name, name_len) == 0)
            return fail(p, pos, "function '%.*s' is not supported in IAM conditions", nl, name);
    }
    return fail(p, pos, "unknown function '%.*s' (supported: timestamp, date, duration)", nl, name);
}

static const struct {
    const char *root, *field;
    enum cond_attr attr;
    enum cond_type type;
} attributes[] = {
    {"resource", "name", ATTR_RESOURCE_NAME, CT_STRING},
    {"resource", "type", ATTR_RESOURCE_TYPE, CT_STRING},
    {"resource", "service", ATTR_RESOURCE_SERVICE, CT_STRING},
    {"request", "time", ATTR_REQUEST_TIME, CT_TIMESTAMP},
};

#define KNOWN_ATTRS "resource.name, resource.type, resource.service, request.time"

/* resource.X or request.X; the cursor is on the root identifier. The
 * attribute is one node: CEL's field selection is not offered on values. */
static int32_t parse_attribute(struct parser *p)
{
    size_t pos = p->lx.tok.pos;
    const char *root = p->src + pos;
    size_t root_len = p->lx.tok.len;
    advance(p);
    if (p->lx.tok.kind != TK_DOT)
        return fail(p, pos, "'%.*s' alone is not a value; use an attribute (%s)", (int)root_len,
                    root, KNOWN_ATTRS);
    advance(p);
    if (p->lx.tok.kind != TK_IDENT)
        return tok_fail(p, "an attribute name");
    const char *field = p->src + p->lx.tok.pos;
    size_t field_len = p->lx.tok.len;
    int fl = (int)(field_len > 64 ? 64 : field_len);
    for (size_t i = 0; i < sizeof attributes / sizeof attributes[0]; i++) {
        if (strlen(attributes[i].root) == root_len &&
            memcmp(attributes[i].root, root, root_len) == 0 &&
            strlen(attributes[i].field) == field_len &&
            memcmp(attributes[i].field, field, field_len) == 0) {
            advance(p);
            int32_t n = node_new(p, OP_ATTR, attributes[i].type, pos, -1, -1);
            if (n >= 0) {
                N(p, n)->aux = (uint8_t)attributes[i].attr;
                p->attrs |= 1u << attributes[i].attr;
            }
            return n;
        }
    }
    static const char *const tag_fns[] = {"hasTagKey", "hasTagKeyId", "matchTag", "matchTagId",
                                          NULL};
    if (root_len == 8 && memcmp(root, "resource", 8) == 0) {
        for (int i = 0; tag_fns[i]; i++) {
            if (strlen(tag_fns[i]) == field_len && memcmp(tag_fns[i], field, field_len) == 0)
                return fail(p, pos, "resource tags (resource.%.*s) are not supported by wisp", fl,
                            field);
        }
    }
    return fail(p, pos, "unknown attribute '%.*s.%.*s' (supported: %s)", (int)root_len, root, fl,
                field, KNOWN_ATTRS);
}

/* '[' elements ']' with the cursor on '['. All elements share one type;
 * an empty list matches nothing. A trailing comma is allowed, as in CEL. */
static int32_t parse_list(struct parser *p)
{
    size_t pos = p->lx.tok.pos;
    if (enter(p, pos) != 0)
        return -1;
    advance(p);
    int32_t first = -1, last = -1;
    int elem_type = CT_ANY;
    int h = 0;
    while (p->lx.tok.kind != TK_RBRACK) {
        size_t at = p->lx.tok.pos;
        int32_t e = parse_or(p);
        if (e < 0)
            return -1;
        int t = N(p, e)->type;
        if (t == CT_LIST)
            return fail(p, at, "lists of lists are not supported");
        if (elem_type == CT_ANY)
            elem_type = t;
        else if (t != elem_type)
            return fail(p, at, "list mixes %s and %s elements", type_name(elem_type), type_name(t));
        if (last < 0)
            first = e;
        else
            N(p, last)->next = e;
        last = e;
        if (N(p, e)->height > h)
            h = N(p, e)->height;
        if (p->lx.tok.kind == TK_COMMA)
            advance(p);
        else if (p->lx.tok.kind != TK_RBRACK)
            return tok_fail(p, "',' or ']'");
    }
    advance(p);
    leave(p);
    if (h + 1 > WISP_COND_MAX_DEPTH)
        return fail(p, pos, "expression nests deeper than %d levels", WISP_COND_MAX_DEPTH);
    int32_t n = node_new(p, OP_LIST, CT_LIST, pos, -1, -1);
    if (n < 0)
        return -1;
    N(p, n)->a = first;
    N(p, n)->aux = (uint8_t)elem_type;
    N(p, n)->height = (uint8_t)(h + 1);
    return n;
}

static int32_t parse_primary(struct parser *p)
{
    const struct cond_token *t = &p->lx.tok;
    size_t pos = t->pos;
    int32_t n;
    switch (t->kind) {
    case TK_INT:
        n = node_new(p, OP_CONST, CT_INT, pos, -1, -1);
        if (n < 0)
            return -1;
        if (t->u64 > (uint64_t)INT64_MAX) {
            /* 2^63: legal only under a unary minus, which clears aux. */
            N(p, n)->u.i = INT64_MIN;
            N(p, n)->aux = 1;
        } else {
            N(p, n)->u.i = (int64_t)t->u64;
        }
        advance(p);
        return n;
    case TK_STRING:
        n = node_new(p, OP_CONST, CT_STRING, pos, -1, -1);
        if (n < 0)
            return -1;
        N(p, n)->u.s.off = t->str_off;
        N(p, n)->u.s.len = t->str_len;
        advance(p);
        return n;
    case TK_LPAREN:
        if (enter(p, pos) != 0)
            return -1;
        advance(p);
        n = parse_or(p);
        if (n < 0 || expect(p, TK_RPAREN) != 0)
            return -1;
        leave(p);
        return n;
    case TK_LBRACK:
        return parse_list(p);
    case TK_IDENT:
        break;
    default:
        return tok_fail(p, "an expression");
    }
    if (tok_is(p, "true") || tok_is(p, "false")) {
        n = node_new(p, OP_CONST, CT_BOOL, pos, -1, -1);
        if (n < 0)
            return -1;
        N(p, n)->u.b = tok_is(p, "true");
        advance(p);
        return n;
    }
    if (tok_is(p, "null"))
        return fail(p, pos, "null is not supported");
    if (tok_is(p, "resource") || tok_is(p, "request"))
        return parse_attribute(p);
    size_t len = t->len;
    advance(p);
    if (p->lx.tok.kind == TK_LPAREN)
        return parse_call(p, pos, len);
    return fail(p, pos, "unknown identifier '%.*s' (supported attributes: %s)",
                (int)(len > 64 ? 64 : len), p->src + pos, KNOWN_ATTRS);
}

static const struct {
    const char *name;
    enum cond_getter g;
    int on_duration; /* also defined on durations (as totals) */
} getters[] = {
    {"getFullYear", GET_FULL_YEAR, 0},
    {"getMonth", GET_MONTH, 0},
    {"getDate", GET_DATE, 0},
    {"getDayOfMonth", GET_DAY_OF_MONTH, 0},
    {"getDayOfWeek", GET_DAY_OF_WEEK, 0},
    {"getDayOfYear", GET_DAY_OF_YEAR, 0},
    {"getHours", GET_HOURS, 1},
    {"getMinutes", GET_MINUTES, 1},
    {"getSeconds", GET_SECONDS, 1},
    {"getMilliseconds", GET_MILLISECONDS, 1},
};

/* extract("prefix{name}suffix"): exactly one {name}, name [A-Za-z0-9_]+,
 * no other braces. Split once here; the evaluator only searches. */
static int32_t method_extract(struct parser *p, int32_t recv, size_t pos, const int32_t *args,
                              int n)
{
    if (n != 1)
        return fail(p, pos, "extract() takes 1 argument, got %d", n);
    struct cond_node *a = N(p, args[0]);
    if (a->op != OP_CONST || a->type != CT_STRING)
        return fail(p, a->pos, "extract() takes a string literal template like \"projects/{p}/\"");
    size_t len;
    const char *s = const_str(p, args[0], &len);
    const char *open = memchr(s, '{', len);
    const char *close = open ? memchr(open, '}', len - (size_t)(open - s)) : NULL;
    int ok = open && close && close > open + 1;
    for (const char *c = open ? open + 1 : s; ok && c < close; c++) {
        ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
             *c == '_';
    }
    if (ok) {
        /* No stray brace before the placeholder or after it. */
        ok = !memchr(s, '}', (size_t)(open - s)) &&
             !memchr(close + 1, '{', len - (size_t)(close + 1 - s)) &&
             !memchr(close + 1, '}', len - (size_t)(close + 1 - s));
    }
    if (!ok) {
        char q[64];
        return fail(p, a->pos, "invalid extract() template '%s'; expected prefix{name}suffix",
                    quote(q, sizeof q, s, len));
    }
    uint32_t off = a->u.s.off;
    int32_t x = node_new(p, OP_EXTRACT, CT_STRING, pos, recv, -1);
    if (x < 0)
        return -1;
    struct cond_node *e = N(p, x);
    e->u.tpl.pre_off = off;
    e->u.tpl.pre_len = (uint32_t)(open - s);
    e->u.tpl.suf_off = off + (uint32_t)(close + 1 - s);
    e->u.tpl.suf_len = (uint32_t)(len - (size_t)(close + 1 - s));
    return x;
}

/* recv.getX([tz]) on a timestamp, or recv.getX() on a duration. */
static int32_t method_getter(struct parser *p, int32_t recv, size_t pos, const char *name, int gi,
                             const int32_t *args, int n)
{
    int rt = N(p, recv)->type;
    if (rt == CT_DURATION) {
        if (!getters[gi].on_duration)
            return fail(p, pos, "%s() is not defined on a duration", name);
        if (n != 0)
            return fail(p, pos, "%s() on a duration takes no arguments", name);
        int32_t x = node_new(p, OP_DUR_GET, CT_INT, pos, recv, -1);
        if (x >= 0)
            N(p, x)->aux = (uint8_t)getters[gi].g;
        return x;
    }
    if (n > 1)
        return fail(p, pos, "%s() takes at most 1 argument (a time zone), got %d", name, n);
    if (n == 1 && need_type(p, args[0], CT_STRING, N(p, args[0])->pos, "a time zone") != 0)
        return -1;
    int runtime_tz = n == 1 && N(p, args[0])->op != OP_CONST;
    int32_t x = node_new(p, OP_TS_GET, CT_INT, pos, recv, runtime_tz ? args[0] : -1);
    if (x < 0)
        return -1;
    struct cond_node *g = N(p, x);
    g->aux = (uint8_t)getters[gi].g;
    if (runtime_tz) {
        g->tz = TZ_RUNTIME;
    } else if (n == 0) {
        g->tz = TZ_FIXED; /* CEL's default zone is UTC */
        g->u.i = 0;
    } else {
        size_t len;
        const char *s = const_str(p, args[0], &len);
        int32_t off;
        if (wisp__cond_parse_tz(s, len, &off) == 0) {
            g->tz = TZ_FIXED;
            g->u.i = off;
        } else {
            g->tz = TZ_BAD; /* named IANA zone or junk: an error when evaluated */
        }
    }
    return x;
}

/* recv.name(args) with the cursor on '('. */
static int32_t parse_method(struct parser *p, int32_t recv, size_t pos, size_t name_len)
{
    const char *name = p->src + pos;
    int nl = (int)(name_len > 64 ? 64 : name_len);
    char nm[72];
    snprintf(nm, sizeof nm, "%.*s", nl, name);
    int32_t args[MAX_ARGS];
    int n = 0;
    if (parse_args(p, args, &n) != 0)
        return -1;
    int rt = N(p, recv)->type;
    if (rt == CT_STRING) {
        int starts = strcmp(nm, "startsWith") == 0, ends = strcmp(nm, "endsWith") == 0;
        if (starts || ends) {
            if (n != 1)
                return fail(p, pos, "%s() takes 1 argument, got %d", nm, n);
            if (need_type(p, args[0], CT_STRING, N(p, args[0])->pos,
                          starts ? "startsWith()" : "endsWith()") != 0)
                return -1;
            return node_new(p, starts ? OP_STARTS : OP_ENDS, CT_BOOL, pos, recv, args[0]);
        }
        if (strcmp(nm, "extract") == 0)
            return method_extract(p, recv, pos, args, n);
        return fail(p, pos,
                    "unsupported method '%s' on string (supported: startsWith, endsWith, extract)",
                    nm);
    }
    if (rt == CT_TIMESTAMP || rt == CT_DURATION) {
        for (size_t i = 0; i < sizeof getters / sizeof getters[0]; i++) {
            if (strcmp(getters[i].name, nm) == 0)
                return method_getter(p, recv, pos, nm, (int)i, args, n);
        }
        return fail(p, pos, "unsupported method '%s' on %s", nm, type_name(rt));
    }
    return fail(p, pos, "%s has no method '%s'", type_name(rt), nm);
}

static int32_t parse_postfix(struct parser *p)
{
    int32_t x = parse_primary(p);
    while (x >= 0 && p->lx.tok.kind == TK_DOT) {
        advance(p);
        if (p->lx.tok.kind != TK_IDENT)
            return tok_fail(p, "a method name");
        size_t pos = p->lx.tok.pos, len = p->lx.tok.len;
        advance(p);
        if (p->lx.tok.kind != TK_LPAREN)
            return fail(p, pos, "field selection '.%.*s' is not supported on a %s value",
                        (int)(len > 64 ? 64 : len), p->src + pos, type_name(N(p, x)->type));
        x = parse_method(p, x, pos, len);
    }
    if (x >= 0 && p->lx.tok.kind == TK_LBRACK)
        return fail(p, p->lx.tok.pos, "indexing with '[...]' is not supported");
    return x;
}

/* negated: the operand of a unary minus, where 9223372036854775808 may
 * stand (it becomes INT64_MIN). */
static int32_t parse_unary(struct parser *p, int negated)
{
    size_t pos = p->lx.tok.pos;
    if (p->lx.tok.kind == TK_NOT) {
        if (count_logical(p, pos) != 0 || enter(p, pos) != 0)
            return -1;
        advance(p);
        int32_t x = parse_unary(p, 0);
        if (x < 0 || need_type(p, x, CT_BOOL, pos, "'!'") != 0)
            return -1;
        leave(p);
        return node_new(p, OP_NOT, CT_BOOL, pos, x, -1);
    }
    if (p->lx.tok.kind == TK_MINUS) {
        if (enter(p, pos) != 0)
            return -1;
        advance(p);
        int32_t x = parse_unary(p, 1);
        if (x < 0)
            return -1;
        leave(p);
        struct cond_node *n = N(p, x);
        if (n->op == OP_CONST && n->type == CT_INT) {
            /* Fold, so that -1 is a literal, as CEL treats it. */
            if (n->aux) {
                n->aux = 0; /* -9223372036854775808: INT64_MIN already */
            } else if (n->u.i == INT64_MIN) {
                return fail(p, pos, "integer literal out of range");
            } else {
                n->u.i = -n->u.i;
            }
            return x;
        }
        if (n->type != CT_INT && n->type != CT_DURATION)
            return fail(p, pos, "unary '-' needs int or duration, got %s", type_name(n->type));
        return node_new(p, OP_NEG, (enum cond_type)n->type, pos, x, -1);
    }
    int32_t x = parse_postfix(p);
    if (x >= 0 && !negated && N(p, x)->op == OP_CONST && N(p, x)->type == CT_INT && N(p, x)->aux)
        return fail(p, N(p, x)->pos, "integer literal out of range");
    return x;
}

static int32_t parse_add(struct parser *p)
{
    int32_t l = parse_unary(p, 0);
    while (l >= 0 && (p->lx.tok.kind == TK_PLUS || p->lx.tok.kind == TK_MINUS)) {
        int plus = p->lx.tok.kind == TK_PLUS;
        size_t pos = p->lx.tok.pos;
        advance(p);
        int32_t r = parse_unary(p, 0);
        if (r < 0)
            return -1;
        int lt = N(p, l)->type, rt = N(p, r)->type;
        int shape = -1, type = -1;
        if (lt == CT_INT && rt == CT_INT) {
            shape = AR_INT;
            type = CT_INT;
        } else if (lt == CT_TIMESTAMP && rt == CT_DURATION) {
            shape = AR_TS_DUR;
            type = CT_TIMESTAMP;
        } else if (plus && lt == CT_DURATION && rt == CT_TIMESTAMP) {
            shape = AR_DUR_TS;
            type = CT_TIMESTAMP;
        } else if (lt == CT_DURATION && rt == CT_DURATION) {
            shape = AR_DUR_DUR;
            type = CT_DURATION;
        } else if (!plus && lt == CT_TIMESTAMP && rt == CT_TIMESTAMP) {
            shape = AR_TS_TS;
            type = CT_DURATION;
        }
        if (shape < 0) {
            if (plus && lt == CT_STRING && rt == CT_STRING)
                return fail(p, pos, "string concatenation is not supported");
            return fail(p, pos, "'%c' is not defined on %s and %s", plus ? '+' : '-', type_name(lt),
                        type_name(rt));
        }
        l = node_new(p, plus ? OP_ADD : OP_SUB, (enum cond_type)type, pos, l, r);
        if (l >= 0)
            N(p, l)->aux = (uint8_t)shape;
    }
    return l;
}

static int32_t parse_rel(struct parser *p)
{
    int32_t l = parse_add(p);
    for (;;) {
        if (l < 0)
            return -1;
        enum cond_tok k = p->lx.tok.kind;
        enum cond_op op;
        switch (k) {
        case TK_EQ:
            op = OP_EQ;
            break;
        case TK_NE:
            op = OP_NE;
            break;
        case TK_LT:
            op = OP_LT;
            break;
        case TK_LE:
            op = OP_LE;
            break;
        case TK_GT:
            op = OP_GT;
            break;
        case TK_GE:
            op = OP_GE;
            break;
        case TK_IN:
            op = OP_IN;
            break;
        default:
            return l;
        }
        size_t pos = p->lx.tok.pos;
        advance(p);
        int32_t r = parse_add(p);
        if (r < 0)
            return -1;
        int lt = N(p, l)->type, rt = N(p, r)->type;
        const char *opn = wisp__cond_tok_name(k);
        if (op == OP_IN) {
            if (N(p, r)->op != OP_LIST)
                return fail(p, pos,
                            "the right operand of 'in' must be a list literal like [\"a\", \"b\"]");
            if (lt == CT_LIST)
                return fail(p, pos, "the left operand of 'in' cannot be a list");
            int et = N(p, r)->aux;
            if (et != CT_ANY && et != lt)
                return fail(p, pos, "'in' looks for a %s in a list of %s", type_name(lt),
                            type_name(et));
        } else {
            if (lt == CT_LIST || rt == CT_LIST)
                return fail(p, pos, "list literals are only supported on the right of 'in'");
            if (lt != rt)
                return fail(p, pos, "%s cannot compare %s with %s", opn, type_name(lt),
                            type_name(rt));
            if (lt == CT_BOOL && op != OP_EQ && op != OP_NE)
                return fail(p, pos, "%s is not defined on bool", opn);
        }
        l = node_new(p, op, CT_BOOL, pos, l, r);
    }
}

static int32_t parse_logical(struct parser *p, enum cond_tok tok, enum cond_op op,
                             int32_t (*sub)(struct parser *))
{
    int32_t l = sub(p);
    while (l >= 0 && p->lx.tok.kind == tok) {
        size_t pos = p->lx.tok.pos;
        const char *what = op == OP_AND ? "'&&'" : "'||'";
        if (count_logical(p, pos) != 0)
            return -1;
        advance(p);
        int32_t r = sub(p);
        if (r < 0 || need_type(p, l, CT_BOOL, pos, what) != 0 ||
            need_type(p, r, CT_BOOL, pos, what) != 0)
            return -1;
        l = node_new(p, op, CT_BOOL, pos, l, r);
    }
    return l;
}

static int32_t parse_and(struct parser *p)
{
    return parse_logical(p, TK_AND, OP_AND, parse_rel);
}

static int32_t parse_or(struct parser *p)
{
    return parse_logical(p, TK_OR, OP_OR, parse_and);
}

/* --- API ---------------------------------------------------------------------- */

static enum wisp_err fail_early(char *msg, size_t msglen, const char *text)
{
    if (msg && msglen)
        snprintf(msg, msglen, "%s", text);
    return WISP_EINVAL;
}

enum wisp_err wisp_cond_parse(const char *expr, struct wisp_cond **out, char *msg, size_t msglen)
{
    if (msg && msglen)
        msg[0] = '\0';
    if (!out)
        return fail_early(msg, msglen, "no place to put the parsed condition");
    *out = NULL;
    if (!expr)
        return fail_early(msg, msglen, "the condition has no expression");
    size_t len = strnlen(expr, WISP_COND_MAX_LEN + 1);
    if (len > WISP_COND_MAX_LEN) {
        if (msg && msglen)
            snprintf(msg, msglen, "the expression is longer than %d bytes", WISP_COND_MAX_LEN);
        return WISP_EINVAL;
    }

    struct parser p;
    memset(&p, 0, sizeof p);
    p.src = expr;
    p.len = len;
    p.msg = msg;
    p.msglen = msglen;
    p.cap = 32;
    p.nodes = wisp_xmalloc(p.cap * sizeof *p.nodes);
    /* A literal never decodes longer than its source text, so the pool
     * never needs more than the expression's length. */
    char *pool = wisp_xmalloc(len + 1);
    wisp__cond_lex_init(&p.lx, expr, len, pool, len + 1);

    int32_t root = parse_or(&p);
    if (root >= 0 && p.lx.tok.kind != TK_EOF)
        root = tok_fail(&p, "an operator or the end of the expression");
    if (root >= 0 && N(&p, root)->type != CT_BOOL)
        root = fail(&p, 0, "the condition must be a bool expression, not %s",
                    type_name(N(&p, root)->type));
    if (root < 0 || p.failed) {
        if (msg && msglen && !msg[0])
            snprintf(msg, msglen, "invalid condition expression");
        free(p.nodes);
        free(pool);
        return WISP_EINVAL;
    }

    struct wisp_cond *c = wisp_xcalloc(1, sizeof *c);
    c->nodes = wisp_xrealloc(p.nodes, p.n_nodes * sizeof *p.nodes);
    c->n_nodes = p.n_nodes;
    c->pool = pool;
    c->root = root;
    c->attrs = p.attrs;
    *out = c;
    return WISP_OK;
}

void wisp_cond_free(struct wisp_cond *c)
{
    if (!c)
        return;
    free(c->nodes);
    free(c->pool);
    free(c);
}

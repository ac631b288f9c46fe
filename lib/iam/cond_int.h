/* SPDX-License-Identifier: Apache-2.0 */
/* Private to libwisp: the shared pieces of the IAM Conditions module
 * (include/wisp/cond.h). cond_lex.c turns bytes into tokens through a
 * bounds-checked cursor, cond_parse.c builds and type-checks the node
 * array, cond_time.c holds the pure calendar and literal parsers, and
 * cond_eval.c walks the nodes. Nothing here allocates after parsing. */
#ifndef WISP_COND_INT_H
#define WISP_COND_INT_H

#include <stddef.h>
#include <stdint.h>
#include "wisp/cond.h"

/* --- values ------------------------------------------------------------------ */

/* Static types. The parser gives every node one, so the evaluator never
 * checks types at run time. CT_LIST exists only as the right operand of
 * `in`, written as a list literal. */
enum cond_type { CT_BOOL, CT_INT, CT_STRING, CT_TIMESTAMP, CT_DURATION, CT_LIST, CT_ANY };

/* A CEL timestamp: seconds since the epoch and nanoseconds in [0, 1e9),
 * always inside CEL's range 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z. */
struct cond_ts {
    int64_t sec;
    int32_t nsec;
};

#define COND_TS_MIN_SEC INT64_C(-62135596800) /* 0001-01-01T00:00:00Z */
#define COND_TS_MAX_SEC INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define COND_NS_PER_SEC INT64_C(1000000000)

/* One value during evaluation. Durations are int64 nanoseconds (cel-go's
 * range, about ±292 years). Strings are views, never copies: into the
 * expression's pool or the caller's env strings. */
struct cond_val {
    union {
        int b;
        int64_t i; /* CT_INT, and CT_DURATION in ns */
        struct cond_ts ts;
        struct {
            const char *p;
            size_t len;
        } s;
    } u;
};

/* --- nodes -------------------------------------------------------------------- */

enum cond_op {
    OP_CONST,     /* literal or folded constant; value in node.u */
    OP_CONST_ERR, /* a constant whose conversion failed: evaluates to an error */
    OP_ATTR,      /* aux = enum cond_attr */
    OP_NOT,       /* a */
    OP_NEG,       /* a: int or duration */
    OP_AND,       /* a, b */
    OP_OR,        /* a, b */
    OP_EQ,        /* a, b of the same type */
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_IN,  /* a in b (b an OP_LIST) */
    OP_ADD, /* a + b; aux = enum cond_arith */
    OP_SUB,
    OP_LIST,      /* a = first element, elements chained by next; aux = element type */
    OP_STARTS,    /* a.startsWith(b) */
    OP_ENDS,      /* a.endsWith(b) */
    OP_EXTRACT,   /* a.extract(template); template pre-split into u.tpl */
    OP_TIMESTAMP, /* timestamp(a) of a non-constant string */
    OP_DATE,      /* date(a) of a non-constant string */
    OP_DURATION,  /* duration(a) of a non-constant string */
    OP_TS_GET,    /* a.getX(tz): aux = enum cond_getter, tz = enum cond_tz, b = tz expr */
    OP_DUR_GET,   /* a.getX() on a duration: aux = enum cond_getter */
};

enum cond_attr { ATTR_RESOURCE_NAME, ATTR_RESOURCE_TYPE, ATTR_RESOURCE_SERVICE, ATTR_REQUEST_TIME };

/* Operand shapes for + and -, fixed at parse time. */
enum cond_arith {
    AR_INT,     /* int ± int -> int */
    AR_TS_DUR,  /* timestamp ± duration -> timestamp */
    AR_DUR_TS,  /* duration + timestamp -> timestamp */
    AR_DUR_DUR, /* duration ± duration -> duration */
    AR_TS_TS,   /* timestamp - timestamp -> duration */
};

enum cond_getter {
    GET_FULL_YEAR,
    GET_MONTH,        /* 0-11 */
    GET_DATE,         /* day of month, 1-based */
    GET_DAY_OF_MONTH, /* day of month, 0-based */
    GET_DAY_OF_WEEK,  /* Sunday = 0 */
    GET_DAY_OF_YEAR,  /* 0-based */
    GET_HOURS,
    GET_MINUTES,
    GET_SECONDS,
    GET_MILLISECONDS,
};

/* How an extractor gets its time zone. */
enum cond_tz {
    TZ_FIXED,   /* offset in u.i seconds east of UTC (no argument means UTC, 0) */
    TZ_BAD,     /* constant zone wisp cannot use: every evaluation is an error */
    TZ_RUNTIME, /* the zone is node b, a non-constant string parsed when evaluated */
};

struct cond_node {
    uint8_t op;     /* enum cond_op */
    uint8_t type;   /* enum cond_type of the result */
    uint8_t aux;    /* per op, see enum cond_op */
    uint8_t tz;     /* enum cond_tz, OP_TS_GET only */
    uint8_t height; /* 1 + the tallest child; at most WISP_COND_MAX_DEPTH */
    int32_t a, b;   /* operands (node indexes), -1 if none */
    int32_t next;   /* next element of a list literal, -1 at the end */
    uint32_t pos;   /* byte offset in the source, for messages */
    union {
        int b;
        int64_t i; /* int constant, duration constant (ns), tz offset (s) */
        struct cond_ts ts;
        struct {
            uint32_t off, len; /* string constant: bytes in the pool */
        } s;
        struct {
            uint32_t pre_off, pre_len, suf_off, suf_len; /* extract(): in the pool */
        } tpl;
    } u;
};

struct wisp_cond {
    struct cond_node *nodes; /* from wisp_xmalloc; n_nodes entries */
    size_t n_nodes;
    char *pool;     /* decoded string literals; from wisp_xmalloc */
    int32_t root;   /* index of the boolean root node */
    unsigned attrs; /* bit (1 << enum cond_attr) for each attribute read */
};

/* --- lexer (cond_lex.c) --------------------------------------------------------- */

/* A bounds-checked cursor over the source: every read goes through
 * cur_peek, which returns -1 past the end instead of reading it. */
struct cond_cur {
    const char *p;
    size_t len;
    size_t pos;
};

enum cond_tok {
    TK_EOF,
    TK_IDENT,
    TK_INT,    /* u64 magnitude; > INT64_MAX only valid after unary minus */
    TK_STRING, /* decoded into the pool at str_off/str_len */
    TK_LPAREN,
    TK_RPAREN,
    TK_LBRACK,
    TK_RBRACK,
    TK_DOT,
    TK_COMMA,
    TK_AND,
    TK_OR,
    TK_NOT,
    TK_EQ,
    TK_NE,
    TK_LT,
    TK_LE,
    TK_GT,
    TK_GE,
    TK_PLUS,
    TK_MINUS,
    TK_IN,
    TK_ERROR, /* the lexer failed; the message is in the lexer */
};

struct cond_token {
    enum cond_tok kind;
    size_t pos;       /* byte offset of the first byte */
    size_t len;       /* source bytes */
    uint64_t u64;     /* TK_INT */
    uint32_t str_off; /* TK_STRING: decoded bytes in the pool */
    uint32_t str_len;
};

struct cond_lexer {
    struct cond_cur cur;
    char *pool;            /* decoded literals are appended here ... */
    size_t pool_len;       /* ... bytes used ... */
    size_t pool_cap;       /* ... and the room, which the source length bounds */
    struct cond_token tok; /* the current token */
    size_t err_pos;        /* TK_ERROR: where */
    char err[160];         /* TK_ERROR: what (printable, one line) */
};

/* Starts lexing src[0..len) into pool (pool_cap bytes, at least len + 1) and
 * reads the first token. */
void wisp__cond_lex_init(struct cond_lexer *lx, const char *src, size_t len, char *pool,
                         size_t pool_cap);
/* Reads the next token into lx->tok; TK_ERROR (sticky) on bad input. */
void wisp__cond_lex_next(struct cond_lexer *lx);
/* Static spelling of a token kind for messages ("'&&'", "end of input"). */
const char *wisp__cond_tok_name(enum cond_tok k);

/* --- time and literals (cond_time.c) ------------------------------------------------ */

/* Each returns 0 and fills *out, or -1 if s[0..len) is not acceptable. */
int wisp__cond_parse_timestamp(const char *s, size_t len, struct cond_ts *out); /* RFC 3339 */
int wisp__cond_parse_date(const char *s, size_t len, struct cond_ts *out);      /* YYYY-MM-DD */
int wisp__cond_parse_duration(const char *s, size_t len, int64_t *ns_out);      /* Go syntax */
/* A time zone: "UTC", "GMT", "Etc/UTC", "Etc/GMT", "Etc/GMT+N", "Etc/GMT-N",
 * "[+-]HH:MM" or ""; seconds east of UTC. Named IANA zones are -1. */
int wisp__cond_parse_tz(const char *s, size_t len, int32_t *off_out);
/* The calendar field g of ts seen at off seconds east of UTC. */
int64_t wisp__cond_ts_get(struct cond_ts ts, int32_t off, enum cond_getter g);
/* unix ms -> timestamp; -1 outside CEL's range. */
int wisp__cond_ts_from_ms(int64_t ms, struct cond_ts *out);
/* ts + ns, -1 if the result leaves CEL's range. */
int wisp__cond_ts_add(struct cond_ts ts, int64_t ns, struct cond_ts *out);
/* a - b in ns, -1 on int64 overflow. */
int wisp__cond_ts_diff(struct cond_ts a, struct cond_ts b, int64_t *ns_out);

#endif

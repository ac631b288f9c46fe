/* SPDX-License-Identifier: Apache-2.0 */
/* Lexer for IAM Conditions (CEL syntax). Every byte is read through a small
 * bounds-checked cursor, never by raw pointer walking, because the input is
 * whatever a client put in a policy. String literals are decoded here, once,
 * into the expression's pool so the evaluator only ever compares bytes.
 * CEL tokens wisp does not support (floats, uints, bytes, '*', '?', ...)
 * are recognised well enough to be refused with a precise message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "iam/cond_int.h"

/* --- the cursor ---------------------------------------------------------- */

/* The byte `ahead` positions on, or -1 past the end. */
static int peek(const struct cond_cur *c, size_t ahead)
{
    if (ahead >= c->len - c->pos)
        return -1;
    return (unsigned char)c->p[c->pos + ahead];
}

static void skip(struct cond_cur *c, size_t n)
{
    c->pos = n > c->len - c->pos ? c->len : c->pos + n;
}

static int at_end(const struct cond_cur *c)
{
    return c->pos >= c->len;
}

/* --- helpers ---------------------------------------------------------------- */

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_ident_start(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static int is_ident(int ch)
{
    return is_ident_start(ch) || is_digit(ch);
}

static int hex_val(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Records the first error and turns the current token into TK_ERROR, which
 * then stays: wisp__cond_lex_next does nothing once it failed. */
static void lex_fail(struct cond_lexer *lx, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void lex_fail(struct cond_lexer *lx, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lx->err, sizeof lx->err, fmt, ap);
    va_end(ap);
    lx->err_pos = pos;
    lx->tok.kind = TK_ERROR;
    lx->tok.pos = pos;
}

/* A byte for a message: itself if printable ASCII, else \xNN. */
static const char *show_byte(int ch, char buf[8])
{
    if (ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '\\')
        snprintf(buf, 8, "%c", ch);
    else
        snprintf(buf, 8, "\\x%02x", (unsigned)ch & 0xffu);
    return buf;
}

/* Length of the valid UTF-8 sequence starting at the cursor (1-4), or 0.
 * Rejects overlong forms, surrogates and code points above U+10FFFF, as
 * CEL requires source text to be valid UTF-8. */
static size_t utf8_len(const struct cond_cur *c)
{
    int b0 = peek(c, 0);
    if (b0 < 0)
        return 0;
    if (b0 < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        n = 2;
        cp = (uint32_t)b0 & 0x1f;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        n = 3;
        cp = (uint32_t)b0 & 0x0f;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        n = 4;
        cp = (uint32_t)b0 & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        int b = peek(c, i);
        if (b < 0 || (b & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | ((uint32_t)b & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Appends bytes to the pool. The pool holds at least as many bytes as the
 * source, and no literal decodes to more bytes than it occupies in the
 * source, so this cannot fail; the check stays because the argument is
 * subtle and a wrong guess must not write out of bounds. */
static int pool_put(struct cond_lexer *lx, const char *p, size_t n)
{
    if (n > lx->pool_cap - lx->pool_len) {
        lex_fail(lx, lx->cur.pos, "internal error: string pool full");
        return -1;
    }
    memcpy(lx->pool + lx->pool_len, p, n);
    lx->pool_len += n;
    return 0;
}

/* Appends code point cp as UTF-8. */
static int pool_put_cp(struct cond_lexer *lx, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return pool_put(lx, b, n);
}

/* --- string literals -------------------------------------------------------- */

/* Reads n hex digits as a code point; -1 if one is missing. */
static int64_t read_hex(struct cond_lexer *lx, size_t n)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int h = hex_val(peek(&lx->cur, i));
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    skip(&lx->cur, n);
    return v;
}

/* One escape sequence after the backslash (CEL's set). In a string, \x and
 * octal escapes name code points (\xff is U+00FF, two UTF-8 bytes), as in
 * the CEL spec; \u and \U must not name surrogates. */
static int lex_escape(struct cond_lexer *lx, size_t esc_pos)
{
    int ch = peek(&lx->cur, 0);
    const char *simple = "a\ab\bf\fn\nr\rt\tv\v\\\\''\"\"``??";
    for (const char *s = simple; *s; s += 2) {
        if (ch == s[0]) {
            skip(&lx->cur, 1);
            return pool_put(lx, s + 1, 1);
        }
    }
    int64_t cp;
    if (ch == 'x' || ch == 'X') {
        skip(&lx->cur, 1);
        cp = read_hex(lx, 2);
    } else if (ch == 'u') {
        skip(&lx->cur, 1);
        cp = read_hex(lx, 4);
    } else if (ch == 'U') {
        skip(&lx->cur, 1);
        cp = read_hex(lx, 8);
    } else if (ch >= '0' && ch <= '3') {
        int d1 = peek(&lx->cur, 1), d2 = peek(&lx->cur, 2);
        if (d1 < '0' || d1 > '7' || d2 < '0' || d2 > '7') {
            lex_fail(lx, esc_pos, "invalid octal escape; expected \\ and three octal digits");
            return -1;
        }
        cp = (ch - '0') * 64 + (d1 - '0') * 8 + (d2 - '0');
        skip(&lx->cur, 3);
    } else {
        char b[8];
        if (ch < 0)
            lex_fail(lx, esc_pos, "unterminated string literal");
        else
            lex_fail(lx, esc_pos, "invalid escape sequence '\\%s'", show_byte(ch, b));
        return -1;
    }
    if (cp < 0) {
        lex_fail(lx, esc_pos, "invalid escape sequence: too few hex digits");
        return -1;
    }
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        lex_fail(lx, esc_pos, "escape names an invalid code point U+%llX", (unsigned long long)cp);
        return -1;
    }
    return pool_put_cp(lx, (uint32_t)cp);
}

/* A string literal; the cursor is on the opening quote, after any r/R
 * prefix. Single-quoted forms end at the line; triple-quoted ones do not. */
static void lex_string(struct cond_lexer *lx, size_t start, int raw)
{
    struct cond_cur *c = &lx->cur;
    int q = peek(c, 0);
    int triple = peek(c, 1) == q && peek(c, 2) == q;
    skip(c, triple ? 3 : 1);
    size_t off = lx->pool_len;
    for (;;) {
        int ch = peek(c, 0);
        if (ch < 0 || (!triple && (ch == '\n' || ch == '\r'))) {
            lex_fail(lx, start, "unterminated string literal");
            return;
        }
        if (ch == q && (!triple || (peek(c, 1) == q && peek(c, 2) == q))) {
            skip(c, triple ? 3 : 1);
            break;
        }
        if (ch == '\\' && !raw) {
            size_t esc_pos = c->pos;
            skip(c, 1);
            if (lex_escape(lx, esc_pos) != 0)
                return;
            continue;
        }
        size_t n = utf8_len(c);
        if (n == 0) {
            lex_fail(lx, c->pos, "string literal is not valid UTF-8");
            return;
        }
        if (pool_put(lx, c->p + c->pos, n) != 0)
            return;
        skip(c, n);
    }
    lx->tok.kind = TK_STRING;
    lx->tok.str_off = (uint32_t)off;
    lx->tok.str_len = (uint32_t)(lx->pool_len - off);
}

/* --- numbers ----------------------------------------------------------------- */

/* Decimal or 0x hex int64 literals. The magnitude may reach 2^63 so that
 * -9223372036854775808 can be written; the parser refuses it without the
 * minus. Float and uint literals are refused here, by name. */
static void lex_number(struct cond_lexer *lx, size_t start)
{
    struct cond_cur *c = &lx->cur;
    uint64_t v = 0;
    const uint64_t lim = UINT64_C(1) << 63;
    int base = 10;
    if (peek(c, 0) == '0' && (peek(c, 1) == 'x' || peek(c, 1) == 'X')) {
        base = 16;
        skip(c, 2);
        if (hex_val(peek(c, 0)) < 0) {
            lex_fail(lx, start, "hex literal needs at least one digit");
            return;
        }
    }
    int over = 0;
    for (;;) {
        int ch = peek(c, 0);
        int d = base == 16 ? hex_val(ch) : (is_digit(ch) ? ch - '0' : -1);
        if (d < 0)
            break;
        if (v > (lim - (uint64_t)d) / (uint64_t)base)
            over = 1;
        else
            v = v * (uint64_t)base + (uint64_t)d;
        skip(c, 1);
    }
    int ch = peek(c, 0);
    if (base == 10 && ((ch == '.' && is_digit(peek(c, 1))) || ch == 'e' || ch == 'E')) {
        lex_fail(lx, start, "floating-point literals are not supported");
        return;
    }
    if (ch == 'u' || ch == 'U') {
        lex_fail(lx, start, "unsigned integer literals are not supported");
        return;
    }
    if (is_ident(ch)) {
        lex_fail(lx, start, "invalid number");
        return;
    }
    if (over) {
        lex_fail(lx, start, "integer literal out of range");
        return;
    }
    lx->tok.kind = TK_INT;
    lx->tok.u64 = v;
}

/* --- tokens ----------------------------------------------------------------------- */

static void skip_space(struct cond_cur *c)
{
    for (;;) {
        int ch = peek(c, 0);
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f') {
            skip(c, 1);
        } else if (ch == '/' && peek(c, 1) == '/') {
            /* CEL line comment. */
            while (!at_end(c) && peek(c, 0) != '\n')
                skip(c, 1);
        } else {
            return;
        }
    }
}

/* Two-byte operators first, so "<=" is not read as "<" then "=". */
static const struct {
    const char *text;
    enum cond_tok kind;
} punct[] = {
    {"&&", TK_AND},  {"||", TK_OR},    {"==", TK_EQ},    {"!=", TK_NE},    {"<=", TK_LE},
    {">=", TK_GE},   {"<", TK_LT},     {">", TK_GT},     {"!", TK_NOT},    {"+", TK_PLUS},
    {"-", TK_MINUS}, {"(", TK_LPAREN}, {")", TK_RPAREN}, {"[", TK_LBRACK}, {"]", TK_RBRACK},
    {".", TK_DOT},   {",", TK_COMMA},
};

/* CEL operators wisp refuses, with what to say. */
static const struct {
    int ch;
    const char *why;
} refused[] = {
    {'*', "operator '*' is not supported"},
    {'/', "operator '/' is not supported"},
    {'%', "operator '%' is not supported"},
    {'?', "the conditional operator '?:' is not supported"},
    {':', "the conditional operator '?:' is not supported"},
    {'{', "map literals are not supported"},
    {'=', "'=' is not an operator; use '=='"},
    {'&', "'&' is not an operator; use '&&'"},
    {'|', "'|' is not an operator; use '||'"},
};

void wisp__cond_lex_next(struct cond_lexer *lx)
{
    if (lx->tok.kind == TK_ERROR)
        return;
    struct cond_cur *c = &lx->cur;
    skip_space(c);
    size_t start = c->pos;
    memset(&lx->tok, 0, sizeof lx->tok);
    lx->tok.pos = start;
    int ch = peek(c, 0);
    if (ch < 0) {
        lx->tok.kind = TK_EOF;
        return;
    }
    if (is_ident_start(ch)) {
        size_t n = 0;
        while (is_ident(peek(c, n)))
            n++;
        int q = peek(c, n);
        if ((q == '"' || q == '\'') && n <= 2) {
            /* A prefixed literal: r"raw", b"bytes", rb/br. */
            int raw = 0, bytes = 0, other = 0;
            for (size_t i = 0; i < n; i++) {
                int p = peek(c, i) | 0x20; /* ASCII lower case */
                raw |= p == 'r';
                bytes |= p == 'b';
                other |= p != 'r' && p != 'b';
            }
            if (bytes && !other) {
                lex_fail(lx, start, "bytes literals are not supported");
                return;
            }
            if (raw && !other && n == 1) {
                skip(c, 1);
                lex_string(lx, start, 1);
                lx->tok.len = c->pos - start;
                return;
            }
        }
        skip(c, n);
        lx->tok.kind = n == 2 && memcmp(c->p + start, "in", 2) == 0 ? TK_IN : TK_IDENT;
        lx->tok.len = n;
        return;
    }
    if (is_digit(ch)) {
        lex_number(lx, start);
        lx->tok.len = c->pos - start;
        return;
    }
    if (ch == '.' && is_digit(peek(c, 1))) {
        lex_fail(lx, start, "floating-point literals are not supported");
        return;
    }
    if (ch == '"' || ch == '\'') {
        lex_string(lx, start, 0);
        lx->tok.len = c->pos - start;
        return;
    }
    for (size_t i = 0; i < sizeof punct / sizeof punct[0]; i++) {
        size_t n = strlen(punct[i].text);
        if (peek(c, 0) == (unsigned char)punct[i].text[0] &&
            (n == 1 || peek(c, 1) == (unsigned char)punct[i].text[1])) {
            skip(c, n);
            lx->tok.kind = punct[i].kind;
            lx->tok.len = n;
            return;
        }
    }
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (ch == refused[i].ch) {
            lex_fail(lx, start, "%s", refused[i].why);
            return;
        }
    }
    char b[8];
    lex_fail(lx, start, "unexpected character '%s'", show_byte(ch, b));
}

void wisp__cond_lex_init(struct cond_lexer *lx, const char *src, size_t len, char *pool,
                         size_t pool_cap)
{
    memset(lx, 0, sizeof *lx);
    lx->cur.p = src;
    lx->cur.len = len;
    lx->pool = pool;
    lx->pool_cap = pool_cap;
    lx->tok.kind = TK_EOF;
    wisp__cond_lex_next(lx);
}

const char *wisp__cond_tok_name(enum cond_tok k)
{
    switch (k) {
    case TK_EOF:
        return "end of input";
    case TK_IDENT:
        return "an identifier";
    case TK_INT:
        return "an integer";
    case TK_STRING:
        return "a string";
    case TK_LPAREN:
        return "'('";
    case TK_RPAREN:
        return "')'";
    case TK_LBRACK:
        return "'['";
    case TK_RBRACK:
        return "']'";
    case TK_DOT:
        return "'.'";
    case TK_COMMA:
        return "','";
    case TK_AND:
        return "'&&'";
    case TK_OR:
        return "'||'";
    case TK_NOT:
        return "'!'";
    case TK_EQ:
        return "'=='";
    case TK_NE:
        return "'!='";
    case TK_LT:
        return "'<'";
    case TK_LE:
        return "'<='";
    case TK_GT:
        return "'>'";
    case TK_GE:
        return "'>='";
    case TK_PLUS:
        return "'+'";
    case TK_MINUS:
        return "'-'";
    case TK_IN:
        return "'in'";
    case TK_ERROR:
        break;
    }
    return "an invalid token";
}

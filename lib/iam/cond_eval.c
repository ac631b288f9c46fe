/* SPDX-License-Identifier: Apache-2.0 */
/* Evaluator for parsed IAM Conditions. A recursive walk over the immutable
 * node array: the parser already checked types, folded literals and
 * bounded the tree's height (WISP_COND_MAX_DEPTH), so this file neither
 * allocates, nor parses constants, nor recurses more than 32 levels, and it
 * keeps no state outside its stack: one parsed condition may be evaluated
 * by many threads at once. Errors travel as a return code and deny. */
#include <string.h>
#include "iam/cond_int.h"

/* Everything one evaluation needs, on the caller's stack. */
struct ectx {
    const struct wisp_cond *c;
    const struct wisp_cond_env *env;
    const char *str[3]; /* resource name, type, service: borrowed, NULL if absent */
    size_t len[3];
};

/* 0 and *out filled, or -1: the value is a CEL error. */
static int eval(const struct ectx *x, int32_t i, struct cond_val *out);

static int cmp_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

/* Byte order is code-point order for UTF-8, which is CEL's string order. */
static int cmp_str(const struct cond_val *a, const struct cond_val *b)
{
    size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
    int r = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
    if (r)
        return r < 0 ? -1 : 1;
    return cmp_i64((int64_t)a->u.s.len, (int64_t)b->u.s.len);
}

/* Three-way comparison of two values of static type t. */
static int cmp_val(int t, const struct cond_val *a, const struct cond_val *b)
{
    switch (t) {
    case CT_BOOL:
        return cmp_i64(a->u.b, b->u.b);
    case CT_INT:
    case CT_DURATION:
        return cmp_i64(a->u.i, b->u.i);
    case CT_STRING:
        return cmp_str(a, b);
    case CT_TIMESTAMP:
        if (a->u.ts.sec != b->u.ts.sec)
            return cmp_i64(a->u.ts.sec, b->u.ts.sec);
        return cmp_i64(a->u.ts.nsec, b->u.ts.nsec);
    default:
        return 0;
    }
}

static int eval_attr(const struct ectx *x, int attr, struct cond_val *out)
{
    if (attr == ATTR_REQUEST_TIME) {
        if (x->env->request_time_ms == WISP_COND_TIME_ABSENT)
            return -1;
        return wisp__cond_ts_from_ms(x->env->request_time_ms, &out->u.ts);
    }
    if (attr < 0 || attr > ATTR_RESOURCE_SERVICE || !x->str[attr])
        return -1; /* absent for this resource: non-granting (WIRE.md §4.4) */
    out->u.s.p = x->str[attr];
    out->u.s.len = x->len[attr];
    return 0;
}

/* text after the first prefix, up to the first suffix after that; "" when
 * either is missing (WIRE.md §4.4). memmem is linear in glibc. */
static void extract(const struct cond_val *s, const char *pre, size_t pre_len, const char *suf,
                    size_t suf_len, struct cond_val *out)
{
    out->u.s.p = s->u.s.p;
    out->u.s.len = 0;
    const char *start = s->u.s.p;
    size_t left = s->u.s.len;
    if (pre_len) {
        const char *hit = memmem(start, left, pre, pre_len);
        if (!hit)
            return;
        left -= (size_t)(hit - start) + pre_len;
        start = hit + pre_len;
    }
    size_t take = left;
    if (suf_len) {
        const char *hit = memmem(start, left, suf, suf_len);
        if (!hit)
            return;
        take = (size_t)(hit - start);
    }
    out->u.s.p = start;
    out->u.s.len = take;
}

static int eval_arith(const struct cond_node *n, const struct cond_val *l, const struct cond_val *r,
                      struct cond_val *out)
{
    int sub = n->op == OP_SUB;
    switch (n->aux) {
    case AR_INT:
    case AR_DUR_DUR:
        /* CEL makes int overflow an error rather than wrapping. */
        if (sub)
            return __builtin_sub_overflow(l->u.i, r->u.i, &out->u.i) ? -1 : 0;
        return __builtin_add_overflow(l->u.i, r->u.i, &out->u.i) ? -1 : 0;
    case AR_TS_DUR:
        if (sub) {
            if (r->u.i == INT64_MIN)
                return -1;
            return wisp__cond_ts_add(l->u.ts, -r->u.i, &out->u.ts);
        }
        return wisp__cond_ts_add(l->u.ts, r->u.i, &out->u.ts);
    case AR_DUR_TS:
        return wisp__cond_ts_add(r->u.ts, l->u.i, &out->u.ts);
    case AR_TS_TS:
        return wisp__cond_ts_diff(l->u.ts, r->u.ts, &out->u.i);
    default:
        return -1;
    }
}

static int eval_getter(const struct ectx *x, const struct cond_node *n, struct cond_val *out)
{
    struct cond_val v;
    if (eval(x, n->a, &v) != 0)
        return -1;
    if (n->op == OP_DUR_GET) {
        /* Totals, truncated toward zero, as cel-go's Duration getters. */
        static const int64_t per[] = {
            [GET_HOURS] = INT64_C(3600000000000),
            [GET_MINUTES] = INT64_C(60000000000),
            [GET_SECONDS] = INT64_C(1000000000),
            [GET_MILLISECONDS] = INT64_C(1000000),
        };
        if (n->aux >= sizeof per / sizeof per[0] || per[n->aux] == 0)
            return -1;
        out->u.i = v.u.i / per[n->aux];
        return 0;
    }
    int32_t off = 0;
    if (n->tz == TZ_BAD) {
        return -1;
    } else if (n->tz == TZ_RUNTIME) {
        struct cond_val z;
        if (eval(x, n->b, &z) != 0 || wisp__cond_parse_tz(z.u.s.p, z.u.s.len, &off) != 0)
            return -1;
    } else {
        off = (int32_t)n->u.i;
    }
    out->u.i = wisp__cond_ts_get(v.u.ts, off, (enum cond_getter)n->aux);
    return 0;
}

/* x in [e1, e2, ...]. Every element is evaluated, and any error makes the
 * result an error even when another element matched, as in cel-go, where
 * the list literal fails before `in` runs. */
static int eval_in(const struct ectx *x, const struct cond_node *n, struct cond_val *out)
{
    struct cond_val l, e;
    if (eval(x, n->a, &l) != 0)
        return -1;
    const struct cond_node *list = &x->c->nodes[n->b];
    int found = 0, err = 0;
    for (int32_t i = list->a; i >= 0; i = x->c->nodes[i].next) {
        if (eval(x, i, &e) != 0)
            err = 1;
        else if (!found && cmp_val(list->aux, &l, &e) == 0)
            found = 1;
    }
    out->u.b = found;
    return err ? -1 : 0;
}

static int eval(const struct ectx *x, int32_t i, struct cond_val *out)
{
    if (i < 0 || (size_t)i >= x->c->n_nodes)
        return -1; /* cannot happen for a tree the parser built */
    const struct cond_node *n = &x->c->nodes[i];
    struct cond_val l, r;
    int le, re, c;
    switch ((enum cond_op)n->op) {
    case OP_CONST:
        if (n->type == CT_STRING) {
            out->u.s.p = x->c->pool + n->u.s.off;
            out->u.s.len = n->u.s.len;
        } else if (n->type == CT_TIMESTAMP) {
            out->u.ts = n->u.ts;
        } else if (n->type == CT_BOOL) {
            out->u.b = n->u.b;
        } else {
            out->u.i = n->u.i;
        }
        return 0;
    case OP_CONST_ERR:
        return -1;
    case OP_ATTR:
        return eval_attr(x, n->aux, out);
    case OP_NOT:
        if (eval(x, n->a, &l) != 0)
            return -1;
        out->u.b = !l.u.b;
        return 0;
    case OP_NEG:
        if (eval(x, n->a, &l) != 0 || l.u.i == INT64_MIN)
            return -1;
        out->u.i = -l.u.i;
        return 0;
    case OP_AND:
        /* CEL's commutative semantics: a false side decides, whichever
         * side it is and whatever error the other side has. */
        le = eval(x, n->a, &l);
        if (le == 0 && !l.u.b) {
            out->u.b = 0;
            return 0;
        }
        re = eval(x, n->b, &r);
        if (re == 0 && !r.u.b) {
            out->u.b = 0;
            return 0;
        }
        if (le || re)
            return -1;
        out->u.b = 1;
        return 0;
    case OP_OR:
        le = eval(x, n->a, &l);
        if (le == 0 && l.u.b) {
            out->u.b = 1;
            return 0;
        }
        re = eval(x, n->b, &r);
        if (re == 0 && r.u.b) {
            out->u.b = 1;
            return 0;
        }
        if (le || re)
            return -1;
        out->u.b = 0;
        return 0;
    case OP_EQ:
    case OP_NE:
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE:
        if (eval(x, n->a, &l) != 0 || eval(x, n->b, &r) != 0)
            return -1;
        c = cmp_val(x->c->nodes[n->a].type, &l, &r);
        switch ((enum cond_op)n->op) {
        case OP_EQ:
            out->u.b = c == 0;
            break;
        case OP_NE:
            out->u.b = c != 0;
            break;
        case OP_LT:
            out->u.b = c < 0;
            break;
        case OP_LE:
            out->u.b = c <= 0;
            break;
        case OP_GT:
            out->u.b = c > 0;
            break;
        default:
            out->u.b = c >= 0;
            break;
        }
        return 0;
    case OP_IN:
        return eval_in(x, n, out);
    case OP_ADD:
    case OP_SUB:
        if (eval(x, n->a, &l) != 0 || eval(x, n->b, &r) != 0)
            return -1;
        return eval_arith(n, &l, &r, out);
    case OP_STARTS:
    case OP_ENDS:
        if (eval(x, n->a, &l) != 0 || eval(x, n->b, &r) != 0)
            return -1;
        if (r.u.s.len > l.u.s.len) {
            out->u.b = 0;
        } else {
            const char *at = n->op == OP_STARTS ? l.u.s.p : l.u.s.p + (l.u.s.len - r.u.s.len);
            out->u.b = r.u.s.len == 0 || memcmp(at, r.u.s.p, r.u.s.len) == 0;
        }
        return 0;
    case OP_EXTRACT:
        if (eval(x, n->a, &l) != 0)
            return -1;
        extract(&l, x->c->pool + n->u.tpl.pre_off, n->u.tpl.pre_len, x->c->pool + n->u.tpl.suf_off,
                n->u.tpl.suf_len, out);
        return 0;
    case OP_TIMESTAMP:
    case OP_DATE:
    case OP_DURATION:
        if (eval(x, n->a, &l) != 0)
            return -1;
        if (n->op == OP_TIMESTAMP)
            return wisp__cond_parse_timestamp(l.u.s.p, l.u.s.len, &out->u.ts);
        if (n->op == OP_DATE)
            return wisp__cond_parse_date(l.u.s.p, l.u.s.len, &out->u.ts);
        return wisp__cond_parse_duration(l.u.s.p, l.u.s.len, &out->u.i);
    case OP_TS_GET:
    case OP_DUR_GET:
        return eval_getter(x, n, out);
    case OP_LIST:
        break; /* only ever read through OP_IN */
    }
    return -1;
}

enum wisp_cond_result wisp_cond_eval(const struct wisp_cond *c, const struct wisp_cond_env *env)
{
    if (!c || !env)
        return WISP_COND_ERROR;
    struct ectx x = {.c = c, .env = env};
    const char *s[3] = {env->resource_name, env->resource_type, env->resource_service};
    for (int k = 0; k < 3; k++) {
        /* Measure only what the expression reads. */
        if ((c->attrs & (1u << k)) && s[k]) {
            x.str[k] = s[k];
            x.len[k] = strlen(s[k]);
        }
    }
    struct cond_val v;
    if (eval(&x, c->root, &v) != 0)
        return WISP_COND_ERROR;
    return v.u.b ? WISP_COND_TRUE : WISP_COND_FALSE;
}

const char *wisp_cond_result_name(enum wisp_cond_result r)
{
    switch (r) {
    case WISP_COND_FALSE:
        return "false";
    case WISP_COND_TRUE:
        return "true";
    case WISP_COND_ERROR:
        break;
    }
    return "error";
}

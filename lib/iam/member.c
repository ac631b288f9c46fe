/* SPDX-License-Identifier: Apache-2.0 */
/* Parsing and canonicalisation of IAM member strings (include/wisp/member.h).
 * The parser is strict on purpose: a member that names nothing real, or that
 * could be spelt two ways, is rejected with a message rather than "fixed",
 * because a silently rewritten member is a grant nobody reviewed. The only
 * rewrite is lowercasing email addresses and domains, which Google compares
 * case-insensitively (docs/internals/MEMBERS.md). Matching lives in
 * member_match.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/member.h"

/* Limits. Google's are quoted where it documents one. */
#define EMAIL_MAX 254 /* RFC 5321 path limit less the brackets */
#define EMAIL_LOCAL_MAX 64
#define DNS_NAME_MAX 253
#define DNS_LABEL_MAX 63
#define PROJECT_ID_MAX 30        /* Google: 6-30; the minimum is not enforced, see MEMBERS.md */
#define PROJECT_NUMBER_DIGITS 19 /* fits an int64, as Google's project numbers do */
#define UID_DIGITS 32            /* deleted: ?uid= (service-account unique ids are 21 digits) */
#define SUBJECT_MAX 127          /* Google: google.subject is at most 127 bytes */
/* GKE subjects are ns/NS/sa/KSA, bounded by the Kubernetes name rules
 * instead (3 + 63 + 4 + 253), so that every KSA the legacy spelling can name
 * also has a principal:// spelling. */
#define GKE_SUBJECT_MAX (3 + DNS_LABEL_MAX + 4 + KSA_NAME_MAX)
#define SET_VALUE_MAX 255 /* group ids and attribute values */
#define ATTR_NAME_MAX 100
#define AGENT_PATH_MAX 512
#define KSA_NAME_MAX 253    /* DNS-1123 subdomain */
#define CLUSTER_NAME_MAX 40 /* GKE cluster names */
#define QUOTE_MAX 400       /* bytes of (escaped) bad member an error message repeats */
#define QUOTE_MIN 24        /* ... even when the caller's message slot is small */
#define SPAN_SHOW 64        /* how much of a bad part an error message repeats */

/* ------------------------------------------------------------------------ */
/* The cursor: the only place that indexes into the input. A span is a
 * borrowed view (base pointer + length) into the member string. */

struct span {
    const char *p; /* borrowed from the input */
    size_t len;
};

struct cur {
    const char *s; /* the whole member, borrowed */
    size_t len;
    size_t pos; /* next unread byte; always <= len */
};

static int cur_done(const struct cur *c)
{
    return c->pos >= c->len;
}

/* Consumes lit if the input continues with it exactly (case-sensitive). */
static int cur_lit(struct cur *c, const char *lit)
{
    size_t n = strlen(lit);
    if (c->len - c->pos < n || memcmp(c->s + c->pos, lit, n) != 0)
        return 0;
    c->pos += n;
    return 1;
}

/* Takes bytes up to (not including) the next ch, or to the end. */
static struct span cur_until(struct cur *c, char ch)
{
    size_t start = c->pos;
    while (c->pos < c->len && c->s[c->pos] != ch)
        c->pos++;
    struct span sp = {c->s + start, c->pos - start};
    return sp;
}

static struct span cur_rest(struct cur *c)
{
    struct span sp = {c->s + c->pos, c->len - c->pos};
    c->pos = c->len;
    return sp;
}

/* Looks at the next '/'-delimited segment without consuming it. */
static struct span cur_peek_seg(const struct cur *c)
{
    struct cur tmp = *c;
    return cur_until(&tmp, '/');
}

static char span_at(struct span sp, size_t i)
{
    if (i < sp.len)
        return sp.p[i];
    return (char)0;
}

static struct span span_sub(struct span sp, size_t off, size_t len)
{
    if (off > sp.len)
        off = sp.len;
    if (len > sp.len - off)
        len = sp.len - off;
    struct span out = {sp.p + off, len};
    return out;
}

static int span_eq(struct span sp, const char *lit)
{
    return strlen(lit) == sp.len && memcmp(sp.p, lit, sp.len) == 0;
}

static char lower(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return (char)(ch - 'A' + 'a');
    return ch;
}

static int span_eq_ci(struct span sp, const char *lit)
{
    if (strlen(lit) != sp.len)
        return 0;
    for (size_t i = 0; i < sp.len; i++) {
        if (lower(sp.p[i]) != lower(lit[i]))
            return 0;
    }
    return 1;
}

static int span_ends_with(struct span sp, const char *lit)
{
    size_t n = strlen(lit);
    return sp.len >= n && memcmp(sp.p + (sp.len - n), lit, n) == 0;
}

static int span_has(struct span sp, char ch)
{
    return sp.len > 0 && memchr(sp.p, ch, sp.len) != NULL;
}

static char *span_dup(struct span sp)
{
    return wisp_xstrndup(sp.p, sp.len);
}

static char *span_dup_lower(struct span sp)
{
    char *out = wisp_xstrndup(sp.p, sp.len);
    for (size_t i = 0; i < sp.len; i++)
        out[i] = lower(out[i]);
    return out;
}

/* For "%.*s" in messages. Spans are printable ASCII by the time any message
 * shows one (check_bytes runs first), so they cannot break the line. */
#define SPAN_ARG(sp) (int)((sp).len > SPAN_SHOW ? SPAN_SHOW : (sp).len), (sp).p

/* ------------------------------------------------------------------------ */
/* Errors. */

struct pctx {
    const char *in; /* the member being parsed, borrowed */
    size_t in_len;
    char *errmsg; /* caller's message slot, may be NULL */
    size_t errlen;
};

/* Copies p[0..len) into dst escaped so that the result is one printable
 * line whatever the input holds, and marks truncation with "...". */
static void quote(char *dst, size_t cap, const char *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        char esc[5];
        size_t n;
        if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '\'') {
            esc[0] = (char)ch;
            n = 1;
        } else if (ch == '\\' || ch == '\'') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            n = 2;
        } else {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[ch >> 4];
            esc[3] = hex[ch & 15];
            n = 4;
        }
        if (o + n + 4 > cap) { /* room for "..." and the NUL */
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(dst + o, esc, n);
        o += n;
    }
    dst[o] = '\0';
}

static enum wisp_err fail(struct pctx *px, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum wisp_err fail(struct pctx *px, const char *fmt, ...)
{
    if (!px->errmsg || px->errlen == 0)
        return WISP_EINVAL;
    char why[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    /* Shrink the quote, not the reason, to fit the caller's slot: the
     * reason is what tells the user what to fix. */
    static const char frame[] = "Invalid member '': ";
    size_t room = QUOTE_MAX;
    size_t need = sizeof frame - 1 + strlen(why) + 1;
    if (px->errlen > need && px->errlen - need < room)
        room = px->errlen - need;
    if (room < QUOTE_MIN)
        room = QUOTE_MIN;
    char q[QUOTE_MAX];
    quote(q, room, px->in, px->in_len);
    snprintf(px->errmsg, px->errlen, "Invalid member '%s': %s", q, why);
    return WISP_EINVAL;
}

/* "expected X at offset N, found 'Y'": used wherever a fixed path word is
 * required, so the user sees where the member went wrong. */
static enum wisp_err want(struct pctx *px, struct cur *c, const char *lit)
{
    if (cur_lit(c, lit))
        return WISP_OK;
    if (cur_done(c))
        return fail(px, "expected '%s' at offset %zu, found the end of the member", lit, c->pos);
    struct span rest = {c->s + c->pos, c->len - c->pos};
    return fail(px, "expected '%s' at offset %zu, found '%.*s'", lit, c->pos, SPAN_ARG(rest));
}

static enum wisp_err want_end(struct pctx *px, struct cur *c, const char *after)
{
    if (cur_done(c))
        return WISP_OK;
    struct span rest = {c->s + c->pos, c->len - c->pos};
    return fail(px, "unexpected '%.*s' after %s", SPAN_ARG(rest), after);
}

/* ------------------------------------------------------------------------ */
/* Whole-string checks. */

static int is_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

/* Every member form is printable ASCII without spaces. Checking that first
 * means no later message can carry a control byte, and no lookalike letter
 * (Cyrillic 'а' in "serviceАccount:", a fullwidth '@') can reach a
 * comparison (SECURITY.md D40). */
static enum wisp_err check_bytes(struct pctx *px)
{
    const unsigned char *u = (const unsigned char *)px->in;
    if (is_space(u[0]) || is_space(u[px->in_len - 1]))
        return fail(px, "leading or trailing whitespace");
    for (size_t i = 0; i < px->in_len; i++) {
        if (u[i] >= 0x80)
            return fail(px,
                        "non-ASCII byte 0x%02x at offset %zu (members are ASCII; "
                        "lookalike characters are not accepted)",
                        u[i], i);
        if (u[i] < 0x20 || u[i] == 0x7f)
            return fail(px, "control byte 0x%02x at offset %zu", u[i], i);
        if (u[i] == ' ')
            return fail(px, "space at offset %zu", i);
    }
    return WISP_OK;
}

/* ------------------------------------------------------------------------ */
/* Part validators. Each takes a span and a noun for its message. */

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_lower_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || is_digit(ch);
}

static int is_alnum(char ch)
{
    return is_lower_alnum(lower(ch));
}

/* Decimal numbers without sign or leading zero: "0123" and "123" would be
 * two spellings of one project. */
static enum wisp_err check_number(struct pctx *px, struct span sp, size_t max_digits,
                                  const char *what)
{
    if (sp.len == 0)
        return fail(px, "empty %s", what);
    for (size_t i = 0; i < sp.len; i++) {
        if (!is_digit(sp.p[i]))
            return fail(px, "%s '%.*s' is not a decimal number", what, SPAN_ARG(sp));
    }
    if (sp.p[0] == '0')
        return fail(px, "%s '%.*s' has a leading zero or is zero", what, SPAN_ARG(sp));
    if (sp.len > max_digits)
        return fail(px, "%s '%.*s' has more than %zu digits", what, SPAN_ARG(sp), max_digits);
    return WISP_OK;
}

/* A DNS name of at least two labels (email domains, domain:). Either case is
 * accepted here; callers lowercase. The last label may not be all digits, so
 * an IPv4 address is not a domain. */
static enum wisp_err check_dns_name(struct pctx *px, struct span sp, const char *what)
{
    if (sp.len == 0)
        return fail(px, "empty %s", what);
    if (sp.len > DNS_NAME_MAX)
        return fail(px, "%s is longer than %d bytes", what, DNS_NAME_MAX);
    size_t labels = 0, start = 0;
    int label_digits = 1; /* the current label is all digits so far */
    for (size_t i = 0; i <= sp.len; i++) {
        char ch = span_at(sp, i);
        if (i < sp.len && ch != '.') {
            if (!is_alnum(ch) && ch != '-')
                return fail(px, "%s '%.*s' contains '%c'", what, SPAN_ARG(sp), ch);
            if (!is_digit(ch))
                label_digits = 0;
            continue;
        }
        struct span label = span_sub(sp, start, i - start);
        if (label.len == 0)
            return fail(px, "%s '%.*s' has an empty label", what, SPAN_ARG(sp));
        if (label.len > DNS_LABEL_MAX)
            return fail(px, "%s '%.*s' has a label longer than %d bytes", what, SPAN_ARG(sp),
                        DNS_LABEL_MAX);
        if (label.p[0] == '-' || label.p[label.len - 1] == '-')
            return fail(px, "%s '%.*s' has a label that starts or ends with '-'", what,
                        SPAN_ARG(sp));
        labels++;
        if (i == sp.len && label_digits)
            return fail(px, "%s '%.*s' ends in a numeric label", what, SPAN_ARG(sp));
        label_digits = 1;
        start = i + 1;
    }
    if (labels < 2)
        return fail(px, "%s '%.*s' is not a fully qualified domain name", what, SPAN_ARG(sp));
    return WISP_OK;
}

/* RFC 5322 atext less '?', which would be ambiguous with the "?uid=" suffix
 * of deleted: members. Quoted local parts and address literals are not
 * accepted: Google accounts cannot have them. */
static int is_email_local_char(char ch)
{
    return is_alnum(ch) || (ch != '\0' && strchr("!#$%&'*+-/=^_`{|}~.", ch) != NULL);
}

/* Validates an email address and returns it lowercased in *out. */
static enum wisp_err parse_email(struct pctx *px, struct span e, char **out)
{
    if (e.len == 0)
        return fail(px, "empty email address");
    if (e.len > EMAIL_MAX)
        return fail(px, "email address is longer than %d bytes", EMAIL_MAX);
    size_t at = e.len;
    for (size_t i = 0; i < e.len; i++) {
        if (e.p[i] == '@') {
            if (at != e.len)
                return fail(px, "email address '%.*s' has more than one '@'", SPAN_ARG(e));
            at = i;
        }
    }
    if (at == e.len)
        return fail(px, "'%.*s' is not an email address (no '@')", SPAN_ARG(e));
    struct span local = span_sub(e, 0, at);
    struct span dom = span_sub(e, at + 1, e.len - at - 1);
    if (local.len == 0)
        return fail(px, "email address '%.*s' has an empty local part", SPAN_ARG(e));
    if (local.len > EMAIL_LOCAL_MAX)
        return fail(px, "email local part is longer than %d bytes", EMAIL_LOCAL_MAX);
    for (size_t i = 0; i < local.len; i++) {
        char ch = local.p[i];
        if (!is_email_local_char(ch))
            return fail(px, "email address '%.*s' contains '%c'", SPAN_ARG(e), ch);
        if (ch == '.' && (i == 0 || i + 1 == local.len || local.p[i + 1] == '.'))
            return fail(px, "email address '%.*s' has a misplaced '.' (leading, trailing or '..')",
                        SPAN_ARG(e));
    }
    enum wisp_err err = check_dns_name(px, dom, "email domain");
    if (err)
        return err;
    *out = span_dup_lower(e);
    return WISP_OK;
}

/* Kubernetes names in GKE principals: namespaces. Kubernetes itself only
 * allows DNS-1123 labels, but IAM treats the subject as opaque text and
 * accepts a policy that names, say, the seed's literal placeholder
 * "ns/NAMESPACE/sa/KSA_NAME" (such a binding just never matches a pod). So
 * wisp accepts the characters a placeholder uses too: letters of either
 * case, digits, '-' and '_'. */
static int is_k8s_name_char(char ch)
{
    return is_alnum(ch) || ch == '-' || ch == '_';
}

static enum wisp_err check_k8s_label(struct pctx *px, struct span sp, const char *what)
{
    if (sp.len == 0)
        return fail(px, "empty %s", what);
    if (sp.len > DNS_LABEL_MAX)
        return fail(px, "%s '%.*s' is longer than %d bytes", what, SPAN_ARG(sp), DNS_LABEL_MAX);
    for (size_t i = 0; i < sp.len; i++) {
        if (!is_k8s_name_char(sp.p[i]))
            return fail(px, "%s '%.*s' is not a DNS-1123 label (letters, digits, '-')",
                        what, SPAN_ARG(sp));
    }
    if (sp.p[0] == '-' || sp.p[sp.len - 1] == '-')
        return fail(px, "%s '%.*s' must start and end with a letter or digit", what, SPAN_ARG(sp));
    return WISP_OK;
}

/* Kubernetes ServiceAccount names: DNS-1123 subdomains, with the same
 * tolerance as namespaces above. */
static enum wisp_err check_k8s_subdomain(struct pctx *px, struct span sp, const char *what)
{
    if (sp.len == 0)
        return fail(px, "empty %s", what);
    if (sp.len > KSA_NAME_MAX)
        return fail(px, "%s is longer than %d bytes", what, KSA_NAME_MAX);
    size_t start = 0;
    for (size_t i = 0; i <= sp.len; i++) {
        char ch = span_at(sp, i);
        if (i < sp.len && ch != '.') {
            if (!is_k8s_name_char(ch))
                return fail(px,
                            "%s '%.*s' is not a DNS-1123 subdomain (letters, digits, '-', "
                            "'.')",
                            what, SPAN_ARG(sp));
            continue;
        }
        struct span label = span_sub(sp, start, i - start);
        if (label.len == 0 || label.p[0] == '-' || label.p[label.len - 1] == '-')
            return fail(px,
                        "%s '%.*s' is not a DNS-1123 subdomain (each '.'-separated part "
                        "starts and ends with a letter or digit)",
                        what, SPAN_ARG(sp));
        start = i + 1;
    }
    return WISP_OK;
}

/* A Google project ID: lowercase letters, digits and '-', starting with a
 * letter and not ending with '-'. */
static enum wisp_err check_project_id(struct pctx *px, struct span sp, const char *what)
{
    if (sp.len == 0)
        return fail(px, "empty %s", what);
    int ok =
        sp.len <= PROJECT_ID_MAX && sp.p[0] >= 'a' && sp.p[0] <= 'z' && sp.p[sp.len - 1] != '-';
    for (size_t i = 0; ok && i < sp.len; i++)
        ok = is_lower_alnum(sp.p[i]) || sp.p[i] == '-';
    if (!ok)
        return fail(px,
                    "%s '%.*s' is not a project ID (at most %d lowercase letters, digits "
                    "and '-', starting with a letter, not ending with '-')",
                    what, SPAN_ARG(sp), PROJECT_ID_MAX);
    return WISP_OK;
}

/* Lowercase letters, digits, '-', between min and max bytes, optionally
 * required to start with a letter and not end with '-'. */
static int is_id(struct span sp, size_t min, size_t max, int strict_ends)
{
    if (sp.len < min || sp.len > max)
        return 0;
    for (size_t i = 0; i < sp.len; i++) {
        if (!is_lower_alnum(sp.p[i]) && sp.p[i] != '-')
            return 0;
    }
    if (strict_ends && (sp.p[0] < 'a' || sp.p[0] > 'z' || sp.p[sp.len - 1] == '-'))
        return 0;
    return 1;
}

static int has_reserved_prefix(struct span sp)
{
    return sp.len >= 4 && memcmp(sp.p, "gcp-", 4) == 0;
}

#define GKE_POOL_SUFFIX ".svc.id.goog"

/* A workload identity pool id: either a GKE pool, PROJECT_ID.svc.id.goog
 * (*gke_out = 1, *project_id_out = PROJECT_ID), or a plain pool id of 4-32
 * [a-z0-9-] not in Google's reserved "gcp-" space (*gke_out = 0). */
static enum wisp_err check_workload_pool(struct pctx *px, struct span pool, int *gke_out,
                                         char **project_id_out)
{
    if (pool.len == 0)
        return fail(px, "empty workload identity pool");
    if (span_has(pool, '.')) {
        if (!span_ends_with(pool, GKE_POOL_SUFFIX))
            return fail(px,
                        "workload identity pool '%.*s' is neither a pool id nor "
                        "PROJECT_ID" GKE_POOL_SUFFIX,
                        SPAN_ARG(pool));
        struct span pid = span_sub(pool, 0, pool.len - strlen(GKE_POOL_SUFFIX));
        enum wisp_err err = check_project_id(px, pid, "project ID in GKE pool");
        if (err)
            return err;
        *gke_out = 1;
        *project_id_out = span_dup(pid);
        return WISP_OK;
    }
    if (!is_id(pool, 4, 32, 0) || has_reserved_prefix(pool))
        return fail(px,
                    "workload identity pool '%.*s' is not a valid pool id (4-32 lowercase "
                    "letters, digits and '-', not starting with 'gcp-') nor "
                    "PROJECT_ID" GKE_POOL_SUFFIX,
                    SPAN_ARG(pool));
    *gke_out = 0;
    return WISP_OK;
}

static enum wisp_err check_workforce_pool(struct pctx *px, struct span pool)
{
    if (!is_id(pool, 6, 63, 1) || has_reserved_prefix(pool))
        return fail(px,
                    "workforce pool '%.*s' is not a valid pool id (6-63 lowercase letters, "
                    "digits and '-', starting with a letter, not ending with '-', not "
                    "starting with 'gcp-')",
                    SPAN_ARG(pool));
    return WISP_OK;
}

/* Free text at the end of a principal (subjects, group ids, attribute values,
 * agent paths). It may contain '/', as GitHub subjects do, but no empty,
 * "." or ".." segment: those would let one identifier be spelt two ways
 * once anything normalises the path. */
static enum wisp_err check_tail(struct pctx *px, struct span sp, size_t max, const char *what)
{
    if (sp.len == 0)
        return fail(px, "empty %s", what);
    if (sp.len > max)
        return fail(px, "%s is longer than %zu bytes", what, max);
    size_t start = 0;
    for (size_t i = 0; i <= sp.len; i++) {
        if (i < sp.len && sp.p[i] != '/')
            continue;
        struct span seg = span_sub(sp, start, i - start);
        if (seg.len == 0)
            return fail(px, "%s '%.*s' has an empty path segment", what, SPAN_ARG(sp));
        if (span_eq(seg, ".") || span_eq(seg, ".."))
            return fail(px, "%s '%.*s' has a '.' or '..' path segment", what, SPAN_ARG(sp));
        start = i + 1;
    }
    return WISP_OK;
}

static enum wisp_err check_attr_name(struct pctx *px, struct span sp)
{
    int ok = sp.len > 0 && sp.len <= ATTR_NAME_MAX;
    for (size_t i = 0; ok && i < sp.len; i++)
        ok = is_lower_alnum(sp.p[i]) || sp.p[i] == '_';
    if (!ok)
        return fail(px, "attribute name '%.*s' is not valid (1-%d of [a-z0-9_])", SPAN_ARG(sp),
                    ATTR_NAME_MAX);
    return WISP_OK;
}

/* Kubernetes object UIDs as the API server generates them. Uppercase hex is
 * refused rather than lowered: principal:// members are case-sensitive. */
static enum wisp_err check_k8s_uid(struct pctx *px, struct span sp)
{
    int ok = sp.len == 36;
    for (size_t i = 0; ok && i < sp.len; i++) {
        char ch = sp.p[i];
        if (i == 8 || i == 13 || i == 18 || i == 23)
            ok = ch == '-';
        else
            ok = is_digit(ch) || (ch >= 'a' && ch <= 'f');
    }
    if (!ok)
        return fail(px, "Kubernetes UID '%.*s' is not a lowercase 8-4-4-4-12 hex UUID",
                    SPAN_ARG(sp));
    return WISP_OK;
}

/* ------------------------------------------------------------------------ */
/* Member forms. Each parser fills m (which the caller frees on error). */

/* serviceAccount:PROJECT_ID.svc.id.goog[NS/KSA]. Not lowercased: Kubernetes
 * names and project IDs are lowercase by definition, so an uppercase letter
 * here is a typo that names nothing. */
static enum wisp_err parse_ksa_legacy(struct pctx *px, struct cur *c, struct wisp_member *m)
{
    struct span pool = cur_until(c, '[');
    enum wisp_err err;
    if (!span_ends_with(pool, GKE_POOL_SUFFIX))
        return fail(px, "'%.*s' is not a GKE workload pool (PROJECT_ID" GKE_POOL_SUFFIX ")",
                    SPAN_ARG(pool));
    struct span pid = span_sub(pool, 0, pool.len - strlen(GKE_POOL_SUFFIX));
    if ((err = check_project_id(px, pid, "project ID in GKE pool")))
        return err;
    cur_lit(c, "[");
    struct span ns = cur_until(c, '/');
    if (!cur_lit(c, "/"))
        return fail(px, "expected '[NAMESPACE/KSA]' after the pool");
    struct span ksa = cur_until(c, ']');
    if (!cur_lit(c, "]"))
        return fail(px, "missing ']' after the Kubernetes service account name");
    if ((err = want_end(px, c, "']'")))
        return err;
    if ((err = check_k8s_label(px, ns, "namespace")))
        return err;
    if ((err = check_k8s_subdomain(px, ksa, "Kubernetes service account name")))
        return err;
    m->type = WISP_MEMBER_KSA_LEGACY;
    m->pool = span_dup(pool);
    m->project_id = span_dup(pid);
    m->ns = span_dup(ns);
    m->ksa = span_dup(ksa);
    m->canon = wisp_xasprintf("serviceAccount:%s[%s/%s]", m->pool, m->ns, m->ksa);
    return WISP_OK;
}

/* subject/ns/NS/sa/KSA in a GKE pool. */
static enum wisp_err parse_gke_subject(struct pctx *px, struct span subj, struct wisp_member *m)
{
    struct cur c = {subj.p, subj.len, 0};
    enum wisp_err err;
    if (!cur_lit(&c, "ns/"))
        return fail(px, "GKE pool subject '%.*s' is not 'ns/NAMESPACE/sa/KSA'", SPAN_ARG(subj));
    struct span ns = cur_until(&c, '/');
    if (!cur_lit(&c, "/sa/"))
        return fail(px, "GKE pool subject '%.*s' is not 'ns/NAMESPACE/sa/KSA'", SPAN_ARG(subj));
    struct span ksa = cur_until(&c, '/');
    if (!cur_done(&c))
        return fail(px,
                    "GKE pool subject '%.*s' has too many segments (expected "
                    "'ns/NAMESPACE/sa/KSA')",
                    SPAN_ARG(subj));
    if ((err = check_k8s_label(px, ns, "namespace")))
        return err;
    if ((err = check_k8s_subdomain(px, ksa, "Kubernetes service account name")))
        return err;
    m->ns = span_dup(ns);
    m->ksa = span_dup(ksa);
    return WISP_OK;
}

/* https://container.googleapis.com/v1/projects/P/locations/L/clusters/C,
 * the cluster's OIDC issuer, spelt exactly as GKE writes it. */
static enum wisp_err parse_cluster_url(struct pctx *px, struct cur *c, struct wisp_member *m)
{
    size_t start = c->pos;
    enum wisp_err err;
    if ((err = want(px, c, "https://container.googleapis.com/v1/projects/")))
        return err;
    struct span proj = cur_until(c, '/');
    if ((err = check_project_id(px, proj, "cluster project ID")))
        return err;
    if ((err = want(px, c, "/locations/")))
        return err;
    struct span loc = cur_until(c, '/');
    if (!is_id(loc, 1, DNS_LABEL_MAX, 1))
        return fail(px, "cluster location '%.*s' is not a region or zone name", SPAN_ARG(loc));
    if ((err = want(px, c, "/clusters/")))
        return err;
    struct span name = cur_until(c, '/');
    if (!is_id(name, 1, CLUSTER_NAME_MAX, 1) || name.p[name.len - 1] == '-')
        return fail(px,
                    "cluster name '%.*s' is not valid (1-%d lowercase letters, digits and "
                    "'-', starting with a letter)",
                    SPAN_ARG(name), CLUSTER_NAME_MAX);
    if ((err = want_end(px, c, "the cluster name")))
        return err;
    struct span url = {c->s + start, c->pos - start};
    m->cluster_url = span_dup(url);
    m->cluster_project = span_dup(proj);
    m->cluster_location = span_dup(loc);
    m->cluster_name = span_dup(name);
    return WISP_OK;
}

/* attribute.NAME/VALUE, with the cursor just past "attribute.". */
static enum wisp_err parse_attribute(struct pctx *px, struct cur *c, struct wisp_member *m)
{
    struct span name = cur_until(c, '/');
    enum wisp_err err;
    if ((err = check_attr_name(px, name)))
        return err;
    if (!cur_lit(c, "/"))
        return fail(px, "expected '/VALUE' after 'attribute.%.*s'", SPAN_ARG(name));
    struct span value = cur_rest(c);
    if ((err = check_tail(px, value, SET_VALUE_MAX, "attribute value")))
        return err;
    m->attr_name = span_dup(name);
    m->attr_value = span_dup(value);
    return WISP_OK;
}

/* Names the selector at the cursor for "wrong prefix" messages. */
static struct span selector_word(const struct cur *c)
{
    struct span w = cur_peek_seg(c);
    struct span dot = w;
    for (size_t i = 0; i < w.len; i++) {
        if (w.p[i] == '.' && span_eq(span_sub(w, 0, i), "attribute")) {
            dot = span_sub(w, 0, i);
            break;
        }
    }
    return dot;
}

static int is_set_selector(struct span w)
{
    return span_eq(w, "*") || span_eq(w, "namespace") || span_eq(w, "kubernetes.cluster") ||
           span_eq(w, "group") || span_eq(w, "attribute");
}

static int is_single_selector(struct span w)
{
    return span_eq(w, "subject") || span_eq(w, "kubernetes.serviceaccount.uid");
}

/* What follows .../workloadIdentityPools/POOL/. */
static enum wisp_err parse_wi_selector(struct pctx *px, struct cur *c, int is_set, int gke,
                                       struct wisp_member *m)
{
    enum wisp_err err;
    struct span word = selector_word(c);
    if (!is_set) {
        if (cur_lit(c, "subject/")) {
            struct span subj = cur_rest(c);
            if ((err = check_tail(px, subj, gke ? GKE_SUBJECT_MAX : SUBJECT_MAX, "subject")))
                return err;
            if (gke && (err = parse_gke_subject(px, subj, m)))
                return err;
            m->type = WISP_MEMBER_WI_SUBJECT;
            m->subject = span_dup(subj);
            return WISP_OK;
        }
        if (cur_lit(c, "kubernetes.serviceaccount.uid/")) {
            if (!gke)
                return fail(px, "'kubernetes.serviceaccount.uid' applies only to GKE pools "
                                "(PROJECT_ID" GKE_POOL_SUFFIX ")");
            struct span uid = cur_rest(c);
            if ((err = check_k8s_uid(px, uid)))
                return err;
            m->type = WISP_MEMBER_WI_KSA_UID;
            m->ksa_uid = span_dup(uid);
            return WISP_OK;
        }
        if (is_set_selector(word))
            return fail(px, "'%.*s' selects a set of principals: use 'principalSet://'",
                        SPAN_ARG(word));
        return fail(px,
                    "unknown principal selector '%.*s' (expected 'subject/' or "
                    "'kubernetes.serviceaccount.uid/')",
                    SPAN_ARG(word));
    }
    if (cur_lit(c, "*")) {
        if ((err = want_end(px, c, "'*'")))
            return err;
        m->type = WISP_MEMBER_WI_SET_POOL;
        return WISP_OK;
    }
    if (cur_lit(c, "namespace/")) {
        if (!gke)
            return fail(px,
                        "'namespace' applies only to GKE pools (PROJECT_ID" GKE_POOL_SUFFIX ")");
        struct span ns = cur_rest(c);
        if ((err = check_k8s_label(px, ns, "namespace")))
            return err;
        m->type = WISP_MEMBER_WI_SET_NAMESPACE;
        m->ns = span_dup(ns);
        return WISP_OK;
    }
    if (cur_lit(c, "kubernetes.cluster/")) {
        if (!gke)
            return fail(px,
                        "'kubernetes.cluster' applies only to GKE pools (PROJECT_ID" GKE_POOL_SUFFIX
                        ")");
        if ((err = parse_cluster_url(px, c, m)))
            return err;
        m->type = WISP_MEMBER_WI_SET_CLUSTER;
        return WISP_OK;
    }
    if (span_eq(word, "group") || span_eq(word, "attribute")) {
        /* A GKE pool's attributes are fixed by GKE and carry no groups or
         * custom attributes, so such a set could never match anyone. */
        if (gke)
            return fail(px,
                        "GKE pools have no '%.*s' mapping; use 'namespace/', "
                        "'kubernetes.cluster/' or '*'",
                        SPAN_ARG(word));
        if (cur_lit(c, "group/")) {
            struct span g = cur_rest(c);
            if ((err = check_tail(px, g, SET_VALUE_MAX, "group id")))
                return err;
            m->type = WISP_MEMBER_WI_SET_GROUP;
            m->group = span_dup(g);
            return WISP_OK;
        }
        if (cur_lit(c, "attribute.")) {
            if ((err = parse_attribute(px, c, m)))
                return err;
            m->type = WISP_MEMBER_WI_SET_ATTRIBUTE;
            return WISP_OK;
        }
    }
    if (is_single_selector(word))
        return fail(px, "'%.*s' selects a single principal: use 'principal://'", SPAN_ARG(word));
    return fail(px,
                "unknown principal set selector '%.*s' (expected '*', 'namespace/', "
                "'kubernetes.cluster/', 'group/' or 'attribute.NAME/')",
                SPAN_ARG(word));
}

static enum wisp_err parse_wf_selector(struct pctx *px, struct cur *c, int is_set,
                                       struct wisp_member *m)
{
    enum wisp_err err;
    struct span word = selector_word(c);
    if (!is_set) {
        if (cur_lit(c, "subject/")) {
            struct span subj = cur_rest(c);
            if ((err = check_tail(px, subj, SUBJECT_MAX, "subject")))
                return err;
            m->type = WISP_MEMBER_WF_SUBJECT;
            m->subject = span_dup(subj);
            return WISP_OK;
        }
        if (is_set_selector(word))
            return fail(px, "'%.*s' selects a set of principals: use 'principalSet://'",
                        SPAN_ARG(word));
        return fail(px, "unknown workforce principal selector '%.*s' (expected 'subject/')",
                    SPAN_ARG(word));
    }
    if (cur_lit(c, "*")) {
        if ((err = want_end(px, c, "'*'")))
            return err;
        m->type = WISP_MEMBER_WF_SET_POOL;
        return WISP_OK;
    }
    if (cur_lit(c, "group/")) {
        struct span g = cur_rest(c);
        if ((err = check_tail(px, g, SET_VALUE_MAX, "group id")))
            return err;
        m->type = WISP_MEMBER_WF_SET_GROUP;
        m->group = span_dup(g);
        return WISP_OK;
    }
    if (cur_lit(c, "attribute.")) {
        if ((err = parse_attribute(px, c, m)))
            return err;
        m->type = WISP_MEMBER_WF_SET_ATTRIBUTE;
        return WISP_OK;
    }
    if (is_single_selector(word))
        return fail(px, "'%.*s' selects a single principal: use 'principal://'", SPAN_ARG(word));
    return fail(px,
                "unknown workforce principal set selector '%.*s' (expected '*', 'group/' or "
                "'attribute.NAME/')",
                SPAN_ARG(word));
}

/* iam.googleapis.com/projects/NUM/locations/global/workloadIdentityPools/POOL/…
 * or iam.googleapis.com/locations/global/workforcePools/POOL/…, cursor just
 * past "iam.googleapis.com/". */
static enum wisp_err parse_iam_principal(struct pctx *px, struct cur *c, int is_set,
                                         struct wisp_member *m)
{
    enum wisp_err err;
    if (cur_lit(c, "projects/")) {
        struct span num = cur_until(c, '/');
        if ((err = check_number(px, num, PROJECT_NUMBER_DIGITS, "project number")))
            return err;
        if ((err = want(px, c, "/locations/global/workloadIdentityPools/")))
            return err;
        struct span pool = cur_until(c, '/');
        int gke = 0;
        if ((err = check_workload_pool(px, pool, &gke, &m->project_id)))
            return err;
        if ((err = want(px, c, "/")))
            return err;
        m->project_number = span_dup(num);
        m->pool = span_dup(pool);
        return parse_wi_selector(px, c, is_set, gke, m);
    }
    if (cur_lit(c, "locations/")) {
        if ((err = want(px, c, "global/workforcePools/")))
            return err;
        struct span pool = cur_until(c, '/');
        if ((err = check_workforce_pool(px, pool)))
            return err;
        if ((err = want(px, c, "/")))
            return err;
        m->pool = span_dup(pool);
        return parse_wf_selector(px, c, is_set, m);
    }
    return fail(px, "expected 'projects/NUMBER/...' or 'locations/global/workforcePools/...' after "
                    "'iam.googleapis.com/'");
}

/* principalSet://cloudresourcemanager.googleapis.com/KIND/NUM/type/ServiceAccount */
static enum wisp_err parse_crm_set(struct pctx *px, struct cur *c, struct wisp_member *m)
{
    enum wisp_err err;
    struct span kind = cur_until(c, '/');
    enum wisp_member_type t;
    char **slot;
    if (span_eq(kind, "projects")) {
        t = WISP_MEMBER_PROJECT_SA_SET;
        slot = &m->project_number;
    } else if (span_eq(kind, "folders")) {
        t = WISP_MEMBER_FOLDER_SA_SET;
        slot = &m->folder_number;
    } else if (span_eq(kind, "organizations")) {
        t = WISP_MEMBER_ORG_SA_SET;
        slot = &m->org_number;
    } else {
        return fail(px, "expected 'projects', 'folders' or 'organizations', found '%.*s'",
                    SPAN_ARG(kind));
    }
    if ((err = want(px, c, "/")))
        return err;
    struct span num = cur_until(c, '/');
    if ((err = check_number(px, num, PROJECT_NUMBER_DIGITS, "resource number")))
        return err;
    if ((err = want(px, c, "/type/ServiceAccount")))
        return err;
    if ((err = want_end(px, c, "'type/ServiceAccount'")))
        return err;
    m->type = t;
    *slot = span_dup(num);
    return WISP_OK;
}

/* Agent identities (Preview): principal://TRUST_DOMAIN/PATH and
 * principalSet://TRUST_DOMAIN/ followed by '*'. Trust domains are Google-managed names
 * under id.goog; a GKE pool name is refused here because
 * "principal://P.svc.id.goog/…" is a plausible mistake that would otherwise
 * silently name an agent instead of a KSA. */
static enum wisp_err parse_agent(struct pctx *px, struct cur *c, int is_set, struct wisp_member *m)
{
    enum wisp_err err;
    struct span host = cur_until(c, '/');
    if (span_eq_ci(host, "iam.googleapis.com") ||
        span_eq_ci(host, "cloudresourcemanager.googleapis.com"))
        return fail(px, "host '%.*s' is case-sensitive and must be followed by '/'",
                    SPAN_ARG(host));
    if (span_ends_with(host, GKE_POOL_SUFFIX))
        return fail(px,
                    "'%.*s' is a GKE workload pool, not a host: use "
                    "'principal://iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/"
                    "workloadIdentityPools/%.*s/...'",
                    SPAN_ARG(host), SPAN_ARG(host));
    if (!span_ends_with(host, ".id.goog"))
        return fail(px,
                    "unknown principal host '%.*s' (expected 'iam.googleapis.com', "
                    "'cloudresourcemanager.googleapis.com' or an agent trust domain under "
                    "'id.goog')",
                    SPAN_ARG(host));
    for (size_t i = 0; i < host.len; i++) {
        if (host.p[i] >= 'A' && host.p[i] <= 'Z')
            return fail(px, "trust domain '%.*s' must be lowercase", SPAN_ARG(host));
    }
    if ((err = check_dns_name(px, host, "trust domain")))
        return err;
    if ((err = want(px, c, "/")))
        return err;
    if (is_set) {
        if ((err = want(px, c, "*")))
            return err;
        if ((err = want_end(px, c, "'*'")))
            return err;
        m->type = WISP_MEMBER_AGENT_SET;
        m->trust_domain = span_dup(host);
        return WISP_OK;
    }
    struct span path = cur_rest(c);
    if ((err = check_tail(px, path, AGENT_PATH_MAX, "agent path")))
        return err;
    m->type = WISP_MEMBER_AGENT;
    m->trust_domain = span_dup(host);
    m->agent_path = span_dup(path);
    return WISP_OK;
}

/* principal:// and principalSet://, cursor just past "//". Nothing in these
 * forms is normalised (Google treats them case-sensitively), so the
 * canonical spelling is the input itself once it validates. */
static enum wisp_err parse_principal(struct pctx *px, struct cur *c, int is_set,
                                     struct wisp_member *m)
{
    enum wisp_err err;
    size_t start = c->pos - strlen(is_set ? "principalSet://" : "principal://");
    if (cur_lit(c, "iam.googleapis.com/")) {
        err = parse_iam_principal(px, c, is_set, m);
    } else if (cur_lit(c, "cloudresourcemanager.googleapis.com/")) {
        if (!is_set)
            return fail(px, "cloudresourcemanager.googleapis.com names sets of service "
                            "accounts: use 'principalSet://'");
        err = parse_crm_set(px, c, m);
    } else {
        err = parse_agent(px, c, is_set, m);
    }
    if (err)
        return err;
    m->canon = wisp_xstrndup(c->s + start, c->len - start);
    return WISP_OK;
}

struct type_word {
    const char *word;
    enum wisp_member_type type;
};

/* The "TYPE:" prefixes, spelt exactly as Google spells them. */
static const struct type_word type_words[] = {
    {"user", WISP_MEMBER_USER},
    {"serviceAccount", WISP_MEMBER_SERVICE_ACCOUNT},
    {"group", WISP_MEMBER_GROUP},
    {"domain", WISP_MEMBER_DOMAIN},
    {"deleted", WISP_MEMBER_DELETED},
    {"principal", WISP_MEMBER_WI_SUBJECT},     /* stands for all principal:// forms */
    {"principalSet", WISP_MEMBER_WI_SET_POOL}, /* stands for all principalSet:// forms */
};

/* deleted:user|serviceAccount|group:EMAIL?uid=N, or deleted:principal://…
 * for a workforce subject (the only deleted principal:// Google documents). */
static enum wisp_err parse_deleted(struct pctx *px, struct cur *c, struct wisp_member *m)
{
    enum wisp_err err;
    if (cur_lit(c, "principal://")) {
        if ((err = parse_principal(px, c, 0, m)))
            return err;
        if (m->type != WISP_MEMBER_WF_SUBJECT)
            return fail(px, "only workforce pool subjects appear as 'deleted:principal://' "
                            "members");
        char *inner = m->canon;
        m->canon = wisp_xasprintf("deleted:%s", inner);
        free(inner);
        m->deleted_of = m->type;
        m->type = WISP_MEMBER_DELETED;
        return WISP_OK;
    }
    struct span tw = cur_until(c, ':');
    const char *word;
    if (span_eq(tw, "user")) {
        m->deleted_of = WISP_MEMBER_USER;
        word = "user";
    } else if (span_eq(tw, "serviceAccount")) {
        m->deleted_of = WISP_MEMBER_SERVICE_ACCOUNT;
        word = "serviceAccount";
    } else if (span_eq(tw, "group")) {
        m->deleted_of = WISP_MEMBER_GROUP;
        word = "group";
    } else {
        return fail(px,
                    "unknown deleted member type '%.*s' (expected 'user', 'serviceAccount', "
                    "'group' or 'principal')",
                    SPAN_ARG(tw));
    }
    if (!cur_lit(c, ":"))
        return fail(px, "expected ':' after 'deleted:%s'", word);
    struct span email = cur_until(c, '?');
    if ((err = parse_email(px, email, &m->email)))
        return err;
    if (!cur_lit(c, "?uid="))
        return fail(px, "deleted members end in '?uid=NUMBER'");
    struct span uid = cur_rest(c);
    if ((err = check_number(px, uid, UID_DIGITS, "deleted member uid")))
        return err;
    m->uid = span_dup(uid);
    m->type = WISP_MEMBER_DELETED;
    m->canon = wisp_xasprintf("deleted:%s:%s?uid=%s", word, m->email, m->uid);
    return WISP_OK;
}

static enum wisp_err parse_typed(struct pctx *px, struct cur *c, struct wisp_member *m)
{
    struct span tw = cur_until(c, ':');
    enum wisp_err err;
    if (cur_done(c)) {
        /* No ':' at all: only the two bare words exist. */
        if (span_eq(tw, "allUsers") || span_eq(tw, "allAuthenticatedUsers")) {
            m->type = span_eq(tw, "allUsers") ? WISP_MEMBER_ALL_USERS
                                              : WISP_MEMBER_ALL_AUTHENTICATED_USERS;
            m->canon = span_dup(tw);
            return WISP_OK;
        }
        if (span_eq_ci(tw, "allUsers") || span_eq_ci(tw, "allAuthenticatedUsers"))
            return fail(px, "member types are case-sensitive: did you mean '%s'?",
                        span_eq_ci(tw, "allUsers") ? "allUsers" : "allAuthenticatedUsers");
        return fail(px, "missing member type (expected TYPE:VALUE, 'allUsers' or "
                        "'allAuthenticatedUsers')");
    }
    cur_lit(c, ":");
    if (tw.len == 0)
        return fail(px, "missing member type before ':'");
    if (span_eq_ci(tw, "allUsers") || span_eq_ci(tw, "allAuthenticatedUsers"))
        return fail(px, "'%.*s' takes no value", SPAN_ARG(tw));
    const struct type_word *found = NULL;
    for (size_t i = 0; i < sizeof type_words / sizeof type_words[0]; i++) {
        if (span_eq(tw, type_words[i].word)) {
            found = &type_words[i];
            break;
        }
        if (span_eq_ci(tw, type_words[i].word))
            return fail(px, "member types are case-sensitive: did you mean '%s'?",
                        type_words[i].word);
    }
    if (!found)
        return fail(px, "unknown member type '%.*s'", SPAN_ARG(tw));

    switch (found->type) {
    case WISP_MEMBER_USER:
    case WISP_MEMBER_GROUP:
    case WISP_MEMBER_SERVICE_ACCOUNT: {
        struct span rest = {c->s + c->pos, c->len - c->pos};
        if (found->type == WISP_MEMBER_SERVICE_ACCOUNT && span_has(rest, '['))
            return parse_ksa_legacy(px, c, m);
        if ((err = parse_email(px, cur_rest(c), &m->email)))
            return err;
        m->type = found->type;
        m->canon = wisp_xasprintf("%s:%s", found->word, m->email);
        return WISP_OK;
    }
    case WISP_MEMBER_DOMAIN: {
        struct span d = cur_rest(c);
        if ((err = check_dns_name(px, d, "domain")))
            return err;
        m->type = WISP_MEMBER_DOMAIN;
        m->domain = span_dup_lower(d);
        m->canon = wisp_xasprintf("domain:%s", m->domain);
        return WISP_OK;
    }
    case WISP_MEMBER_DELETED:
        return parse_deleted(px, c, m);
    default: {
        int is_set = found->type == WISP_MEMBER_WI_SET_POOL;
        if (!cur_lit(c, "//"))
            return fail(px, "expected '//' after '%s:'", found->word);
        return parse_principal(px, c, is_set, m);
    }
    }
}

/* ------------------------------------------------------------------------ */
/* Public API. */

enum wisp_err wisp_member_parse(const char *s, struct wisp_member *out, char *errmsg, size_t errlen)
{
    if (errmsg && errlen)
        errmsg[0] = '\0';
    if (out)
        memset(out, 0, sizeof *out);
    if (!s || !out) {
        if (errmsg && errlen)
            snprintf(errmsg, errlen, "Invalid member: no member given");
        return WISP_EINVAL;
    }
    /* strnlen bounds the scan: a huge input costs at most MAX+1 bytes. */
    size_t len = strnlen(s, WISP_MEMBER_MAX_LEN + 1);
    struct pctx px = {s, len, errmsg, errlen};
    if (len == 0)
        return fail(&px, "member is empty");
    if (len > WISP_MEMBER_MAX_LEN)
        return fail(&px, "longer than %d bytes", WISP_MEMBER_MAX_LEN);
    enum wisp_err err = check_bytes(&px);
    if (err)
        return err;
    struct wisp_member m = {0};
    struct cur c = {s, len, 0};
    err = parse_typed(&px, &c, &m);
    if (!err && !m.canon)
        err = fail(&px, "internal error: no canonical form"); /* a parser bug, not input */
    if (err) {
        wisp_member_free(&m);
        return err;
    }
    *out = m;
    return WISP_OK;
}

void wisp_member_free(struct wisp_member *m)
{
    if (!m)
        return;
    char **fields[] = {&m->canon,
                       &m->email,
                       &m->domain,
                       &m->uid,
                       &m->project_number,
                       &m->folder_number,
                       &m->org_number,
                       &m->pool,
                       &m->project_id,
                       &m->subject,
                       &m->ns,
                       &m->ksa,
                       &m->ksa_uid,
                       &m->cluster_url,
                       &m->cluster_project,
                       &m->cluster_location,
                       &m->cluster_name,
                       &m->group,
                       &m->attr_name,
                       &m->attr_value,
                       &m->trust_domain,
                       &m->agent_path};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        WISP_FREE(*fields[i]);
    memset(m, 0, sizeof *m);
}

enum wisp_err wisp_member_canonicalize(const char *s, char **canon_out, char *errmsg, size_t errlen)
{
    struct wisp_member m;
    if (canon_out)
        *canon_out = NULL;
    enum wisp_err err = wisp_member_parse(s, &m, errmsg, errlen);
    if (err)
        return err;
    if (canon_out) {
        *canon_out = m.canon;
        m.canon = NULL; /* ownership moved to the caller */
    }
    wisp_member_free(&m);
    return WISP_OK;
}

const char *wisp_member_type_name(enum wisp_member_type t)
{
    switch (t) {
    case WISP_MEMBER_NONE:
        return "none";
    case WISP_MEMBER_USER:
        return "user";
    case WISP_MEMBER_SERVICE_ACCOUNT:
        return "serviceAccount";
    case WISP_MEMBER_GROUP:
        return "group";
    case WISP_MEMBER_DOMAIN:
        return "domain";
    case WISP_MEMBER_ALL_USERS:
        return "allUsers";
    case WISP_MEMBER_ALL_AUTHENTICATED_USERS:
        return "allAuthenticatedUsers";
    case WISP_MEMBER_DELETED:
        return "deleted";
    case WISP_MEMBER_KSA_LEGACY:
        return "serviceAccount (Kubernetes service account)";
    case WISP_MEMBER_WI_SUBJECT:
        return "principal (workload pool subject)";
    case WISP_MEMBER_WI_KSA_UID:
        return "principal (Kubernetes service account UID)";
    case WISP_MEMBER_WI_SET_NAMESPACE:
        return "principalSet (Kubernetes namespace)";
    case WISP_MEMBER_WI_SET_CLUSTER:
        return "principalSet (GKE cluster)";
    case WISP_MEMBER_WI_SET_POOL:
        return "principalSet (workload pool)";
    case WISP_MEMBER_WI_SET_GROUP:
        return "principalSet (workload pool group)";
    case WISP_MEMBER_WI_SET_ATTRIBUTE:
        return "principalSet (workload pool attribute)";
    case WISP_MEMBER_WF_SUBJECT:
        return "principal (workforce pool subject)";
    case WISP_MEMBER_WF_SET_GROUP:
        return "principalSet (workforce pool group)";
    case WISP_MEMBER_WF_SET_ATTRIBUTE:
        return "principalSet (workforce pool attribute)";
    case WISP_MEMBER_WF_SET_POOL:
        return "principalSet (workforce pool)";
    case WISP_MEMBER_PROJECT_SA_SET:
        return "principalSet (service accounts of a project)";
    case WISP_MEMBER_FOLDER_SA_SET:
        return "principalSet (service accounts of a folder)";
    case WISP_MEMBER_ORG_SA_SET:
        return "principalSet (service accounts of an organization)";
    case WISP_MEMBER_AGENT:
        return "principal (agent identity)";
    case WISP_MEMBER_AGENT_SET:
        return "principalSet (agent trust domain)";
    }
    return "unknown";
}

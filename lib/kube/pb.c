/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes protobuf bodies to JSON (include/wisp/kube_pb.h). protobuf-c
 * unpacks them with the code protoc-c generates from proto/k8s.proto; one
 * walker over protobuf-c's descriptors renders any of its messages, with a
 * small table for the fields whose Go JSON is not plain omitempty. When
 * protobuf-c refuses a body, a second walk over the wire framing, guided by
 * the same descriptors, finds the field at fault for the error message. */
#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "wisp/alloc.h"
#include "wisp/kube_pb.h"
#include "k8s.pb-c.h"

#define PB_CONTENT_TYPE "application/vnd.kubernetes.protobuf"
/* Message nesting in proto/k8s.proto is fixed and shallow (a quantity in
 * a container's resources is 6 deep); the diagnostic walk stops here. */
#define PB_MAX_DEPTH 16
/* Go's zero time.Time (0001-01-01T00:00:00Z) and the last second of year
 * 9999 as Unix seconds: RFC 3339 has four-digit years. */
#define PB_TIME_ZERO INT64_C(-62135596800)
#define PB_TIME_MAX INT64_C(253402300799)

/* How a field's JSON differs from Go's omitempty on a non-pointer field,
 * which leaves out "", 0 and false. */
enum pb_shape {
    PB_OMITEMPTY = 0,
    PB_ALWAYS,  /* no omitempty: the zero value appears, sent or not */
    PB_POINTER, /* a *T: appears whenever it was sent, zero or not */
};

struct pb_rule {
    const ProtobufCMessageDescriptor *msg;
    const char *field;
    enum pb_shape shape;
};

/* From the json tags of k8s.io/api/core/v1 and apimachinery meta/v1. */
static const struct pb_rule pb_rules[] = {
    {&wisp__kube__container__descriptor, "name", PB_ALWAYS},
    {&wisp__kube__env_var__descriptor, "name", PB_ALWAYS},
    {&wisp__kube__container_port__descriptor, "containerPort", PB_ALWAYS},
    {&wisp__kube__owner_reference__descriptor, "apiVersion", PB_ALWAYS},
    {&wisp__kube__owner_reference__descriptor, "kind", PB_ALWAYS},
    {&wisp__kube__owner_reference__descriptor, "name", PB_ALWAYS},
    {&wisp__kube__owner_reference__descriptor, "uid", PB_ALWAYS},
    {&wisp__kube__owner_reference__descriptor, "controller", PB_POINTER},
    {&wisp__kube__owner_reference__descriptor, "blockOwnerDeletion", PB_POINTER},
    {&wisp__kube__object_meta__descriptor, "deletionGracePeriodSeconds", PB_POINTER},
    {&wisp__kube__service_account__descriptor, "automountServiceAccountToken", PB_POINTER},
    {&wisp__kube__pod_spec__descriptor, "terminationGracePeriodSeconds", PB_POINTER},
    {&wisp__kube__pod_spec__descriptor, "activeDeadlineSeconds", PB_POINTER},
    {&wisp__kube__pod_spec__descriptor, "automountServiceAccountToken", PB_POINTER},
    {&wisp__kube__pod_spec__descriptor, "priority", PB_POINTER},
    {&wisp__kube__pod_spec__descriptor, "enableServiceLinks", PB_POINTER},
    {&wisp__kube__token_request_spec__descriptor, "expirationSeconds", PB_POINTER},
};

/* The kinds a body may hold. */
static const struct {
    const char *api_version, *kind;
    const ProtobufCMessageDescriptor *desc;
} pb_kinds[] = {
    {"v1", "Namespace", &wisp__kube__namespace__descriptor},
    {"v1", "ServiceAccount", &wisp__kube__service_account__descriptor},
    {"v1", "Pod", &wisp__kube__pod__descriptor},
    {"authentication.k8s.io/v1", "TokenRequest", &wisp__kube__token_request__descriptor},
};

/* One decode: where the error goes, the path of the field being walked
 * ("Pod.spec.containers[0]") and what protobuf-c may still allocate. */
struct pb {
    char *err;
    size_t errlen;
    enum wisp_err rc;
    char path[192];
    size_t plen;
    size_t budget;
    int over; /* protobuf-c asked for more than the budget */
};

/* Records the first failure: rc, and a one-line reason that is safe in a
 * JSON Status body: control bytes from the body become spaces and bytes
 * past ASCII '?' (a cut or invalid UTF-8 sequence would make jansson
 * refuse the message). */
static void fail(struct pb *pb, enum wisp_err rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct pb *pb, enum wisp_err rc, const char *fmt, ...)
{
    if (pb->rc != WISP_OK)
        return;
    pb->rc = rc;
    if (!pb->err || !pb->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pb->err, pb->errlen, fmt, ap);
    va_end(ap);
    for (char *p = pb->err; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
        else if ((unsigned char)*p > 0x7f)
            *p = '?';
    }
}

/* Appends to the path (".name" or "[3]"); returns the length to restore.
 * A path too long for the buffer is cut, which only shortens messages. */
static size_t path_push(struct pb *pb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(struct pb *pb, const char *fmt, ...)
{
    size_t old = pb->plen;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(pb->path + old, sizeof(pb->path) - old, fmt, ap);
    va_end(ap);
    if (n > 0)
        pb->plen = old + (size_t)n < sizeof(pb->path) ? old + (size_t)n : sizeof(pb->path) - 1;
    return old;
}

static void path_pop(struct pb *pb, size_t old)
{
    pb->plen = old;
    pb->path[old] = '\0';
}

/* protobuf-c's allocator: wisp's, within the budget. */
static void *pb_alloc(void *data, size_t n)
{
    struct pb *pb = data;
    if (n > pb->budget) {
        pb->over = 1;
        return NULL;
    }
    pb->budget -= n;
    return wisp_xmalloc(n);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    free(p);
}

/* ---- explaining a refusal --------------------------------------------------- */

/* A base-128 varint at p (n bytes available) into *v; returns its length,
 * or 0 if it runs past n or past 10 bytes. */
static size_t varint(const uint8_t *p, size_t n, uint64_t *v)
{
    *v = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        *v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80))
            return i + 1;
    }
    return 0;
}

/* The wire type protobuf-c expects for a field (packed repeated scalars
 * aside, which k8s.proto has none of). */
static unsigned wire_type_of(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return 2;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    default:
        return 0;
    }
}

/* Walks p[0..n) as a message of d (NULL: a field wisp does not decode) to
 * name what protobuf-c refused: a field that runs past its message, a
 * bad key, or a wire type that does not match the field's type. Returns 1
 * when it found and reported one. */
static int explain(struct pb *pb, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                   int depth)
{
    size_t i = 0;
    while (i < n) {
        uint64_t key, len = 0;
        size_t k = varint(p + i, n - i, &key);
        if (!k || key >> 32 || (key >> 3) == 0) {
            fail(pb, WISP_EINVAL, "malformed protobuf: %s: bad field key at byte %zu", pb->path,
                 i);
            return 1;
        }
        i += k;
        uint32_t num = (uint32_t)(key >> 3);
        unsigned wt = (unsigned)(key & 7);
        const ProtobufCFieldDescriptor *f =
            d ? protobuf_c_message_descriptor_get_field(d, num) : NULL;
        char name[96];
        snprintf(name, sizeof(name), "field %u%s%s%s", num, f ? " (" : "", f ? f->name : "",
                 f ? ")" : "");
        if (f && wt != wire_type_of(f)) {
            fail(pb, WISP_EINVAL, "malformed protobuf: %s %s has wire type %u, expected %u",
                 pb->path, name, wt, wire_type_of(f));
            return 1;
        }
        switch (wt) {
        case 0:
            k = varint(p + i, n - i, &len);
            len = 0;
            break;
        case 1:
            k = n - i >= 8 ? 8 : 0;
            break;
        case 5:
            k = n - i >= 4 ? 4 : 0;
            break;
        case 2:
            k = varint(p + i, n - i, &len);
            if (k && len > n - i - k) {
                fail(pb, WISP_EINVAL,
                     "truncated protobuf: %s %s needs %llu bytes, %zu remain", pb->path, name,
                     (unsigned long long)len, n - i - k);
                return 1;
            }
            break;
        default:
            fail(pb, WISP_EINVAL, "malformed protobuf: %s %s has wire type %u (groups and "
                 "reserved types are not used by Kubernetes)", pb->path, name, wt);
            return 1;
        }
        if (!k) {
            fail(pb, WISP_EINVAL, "truncated protobuf: %s %s ends early", pb->path, name);
            return 1;
        }
        i += k;
        if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < PB_MAX_DEPTH) {
            size_t old = path_push(pb, ".%s", f->name);
            int found = explain(pb, f->descriptor, p + i, (size_t)len, depth + 1);
            path_pop(pb, old);
            if (found)
                return 1;
        }
        i += (size_t)len;
    }
    return 0;
}

/* Reports why protobuf-c returned NULL for p[0..n) as a d. */
static void unpack_failed(struct pb *pb, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                          size_t n)
{
    if (pb->over) {
        fail(pb, WISP_ETOOBIG, "protobuf body needs more than %u bytes of memory to decode",
             (unsigned)WISP_KUBE_PB_MAX_DECODED);
        return;
    }
    if (!explain(pb, d, p, n, 0))
        fail(pb, WISP_EINVAL, "malformed protobuf: %s is not a valid %s message", pb->path,
             d->short_name);
}

/* ---- rendering -------------------------------------------------------------- */

static enum pb_shape shape_of(const ProtobufCMessageDescriptor *d, const char *field)
{
    for (size_t i = 0; i < sizeof(pb_rules) / sizeof(pb_rules[0]); i++)
        if (pb_rules[i].msg == d && !strcmp(pb_rules[i].field, field))
            return pb_rules[i].shape;
    return PB_OMITEMPTY;
}

/* Refuses a field m's message type does not declare but that carries a
 * value (gogo-protobuf sends every non-pointer field, so zero values of
 * fields wisp leaves out are normal), rather than dropping it unseen. The
 * statuses the server writes are not read at all. */
static int unknown_ok(struct pb *pb, const ProtobufCMessage *m)
{
    if (m->descriptor == &wisp__kube__pod_status__descriptor ||
        m->descriptor == &wisp__kube__token_request_status__descriptor)
        return 1;
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        int zero = 1;
        uint64_t v;
        /* A varint 0, or a length prefix of 0: protobuf-c keeps the
         * prefix with the bytes of a length-delimited field. */
        if (u->wire_type == PROTOBUF_C_WIRE_TYPE_VARINT ||
            u->wire_type == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) {
            zero = varint(u->data, u->len, &v) && v == 0;
        } else {
            for (size_t j = 0; j < u->len; j++)
                zero &= u->data[j] == 0;
        }
        if (!zero) {
            fail(pb, WISP_EINVAL, "%s has protobuf field %u, which wisp does not decode; send "
                 "JSON", pb->path, (unsigned)u->tag);
            return 0;
        }
    }
    return 1;
}

/* A meta/v1 Time as Kubernetes writes it: RFC 3339 seconds in UTC. An
 * empty Time is the zero time, which JSON leaves out (*out NULL). Go keeps
 * only the seconds of a protobuf time. */
static int render_time(struct pb *pb, const struct Wisp__Kube__Time *t, json_t **out)
{
    *out = NULL;
    if (!t->has_seconds && !t->has_nanos)
        return 1;
    int64_t s = t->has_seconds ? t->seconds : 0;
    if (s == PB_TIME_ZERO)
        return 1;
    struct tm tm;
    time_t tt = (time_t)s;
    if (s < PB_TIME_ZERO || s > PB_TIME_MAX || !gmtime_r(&tt, &tm)) {
        fail(pb, WISP_EINVAL, "%s: time %lld is out of range", pb->path, (long long)s);
        return 0;
    }
    char buf[80]; /* the compiler cannot see that tm is in range */
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    *out = json_string(buf);
    if (!*out)
        fail(pb, WISP_ENOMEM, "out of memory");
    return *out != NULL;
}

static int render_fields(struct pb *pb, const ProtobufCMessage *m, json_t *o);

/* One value of field f stored at p, as JSON into *out (a message may
 * render as nothing: *out NULL). Returns 0 on failure. */
static int render_value(struct pb *pb, const ProtobufCFieldDescriptor *f, const void *p,
                        json_t **out)
{
    *out = NULL;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        *out = json_string(s ? s : "");
        if (!*out)
            fail(pb, WISP_EINVAL, "%s is not valid UTF-8", pb->path);
        return *out != NULL;
    }
    case PROTOBUF_C_TYPE_BOOL:
        *out = json_boolean(*(const protobuf_c_boolean *)p);
        break;
    case PROTOBUF_C_TYPE_INT32:
        *out = json_integer(*(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
        *out = json_integer(*(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (!sub)
            return 1;
        if (sub->descriptor == &wisp__kube__time__descriptor)
            return render_time(pb, (const struct Wisp__Kube__Time *)sub, out);
        if (sub->descriptor == &wisp__kube__quantity__descriptor) {
            const char *s = ((const struct Wisp__Kube__Quantity *)sub)->string;
            *out = json_string(s ? s : "");
            if (!*out)
                fail(pb, WISP_EINVAL, "%s is not valid UTF-8", pb->path);
            return *out != NULL;
        }
        *out = json_object();
        if (*out && !render_fields(pb, sub, *out)) {
            json_decref(*out);
            *out = NULL;
            return 0;
        }
        break;
    }
    default:
        /* k8s.proto declares no other type outside the envelope. */
        fail(pb, WISP_EINVAL, "%s: protobuf type %d is not rendered", pb->path, (int)f->type);
        return 0;
    }
    if (!*out)
        fail(pb, WISP_ENOMEM, "out of memory");
    return *out != NULL;
}

/* 1 when f is a map (protoc-c makes map<K,V> a repeated XEntry message of
 * key 1 and value 2). */
static int is_map(const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label != PROTOBUF_C_LABEL_REPEATED ||
        d->n_fields != 2)
        return 0;
    size_t n = strlen(d->short_name);
    return n > 5 && !strcmp(d->short_name + n - 5, "Entry") && !strcmp(d->fields[0].name, "key") &&
           !strcmp(d->fields[1].name, "value");
}

/* Size of one element of a repeated field's array. */
static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_INT64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return sizeof(void *); /* strings and messages are pointers */
    }
}

/* A repeated field of n elements at arr: an array, or an object for a map
 * (a key sent twice keeps its last value, as Go's decoder does). */
static int render_repeated(struct pb *pb, const ProtobufCFieldDescriptor *f, const char *arr,
                           size_t n, json_t **out)
{
    int map = is_map(f);
    *out = map ? json_object() : json_array();
    if (!*out) {
        fail(pb, WISP_ENOMEM, "out of memory");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const void *p = arr + i * elem_size(f);
        json_t *v = NULL;
        int ok;
        if (map) {
            const ProtobufCMessage *e = *(ProtobufCMessage *const *)p;
            const ProtobufCMessageDescriptor *d = e->descriptor;
            const char *key = *(char *const *)((const char *)e + d->fields[0].offset);
            size_t old = path_push(pb, "[%.64s]", key ? key : "");
            ok = render_value(pb, &d->fields[1], (const char *)e + d->fields[1].offset, &v);
            if (ok && !v)
                v = json_string(""); /* a map value is never left out */
            if (ok && json_object_set_new(*out, key ? key : "", v)) {
                fail(pb, WISP_EINVAL, "%s: map key is not valid UTF-8", pb->path);
                ok = 0;
            }
            path_pop(pb, old);
        } else {
            size_t old = path_push(pb, "[%zu]", i);
            ok = render_value(pb, f, p, &v);
            if (ok && v && json_array_append_new(*out, v)) {
                fail(pb, WISP_ENOMEM, "out of memory");
                ok = 0;
            }
            path_pop(pb, old);
        }
        if (!ok) {
            json_decref(*out);
            *out = NULL;
            return 0;
        }
    }
    return 1;
}

/* Sets each field of m that Kubernetes' JSON would show on o, under its
 * proto name (which is its JSON name). */
static int render_fields(struct pb *pb, const ProtobufCMessage *m, json_t *o)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (!unknown_ok(pb, m))
        return 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *p = (const char *)m + f->offset;
        const char *q = (const char *)m + f->quantifier_offset;
        enum pb_shape shape = shape_of(d, f->name);
        json_t *v = NULL;
        int ok = 1;
        size_t old = path_push(pb, ".%s", f->name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)q;
            if (n)
                ok = render_repeated(pb, f, *(const char *const *)p, n, &v);
        } else if (f->type == PROTOBUF_C_TYPE_STRING) {
            const char *s = *(char *const *)p;
            if ((s && *s) || shape == PB_ALWAYS)
                ok = render_value(pb, f, p, &v);
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            ok = render_value(pb, f, p, &v);
        } else {
            int has = *(const protobuf_c_boolean *)q;
            int zero = 1;
            for (size_t j = 0; j < elem_size(f); j++)
                zero &= p[j] == 0;
            if (shape == PB_ALWAYS || (has && (!zero || shape == PB_POINTER)))
                ok = render_value(pb, f, p, &v);
        }
        path_pop(pb, old);
        if (ok && v && json_object_set_new(o, f->name, v)) {
            fail(pb, WISP_ENOMEM, "out of memory");
            ok = 0;
        }
        if (!ok)
            return 0;
    }
    return 1;
}

/* ---- the envelope ----------------------------------------------------------- */

static const ProtobufCMessageDescriptor *kind_desc(const char *api_version, const char *kind)
{
    for (size_t i = 0; i < sizeof(pb_kinds) / sizeof(pb_kinds[0]); i++)
        if (!strcmp(pb_kinds[i].api_version, api_version) && !strcmp(pb_kinds[i].kind, kind))
            return pb_kinds[i].desc;
    return NULL;
}

enum wisp_err wisp_kube_pb_to_json(const void *buf, size_t len, json_t **out, char *err,
                                   size_t errlen)
{
    static const uint8_t empty[1];
    struct pb pb = {.err = err, .errlen = errlen, .budget = WISP_KUBE_PB_MAX_DECODED};
    ProtobufCAllocator al = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &pb};
    struct Wisp__Kube__Unknown *env = NULL;
    ProtobufCMessage *obj = NULL;
    const uint8_t *p = buf;
    json_t *o = NULL;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (len > WISP_KUBE_PB_MAX_BODY) {
        fail(&pb, WISP_ETOOBIG, "protobuf body of %zu bytes is over the limit of %u", len,
             (unsigned)WISP_KUBE_PB_MAX_BODY);
        goto out;
    }
    if (len < 4 || memcmp(p, "k8s\0", 4) != 0) {
        fail(&pb, WISP_EINVAL, "not a Kubernetes protobuf body: it must start with the 4 bytes "
             "\"k8s\\0\"");
        goto out;
    }
    path_push(&pb, "runtime.Unknown");
    env = wisp__kube__unknown__unpack(&al, len - 4, p + 4);
    if (!env) {
        unpack_failed(&pb, &wisp__kube__unknown__descriptor, p + 4, len - 4);
        goto out;
    }
    if (!unknown_ok(&pb, &env->base))
        goto out;
    const char *av = env->typemeta && env->typemeta->apiversion ? env->typemeta->apiversion : "";
    const char *kind = env->typemeta && env->typemeta->kind ? env->typemeta->kind : "";
    const ProtobufCMessageDescriptor *d = kind_desc(av, kind);
    if (!d) {
        if (!strcmp(av, "v1"))
            fail(&pb, WISP_EINVAL, "protobuf bodies for %.64s are not supported; send JSON",
                 *kind ? kind : "(no kind)");
        else
            fail(&pb, WISP_EINVAL, "protobuf bodies for %.64s %.64s are not supported; send JSON",
                 *av ? av : "(no apiVersion)", *kind ? kind : "(no kind)");
        goto out;
    }
    if (env->contentencoding && *env->contentencoding) {
        fail(&pb, WISP_EINVAL, "protobuf body has contentEncoding \"%.64s\"; only none is "
             "supported", env->contentencoding);
        goto out;
    }
    if (env->contenttype && *env->contenttype && strcmp(env->contenttype, PB_CONTENT_TYPE)) {
        fail(&pb, WISP_EINVAL, "protobuf body holds contentType \"%.64s\"; only " PB_CONTENT_TYPE
             " is supported", env->contenttype);
        goto out;
    }
    path_pop(&pb, 0);
    path_push(&pb, "%s", kind);
    const uint8_t *raw = env->raw.data ? env->raw.data : empty;
    obj = protobuf_c_message_unpack(d, &al, env->raw.len, raw);
    if (!obj) {
        unpack_failed(&pb, d, raw, env->raw.len);
        goto out;
    }
    o = json_object();
    if (!o || json_object_set_new(o, "apiVersion", json_string(av)) ||
        json_object_set_new(o, "kind", json_string(kind))) {
        fail(&pb, WISP_ENOMEM, "out of memory");
        goto out;
    }
    if (!render_fields(&pb, obj, o))
        goto out;
    *out = o;
    o = NULL;
out:
    json_decref(o);
    if (obj)
        protobuf_c_message_free_unpacked(obj, &al);
    if (env)
        wisp__kube__unknown__free_unpacked(env, &al);
    return pb.rc;
}

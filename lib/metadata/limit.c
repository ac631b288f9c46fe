/* SPDX-License-Identifier: Apache-2.0 */
/* The per-caller rate limit of the metadata server: a token bucket per
 * source address (SECURITY.md §B15), so that one pod sending at a high rate
 * gets 429 while the node's other pods are still served. Every worker
 * thread uses the same table without a lock: a bucket is one 64-bit word
 * updated by compare-and-swap. It does not know pods; the address is the
 * caller, as it is for identity. */
#include <stdatomic.h>
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/hash.h"
#include "wisp/metadata.h"

/* A power of two, well above the pods one node runs (GKE allows at most
 * 256): addresses are never removed, so the table must hold every address
 * that ever called. Past PROBES occupied slots an address shares a bucket
 * (it can then be limited early, never late). */
#define SLOTS 1024
#define PROBES 16

/* One bucket on its own cache line, so that two busy pods do not slow
 * each other's compare-and-swap. The bucket is kept as the generic cell
 * rate algorithm keeps it: one number, the time at which the bucket would
 * be full again ("theoretical arrival time"). A request is allowed when,
 * after adding its interval, that time is at most burst intervals ahead of
 * now. One word needs no wrap-around and no second field, and a thread
 * whose clock reading is a little older than another's only ever sees a
 * fuller-looking past, never extra tokens. */
struct slot {
    _Atomic uint64_t key; /* hash of the address, never 0; 0 for free */
    _Atomic uint64_t tat; /* nanoseconds, monotonic; 0 for a new bucket */
    char pad[48];
};

struct wisp_md_limiter {
    uint64_t interval; /* nanoseconds per request at the sustained rate */
    uint64_t tau;      /* burst * interval: how far ahead tat may run */
    struct slot slots[SLOTS];
};

struct wisp_md_limiter *wisp_md_limiter_new(unsigned rate, unsigned burst)
{
    if (rate == 0)
        return NULL;
    struct wisp_md_limiter *l = wisp_xcalloc(1, sizeof(*l));
    if (rate > 1000000000u)
        rate = 1000000000u;
    l->interval = 1000000000ULL / rate;
    l->tau = (uint64_t)(burst ? burst : 1) * l->interval;
    return l;
}

void wisp_md_limiter_free(struct wisp_md_limiter *l)
{
    free(l);
}

/* The address's key: its hash, never 0 (a free slot). */
static uint64_t key_of(const char *ip)
{
    uint64_t h = wisp_fnv1a_str(ip);
    return h ? h : 1;
}

/* The bucket of key: its slot, or a free one it claims. */
static struct slot *slot_of(struct wisp_md_limiter *l, uint64_t key)
{
    for (unsigned i = 0; i < PROBES; i++) {
        struct slot *s = &l->slots[(key + i) & (SLOTS - 1)];
        uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
        if (k == key)
            return s;
        if (k == 0) {
            uint64_t zero = 0;
            if (atomic_compare_exchange_strong(&s->key, &zero, key) || zero == key)
                return s;
        }
    }
    return &l->slots[key & (SLOTS - 1)];
}

int wisp_md_limiter_take(struct wisp_md_limiter *l, const char *ip, uint64_t now_ns)
{
    if (!l)
        return 1;
    struct slot *s = slot_of(l, key_of(ip));
    uint64_t old = atomic_load_explicit(&s->tat, memory_order_relaxed);
    for (;;) {
        uint64_t next = (old > now_ns ? old : now_ns) + l->interval;
        if (next - now_ns > l->tau)
            return 0; /* nothing written: a refused request costs nothing */
        if (atomic_compare_exchange_weak_explicit(&s->tat, &old, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return 1;
    }
}

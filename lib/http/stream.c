/* SPDX-License-Identifier: Apache-2.0 */
/* Streaming responses (include/wisp/http.h): an h2o generator that sends
 * what the owner queues, one write in flight at a time as h2o requires, and
 * a per-stream timer that lets the owner poll for new data (a watch asks the
 * store for changes on each tick). A wake (wisp_http_streams_wake) moves
 * every timer to a zero timeout, so a commit reaches watchers at once. */
#include <stdlib.h>
#include <string.h>
#include "http/internal.h"
#include "wisp/alloc.h"
#include "wisp/log.h"

struct wisp_http_stream {
    h2o_generator_t gen; /* first: h2o hands it back to the callbacks */
    h2o_req_t *h2o;
    struct wisp__http_worker *w;
    h2o_timeout_entry_t tick_entry; /* on w->stream_tick, or w->stream_now after a wake */
    h2o_linklist_t link;            /* in w->streams while open */
    wisp_http_stream_tick tick;
    wisp_http_stream_closed closed;
    void *ctx;
    void *thread_data;
    char *inflight; /* handed to h2o_send; freed when h2o asks for more */
    char *pending;  /* queued since */
    size_t pending_len, pending_cap;
    int sending; /* a write is in flight */
    int ending;  /* end requested */
    int done;    /* final sent or client gone: closed() has run */
    int in_tick; /* free after the tick returns, not during it */
};

static void stream_free(struct wisp_http_stream *s)
{
    free(s->inflight);
    free(s->pending);
    free(s);
}

/* The stream is over: stop the timer, tell the owner, and free unless a
 * tick is running (it frees on return). */
static void finish(struct wisp_http_stream *s)
{
    if (s->done)
        return;
    s->done = 1;
    h2o_linklist_unlink(&s->link);
    if (h2o_timeout_is_linked(&s->tick_entry))
        h2o_timeout_unlink(&s->tick_entry);
    s->closed(s->ctx);
    if (!s->in_tick)
        stream_free(s);
}

static void flush(struct wisp_http_stream *s)
{
    if (s->sending || s->done)
        return;
    if (s->pending_len) {
        h2o_iovec_t buf = h2o_iovec_init(s->pending, s->pending_len);
        s->inflight = s->pending;
        s->pending = NULL;
        s->pending_len = s->pending_cap = 0;
        s->sending = 1;
        h2o_send(s->h2o, &buf, 1, H2O_SEND_STATE_IN_PROGRESS);
    } else if (s->ending) {
        h2o_send(s->h2o, NULL, 0, H2O_SEND_STATE_FINAL);
        finish(s);
    }
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *h)
{
    struct wisp_http_stream *s = (struct wisp_http_stream *)gen;
    (void)h;
    s->sending = 0;
    WISP_FREE(s->inflight);
    flush(s);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *h)
{
    (void)h;
    finish((struct wisp_http_stream *)gen);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    struct wisp_http_stream *s = H2O_STRUCT_FROM_MEMBER(struct wisp_http_stream, tick_entry, entry);

    s->in_tick = 1;
    s->tick(s, s->ctx);
    s->in_tick = 0;
    if (s->done) {
        stream_free(s);
        return;
    }
    if (!s->ending)
        h2o_timeout_link(s->w->loop, &s->w->stream_tick, &s->tick_entry);
}

struct wisp_http_stream *wisp_http_stream_start(struct wisp_http_req *req, int status,
                                                const char *content_type,
                                                wisp_http_stream_tick tick,
                                                wisp_http_stream_closed closed, void *ctx)
{
    struct wisp__http_state *st = req->impl;
    h2o_req_t *h = st->h2o;
    struct wisp_http_stream *s;

    if (st->responded) {
        wisp_log_err("http", "stream started after a response to %s %s", req->method, req->path);
        closed(ctx);
        return NULL;
    }
    st->responded = 1;
    s = wisp_xcalloc(1, sizeof(*s));
    s->gen.proceed = on_proceed;
    s->gen.stop = on_stop;
    s->h2o = h;
    s->w = H2O_STRUCT_FROM_MEMBER(struct wisp__http_worker, ctx, h->conn->ctx);
    s->tick = tick;
    s->closed = closed;
    s->ctx = ctx;
    s->thread_data = req->thread_data;
    h->res.status = status;
    h->res.reason = status < 400 ? "OK" : "Error";
    h->res.content_length = SIZE_MAX;
    if (content_type)
        h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
    s->tick_entry.cb = on_tick;
    h2o_timeout_link(s->w->loop, &s->w->stream_tick, &s->tick_entry);
    h2o_linklist_insert(&s->w->streams, &s->link);
    h2o_start_response(h, &s->gen);
    /* Send the head now: a watcher waits for it before anything happens. */
    s->sending = 1;
    h2o_send(h, NULL, 0, H2O_SEND_STATE_IN_PROGRESS);
    return s;
}

void wisp_http_stream_write(struct wisp_http_stream *s, const void *data, size_t len)
{
    if (s->done || s->ending || len == 0)
        return;
    if (s->pending_len + len > s->pending_cap) {
        s->pending_cap = (s->pending_len + len) * 2;
        s->pending = wisp_xrealloc(s->pending, s->pending_cap);
    }
    memcpy(s->pending + s->pending_len, data, len);
    s->pending_len += len;
    flush(s);
}

size_t wisp_http_stream_pending(const struct wisp_http_stream *s)
{
    return s->pending_len;
}

void wisp_http_stream_end(struct wisp_http_stream *s)
{
    if (s->done)
        return;
    s->ending = 1;
    flush(s);
}

void *wisp_http_stream_thread_data(const struct wisp_http_stream *s)
{
    return s->thread_data;
}

void wisp__http_streams_now(struct wisp__http_worker *w)
{
    /* Only the timers move here; the ticks run from the loop's timeout
     * pass, where a stream that ends cannot pull this list from under us.
     * A stream ending (no timer linked) is left alone. */
    for (h2o_linklist_t *n = w->streams.next; n != &w->streams; n = n->next) {
        struct wisp_http_stream *s = H2O_STRUCT_FROM_MEMBER(struct wisp_http_stream, link, n);
        if (!h2o_timeout_is_linked(&s->tick_entry))
            continue;
        h2o_timeout_unlink(&s->tick_entry);
        h2o_timeout_link(w->loop, &w->stream_now, &s->tick_entry);
    }
}

void wisp__http_streams_end(struct wisp__http_worker *w)
{
    /* Ending may finish (and unlink) a stream at once, so take the next
     * one first. */
    h2o_linklist_t *n = w->streams.next;
    while (n != &w->streams) {
        h2o_linklist_t *next = n->next;
        wisp_http_stream_end(H2O_STRUCT_FROM_MEMBER(struct wisp_http_stream, link, n));
        n = next;
    }
}

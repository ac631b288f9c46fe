/* SPDX-License-Identifier: Apache-2.0 */
/* wisp-node's Kubernetes API client on libcurl: one-shot JSON requests, and
 * one streamed watch driven from the agent's poll loop through a curl multi
 * handle. The bearer token is read from its file on every request, so an
 * outside refresher can replace it while the node runs. Loopback only. */
#include <string.h>
#include "node.h"
#include "wisp/alloc.h"
#include "wisp/log.h"

#define MAX_BODY (64u << 20)
#define MAX_LINE (16u << 20)

void kube_init(struct kube *k, const char *api, const char *ca, const char *token_file)
{
    memset(k, 0, sizeof(*k));
    k->api = wisp_xstrdup(api);
    size_t n = strlen(k->api);
    while (n && k->api[n - 1] == '/')
        k->api[--n] = '\0';
    k->ca_file = ca ? wisp_xstrdup(ca) : NULL;
    k->token_file = token_file ? wisp_xstrdup(token_file) : NULL;
    k->easy = curl_easy_init();
    k->multi = curl_multi_init();
    wisp_buf_init(&k->line, MAX_LINE);
    if (!k->easy || !k->multi)
        abort();
}

void kube_free(struct kube *k)
{
    kube_watch_stop(k);
    curl_easy_cleanup(k->easy);
    curl_multi_cleanup(k->multi);
    wisp_buf_free(&k->line);
    free(k->api);
    free(k->ca_file);
    free(k->token_file);
}

/* "Authorization: Bearer TOKEN" from the token file, or NULL. */
static char *auth_header(const struct kube *k)
{
    char buf[8192];
    size_t n = 0;
    FILE *f;
    if (!k->token_file || !(f = fopen(k->token_file, "re")))
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    if (n == 0 || strpbrk(buf, "\r\n"))
        return NULL;
    char *h = wisp_xasprintf("Authorization: Bearer %s", buf);
    explicit_bzero(buf, sizeof(buf));
    return h;
}

static struct curl_slist *headers(const struct kube *k, const char *ctype)
{
    struct curl_slist *h = NULL;
    char *auth = auth_header(k);
    h = curl_slist_append(h, "Accept: application/json");
    if (ctype) {
        char *ct = wisp_xasprintf("Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
        free(ct);
    }
    if (auth) {
        h = curl_slist_append(h, auth);
        wisp_secret_free(auth, 0);
    }
    return h;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct wisp_buf *b = ud;
    return wisp_buf_append(b, p, size * n) == WISP_OK ? size * n : 0;
}

static void common_opts(struct kube *k, CURL *c, const char *url, struct curl_slist *h)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
    if (k->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, k->ca_file);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
}

long kube_call(struct kube *k, const char *method, const char *path, const char *ctype,
               const char *body, json_t **out)
{
    struct wisp_buf resp;
    struct curl_slist *h = headers(k, ctype);
    char *url = wisp_xasprintf("%s%s", k->api, path);
    long status = 0;
    CURLcode rc;

    if (out)
        *out = NULL;
    wisp_buf_init(&resp, MAX_BODY);
    curl_easy_reset(k->easy);
    common_opts(k, k->easy, url, h);
    curl_easy_setopt(k->easy, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(k->easy, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(k->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(k->easy, CURLOPT_WRITEDATA, &resp);
    if (body) {
        curl_easy_setopt(k->easy, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(k->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    rc = curl_easy_perform(k->easy);
    if (rc != CURLE_OK) {
        wisp_log_warn("node", "%s %s: %s", method, path, curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &status);
        if (out && resp.len)
            *out = json_loadb(resp.data, resp.len, 0, NULL);
        if (status >= 400)
            wisp_log_warn("node", "%s %s: %ld %.300s", method, path, status,
                          resp.data ? resp.data : "");
    }
    wisp_buf_free(&resp);
    curl_slist_free_all(h);
    free(url);
    return status;
}

static void watch_lines(struct kube *k)
{
    char *nl;
    while (k->line.len && (nl = memchr(k->line.data, '\n', k->line.len)) != NULL) {
        size_t n = (size_t)(nl - k->line.data);
        json_t *ev = json_loadb(k->line.data, n, 0, NULL);
        if (ev) {
            k->on_event(k->ctx, ev);
            json_decref(ev);
        }
        memmove(k->line.data, nl + 1, k->line.len - n - 1);
        k->line.len -= n + 1;
        k->line.data[k->line.len] = '\0';
    }
}

static size_t on_watch(char *p, size_t size, size_t n, void *ud)
{
    struct kube *k = ud;
    if (wisp_buf_append(&k->line, p, size * n) != WISP_OK)
        return 0; /* a line over 16 MiB: end the watch, the agent re-lists */
    watch_lines(k);
    return size * n;
}

int kube_watch_start(struct kube *k, const char *path)
{
    char *url = wisp_xasprintf("%s%s", k->api, path);
    kube_watch_stop(k);
    wisp_buf_reset(&k->line);
    k->watch = curl_easy_init();
    k->watch_hdrs = headers(k, NULL);
    common_opts(k, k->watch, url, k->watch_hdrs);
    curl_easy_setopt(k->watch, CURLOPT_WRITEFUNCTION, on_watch);
    curl_easy_setopt(k->watch, CURLOPT_WRITEDATA, k);
    curl_multi_add_handle(k->multi, k->watch);
    free(url);
    k->watch_status = 0;
    return 0;
}

int kube_watch_step(struct kube *k)
{
    int running = 0, left;
    CURLMsg *m;
    if (!k->watch)
        return 0;
    curl_multi_perform(k->multi, &running);
    while ((m = curl_multi_info_read(k->multi, &left)) != NULL) {
        if (m->msg == CURLMSG_DONE && m->easy_handle == k->watch) {
            curl_easy_getinfo(k->watch, CURLINFO_RESPONSE_CODE, &k->watch_status);
            if (m->data.result != CURLE_OK)
                wisp_log_warn("node", "watch ended: %s", curl_easy_strerror(m->data.result));
            kube_watch_stop(k);
            return 0;
        }
    }
    return 1;
}

void kube_watch_stop(struct kube *k)
{
    if (!k->watch)
        return;
    curl_multi_remove_handle(k->multi, k->watch);
    curl_easy_cleanup(k->watch);
    curl_slist_free_all(k->watch_hdrs);
    k->watch = NULL;
    k->watch_hdrs = NULL;
}

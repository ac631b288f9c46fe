/* SPDX-License-Identifier: Apache-2.0 */
/* `wisp iam explain PRINCIPAL PERMISSION RESOURCE`: asks wispd's Policy
 * Troubleshooter why a principal does or does not hold a permission, and
 * prints the answer binding by binding. The CLI acts as the project owner:
 * whoever holds the state directory holds its keys already. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "cli.h"
#include "wisp/alloc.h"
#include "wisp/b64.h"
#include "wisp/buf.h"
#include "wisp/store.h"
#include "wisp/token.h"

static const char usage[] =
    "usage: wisp iam explain [--state DIR] PRINCIPAL PERMISSION RESOURCE\n\n"
    "Says whether PRINCIPAL holds PERMISSION on RESOURCE, which binding grants it,\n"
    "or why each binding that could does not (other namespace, other pool,\n"
    "condition false, ...). RESOURCE: projects/P, gs://BUCKET,\n"
    "projects/P/serviceAccounts/EMAIL, projects/P/locations/L/repositories/R,\n"
    "or a full name //SERVICE/....\n\n"
    "exit codes: 0 allowed, 1 denied, 100 usage, 111 wisp not reachable\n";

static char *full_name(const char *r)
{
    if (strncmp(r, "//", 2) == 0)
        return wisp_xstrdup(r);
    if (strncmp(r, "gs://", 5) == 0)
        return wisp_xasprintf("//storage.googleapis.com/projects/_/buckets/%s", r + 5);
    if (strstr(r, "/serviceAccounts/"))
        return wisp_xasprintf("//iam.googleapis.com/%s", r);
    if (strstr(r, "/repositories/"))
        return wisp_xasprintf("//artifactregistry.googleapis.com/%s", r);
    return wisp_xasprintf("//cloudresourcemanager.googleapis.com/%s", r);
}

static int newest_key(const struct wisp_doc *doc, void *ctx)
{
    struct wisp_token_keyring *kr = ctx;
    json_t *o = json_loadb(doc->body, doc->body_len, 0, NULL);
    size_t n = 0;
    unsigned char *k = wisp_b64_decode(json_string_value(json_object_get(o, "key")), &n);
    if (k && n == WISP_TOKEN_KEY_LEN)
        wisp_token_keyring_add(kr, (uint32_t)strtoul(doc->name, NULL, 10), k);
    if (k)
        wisp_secret_free(k, n ? n : 1);
    json_decref(o);
    return 0;
}

/* A five-minute owner token sealed with the state's own key. */
static char *owner_token(const struct cli_state *s)
{
    char *db = cli_state_store_url(s);
    struct wisp_store *st = NULL;
    struct wisp_txn *txn = NULL;
    struct wisp_token_keyring *kr = wisp_token_keyring_new();
    char *tok = NULL;
    if (wisp_store_open(db, &st) == WISP_OK && wisp_store_begin(st, 0, &txn) == WISP_OK &&
        wisp_store_list(txn, "tokenkey", "", NULL, 0, newest_key, kr, NULL) == WISP_OK) {
        char *email = wisp_xasprintf("wisp-owner@%s.iam.gserviceaccount.com", s->project);
        int64_t now = (int64_t)time(NULL);
        struct wisp_token_claims c = {.iat = now, .exp = now + 300, .is_service_account = 1,
                                      .email = email};
        tok = wisp_token_seal(kr, &c);
        free(email);
    }
    wisp_store_rollback(txn);
    wisp_store_close(st);
    wisp_token_keyring_free(kr);
    free(db);
    return tok;
}

static size_t collect(char *p, size_t size, size_t n, void *ctx)
{
    return wisp_buf_append(ctx, p, size * n) == WISP_OK ? size * n : 0;
}

static void print_bindings(const json_t *bindings)
{
    size_t i, j;
    json_t *b, *m;
    json_array_foreach(bindings, i, b) {
        const char *policy = json_string_value(json_object_get(b, "resource"));
        printf("\n  %s in the policy of %s: %s\n",
               json_string_value(json_object_get(b, "role")), policy ? policy : "?",
               json_string_value(json_object_get(b, "reason")));
        json_t *cond = json_object_get(b, "condition");
        if (cond)
            printf("    condition \"%s\": %s\n", json_string_value(json_object_get(cond, "title")),
                   json_string_value(json_object_get(cond, "result")));
        json_array_foreach(json_object_get(b, "members"), j, m) {
            const char *detail = json_string_value(json_object_get(m, "detail"));
            printf("    %s %s%s%s%s\n", json_is_true(json_object_get(m, "matches")) ? "+" : "-",
                   json_string_value(json_object_get(m, "member")),
                   detail && *detail ? " (" : "", detail && *detail ? detail : "",
                   detail && *detail ? ")" : "");
        }
    }
}

int cli_iam(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "explain") != 0) {
        fputs(usage, argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : WISP_EXIT_USAGE;
    }
    argc--;
    argv++;
    const char *dir = NULL;
    /* Options first, then the three operands. */
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
            dir = argv[++i];
            continue;
        }
        fputs(usage, stderr);
        return WISP_EXIT_USAGE;
    }
    if (argc - i != 3) {
        fputs(usage, stderr);
        return WISP_EXIT_USAGE;
    }
    const char *principal = argv[i], *permission = argv[i + 1];
    struct cli_state s;
    if (cli_state_open(&s, dir))
        return WISP_EXIT_SYS;
    struct cli_wispd w;
    int rc = WISP_EXIT_SYS;
    char *full = full_name(argv[i + 2]), *tok = NULL, *url = NULL, *ca = NULL, *hdr = NULL;
    char *body = NULL;
    struct wisp_buf out;
    wisp_buf_init(&out, 1 << 20);
    if (!cli_wispd_running(&s, &w) || !s.project || !(tok = owner_token(&s))) {
        fprintf(stderr, "wisp: not running for %s; run `wisp up` first\n", s.dir);
        goto done;
    }
    json_t *req = json_pack("{s:{s:s, s:s, s:s}}", "accessTuple", "principal", principal,
                            "fullResourceName", full, "permission", permission);
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    url = wisp_xasprintf("https://%s:%d/policytroubleshooter/v3/iam:troubleshoot", w.address,
                         w.https_port);
    ca = wisp_xasprintf("%s/ca.pem", s.dir);
    hdr = wisp_xasprintf("Authorization: Bearer %s", tok);
    CURL *curl = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, hdr);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    CURLcode cc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(curl);
    json_t *resp = cc == CURLE_OK ? json_loadb(out.data ? out.data : "", out.len, 0, NULL) : NULL;
    if (!resp || code != 200) {
        const char *m = json_string_value(json_object_get(json_object_get(resp, "error"),
                                                          "message"));
        fprintf(stderr, "wisp: %s\n", m ? m : (cc != CURLE_OK ? curl_easy_strerror(cc)
                                                                : "unexpected answer"));
        json_decref(resp);
        rc = code == 400 || code == 403 ? WISP_EXIT_USAGE : WISP_EXIT_SYS;
        goto done;
    }
    int allowed = strcmp(json_string_value(json_object_get(resp, "overallAccessState")),
                         "CAN_ACCESS") == 0;
    printf("%s %s %s on %s\n  %s\n", principal, allowed ? "HAS" : "LACKS", permission, full,
           json_string_value(json_object_get(resp, "summary")));
    print_bindings(json_object_get(resp, "bindings"));
    json_decref(resp);
    rc = allowed ? WISP_EXIT_OK : WISP_EXIT_FAIL;
done:
    wisp_buf_free(&out);
    if (tok)
        wisp_secret_free(tok, 0);
    if (hdr)
        wisp_secret_free(hdr, 0);
    free(body);
    free(url);
    free(ca);
    free(full);
    cli_state_close(&s);
    return rc;
}

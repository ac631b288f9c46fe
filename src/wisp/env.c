/* SPDX-License-Identifier: Apache-2.0 */
/* `wisp env`: the shell exports that make the real gcloud and kubectl talk
 * to this wisp and to nothing else. Everything gcloud reads is private to
 * the state directory (its config, HOME, credentials), every API it calls
 * is overridden to wisp, and the metadata server it might probe is a
 * loopback port, so no command can reach a real Google endpoint or a real
 * metadata server. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "wisp/alloc.h"

static const char usage[] =
    "usage: wisp env [--state DIR]\n\n"
    "Prints shell exports for gcloud and kubectl; use as: eval \"$(wisp env)\"\n\n"
    "exit codes: 0 printed, 1 wisp is not running, 100 usage\n";

/* The APIs gcloud may call, by the name of its endpoint-override property.
 * Each is served under https://127.0.0.1:PORT/<service>/. */
static const struct {
    const char *api;
    const char *path;
} apis[] = {
    {"CLOUDRESOURCEMANAGER", "cloudresourcemanager/"},
    {"SERVICEUSAGE", "serviceusage/"},
    {"CONTAINER", "container/"},
    {"IAM", "iam/"},
    {"IAMCREDENTIALS", "iamcredentials/"},
    {"STS", "sts/"},
    {"ARTIFACTREGISTRY", "artifactregistry/"},
    {"ORGPOLICY", "orgpolicy/"},
    {"STORAGE", "storage/v1/"},
};

static void put(const char *name, const char *value)
{
    /* Single quotes, with any quote in the value closed and escaped, so a
     * state path with spaces or $ survives eval unchanged. */
    printf("export %s='", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*p);
    }
    puts("'");
}

int cli_env(int argc, char **argv)
{
    const char *dir = NULL;
    int rc = cli_parse(argc, argv, usage, &dir, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    struct cli_state s;
    if (cli_state_open(&s, dir))
        return WISP_EXIT_SYS;
    struct cli_wispd w;
    if (!cli_wispd_running(&s, &w)) {
        fprintf(stderr, "wisp: not running for %s; run `wisp up` first\n", s.dir);
        cli_state_close(&s);
        return WISP_EXIT_FAIL;
    }
    char *home = wisp_xasprintf("%s/home", s.dir);
    char *cfg = wisp_xasprintf("%s/gcloud", s.dir);
    mkdir(home, 0700);
    mkdir(cfg, 0700);
    char *base = wisp_xasprintf("https://%s:%d/", w.address, w.https_port);
    char *md = wisp_xasprintf("%s:%d", w.address, w.http_port);
    char buf[512];

    put("WISP_STATE", s.dir);
    put("HOME", home);
    put("CLOUDSDK_CONFIG", cfg);
    put("CLOUDSDK_CORE_PROJECT", s.project ? s.project : WISP_DEFAULT_PROJECT);
    put("CLOUDSDK_COMPUTE_REGION", WISP_DEFAULT_REGION);
    put("CLOUDSDK_CORE_CHECK_GCE_METADATA", "false");
    put("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "true");
    put("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "true");
    put("CLOUDSDK_SURVEY_DISABLE_PROMPTS", "true");
    put("CLOUDSDK_CORE_DISABLE_PROMPTS", "1");
    /* The metadata server, should anything look for one, is wispd's plain
     * HTTP port on loopback: never 169.254.169.254 from the host. */
    put("GCE_METADATA_ROOT", md);
    put("GCE_METADATA_IP", md);
    put("GCE_METADATA_HOST", md);
    /* gcloud trusts wisp's CA, signs its own JWTs with the owner key and
     * refreshes its token at wisp's token endpoint by itself. */
    snprintf(buf, sizeof(buf), "%s/ca.pem", s.dir);
    put("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", buf);
    /* google-auth refreshes tokens through requests, which reads its own
     * CA variable rather than gcloud's property. */
    put("REQUESTS_CA_BUNDLE", buf);
    snprintf(buf, sizeof(buf), "%s/owner-key.json", s.dir);
    put("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", buf);
    snprintf(buf, sizeof(buf), "%stoken", base);
    put("CLOUDSDK_AUTH_TOKEN_HOST", buf);
    for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++) {
        char name[96];
        snprintf(name, sizeof(name), "CLOUDSDK_API_ENDPOINT_OVERRIDES_%s", apis[i].api);
        snprintf(buf, sizeof(buf), "%s%s", base, apis[i].path);
        put(name, buf);
    }
    snprintf(buf, sizeof(buf), "%s/kubeconfig", s.dir);
    put("KUBECONFIG", buf);
    free(home);
    free(cfg);
    free(base);
    free(md);
    cli_state_close(&s);
    return WISP_EXIT_OK;
}

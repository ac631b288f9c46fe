/* SPDX-License-Identifier: Apache-2.0 */
/* The state directory as the CLI sees it: where it is, which project it
 * serves, and whether its wispd is alive. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"
#include "wisp/alloc.h"

int cli_parse_ex(int argc, char **argv, const char *usage, const char **state_out,
                 const char **project_out, const struct option *extra,
                 int (*on_extra)(int val, const char *arg, void *ctx), void *ctx)
{
    static const struct option common[] = {{"state", required_argument, NULL, 's'},
                                           {"project", required_argument, NULL, 'p'},
                                           {"help", no_argument, NULL, 'h'}};
    enum { N_COMMON = sizeof(common) / sizeof(common[0]), MAX_EXTRA = 8 };
    struct option lo[N_COMMON + MAX_EXTRA + 1] = {{0}};
    memcpy(lo, common, sizeof(common));
    for (int i = 0; extra && extra[i].name && i < MAX_EXTRA; i++)
        lo[N_COMMON + i] = extra[i];
    int c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 's': *state_out = optarg; break;
        case 'p':
            if (!project_out) {
                fputs(usage, stderr);
                return WISP_EXIT_USAGE;
            }
            *project_out = optarg;
            break;
        case 'h': fputs(usage, stdout); return -1;
        case '?': fputs(usage, stderr); return WISP_EXIT_USAGE;
        default:
            if (!on_extra || (rc = on_extra(c, optarg, ctx))) {
                fputs(usage, stderr);
                return WISP_EXIT_USAGE;
            }
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return WISP_EXIT_USAGE;
    }
    return 0;
}

int cli_parse(int argc, char **argv, const char *usage, const char **state_out,
              const char **project_out)
{
    return cli_parse_ex(argc, argv, usage, state_out, project_out, NULL, NULL, NULL);
}

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0700) && errno != EEXIST ? -1 : 0;
}

int cli_state_open(struct cli_state *s, const char *flag_dir)
{
    memset(s, 0, sizeof(*s));
    const char *dir = flag_dir ? flag_dir : getenv("WISP_STATE");
    char *def = NULL;
    if (!dir || !*dir) {
        const char *home = getenv("HOME");
        def = wisp_xasprintf("%s/.local/state/wisp", home ? home : "/tmp");
        dir = def;
    }
    if (mkdir_p(dir)) {
        fprintf(stderr, "wisp: cannot create state directory %s: %s\n", dir, strerror(errno));
        free(def);
        return -1;
    }
    char real[PATH_MAX];
    if (!realpath(dir, real)) {
        free(def);
        return -1;
    }
    free(def);
    s->dir = wisp_xstrdup(real);
    char *cfg = wisp_xasprintf("%s/config.json", s->dir);
    json_t *o = json_load_file(cfg, 0, NULL);
    free(cfg);
    const char *p = o ? json_string_value(json_object_get(o, "project")) : NULL;
    if (p)
        s->project = wisp_xstrdup(p);
    json_decref(o);
    return 0;
}

void cli_state_close(struct cli_state *s)
{
    WISP_FREE(s->dir);
    WISP_FREE(s->project);
}

json_t *cli_state_config(const struct cli_state *s)
{
    char *cfg = wisp_xasprintf("%s/config.json", s->dir);
    json_t *o = json_load_file(cfg, 0, NULL);
    free(cfg);
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_object();
    }
    return o;
}

char *cli_state_store_url(const struct cli_state *s)
{
    json_t *o = cli_state_config(s);
    const char *url = json_string_value(json_object_get(o, "store"));
    char *out = url ? wisp_xstrdup(url) : wisp_xasprintf("%s/wisp.db", s->dir);
    json_decref(o);
    return out;
}

int cli_state_config_set(struct cli_state *s, const char *key, json_t *value)
{
    char *cfg = wisp_xasprintf("%s/config.json", s->dir);
    json_t *o = cli_state_config(s);
    json_object_set_new(o, key, value);
    int rc = json_dump_file(o, cfg, JSON_INDENT(2));
    json_decref(o);
    free(cfg);
    return rc;
}

int cli_state_save_project(struct cli_state *s, const char *project)
{
    int rc = cli_state_config_set(s, "project", json_string(project));
    if (!rc) {
        free(s->project);
        s->project = wisp_xstrdup(project);
    }
    return rc;
}

/* The pid is ours only if /proc says it runs wispd with this state dir: a
 * recycled pid must never be signalled. */
static int is_our_wispd(pid_t pid, const char *state_dir)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    int saw_wispd = 0, saw_state = 0;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
        const char *arg = buf + i;
        const char *slash = strrchr(arg, '/');
        if (i == 0 && strcmp(slash ? slash + 1 : arg, "wispd") == 0)
            saw_wispd = 1;
        if (strcmp(arg, state_dir) == 0)
            saw_state = 1;
    }
    return saw_wispd && saw_state;
}

int cli_wispd_running(const struct cli_state *s, struct cli_wispd *out)
{
    char *path = wisp_xasprintf("%s/run/wispd.json", s->dir);
    json_t *o = json_load_file(path, 0, NULL);
    free(path);
    if (!o)
        return 0;
    memset(out, 0, sizeof(*out));
    out->pid = (pid_t)json_integer_value(json_object_get(o, "pid"));
    out->https_port = (int)json_integer_value(json_object_get(o, "https_port"));
    out->http_port = (int)json_integer_value(json_object_get(o, "http_port"));
    const char *a = json_string_value(json_object_get(o, "address"));
    snprintf(out->address, sizeof(out->address), "%s", a ? a : "127.0.0.1");
    json_decref(o);
    return out->pid > 0 && kill(out->pid, 0) == 0 && is_our_wispd(out->pid, s->dir);
}

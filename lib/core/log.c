/* SPDX-License-Identifier: Apache-2.0 */
/* One log record per line on stderr, logfmt style. The message is escaped:
 * control bytes, quotes and backslashes become \xNN, so a value taken from a
 * request can never start a new record or break the quoting. */
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "wisp/log.h"

enum wisp_log_level wisp_log_threshold = WISP_LOG_INFO;

static const char *const level_names[] = {"err", "warn", "info", "debug"};

int wisp_log_set_level(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            wisp_log_threshold = (enum wisp_log_level)i;
            return 0;
        }
    }
    return -1;
}

void wisp__log(enum wisp_log_level lvl, const char *sub, const char *fmt, ...)
{
    char msg[1024], line[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s sub=%s msg=\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[lvl], sub);
    size_t pos = (size_t)n;
    for (const unsigned char *p = (const unsigned char *)msg; *p && pos < sizeof(line) - 6; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
            pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\\x%02x", *p);
        else
            line[pos++] = (char)*p;
    }
    line[pos++] = '"';
    line[pos++] = '\n';
    /* One write per record so lines from threads never interleave. */
    ssize_t w = write(STDERR_FILENO, line, pos);
    (void)w;
}

void wisp_log_fingerprint(const char *secret, size_t len, char out[9])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)secret, len, md);
    snprintf(out, 9, "%02x%02x%02x%02x", md[0], md[1], md[2], md[3]);
}

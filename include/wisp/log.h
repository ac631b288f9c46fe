/* SPDX-License-Identifier: Apache-2.0 */
/* Structured logging: one record per line, `ts=… level=… sub=… msg="…"`,
 * with every value escaped so untrusted bytes cannot forge a record. Tokens,
 * keys and the Authorization header are never passed to these functions:
 * call sites log a token's fingerprint (wisp_log_fingerprint) instead. */
#ifndef WISP_LOG_H
#define WISP_LOG_H

#include <stddef.h>

enum wisp_log_level { WISP_LOG_ERR = 0, WISP_LOG_WARN, WISP_LOG_INFO, WISP_LOG_DEBUG };

extern enum wisp_log_level wisp_log_threshold;

/* Sets the threshold from "err|warn|info|debug"; returns 0, or -1 if unknown. */
int wisp_log_set_level(const char *name);

void wisp__log(enum wisp_log_level lvl, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The level is tested before the arguments are evaluated. */
#define WISP_LOG(lvl, sub, ...)                                                                    \
    do {                                                                                           \
        if ((lvl) <= wisp_log_threshold)                                                           \
            wisp__log((lvl), (sub), __VA_ARGS__);                                                  \
    } while (0)

#define wisp_log_err(sub, ...) WISP_LOG(WISP_LOG_ERR, sub, __VA_ARGS__)
#define wisp_log_warn(sub, ...) WISP_LOG(WISP_LOG_WARN, sub, __VA_ARGS__)
#define wisp_log_info(sub, ...) WISP_LOG(WISP_LOG_INFO, sub, __VA_ARGS__)
#define wisp_log_debug(sub, ...) WISP_LOG(WISP_LOG_DEBUG, sub, __VA_ARGS__)

/* Writes an 8-hex-digit SHA-256 prefix of secret into out (9 bytes): enough
 * to correlate log lines, useless to an attacker. */
void wisp_log_fingerprint(const char *secret, size_t len, char out[9]);

#endif

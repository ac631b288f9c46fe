/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for IAM member parsing (lib/iam/member.c). Beyond "no
 * crash, no leak", it checks the canonical form is a fixed point: whatever
 * parses, its canon parses again to the same canon and type. It also runs the
 * matcher against a KSA caller and a Google caller built from the member's
 * own parts, which must not crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/member.h"

static void die(const char *what, const char *in, const char *detail)
{
    fprintf(stderr, "fuzz_member: %s\n  input: %s\n  detail: %s\n", what, in, detail);
    abort();
}

/* Error messages must be one printable line that begins as documented. */
static void check_message(const char *in, const char *msg)
{
    if (strncmp(msg, "Invalid member", 14) != 0)
        die("message does not start with 'Invalid member'", in, msg);
    for (const char *p = msg; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            die("message is not one printable line", in, msg);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parser takes a C string: copy and terminate. Embedded NULs just
     * shorten the member, which is also what a C caller would see. */
    char *in = malloc(size + 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';

    struct wisp_member m;
    char msg[1024];
    enum wisp_err err = wisp_member_parse(in, &m, msg, sizeof msg);
    if (err != WISP_OK) {
        if (err != WISP_EINVAL)
            die("unexpected error code", in, msg);
        if (m.canon || m.type != WISP_MEMBER_NONE)
            die("failed parse left state behind", in, msg);
        check_message(in, msg);
        free(in);
        return 0;
    }
    if (!m.canon || m.type == WISP_MEMBER_NONE)
        die("successful parse without canon or type", in, "");

    struct wisp_member again;
    if (wisp_member_parse(m.canon, &again, msg, sizeof msg) != WISP_OK)
        die("canonical form does not parse", in, msg);
    if (strcmp(again.canon, m.canon) != 0)
        die("canonical form is not a fixed point", in, again.canon);
    if (again.type != m.type || again.deleted_of != m.deleted_of)
        die("canonical form parses to another type", in, m.canon);

    /* Match against callers made of the member's own parts: whatever the
     * answer, it must come without a crash. */
    const struct wisp_caller ksa = {
        .project_number = m.project_number,
        .pool = m.pool,
        .ns = m.ns,
        .ksa = m.ksa,
        .ksa_uid = m.ksa_uid,
        .cluster_url = m.cluster_url,
    };
    const char *const groups[] = {m.email};
    const struct wisp_caller google = {
        .email = m.email ? m.email : m.domain,
        .is_service_account = m.type == WISP_MEMBER_SERVICE_ACCOUNT,
        .groups = groups,
        .n_groups = m.email ? 1 : 0,
        .project_number = m.project_number,
    };
    (void)wisp_member_matches(&m, &ksa);
    (void)wisp_member_matches(&m, &google);
    (void)wisp_member_matches(&m, NULL);
    /* A member always matches the caller it was built from, for the forms
     * whose every fact the caller struct can carry. */
    if (m.type == WISP_MEMBER_KSA_LEGACY && !wisp_member_matches(&m, &ksa))
        die("legacy KSA member does not match its own KSA", in, m.canon);
    if ((m.type == WISP_MEMBER_WI_SUBJECT && m.ns) || m.type == WISP_MEMBER_WI_KSA_UID ||
        m.type == WISP_MEMBER_WI_SET_NAMESPACE || m.type == WISP_MEMBER_WI_SET_CLUSTER) {
        if (!wisp_member_matches(&m, &ksa))
            die("GKE member does not match its own KSA", in, m.canon);
        if (wisp_member_matches(&m, &google))
            die("GKE member matches a Google caller", in, m.canon);
    }
    if ((m.type == WISP_MEMBER_USER || m.type == WISP_MEMBER_SERVICE_ACCOUNT) &&
        !wisp_member_matches(&m, &google))
        die("email member does not match its own email", in, m.canon);
    if (m.type == WISP_MEMBER_DELETED &&
        (wisp_member_matches(&m, &google) || wisp_member_matches(&m, &ksa)))
        die("deleted member matches", in, m.canon);

    wisp_member_free(&again);
    wisp_member_free(&m);
    free(in);
    return 0;
}

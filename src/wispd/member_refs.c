/* SPDX-License-Identifier: Apache-2.0 */
/* A reverse index from service-account members to the allow policies that
 * name them: document (memberref, "serviceAccount:E") lists the iampolicy
 * document names mentioning that member. Deleting an account must rewrite
 * its member in every policy of the state into "deleted:…?uid=N"; the index
 * makes that cost the number of policies naming the account rather than a
 * scan of every policy. It is maintained inside the same write transaction
 * as each policy write, so it is never out of step with the policies. */
#include <string.h>
#include "wisp/alloc.h"
#include "wisp/log.h"
#include "api/iam_int.h"
#include "wispd.h"

#define REF_KIND "memberref"

static enum wisp_err ref_add(struct wisp_txn *txn, const char *member, const char *policy_name)
{
    json_t *doc = NULL;
    enum wisp_err err = wispd_get_json(txn, REF_KIND, member, &doc, NULL);
    if (err == WISP_ENOTFOUND) {
        doc = json_pack("{s:[]}", "policies");
        err = WISP_OK;
    }
    if (err)
        return err;
    json_t *list = json_object_get(doc, "policies");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(doc, "policies", list);
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), policy_name) == 0) {
            json_decref(doc);
            return WISP_OK;
        }
    }
    json_array_append_new(list, json_string(policy_name));
    err = wispd_put_json(txn, REF_KIND, member, doc, -1, NULL);
    json_decref(doc);
    return err;
}

static enum wisp_err ref_remove(struct wisp_txn *txn, const char *member, const char *policy_name)
{
    json_t *doc = NULL;
    enum wisp_err err = wispd_get_json(txn, REF_KIND, member, &doc, NULL);
    if (err == WISP_ENOTFOUND)
        return WISP_OK;
    if (err)
        return err;
    json_t *list = json_object_get(doc, "policies");
    json_t *kept = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), policy_name) != 0)
            json_array_append(kept, v);
    }
    if (json_array_size(kept) == 0) {
        err = wisp_store_delete(txn, REF_KIND, member, -1);
    } else {
        json_object_set(doc, "policies", kept);
        err = wispd_put_json(txn, REF_KIND, member, doc, -1, NULL);
    }
    json_decref(kept);
    json_decref(doc);
    return err;
}

enum wisp_err wispd_member_refs_update(struct wisp_txn *txn, const char *policy_name,
                                       const json_t *old_policy, const json_t *new_policy)
{
    json_t *before = wispd_iam_indexed_members(old_policy);
    json_t *after = wispd_iam_indexed_members(new_policy);
    enum wisp_err err = WISP_OK;
    const char *m;
    json_t *v;
    json_object_foreach(after, m, v) {
        if (!json_object_get(before, m) && (err = ref_add(txn, m, policy_name)))
            goto out;
    }
    json_object_foreach(before, m, v) {
        if (!json_object_get(after, m) && (err = ref_remove(txn, m, policy_name)))
            goto out;
    }
out:
    json_decref(before);
    json_decref(after);
    return err;
}

enum wisp_err wispd_member_refs_rename(struct wisp_txn *txn, const char *from, const char *to)
{
    json_t *doc = NULL, *policy = NULL, *fresh = NULL;
    enum wisp_err err = wispd_get_json(txn, REF_KIND, from, &doc, NULL);
    if (err == WISP_ENOTFOUND)
        return WISP_OK;
    if (err)
        return err;
    /* A copy of the list: the updates below rewrite this very document. */
    json_t *names = json_deep_copy(json_object_get(doc, "policies"));
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) {
        const char *name = json_string_value(v);
        if (!name)
            continue;
        policy = NULL;
        err = wispd_get_json(txn, "iampolicy", name, &policy, NULL);
        if (err == WISP_ENOTFOUND) {
            /* A stale entry (the policy went without the hook): drop it. */
            if ((err = ref_remove(txn, from, name)))
                goto out;
            continue;
        }
        if (err)
            goto out;
        int changed = 0;
        fresh = wispd_iam_policy_replace_member(policy, from, to, &changed);
        if (changed) {
            err = wispd_put_json(txn, "iampolicy", name, fresh, -1, NULL);
            if (!err)
                err = wispd_member_refs_update(txn, name, policy, fresh);
            if (err)
                goto out;
            wisp_log_info("iam", "policy %s: %s is now %s", name, from, to);
        } else if ((err = ref_remove(txn, from, name))) {
            goto out;
        }
        json_decref(fresh);
        json_decref(policy);
        fresh = policy = NULL;
    }
out:
    json_decref(fresh);
    json_decref(policy);
    json_decref(names);
    json_decref(doc);
    return err;
}

struct all_ctx {
    json_t *policies; /* name -> stored policy */
};

static int collect_policy(const struct wisp_doc *doc, void *arg)
{
    struct all_ctx *ac = arg;
    json_t *p = json_loadb(doc->body, doc->body_len, 0, NULL);
    if (p)
        json_object_set_new(ac->policies, doc->name, p);
    return 0;
}

enum wisp_err wispd_member_refs_init(struct wisp_txn *txn)
{
    json_t *meta = NULL;
    enum wisp_err err = wispd_get_json(txn, "meta", REF_KIND, &meta, NULL);
    json_decref(meta);
    if (err != WISP_ENOTFOUND)
        return err;
    /* First start of a state directory made before the index existed:
     * index every policy once. Collected first, written after, so the scan
     * never sees its own writes. */
    struct all_ctx ac = {json_object()};
    err = wisp_store_list(txn, "iampolicy", "", NULL, 0, collect_policy, &ac, NULL);
    const char *name;
    json_t *p;
    json_object_foreach(ac.policies, name, p) {
        if (!err)
            err = wispd_member_refs_update(txn, name, NULL, p);
    }
    if (!err) {
        meta = json_pack("{s:i, s:I}", "version", 1, "indexed",
                         (json_int_t)json_object_size(ac.policies));
        err = wispd_put_json(txn, "meta", REF_KIND, meta, -1, NULL);
        json_decref(meta);
    }
    if (!err && json_object_size(ac.policies))
        wisp_log_info("iam", "indexed the members of %zu policies",
                      json_object_size(ac.policies));
    json_decref(ac.policies);
    return err;
}

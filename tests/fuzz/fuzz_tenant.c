/*
 * tests/fuzz/fuzz_tenant.c - libFuzzer target for the tenant and agent
 * parsers of the admin API (lib/chat/tenant.h): PUT bodies, JSON merge
 * patches and the storage form.
 *
 * The first byte picks the parser; the rest is the JSON text. Invariants
 * (any violation aborts): only 0 / CC_EINVAL / CC_ENOMEM come back, with a
 * non-empty message on CC_EINVAL; an accepted tenant survives
 * to_storage -> from_storage -> to_storage byte for byte, and its API form
 * carries no secret (neither the tenant's, old or new, nor the webhook's).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "chat/tenant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,       \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

static void
check_rc(int rc, const char *err)
{
    CHECK(rc == 0 || rc == CC_EINVAL || rc == CC_ENOMEM);
    if (rc == CC_EINVAL)
        CHECK(err && err[0]);
}

/* 1 when no member anywhere is "old_secret" and every "secret" is null */
static int
no_secret_keys(const cJSON *n)
{
    for (const cJSON *c = n ? n->child : NULL; c; c = c->next) {
        if (c->string && strcmp(c->string, "old_secret") == 0)
            return 0;
        if (c->string && strcmp(c->string, "secret") == 0 && !cJSON_IsNull(c))
            return 0;
        if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && !no_secret_keys(c))
            return 0;
    }
    return 1;
}

static void
roundtrip(const cc__tenant_cfg *t)
{
    cc__jbuf a, b, api;
    cc__jbuf_init(&a, NULL);
    cc__jbuf_init(&b, NULL);
    cc__jbuf_init(&api, NULL);
    cc__tenant_to_storage(&a, t);
    CHECK(!a.oom);
    cc__tenant_cfg back;
    CHECK(cc__tenant_from_storage(t->id, a.p, &back) == 0);
    cc__tenant_to_storage(&b, &back);
    CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
    cc__tenant_to_json(&api, t, 0);
    CHECK(!api.oom);
    /* secrets are write-only: checked on the parsed form, since a
     * secret's text (or a quoted key name) may appear inside a value */
    cJSON *j = cJSON_Parse(api.p);
    CHECK(j != NULL);
    CHECK(no_secret_keys(j));
    cJSON_Delete(j);
    cc__jbuf_free(&a);
    cc__jbuf_free(&b);
    cc__jbuf_free(&api);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % 4;
    const char *json = (const char *)data + 1;
    size_t len = size - 1;
    const char *err = NULL;
    cc__tenant_cfg t, p;
    cc__agent_cfg ag, ag2;
    char pw[CC__PW_MAX + 1];
    int rc;
    switch (mode) {
    case 0:
        rc = cc__tenant_from_put("t1", json, len, &t, &err);
        check_rc(rc, err);
        if (rc == 0) {
            CHECK(strcmp(t.id, "t1") == 0 && t.secret[0]);
            roundtrip(&t);
        }
        break;
    case 1:
        cc__tenant_defaults(&t, "t1");
        snprintf(t.secret, sizeof(t.secret), "%s",
                 "0123456789abcdef0123456789abcdef");
        snprintf(t.old_secret, sizeof(t.old_secret), "%s",
                 "fedcba9876543210fedcba9876543210");
        t.old_secret_until = 1700000000;
        rc = cc__tenant_patch(&t, json, len, &p, &err);
        check_rc(rc, err);
        if (rc == 0) {
            CHECK(strcmp(p.id, "t1") == 0 && p.secret[0]);
            roundtrip(&p);
        }
        break;
    case 2:
        rc = cc__agent_from_put("t1", "a1", json, len, &ag, pw, &err);
        check_rc(rc, err);
        if (rc == 0) {
            CHECK(strlen(pw) >= CC__PW_MIN);
            CHECK(ag.capacity >= 0 && ag.capacity <= 1000);
        }
        break;
    default: {
        memset(&ag, 0, sizeof(ag));
        snprintf(ag.tenant, sizeof(ag.tenant), "t1");
        snprintf(ag.id, sizeof(ag.id), "a1");
        snprintf(ag.name, sizeof(ag.name), "A");
        rc = cc__agent_patch(&ag, json, len, &ag2, pw, &err);
        check_rc(rc, err);
        /* the storage reader must not crash on anything either */
        char *z = malloc(len + 1);
        if (z) {
            memcpy(z, json, len);
            z[len] = '\0';
            cc__tenant_cfg s;
            cc__agent_cfg sa;
            (void)cc__tenant_from_storage("t1", z, &s);
            (void)cc__agent_from_storage("t1", "a1", z, &sa);
            free(z);
        }
        break;
    }
    }
    return 0;
}

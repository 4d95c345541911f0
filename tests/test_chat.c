/*
 * tests/test_chat.c - the chat engine's public setup API (chat.h) with a
 * real SQLite store: the admin key (generated, stored, overridden),
 * cc_chat_tenant_put / cc_chat_agent_put validation and persistence across
 * a restart, metrics text, and a clean close. The protocol itself is
 * tested over the wire (tests/chat/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/testutil.h"

typedef struct fx {
    uv_loop_t loop;
    cc_ctx *ctx;
    cc_store *st;
    cc_chat *chat;
    char dir[64], path[128];
} fx;

static void
set_flag(void *obj, void *data)
{
    (void)obj;
    *(volatile int *)data = 1;
}

static int
fx_open(fx *f, const char *admin_key)
{
    ck_assert_int_eq(uv_loop_init(&f->loop), 0);
    ck_assert_int_eq(cc_ctx_new(&f->ctx, &f->loop, NULL), 0);
    ck_assert_int_eq(cc_store_sqlite_open(&f->st, f->ctx, f->path, 0), 0);
    cc_config *cfg = NULL;
    ck_assert_int_eq(cc_config_new(&cfg, NULL), 0);
    if (admin_key)
        ck_assert_int_eq(cc_config_set_str(cfg, CC_OPT_CHAT_ADMIN_KEY,
                                           admin_key), 0);
    int rc = cc_chat_new(&f->chat, f->ctx, f->st, cfg);
    cc_config_free(cfg);
    return rc;
}

static void
fx_close(fx *f)
{
    volatile int done = 0;
    cc_chat_close(f->chat, set_flag, (void *)&done);
    ck_assert(cc_test_run_until(&f->loop, &done, 10000));
    done = 0;
    cc_store_close(f->st, set_flag, (void *)&done);
    ck_assert(cc_test_run_until(&f->loop, &done, 10000));
    cc_ctx_close(f->ctx, NULL, NULL);
    cc_test_loop_teardown(&f->loop);
}

static void
fx_init(fx *f)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cc_test_chat.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/chat.db", f->dir);
}

static void
fx_fini(fx *f)
{
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(admin_key_generated_stored_overridden)
{
    fx f;
    fx_init(&f);
    ck_assert_int_eq(fx_open(&f, NULL), 0);
    int gen = 0;
    char key[80];
    snprintf(key, sizeof(key), "%s", cc_chat_admin_key(f.chat, &gen));
    ck_assert_int_eq(gen, 1);
    ck_assert_uint_eq(strlen(key), 43);
    ck_assert(strncmp(key, "ck_", 3) == 0);
    ck_assert_uint_eq(cc_chat_tenant_count(f.chat), 0);
    fx_close(&f);
    /* a restart reuses the stored key */
    ck_assert_int_eq(fx_open(&f, NULL), 0);
    ck_assert_str_eq(cc_chat_admin_key(f.chat, &gen), key);
    ck_assert_int_eq(gen, 0);
    fx_close(&f);
    /* the option wins */
    ck_assert_int_eq(fx_open(&f, "my-admin-key"), 0);
    ck_assert_str_eq(cc_chat_admin_key(f.chat, &gen), "my-admin-key");
    ck_assert_int_eq(gen, 0);
    fx_close(&f);
    fx_fini(&f);
}
END_TEST

START_TEST(tenant_and_agent_put)
{
    fx f;
    fx_init(&f);
    ck_assert_int_eq(fx_open(&f, "k"), 0);
    const char *err = NULL;
    char secret[260];
    ck_assert_int_eq(cc_chat_tenant_put(f.chat, "bad id!", "{}", NULL, 0,
                                        &err), CC_EINVAL);
    ck_assert_str_eq(err, "id: not a valid id");
    ck_assert_int_eq(cc_chat_tenant_put(f.chat, "t1", "{\"session_ttl\":0}",
                                        NULL, 0, &err), CC_EINVAL);
    ck_assert(strncmp(err, "session_ttl: ", 13) == 0);
    ck_assert_int_eq(cc_chat_tenant_put(f.chat, "t1", "{\"nmae\":\"x\"}",
                                        NULL, 0, &err), CC_EINVAL);
    ck_assert_uint_eq(cc_chat_tenant_count(f.chat), 0);
    ck_assert_int_eq(cc_chat_tenant_put(f.chat, "t1", "{\"name\":\"One\"}",
                                        secret, sizeof(secret), &err), 0);
    ck_assert_uint_eq(strlen(secret), 64);
    /* a replace without "secret" keeps it */
    char again[260];
    ck_assert_int_eq(cc_chat_tenant_put(f.chat, "t1",
                                        "{\"name\":\"Uno\",\"auto_assign\":"
                                        "true}", again, sizeof(again), &err),
                     0);
    ck_assert_str_eq(again, secret);
    ck_assert_uint_eq(cc_chat_tenant_count(f.chat), 1);
    ck_assert_int_eq(cc_chat_agent_put(f.chat, "nope", "a1",
                                       "{\"password\":\"password1\"}", &err),
                     CC_ENOENT);
    ck_assert_int_eq(cc_chat_agent_put(f.chat, "t1", "a1",
                                       "{\"password\":\"short\"}", &err),
                     CC_EINVAL);
    ck_assert(strncmp(err, "password: ", 10) == 0);
    ck_assert_int_eq(cc_chat_agent_put(f.chat, "t1", "a1",
                                       "{\"name\":\"Ann\",\"password\":"
                                       "\"password1\"}", &err), 0);
    cc_buf m;
    ck_assert_int_eq(cc_chat_metrics(f.chat, &m), 0);
    const char *txt = (const char *)m.base;
    ck_assert_uint_eq(strlen(txt), m.len);
    ck_assert_ptr_nonnull(strstr(txt, "chatcore_connections{role=\"visitor\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(txt, "chatcore_queue_length{tenant=\"t1\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(txt, "chatcore_sessions{state=\"queued\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(txt, "# TYPE chatcore_store_commit_seconds histogram\n"));
    cc_ctx_free(f.ctx, (void *)m.base, m.len + 1);
    fx_close(&f);
    /* everything was stored: a restart finds the tenant, its secret and
     * its agent (a second put of the agent is a replace) */
    ck_assert_int_eq(fx_open(&f, "k"), 0);
    ck_assert_uint_eq(cc_chat_tenant_count(f.chat), 1);
    ck_assert_int_eq(cc_chat_tenant_put(f.chat, "t1", "{\"name\":\"Uno\"}",
                                        again, sizeof(again), &err), 0);
    ck_assert_str_eq(again, secret);
    ck_assert_int_eq(cc_chat_agent_put(f.chat, "t1", "a1",
                                       "{\"password\":\"password2\"}", &err),
                     0);
    fx_close(&f);
    fx_fini(&f);
}
END_TEST

START_TEST(new_refuses_bad_arguments)
{
    cc_chat *c = (cc_chat *)1;
    ck_assert_int_eq(cc_chat_new(&c, NULL, NULL, NULL), CC_EINVAL);
    ck_assert_ptr_null(c);
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("chat");
    TCase *tc = tcase_create("setup");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, admin_key_generated_stored_overridden);
    tcase_add_test(tc, tenant_and_agent_put);
    tcase_add_test(tc, new_refuses_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

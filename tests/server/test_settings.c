/*
 * tests/server/test_settings.c - examples/chatcore-server's settings loader
 * (defaults < file < env < flags, every error message) and its structured
 * logger (exact line format with a pinned clock, escaping, threshold,
 * whole lines under concurrent writers). Built by tests/server/tests.cmake
 * straight from the example's settings.c and log.c.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <chatcore/version.h>
#include <cjson/cJSON.h>
#include <uv.h>

#include "testutil.h"

#include "log.h"
#include "settings.h"

/* ---- helpers ---- */

static char g_err[512];
static char g_dir[64];

/* A fresh directory per test (each test runs in its own fork). */
static void
setup(void)
{
    strcpy(g_dir, "/tmp/cc_settings_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

static void
teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    (void)!system(cmd);
}

/* Write text to <g_dir>/name; returns the path (static buffer per call
 * site is enough: each test copies what it keeps). */
static const char *
write_file(const char *name, const char *text)
{
    static char paths[4][256];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 256, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return p;
}

/* Load with argv = program name + the NULL-terminated arguments. */
static int
load(cc_settings *s, char **env, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "chatcore-server";
    va_list ap;
    va_start(ap, env);
    char *a;
    while ((a = va_arg(ap, char *)) != NULL)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    strcpy(g_err, "(untouched)");
    return cc_settings_load(s, argc, argv, env, g_err, sizeof g_err);
}

#define EXPECT_ERR(env, msg, ...)                                           \
    do {                                                                    \
        cc_settings s_;                                                     \
        ck_assert_int_eq(load(&s_, env, __VA_ARGS__, (char *)NULL), -1);    \
        ck_assert_str_eq(g_err, msg);                                       \
        ck_assert_ptr_null(s_.host);                                        \
    } while (0)

/* An error from loading a config file with the given text. */
static void
expect_file_err(const char *text, const char *what)
{
    const char *p = write_file("server.json", text);
    char want[512];
    snprintf(want, sizeof want, "%s: %s", p, what);
    cc_settings s;
    ck_assert_int_eq(load(&s, NULL, "--config", p, (char *)NULL), -1);
    ck_assert_str_eq(g_err, want);
    ck_assert_ptr_null(s.host);
    cc_settings_free(&s);
}

/* Run fn with stdout captured into buf. */
static int
capture_stdout(char *buf, size_t cap, int (*fn)(void *), void *arg)
{
    fflush(stdout);
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    int saved = dup(1);
    dup2(fileno(tmp), 1);
    int rc = fn(arg);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    rewind(tmp);
    size_t n = fread(buf, 1, cap - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return rc;
}

/* ---- settings: sources ---- */

static void
assert_defaults(const cc_settings *s)
{
    ck_assert_str_eq(s->host, "0.0.0.0");
    ck_assert_int_eq(s->port, 8080);
    ck_assert_str_eq(s->data, "./data");
    ck_assert_str_eq(s->admin_key, "");
    ck_assert_str_eq(s->node, "node-1");
    ck_assert_str_eq(s->sync, "normal");
    ck_assert_str_eq(s->static_dir, "");
    ck_assert_int_eq(s->demo, 1);
    ck_assert_int_eq(s->ip_upgrades_per_min, 600);
    ck_assert_int_eq(s->logins_per_min, 10);
    ck_assert_int_eq(s->max_message, 65536);
    ck_assert_int_eq(s->drain_timeout_ms, 10000);
    ck_assert_str_eq(s->log_level, "info");
    ck_assert_str_eq(s->log_format, "json");
    ck_assert_str_eq(s->tls_cert, "");
    ck_assert_str_eq(s->tls_key, "");
    ck_assert_str_eq(s->config, "");
}

START_TEST(defaults)
{
    cc_settings s;
    char *env[] = {"HOME=/root", "PATH=/bin", NULL};
    ck_assert_int_eq(load(&s, env, (char *)NULL), 0);
    ck_assert_str_eq(g_err, "");
    assert_defaults(&s);
    cc_settings_free(&s);
    ck_assert_ptr_null(s.host);
    cc_settings_free(&s); /* twice is fine */

    /* argc 0 and no environment at all */
    ck_assert_int_eq(cc_settings_load(&s, 0, NULL, NULL, g_err, sizeof g_err),
                     0);
    assert_defaults(&s);
    cc_settings_free(&s);
}
END_TEST

START_TEST(file_overrides_defaults)
{
    const char *p = write_file(
        "server.json",
        "{\"host\":\"127.0.0.1\",\"port\":9001,\"data\":\"/var/cc\","
        "\"admin_key\":\"k1\",\"node\":\"gw-2\",\"sync\":\"full\","
        "\"static\":\"/srv/www\",\"demo\":false,\"ip_upgrades_per_min\":5,"
        "\"max_message\":1024,\"drain_timeout_ms\":0,\"log_level\":\"warn\","
        "\"log_format\":\"text\",\"tls_cert\":\"c.pem\","
        "\"tls_key\":\"k.pem\"}");
    cc_settings s;
    ck_assert_int_eq(load(&s, NULL, "--config", p, (char *)NULL), 0);
    ck_assert_str_eq(s.host, "127.0.0.1");
    ck_assert_int_eq(s.port, 9001);
    ck_assert_str_eq(s.data, "/var/cc");
    ck_assert_str_eq(s.admin_key, "k1");
    ck_assert_str_eq(s.node, "gw-2");
    ck_assert_str_eq(s.sync, "full");
    ck_assert_str_eq(s.static_dir, "/srv/www");
    ck_assert_int_eq(s.demo, 0);
    ck_assert_int_eq(s.ip_upgrades_per_min, 5);
    ck_assert_int_eq(s.max_message, 1024);
    ck_assert_int_eq(s.drain_timeout_ms, 0);
    ck_assert_str_eq(s.log_level, "warn");
    ck_assert_str_eq(s.log_format, "text");
    ck_assert_str_eq(s.tls_cert, "c.pem");
    ck_assert_str_eq(s.tls_key, "k.pem");
    ck_assert_str_eq(s.config, p);
    cc_settings_free(&s);

    /* an empty object, whitespace and a BOM change nothing */
    p = write_file("empty.json", "\xEF\xBB\xBF \n{ }\n");
    ck_assert_int_eq(load(&s, NULL, "--config", p, (char *)NULL), 0);
    ck_assert_int_eq(s.port, 8080);
    ck_assert_str_eq(s.config, p);
    cc_settings_free(&s);
}
END_TEST

START_TEST(env_overrides_file)
{
    const char *p = write_file(
        "server.json",
        "{\"port\":9001,\"data\":\"/from-file\",\"node\":\"file-node\"}");
    char cfg[300], *env[8];
    snprintf(cfg, sizeof cfg, "CHATCORE_CONFIG=%s", p);
    env[0] = cfg;
    env[1] = "CHATCORE_PORT=9002";
    env[2] = "CHATCORE_DATA=/from-env";
    env[3] = "CHATCORE_IP_UPGRADES_PER_MIN=77";
    env[4] = "CHATCORE_ADMIN_KEY=secret";
    env[5] = "CHATCORE_DEMO=off";
    env[6] = NULL;
    cc_settings s;
    ck_assert_int_eq(load(&s, env, (char *)NULL), 0);
    ck_assert_str_eq(s.config, p);
    ck_assert_int_eq(s.port, 9002);
    ck_assert_str_eq(s.data, "/from-env");
    ck_assert_str_eq(s.node, "file-node"); /* file value kept */
    ck_assert_int_eq(s.ip_upgrades_per_min, 77);
    ck_assert_str_eq(s.admin_key, "secret");
    ck_assert_int_eq(s.demo, 0);
    ck_assert_str_eq(s.host, "0.0.0.0"); /* default kept */
    cc_settings_free(&s);
}
END_TEST

START_TEST(flag_overrides_env)
{
    const char *p = write_file("server.json",
                               "{\"port\":9001,\"sync\":\"full\","
                               "\"log_level\":\"error\"}");
    char cfg[300];
    snprintf(cfg, sizeof cfg, "CHATCORE_CONFIG=%s", p);
    char *env[] = {cfg, "CHATCORE_PORT=9002", "CHATCORE_NODE=env-node",
                   NULL};
    cc_settings s;
    ck_assert_int_eq(load(&s, env, "--port", "9003", "--node=flag-node",
                          (char *)NULL),
                     0);
    ck_assert_int_eq(s.port, 9003);
    ck_assert_str_eq(s.node, "flag-node");
    ck_assert_str_eq(s.sync, "full");        /* file */
    ck_assert_str_eq(s.log_level, "error");  /* file */
    cc_settings_free(&s);

    /* --name=value form, and a repeated flag: the last wins */
    ck_assert_int_eq(load(&s, env, "--port=9004", "--port", "9005",
                          "--port=9006", (char *)NULL),
                     0);
    ck_assert_int_eq(s.port, 9006);
    cc_settings_free(&s);

    /* a value may contain '=' and may be empty with --name= */
    ck_assert_int_eq(load(&s, env, "--admin-key=a=b", "--static=",
                          (char *)NULL),
                     0);
    ck_assert_str_eq(s.admin_key, "a=b");
    ck_assert_str_eq(s.static_dir, "");
    cc_settings_free(&s);

    /* a value starting with "--" only through the = form */
    ck_assert_int_eq(load(&s, NULL, "--admin-key=--k", (char *)NULL), 0);
    ck_assert_str_eq(s.admin_key, "--k");
    cc_settings_free(&s);
    /* a single-dash value is a value */
    EXPECT_ERR(NULL, "--port: must be an integer from 0 to 65535",
               "--port", "-1");
}
END_TEST

START_TEST(config_flag_beats_env)
{
    char a[256], b[256];
    snprintf(a, sizeof a, "%s", write_file("a.json", "{\"port\":1111}"));
    snprintf(b, sizeof b, "%s", write_file("b.json", "{\"port\":2222}"));
    char cfg[300];
    snprintf(cfg, sizeof cfg, "CHATCORE_CONFIG=%s", a);
    char *env[] = {cfg, NULL};
    cc_settings s;
    ck_assert_int_eq(load(&s, env, "--config", b, (char *)NULL), 0);
    ck_assert_int_eq(s.port, 2222);
    ck_assert_str_eq(s.config, b);
    cc_settings_free(&s);
    ck_assert_int_eq(load(&s, env, (char *)NULL), 0);
    ck_assert_int_eq(s.port, 1111);
    ck_assert_str_eq(s.config, a);
    cc_settings_free(&s);
    /* --config "" reads no file even when the env names one */
    ck_assert_int_eq(load(&s, env, "--config=", (char *)NULL), 0);
    ck_assert_int_eq(s.port, 8080);
    ck_assert_str_eq(s.config, "");
    cc_settings_free(&s);
}
END_TEST

START_TEST(every_flag_and_env_name)
{
    cc_settings s;
    ck_assert_int_eq(
        load(&s, NULL, "--host", "::1", "--port", "0", "--data", "/d",
             "--admin-key", "K", "--node", "n.2:x_y-z", "--sync", "full",
             "--static", "/www", "--demo", "no", "--ip-upgrades-per-min",
             "100", "--max-message", "16777216", "--drain-timeout-ms",
             "600000", "--log-level", "debug", "--log-format", "text",
             "--tls-cert", "c", "--tls-key", "k", (char *)NULL),
        0);
    ck_assert_str_eq(s.host, "::1");
    ck_assert_int_eq(s.port, 0);
    ck_assert_str_eq(s.data, "/d");
    ck_assert_str_eq(s.admin_key, "K");
    ck_assert_str_eq(s.node, "n.2:x_y-z");
    ck_assert_str_eq(s.sync, "full");
    ck_assert_str_eq(s.static_dir, "/www");
    ck_assert_int_eq(s.demo, 0);
    ck_assert_int_eq(s.ip_upgrades_per_min, 100);
    ck_assert_int_eq(s.max_message, 16777216);
    ck_assert_int_eq(s.drain_timeout_ms, 600000);
    ck_assert_str_eq(s.log_level, "debug");
    ck_assert_str_eq(s.log_format, "text");
    ck_assert_str_eq(s.tls_cert, "c");
    ck_assert_str_eq(s.tls_key, "k");
    cc_settings_free(&s);

    char *env[] = {"CHATCORE_HOST=10.0.0.1", "CHATCORE_PORT=65535",
                   "CHATCORE_DATA=/e", "CHATCORE_ADMIN_KEY=EK",
                   "CHATCORE_NODE=en", "CHATCORE_SYNC=full",
                   "CHATCORE_STATIC=/ew", "CHATCORE_DEMO=0",
                   "CHATCORE_IP_UPGRADES_PER_MIN=1000000",
                   "CHATCORE_MAX_MESSAGE=1024",
                   "CHATCORE_DRAIN_TIMEOUT_MS=1",
                   "CHATCORE_LOG_LEVEL=error", "CHATCORE_LOG_FORMAT=text",
                   "CHATCORE_TLS_CERT=ec", "CHATCORE_TLS_KEY=ek", NULL};
    ck_assert_int_eq(load(&s, env, (char *)NULL), 0);
    ck_assert_str_eq(s.host, "10.0.0.1");
    ck_assert_int_eq(s.port, 65535);
    ck_assert_str_eq(s.data, "/e");
    ck_assert_str_eq(s.admin_key, "EK");
    ck_assert_str_eq(s.node, "en");
    ck_assert_str_eq(s.sync, "full");
    ck_assert_str_eq(s.static_dir, "/ew");
    ck_assert_int_eq(s.demo, 0);
    ck_assert_int_eq(s.ip_upgrades_per_min, 1000000);
    ck_assert_int_eq(s.max_message, 1024);
    ck_assert_int_eq(s.drain_timeout_ms, 1);
    ck_assert_str_eq(s.log_level, "error");
    ck_assert_str_eq(s.log_format, "text");
    ck_assert_str_eq(s.tls_cert, "ec");
    ck_assert_str_eq(s.tls_key, "ek");
    cc_settings_free(&s);
}
END_TEST

/* ---- settings: booleans ---- */

static const struct {
    const char *text;
    int value;
} bools[] = {
    {"true", 1}, {"false", 0}, {"1", 1}, {"0", 0}, {"yes", 1}, {"no", 0},
    {"on", 1},   {"off", 0},   {"TRUE", 1}, {"Off", 0}, {"YeS", 1},
};

START_TEST(bool_values)
{
    cc_settings s;
    /* from 0 -> value and from 1 -> value, so each case can fail */
    char *start = bools[_i].value ? "false" : "true";
    char arg[32];
    snprintf(arg, sizeof arg, "--demo=%s", bools[_i].text);
    ck_assert_int_eq(load(&s, NULL, "--demo", start, arg, (char *)NULL), 0);
    ck_assert_int_eq(s.demo, bools[_i].value);
    cc_settings_free(&s);

    char envv[64];
    snprintf(envv, sizeof envv, "CHATCORE_DEMO=%s", bools[_i].text);
    char *env[] = {envv, NULL};
    ck_assert_int_eq(load(&s, env, (char *)NULL), 0);
    ck_assert_int_eq(s.demo, bools[_i].value);
    cc_settings_free(&s);
}
END_TEST

START_TEST(bool_errors)
{
    static const char msg[] =
        "--demo: must be a boolean (true/false, 1/0, yes/no, on/off)";
    EXPECT_ERR(NULL, msg, "--demo", "maybe");
    EXPECT_ERR(NULL, msg, "--demo=");
    EXPECT_ERR(NULL, msg, "--demo", "2");
    EXPECT_ERR(NULL, msg, "--demo", "truex");
    EXPECT_ERR(NULL, msg, "--demo", "tru");
    EXPECT_ERR(NULL, msg, "--demo", " true");
    char *env[] = {"CHATCORE_DEMO=y", NULL};
    EXPECT_ERR(env,
               "CHATCORE_DEMO: must be a boolean (true/false, 1/0, yes/no, "
               "on/off)",
               "--port", "1");
    /* flags are applied after env, but the env error is reported: env is
     * checked where it is read */
}
END_TEST

/* ---- settings: value errors ---- */

START_TEST(int_errors)
{
    static const char port[] = "--port: must be an integer from 0 to 65535";
    EXPECT_ERR(NULL, port, "--port", "65536");
    EXPECT_ERR(NULL, port, "--port", "-1");
    EXPECT_ERR(NULL, port, "--port", "abc");
    EXPECT_ERR(NULL, port, "--port=");
    EXPECT_ERR(NULL, port, "--port", "80x");
    EXPECT_ERR(NULL, port, "--port", " 80");
    EXPECT_ERR(NULL, port, "--port", "+80");
    EXPECT_ERR(NULL, port, "--port", "0x50");
    EXPECT_ERR(NULL, port, "--port", "8080.0");
    EXPECT_ERR(NULL, port, "--port", "99999999999999999999999");
    EXPECT_ERR(NULL, port, "--port", "-");
    EXPECT_ERR(NULL,
               "--ip-upgrades-per-min: must be an integer from 1 to 1000000",
               "--ip-upgrades-per-min", "0");
    EXPECT_ERR(NULL,
               "--ip-upgrades-per-min: must be an integer from 1 to 1000000",
               "--ip-upgrades-per-min", "1000001");
    EXPECT_ERR(NULL,
               "--max-message: must be an integer from 1024 to 16777216",
               "--max-message", "1023");
    EXPECT_ERR(NULL,
               "--max-message: must be an integer from 1024 to 16777216",
               "--max-message", "16777217");
    EXPECT_ERR(NULL,
               "--drain-timeout-ms: must be an integer from 0 to 600000",
               "--drain-timeout-ms", "600001");
    char *env[] = {"CHATCORE_PORT=x", NULL};
    EXPECT_ERR(env, "CHATCORE_PORT: must be an integer from 0 to 65535",
               "--demo", "true");

    /* the bounds themselves are accepted */
    cc_settings s;
    ck_assert_int_eq(load(&s, NULL, "--port", "0", "--max-message", "1024",
                          "--ip-upgrades-per-min", "1", "--drain-timeout-ms",
                          "0", (char *)NULL),
                     0);
    ck_assert_int_eq(s.port, 0);
    ck_assert_int_eq(s.max_message, 1024);
    ck_assert_int_eq(s.ip_upgrades_per_min, 1);
    cc_settings_free(&s);
    ck_assert_int_eq(load(&s, NULL, "--port", "65535", (char *)NULL), 0);
    ck_assert_int_eq(s.port, 65535);
    cc_settings_free(&s);
}
END_TEST

START_TEST(string_errors)
{
    EXPECT_ERR(NULL, "--sync: must be one of normal, full", "--sync",
               "fast");
    EXPECT_ERR(NULL, "--sync: must be one of normal, full", "--sync",
               "FULL");
    EXPECT_ERR(NULL, "--log-level: must be one of debug, info, warn, error",
               "--log-level", "trace");
    EXPECT_ERR(NULL, "--log-format: must be one of json, text",
               "--log-format", "xml");
    char *env[] = {"CHATCORE_SYNC=", NULL};
    EXPECT_ERR(env, "CHATCORE_SYNC: must be one of normal, full", "--port",
               "1");

    static const char node[] =
        "--node: must be 1 to 64 characters from [A-Za-z0-9_.:-]";
    EXPECT_ERR(NULL, node, "--node", "bad id");
    EXPECT_ERR(NULL, node, "--node=");
    EXPECT_ERR(NULL, node, "--node", "n/1");
    char long65[66], long64[65];
    memset(long65, 'a', 65);
    long65[65] = '\0';
    memset(long64, 'b', 64);
    long64[64] = '\0';
    EXPECT_ERR(NULL, node, "--node", long65);
    cc_settings s;
    ck_assert_int_eq(load(&s, NULL, "--node", long64, (char *)NULL), 0);
    ck_assert_str_eq(s.node, long64);
    cc_settings_free(&s);

    EXPECT_ERR(NULL, "--host: must not be empty", "--host=");
    EXPECT_ERR(NULL, "--data: must not be empty", "--data=");
}
END_TEST

START_TEST(flag_errors)
{
    EXPECT_ERR(NULL, "missing value for --data", "--data");
    EXPECT_ERR(NULL, "missing value for --data", "--data", "--port", "1");
    EXPECT_ERR(NULL, "missing value for --port", "--host", "h", "--port");
    EXPECT_ERR(NULL, "unknown flag --foo", "--foo");
    EXPECT_ERR(NULL, "unknown flag --foo", "--foo=1");
    EXPECT_ERR(NULL, "unknown flag --foo", "--foo", "1");
    EXPECT_ERR(NULL, "unknown flag --admin_key", "--admin_key", "k");
    EXPECT_ERR(NULL, "unknown flag --Port", "--Port", "1");
    EXPECT_ERR(NULL, "unknown flag -p", "-p", "1");
    EXPECT_ERR(NULL, "unknown flag --", "--");
    EXPECT_ERR(NULL, "unknown flag --=x", "--=x");
    EXPECT_ERR(NULL, "unexpected argument \"serve\"", "serve");
    EXPECT_ERR(NULL, "unexpected argument \"9000\"", "--port", "1", "9000");
    EXPECT_ERR(NULL, "--help takes no value", "--help=1");
    EXPECT_ERR(NULL, "--version takes no value", "--version=yes");
    /* the first problem is the one reported */
    EXPECT_ERR(NULL, "unknown flag --a", "--a", "--b");
}
END_TEST

START_TEST(tls_pair)
{
    EXPECT_ERR(NULL, "tls_cert is set but tls_key is not: set both or neither",
               "--tls-cert", "c.pem");
    EXPECT_ERR(NULL, "tls_key is set but tls_cert is not: set both or neither",
               "--tls-key", "k.pem");
    char *env[] = {"CHATCORE_TLS_CERT=c.pem", NULL};
    EXPECT_ERR(env, "tls_cert is set but tls_key is not: set both or neither",
               "--port", "1");
    /* both from different sources is fine; a later source can unset one */
    cc_settings s;
    ck_assert_int_eq(load(&s, env, "--tls-key", "k.pem", (char *)NULL), 0);
    ck_assert_str_eq(s.tls_cert, "c.pem");
    ck_assert_str_eq(s.tls_key, "k.pem");
    cc_settings_free(&s);
    ck_assert_int_eq(load(&s, env, "--tls-cert=", (char *)NULL), 0);
    ck_assert_str_eq(s.tls_cert, "");
    cc_settings_free(&s);
}
END_TEST

/* ---- settings: the config file ---- */

START_TEST(file_errors)
{
    expect_file_err("{\"prot\":80}", "unknown key \"prot\"");
    expect_file_err("{\"port\":80,\"static_dir\":\"x\"}",
                    "unknown key \"static_dir\"");
    expect_file_err("{\"admin-key\":\"k\"}", "unknown key \"admin-key\"");
    expect_file_err("{\"config\":\"other.json\"}",
                    "\"config\" cannot be set in a config file");
    expect_file_err("{\"port\":80,\"port\":81}", "duplicate key \"port\"");

    /* type mismatches */
    expect_file_err("{\"port\":\"80\"}",
                    "\"port\": must be an integer from 0 to 65535");
    expect_file_err("{\"port\":80.5}",
                    "\"port\": must be an integer from 0 to 65535");
    expect_file_err("{\"port\":1e300}",
                    "\"port\": must be an integer from 0 to 65535");
    expect_file_err("{\"port\":-1}",
                    "\"port\": must be an integer from 0 to 65535");
    expect_file_err("{\"port\":true}",
                    "\"port\": must be an integer from 0 to 65535");
    expect_file_err("{\"port\":null}",
                    "\"port\": must be an integer from 0 to 65535");
    expect_file_err("{\"max_message\":100}",
                    "\"max_message\": must be an integer from 1024 to "
                    "16777216");
    expect_file_err("{\"demo\":\"yes\"}",
                    "\"demo\": must be true or false");
    expect_file_err("{\"demo\":1}", "\"demo\": must be true or false");
    expect_file_err("{\"host\":5}", "\"host\": must be a string");
    expect_file_err("{\"admin_key\":null}",
                    "\"admin_key\": must be a string");
    expect_file_err("{\"tls_cert\":[\"a\"]}",
                    "\"tls_cert\": must be a string");
    expect_file_err("{\"sync\":\"fast\"}",
                    "\"sync\": must be one of normal, full");
    expect_file_err("{\"node\":\"a b\"}",
                    "\"node\": must be 1 to 64 characters from "
                    "[A-Za-z0-9_.:-]");

    /* not an object, not JSON */
    expect_file_err("[1,2]", "must be a JSON object");
    expect_file_err("\"port\"", "must be a JSON object");
    /* the position is where cJSON gave up: past the '}' here */
    expect_file_err("{\"port\": 80,}", "invalid JSON at line 1, column 14");
    expect_file_err("{\"a\":tru}", "invalid JSON at line 1, column 6");
    expect_file_err("{\n  \"port\": 80\n  \"host\": \"x\"\n}",
                    "invalid JSON at line 3, column 3");
    expect_file_err("", "invalid JSON at line 1, column 1");
    expect_file_err("{} {}", "invalid JSON at line 1, column 4");
    expect_file_err("port = 80", "invalid JSON at line 1, column 1");
}
END_TEST

START_TEST(file_unreadable)
{
    char path[300];
    snprintf(path, sizeof path, "%s/nope.json", g_dir);
    char want[400];
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory",
             path);
    cc_settings s;
    ck_assert_int_eq(load(&s, NULL, "--config", path, (char *)NULL), -1);
    ck_assert_str_eq(g_err, want);
    char envv[320];
    snprintf(envv, sizeof envv, "CHATCORE_CONFIG=%s", path);
    char *env[] = {envv, NULL};
    ck_assert_int_eq(load(&s, env, (char *)NULL), -1);
    ck_assert_str_eq(g_err, want);

    /* a NUL inside the file */
    snprintf(path, sizeof path, "%s/nul.json", g_dir);
    FILE *f = fopen(path, "wb");
    fwrite("{}\0{}", 1, 5, f);
    fclose(f);
    snprintf(want, sizeof want, "%s: invalid JSON (contains a NUL byte)",
             path);
    ck_assert_int_eq(load(&s, NULL, "--config", path, (char *)NULL), -1);
    ck_assert_str_eq(g_err, want);

    /* over 1 MiB */
    snprintf(path, sizeof path, "%s/big.json", g_dir);
    f = fopen(path, "wb");
    fputc('{', f);
    for (int i = 0; i < 1024 * 1024; i++)
        fputc(' ', f);
    fputc('}', f);
    fclose(f);
    snprintf(want, sizeof want, "%s: larger than 1048576 bytes", path);
    ck_assert_int_eq(load(&s, NULL, "--config", path, (char *)NULL), -1);
    ck_assert_str_eq(g_err, want);
}
END_TEST

/* ---- settings: help, version, warnings, output ---- */

typedef struct call {
    const char *args[4];
    int rc;
} call;

static int
do_call(void *arg)
{
    call *c = arg;
    char *argv[6] = {"chatcore-server"};
    int argc = 1;
    for (int i = 0; c->args[i]; i++)
        argv[argc++] = (char *)c->args[i];
    cc_settings s;
    c->rc = cc_settings_load(&s, argc, argv, NULL, g_err, sizeof g_err);
    ck_assert_ptr_null(s.host);
    return c->rc;
}

START_TEST(help_and_version)
{
    static char out[16384];
    call c = {{"--help", NULL}, 0};
    ck_assert_int_eq(capture_stdout(out, sizeof out, do_call, &c), 1);
    ck_assert_str_eq(g_err, "");
    ck_assert_ptr_nonnull(strstr(out, "Usage: chatcore-server"));
    /* every setting: its flag line, a help line, then default and env */
    static const char *const want[][2] = {
        {"--config FILE", "default \"\", env CHATCORE_CONFIG"},
        {"--host ADDR", "default \"0.0.0.0\", env CHATCORE_HOST"},
        {"--port N", "default 8080, env CHATCORE_PORT, range 0..65535"},
        {"--data DIR", "default \"./data\", env CHATCORE_DATA"},
        {"--admin-key KEY", "default \"\", env CHATCORE_ADMIN_KEY"},
        {"--node ID", "default \"node-1\", env CHATCORE_NODE"},
        {"--sync MODE", "default \"normal\", env CHATCORE_SYNC"},
        {"--static DIR", "default \"\", env CHATCORE_STATIC"},
        {"--demo BOOL", "default true, env CHATCORE_DEMO"},
        {"--ip-upgrades-per-min N",
         "default 600, env CHATCORE_IP_UPGRADES_PER_MIN, range 1..1000000"},
        {"--logins-per-min N",
         "default 10, env CHATCORE_LOGINS_PER_MIN, range 1..1000000"},
        {"--max-message BYTES",
         "default 65536, env CHATCORE_MAX_MESSAGE, range 1024..16777216"},
        {"--drain-timeout-ms MS",
         "default 10000, env CHATCORE_DRAIN_TIMEOUT_MS, range 0..600000"},
        {"--log-level LEVEL", "default \"info\", env CHATCORE_LOG_LEVEL"},
        {"--log-format FORMAT",
         "default \"json\", env CHATCORE_LOG_FORMAT"},
        {"--tls-cert FILE", "default \"\", env CHATCORE_TLS_CERT"},
        {"--tls-key FILE", "default \"\", env CHATCORE_TLS_KEY"},
        {"--help, -h", "print this text and exit"},
        {"--version", "print the version and exit"},
    };
    const char *at = out;
    size_t nwant = sizeof want / sizeof want[0];
    for (size_t i = 0; i < nwant; i++) {
        char head[64], line[128];
        snprintf(head, sizeof head, "\n  %s\n      ", want[i][0]);
        snprintf(line, sizeof line, "      %s\n", want[i][1]);
        const char *h = strstr(at, head); /* in table order */
        ck_assert_msg(h != NULL, "help lacks [%s]", want[i][0]);
        const char *l = strchr(h + strlen(head), '\n') + 1;
        if (i >= nwant - 2)
            l = h + strlen(head) - 6; /* --help/--version: one line */
        ck_assert_int_eq(strncmp(l, line, strlen(line)), 0);
        at = h + 1;
    }
    /* nothing else: 19 entries */
    int entries = 0;
    for (const char *p = strstr(out, "\n  --"); p; p = strstr(p + 1, "\n  --"))
        entries++;
    ck_assert_int_eq(entries, 19);

    /* -h too, and --help wins over a bad flag anywhere */
    call c2 = {{"--nope", "-h", NULL}, 0};
    char out2[16384];
    ck_assert_int_eq(capture_stdout(out2, sizeof out2, do_call, &c2), 1);
    ck_assert_str_eq(out2, out);
    ck_assert_str_eq(g_err, "");

    call c3 = {{"--port", "1", "--version", NULL}, 0};
    ck_assert_int_eq(capture_stdout(out2, sizeof out2, do_call, &c3), 1);
    ck_assert_str_eq(out2, "chatcore-server " CC_VERSION_STRING "\n");

    /* cc_settings_usage writes the same text */
    FILE *tmp = tmpfile();
    cc_settings_usage(tmp);
    rewind(tmp);
    size_t n = fread(out2, 1, sizeof out2 - 1, tmp);
    out2[n] = '\0';
    fclose(tmp);
    ck_assert_str_eq(out2, out);
}
END_TEST

typedef struct warns {
    int n;
    char last[256];
} warns;

static void
on_warn(void *data, const char *msg)
{
    warns *w = data;
    w->n++;
    snprintf(w->last, sizeof w->last, "%s", msg);
}

START_TEST(unknown_env_warns)
{
    char *env[] = {"CHATCORE_PORTT=1", "CHATCORE_port=2", "CHATCORE_PORT=3",
                   "CHATCORE=4", "NOT_CHATCORE_FOO=5", "CHATCOREX=6",
                   "CHATCORE_NOEQUALS", NULL};
    warns w = {0, ""};
    cc_settings s;
    char *argv[] = {"chatcore-server", NULL};
    ck_assert_int_eq(cc_settings_load_ex(&s, 1, argv, env, on_warn, &w,
                                         g_err, sizeof g_err),
                     0);
    ck_assert_int_eq(s.port, 3);
    ck_assert_int_eq(w.n, 2);
    ck_assert_str_eq(w.last, "CHATCORE_port: unknown setting, ignored");
    cc_settings_free(&s);

    char *env2[] = {"CHATCORE_FOO=1", NULL};
    w.n = 0;
    ck_assert_int_eq(cc_settings_load_ex(&s, 1, argv, env2, on_warn, &w,
                                         g_err, sizeof g_err),
                     0);
    ck_assert_int_eq(w.n, 1);
    ck_assert_str_eq(w.last, "CHATCORE_FOO: unknown setting, ignored");
    cc_settings_free(&s);
    /* without a callback: ignored silently */
    ck_assert_int_eq(load(&s, env2, (char *)NULL), 0);
    assert_defaults(&s);
    cc_settings_free(&s);
}
END_TEST

START_TEST(settings_json)
{
    cc_settings s;
    ck_assert_int_eq(load(&s, NULL, (char *)NULL), 0);
    char *j = cc_settings_json(&s);
    ck_assert_str_eq(j,
                     "{\"config\":\"\",\"host\":\"0.0.0.0\",\"port\":8080,"
                     "\"data\":\"./data\",\"admin_key\":\"\","
                     "\"node\":\"node-1\",\"sync\":\"normal\","
                     "\"static\":\"\",\"demo\":true,"
                     "\"ip_upgrades_per_min\":600,\"logins_per_min\":10,"
        "\"max_message\":65536,"
                     "\"drain_timeout_ms\":10000,\"log_level\":\"info\","
                     "\"log_format\":\"json\",\"tls_cert\":\"\","
                     "\"tls_key\":\"\"}");
    free(j);
    cc_settings_free(&s);

    ck_assert_int_eq(load(&s, NULL, "--admin-key", "topsecret", "--data",
                          "/a \"b\"\\c\n", "--demo", "off", (char *)NULL),
                     0);
    j = cc_settings_json(&s);
    ck_assert_ptr_null(strstr(j, "topsecret"));
    ck_assert_ptr_nonnull(strstr(j, "\"admin_key\":\"***\""));
    ck_assert_ptr_nonnull(strstr(j, "\"data\":\"/a \\\"b\\\"\\\\c\\u000a\""));
    ck_assert_ptr_nonnull(strstr(j, "\"demo\":false"));
    /* and it is valid JSON with the right values */
    cJSON *root = cJSON_Parse(j);
    ck_assert_ptr_nonnull(root);
    ck_assert_str_eq(cJSON_GetObjectItem(root, "data")->valuestring,
                     "/a \"b\"\\c\n");
    ck_assert_int_eq(cJSON_GetObjectItem(root, "port")->valueint, 8080);
    cJSON_Delete(root);
    free(j);
    cc_settings_free(&s);
}
END_TEST

START_TEST(err_truncated)
{
    char small[8];
    cc_settings s;
    char *argv[] = {"chatcore-server", "--foo", NULL};
    ck_assert_int_eq(cc_settings_load(&s, 2, argv, NULL, small, sizeof small),
                     -1);
    ck_assert_str_eq(small, "unknown");
    /* no buffer at all is allowed */
    ck_assert_int_eq(cc_settings_load(&s, 2, argv, NULL, NULL, 0), -1);
    char *ok[] = {"chatcore-server", NULL};
    ck_assert_int_eq(cc_settings_load(&s, 1, ok, NULL, NULL, 0), 0);
    cc_settings_free(&s);
}
END_TEST

/* ---- the logger ---- */

static uint64_t
fixed_clock(void *data)
{
    return *(uint64_t *)data;
}

static uint64_t g_now = 1795428000123ull; /* 2026-11-23T10:00:00.123Z */

static FILE *
new_logger(cc_logger *lg, int level, int format)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    cc_logger_init(lg, f, level, format);
    lg->now_ms = fixed_clock;
    lg->now_data = &g_now;
    return f;
}

/* Everything written to f so far (and start over). Caller frees. */
static char *
drain(FILE *f)
{
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    rewind(f);
    ck_assert_int_eq(ftruncate(fileno(f), 0), 0);
    return buf;
}

#define EXPECT_OUT(f, want)                                                 \
    do {                                                                    \
        char *got_ = drain(f);                                              \
        ck_assert_str_eq(got_, want);                                       \
        free(got_);                                                         \
    } while (0)

START_TEST(log_json_line)
{
    cc_logger lg;
    FILE *f = new_logger(&lg, CC_LOGGER_DEBUG, CC_LOGGER_JSON);
    cc_log(&lg, CC_LOGGER_INFO, "listening",
           "\"host\":\"0.0.0.0\",\"port\":8080");
    EXPECT_OUT(f, "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"info\","
                  "\"msg\":\"listening\",\"host\":\"0.0.0.0\","
                  "\"port\":8080}\n");
    cc_log(&lg, CC_LOGGER_DEBUG, "d", NULL);
    cc_log(&lg, CC_LOGGER_WARN, "w", "");
    cc_log(&lg, CC_LOGGER_ERROR, "e", "\"a\":{\"b\":[1,2]}");
    cc_log(&lg, 9, "clamped", NULL);
    cc_log(&lg, CC_LOGGER_INFO, NULL, NULL);
    EXPECT_OUT(f,
               "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"debug\","
               "\"msg\":\"d\"}\n"
               "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"warn\","
               "\"msg\":\"w\"}\n"
               "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"error\","
               "\"msg\":\"e\",\"a\":{\"b\":[1,2]}}\n"
               "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"error\","
               "\"msg\":\"clamped\"}\n"
               "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"info\","
               "\"msg\":\"\"}\n");
    /* raw line breaks in a fragment (JSON whitespace) never split the line */
    cc_log(&lg, CC_LOGGER_INFO, "m", "\"a\":1,\n\"b\":2\r");
    EXPECT_OUT(f, "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"info\","
                  "\"msg\":\"m\",\"a\":1, \"b\":2 }\n");
    fclose(f);
}
END_TEST

START_TEST(log_msg_escaped)
{
    cc_logger lg;
    FILE *f = new_logger(&lg, CC_LOGGER_DEBUG, CC_LOGGER_JSON);
    cc_log(&lg, CC_LOGGER_INFO, "a\"b\\c\nd\x01\xc3\xa9\xff\x7f/", NULL);
    char *got = drain(f);
    ck_assert_str_eq(got, "{\"ts\":\"2026-11-23T10:00:00.123Z\","
                          "\"level\":\"info\",\"msg\":\"a\\\"b\\\\c\\u000ad"
                          "\\u0001\xc3\xa9\\ufffd\x7f/\"}\n");
    /* and cJSON reads the msg back (the \ufffd stands for \xff) */
    cJSON *j = cJSON_Parse(got);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "msg")->valuestring,
                     "a\"b\\c\nd\x01\xc3\xa9\xef\xbf\xbd\x7f/");
    cJSON_Delete(j);
    free(got);
    fclose(f);
}
END_TEST

START_TEST(log_text_line)
{
    cc_logger lg;
    FILE *f = new_logger(&lg, CC_LOGGER_DEBUG, CC_LOGGER_TEXT);
    cc_log(&lg, CC_LOGGER_INFO, "listening",
           "\"host\":\"0.0.0.0\",\"port\":8080");
    EXPECT_OUT(f, "2026-11-23T10:00:00.123Z INFO listening host=0.0.0.0 "
                  "port=8080\n");
    cc_log(&lg, CC_LOGGER_WARN, "odd values",
           "\"name\":\"a b\", \"empty\":\"\",\"q\":\"x\\\"y\","
           "\"obj\":{\"k\":\"v, w\",\"n\":[1,{}]},\"ok\":true,\"nil\":null,"
           "\"neg\":-1.5e3,\"eq\":\"a=b\"");
    EXPECT_OUT(f, "2026-11-23T10:00:00.123Z WARN odd values name=\"a b\" "
                  "empty=\"\" q=\"x\\\"y\" obj={\"k\":\"v, w\",\"n\":[1,{}]} "
                  "ok=true nil=null neg=-1.5e3 eq=\"a=b\"\n");
    cc_log(&lg, CC_LOGGER_ERROR, "line\nbreak", NULL);
    cc_log(&lg, CC_LOGGER_DEBUG, "d", "");
    EXPECT_OUT(f, "2026-11-23T10:00:00.123Z ERROR line\\u000abreak\n"
                  "2026-11-23T10:00:00.123Z DEBUG d\n");
    /* what cannot be parsed is kept as it is (best effort) */
    cc_log(&lg, CC_LOGGER_INFO, "m", "\"a\":1,garbage here");
    cc_log(&lg, CC_LOGGER_INFO, "m", "\"a\":\"unterminated");
    cc_log(&lg, CC_LOGGER_INFO, "m", "\"a\":{\"b\":1");
    cc_log(&lg, CC_LOGGER_INFO, "m", "\"a\":1 \"b\":2");
    EXPECT_OUT(f, "2026-11-23T10:00:00.123Z INFO m a=1 garbage here\n"
                  "2026-11-23T10:00:00.123Z INFO m \"a\":\"unterminated\n"
                  "2026-11-23T10:00:00.123Z INFO m \"a\":{\"b\":1\n"
                  "2026-11-23T10:00:00.123Z INFO m a=1 \"b\":2\n");
    fclose(f);
}
END_TEST

START_TEST(log_threshold)
{
    cc_logger lg;
    FILE *f = new_logger(&lg, CC_LOGGER_WARN, CC_LOGGER_JSON);
    ck_assert_int_eq(cc_log_enabled(&lg, CC_LOGGER_DEBUG), 0);
    ck_assert_int_eq(cc_log_enabled(&lg, CC_LOGGER_INFO), 0);
    ck_assert_int_ne(cc_log_enabled(&lg, CC_LOGGER_WARN), 0);
    ck_assert_int_ne(cc_log_enabled(&lg, CC_LOGGER_ERROR), 0);
    cc_log(&lg, CC_LOGGER_DEBUG, "no", NULL);
    cc_log(&lg, CC_LOGGER_INFO, "no", NULL);
    cc_logf(&lg, CC_LOGGER_INFO, "no", "\"n\":%d", 1);
    EXPECT_OUT(f, "");
    cc_log(&lg, CC_LOGGER_WARN, "yes", NULL);
    cc_log(&lg, CC_LOGGER_ERROR, "yes", NULL);
    EXPECT_OUT(f, "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"warn\","
                  "\"msg\":\"yes\"}\n"
                  "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"error\","
                  "\"msg\":\"yes\"}\n");
    lg.level = CC_LOGGER_ERROR + 1; /* silence everything */
    cc_log(&lg, CC_LOGGER_ERROR, "no", NULL);
    EXPECT_OUT(f, "");
    ck_assert_int_eq(cc_log_enabled(NULL, CC_LOGGER_ERROR), 0);
    cc_log(NULL, CC_LOGGER_ERROR, "no", NULL); /* no logger: a no-op */
    fclose(f);
}
END_TEST

START_TEST(log_hook_and_logf)
{
    cc_logger lg;
    FILE *f = new_logger(&lg, CC_LOGGER_DEBUG, CC_LOGGER_JSON);
    /* the library's hook type (chat.h cc_log_cb) */
    void (*hook)(void *, int, const char *, const char *) = cc_log_hook;
    hook(&lg, 2, "session closed", "\"tenant\":\"t1\",\"session\":\"S_1\"");
    EXPECT_OUT(f, "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"warn\","
                  "\"msg\":\"session closed\",\"tenant\":\"t1\","
                  "\"session\":\"S_1\"}\n");

    char esc[64];
    cc_json_escape(esc, sizeof esc, "/tmp/a \"b\"");
    cc_logf(&lg, CC_LOGGER_INFO, "opened", "\"path\":\"%s\",\"n\":%d", esc,
            42);
    cc_logf(&lg, CC_LOGGER_INFO, "plain", NULL);
    EXPECT_OUT(f, "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"info\","
                  "\"msg\":\"opened\",\"path\":\"/tmp/a \\\"b\\\"\","
                  "\"n\":42}\n"
                  "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"info\","
                  "\"msg\":\"plain\"}\n");

    /* fields and msg longer than the stack buffers */
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cc_logf(&lg, CC_LOGGER_INFO, big, "\"v\":\"%s\"", big);
    char *got = drain(f);
    char want[10200];
    snprintf(want, sizeof want,
             "{\"ts\":\"2026-11-23T10:00:00.123Z\",\"level\":\"info\","
             "\"msg\":\"%s\",\"v\":\"%s\"}\n",
             big, big);
    ck_assert_str_eq(got, want);
    free(got);
    fclose(f);
}
END_TEST

START_TEST(json_escape)
{
    char buf[64];
    ck_assert_uint_eq(cc_json_escape(buf, sizeof buf, "plain"), 5);
    ck_assert_str_eq(buf, "plain");
    ck_assert_uint_eq(cc_json_escape(buf, sizeof buf, "q\"b\\\t\x1f"), 18);
    ck_assert_str_eq(buf, "q\\\"b\\\\\\u0009\\u001f");
    /* valid UTF-8 passes: 2, 3 and 4 bytes */
    ck_assert_uint_eq(cc_json_escape(buf, sizeof buf,
                                     "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
                      9);
    ck_assert_str_eq(buf, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    /* invalid: overlong, surrogate, above U+10FFFF, lone continuation,
     * truncated sequence: one \ufffd per bad byte */
    ck_assert_uint_eq(cc_json_escape(buf, sizeof buf, "\xc0\xaf"), 12);
    ck_assert_str_eq(buf, "\\ufffd\\ufffd");
    ck_assert_uint_eq(cc_json_escape(buf, sizeof buf, "\xed\xa0\x80"), 18);
    ck_assert_str_eq(buf, "\\ufffd\\ufffd\\ufffd");
    ck_assert_uint_eq(cc_json_escape(buf, sizeof buf, "\xf4\x90\x80\x80"),
                      24);
    ck_assert_uint_eq(cc_json_escape(buf, sizeof buf, "a\x80z"), 8);
    ck_assert_str_eq(buf, "a\\ufffdz");
    ck_assert_uint_eq(cc_json_escape(buf, sizeof buf, "\xe2\x82"), 12);
    ck_assert_str_eq(buf, "\\ufffd\\ufffd");
    /* NUL and NULL */
    ck_assert_uint_eq(cc_json_escape_n(buf, sizeof buf, "a\0b", 3), 8);
    ck_assert_str_eq(buf, "a\\u0000b");
    ck_assert_uint_eq(cc_json_escape(buf, sizeof buf, NULL), 0);
    ck_assert_str_eq(buf, "");

    /* truncation: snprintf-like count, never half an escape or char */
    ck_assert_uint_eq(cc_json_escape(buf, 3, "ab\"c"), 5);
    ck_assert_str_eq(buf, "ab");
    ck_assert_uint_eq(cc_json_escape(buf, 4, "ab\"c"), 5);
    ck_assert_str_eq(buf, "ab");
    ck_assert_uint_eq(cc_json_escape(buf, 5, "ab\"c"), 5);
    ck_assert_str_eq(buf, "ab\\\"");
    ck_assert_uint_eq(cc_json_escape(buf, 6, "ab\"c"), 5);
    ck_assert_str_eq(buf, "ab\\\"c");
    ck_assert_uint_eq(cc_json_escape(buf, 3, "a\xe2\x82\xac"), 4);
    ck_assert_str_eq(buf, "a");
    ck_assert_uint_eq(cc_json_escape(buf, 4, "\x01x"), 7);
    ck_assert_str_eq(buf, "");
    buf[0] = 'Z';
    ck_assert_uint_eq(cc_json_escape(buf, 0, "abc"), 3);
    ck_assert_int_eq(buf[0], 'Z');
}
END_TEST

START_TEST(log_time_and_parse)
{
    char ts[32];
    ck_assert_str_eq(cc_log_time(ts, sizeof ts, 0),
                     "1970-01-01T00:00:00.000Z");
    ck_assert_str_eq(cc_log_time(ts, sizeof ts, 1709251199999ull),
                     "2024-02-29T23:59:59.999Z");
    ck_assert_str_eq(cc_log_time(ts, sizeof ts, 1795428000123ull),
                     "2026-11-23T10:00:00.123Z");
    ck_assert_str_eq(cc_log_time(ts, sizeof ts, 1795428000007ull),
                     "2026-11-23T10:00:00.007Z");

    ck_assert_int_eq(cc_log_level_parse("debug"), CC_LOGGER_DEBUG);
    ck_assert_int_eq(cc_log_level_parse("info"), CC_LOGGER_INFO);
    ck_assert_int_eq(cc_log_level_parse("warn"), CC_LOGGER_WARN);
    ck_assert_int_eq(cc_log_level_parse("error"), CC_LOGGER_ERROR);
    ck_assert_int_eq(cc_log_level_parse("INFO"), -1);
    ck_assert_int_eq(cc_log_level_parse(NULL), -1);
    ck_assert_int_eq(cc_log_format_parse("json"), CC_LOGGER_JSON);
    ck_assert_int_eq(cc_log_format_parse("text"), CC_LOGGER_TEXT);
    ck_assert_int_eq(cc_log_format_parse("xml"), -1);
    /* the library's CC_LOG_* values, by number */
    ck_assert_int_eq(CC_LOGGER_DEBUG, 0);
    ck_assert_int_eq(CC_LOGGER_ERROR, 3);
}
END_TEST

START_TEST(log_real_clock)
{
    FILE *f = tmpfile();
    cc_logger lg;
    cc_logger_init(&lg, f, CC_LOGGER_INFO, CC_LOGGER_JSON);
    time_t before = time(NULL);
    cc_log(&lg, CC_LOGGER_INFO, "now", NULL);
    time_t after = time(NULL);
    char *got = drain(f);
    /* {"ts":"YYYY-MM-DDTHH:MM:SS.mmmZ", position by position */
    ck_assert_int_eq(strncmp(got, "{\"ts\":\"", 7), 0);
    const char *t = got + 7;
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ\"";
    for (size_t i = 0; shape[i]; i++) {
        if (shape[i] == 'd')
            ck_assert_msg(t[i] >= '0' && t[i] <= '9', "ts[%zu] %c", i, t[i]);
        else
            ck_assert_int_eq(t[i], shape[i]);
    }
    ck_assert_str_eq(t + 25, ",\"level\":\"info\",\"msg\":\"now\"}\n");
    struct tm tm = {0};
    tm.tm_year = atoi(t) - 1900;
    tm.tm_mon = atoi(t + 5) - 1;
    tm.tm_mday = atoi(t + 8);
    tm.tm_hour = atoi(t + 11);
    tm.tm_min = atoi(t + 14);
    tm.tm_sec = atoi(t + 17);
    time_t secs = timegm(&tm);
    ck_assert_int_ge((long long)secs, (long long)before);
    ck_assert_int_le((long long)secs, (long long)after);
    free(got);
    fclose(f);

    /* out = NULL means stderr: capture fd 2 */
    fflush(stderr);
    FILE *tmp = tmpfile();
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    cc_logger_init(&lg, NULL, CC_LOGGER_DEBUG, CC_LOGGER_TEXT);
    lg.now_ms = fixed_clock;
    lg.now_data = &g_now;
    cc_log(&lg, CC_LOGGER_INFO, "to stderr", NULL);
    dup2(saved, 2);
    close(saved);
    char buf[128];
    rewind(tmp);
    size_t n = fread(buf, 1, sizeof buf - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    ck_assert_str_eq(buf, "2026-11-23T10:00:00.123Z INFO to stderr\n");
}
END_TEST

/* Several threads logging long lines to one FILE: every line must come out
 * whole (one fwrite per line). */
#define NTHREADS 4
#define NLINES 500

typedef struct writer {
    cc_logger *lg;
    int id;
} writer;

static void
write_lines(void *arg)
{
    writer *w = arg;
    char pad[3000];
    memset(pad, 'a' + w->id, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < NLINES; i++)
        cc_logf(w->lg, CC_LOGGER_INFO, "line",
                "\"t\":%d,\"i\":%d,\"pad\":\"%s\"", w->id, i, pad);
}

START_TEST(log_lines_whole)
{
    cc_logger lg;
    FILE *f = new_logger(&lg, CC_LOGGER_DEBUG, CC_LOGGER_JSON);
    uv_thread_t th[NTHREADS];
    writer w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i].lg = &lg;
        w[i].id = i;
        ck_assert_int_eq(uv_thread_create(&th[i], write_lines, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        uv_thread_join(&th[i]);
    char *all = drain(f);
    int next[NTHREADS] = {0};
    int lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(all, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        ck_assert_msg(j != NULL, "line %d is not whole JSON", lines);
        int t = cJSON_GetObjectItem(j, "t")->valueint;
        int i = cJSON_GetObjectItem(j, "i")->valueint;
        ck_assert_int_eq(i, next[t]); /* each thread's lines in order */
        next[t]++;
        ck_assert_uint_eq(strlen(cJSON_GetObjectItem(j, "pad")->valuestring),
                          2999);
        ck_assert_int_eq(cJSON_GetObjectItem(j, "pad")->valuestring[0],
                         'a' + t);
        cJSON_Delete(j);
        lines++;
    }
    ck_assert_int_eq(lines, NTHREADS * NLINES);
    free(all);
    fclose(f);
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("server_settings");
    TCase *tc = tcase_create("settings");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, file_overrides_defaults);
    tcase_add_test(tc, env_overrides_file);
    tcase_add_test(tc, flag_overrides_env);
    tcase_add_test(tc, config_flag_beats_env);
    tcase_add_test(tc, every_flag_and_env_name);
    tcase_add_loop_test(tc, bool_values, 0,
                        (int)(sizeof bools / sizeof bools[0]));
    tcase_add_test(tc, bool_errors);
    tcase_add_test(tc, int_errors);
    tcase_add_test(tc, string_errors);
    tcase_add_test(tc, flag_errors);
    tcase_add_test(tc, tls_pair);
    tcase_add_test(tc, file_errors);
    tcase_add_test(tc, file_unreadable);
    tcase_add_test(tc, help_and_version);
    tcase_add_test(tc, unknown_env_warns);
    tcase_add_test(tc, settings_json);
    tcase_add_test(tc, err_truncated);
    suite_add_tcase(s, tc);

    TCase *lt = tcase_create("log");
    tcase_add_test(lt, log_json_line);
    tcase_add_test(lt, log_msg_escaped);
    tcase_add_test(lt, log_text_line);
    tcase_add_test(lt, log_threshold);
    tcase_add_test(lt, log_hook_and_logf);
    tcase_add_test(lt, json_escape);
    tcase_add_test(lt, log_time_and_parse);
    tcase_add_test(lt, log_real_clock);
    tcase_add_test(lt, log_lines_whole);
    tcase_set_timeout(lt, 60);
    suite_add_tcase(s, lt);
    return s;
}

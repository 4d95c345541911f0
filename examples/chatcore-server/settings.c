/*
 * examples/chatcore-server/settings.c - the settings loader of settings.h.
 *
 * One table describes every setting (name, type, default, range, help);
 * the config file, the environment, the flags, --help and the JSON dump
 * are all driven by it, so adding a setting is one row and one field.
 *
 * The flags are scanned first, before anything else is read, for two
 * reasons: --help and --version must work whatever else is wrong, and
 * --config (which beats CHATCORE_CONFIG) decides which file to read. Their
 * values are applied last, after the file and the environment, so each
 * source overrides the one before it.
 *
 * Uses cJSON for the file and log.c's cc_json_escape for the JSON dump, so
 * it is always built together with log.c.
 */
#include "settings.h"

#include "log.h"

#include <chatcore/version.h>
#include <cjson/cJSON.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ENV_PREFIX "CHATCORE_"
#define CONFIG_MAX_BYTES (1024 * 1024)

enum { T_STR, T_INT, T_BOOL, T_ENUM };

/* Extra check of a string value: NULL when fine, else the complaint. */
typedef const char *(*str_check)(const char *v);

typedef struct setting {
    const char *name;   /* snake_case: the file key; flag and env derive */
    int type;
    size_t off;         /* of the char * or int field in cc_settings */
    const char *def;    /* T_STR/T_ENUM default */
    int idef;           /* T_INT/T_BOOL default */
    int min, max;       /* T_INT range */
    const char *const *choices; /* T_ENUM, NULL-terminated */
    str_check check;
    const char *metavar;
    const char *help;
} setting;

static const char *
check_nonempty(const char *v)
{
    return *v ? NULL : "must not be empty";
}

/* PROTOCOL.md conventions: ids are 1..64 of [A-Za-z0-9_.:-]. */
static const char *
check_wire_id(const char *v)
{
    static const char bad[] =
        "must be 1 to 64 characters from [A-Za-z0-9_.:-]";
    size_t n = strlen(v);
    if (n == 0 || n > 64)
        return bad;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
              c == '-'))
            return bad;
    }
    return NULL;
}

static const char *const sync_choices[] = {"normal", "full", NULL};
static const char *const level_choices[] = {"debug", "info", "warn", "error",
                                            NULL};
static const char *const format_choices[] = {"json", "text", NULL};

#define STR(f) T_STR, offsetof(cc_settings, f)
#define INT(f) T_INT, offsetof(cc_settings, f)
#define BOOL(f) T_BOOL, offsetof(cc_settings, f)
#define ENUM(f) T_ENUM, offsetof(cc_settings, f)

static const setting table[] = {
    {"config", STR(config), "", 0, 0, 0, NULL, NULL, "FILE",
     "JSON config file (an object of these settings)"},
    {"host", STR(host), "0.0.0.0", 0, 0, 0, NULL, check_nonempty, "ADDR",
     "address to listen on"},
    {"port", INT(port), NULL, 8080, 0, 65535, NULL, NULL, "N",
     "TCP port; 0 = any free port"},
    {"data", STR(data), "./data", 0, 0, 0, NULL, check_nonempty, "DIR",
     "data directory; the database is DIR/chatcore.db"},
    {"admin_key", STR(admin_key), "", 0, 0, 0, NULL, NULL, "KEY",
     "admin API key; empty = the stored one, or generate one"},
    {"node", STR(node), "node-1", 0, 0, 0, NULL, check_wire_id, "ID",
     "this node's id, sent in hello"},
    {"sync", ENUM(sync), "normal", 0, 0, 0, sync_choices, NULL, "MODE",
     "database durability: normal or full (fsync every commit)"},
    {"static", STR(static_dir), "", 0, 0, 0, NULL, NULL, "DIR",
     "web pages served at /; empty = the built-in pages"},
    {"demo", BOOL(demo), NULL, 1, 0, 1, NULL, NULL, "BOOL",
     "create a demo tenant and two agents on first start"},
    {"ip_upgrades_per_min", INT(ip_upgrades_per_min), NULL, 600, 1, 1000000,
     NULL, NULL, "N", "WebSocket upgrades per minute per IP, server-wide"},
    {"logins_per_min", INT(logins_per_min), NULL, 10, 1, 1000000, NULL, NULL,
     "N", "agent logins (POST /v1/auth/agent) per minute per IP"},
    {"max_message", INT(max_message), NULL, 65536, 1024, 16777216, NULL,
     NULL, "BYTES", "largest WebSocket message accepted"},
    {"drain_timeout_ms", INT(drain_timeout_ms), NULL, 10000, 0, 600000, NULL,
     NULL, "MS", "on SIGTERM, wait this long for clients to leave"},
    {"log_level", ENUM(log_level), "info", 0, 0, 0, level_choices, NULL,
     "LEVEL", "debug, info, warn or error"},
    {"log_format", ENUM(log_format), "json", 0, 0, 0, format_choices, NULL,
     "FORMAT", "json (one object per line) or text"},
    {"tls_cert", STR(tls_cert), "", 0, 0, 0, NULL, NULL, "FILE",
     "PEM certificate chain; enables TLS (needs --tls-key)"},
    {"tls_key", STR(tls_key), "", 0, 0, 0, NULL, NULL, "FILE",
     "PEM private key (needs --tls-cert)"},
};
#define NSETTINGS (sizeof table / sizeof table[0])

/* ---- small helpers ---- */

static char **
str_field(cc_settings *s, const setting *st)
{
    return (char **)(void *)((char *)s + st->off);
}

static int *
int_field(cc_settings *s, const setting *st)
{
    return (int *)(void *)((char *)s + st->off);
}

static const char *
cstr_field(const cc_settings *s, const setting *st)
{
    return *(char *const *)(const void *)((const char *)s + st->off);
}

static int
cint_field(const cc_settings *s, const setting *st)
{
    return *(const int *)(const void *)((const char *)s + st->off);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
fail(char *err, size_t errcap, const char *fmt, ...)
{
    if (err && errcap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static char *
dupstr(const char *v)
{
    size_t n = strlen(v) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, v, n);
    return p;
}

static int
lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (lower((unsigned char)*a) != lower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* "ip_upgrades_per_min" -> "ip-upgrades-per-min" (flag) or
 * "IP_UPGRADES_PER_MIN" (env, without the prefix). */
static void
flag_name(char *out, size_t cap, const char *name)
{
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++)
        out[i] = name[i] == '_' ? '-' : name[i];
    out[i] = '\0';
}

static void
env_name(char *out, size_t cap, const char *name)
{
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++)
        out[i] = (char)(name[i] >= 'a' && name[i] <= 'z'
                            ? name[i] - 'a' + 'A'
                            : name[i]);
    out[i] = '\0';
}

static const setting *
by_flag(const char *s, size_t n)
{
    char f[64];
    for (size_t i = 0; i < NSETTINGS; i++) {
        flag_name(f, sizeof f, table[i].name);
        if (strlen(f) == n && memcmp(f, s, n) == 0)
            return &table[i];
    }
    return NULL;
}

static const setting *
by_env(const char *s, size_t n)
{
    char e[64];
    for (size_t i = 0; i < NSETTINGS; i++) {
        env_name(e, sizeof e, table[i].name);
        if (strlen(e) == n && memcmp(e, s, n) == 0)
            return &table[i];
    }
    return NULL;
}

static const setting *
by_name(const char *s)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(table[i].name, s) == 0)
            return &table[i];
    return NULL;
}

static int
set_str(cc_settings *s, const setting *st, const char *v, char *err,
        size_t errcap)
{
    char *p = dupstr(v);
    if (!p)
        return fail(err, errcap, "out of memory");
    char **f = str_field(s, st);
    free(*f);
    *f = p;
    return 0;
}

/* "one of a, b, c" for an enum's complaint. */
static void
choices_text(char *out, size_t cap, const char *const *c)
{
    size_t w = 0;
    out[0] = '\0';
    for (size_t i = 0; c[i] && w < cap; i++) {
        int n = snprintf(out + w, cap - w, "%s%s", i ? ", " : "", c[i]);
        if (n < 0)
            break;
        w += (size_t)n;
    }
}

/* Check and store a string value for a T_STR or T_ENUM setting. */
static int
apply_string(cc_settings *s, const setting *st, const char *v,
             const char *label, char *err, size_t errcap)
{
    if (st->type == T_ENUM) {
        size_t i = 0;
        while (st->choices[i] && strcmp(st->choices[i], v) != 0)
            i++;
        if (!st->choices[i]) {
            char c[128];
            choices_text(c, sizeof c, st->choices);
            return fail(err, errcap, "%s: must be one of %s", label, c);
        }
    }
    const char *why = st->check ? st->check(v) : NULL;
    if (why)
        return fail(err, errcap, "%s: %s", label, why);
    return set_str(s, st, v, err, errcap);
}

static int
int_error(const setting *st, const char *label, char *err, size_t errcap)
{
    return fail(err, errcap, "%s: must be an integer from %d to %d", label,
                st->min, st->max);
}

/* A value from the environment or a flag: text, parsed per type. */
static int
apply_text(cc_settings *s, const setting *st, const char *v,
           const char *label, char *err, size_t errcap)
{
    switch (st->type) {
    case T_INT: {
        /* strictly [-]digits: no spaces, no '+', no hex, no trailing junk */
        const char *d = v[0] == '-' ? v + 1 : v;
        if (*d < '0' || *d > '9')
            return int_error(st, label, err, errcap);
        errno = 0;
        char *end;
        long long n = strtoll(v, &end, 10);
        if (*end || errno == ERANGE || n < st->min || n > st->max)
            return int_error(st, label, err, errcap);
        *int_field(s, st) = (int)n;
        return 0;
    }
    case T_BOOL: {
        static const char *const yes[] = {"true", "1", "yes", "on"};
        static const char *const no[] = {"false", "0", "no", "off"};
        for (size_t i = 0; i < 4; i++) {
            if (ieq(v, yes[i]) || ieq(v, no[i])) {
                *int_field(s, st) = ieq(v, yes[i]);
                return 0;
            }
        }
        return fail(err, errcap,
                    "%s: must be a boolean (true/false, 1/0, yes/no, on/off)",
                    label);
    }
    default:
        return apply_string(s, st, v, label, err, errcap);
    }
}

/* A value from the config file: the JSON type must match. */
static int
apply_json(cc_settings *s, const setting *st, const cJSON *v,
           const char *label, char *err, size_t errcap)
{
    switch (st->type) {
    case T_INT: {
        /* range first: converting an out-of-range double is undefined */
        double d = v->valuedouble;
        if (!cJSON_IsNumber(v) || !(d >= st->min && d <= st->max) ||
            d != (double)(int)d)
            return int_error(st, label, err, errcap);
        *int_field(s, st) = (int)d;
        return 0;
    }
    case T_BOOL:
        if (!cJSON_IsBool(v))
            return fail(err, errcap, "%s: must be true or false", label);
        *int_field(s, st) = cJSON_IsTrue(v);
        return 0;
    default:
        if (!cJSON_IsString(v))
            return fail(err, errcap, "%s: must be a string", label);
        return apply_string(s, st, v->valuestring, label, err, errcap);
    }
}

/* ---- the config file ---- */

static int
read_file(const char *path, char **out, size_t *len, char *err,
          size_t errcap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errcap, "%s: cannot open: %s", path,
                    strerror(errno));
    char *buf = malloc(CONFIG_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return fail(err, errcap, "out of memory");
    }
    size_t n = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        return fail(err, errcap, "%s: cannot read", path);
    }
    if (n > CONFIG_MAX_BYTES) {
        free(buf);
        return fail(err, errcap, "%s: larger than %d bytes", path,
                    CONFIG_MAX_BYTES);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int
load_file(cc_settings *s, const char *path, char *err, size_t errcap)
{
    char *buf = NULL;
    size_t len = 0;
    if (read_file(path, &buf, &len, err, errcap))
        return -1;
    int rc = -1;
    cJSON *root = NULL;
    if (strlen(buf) != len) {
        fail(err, errcap, "%s: invalid JSON (contains a NUL byte)", path);
        goto out;
    }
    /* tolerate the UTF-8 byte order mark some editors write */
    const char *text = buf;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        text += 3;
    const char *end = NULL;
    root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        size_t line = 1, col = 1;
        for (const char *p = text; end && p < end && *p; p++) {
            if (*p == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        fail(err, errcap, "%s: invalid JSON at line %zu, column %zu", path,
             line, col);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        fail(err, errcap, "%s: must be a JSON object", path);
        goto out;
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        const setting *st = by_name(it->string);
        if (!st) {
            fail(err, errcap, "%s: unknown key \"%s\"", path, it->string);
            goto out;
        }
        if (strcmp(st->name, "config") == 0) {
            fail(err, errcap, "%s: \"config\" cannot be set in a config file",
                 path);
            goto out;
        }
        /* a repeated key is almost surely an editing mistake; cJSON keeps
         * both, so say so rather than let the later one win silently */
        for (const cJSON *p = root->child; p != it; p = p->next) {
            if (strcmp(p->string, it->string) == 0) {
                fail(err, errcap, "%s: duplicate key \"%s\"", path,
                     it->string);
                goto out;
            }
        }
        char label[256];
        snprintf(label, sizeof label, "%s: \"%s\"", path, it->string);
        if (apply_json(s, st, it, label, err, errcap))
            goto out;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    free(buf);
    return rc;
}

/* ---- the sources ---- */

typedef struct flagval {
    const setting *st;
    const char *value;
} flagval;

static int
is_flag(const char *a)
{
    return a[0] == '-' && a[1] == '-';
}

/* Pass 1 over argv: find --help/--version and the (setting, value) pairs.
 * The first problem goes to err, but the scan goes on so that --help
 * anywhere still wins. Returns the number of pairs, or -1 on a problem. */
static int
scan_flags(int argc, char **argv, flagval *fv, int *help, int *version,
           char *err, size_t errcap)
{
    int n = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *help = 1;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            *version = 1;
            continue;
        }
        if (bad)
            continue;
        if (strncmp(a, "--help=", 7) == 0 ||
            strncmp(a, "--version=", 10) == 0) {
            bad = fail(err, errcap, "%.*s takes no value",
                       (int)(strchr(a, '=') - a), a);
            continue;
        }
        if (a[0] != '-') {
            bad = fail(err, errcap, "unexpected argument \"%s\"", a);
            continue;
        }
        if (!is_flag(a) || a[2] == '\0' || a[2] == '=') {
            bad = fail(err, errcap, "unknown flag %s", a);
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const setting *st = by_flag(name, nlen);
        if (!st) {
            bad = fail(err, errcap, "unknown flag --%.*s", (int)nlen, name);
            continue;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else if (i + 1 < argc && !is_flag(argv[i + 1])) {
            v = argv[++i];
        } else {
            bad = fail(err, errcap, "missing value for --%.*s", (int)nlen,
                       name);
            continue;
        }
        fv[n].st = st;
        fv[n].value = v;
        n++;
    }
    return bad ? -1 : n;
}

/* The value of ENV_PREFIX + upper(name) in envp (the last one wins, as
 * for a repeated flag), or NULL. */
static const char *
env_get(char **envp, const char *name)
{
    char key[96];
    size_t plen = strlen(ENV_PREFIX);
    memcpy(key, ENV_PREFIX, plen);
    env_name(key + plen, sizeof key - plen, name);
    size_t klen = strlen(key);
    const char *v = NULL;
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, key, klen) == 0 && (*e)[klen] == '=')
            v = *e + klen + 1;
    return v;
}

static int
apply_env(cc_settings *s, char **envp, cc_settings_warn_cb warn,
          void *warn_data, char *err, size_t errcap)
{
    size_t plen = strlen(ENV_PREFIX);
    for (char **e = envp; e && *e; e++) {
        if (strncmp(*e, ENV_PREFIX, plen) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        const char *name = *e + plen;
        size_t nlen = (size_t)(eq - name);
        const setting *st = by_env(name, nlen);
        if (!st) {
            if (warn) {
                char msg[256];
                snprintf(msg, sizeof msg, "%.*s: unknown setting, ignored",
                         (int)(eq - *e), *e);
                warn(warn_data, msg);
            }
            continue;
        }
        char label[96];
        snprintf(label, sizeof label, "%.*s", (int)(eq - *e), *e);
        if (apply_text(s, st, eq + 1, label, err, errcap))
            return -1;
    }
    return 0;
}

static int
set_defaults(cc_settings *s, char *err, size_t errcap)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *st = &table[i];
        if (st->type == T_STR || st->type == T_ENUM) {
            if (set_str(s, st, st->def, err, errcap))
                return -1;
        } else {
            *int_field(s, st) = st->idef;
        }
    }
    return 0;
}

static void
print_version(FILE *f)
{
    fprintf(f, "chatcore-server %s\n", CC_VERSION_STRING);
}

int
cc_settings_load_ex(cc_settings *s, int argc, char **argv, char **envp,
                    cc_settings_warn_cb warn, void *warn_data, char *err,
                    size_t errcap)
{
    if (err && errcap > 0)
        err[0] = '\0';
    memset(s, 0, sizeof *s);
    flagval *fv = malloc(sizeof *fv * (size_t)(argc > 0 ? argc : 1));
    if (!fv)
        return fail(err, errcap, "out of memory");
    int help = 0, version = 0;
    int nflags = scan_flags(argc, argv, fv, &help, &version, err, errcap);
    if (help || version) {
        if (help)
            cc_settings_usage(stdout);
        else
            print_version(stdout);
        fflush(stdout);
        if (err && errcap > 0)
            err[0] = '\0';
        free(fv);
        return 1;
    }
    if (nflags < 0 || set_defaults(s, err, errcap))
        goto fail;

    /* the file: --config beats CHATCORE_CONFIG */
    const char *cfg = env_get(envp, "config");
    for (int i = 0; i < nflags; i++)
        if (strcmp(fv[i].st->name, "config") == 0)
            cfg = fv[i].value;
    if (cfg && *cfg && load_file(s, cfg, err, errcap))
        goto fail;

    if (apply_env(s, envp, warn, warn_data, err, errcap))
        goto fail;
    for (int i = 0; i < nflags; i++) {
        char label[80];
        char f[64];
        flag_name(f, sizeof f, fv[i].st->name);
        snprintf(label, sizeof label, "--%s", f);
        if (apply_text(s, fv[i].st, fv[i].value, label, err, errcap))
            goto fail;
    }

    if (*s->tls_cert && !*s->tls_key) {
        fail(err, errcap, "tls_cert is set but tls_key is not: "
                          "set both or neither");
        goto fail;
    }
    if (*s->tls_key && !*s->tls_cert) {
        fail(err, errcap, "tls_key is set but tls_cert is not: "
                          "set both or neither");
        goto fail;
    }
    free(fv);
    return 0;

fail:
    free(fv);
    cc_settings_free(s);
    return -1;
}

int
cc_settings_load(cc_settings *s, int argc, char **argv, char **envp,
                 char *err, size_t errcap)
{
    return cc_settings_load_ex(s, argc, argv, envp, NULL, NULL, err, errcap);
}

void
cc_settings_free(cc_settings *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *st = &table[i];
        if (st->type == T_STR || st->type == T_ENUM)
            free(*str_field(s, st));
    }
    memset(s, 0, sizeof *s);
}

/* ---- output ---- */

void
cc_settings_usage(FILE *f)
{
    fprintf(f,
            "Usage: chatcore-server [--NAME VALUE | --NAME=VALUE]...\n"
            "\n"
            "The all-in-one chatcore reference server. Each setting is "
            "taken from, later\n"
            "winning: its default < the config file < the environment "
            "variable < the flag.\n"
            "The config file is a JSON object keyed by the setting names "
            "in snake_case.\n"
            "Booleans: true/false, 1/0, yes/no, on/off.\n"
            "\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *st = &table[i];
        char fl[64], env[64], head[96], def[64];
        flag_name(fl, sizeof fl, st->name);
        env_name(env, sizeof env, st->name);
        snprintf(head, sizeof head, "--%s %s", fl, st->metavar);
        if (st->type == T_INT)
            snprintf(def, sizeof def, "%d", st->idef);
        else if (st->type == T_BOOL)
            snprintf(def, sizeof def, "%s", st->idef ? "true" : "false");
        else
            snprintf(def, sizeof def, "\"%s\"", st->def);
        fprintf(f, "  %s\n      %s\n      default %s, env %s%s", head,
                st->help, def, ENV_PREFIX, env);
        if (st->type == T_INT)
            fprintf(f, ", range %d..%d", st->min, st->max);
        fprintf(f, "\n");
    }
    fprintf(f, "  --help, -h\n      print this text and exit\n"
               "  --version\n      print the version and exit\n");
}

typedef struct strbuf {
    char *p;
    size_t len, cap;
    int oom;
} strbuf;

static void
sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->cap - b->len < n + 1) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap - b->len < n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sb_puts(strbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* A JSON string literal, escaped as the logger does (the dump goes into a
 * log line, and env values may hold any bytes). */
static void
sb_json_str(strbuf *b, const char *s)
{
    char stack[256];
    size_t n = cc_json_escape(stack, sizeof stack, s);
    sb_put(b, "\"", 1);
    if (n < sizeof stack) {
        sb_put(b, stack, n);
    } else {
        char *big = malloc(n + 1);
        if (!big) {
            b->oom = 1;
            return;
        }
        cc_json_escape(big, n + 1, s);
        sb_put(b, big, n);
        free(big);
    }
    sb_put(b, "\"", 1);
}

char *
cc_settings_json(const cc_settings *s)
{
    strbuf b = {NULL, 0, 0, 0};
    sb_put(&b, "{", 1);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting *st = &table[i];
        if (i)
            sb_put(&b, ",", 1);
        sb_json_str(&b, st->name);
        sb_put(&b, ":", 1);
        if (st->type == T_INT) {
            char num[24];
            snprintf(num, sizeof num, "%d", cint_field(s, st));
            sb_puts(&b, num);
        } else if (st->type == T_BOOL) {
            sb_puts(&b, cint_field(s, st) ? "true" : "false");
        } else {
            const char *v = cstr_field(s, st);
            if (!v)
                v = "";
            if (strcmp(st->name, "admin_key") == 0 && *v)
                v = "***";
            sb_json_str(&b, v);
        }
    }
    sb_put(&b, "}", 1);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/*
 * examples/chatcore-server/settings.h - the reference server's settings:
 * one table of named settings filled from four sources, later winning:
 *
 *     built-in default < config file < CHATCORE_<NAME> < --<name> VALUE
 *
 * The config file (--config FILE, else CHATCORE_CONFIG) is one JSON object
 * whose keys are the setting names in snake_case ("ip_upgrades_per_min")
 * with values of the setting's JSON type. Environment variables are the
 * names in upper case behind CHATCORE_ (CHATCORE_ADMIN_KEY); flags are the
 * names with '-' for '_' (--admin-key K or --admin-key=K). Booleans from the
 * environment or flags accept true/false, 1/0, yes/no, on/off.
 *
 * Every value is checked where it is read, so an error names its source:
 *     "--port: must be an integer from 0 to 65535"
 *     "CHATCORE_SYNC: must be one of normal, full"
 *     "server.json: unknown key \"prot\""
 *     "missing value for --data", "unknown flag --foo"
 */
#ifndef CHATCORE_SERVER_SETTINGS_H
#define CHATCORE_SERVER_SETTINGS_H

#include <stddef.h>
#include <stdio.h>

/* The effective settings. Strings are owned (malloc'd), never NULL after a
 * successful load; "" means unset where the setting allows it. */
typedef struct cc_settings {
    char *host;              /* listen address ["0.0.0.0"] */
    int port;                /* 0..65535, 0 = any free port [8080] */
    char *data;              /* data directory; db is <data>/chatcore.db */
    char *admin_key;         /* "" = the stored one, or generate [""] */
    char *node;              /* wire id ([A-Za-z0-9_.:-]{1,64}) ["node-1"] */
    char *sync;              /* "normal" | "full" ["normal"] */
    char *static_dir;        /* setting "static": web pages at / [""] */
    int demo;                /* 0/1: demo tenant + two agents on first start */
    int ip_upgrades_per_min; /* 1..1000000, server-wide per IP [600] */
    int logins_per_min;      /* 1..1000000, agent logins per IP [10] */
    int max_message;         /* 1024..16777216 bytes [65536] */
    int drain_timeout_ms;    /* 0..600000 [10000] */
    char *log_level;         /* debug | info | warn | error ["info"] */
    char *log_format;        /* json | text ["json"] */
    char *tls_cert;          /* PEM chain; set with tls_key or not at all */
    char *tls_key;           /* PEM private key [""] */
    char *config;            /* the config file read, "" = none */
} cc_settings;

/* Called once per CHATCORE_* variable that names no setting (the variable
 * is ignored): msg is "CHATCORE_FOO: unknown setting, ignored". */
typedef void (*cc_settings_warn_cb)(void *data, const char *msg);

/* Fill *s from the defaults, the config file, envp (NULL-terminated
 * "NAME=value" strings as main's third argument or `environ`; NULL = none)
 * and argv[1..argc-1] (argv[0] is the program name).
 * Returns 0 (s filled; release with cc_settings_free);
 *         1 when --help or --version was printed to stdout (the caller
 *           exits 0; s is left empty);
 *        -1 with a one-line message in err (NUL-terminated, truncated to
 *           errcap) and s left empty.
 * A flag's value is the next argument unless it starts with "--" (then the
 * value is missing); use --name=VALUE for a value that starts with "--". */
int cc_settings_load(cc_settings *s, int argc, char **argv, char **envp,
                     char *err, size_t errcap);

/* The same, reporting unknown CHATCORE_* variables to warn (may be NULL). */
int cc_settings_load_ex(cc_settings *s, int argc, char **argv, char **envp,
                        cc_settings_warn_cb warn, void *warn_data,
                        char *err, size_t errcap);

/* Release the strings and zero *s. Safe on a zeroed or released struct. */
void cc_settings_free(cc_settings *s);

/* The effective settings as one compact JSON object, keys in the order of
 * --help, admin_key as "***" when set. Returns a malloc'd NUL-terminated
 * string (free() it), NULL when out of memory. For the startup log line:
 *     cc_logf(lg, CC_LOGGER_INFO, "settings", "\"settings\":%s", json); */
char *cc_settings_json(const cc_settings *s);

/* Write the --help text to f (what cc_settings_load prints). */
void cc_settings_usage(FILE *f);

#endif

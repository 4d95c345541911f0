/*
 * lib/chat/tenant.h - tenants and agents as data: defaults, validation,
 * the JSON forms (API and storage), JSON merge patch (RFC 7396), secret
 * generation and rotation, and salted slow password hashes. Pure: no I/O
 * except the kernel's random source, no clock (callers pass `now`).
 *
 * The tenant object of PROTOCOL.md §7:
 *   {"id":"t1","name":"Acme","secret":"…","session_ttl":600,"heartbeat":20,
 *    "auto_assign":false,"agent_capacity":5,
 *    "rate_limits":{"messages_per_s":20,"burst":40,
 *                   "tenant_messages_per_s":2000,
 *                   "connections_per_ip_per_min":60},
 *    "uploads":{"max_bytes":10485760,
 *               "allowed_mime":["image/png","image/jpeg","application/pdf"],
 *               "presign_per_min":30},
 *    "webhook":{"url":null,"secret":null}}
 */
#ifndef CC_CHAT_TENANT_H
#define CC_CHAT_TENANT_H

#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"
#include "proto/proto.h"   /* cc__jbuf */

#define CC__SECRET_MAX 256      /* bytes of a tenant or webhook secret */
#define CC__NAME_MAX 200        /* code points of a tenant/agent name */
#define CC__MIME_MAX 16         /* entries of uploads.allowed_mime */
#define CC__PW_MIN 8            /* bytes of an agent password, at least */
#define CC__PW_MAX 256          /* ... and at most */
#define CC__PWHASH_MAX 160      /* stored hash string, with NUL */
#define CC__OLD_SECRET_GRACE_S (24 * 3600)

typedef struct cc__tenant_cfg {
    char id[65];
    char name[CC__NAME_MAX * 4 + 1];
    char secret[CC__SECRET_MAX + 1];       /* current signing secret */
    char old_secret[CC__SECRET_MAX + 1];   /* "" when none */
    int64_t old_secret_until;              /* unix s; valid while now < it */
    int session_ttl;                       /* s, 1..604800, default 600 */
    int heartbeat;                         /* s, 5..300, default 20 */
    int auto_assign;                       /* bool, default false */
    int agent_capacity;                    /* 1..1000, default 5 */
    /* rate_limits */
    double messages_per_s;                 /* > 0 .. 100000, default 20 */
    double burst;                          /* >= 1 .. 1000000, default 40 */
    double tenant_messages_per_s;          /* > 0 .. 10000000, default 2000 */
    int connections_per_ip_per_min;        /* 1..100000, default 60 */
    /* uploads */
    int64_t upload_max_bytes;              /* 1..2^40, default 10485760 */
    char allowed_mime[CC__MIME_MAX][128];  /* default png, jpeg, pdf */
    int n_mime;
    int presign_per_min;                   /* 1..100000, default 30 */
    /* webhook: url http(s)://… up to 2048 bytes, or "" for null */
    char webhook_url[2049];
    char webhook_secret[CC__SECRET_MAX + 1];  /* "" for null */
} cc__tenant_cfg;

typedef struct cc__agent_cfg {
    char tenant[65];
    char id[65];
    char name[CC__NAME_MAX * 4 + 1];
    char pwhash[CC__PWHASH_MAX];   /* "" when no password is set */
    int capacity;                  /* 1..1000, or 0 = the tenant's */
} cc__agent_cfg;

/* Fill *t with the defaults above for tenant `id` (name = id, no
 * secret). */
void cc__tenant_defaults(cc__tenant_cfg *t, const char *id);

/* Build *out from a PUT body (`json`, len bytes): every field optional and
 * validated; absent ones take their defaults. `id` (from the URL) is the
 * id; a body "id" that differs is an error. A body without "secret" gets
 * a generated one (cc__secret_gen). Returns 0, or CC_EINVAL with *err an
 * English message naming the field ("session_ttl: must be an integer from
 * 1 to 604800"), or CC_ENOMEM. Unknown fields are an error ("<name>:
 * unknown field") so typos are caught. *err is static, or (when it quotes
 * a field name from the body) points into *out, valid while *out is left
 * unchanged. */
int cc__tenant_from_put(const char *id, const char *json, size_t len,
                        cc__tenant_cfg *out, const char **err);
/* PUT over an existing tenant `cur` (NULL: as cc__tenant_from_put): a
 * body without "secret" keeps cur's secret instead of generating one, and
 * while the secret stays the same a rotation's old secret stays valid
 * until its grace period ends. Same returns. */
int cc__tenant_replace(const char *id, const cc__tenant_cfg *cur,
                       const char *json, size_t len, cc__tenant_cfg *out,
                       const char **err);
/* JSON merge patch (RFC 7396) of `patch` over `cur` into *out (cur and out
 * may not alias). null removes a member, i.e. resets that field to its
 * default ("secret": null is an error: use rotation). The result is
 * validated as in cc__tenant_from_put. Same returns. */
int cc__tenant_patch(const cc__tenant_cfg *cur, const char *patch, size_t len,
                     cc__tenant_cfg *out, const char **err);
/* The API form (the object above): "secret" only when with_secret, never
 * old_secret; the webhook's secret likewise only when with_secret (else
 * the webhook object has no "secret" when one is set, and "secret":null
 * when none is). Appends to b. */
void cc__tenant_to_json(cc__jbuf *b, const cc__tenant_cfg *t,
                        int with_secret);
/* Storage form: everything, including old_secret and old_secret_until.
 * cc__tenant_from_storage reads it back exactly. */
void cc__tenant_to_storage(cc__jbuf *b, const cc__tenant_cfg *t);
int cc__tenant_from_storage(const char *id, const char *json,
                            cc__tenant_cfg *out);
/* Rotate: old_secret = secret (valid until now + grace), secret = a new
 * generated one. */
int cc__tenant_rotate(cc__tenant_cfg *t, int64_t now_s);
/* Does `secret` currently sign for tenant t (the current one always; the
 * old one while now_s < old_secret_until)? Returns the candidate secrets
 * in order: out[0] = current, out[1] = old when valid; returns the count
 * (1 or 2). */
int cc__tenant_secrets(const cc__tenant_cfg *t, int64_t now_s,
                       const char *out[2]);

/* Agents. PUT body {"name","password","capacity"?}: name optional
 * (default: the id), password required on PUT (CC__PW_MIN..CC__PW_MAX
 * bytes), capacity optional (absent/null = the tenant's). The password is
 * returned through *password (pointing into a buffer of the caller,
 * pw_out of CC__PW_MAX + 1 bytes) for the caller to hash off the loop;
 * out->pwhash is left "". Returns 0, CC_EINVAL with *err, CC_ENOMEM. */
int cc__agent_from_put(const char *tenant, const char *id, const char *json,
                       size_t len, cc__agent_cfg *out, char *pw_out,
                       const char **err);
/* Merge patch of name/password/capacity over cur. *pw_out is "" when the
 * patch does not change the password (out->pwhash keeps cur's); otherwise
 * the new password (caller hashes it). Same returns. */
int cc__agent_patch(const cc__agent_cfg *cur, const char *json, size_t len,
                    cc__agent_cfg *out, char *pw_out, const char **err);
/* API form {"id","tenant","name","capacity"} (capacity null when 0);
 * never the hash. */
void cc__agent_to_json(cc__jbuf *b, const cc__agent_cfg *ag);
void cc__agent_to_storage(cc__jbuf *b, const cc__agent_cfg *ag);
int cc__agent_from_storage(const char *tenant, const char *id,
                           const char *json, cc__agent_cfg *out);

/* Parse a request body that must be one strict RFC 8259 JSON object (the
 * same scan as the tenant bodies: no trailing garbage, no leading zeros,
 * valid UTF-8, no U+0000, nesting <= 16). Returns 0 with *out (free with
 * cJSON_Delete), CC_EINVAL with *err ("body: not valid JSON", ...), or
 * CC_ENOMEM. */
struct cJSON;
int cc__json_parse_object(const char *json, size_t len, struct cJSON **out,
                          const char **err);

/* Random bytes from the kernel (getrandom). 0 or CC_EIO. */
int cc__random(void *buf, size_t n);
/* A new secret: 32 random bytes as 64 lowercase hex characters (+ NUL
 * into out[65]). */
int cc__secret_gen(char out[65]);

/* Password hashing: PBKDF2-HMAC-SHA256, 16-byte random salt, `iter`
 * iterations (CC__PW_ITER by default), stored as
 * "pbkdf2-sha256$<iter>$<salt b64>$<hash b64>". CPU-heavy (tens of ms):
 * never call on a loop thread; use uv_queue_work. */
#define CC__PW_ITER 60000
int cc__pw_hash(const char *password, int iter, char out[CC__PWHASH_MAX]);
/* 1 match, 0 mismatch or malformed stored string; constant-time compare
 * of the derived key. */
int cc__pw_verify(const char *password, const char *stored);

#endif

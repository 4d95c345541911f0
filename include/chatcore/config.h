/*
 * chatcore/config.h - an opaque bag of options keyed by an append-only
 * enum, read by the objects that take a config at creation. A config is a
 * plain synchronous object: new/free, no loop. Objects copy what they need
 * at creation; the config may be freed right after.
 */
#ifndef CHATCORE_CONFIG_H
#define CHATCORE_CONFIG_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_config cc_config;

/* Values are explicit and append-only. Defaults in brackets. */
typedef enum cc_option {
    /* ---- network core ---- */
    /* int: request line + headers bytes [8192] -> 431 */
    CC_OPT_HTTP_MAX_HEADER = 1,
    CC_OPT_HTTP_MAX_BODY = 2,       /* int: request body bytes [1 MiB] -> 413 */
    /* ms: whole head must arrive within [10000] */
    CC_OPT_HTTP_HEADER_TIMEOUT_MS = 3,
    /* ms: idle keep-alive HTTP connection [30000] */
    CC_OPT_HTTP_KEEPALIVE_MS = 4,
    /* int: whole message, fragments summed [65536] -> 1009 */
    CC_OPT_WS_MAX_MESSAGE = 5,
    /* ms: silent WS conn closed 1001 [60000]; 0 = never */
    CC_OPT_WS_IDLE_TIMEOUT_MS = 6,
    /* int bool: binary data frames [1]; 0 -> close 1003 */
    CC_OPT_WS_ALLOW_BINARY = 7,
    /* str: comma list the server selects from [""] */
    CC_OPT_WS_SUBPROTOCOLS = 8,
    /* int: outbound bytes that fire the high-water cb [256 KiB] */
    CC_OPT_OUT_HIGH_WATER = 9,
    /* int: outbound bytes past which conn closes 1008 [4 MiB] */
    CC_OPT_OUT_MAX = 10,
    /* str: PEM certificate chain (enables TLS) */
    CC_OPT_TLS_CERT_FILE = 11,
    CC_OPT_TLS_KEY_FILE = 12,       /* str: PEM private key */
    CC_OPT_LISTEN_BACKLOG = 13,     /* int [1024] */
    /* int bool [0]: SO_REUSEPORT, one listener per loop */
    CC_OPT_REUSEPORT = 14,
    /* ms: wait for the peer's close frame [5000] */
    CC_OPT_CLOSE_TIMEOUT_MS = 15,
    /* int bool, clients [1]: verify the server cert */
    CC_OPT_TLS_VERIFY = 16,
    /* str, clients: CA bundle for verification */
    CC_OPT_TLS_CA_FILE = 17,
    /* ms: server-sent pings to idle conns [0 = off] */
    CC_OPT_WS_PING_INTERVAL_MS = 18,
    CC_OPT_CLIENT_BIND_ADDR = 19, /* str, clients: local source address */
    /* ---- the chat engine (chat.h), since 0.2 ---- */
    CC_OPT_CHAT_NODE = 20,          /* str: hello's "node" ["node-1"] */
    /* str: the server's admin key; unset = the stored one, or a new one
     * generated and stored on first start */
    CC_OPT_CHAT_ADMIN_KEY = 21,
    /* int: WebSocket upgrades per minute per IP, all tenants [600] */
    CC_OPT_CHAT_IP_UPGRADES_PER_MIN = 22,
    /* int: agent logins (POST /v1/auth/agent) per minute per IP [10] */
    CC_OPT_CHAT_LOGINS_PER_MIN = 23,
    /* int: unacked msg frames per connection before 1008 [1024] */
    CC_OPT_CHAT_MAX_UNACKED = 24,
    /* ms: first retransmit timeout, doubling [2000] */
    CC_OPT_CHAT_RTO_MS = 25,
    /* ms: retransmit timeout cap [30000] */
    CC_OPT_CHAT_RTO_MAX_MS = 26,
    /* int 0/1: static files (cc_server_static) answer with
     * "Access-Control-Allow-Origin: *", so pages on other sites may load
     * them as scripts or modules [0].
     * Since 0.2. */
    CC_OPT_HTTP_STATIC_CORS = 27,
    /* ms: distributed mode (bus.h): an owner drops the connections of a
     * gateway it has not heard from for this long [10000]. Since 0.4. */
    CC_OPT_CHAT_NODE_TIMEOUT_MS = 28,
    CC_OPT__MAX
} cc_option;

/* Returns 0 or CC_ENOMEM. `a` as for cc_ctx_new (NULL = libc). Since 0.1. */
CC_API int cc_config_new(cc_config **out, const cc_allocator *a);
CC_API void cc_config_free(cc_config *cfg);
/* Setters return 0, or CC_EINVAL for an unknown option, a value of the
 * wrong kind or out of range; CC_ENOMEM. Strings are copied. Since 0.1. */
CC_API int cc_config_set_int(cc_config *cfg, cc_option opt, int64_t v);
CC_API int cc_config_set_ms(cc_config *cfg, cc_option opt, uint64_t ms);
CC_API int cc_config_set_str(cc_config *cfg, cc_option opt, const char *s);
/* Getters return the value set or the default. get_str returns a borrowed
 * pointer valid until the option is set again or cfg freed ("" if unset). */
CC_API int64_t cc_config_get_int(const cc_config *cfg, cc_option opt);
CC_API const char *cc_config_get_str(const cc_config *cfg, cc_option opt);

#ifdef __cplusplus
}
#endif
#endif

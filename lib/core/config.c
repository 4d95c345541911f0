/*
 * lib/core/config.c - the option bag. Each option has a kind (int, ms or
 * string), a default and a valid range; setters check all three so a bad
 * value is refused where it is set, not discovered later.
 */
#include "internal.h"

enum { K_INT = 1, K_MS, K_STR };

typedef struct opt_desc {
    uint8_t kind;
    int64_t def, min, max;
} opt_desc;

/* Indexed by cc_option. Read-only (no mutable globals). */
static const opt_desc descs[CC_OPT__MAX] = {
    [CC_OPT_HTTP_MAX_HEADER] = {K_INT, 8192, 256, 1 << 20},
    [CC_OPT_HTTP_MAX_BODY] = {K_INT, 1 << 20, 0, INT64_C(1) << 32},
    [CC_OPT_HTTP_HEADER_TIMEOUT_MS] = {K_MS, 10000, 100, 3600000},
    [CC_OPT_HTTP_KEEPALIVE_MS] = {K_MS, 30000, 100, 3600000},
    [CC_OPT_WS_MAX_MESSAGE] = {K_INT, 65536, 125, INT64_C(1) << 32},
    [CC_OPT_WS_IDLE_TIMEOUT_MS] = {K_MS, 60000, 0, 86400000},
    [CC_OPT_WS_ALLOW_BINARY] = {K_INT, 1, 0, 1},
    [CC_OPT_WS_SUBPROTOCOLS] = {K_STR, 0, 0, 0},
    [CC_OPT_OUT_HIGH_WATER] = {K_INT, 256 * 1024, 1024, INT64_C(1) << 32},
    [CC_OPT_OUT_MAX] = {K_INT, 4 << 20, 1024, INT64_C(1) << 34},
    [CC_OPT_TLS_CERT_FILE] = {K_STR, 0, 0, 0},
    [CC_OPT_TLS_KEY_FILE] = {K_STR, 0, 0, 0},
    [CC_OPT_LISTEN_BACKLOG] = {K_INT, 1024, 1, 65535},
    [CC_OPT_REUSEPORT] = {K_INT, 0, 0, 1},
    [CC_OPT_CLOSE_TIMEOUT_MS] = {K_MS, 5000, 10, 600000},
    [CC_OPT_TLS_VERIFY] = {K_INT, 1, 0, 1},
    [CC_OPT_TLS_CA_FILE] = {K_STR, 0, 0, 0},
    [CC_OPT_WS_PING_INTERVAL_MS] = {K_MS, 0, 0, 86400000},
    [CC_OPT_CLIENT_BIND_ADDR] = {K_STR, 0, 0, 0},
    [CC_OPT_CHAT_NODE] = {K_STR, 0, 0, 0},
    [CC_OPT_CHAT_ADMIN_KEY] = {K_STR, 0, 0, 0},
    [CC_OPT_CHAT_IP_UPGRADES_PER_MIN] = {K_INT, 600, 1, 100000000},
    [CC_OPT_CHAT_LOGINS_PER_MIN] = {K_INT, 10, 1, 100000000},
    [CC_OPT_CHAT_MAX_UNACKED] = {K_INT, 1024, 1, 1000000},
    [CC_OPT_CHAT_RTO_MS] = {K_MS, 2000, 10, 600000},
    [CC_OPT_CHAT_RTO_MAX_MS] = {K_MS, 30000, 10, 3600000},
    [CC_OPT_HTTP_STATIC_CORS] = {K_INT, 0, 0, 1},
    [CC_OPT_CHAT_NODE_TIMEOUT_MS] = {K_MS, 10000, 100, 3600000},
};

struct cc_config {
    cc_allocator a;
    uint8_t set[CC_OPT__MAX];
    int64_t ival[CC_OPT__MAX];
    char *sval[CC_OPT__MAX];
};

int
cc_config_new(cc_config **out, const cc_allocator *a)
{
    if (!out || (a && (!a->alloc || !a->free || !a->realloc)))
        return CC_EINVAL;
    const cc_allocator *al = a ? a : cc__default_allocator();
    cc_config *c = cc__calloc(al, 1, sizeof *c);
    if (!c)
        return CC_ENOMEM;
    c->a = *al;
    *out = c;
    return 0;
}

void
cc_config_free(cc_config *cfg)
{
    if (!cfg)
        return;
    for (int i = 0; i < CC_OPT__MAX; i++)
        cc__free_str(&cfg->a, cfg->sval[i]);
    cc_allocator a = cfg->a;
    cc__free(&a, cfg, sizeof *cfg);
}

static const opt_desc *
desc_of(cc_option opt)
{
    if ((int)opt <= 0 || opt >= CC_OPT__MAX || descs[opt].kind == 0)
        return NULL;
    return &descs[opt];
}

int
cc_config_set_int(cc_config *cfg, cc_option opt, int64_t v)
{
    const opt_desc *d = desc_of(opt);
    if (!cfg || !d || d->kind == K_STR || v < d->min || v > d->max)
        return CC_EINVAL;
    cfg->ival[opt] = v;
    cfg->set[opt] = 1;
    return 0;
}

int
cc_config_set_ms(cc_config *cfg, cc_option opt, uint64_t ms)
{
    const opt_desc *d = desc_of(opt);
    if (!d || d->kind != K_MS || ms > (uint64_t)INT64_MAX)
        return CC_EINVAL;
    return cc_config_set_int(cfg, opt, (int64_t)ms);
}

int
cc_config_set_str(cc_config *cfg, cc_option opt, const char *s)
{
    const opt_desc *d = desc_of(opt);
    if (!cfg || !d || d->kind != K_STR || !s)
        return CC_EINVAL;
    char *copy = cc__strdup(&cfg->a, s);
    if (!copy)
        return CC_ENOMEM;
    cc__free_str(&cfg->a, cfg->sval[opt]);
    cfg->sval[opt] = copy;
    cfg->set[opt] = 1;
    return 0;
}

int64_t
cc_config_get_int(const cc_config *cfg, cc_option opt)
{
    const opt_desc *d = desc_of(opt);
    if (!d || d->kind == K_STR)
        return 0;
    if (cfg && cfg->set[opt])
        return cfg->ival[opt];
    return d->def;
}

const char *
cc_config_get_str(const cc_config *cfg, cc_option opt)
{
    const opt_desc *d = desc_of(opt);
    if (!d || d->kind != K_STR || !cfg || !cfg->sval[opt])
        return "";
    return cfg->sval[opt];
}

/*
 * lib/tls/tls_mbedtls.c - the TLS engine of tls.h over mbedTLS 2.28.
 *
 * The engine does no I/O. mbedTLS's bio callbacks are wired to memory:
 * bio_recv reads from the slice handed to cc__tls_input and answers
 * MBEDTLS_ERR_SSL_WANT_READ once it is used up; bio_send hands every
 * record straight to the connection's send callback, which queues it and
 * never blocks, so MBEDTLS_ERR_SSL_WANT_WRITE never occurs.
 *
 * Invariants:
 * - In stream mode mbedTLS reads exactly the bytes it needs (a record
 *   header, then its body) and keeps a partial record in its own input
 *   buffer between calls. So "the slice is empty and mbedTLS asks for
 *   more" means every byte given has been consumed; cc__tls_input loops
 *   until that holds (mbedTLS also answers WANT_READ after swallowing a
 *   warning alert, with input left: we go on in that case).
 * - Failures are sticky: after a handshake, record or send failure every
 *   call returns CC_ETLS, and after
 *   the peer's close_notify further input is ignored with CC_EOF.
 *
 * Threads: a conf, and every engine made from it, belong to one loop
 * thread. The conf's DRBG, ticket key and client session cache are used
 * without our own locking. Debian builds mbedTLS with MBEDTLS_THREADING_C,
 * so mbedtls_ssl_ticket_context and the DRBG carry a mutex anyway, but
 * a build without it has none; we rely only on the one-thread rule.
 *
 * Memory: our structs go through the cc_allocator; mbedTLS allocates
 * through its own calloc/free (its hooks are global, hence the
 * application's choice; Debian's build does not even enable them).
 * Measured with Debian's 2.28 (16 KiB records and no
 * MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH, so the record buffers cannot be
 * made smaller at run time; max_fragment_length only shrinks records):
 *   - struct cc__tls, which embeds the mbedtls_ssl_context:  ~1 KiB (ours)
 *   - mbedTLS's input + output record buffers:    2 x 16.7 KiB
 *   - session + transform (cipher contexts):                ~1.5 KiB
 *   - handshake state while it runs:                     ~4-6 KiB, freed
 *   - clients keep the peer certificate in the session
 *     (MBEDTLS_SSL_KEEP_PEER_CERTIFICATE):            ~the cert's size
 * Established: ~36 KiB a server connection, ~38 KiB a client one. A conf
 * costs ~42-52 KiB, 37 KiB of it the mbedtls_entropy_context (Debian
 * enables MBEDTLS_HAVEGE_C, whose state lives inside it): share one conf
 * per loop, never make one per connection.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#include "tls.h"

#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define TICKET_LIFETIME_S 86400
#define ERR_TEXT_CAP 160

/* Forward-secret AEAD suites only (the TLS 1.2 part of the usual
 * "intermediate" profiles): every maintained client offers them. */
static const int cipher_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

static const unsigned char drbg_pers[] = "libchatcore tls";

struct cc__tls_conf {
    cc_allocator a;
    int is_server;
    mbedtls_ssl_config ssl;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt certs; /* server: own chain; client: trusted CAs */
    mbedtls_pk_context key; /* server only */
    mbedtls_ssl_ticket_context ticket; /* server only */
    /* Client session cache: the last session for one host name, offered
     * again by the next connection to that same name. One entry is what a
     * client that reconnects to its one server needs. */
    mbedtls_ssl_session cached;
    char *cached_host; /* NULL: nothing cached */
};

enum tls_state { ST_HANDSHAKE, ST_OPEN, ST_EOF, ST_FAILED };

struct cc__tls {
    mbedtls_ssl_context ssl; /* first: tests/test_tls.c reaches it */
    cc__tls_conf *conf;
    cc__tls_send_fn send;
    void *send_data;
    /* the ciphertext slice of the cc__tls_input call in progress */
    const uint8_t *in;
    size_t in_len;
    char *host;          /* client: session-cache key (may be NULL) */
    int send_err;        /* what the send callback returned, if it failed */
    unsigned state : 2;  /* enum tls_state */
    unsigned ready : 1;
    unsigned shut : 1;   /* close_notify sent */
    unsigned ip_len : 5; /* client to an IP literal: 4 or 16, else 0 */
    unsigned char ip[16];
    char err[ERR_TEXT_CAP];
};

/* ---- helpers ---- */

static int
is_alloc_error(int mret)
{
    return mret == MBEDTLS_ERR_SSL_ALLOC_FAILED ||
           mret == MBEDTLS_ERR_X509_ALLOC_FAILED ||
           mret == MBEDTLS_ERR_PK_ALLOC_FAILED ||
           mret == MBEDTLS_ERR_CIPHER_ALLOC_FAILED ||
           mret == MBEDTLS_ERR_MPI_ALLOC_FAILED ||
           mret == MBEDTLS_ERR_ECP_ALLOC_FAILED;
}

/* errbuf <- "<what> '<path>': <mbedTLS text>" */
static int
conf_fail(char *errbuf, size_t errcap, const char *what, const char *path,
          int mret)
{
    if (errbuf && errcap) {
        char m[100];
        mbedtls_strerror(mret, m, sizeof m);
        if (path)
            snprintf(errbuf, errcap, "%s '%s': %s", what, path, m);
        else
            snprintf(errbuf, errcap, "%s: %s", what, m);
    }
    return is_alloc_error(mret) ? CC_ENOMEM : CC_ETLS;
}

static cc__tls_conf *
conf_alloc(const cc_allocator *a)
{
    if (!a)
        a = cc__default_allocator();
    cc__tls_conf *c = cc__calloc(a, 1, sizeof *c);
    if (!c)
        return NULL;
    c->a = *a;
    mbedtls_ssl_config_init(&c->ssl);
    mbedtls_entropy_init(&c->entropy);
    mbedtls_ctr_drbg_init(&c->drbg);
    mbedtls_x509_crt_init(&c->certs);
    mbedtls_pk_init(&c->key);
    mbedtls_ssl_ticket_init(&c->ticket);
    mbedtls_ssl_session_init(&c->cached);
    return c;
}

/* The part both roles share: RNG, protocol floor, suites. */
static int
conf_common(cc__tls_conf *c, int endpoint, char *errbuf, size_t errcap)
{
    int r = mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func,
                                  &c->entropy, drbg_pers,
                                  sizeof drbg_pers - 1);
    if (r != 0)
        return conf_fail(errbuf, errcap, "seeding the DRBG", NULL, r);
    r = mbedtls_ssl_config_defaults(&c->ssl, endpoint,
                                    MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT);
    if (r != 0)
        return conf_fail(errbuf, errcap, "TLS defaults", NULL, r);
    mbedtls_ssl_conf_rng(&c->ssl, mbedtls_ctr_drbg_random, &c->drbg);
    mbedtls_ssl_conf_min_version(&c->ssl, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(&c->ssl, cipher_suites);
    /* Renegotiation stays disabled (mbedTLS's default): a peer's request
     * is refused with a warning alert and the connection goes on. */
    return 0;
}

/* ---- confs ---- */

int
cc__tls_conf_server_new(cc__tls_conf **out, const cc_allocator *a,
                        const char *cert_file, const char *key_file,
                        char *errbuf, size_t errcap)
{
    *out = NULL;
    if (errbuf && errcap)
        errbuf[0] = '\0';
    if (!cert_file || !*cert_file || !key_file || !*key_file) {
        if (errbuf && errcap)
            snprintf(errbuf, errcap, "TLS needs both a certificate file "
                                     "and a key file");
        return CC_ETLS;
    }
    cc__tls_conf *c = conf_alloc(a);
    if (!c) {
        if (errbuf && errcap)
            snprintf(errbuf, errcap, "out of memory");
        return CC_ENOMEM;
    }
    c->is_server = 1;

    /* Reading the files blocks briefly; this runs when a server is
     * configured, not per connection. */
    int rc;
    int r = mbedtls_x509_crt_parse_file(&c->certs, cert_file);
    if (r != 0) {
        /* r > 0: some blocks of the chain did not parse; a server must
         * not present a chain it only partly understood. */
        rc = conf_fail(errbuf, errcap, "certificate file", cert_file,
                       r > 0 ? MBEDTLS_ERR_X509_INVALID_FORMAT : r);
        goto fail;
    }
    r = mbedtls_pk_parse_keyfile(&c->key, key_file, NULL);
    if (r != 0) {
        rc = conf_fail(errbuf, errcap, "key file", key_file, r);
        goto fail;
    }
    r = mbedtls_pk_check_pair(&c->certs.pk, &c->key);
    if (r != 0) {
        if (errbuf && errcap)
            snprintf(errbuf, errcap,
                     "key file '%s' does not match the certificate in '%s'",
                     key_file, cert_file);
        rc = is_alloc_error(r) ? CC_ENOMEM : CC_ETLS;
        goto fail;
    }
    rc = conf_common(c, MBEDTLS_SSL_IS_SERVER, errbuf, errcap);
    if (rc != 0)
        goto fail;
    r = mbedtls_ssl_conf_own_cert(&c->ssl, &c->certs, &c->key);
    if (r != 0) {
        rc = conf_fail(errbuf, errcap, "certificate", cert_file, r);
        goto fail;
    }
    /* Session tickets: the key is drawn from this conf's DRBG and
     * rotated by mbedTLS every lifetime (the previous key still opens
     * tickets for one more period). */
    r = mbedtls_ssl_ticket_setup(&c->ticket, mbedtls_ctr_drbg_random,
                                 &c->drbg, MBEDTLS_CIPHER_AES_256_GCM,
                                 TICKET_LIFETIME_S);
    if (r != 0) {
        rc = conf_fail(errbuf, errcap, "session tickets", NULL, r);
        goto fail;
    }
    mbedtls_ssl_conf_session_tickets_cb(&c->ssl, mbedtls_ssl_ticket_write,
                                        mbedtls_ssl_ticket_parse, &c->ticket);
    *out = c;
    return 0;
fail:
    cc__tls_conf_free(c);
    return rc;
}

int
cc__tls_conf_client_new(cc__tls_conf **out, const cc_allocator *a,
                        int verify, const char *ca_file, char *errbuf,
                        size_t errcap)
{
    *out = NULL;
    if (errbuf && errcap)
        errbuf[0] = '\0';
    cc__tls_conf *c = conf_alloc(a);
    if (!c) {
        if (errbuf && errcap)
            snprintf(errbuf, errcap, "out of memory");
        return CC_ENOMEM;
    }
    int rc = conf_common(c, MBEDTLS_SSL_IS_CLIENT, errbuf, errcap);
    if (rc != 0)
        goto fail;
    if (verify) {
        const char *path = ca_file && *ca_file ? ca_file : SYSTEM_CA_BUNDLE;
        int r = mbedtls_x509_crt_parse_file(&c->certs, path);
        /* r > 0: some certificates of a bundle did not parse. The
         * system bundle can hold a few mbedTLS does not understand;
         * the rest are still good trust anchors. */
        if (r < 0 || c->certs.version == 0) {
            rc = conf_fail(errbuf, errcap, "CA file", path,
                           r < 0 ? r : MBEDTLS_ERR_X509_INVALID_FORMAT);
            goto fail;
        }
        mbedtls_ssl_conf_ca_chain(&c->ssl, &c->certs, NULL);
        mbedtls_ssl_conf_authmode(&c->ssl, MBEDTLS_SSL_VERIFY_REQUIRED);
    } else {
        mbedtls_ssl_conf_authmode(&c->ssl, MBEDTLS_SSL_VERIFY_NONE);
    }
    mbedtls_ssl_conf_session_tickets(&c->ssl,
                                     MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    *out = c;
    return 0;
fail:
    cc__tls_conf_free(c);
    return rc;
}

void
cc__tls_conf_free(cc__tls_conf *c)
{
    if (!c)
        return;
    mbedtls_ssl_session_free(&c->cached);
    cc__free_str(&c->a, c->cached_host);
    mbedtls_ssl_ticket_free(&c->ticket);
    mbedtls_ssl_config_free(&c->ssl);
    mbedtls_pk_free(&c->key);
    mbedtls_x509_crt_free(&c->certs);
    mbedtls_ctr_drbg_free(&c->drbg);
    mbedtls_entropy_free(&c->entropy);
    cc_allocator a = c->a;
    cc__free(&a, c, sizeof *c);
}

/* ---- bio: memory in, callback out ---- */

static int
bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    cc__tls *t = ctx;
    if (t->in_len == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    size_t k = len < t->in_len ? len : t->in_len;
    if (k > INT_MAX)
        k = INT_MAX;
    memcpy(buf, t->in, k);
    t->in += k;
    t->in_len -= k;
    return (int)k;
}

static int
bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    cc__tls *t = ctx;
    if (len > INT_MAX)
        len = INT_MAX;
    int rc = t->send(t->send_data, buf, len);
    if (rc < 0) {
        t->send_err = rc;
        return MBEDTLS_ERR_NET_SEND_FAILED;
    }
    return (int)len;
}

/* Moves the engine to ST_FAILED and records why. Returns CC_ETLS. */
static int
fail(cc__tls *t, int mret, const char *why)
{
    t->state = ST_FAILED;
    if (why) {
        snprintf(t->err, sizeof t->err, "%s", why);
    } else if (t->send_err) {
        snprintf(t->err, sizeof t->err, "sending TLS records failed: %s",
                 cc_strerror(t->send_err));
    } else {
        mbedtls_strerror(mret, t->err, sizeof t->err);
        uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
        if (mret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && flags &&
            flags != (uint32_t)-1) {
            /* add the first reason, e.g. "The certificate Common Name
             * (CN) does not match with the expected CN" */
            char info[ERR_TEXT_CAP];
            if (mbedtls_x509_crt_verify_info(info, sizeof info, "",
                                             flags) > 0) {
                info[strcspn(info, "\n")] = '\0';
                size_t used = strlen(t->err);
                snprintf(t->err + used, sizeof t->err - used, " (%s)", info);
            }
        }
    }
    return CC_ETLS;
}

/* Client to an IP literal: mbedTLS 2.28 matches only DNS names, so the
 * address is checked against the certificate's iPAddress entries here.
 * Sets the same flag a DNS mismatch would. */
static int
verify_ip(void *data, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    const cc__tls *t = data;
    if (depth != 0)
        return 0;
    const mbedtls_x509_sequence *s = &crt->subject_alt_names;
    if (crt->ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME) {
        for (; s; s = s->next) {
            if (s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) &&
                s->buf.len == t->ip_len &&
                memcmp(s->buf.p, t->ip, t->ip_len) == 0)
                return 0;
        }
    }
    *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    return 0;
}

/* Client: remember the session so the next connection to this host can
 * resume it. Failure only costs a full handshake later. */
static void
cache_session(cc__tls *t)
{
    cc__tls_conf *c = t->conf;
    const char *host = t->host ? t->host : "";
    if (!c->cached_host || strcmp(c->cached_host, host) != 0) {
        char *h = cc__strdup(&c->a, host);
        if (!h)
            return;
        cc__free_str(&c->a, c->cached_host);
        c->cached_host = h;
    }
    mbedtls_ssl_session_free(&c->cached);
    mbedtls_ssl_session_init(&c->cached);
    if (mbedtls_ssl_get_session(&t->ssl, &c->cached) != 0) {
        mbedtls_ssl_session_free(&c->cached);
        mbedtls_ssl_session_init(&c->cached);
        cc__free_str(&c->a, c->cached_host);
        c->cached_host = NULL;
    }
}

/* ---- engines ---- */

int
cc__tls_new(cc__tls **out, cc__tls_conf *conf, const char *hostname,
            cc__tls_send_fn send, void *send_data)
{
    *out = NULL;
    if (!conf || !send)
        return CC_EINVAL;
    int client = !conf->is_server;
    if (client && hostname && !*hostname)
        hostname = NULL;
    /* A verifying client without a name would accept any valid
     * certificate: refuse rather than connect unauthenticated. */
    if (client && !hostname &&
        conf->ssl.authmode == MBEDTLS_SSL_VERIFY_REQUIRED)
        return CC_EINVAL;

    cc__tls *t = cc__calloc(&conf->a, 1, sizeof *t);
    if (!t)
        return CC_ENOMEM;
    t->conf = conf;
    t->send = send;
    t->send_data = send_data;
    t->state = ST_HANDSHAKE;
    mbedtls_ssl_init(&t->ssl);

    int rc = 0;
    /* allocates the two record buffers (the bulk of the per-connection
     * cost; see the top of the file) */
    int r = mbedtls_ssl_setup(&t->ssl, &conf->ssl);
    if (r != 0) {
        rc = is_alloc_error(r) ? CC_ENOMEM : CC_ETLS;
        goto fail;
    }
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);

    if (client && hostname) {
        t->host = cc__strdup(&conf->a, hostname);
        if (!t->host) {
            rc = CC_ENOMEM;
            goto fail;
        }
        unsigned char ip[16];
        if (uv_inet_pton(AF_INET, hostname, ip) == 0)
            t->ip_len = 4;
        else if (uv_inet_pton(AF_INET6, hostname, ip) == 0)
            t->ip_len = 16;
        if (t->ip_len) {
            /* no SNI for addresses (RFC 6066 3); checked by verify_ip */
            memcpy(t->ip, ip, t->ip_len);
            mbedtls_ssl_set_verify(&t->ssl, verify_ip, t);
        } else {
            r = mbedtls_ssl_set_hostname(&t->ssl, hostname);
            if (r != 0) {
                rc = is_alloc_error(r) ? CC_ENOMEM : CC_EINVAL;
                goto fail;
            }
        }
    }
    if (client && conf->cached_host &&
        strcmp(conf->cached_host, t->host ? t->host : "") == 0) {
        /* Failure here only means a full handshake. */
        (void)mbedtls_ssl_set_session(&t->ssl, &conf->cached);
    }
    *out = t;
    return 0;
fail:
    cc__tls_free(t);
    return rc;
}

void
cc__tls_free(cc__tls *t)
{
    if (!t)
        return;
    mbedtls_ssl_free(&t->ssl);
    cc__free_str(&t->conf->a, t->host);
    cc__free(&t->conf->a, t, sizeof *t);
}

/* Runs the handshake as far as the current input allows. */
static int
handshake(cc__tls *t)
{
    for (;;) {
        size_t before = t->in_len;
        int r = mbedtls_ssl_handshake(&t->ssl);
        if (r == 0) {
            t->ready = 1;
            t->state = ST_OPEN;
            if (t->conf->is_server == 0)
                cache_session(t);
            return 0;
        }
        if (r == MBEDTLS_ERR_SSL_WANT_READ) {
            if (t->in_len == 0)
                return 0;
            if (t->in_len == before)
                return fail(t, r, "TLS engine stalled with input left");
            continue;
        }
        if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
            t->state = ST_EOF;
            snprintf(t->err, sizeof t->err,
                     "peer closed during the TLS handshake");
            return CC_EOF;
        }
        return fail(t, r, NULL);
    }
}

int
cc__tls_start(cc__tls *t)
{
    if (t->state == ST_FAILED)
        return CC_ETLS;
    if (t->state != ST_HANDSHAKE)
        return 0;
    /* With no input the client writes its ClientHello and then waits;
     * a server just waits. */
    t->in = NULL;
    t->in_len = 0;
    int rc = handshake(t);
    return rc == CC_EOF ? CC_ETLS : rc;
}

/* Decrypts everything the current input holds into plain(). */
static int
read_records(cc__tls *t, uint8_t *scratch, size_t cap,
             cc__tls_plain_fn plain, void *data)
{
    if (cap > INT_MAX)
        cap = INT_MAX;
    for (;;) {
        size_t before = t->in_len;
        int r = mbedtls_ssl_read(&t->ssl, scratch, cap);
        if (r > 0) {
            int prc = plain(data, scratch, (size_t)r);
            if (prc < 0) {
                /* What is left of the input is dropped, so the stream
                 * cannot be resumed: go to the failed state. */
                t->state = ST_FAILED;
                snprintf(t->err, sizeof t->err,
                         "plaintext consumer stopped: %s", cc_strerror(prc));
                return prc;
            }
            continue;
        }
        /* 0: empty records (OpenSSL sends them); WANT_READ: out of input,
         * or a warning alert was swallowed with input left over. */
        if (r == 0 || r == MBEDTLS_ERR_SSL_WANT_READ) {
            if (t->in_len == 0)
                return 0;
            if (t->in_len == before)
                return fail(t, r, "TLS engine stalled with input left");
            continue;
        }
        if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
            t->state = ST_EOF;
            snprintf(t->err, sizeof t->err, "peer sent close_notify");
            return CC_EOF;
        }
        return fail(t, r, NULL);
    }
}

int
cc__tls_input(cc__tls *t, const uint8_t *p, size_t n, uint8_t *scratch,
              size_t cap, cc__tls_plain_fn plain, void *data)
{
    if (t->state == ST_FAILED)
        return CC_ETLS;
    if (t->state == ST_EOF)
        return CC_EOF;
    if (!scratch || cap == 0 || !plain)
        return CC_EINVAL;
    t->in = p;
    t->in_len = n;
    int rc = 0;
    if (t->state == ST_HANDSHAKE)
        rc = handshake(t);
    if (rc == 0 && t->state == ST_OPEN)
        rc = read_records(t, scratch, cap, plain, data);
    /* never keep a pointer into the caller's buffer */
    t->in = NULL;
    t->in_len = 0;
    return rc;
}

int
cc__tls_ready(const cc__tls *t)
{
    return t->ready;
}

int
cc__tls_write(cc__tls *t, const uint8_t *p, size_t n)
{
    if (t->state == ST_FAILED)
        return CC_ETLS;
    if (!t->ready) {
        snprintf(t->err, sizeof t->err,
                 "write before the TLS handshake completed");
        return CC_ETLS;
    }
    if (t->shut) {
        snprintf(t->err, sizeof t->err, "write after TLS shutdown");
        return CC_ETLS;
    }
    /* mbedTLS writes at most one record (16 KiB) per call; our send
     * never blocks, so each call makes progress. */
    while (n > 0) {
        int r = mbedtls_ssl_write(&t->ssl, p, n);
        if (r <= 0)
            return fail(t, r, r == 0 ? "TLS write made no progress" : NULL);
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int
cc__tls_shutdown(cc__tls *t)
{
    if (t->state == ST_FAILED)
        return CC_ETLS;
    if (t->shut || !t->ready)
        return 0; /* nothing to say before the handshake: just close */
    t->shut = 1;
    int r = mbedtls_ssl_close_notify(&t->ssl);
    return r == 0 ? 0 : fail(t, r, NULL);
}

const char *
cc__tls_last_error(const cc__tls *t)
{
    return t->err;
}

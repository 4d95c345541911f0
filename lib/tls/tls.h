/*
 * lib/tls/tls.h - the TLS engine over mbedTLS, decoupled from I/O: the
 * connection layer hands it ciphertext read from the socket and receives
 * plaintext through a callback; ciphertext to send comes out through the
 * send callback given at creation (the connection queues it with its other
 * output). mbedTLS's bio callbacks return MBEDTLS_ERR_SSL_WANT_READ when
 * the input slice is used up, so nothing blocks. No globals: each conf has
 * its own entropy, DRBG and ticket key.
 */
#ifndef CC_TLS_H
#define CC_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/internal.h"

typedef struct cc__tls_conf cc__tls_conf;
typedef struct cc__tls cc__tls;

/* Ciphertext to write to the socket. Return 0, or a negative code to fail
 * the TLS operation in progress. */
typedef int (*cc__tls_send_fn)(void *data, const uint8_t *p, size_t n);
/* Decrypted application data. Return 0 to go on, negative to stop
 * (cc__tls_input then returns that code). */
typedef int (*cc__tls_plain_fn)(void *data, const uint8_t *p, size_t n);

/* Server: PEM certificate chain and key files; session tickets enabled
 * (rotating key, 24 h lifetime). Returns 0, CC_ETLS (unreadable or
 * mismatched files; detail in errbuf if not NULL), CC_ENOMEM. */
int cc__tls_conf_server_new(cc__tls_conf **out, const cc_allocator *a,
                            const char *cert_file, const char *key_file,
                            char *errbuf, size_t errcap);
/* Client: verify 1 = require a valid chain (ca_file, or the system bundle
 * /etc/ssl/certs/ca-certificates.crt when ca_file is NULL/""); 0 = none. */
int cc__tls_conf_client_new(cc__tls_conf **out, const cc_allocator *a,
                            int verify, const char *ca_file,
                            char *errbuf, size_t errcap);
void cc__tls_conf_free(cc__tls_conf *c);

/* A connection's engine. hostname: SNI and verification name for clients
 * (NULL on servers). A client starts its handshake in cc__tls_start. */
int cc__tls_new(cc__tls **out, cc__tls_conf *conf, const char *hostname,
                cc__tls_send_fn send, void *send_data);
void cc__tls_free(cc__tls *t);

/* Client: emit the ClientHello (through send). Returns 0 or CC_ETLS. */
int cc__tls_start(cc__tls *t);

/*
 * Process ciphertext p[0..n) (all of it is consumed; partial records are
 * kept inside). Advances the handshake (output goes through send) and
 * passes every decrypted byte to plain(data, ...), using scratch (cap
 * bytes, e.g. 16 KiB) as the decrypt buffer.
 * Returns 0, CC_EOF (peer sent close_notify), CC_ETLS (handshake or
 * record failure), or the negative value plain returned.
 */
int cc__tls_input(cc__tls *t, const uint8_t *p, size_t n, uint8_t *scratch,
                  size_t cap, cc__tls_plain_fn plain, void *data);

/* 1 once the handshake has completed. */
int cc__tls_ready(const cc__tls *t);

/* Encrypt p[0..n) (handshake must be complete) and emit the records
 * through send. Returns 0 or CC_ETLS. */
int cc__tls_write(cc__tls *t, const uint8_t *p, size_t n);

/* Emit close_notify. */
int cc__tls_shutdown(cc__tls *t);

/* Last error text for logs. */
const char *cc__tls_last_error(const cc__tls *t);

#endif

/*
 * tests/test_tls.c - the mbedTLS engine (lib/tls/tls.h), run purely in
 * memory: a server engine and a client engine whose send callbacks append
 * to buffers that the test then feeds to the other side, in chunks of
 * chosen sizes. Certificates are made at test time with the openssl CLI
 * into a temporary directory (an unchecked fixture, so once per case).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/ssl.h>

#include "core/internal.h"
#include "testutil.h"
#include "tls/tls.h"

/* ---- certificates ---- */

static char dir[64]; /* set in the parent before forking */

static void
path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void
openssl_req(const char *newkey, const char *extra, const char *stem,
            const char *subj)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && openssl req -x509 -newkey %s %s -nodes "
             "-keyout %s.key -out %s.crt -days 2 -subj %s "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
             ">/dev/null 2>&1",
             dir, newkey, extra, stem, stem, subj);
    ck_assert_int_eq(system(cmd), 0);
}

static void
certs_setup(void)
{
    strcpy(dir, "/tmp/cc_tls_test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    openssl_req("ec", "-pkeyopt ec_paramgen_curve:prime256v1", "ec",
                "/CN=localhost");
    openssl_req("rsa:2048", "", "rsa", "/CN=localhost");
    openssl_req("ec", "-pkeyopt ec_paramgen_curve:prime256v1", "other",
                "/CN=localhost");
    char p[128];
    path_of(p, sizeof p, "junk.pem");
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
          "-----END CERTIFICATE-----\n", f);
    fclose(f);
}

static void
certs_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- the in-memory pipe ---- */

typedef struct tbuf {
    uint8_t *p;
    size_t len, cap;
} tbuf;

static void
tbuf_add(tbuf *b, const uint8_t *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        ck_assert_ptr_nonnull(b->p);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void
tbuf_free(tbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

typedef struct peer {
    cc__tls *t;
    tbuf out;       /* ciphertext it sent */
    tbuf plain;     /* plaintext it received */
    int send_fail;  /* send callback returns this when nonzero */
    int plain_fail; /* plain callback returns this when nonzero */
    size_t sends;
} peer;

static int
on_send(void *data, const uint8_t *p, size_t n)
{
    peer *pe = data;
    pe->sends++;
    if (pe->send_fail)
        return pe->send_fail;
    tbuf_add(&pe->out, p, n);
    return 0;
}

static int
on_plain(void *data, const uint8_t *p, size_t n)
{
    peer *pe = data;
    ck_assert_uint_gt(n, 0);
    if (pe->plain_fail)
        return pe->plain_fail;
    tbuf_add(&pe->plain, p, n);
    return 0;
}

static uint8_t scratch[16384];

/* Feeds src's pending output to dst in chunks cycling through `chunks`
 * (NULL: all at once), with a decrypt buffer of `cap` bytes. Returns the
 * first non-zero result, or 0. src's output is cleared either way. */
static int
feed_ex(peer *src, peer *dst, const size_t *chunks, size_t nchunks,
        size_t cap)
{
    int rc = 0;
    size_t off = 0, i = 0;
    /* detach: feeding dst may make dst send, never src */
    tbuf in = src->out;
    memset(&src->out, 0, sizeof src->out);
    while (off < in.len) {
        size_t k = chunks ? chunks[i++ % nchunks] : in.len;
        if (k > in.len - off)
            k = in.len - off;
        rc = cc__tls_input(dst->t, in.p + off, k, scratch, cap, on_plain,
                           dst);
        off += k;
        if (rc != 0)
            break;
    }
    tbuf_free(&in);
    return rc;
}

static int
feed(peer *src, peer *dst)
{
    return feed_ex(src, dst, NULL, 0, sizeof scratch);
}

/* Client flight, server flight, ... until both are ready. */
static void
handshake_chunked(peer *cli, peer *srv, const size_t *chunks, size_t nch)
{
    ck_assert_int_eq(cc__tls_start(cli->t), 0);
    ck_assert_uint_gt(cli->out.len, 0);
    for (int round = 0; round < 4; round++) {
        ck_assert_int_eq(feed_ex(cli, srv, chunks, nch, sizeof scratch), 0);
        ck_assert_int_eq(feed_ex(srv, cli, chunks, nch, sizeof scratch), 0);
        if (cc__tls_ready(cli->t) && cc__tls_ready(srv->t))
            break;
    }
    /* the client's last flight (full handshake) */
    if (cli->out.len)
        ck_assert_int_eq(feed_ex(cli, srv, chunks, nch, sizeof scratch), 0);
    ck_assert_int_eq(cc__tls_ready(cli->t), 1);
    ck_assert_int_eq(cc__tls_ready(srv->t), 1);
    ck_assert_uint_eq(cli->out.len, 0);
    ck_assert_uint_eq(srv->out.len, 0);
}

static void
handshake(peer *cli, peer *srv)
{
    handshake_chunked(cli, srv, NULL, 0);
}

static void
peer_free(peer *p)
{
    cc__tls_free(p->t);
    tbuf_free(&p->out);
    tbuf_free(&p->plain);
    memset(p, 0, sizeof *p);
}

/* ---- a fixture: counting allocator, a server conf, a client conf ---- */

typedef struct fx {
    cc_test_alloc ta;
    cc__tls_conf *sconf, *cconf;
    peer srv, cli;
    char err[256];
} fx;

static void
fx_server(fx *f, const char *stem)
{
    char c[128], k[128], cn[16], kn[16];
    snprintf(cn, sizeof cn, "%s.crt", stem);
    snprintf(kn, sizeof kn, "%s.key", stem);
    path_of(c, sizeof c, cn);
    path_of(k, sizeof k, kn);
    ck_assert_int_eq(cc__tls_conf_server_new(&f->sconf, &f->ta.a, c, k,
                                             f->err, sizeof f->err),
                     0);
    ck_assert_str_eq(f->err, "");
}

static void
fx_client(fx *f, int verify, const char *ca_stem)
{
    char ca[128] = "";
    if (ca_stem) {
        char n[16];
        snprintf(n, sizeof n, "%s.crt", ca_stem);
        path_of(ca, sizeof ca, n);
    }
    ck_assert_int_eq(cc__tls_conf_client_new(&f->cconf, &f->ta.a, verify,
                                             ca, f->err, sizeof f->err),
                     0);
}

static void
fx_init(fx *f, const char *server_stem, int verify, const char *ca_stem)
{
    memset(f, 0, sizeof *f);
    cc_test_alloc_init(&f->ta);
    fx_server(f, server_stem);
    fx_client(f, verify, ca_stem);
}

static void
fx_conns(fx *f, const char *host)
{
    ck_assert_int_eq(cc__tls_new(&f->srv.t, f->sconf, NULL, on_send, &f->srv),
                     0);
    ck_assert_int_eq(cc__tls_new(&f->cli.t, f->cconf, host, on_send, &f->cli),
                     0);
    ck_assert_int_eq(cc__tls_ready(f->srv.t), 0);
    ck_assert_int_eq(cc__tls_ready(f->cli.t), 0);
}

static void
fx_done(fx *f)
{
    peer_free(&f->srv);
    peer_free(&f->cli);
    cc__tls_conf_free(f->sconf);
    cc__tls_conf_free(f->cconf);
    ck_assert_uint_eq(f->ta.bytes, 0);
    ck_assert_uint_eq(f->ta.blocks, 0);
}

static void
say(peer *from, peer *to, const char *msg)
{
    size_t n = strlen(msg);
    tbuf_free(&to->plain);
    ck_assert_int_eq(cc__tls_write(from->t, (const uint8_t *)msg, n), 0);
    ck_assert_uint_gt(from->out.len, n); /* encrypted, with overhead */
    if (n >= 8) /* (a short string can occur in ciphertext by chance) */
        ck_assert_ptr_null(memmem(from->out.p, from->out.len, msg, n));
    ck_assert_int_eq(feed(from, to), 0);
    ck_assert_uint_eq(to->plain.len, n);
    ck_assert_int_eq(memcmp(to->plain.p, msg, n), 0);
}

/* ---- tests ---- */

static void
basic_exchange(const char *stem)
{
    fx f;
    fx_init(&f, stem, 1, stem);
    fx_conns(&f, "localhost");
    handshake(&f.cli, &f.srv);
    ck_assert_str_eq(cc__tls_last_error(f.cli.t), "");
    say(&f.cli, &f.srv, "hello from the client");
    say(&f.srv, &f.cli, "hello from the server");
    say(&f.cli, &f.srv, "x");
    fx_done(&f);
}

START_TEST(handshake_ec)
{
    basic_exchange("ec");
}
END_TEST

START_TEST(handshake_rsa)
{
    basic_exchange("rsa");
}
END_TEST

START_TEST(handshake_byte_by_byte)
{
    static const size_t one[] = {1};
    fx f;
    fx_init(&f, "ec", 1, "ec");
    fx_conns(&f, "localhost");
    handshake_chunked(&f.cli, &f.srv, one, 1);
    /* and a record split into single bytes, then a tiny decrypt buffer */
    ck_assert_int_eq(cc__tls_write(f.cli.t, (const uint8_t *)"abcdef", 6), 0);
    ck_assert_int_eq(feed_ex(&f.cli, &f.srv, one, 1, sizeof scratch), 0);
    ck_assert_uint_eq(f.srv.plain.len, 6);
    ck_assert_int_eq(memcmp(f.srv.plain.p, "abcdef", 6), 0);
    ck_assert_int_eq(cc__tls_write(f.srv.t, (const uint8_t *)"0123456789",
                                   10),
                     0);
    ck_assert_int_eq(feed_ex(&f.srv, &f.cli, NULL, 0, 3), 0);
    ck_assert_uint_eq(f.cli.plain.len, 10);
    ck_assert_int_eq(memcmp(f.cli.plain.p, "0123456789", 10), 0);
    fx_done(&f);
}
END_TEST

static void
big_one_way(peer *from, peer *to, size_t cap)
{
    static const size_t chunks[] = {1, 7, 16384 + 3};
    const size_t n = 1u << 20;
    uint8_t *msg = malloc(n);
    ck_assert_ptr_nonnull(msg);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        msg[i] = (uint8_t)x;
    }
    tbuf_free(&to->plain);
    ck_assert_int_eq(cc__tls_write(from->t, msg, n), 0);
    /* at least 64 records of at most 16 KiB each */
    ck_assert_uint_gt(from->out.len, n + 64 * 5);
    ck_assert_int_eq(feed_ex(from, to, chunks, 3, cap), 0);
    ck_assert_uint_eq(to->plain.len, n);
    ck_assert_int_eq(memcmp(to->plain.p, msg, n), 0);
    free(msg);
}

START_TEST(big_payload_odd_chunks)
{
    fx f;
    fx_init(&f, "ec", 1, "ec");
    fx_conns(&f, "localhost");
    handshake(&f.cli, &f.srv);
    big_one_way(&f.cli, &f.srv, sizeof scratch);
    big_one_way(&f.srv, &f.cli, sizeof scratch);
    big_one_way(&f.cli, &f.srv, 1000); /* records larger than scratch */
    fx_done(&f);
}
END_TEST

START_TEST(many_writes_one_input)
{
    /* several records (and an empty write) arrive in one input call */
    fx f;
    fx_init(&f, "rsa", 1, "rsa");
    fx_conns(&f, "localhost");
    handshake(&f.cli, &f.srv);
    ck_assert_int_eq(cc__tls_write(f.cli.t, (const uint8_t *)"ab", 2), 0);
    ck_assert_int_eq(cc__tls_write(f.cli.t, (const uint8_t *)"", 0), 0);
    ck_assert_int_eq(cc__tls_write(f.cli.t, (const uint8_t *)"cde", 3), 0);
    ck_assert_int_eq(feed(&f.cli, &f.srv), 0);
    ck_assert_uint_eq(f.srv.plain.len, 5);
    ck_assert_int_eq(memcmp(f.srv.plain.p, "abcde", 5), 0);
    /* an empty input is fine too */
    ck_assert_int_eq(cc__tls_input(f.srv.t, NULL, 0, scratch, sizeof scratch,
                                   on_plain, &f.srv),
                     0);
    fx_done(&f);
}
END_TEST

START_TEST(warning_alert_between_records)
{
    /* mbedtls_ssl_read answers WANT_READ after swallowing a warning
     * alert even with input left; the engine must go on reading. White
     * box: the mbedtls_ssl_context is the first member of cc__tls (a
     * comment there says so), and mbedTLS can send an alert on its own. */
    fx f;
    fx_init(&f, "ec", 1, "ec");
    fx_conns(&f, "localhost");
    handshake(&f.cli, &f.srv);
    mbedtls_ssl_context *ssl = (mbedtls_ssl_context *)(void *)f.srv.t;
    ck_assert_int_eq(cc__tls_write(f.srv.t, (const uint8_t *)"abc", 3), 0);
    ck_assert_int_eq(mbedtls_ssl_send_alert_message(
                         ssl, MBEDTLS_SSL_ALERT_LEVEL_WARNING,
                         MBEDTLS_SSL_ALERT_MSG_NO_RENEGOTIATION),
                     0);
    ck_assert_int_eq(cc__tls_write(f.srv.t, (const uint8_t *)"def", 3), 0);
    ck_assert_int_eq(mbedtls_ssl_send_alert_message(
                         ssl, MBEDTLS_SSL_ALERT_LEVEL_WARNING,
                         MBEDTLS_SSL_ALERT_MSG_USER_CANCELED),
                     0);
    ck_assert_int_eq(cc__tls_write(f.srv.t, (const uint8_t *)"gh", 2), 0);
    ck_assert_int_eq(feed(&f.srv, &f.cli), 0);
    ck_assert_uint_eq(f.cli.plain.len, 8);
    ck_assert_int_eq(memcmp(f.cli.plain.p, "abcdefgh", 8), 0);
    say(&f.cli, &f.srv, "still talking");
    fx_done(&f);
}
END_TEST

START_TEST(verify_ip_literal)
{
    fx f;
    fx_init(&f, "ec", 1, "ec");
    fx_conns(&f, "127.0.0.1"); /* in the certificate's iPAddress SAN */
    handshake(&f.cli, &f.srv);
    say(&f.cli, &f.srv, "by address");
    peer_free(&f.cli);
    peer_free(&f.srv);

    const char *bad[] = {"127.0.0.2", "::1"};
    for (size_t i = 0; i < 2; i++) {
        fx_conns(&f, bad[i]);
        ck_assert_int_eq(cc__tls_start(f.cli.t), 0);
        ck_assert_int_eq(feed(&f.cli, &f.srv), 0);
        ck_assert_int_eq(feed(&f.srv, &f.cli), CC_ETLS);
        ck_assert_ptr_nonnull(strstr(cc__tls_last_error(f.cli.t),
                                     "Common Name"));
        ck_assert_int_eq(cc__tls_ready(f.cli.t), 0);
        peer_free(&f.cli);
        peer_free(&f.srv);
    }
    fx_done(&f);
}
END_TEST

START_TEST(verify_wrong_ca)
{
    fx f;
    fx_init(&f, "ec", 1, "other");
    fx_conns(&f, "localhost");
    ck_assert_int_eq(cc__tls_start(f.cli.t), 0);
    ck_assert_int_eq(feed(&f.cli, &f.srv), 0);
    ck_assert_int_eq(feed(&f.srv, &f.cli), CC_ETLS);
    const char *e = cc__tls_last_error(f.cli.t);
    ck_assert_ptr_nonnull(strstr(e, "verification failed"));
    ck_assert_ptr_nonnull(strstr(e, "not correctly signed"));
    /* sticky */
    ck_assert_int_eq(cc__tls_input(f.cli.t, (const uint8_t *)"x", 1, scratch,
                                   sizeof scratch, on_plain, &f.cli),
                     CC_ETLS);
    ck_assert_int_eq(cc__tls_write(f.cli.t, (const uint8_t *)"x", 1),
                     CC_ETLS);
    /* the client told the server with a fatal alert */
    ck_assert_uint_gt(f.cli.out.len, 0);
    ck_assert_int_eq(feed(&f.cli, &f.srv), CC_ETLS);
    ck_assert_ptr_nonnull(strstr(cc__tls_last_error(f.srv.t), "alert"));
    ck_assert_int_eq(cc__tls_ready(f.srv.t), 0);
    fx_done(&f);
}
END_TEST

START_TEST(verify_off_accepts_any)
{
    fx f;
    fx_init(&f, "ec", 0, "other"); /* the CA is ignored with verify 0 */
    fx_conns(&f, "not-the-name.example");
    handshake(&f.cli, &f.srv);
    say(&f.srv, &f.cli, "unverified but encrypted");
    peer_free(&f.cli);
    peer_free(&f.srv);
    /* verify off: a NULL host name is allowed */
    fx_conns(&f, NULL);
    handshake(&f.cli, &f.srv);
    fx_done(&f);
}
END_TEST

START_TEST(verify_system_bundle)
{
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) != 0)
        return; /* no system bundle on this machine */
    fx f;
    memset(&f, 0, sizeof f);
    cc_test_alloc_init(&f.ta);
    fx_server(&f, "ec");
    ck_assert_int_eq(cc__tls_conf_client_new(&f.cconf, &f.ta.a, 1, NULL,
                                             f.err, sizeof f.err),
                     0);
    fx_conns(&f, "localhost");
    ck_assert_int_eq(cc__tls_start(f.cli.t), 0);
    ck_assert_int_eq(feed(&f.cli, &f.srv), 0);
    /* our self-signed certificate is not in the public bundle */
    ck_assert_int_eq(feed(&f.srv, &f.cli), CC_ETLS);
    ck_assert_ptr_nonnull(strstr(cc__tls_last_error(f.cli.t),
                                 "verification failed"));
    fx_done(&f);
}
END_TEST

START_TEST(wrong_hostname)
{
    fx f;
    fx_init(&f, "rsa", 1, "rsa");
    fx_conns(&f, "example.com");
    ck_assert_int_eq(cc__tls_start(f.cli.t), 0);
    ck_assert_int_eq(feed(&f.cli, &f.srv), 0);
    ck_assert_int_eq(feed(&f.srv, &f.cli), CC_ETLS);
    ck_assert_ptr_nonnull(strstr(cc__tls_last_error(f.cli.t), "Common Name"));
    ck_assert_int_eq(cc__tls_ready(f.cli.t), 0);
    peer_free(&f.cli);
    /* a verifying client must name the server */
    ck_assert_int_eq(cc__tls_new(&f.cli.t, f.cconf, NULL, on_send, &f.cli),
                     CC_EINVAL);
    ck_assert_ptr_null(f.cli.t);
    ck_assert_int_eq(cc__tls_new(&f.cli.t, f.cconf, "", on_send, &f.cli),
                     CC_EINVAL);
    fx_done(&f);
}
END_TEST

START_TEST(close_notify_eof)
{
    fx f;
    fx_init(&f, "ec", 1, "ec");
    fx_conns(&f, "localhost");
    handshake(&f.cli, &f.srv);
    ck_assert_int_eq(cc__tls_write(f.cli.t, (const uint8_t *)"last", 4), 0);
    ck_assert_int_eq(cc__tls_shutdown(f.cli.t), 0);
    ck_assert_int_eq(cc__tls_write(f.cli.t, (const uint8_t *)"more", 4),
                     CC_ETLS);
    ck_assert_int_eq(cc__tls_shutdown(f.cli.t), 0); /* once is enough */
    /* data before the close_notify is delivered, then CC_EOF */
    ck_assert_int_eq(feed(&f.cli, &f.srv), CC_EOF);
    ck_assert_uint_eq(f.srv.plain.len, 4);
    ck_assert_int_eq(memcmp(f.srv.plain.p, "last", 4), 0);
    ck_assert_int_eq(cc__tls_input(f.srv.t, (const uint8_t *)"zz", 2,
                                   scratch, sizeof scratch, on_plain, &f.srv),
                     CC_EOF);
    /* half-close: the server may still answer, then closes too */
    say(&f.srv, &f.cli, "bye");
    ck_assert_int_eq(cc__tls_shutdown(f.srv.t), 0);
    ck_assert_int_eq(feed(&f.srv, &f.cli), CC_EOF);
    fx_done(&f);
}
END_TEST

START_TEST(shutdown_before_handshake)
{
    fx f;
    fx_init(&f, "ec", 1, "ec");
    fx_conns(&f, "localhost");
    ck_assert_int_eq(cc__tls_shutdown(f.srv.t), 0);
    ck_assert_uint_eq(f.srv.out.len, 0);
    ck_assert_int_eq(cc__tls_write(f.cli.t, (const uint8_t *)"x", 1),
                     CC_ETLS);
    ck_assert_ptr_nonnull(strstr(cc__tls_last_error(f.cli.t), "before"));
    fx_done(&f);
}
END_TEST

START_TEST(garbage_input)
{
    fx f;
    fx_init(&f, "ec", 1, "ec");
    fx_conns(&f, "localhost");
    /* plain HTTP to a TLS port */
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(cc__tls_input(f.srv.t, (const uint8_t *)http,
                                   strlen(http), scratch, sizeof scratch,
                                   on_plain, &f.srv),
                     CC_ETLS);
    ck_assert_str_ne(cc__tls_last_error(f.srv.t), "");
    ck_assert_int_eq(cc__tls_input(f.srv.t, (const uint8_t *)"\x16", 1,
                                   scratch, sizeof scratch, on_plain, &f.srv),
                     CC_ETLS);
    peer_free(&f.srv);
    peer_free(&f.cli); /* never started: freeing is fine */

    /* a forged application-data record after the handshake */
    fx_conns(&f, "localhost");
    handshake(&f.cli, &f.srv);
    uint8_t rec[5 + 40] = {0x17, 0x03, 0x03, 0x00, 40};
    for (size_t i = 5; i < sizeof rec; i++)
        rec[i] = (uint8_t)(i * 37);
    ck_assert_int_eq(cc__tls_input(f.cli.t, rec, sizeof rec, scratch,
                                   sizeof scratch, on_plain, &f.cli),
                     CC_ETLS);
    ck_assert_uint_eq(f.cli.plain.len, 0);
    peer_free(&f.cli);
    peer_free(&f.srv);

    /* random bytes in random slices: 0 or CC_ETLS, never a crash */
    srand(12345);
    for (int round = 0; round < 200; round++) {
        fx_conns(&f, "localhost");
        if (round % 2)
            handshake(&f.cli, &f.srv);
        peer *victim = round % 4 < 2 ? &f.srv : &f.cli;
        uint8_t junk[3000];
        size_t n = (size_t)(rand() % (int)sizeof junk) + 1;
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rand();
        if (round % 3 == 0)
            junk[0] = 0x16, junk[1] = 3, junk[2] = 3; /* plausible header */
        size_t off = 0;
        int rc = 0;
        while (off < n && rc == 0) {
            size_t k = (size_t)(rand() % 600) + 1;
            if (k > n - off)
                k = n - off;
            rc = cc__tls_input(victim->t, junk + off, k, scratch, 64,
                               on_plain, victim);
            off += k;
        }
        ck_assert_msg(rc == 0 || rc == CC_ETLS, "round %d: rc %d", round,
                      rc);
        ck_assert_uint_eq(victim->plain.len, 0);
        peer_free(&f.cli);
        peer_free(&f.srv);
    }
    fx_done(&f);
}
END_TEST

START_TEST(plain_callback_stops)
{
    fx f;
    fx_init(&f, "ec", 1, "ec");
    fx_conns(&f, "localhost");
    handshake(&f.cli, &f.srv);
    ck_assert_int_eq(cc__tls_write(f.cli.t, (const uint8_t *)"abc", 3), 0);
    f.srv.plain_fail = CC_EPROTO;
    ck_assert_int_eq(feed(&f.cli, &f.srv), CC_EPROTO);
    /* the rest of that input was dropped, so the stream is over */
    ck_assert_int_eq(cc__tls_input(f.srv.t, (const uint8_t *)"x", 1, scratch,
                                   sizeof scratch, on_plain, &f.srv),
                     CC_ETLS);
    ck_assert_ptr_nonnull(strstr(cc__tls_last_error(f.srv.t), "protocol"));
    fx_done(&f);
}
END_TEST

START_TEST(send_callback_fails)
{
    fx f;
    fx_init(&f, "ec", 1, "ec");
    fx_conns(&f, "localhost");
    /* during the handshake */
    f.cli.send_fail = CC_ENOBUFS;
    ck_assert_int_eq(cc__tls_start(f.cli.t), CC_ETLS);
    ck_assert_uint_eq(f.cli.sends, 1);
    ck_assert_ptr_nonnull(strstr(cc__tls_last_error(f.cli.t),
                                 "outbound queue full"));
    peer_free(&f.cli);
    peer_free(&f.srv);
    /* during a write */
    fx_conns(&f, "localhost");
    handshake(&f.cli, &f.srv);
    f.srv.send_fail = CC_ENOMEM;
    ck_assert_int_eq(cc__tls_write(f.srv.t, (const uint8_t *)"x", 1),
                     CC_ETLS);
    ck_assert_ptr_nonnull(strstr(cc__tls_last_error(f.srv.t),
                                 "out of memory"));
    ck_assert_int_eq(cc__tls_shutdown(f.srv.t), CC_ETLS);
    fx_done(&f);
}
END_TEST

static int
conf_server_err(cc_test_alloc *ta, const char *cert, const char *key,
                char *err, size_t cap)
{
    char c[128], k[128];
    path_of(c, sizeof c, cert);
    path_of(k, sizeof k, key);
    cc__tls_conf *conf = (cc__tls_conf *)(uintptr_t)1;
    int rc = cc__tls_conf_server_new(&conf, &ta->a, c, k, err, cap);
    ck_assert_ptr_null(conf);
    return rc;
}

START_TEST(conf_errors)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    char err[256];

    ck_assert_int_eq(conf_server_err(&ta, "missing.crt", "ec.key", err,
                                     sizeof err),
                     CC_ETLS);
    ck_assert_ptr_nonnull(strstr(err, "certificate file"));
    ck_assert_ptr_nonnull(strstr(err, "missing.crt"));
    ck_assert_ptr_nonnull(strstr(err, "Read/write of file failed"));

    ck_assert_int_eq(conf_server_err(&ta, "ec.crt", "missing.key", err,
                                     sizeof err),
                     CC_ETLS);
    ck_assert_ptr_nonnull(strstr(err, "key file"));
    ck_assert_ptr_nonnull(strstr(err, "missing.key"));

    ck_assert_int_eq(conf_server_err(&ta, "junk.pem", "ec.key", err,
                                     sizeof err),
                     CC_ETLS);
    ck_assert_ptr_nonnull(strstr(err, "junk.pem"));

    ck_assert_int_eq(conf_server_err(&ta, "ec.crt", "ec.crt", err,
                                     sizeof err),
                     CC_ETLS);
    ck_assert_ptr_nonnull(strstr(err, "key file"));

    /* mismatched pairs: other type, and same type but another key */
    ck_assert_int_eq(conf_server_err(&ta, "ec.crt", "rsa.key", err,
                                     sizeof err),
                     CC_ETLS);
    ck_assert_ptr_nonnull(strstr(err, "does not match"));
    ck_assert_int_eq(conf_server_err(&ta, "ec.crt", "other.key", err,
                                     sizeof err),
                     CC_ETLS);
    ck_assert_ptr_nonnull(strstr(err, "does not match"));
    ck_assert_int_eq(conf_server_err(&ta, "rsa.crt", "ec.key", NULL, 0),
                     CC_ETLS);

    cc__tls_conf *conf = NULL;
    ck_assert_int_eq(cc__tls_conf_server_new(&conf, &ta.a, NULL, "x", err,
                                             sizeof err),
                     CC_ETLS);
    ck_assert_str_ne(err, "");

    char ca[128];
    path_of(ca, sizeof ca, "missing-ca.pem");
    ck_assert_int_eq(cc__tls_conf_client_new(&conf, &ta.a, 1, ca, err,
                                             sizeof err),
                     CC_ETLS);
    ck_assert_ptr_null(conf);
    ck_assert_ptr_nonnull(strstr(err, "CA file"));
    ck_assert_ptr_nonnull(strstr(err, "missing-ca.pem"));
    path_of(ca, sizeof ca, "junk.pem");
    ck_assert_int_eq(cc__tls_conf_client_new(&conf, &ta.a, 1, ca, err,
                                             sizeof err),
                     CC_ETLS);
    /* verify 0 reads no CA file at all */
    path_of(ca, sizeof ca, "missing-ca.pem");
    ck_assert_int_eq(cc__tls_conf_client_new(&conf, &ta.a, 0, ca, err,
                                             sizeof err),
                     0);
    cc__tls_conf_free(conf);
    cc__tls_conf_free(NULL);
    cc__tls_free(NULL);

    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);
}
END_TEST

/* Resumed (abbreviated) handshake: the server's first flight already
 * holds its Finished, so the client is ready after reading one flight. A
 * full handshake needs two. */
static int
client_ready_after_one_flight(fx *f, const char *host)
{
    fx_conns(f, host);
    ck_assert_int_eq(cc__tls_start(f->cli.t), 0);
    ck_assert_int_eq(feed(&f->cli, &f->srv), 0);
    ck_assert_int_eq(feed(&f->srv, &f->cli), 0);
    int resumed = cc__tls_ready(f->cli.t);
    /* finish either way */
    for (int i = 0; i < 3 && (f->cli.out.len || f->srv.out.len); i++) {
        if (f->cli.out.len)
            ck_assert_int_eq(feed(&f->cli, &f->srv), 0);
        if (f->srv.out.len)
            ck_assert_int_eq(feed(&f->srv, &f->cli), 0);
    }
    ck_assert_int_eq(cc__tls_ready(f->cli.t), 1);
    ck_assert_int_eq(cc__tls_ready(f->srv.t), 1);
    say(&f->cli, &f->srv, "after the handshake");
    say(&f->srv, &f->cli, "both ways");
    peer_free(&f->cli);
    peer_free(&f->srv);
    return resumed;
}

START_TEST(session_resumption)
{
    fx f;
    fx_init(&f, "ec", 1, "ec");
    ck_assert_int_eq(client_ready_after_one_flight(&f, "localhost"), 0);
    ck_assert_int_eq(client_ready_after_one_flight(&f, "localhost"), 1);
    ck_assert_int_eq(client_ready_after_one_flight(&f, "localhost"), 1);
    /* another name is not offered that session... */
    ck_assert_int_eq(client_ready_after_one_flight(&f, "127.0.0.1"), 0);
    ck_assert_int_eq(client_ready_after_one_flight(&f, "127.0.0.1"), 1);
    /* ...and a server with another ticket key falls back to a full
     * handshake, which still succeeds */
    cc__tls_conf_free(f.sconf);
    fx_server(&f, "ec");
    ck_assert_int_eq(client_ready_after_one_flight(&f, "127.0.0.1"), 0);
    ck_assert_int_eq(client_ready_after_one_flight(&f, "127.0.0.1"), 1);
    fx_done(&f);
}
END_TEST

START_TEST(oom_paths)
{
    cc_test_alloc ta;
    cc_test_alloc_init(&ta);
    char c[128], k[128], err[256];
    path_of(c, sizeof c, "ec.crt");
    path_of(k, sizeof k, "ec.key");

    cc__tls_conf *sconf = NULL, *cconf = NULL;
    size_t n;
    int rc;
    for (n = 1;; n++) {
        ta.nalloc = 0;
        ta.fail_at = n;
        rc = cc__tls_conf_server_new(&sconf, &ta.a, c, k, err, sizeof err);
        if (rc == 0)
            break;
        ck_assert_int_eq(rc, CC_ENOMEM);
        ck_assert_ptr_null(sconf);
        ck_assert_uint_eq(ta.bytes, 0);
    }
    ck_assert_uint_eq(n, 2); /* one allocation of ours */
    for (n = 1;; n++) {
        ta.nalloc = 0;
        ta.fail_at = n;
        rc = cc__tls_conf_client_new(&cconf, &ta.a, 1, c, err, sizeof err);
        if (rc == 0)
            break;
        ck_assert_int_eq(rc, CC_ENOMEM);
        ck_assert_ptr_null(cconf);
    }
    ck_assert_uint_eq(n, 2);
    size_t base = ta.bytes;

    peer cli, srv;
    memset(&cli, 0, sizeof cli);
    memset(&srv, 0, sizeof srv);
    for (n = 1;; n++) {
        ta.nalloc = 0;
        ta.fail_at = n;
        rc = cc__tls_new(&cli.t, cconf, "localhost", on_send, &cli);
        if (rc == 0)
            break;
        ck_assert_int_eq(rc, CC_ENOMEM);
        ck_assert_ptr_null(cli.t);
        ck_assert_uint_eq(ta.bytes, base);
    }
    ck_assert_uint_eq(n, 3); /* the engine and the host name */
    ta.fail_at = 0;
    ck_assert_int_eq(cc__tls_new(&srv.t, sconf, NULL, on_send, &srv), 0);

    /* the session cache's host copy fails: no cache, still connected */
    ta.nalloc = 0;
    ta.fail_at = 1;
    handshake(&cli, &srv);
    ta.fail_at = 0;
    say(&cli, &srv, "ok");
    peer_free(&cli);
    peer_free(&srv);
    ck_assert_uint_eq(ta.bytes, base);

    cc__tls_conf_free(sconf);
    cc__tls_conf_free(cconf);
    ck_assert_uint_eq(ta.bytes, 0);
    ck_assert_uint_eq(ta.blocks, 0);
}
END_TEST

START_TEST(default_allocator)
{
    /* NULL allocator = libc */
    char c[128], k[128];
    path_of(c, sizeof c, "rsa.crt");
    path_of(k, sizeof k, "rsa.key");
    cc__tls_conf *sconf = NULL, *cconf = NULL;
    ck_assert_int_eq(cc__tls_conf_server_new(&sconf, NULL, c, k, NULL, 0), 0);
    ck_assert_int_eq(cc__tls_conf_client_new(&cconf, NULL, 1, c, NULL, 0), 0);
    peer cli, srv;
    memset(&cli, 0, sizeof cli);
    memset(&srv, 0, sizeof srv);
    ck_assert_int_eq(cc__tls_new(&srv.t, sconf, NULL, on_send, &srv), 0);
    ck_assert_int_eq(cc__tls_new(&cli.t, cconf, "localhost", on_send, &cli),
                     0);
    handshake(&cli, &srv);
    say(&srv, &cli, "libc");
    peer_free(&cli);
    peer_free(&srv);
    cc__tls_conf_free(sconf);
    cc__tls_conf_free(cconf);
}
END_TEST

Suite *
cc_test_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("engine");
    tcase_add_unchecked_fixture(tc, certs_setup, certs_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, handshake_ec);
    tcase_add_test(tc, handshake_rsa);
    tcase_add_test(tc, handshake_byte_by_byte);
    tcase_add_test(tc, big_payload_odd_chunks);
    tcase_add_test(tc, many_writes_one_input);
    tcase_add_test(tc, warning_alert_between_records);
    tcase_add_test(tc, verify_ip_literal);
    tcase_add_test(tc, verify_wrong_ca);
    tcase_add_test(tc, verify_off_accepts_any);
    tcase_add_test(tc, verify_system_bundle);
    tcase_add_test(tc, wrong_hostname);
    tcase_add_test(tc, close_notify_eof);
    tcase_add_test(tc, shutdown_before_handshake);
    tcase_add_test(tc, garbage_input);
    tcase_add_test(tc, plain_callback_stops);
    tcase_add_test(tc, send_callback_fails);
    tcase_add_test(tc, conf_errors);
    tcase_add_test(tc, session_resumption);
    tcase_add_test(tc, oom_paths);
    tcase_add_test(tc, default_allocator);
    suite_add_tcase(s, tc);
    return s;
}

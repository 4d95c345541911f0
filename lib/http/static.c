/*
 * lib/http/static.c - static files for cc_server_static(): content types
 * by extension, and serving one GET/HEAD request from a mounted directory.
 *
 * Serving is a chain of libuv thread-pool requests, one at a time, all
 * with callbacks so the loop thread never blocks on the disk:
 *   realpath -> (inside the mount?) -> open -> fstat -> (directory? then
 *   realpath of its index.html again) -> read... -> close -> respond.
 * The request path is first reduced to a relative path without "." or
 * ".." segments or hidden names (cc__static_relpath); realpath then
 * resolves symlinks, and the result must still lie inside the mount's
 * directory, so neither ".." nor a symlink can lead out of it.
 *
 * Everything the chain needs is copied into its own state (the mount may
 * go away with its server meanwhile); the request stays valid until the
 * one cc_http_respond*() call at the end, which reports CC_EPIPE if the
 * client left. HEAD reads the file too: cc_http_respond() wants the body
 * to be there for the length, and skips sending it for HEAD.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "http_int.h"

#define MAX_FILE (64u * 1024 * 1024)
/* sfile.status after closing a directory: go on with its index.html */
#define STATUS_INDEX 1


/* ---- content types ---- */

typedef struct mime_ent {
    const char *ext;
    const char *type;
} mime_ent;

static const mime_ent MIME[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json; charset=utf-8"},
    {"map", "application/json; charset=utf-8"},
    {"txt", "text/plain; charset=utf-8"},
    {"svg", "image/svg+xml; charset=utf-8"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"pdf", "application/pdf"},
    {"mp3", "audio/mpeg"},
    {"wav", "audio/wav"},
};

const char *
cc__mime_type(const char *filename)
{
    static const char fallback[] = "application/octet-stream";
    if (!filename)
        return fallback;
    const char *base = strrchr(filename, '/');
    base = base ? base + 1 : filename;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base) /* no extension, or a name like ".txt" */
        return fallback;
    for (size_t i = 0; i < CC__ARRAY_LEN(MIME); i++)
        if (cc__strcaseeq(dot + 1, MIME[i].ext))
            return MIME[i].type;
    return fallback;
}

/* ---- pure helpers ---- */

/*
 * Map a decoded request path under `prefix` (ends with '/') to a path
 * relative to the mount directory: "/static/a//b.css" under "/static/"
 * gives "a/b.css"; the mount root gives "". A trailing '/' is kept (so a
 * file asked for as a directory does not resolve). Returns the length,
 * CC_ENOENT for a path outside the prefix or with a ".", ".." or hidden
 * ('.'-initial) segment, CC_E2BIG when out is too small.
 */
ssize_t
cc__static_relpath(const char *prefix, const char *path, char *out,
                   size_t cap)
{
    if (!prefix || !path || !out || !cap)
        return CC_EINVAL;
    size_t pl = strlen(prefix);
    const char *rel;
    if (strncmp(path, prefix, pl) == 0)
        rel = path + pl;
    else if (pl > 0 && prefix[pl - 1] == '/' && strlen(path) == pl - 1 &&
             strncmp(path, prefix, pl - 1) == 0)
        rel = path + pl - 1; /* "/static" for "/static/" */
    else
        return CC_ENOENT;

    size_t o = 0;
    const char *p = rel;
    int trailing = 0;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        size_t sl = (size_t)(p - s);
        if (s[0] == '.') /* ".", "..", and hidden files */
            return CC_ENOENT;
        if (o + (o ? 1 : 0) + sl + 1 > cap)
            return CC_E2BIG;
        if (o)
            out[o++] = '/';
        memcpy(out + o, s, sl);
        o += sl;
        trailing = *p == '/';
    }
    if (trailing) {
        if (o + 2 > cap)
            return CC_E2BIG;
        out[o++] = '/';
    }
    out[o] = 0;
    return (ssize_t)o;
}

/* Weak comparison (RFC 7232 §2.3.2) of our ETag with each entity tag of
 * an If-None-Match list; "*" matches any. */
int
cc__static_etag_match(const char *inm, const char *etag)
{
    if (!inm || !etag)
        return 0;
    if (etag[0] == 'W' && etag[1] == '/')
        etag += 2;
    size_t el = strlen(etag);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p != '"') { /* malformed element: skip it */
            while (*p && *p != ',')
                p++;
            continue;
        }
        const char *q = strchr(p + 1, '"');
        if (!q)
            return 0;
        if ((size_t)(q + 1 - p) == el && memcmp(p, etag, el) == 0)
            return 1;
        p = q + 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

/* IMF-fixdate (RFC 7231 §7.1.1.1), e.g. "Sun, 06 Nov 1994 08:49:37 GMT";
 * fixed English names, whatever the process locale. */
size_t
cc__http_imf_date(int64_t t, char out[30])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                    "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 9999 ||
        tm.tm_year + 1900 < 0) {
        memset(&tm, 0, sizeof tm);
        tm.tm_year = 70;
        tm.tm_mday = 1;
        tm.tm_wday = 4;
    }
    int n = snprintf(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                     days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
                     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return n > 0 ? (size_t)n : 0;
}

/* ---- serving ---- */

typedef struct sfile {
    uv_fs_t fs;
    cc_ctx *ctx;
    cc_http_req *req;
    const cc_allocator *a;
    int max_age_s;
    int cors;
    char *dir;        /* copy of the mount's directory (a realpath) */
    size_t dir_len;
    char *path;       /* the file being looked at */
    size_t path_cap;
    int tried_index;
    const char *mime; /* by the name asked for, not a symlink's target */
    uv_file fd;
    uint64_t size;
    int64_t mtime;
    uint8_t *buf;
    size_t got;
    int status;       /* what to answer once the file is closed */
    int not_modified;
} sfile;

static void sf_realpath(sfile *sf);
static int sf_set_path(sfile *sf, const char *a, const char *b,
                       const char *c);

static void
sf_free(sfile *sf)
{
    const cc_allocator *a = sf->a;
    cc__free(a, sf->buf, (size_t)sf->size);
    cc__free(a, sf->path, sf->path_cap);
    cc__free(a, sf->dir, sf->dir_len + 1);
    cc__free(a, sf, sizeof *sf);
}

static void
respond_error(cc_http_req *req, int status)
{
    switch (status) {
    case 403:
        cc_http_respond_error(req, 403, "forbidden", "access denied");
        break;
    case 404:
        cc_http_respond_error(req, 404, "not_found", "no such file");
        break;
    case 413:
        cc_http_respond_error(req, 413, "too_large", "file too large");
        break;
    case 503:
        cc_http_respond_error(req, 503, "unavailable", "out of memory");
        break;
    default:
        cc_http_respond_error(req, 500, "internal", "could not read file");
        break;
    }
}

static int
status_for(int err)
{
    switch (err) {
    case UV_ENOENT:
    case UV_ENOTDIR:
    case UV_ELOOP:
    case UV_ENAMETOOLONG:
        return 404;
    case UV_EACCES:
    case UV_EPERM:
        return 403;
    case UV_ENOMEM:
        return 503;
    default:
        return 500;
    }
}

/* Answer and free: the final step of every path through the chain. */
static void
sf_finish(sfile *sf)
{
    cc_http_req *req = sf->req;
    if (sf->status != 200 && sf->status != 304) {
        respond_error(req, sf->status);
        sf_free(sf);
        return;
    }
    char etag[64], date[30], cache[64], headers[320];
    snprintf(etag, sizeof etag, "W/\"%llx-%llx\"",
             (unsigned long long)sf->size, (unsigned long long)sf->mtime);
    cc__http_imf_date(sf->mtime, date);
    if (sf->max_age_s > 0)
        snprintf(cache, sizeof cache, "public, max-age=%d", sf->max_age_s);
    else
        snprintf(cache, sizeof cache, "public, max-age=0, no-cache");
    snprintf(headers, sizeof headers,
             "ETag: %s\r\nLast-Modified: %s\r\nCache-Control: %s\r\n%s", etag,
             date, cache,
             sf->cors ? "Access-Control-Allow-Origin: *\r\n" : "");
    if (sf->status == 304)
        cc_http_respond(req, 304, NULL, headers, NULL, 0);
    else
        cc_http_respond(req, 200, sf->mime, headers, sf->buf, sf->got);
    sf_free(sf);
}

static void
on_close(uv_fs_t *fs)
{
    sfile *sf = fs->data;
    uv_fs_req_cleanup(fs);
    if (sf->status == STATUS_INDEX) {
        if (sf_set_path(sf, sf->path, "/index.html", NULL)) {
            sf->status = 503;
            sf_finish(sf);
            return;
        }
        sf_realpath(sf);
        return;
    }
    sf_finish(sf);
}

/* Close the open file (if any), then finish with `status`. */
static void
sf_close(sfile *sf, int status)
{
    sf->status = status;
    if (sf->fd < 0) {
        sf_finish(sf);
        return;
    }
    uv_file fd = sf->fd;
    sf->fd = -1;
    if (uv_fs_close(sf->ctx->loop, &sf->fs, fd, on_close) != 0) {
        uv_fs_req_cleanup(&sf->fs);
        if (sf->status == STATUS_INDEX)
            sf->status = 500;
        sf_finish(sf);
    }
}

static void sf_read(sfile *sf);

static void
on_read(uv_fs_t *fs)
{
    sfile *sf = fs->data;
    ssize_t r = fs->result;
    uv_fs_req_cleanup(fs);
    if (r < 0) {
        sf_close(sf, 500);
        return;
    }
    if (r == 0) { /* the file shrank since fstat: send what is there */
        sf_close(sf, 200);
        return;
    }
    sf->got += (size_t)r;
    sf_read(sf);
}

static void
sf_read(sfile *sf)
{
    if (sf->got >= sf->size) {
        sf_close(sf, 200);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)sf->buf + sf->got,
                             (unsigned)(sf->size - sf->got));
    if (uv_fs_read(sf->ctx->loop, &sf->fs, sf->fd, &b, 1, (int64_t)sf->got,
                   on_read) != 0) {
        uv_fs_req_cleanup(&sf->fs);
        sf_close(sf, 500);
    }
}

/* sf->path = a + b + c (b, c optional); a may point into sf->path. */
static int
sf_set_path(sfile *sf, const char *a, const char *b, const char *c)
{
    size_t al = strlen(a), bl = b ? strlen(b) : 0, cl = c ? strlen(c) : 0;
    size_t need = al + bl + cl + 1;
    char *p = sf->path;
    if (need > sf->path_cap) {
        p = cc__alloc(sf->a, need);
        if (!p)
            return CC_ENOMEM;
    }
    memmove(p, a, al);
    if (b)
        memcpy(p + al, b, bl);
    if (c)
        memcpy(p + al + bl, c, cl);
    p[al + bl + cl] = 0;
    if (p != sf->path) {
        cc__free(sf->a, sf->path, sf->path_cap);
        sf->path = p;
        sf->path_cap = need;
    }
    return 0;
}

static void
on_fstat(uv_fs_t *fs)
{
    sfile *sf = fs->data;
    int err = (int)fs->result;
    uv_stat_t st = fs->statbuf;
    uv_fs_req_cleanup(fs);
    if (err < 0) {
        sf_close(sf, 500);
        return;
    }
    if ((st.st_mode & S_IFMT) == S_IFDIR) {
        if (sf->tried_index) {
            sf_close(sf, 404);
            return;
        }
        /* close it, then serve the directory's index.html, resolved
         * afresh (it may be a symlink too): see on_close */
        sf->tried_index = 1;
        sf->mime = cc__mime_type("index.html");
        sf_close(sf, STATUS_INDEX);
        return;
    }
    if ((st.st_mode & S_IFMT) != S_IFREG) {
        sf_close(sf, 404);
        return;
    }
    sf->size = st.st_size;
    sf->mtime = (int64_t)st.st_mtim.tv_sec;
    if (sf->size > MAX_FILE) {
        sf->size = 0;
        sf_close(sf, 413);
        return;
    }
    char etag[64];
    snprintf(etag, sizeof etag, "W/\"%llx-%llx\"",
             (unsigned long long)sf->size, (unsigned long long)sf->mtime);
    if (cc__static_etag_match(cc__http_msg_header(&sf->req->msg,
                                                  "if-none-match"),
                              etag)) {
        sf_close(sf, 304);
        return;
    }
    if (sf->size > 0) {
        sf->buf = cc__alloc(sf->a, (size_t)sf->size);
        if (!sf->buf) {
            sf->size = 0;
            sf_close(sf, 503);
            return;
        }
    }
    sf_read(sf);
}

static void
on_open(uv_fs_t *fs)
{
    sfile *sf = fs->data;
    int r = (int)fs->result;
    uv_fs_req_cleanup(fs);
    if (r < 0) {
        sf->status = status_for(r);
        sf_finish(sf);
        return;
    }
    sf->fd = r;
    if (uv_fs_fstat(sf->ctx->loop, &sf->fs, sf->fd, on_fstat) != 0) {
        uv_fs_req_cleanup(&sf->fs);
        sf_close(sf, 500);
    }
}

static void
on_realpath(uv_fs_t *fs)
{
    sfile *sf = fs->data;
    if (fs->result < 0) {
        int st = status_for((int)fs->result);
        uv_fs_req_cleanup(fs);
        sf->status = st;
        sf_finish(sf);
        return;
    }
    const char *real = fs->ptr;
    /* inside the mount: the directory itself or below "dir/" */
    int inside = sf->dir_len == 1 /* the mount is "/" */
                     ? real[0] == '/'
                     : strncmp(real, sf->dir, sf->dir_len) == 0 &&
                           (real[sf->dir_len] == 0 ||
                            real[sf->dir_len] == '/');
    int rc = inside ? sf_set_path(sf, real, NULL, NULL) : 0;
    uv_fs_req_cleanup(fs);
    if (!inside || rc) {
        sf->status = inside ? 503 : 404;
        sf_finish(sf);
        return;
    }
    if (uv_fs_open(sf->ctx->loop, &sf->fs, sf->path, O_RDONLY | O_CLOEXEC, 0,
                   on_open) != 0) {
        uv_fs_req_cleanup(&sf->fs);
        sf->status = 500;
        sf_finish(sf);
    }
}

static void
sf_realpath(sfile *sf)
{
    sf->fs.data = sf;
    if (uv_fs_realpath(sf->ctx->loop, &sf->fs, sf->path, on_realpath) != 0) {
        uv_fs_req_cleanup(&sf->fs);
        sf->status = 500;
        sf_finish(sf);
    }
}

void
cc__static_serve(cc_ctx *ctx, cc_http_req *req, const cc__static_mount *m)
{
    const cc_allocator *a = req->msg.a ? req->msg.a : &ctx->a;
    const char *path = req->msg.path ? req->msg.path : "/";
    size_t cap = strlen(path) + 2;
    char *rel = cc__alloc(a, cap);
    if (!rel) {
        respond_error(req, 503);
        return;
    }
    ssize_t rl = cc__static_relpath(m->prefix, path, rel, cap);
    if (rl < 0) {
        cc__free(a, rel, cap);
        respond_error(req, 404);
        return;
    }
    sfile *sf = cc__calloc(a, 1, sizeof *sf);
    char *dir = cc__strdup(a, m->dir);
    if (!sf || !dir) {
        cc__free(a, rel, cap);
        cc__free_str(a, dir);
        cc__free(a, sf, sizeof *sf);
        respond_error(req, 503);
        return;
    }
    sf->ctx = ctx;
    sf->req = req;
    sf->a = a;
    sf->max_age_s = m->max_age_s;
    sf->cors = m->cors;
    sf->mime = cc__mime_type(rel);
    sf->dir = dir;
    sf->dir_len = strlen(dir);
    sf->fd = -1;
    sf->fs.data = sf;
    int rc = sf_set_path(sf, dir, "/", rel);
    cc__free(a, rel, cap);
    if (rc) {
        sf->status = 503;
        sf_finish(sf);
        return;
    }
    sf_realpath(sf);
}

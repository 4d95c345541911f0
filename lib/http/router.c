/*
 * lib/http/router.c - method + path routing for cc_server_route(): exact
 * paths, prefixes (a path ending in "/" then "*"), "*" for any method.
 * Routes are tried in the order they were added and the first match wins;
 * a path that matches only under other methods is a 405, no match at all
 * a 404.
 *
 * A prefix route for "/x/" matches "/x/" and everything below it, and also
 * "/x" itself (the directory without its slash). A GET route also answers
 * HEAD: the server then sends the headers without the body.
 */
#include "http_int.h"

void
cc__router_init(cc__router *r, const cc_allocator *a)
{
    memset(r, 0, sizeof *r);
    r->a = a ? a : cc__default_allocator();
}

void
cc__router_free(cc__router *r)
{
    for (size_t i = 0; i < r->n; i++) {
        cc__free_str(r->a, r->routes[i].method);
        cc__free_str(r->a, r->routes[i].path);
    }
    cc__free(r->a, r->routes, r->cap * sizeof *r->routes);
    r->routes = NULL;
    r->n = r->cap = 0;
}

/* An HTTP method is a token: visible ASCII without separators. */
static int
method_valid(const char *m)
{
    if (!*m)
        return 0;
    if (strcmp(m, "*") == 0)
        return 1;
    for (; *m; m++) {
        unsigned char c = (unsigned char)*m;
        if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", c))
            return 0;
    }
    return 1;
}

int
cc__router_add(cc__router *r, const char *method, const char *path,
               cc_http_cb cb, void *data)
{
    if (!r || !method || !path || !cb || path[0] != '/' ||
        !method_valid(method))
        return CC_EINVAL;
    size_t len = strlen(path);
    int prefix = len >= 2 && path[len - 1] == '*' && path[len - 2] == '/';
    if (prefix)
        len--; /* keep the '/' */
    else if (strchr(path, '*'))
        return CC_EINVAL; /* '*' only as the last segment */

    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        cc__route *rs =
            r->routes ? cc__realloc(r->a, r->routes, r->cap * sizeof *rs,
                                    cap * sizeof *rs)
                      : cc__alloc(r->a, cap * sizeof *rs);
        if (!rs)
            return CC_ENOMEM;
        r->routes = rs;
        r->cap = cap;
    }
    char *m = cc__strdup(r->a, method);
    char *p = cc__alloc(r->a, len + 1);
    if (!m || !p) {
        cc__free_str(r->a, m);
        cc__free(r->a, p, len + 1);
        return CC_ENOMEM;
    }
    memcpy(p, path, len);
    p[len] = 0;
    cc__route *rt = &r->routes[r->n++];
    rt->method = m;
    rt->path = p;
    rt->path_len = len;
    rt->is_prefix = prefix;
    rt->cb = cb;
    rt->data = data;
    return 0;
}

static int
path_matches(const cc__route *rt, const char *path)
{
    if (!rt->is_prefix)
        return strcmp(rt->path, path) == 0;
    if (strncmp(rt->path, path, rt->path_len) == 0)
        return 1;
    /* the "/x/" prefix also takes "/x"; the "/" prefix has nothing to
     * drop */
    return rt->path_len > 1 && strlen(path) == rt->path_len - 1 &&
           strncmp(rt->path, path, rt->path_len - 1) == 0;
}

static int
method_matches(const cc__route *rt, const char *method)
{
    return strcmp(rt->method, "*") == 0 || strcmp(rt->method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0);
}

const cc__route *
cc__router_match(const cc__router *r, const char *method, const char *path,
                 int *status)
{
    int seen_path = 0;
    if (method && path) {
        for (size_t i = 0; i < r->n; i++) {
            const cc__route *rt = &r->routes[i];
            if (!path_matches(rt, path))
                continue;
            if (method_matches(rt, method))
                return rt;
            seen_path = 1;
        }
    }
    if (status)
        *status = seen_path ? 405 : 404;
    return NULL;
}

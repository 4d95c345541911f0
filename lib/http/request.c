/*
 * lib/http/request.c - the public accessors of a request (server.h). The
 * request owns the parsed message; these only read it. Peer address and
 * responding live with the connection (lib/net/server.c).
 */
#include "http_int.h"

const char *
cc_http_req_method(const cc_http_req *req)
{
    if (!req || !req->msg.method_str)
        return "";
    return req->msg.method_str;
}

const char *
cc_http_req_path(const cc_http_req *req)
{
    if (!req || !req->msg.path)
        return "/";
    return req->msg.path;
}

const char *
cc_http_req_query(const cc_http_req *req)
{
    if (!req || !req->msg.query)
        return "";
    return req->msg.query;
}

int
cc_http_req_query_param(const cc_http_req *req, const char *name, char *out,
                        size_t cap)
{
    if (!req || !name || !out || !cap)
        return CC_EINVAL;
    return cc__http_query_get(req->msg.query ? req->msg.query : "", name, out,
                              cap);
}

const char *
cc_http_req_header(const cc_http_req *req, const char *name)
{
    if (!req)
        return NULL;
    return cc__http_msg_header(&req->msg, name);
}

const uint8_t *
cc_http_req_body(const cc_http_req *req, size_t *len)
{
    /* an empty body is "" rather than NULL, so callers may print it */
    static const uint8_t empty[1] = {0};
    if (!req || !req->msg.body) {
        if (len)
            *len = 0;
        return empty;
    }
    if (len)
        *len = req->msg.body_len;
    return req->msg.body;
}

void
cc_http_req_set_data(cc_http_req *req, void *data)
{
    if (req)
        req->data = data;
}

void *
cc_http_req_get_data(const cc_http_req *req)
{
    return req ? req->data : NULL;
}

cc_server *
cc_http_req_server(const cc_http_req *req)
{
    return req ? req->srv : NULL;
}

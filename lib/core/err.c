/* lib/core/err.c - cc_strerror and cc_err_name from CC_ERRNO_MAP. */
#include "internal.h"

const char *
cc_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define XX(name, val, msg) \
    case (val):            \
        return msg;
        CC_ERRNO_MAP(XX)
#undef XX
    default:
        return uv_strerror(err);
    }
}

const char *
cc_err_name(int err)
{
    switch (err) {
    case 0:
        return "CC_OK";
#define XX(name, val, msg) \
    case (val):            \
        return "CC_" #name;
        CC_ERRNO_MAP(XX)
#undef XX
    default:
        return uv_err_name(err);
    }
}

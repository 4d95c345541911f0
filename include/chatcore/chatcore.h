/*
 * chatcore/chatcore.h - umbrella header of libchatcore.
 *
 * Thread rule: one cc_ctx per uv_loop_t, one loop per thread; objects are
 * touched only from their ctx's thread; cc_ctx_post() is the one
 * thread-safe call. See common.h for errors, allocation and callbacks.
 */
#ifndef CHATCORE_H
#define CHATCORE_H

#include "version.h"
#include "common.h"
#include "config.h"
#include "server.h"
#include "ws.h"
#include "auth.h"
#include "store.h"
#include "chat.h"
#include "bus.h"

#endif

/*
 * examples/chatcore-server/webdir.h - where the built-in web pages are.
 */
#ifndef CHATCORE_SERVER_WEBDIR_H
#define CHATCORE_SERVER_WEBDIR_H

#include <stddef.h>

/* <exe>/../share/chatcore/web of an installed binary, then
 * CHATCORE_WEB_INSTALL, then the source tree's CHATCORE_WEB_SRC (a binary
 * run from its build tree): the first holding widget.js, copied to out;
 * "" when none. Call at startup (stat() on the loop thread). */
void cc_find_web_dir(char *out, size_t cap);

#endif

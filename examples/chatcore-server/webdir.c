/*
 * examples/chatcore-server/webdir.c - where the built-in web pages are
 * (shared by chatcore-server and chatcore-gateway).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "webdir.h"

/* The built-in pages: <exe>/../share/chatcore/web of an installed binary,
 * then the configured install directory, then the source tree's web/ for
 * a binary run from its build tree. Empty when none is there. */
void
cc_find_web_dir(char *out, size_t cap)
{
    char exe[4096];
    size_t n = sizeof(exe);
    const char *cands[3] = {NULL, CHATCORE_WEB_INSTALL, CHATCORE_WEB_SRC};
    char rel[4200];
    if (uv_exepath(exe, &n) == 0) {
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(rel, sizeof(rel), "%s/../share/chatcore/web", exe);
            cands[0] = rel;
        }
    }
    out[0] = '\0';
    for (int i = 0; i < 3; i++) {
        char idx[4300];
        struct stat st;
        if (!cands[i])
            continue;
        snprintf(idx, sizeof(idx), "%s/widget.js", cands[i]);
        if (stat(idx, &st) == 0 && S_ISREG(st.st_mode)) {
            snprintf(out, cap, "%s", cands[i]);
            return;
        }
    }
}

/*
 * A minimal program that uses an installed libchatcore the way an embedder
 * would: only <chatcore/chatcore.h>, linked through pkg-config or
 * find_package. tests/install/run.sh compares its output line by line.
 */
#include <chatcore/chatcore.h>
#include <stdio.h>

static void
on_close(void *obj, void *data)
{
    (void)obj;
    *(int *)data += 1;
}

int
main(void)
{
    uv_loop_t loop;
    cc_ctx *ctx = NULL;
    int closed = 0;
    int rc;

    if (uv_loop_init(&loop) != 0)
        return 2;
    rc = cc_ctx_new(&ctx, &loop, NULL);
    if (rc != 0) {
        printf("cc_ctx_new failed: %d\n", rc);
        return 1;
    }
    printf("loop %s\n", cc_ctx_loop(ctx) == &loop ? "same" : "different");
    cc_ctx_close(ctx, on_close, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&loop);

    printf("version %s\n", cc_version_string());
    printf("hex %s\n", cc_version() == CC_VERSION_HEX ? "match" : "mismatch");
    printf("EPROTO %d %s: %s\n", CC_EPROTO, cc_err_name(CC_EPROTO),
           cc_strerror(CC_EPROTO));
    printf("ctx closed %d, loop_close %d\n", closed, rc);
    return 0;
}

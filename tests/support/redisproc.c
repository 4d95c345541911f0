/*
 * tests/support/redisproc.c - redis-server processes for the tests of the
 * Redis adapter and the Redis store: the shared server's port from the
 * environment, private servers started and killed, a PING probe.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

int
cc_test_redis_env_port(void)
{
    const char *p = getenv("CC_REDIS_PORT");
    char buf[32] = "";
    if (!p || !*p) {
        const char *f = getenv("CC_REDIS_PORT_FILE");
        FILE *fp = f && *f ? fopen(f, "r") : NULL;
        if (fp) {
            if (!fgets(buf, sizeof buf, fp))
                buf[0] = '\0';
            fclose(fp);
        }
        p = buf;
    }
    int port = p && *p ? atoi(p) : 0;
    ck_assert_msg(port > 0 && port < 65536,
                  "no Redis server: set CC_REDIS_PORT (or "
                  "CC_REDIS_PORT_FILE), e.g. run through ctest or "
                  "tests/redis/run.sh exec <this binary>");
    return port;
}

int
cc_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* 1 when a PING on port gets +PONG (blocking; test code only) */
int
cc_test_redis_ping(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, "PING\r\n", 6) == 6) {
        char buf[64];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        /* a password-protected server answers -NOAUTH: still up */
        ok = n > 0 && (buf[0] == '+' || buf[0] == '-');
    }
    close(fd);
    return ok;
}

void
cc_test_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Start redis-server on port (no persistence, files in /tmp; extra: a
 * NULL-terminated list of further arguments, which override those: a
 * later option wins) and wait until it answers. The child dies with this
 * process. */
pid_t
cc_test_redis_spawn(int port, const char *const *extra)
{
    const char *bin = getenv("CC_REDIS_SERVER");
    if (!bin || !*bin)
        bin = "redis-server";
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    const char *argv[32] = {bin, "--port", ps, "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--dir",
                            "/tmp", "--loglevel", "warning"};
    int n = 13;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if (cc_test_redis_ping(port))
            return pid;
        int st;
        ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0,
                      "%s exited early (not installed? port taken?)", bin);
        cc_test_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ck_abort_msg("%s did not answer on port %d", bin, port);
    return -1;
}

void
cc_test_redis_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

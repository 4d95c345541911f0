/*
 * chatcore-kafka-mock - a throwaway Kafka cluster for tests and local runs.
 *
 * Starts librdkafka's mock cluster (rdkafka_mock.h): N brokers that speak
 * the real Kafka protocol on 127.0.0.1 TCP ports, with topics, idempotent
 * produce, consumer groups and committed offsets, all in memory. It runs in
 * a process of its own so that a test can stop its brokers while its
 * clients keep running, and so that the clients never share a librdkafka
 * instance with the cluster.
 *
 *   chatcore-kafka-mock [--brokers N] [--topic NAME:PARTITIONS[:RF]]...
 *                       [--verbose] [--help]
 *
 *   --brokers N   number of brokers, ids 1..N (default 3, at most 32)
 *   --topic T     create topic T (repeatable). RF defaults to min(3, N) and
 *                 must not exceed N. Without any --topic the chat topics are
 *                 created: chat.in:16 chat.out:16 chat.control:1 chat.dlq:4.
 *   --verbose     print librdkafka's log lines (default: errors only)
 *   --help        print this usage on stdout and exit 0
 *
 * When the cluster is ready it prints exactly one line on stdout:
 *
 *   bootstrap=127.0.0.1:PORT,127.0.0.1:PORT,...
 *
 * then reads commands on stdin, one a line, and answers each with `ok` or
 * `error: <why>` on stdout:
 *
 *   down <id|all>   close the broker's connections and refuse new ones
 *                   (no leader change: its partitions become unavailable)
 *   up <id|all>     accept connections again
 *   quit            exit
 *
 * It exits 0 on quit, on end of input (so a test that dies takes its
 * cluster with it) and on SIGTERM or SIGINT; 2 on a usage error, 1 when the
 * cluster cannot be created. All state is lost on exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BROKERS 32
#define MAX_TOPICS 64
#define LINE_MAX_LEN 256

typedef struct topic_spec {
    char name[200];
    int partitions;
    int rf; /* 0: default */
} topic_spec;

/* The signal handler's only way out of poll(): a self-pipe. */
static int sig_pipe[2] = {-1, -1};

static void
on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    if (write(sig_pipe[1], &c, 1) < 0) {
        /* nothing to do: the pipe is full, a wake-up is already pending */
    }
    errno = saved;
}

static int verbose;

static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (verbose || level <= 3)
        fprintf(stderr, "chatcore-kafka-mock: %s: %s\n", fac, buf);
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: chatcore-kafka-mock [--brokers N] "
            "[--topic NAME:PARTITIONS[:RF]]... [--verbose]\n"
            "  --brokers N   brokers 1..N (default 3, at most %d)\n"
            "  --topic T     create topic NAME with PARTITIONS partitions\n"
            "                and replication factor RF (default min(3, N));\n"
            "                repeatable, e.g. --topic chat.in:32 "
            "--topic chat.out:8\n"
            "                without --topic: chat.in:16 chat.out:16 "
            "chat.control:1\n"
            "                chat.dlq:4\n"
            "  --verbose     print librdkafka's log (default: errors only)\n"
            "Prints bootstrap=HOST:PORT,... when ready, then reads commands\n"
            "on stdin: down <id|all>, up <id|all>, quit.\n",
            MAX_BROKERS);
}

static int
parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* NAME:PARTITIONS[:RF] */
static int
parse_topic(const char *arg, topic_spec *t)
{
    const char *c1 = strchr(arg, ':');
    if (!c1 || c1 == arg || (size_t)(c1 - arg) >= sizeof t->name)
        return -1;
    memcpy(t->name, arg, (size_t)(c1 - arg));
    t->name[c1 - arg] = '\0';
    char num[32];
    const char *c2 = strchr(c1 + 1, ':');
    size_t n = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
    if (n == 0 || n >= sizeof num)
        return -1;
    memcpy(num, c1 + 1, n);
    num[n] = '\0';
    if (parse_int(num, 1, 100000, &t->partitions))
        return -1;
    t->rf = 0;
    if (c2 && parse_int(c2 + 1, 1, MAX_BROKERS, &t->rf))
        return -1;
    return 0;
}

static void
reply(const char *fmt, const char *arg)
{
    printf(fmt, arg);
    fputc('\n', stdout);
    fflush(stdout);
}

/* One command line; returns 1 on quit. */
static int
command(rd_kafka_mock_cluster_t *mc, int nbrokers, char *line)
{
    char verb[16], who[32], extra[2];
    int n = sscanf(line, "%15s %31s %1s", verb, who, extra);
    if (n <= 0)
        return 0; /* blank line: no answer */
    if (!strcmp(verb, "quit") && n == 1) {
        reply("ok", NULL);
        return 1;
    }
    int up = !strcmp(verb, "up");
    if (!up && strcmp(verb, "down")) {
        reply("error: unknown command '%s'", verb);
        return 0;
    }
    if (n != 2) {
        reply("error: usage: %s <broker_id|all>", verb);
        return 0;
    }
    int id;
    if (!strcmp(who, "all"))
        id = -1;
    else if (parse_int(who, 1, nbrokers, &id)) {
        reply("error: no broker '%s'", who);
        return 0;
    }
    rd_kafka_resp_err_t err = up ? rd_kafka_mock_broker_set_up(mc, id)
                                 : rd_kafka_mock_broker_set_down(mc, id);
    if (err)
        reply("error: %s", rd_kafka_err2str(err));
    else
        reply("ok", NULL);
    return 0;
}

int
main(int argc, char **argv)
{
    int nbrokers = 3;
    topic_spec topics[MAX_TOPICS];
    int ntopics = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
            if (parse_int(argv[++i], 1, MAX_BROKERS, &nbrokers)) {
                fprintf(stderr, "chatcore-kafka-mock: bad --brokers '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--topic") && i + 1 < argc) {
            if (ntopics == MAX_TOPICS ||
                parse_topic(argv[++i], &topics[ntopics])) {
                fprintf(stderr, "chatcore-kafka-mock: bad --topic '%s'\n",
                        argv[i]);
                return 2;
            }
            ntopics++;
        } else if (!strcmp(argv[i], "--verbose")) {
            verbose = 1;
        } else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (ntopics == 0) {
        static const topic_spec defaults[] = {
            {"chat.in", 16, 0},
            {"chat.out", 16, 0},
            {"chat.control", 1, 0},
            {"chat.dlq", 4, 0},
        };
        memcpy(topics, defaults, sizeof defaults);
        ntopics = (int)(sizeof defaults / sizeof defaults[0]);
    }
    int def_rf = nbrokers < 3 ? nbrokers : 3;
    for (int i = 0; i < ntopics; i++) {
        if (topics[i].rf == 0)
            topics[i].rf = def_rf;
        if (topics[i].rf > nbrokers) {
            fprintf(stderr,
                    "chatcore-kafka-mock: topic %s: RF %d > %d brokers\n",
                    topics[i].name, topics[i].rf, nbrokers);
            return 2;
        }
    }

    /* A broken stdout must end us with an error, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK)) {
        perror("chatcore-kafka-mock: pipe2");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    /* The cluster needs a client instance for its bookkeeping (logging,
     * timers); it has no bootstrap servers and never connects. */
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (rd_kafka_conf_set(conf, "client.id", "chatcore-kafka-mock", errstr,
                          sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "chatcore-kafka-mock: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk =
        rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "chatcore-kafka-mock: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (!mc) {
        fprintf(stderr, "chatcore-kafka-mock: cannot create the cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < ntopics; i++) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
            mc, topics[i].name, topics[i].partitions, topics[i].rf);
        if (err) {
            fprintf(stderr, "chatcore-kafka-mock: topic %s: %s\n",
                    topics[i].name, rd_kafka_err2str(err));
            rc = 1;
            goto out;
        }
    }

    printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    if (fflush(stdout)) {
        rc = 1;
        goto out;
    }

    char line[LINE_MAX_LEN];
    size_t len = 0;
    for (;;) {
        struct pollfd pf[2] = {{0, POLLIN, 0}, {sig_pipe[0], POLLIN, 0}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("chatcore-kafka-mock: poll");
            rc = 1;
            break;
        }
        if (pf[1].revents)
            break; /* SIGTERM/SIGINT: a clean exit */
        if (!pf[0].revents)
            continue;
        ssize_t n = read(0, line + len, sizeof line - 1 - len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            break;
        }
        if (n == 0)
            break; /* EOF: whoever drove us is gone */
        len += (size_t)n;
        line[len] = '\0';
        char *nl;
        int quit = 0;
        while (!quit && (nl = strchr(line, '\n'))) {
            *nl = '\0';
            quit = command(mc, nbrokers, line);
            size_t used = (size_t)(nl + 1 - line);
            memmove(line, nl + 1, len - used + 1);
            len -= used;
        }
        if (quit)
            break;
        if (len == sizeof line - 1) {
            reply("error: line too long", NULL);
            len = 0;
        }
    }

out:
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}

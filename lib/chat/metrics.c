/*
 * lib/chat/metrics.c - the engine's metrics in the Prometheus text format
 * (version 0.0.4): gauges computed from the model at scrape time,
 * counters kept on the hot paths, histograms for send->sent latency,
 * store commit latency and loop lag.
 */
#include <stdarg.h>
#include <stdio.h>

#include "chat_int.h"

static void
line(cc__jbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
line(cc__jbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        cc__jbuf_raw(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n
                                                     : sizeof(tmp) - 1);
}

static void
head(cc__jbuf *b, const char *name, const char *type, const char *help)
{
    line(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
hist(cc__jbuf *b, const char *name, const char *help, const uint64_t *h,
     double sum)
{
    head(b, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < CC__STORE_HIST_N - 1; i++) {
        cum += h[i];
        line(b, "%s_bucket{le=\"%g\"} %llu\n", name, cc__store_hist_bounds[i],
             (unsigned long long)cum);
    }
    cum += h[CC__STORE_HIST_N - 1];
    line(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
         (unsigned long long)cum, name, sum, name, (unsigned long long)cum);
}

int
cc__metrics_render(cc_chat *c, cc__jbuf *b)
{
    const cc__metrics *m = &c->m;
    head(b, "chatcore_connections", "gauge",
         "Open WebSocket connections by role.");
    line(b, "chatcore_connections{role=\"visitor\"} %d\n", c->nconns_role[1]);
    line(b, "chatcore_connections{role=\"agent\"} %d\n", c->nconns_role[2]);

    size_t by_state[6] = {0};
    head(b, "chatcore_queue_length", "gauge",
         "Sessions waiting in each tenant's queue.");
    size_t it = 0;
    for (cc__hnode *n = cc__map_next(&c->tenants, &it, NULL); n;
         n = cc__map_next(&c->tenants, &it, n)) {
        cc__tenant *t = CC__CONTAINER_OF(n, cc__tenant, hn);
        line(b, "chatcore_queue_length{tenant=\"%s\"} %zu\n", t->cfg.id,
             t->nqueue);
        size_t j = 0;
        for (cc__hnode *sn = cc__map_next(&t->sessions, &j, NULL); sn;
             sn = cc__map_next(&t->sessions, &j, sn)) {
            int st = CC__CONTAINER_OF(sn, cc__session, hn)->state;
            if (st >= 1 && st <= 5)
                by_state[st]++;
        }
    }
    head(b, "chatcore_sessions", "gauge", "Open sessions by state.");
    for (int st = CC__S_NEW; st <= CC__S_OFFLINE; st++)
        line(b, "chatcore_sessions{state=\"%s\"} %zu\n", cc__sstate_name(st),
             by_state[st]);
    head(b, "chatcore_sessions_closed_total", "counter",
         "Sessions closed since start.");
    line(b, "chatcore_sessions_closed_total %llu\n",
         (unsigned long long)m->sessions_closed);

    head(b, "chatcore_messages_total", "counter",
         "Chat messages: in = stored from clients, out = msg frames written "
         "(first transmissions).");
    line(b, "chatcore_messages_total{direction=\"in\"} %llu\n",
         (unsigned long long)m->msgs_in);
    line(b, "chatcore_messages_total{direction=\"out\"} %llu\n",
         (unsigned long long)m->msgs_out);
    head(b, "chatcore_acks_total", "counter", "ack frames received.");
    line(b, "chatcore_acks_total %llu\n", (unsigned long long)m->acks);
    head(b, "chatcore_retransmits_total", "counter",
         "msg frames sent again after the retransmit timeout.");
    line(b, "chatcore_retransmits_total %llu\n",
         (unsigned long long)m->retransmits);
    head(b, "chatcore_rate_limited_total", "counter",
         "Frames refused with rate_limited.");
    line(b, "chatcore_rate_limited_total %llu\n",
         (unsigned long long)m->rate_limited);
    head(b, "chatcore_upgrades_refused_total", "counter",
         "WebSocket upgrades refused (401, 403, 429, 503).");
    line(b, "chatcore_upgrades_refused_total %llu\n",
         (unsigned long long)m->upgrades_refused);
    head(b, "chatcore_frames_in_total", "counter", "Client frames received.");
    line(b, "chatcore_frames_in_total %llu\n",
         (unsigned long long)m->frames_in);
    head(b, "chatcore_errors_total", "counter", "error frames sent.");
    line(b, "chatcore_errors_total %llu\n", (unsigned long long)m->errors_out);

    hist(b, "chatcore_send_to_sent_seconds",
         "From a send frame to its sent reply (includes the commit).",
         m->sent_hist, m->sent_sum);
    cc__store_stats ss;
    cc__store_get_stats(c->st, &ss);
    hist(b, "chatcore_store_commit_seconds",
         "Duration of each store transaction commit.", ss.hist,
         ss.commit_seconds_sum);
    head(b, "chatcore_store_pending", "gauge", "Store operations queued.");
    line(b, "chatcore_store_pending %llu\n", (unsigned long long)ss.pending);
    head(b, "chatcore_store_commits_total", "counter", "Store commits.");
    line(b, "chatcore_store_commits_total %llu\n",
         (unsigned long long)ss.commits);
    head(b, "chatcore_store_failures_total", "counter",
         "Store transactions that failed.");
    line(b, "chatcore_store_failures_total %llu\n",
         (unsigned long long)ss.failures);
    hist(b, "chatcore_loop_lag_seconds",
         "How late the engine's 100 ms timer ran (event loop lag).",
         m->lag_hist, m->lag_sum);
    return b->oom ? CC_ENOMEM : 0;
}

#!/usr/bin/env python3
"""bench/summarize.py - turn the records bench/run.sh collected (one JSON
object per line: server, test, result) into the comparison table, the
ratios ours/lws and ours/node, the target checks, and the results JSON.

Run by run.sh; can be re-run on a saved results file:
    summarize.py --from-json bench/results/<date>.json
"""
import argparse
import datetime
import json
import os
import platform
import sys

OURS = ["ours1", "ours2"]
PEERS = ["lws", "node"]
ORDER = OURS + PEERS

# (key, label, unit, higher_is_better)
METRICS = []
for t, what in (("echo32", "echo 32 B"), ("echo1k", "echo 1 KiB")):
    METRICS += [
        (t + ".rate", what + " round trips/s", "1/s", True),
        (t + ".per_cpu", what + " round trips/CPU-s", "1/cpu-s", True),
        (t + ".cpu_util", what + " server CPU used", "cores", None),
        (t + ".client_util", what + " loadgen CPU used", "cores", None),
        (t + ".p50", what + " latency p50", "us", False),
        (t + ".p99", what + " latency p99", "us", False),
        (t + ".p999", what + " latency p99.9", "us", False),
    ]
for t, what in (("broadcast", "broadcast x4"), ("bcast32", "broadcast x32")):
    METRICS += [
        (t + ".rate", what + " deliveries/s (1,000 rcv)", "1/s", True),
        (t + ".per_cpu", what + " deliveries/CPU-s", "1/cpu-s", True),
        (t + ".cpu_util", what + " server CPU used", "cores", None),
        (t + ".client_util", what + " loadgen CPU used", "cores", None),
        (t + ".p50", what + " latency p50", "us", False),
        (t + ".p99", what + " latency p99", "us", False),
        (t + ".p999", what + " latency p99.9", "us", False),
    ]
METRICS += [
    ("connect.rate", "connect+close churn handshakes/s", "1/s", True),
    ("connect.per_cpu", "churn handshakes/CPU-s", "1/cpu-s", True),
    ("connect.p50", "connect latency p50", "us", False),
    ("connect.p99", "connect latency p99", "us", False),
    ("idle.held", "idle connections held", "conns", True),
    ("idle.errors", "idle errors", "count", False),
    ("idle.connect_rate", "idle: connections opened/s", "1/s", True),
    ("idle.connect_per_cpu", "idle: connections/CPU-s", "1/cpu-s", True),
    ("idle.bytes_per_conn", "server memory per idle conn", "bytes", False),
    ("idle.mib_per_1m", "projected memory for 1M conns", "MiB", False),
]


def loadgen_metrics(test, r):
    """Flatten one loadgen result into metric -> value."""
    out = {}
    if not isinstance(r, dict) or "skipped" in r:
        return out
    srv = r.get("server", {})
    out[test + ".rate"] = r.get("rate")
    cpu = srv.get("cpu_s", -1)
    if cpu is not None and cpu > 0:
        out[test + ".per_cpu"] = srv.get("rate_per_cpu_s")
        out[test + ".cpu_util"] = srv.get("cpu_util")
    if r.get("duration_s") and r.get("client_cpu_s") is not None:
        out[test + ".client_util"] = r["client_cpu_s"] / r["duration_s"]
    lat = r.get("latency_us", {})
    for q in ("p50", "p99", "p999"):
        if lat.get("count"):
            out[test + "." + q] = lat.get(q)
    errs = r.get("errors", {})
    out[test + ".errors"] = sum(errs.get(k, 0) for k in
                                ("connect", "dropped", "send", "bad_msg"))
    return out


def idle_metrics(r):
    out = {}
    if not isinstance(r, dict) or "skipped" in r:
        return out
    procs = [p for p in r.get("procs", []) if "skipped" not in p]
    held = sum(p.get("held", 0) for p in procs)
    opened = sum(p.get("connect", {}).get("opened", 0) for p in procs)
    errors = sum(p.get("errors", {}).get(k, 0) for p in procs
                 for k in ("connect", "dropped"))
    errors += r.get("conns", 0) - opened - sum(
        p.get("errors", {}).get("connect", 0) for p in procs)
    out["idle.held"] = held
    out["idle.errors"] = errors
    wall = r.get("connect_wall_s", 0)
    if wall > 0:
        out["idle.connect_rate"] = opened / wall
    ticks = r.get("server_conn_cpu_ticks", 0)
    if ticks > 0:
        out["idle.connect_per_cpu"] = opened / (ticks / r.get("clk_tck", 100))
    b, a = r.get("rss_kb_before", -1), r.get("rss_kb_after", -1)
    if held > 0 and b > 0 and a > 0:
        per = (a - b) * 1024.0 / held
        out["idle.bytes_per_conn"] = per
        out["idle.mib_per_1m"] = per * 1e6 / (1 << 20)
    return out


def collect(records):
    servers = {}
    raw = {}
    for rec in records:
        s, t, r = rec["server"], rec["test"], rec["result"]
        raw.setdefault(s, {})[t] = r
        m = servers.setdefault(s, {})
        if t == "idle":
            m.update(idle_metrics(r))
        else:
            m.update(loadgen_metrics(t, r))
    return servers, raw


def fmt(v, unit):
    if v is None:
        return "-"
    if unit in ("us",):
        return "%.0f" % v if v >= 100 else "%.1f" % v
    if unit == "cores":
        return "%.2f" % v
    if unit == "MiB":
        return "%.0f" % v
    if abs(v) >= 1e6:
        return "%.2fM" % (v / 1e6)
    if abs(v) >= 1e4:
        return "%.1fk" % (v / 1e3)
    if float(v).is_integer():
        return "%d" % v
    return "%.1f" % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def build_ratios(servers):
    out = {}
    for o in OURS:
        for p in PEERS:
            if o not in servers or p not in servers:
                continue
            key = "%s/%s" % (o, p)
            out[key] = {}
            for k, _, _, _ in METRICS:
                r = ratio(servers[o].get(k), servers[p].get(k))
                if r is not None:
                    out[key][k] = r
    return out


def check_targets(servers, mode):
    o = servers.get("ours1", {})
    lws = servers.get("lws", {})
    node = servers.get("node", {})
    t = []

    def add(name, value, goal, ok):
        t.append({"target": name, "value": value, "goal": goal,
                  "met": ok})

    for s in ("echo32", "echo1k"):
        r = ratio(o.get(s + ".per_cpu"), lws.get(s + ".per_cpu"))
        add("%s round trips/CPU-s vs lws" % s, r, ">= 5x",
            None if r is None else r >= 5)
        r = ratio(o.get(s + ".per_cpu"), node.get(s + ".per_cpu"))
        add("%s round trips/CPU-s vs node" % s, r, ">= 7x",
            None if r is None else r >= 7)
    for s_, what in (("broadcast", "x4 in flight"), ("bcast32", "x32 in flight")):
        r = ratio(o.get(s_ + ".rate"), lws.get(s_ + ".rate"))
        add("broadcast deliveries/s vs lws, %s" % what, r, ">= 10x",
            None if r is None else r >= 10)
        r = ratio(o.get(s_ + ".per_cpu"), lws.get(s_ + ".per_cpu"))
        add("broadcast deliveries/CPU-s vs lws, %s (reference)" % what, r,
            ">= 10x", None if r is None else r >= 10)
    b = o.get("idle.bytes_per_conn")
    add("server bytes per idle connection", b, "<= 1024",
        None if b is None else b <= 1024)
    held, errs = o.get("idle.held"), o.get("idle.errors")
    if mode == "quick":
        add("19,000 idle connections, no error", held,
            "19000 (full run only)", None)
    else:
        add("19,000 idle connections, no error", held, "19000, 0 errors",
            None if held is None else (held >= 19000 and errs == 0))
    m = o.get("idle.mib_per_1m")
    add("projected memory for 1M idle connections (MiB)", m, "info", None)
    return t


def print_table(servers, ratios, targets, meta):
    cols = [s for s in ORDER if s in servers]
    rcols = [k for k in ("ours1/lws", "ours1/node", "ours2/lws",
                         "ours2/node") if k in ratios]
    w0 = max(len(l) for _, l, _, _ in METRICS) + 2
    head = "%-*s %-8s" % (w0, "metric", "unit")
    head += "".join("%10s" % c for c in cols)
    head += "".join("%12s" % c for c in rcols)
    print()
    print("libchatcore benchmark (%s run, %s, %d s)" %
          (meta["mode"], meta["date"], meta["elapsed_s"]))
    print("ours1/ours2 = examples/echo-server --threads 1/2; lws = "
          "libwebsockets %s; node = ws %s on node %s" %
          (meta.get("lws_version", "?"), meta.get("ws_version", "?"),
           meta.get("node_version", "?")))
    print("ratios are ours/peer; for latency and memory lower is better, "
          "so a ratio below 1 is ours ahead")
    print()
    print(head)
    print("-" * len(head))
    for k, label, unit, _ in METRICS:
        if not any(k in servers[c] for c in cols):
            continue
        line = "%-*s %-8s" % (w0, label, unit)
        line += "".join("%10s" % fmt(servers[c].get(k), unit) for c in cols)
        for rc in rcols:
            r = ratios[rc].get(k)
            line += "%12s" % ("-" if r is None else "%.2fx" % r)
        print(line)
    print()
    print("targets (ours1):")
    for t in targets:
        v = t["value"]
        vs = "-" if v is None else ("%.2f" % v)
        st = {True: "MET", False: "NOT MET", None: "n/a"}[t["met"]]
        print("  %-52s %12s  goal %-22s %s" % (t["target"], vs, t["goal"], st))
    errs = []
    for s in cols:
        for k, v in servers[s].items():
            if k.endswith(".errors") and v:
                errs.append("%s %s=%d" % (s, k, v))
    if errs:
        print()
        print("errors: " + ", ".join(errs))


def versions():
    v = {}
    try:
        import subprocess
        v["lws_version"] = subprocess.run(
            ["pkg-config", "--modversion", "libwebsockets"],
            capture_output=True, text=True).stdout.strip().rstrip("-")
        v["node_version"] = subprocess.run(
            ["node", "--version"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        pass
    pj = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "node_modules", "ws", "package.json")
    try:
        with open(pj) as f:
            v["ws_version"] = json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        pass
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results")
    ap.add_argument("--from-json")
    ap.add_argument("--out")
    ap.add_argument("--mode", default="full")
    ap.add_argument("--elapsed", type=int, default=0)
    ap.add_argument("--params", default="")
    a = ap.parse_args()

    if a.from_json:
        with open(a.from_json) as f:
            doc = json.load(f)
        servers, raw = collect(doc["records"])
        meta = doc["meta"]
    else:
        records = []
        with open(a.results) as f:
            for line in f:
                line = line.strip()
                if line:
                    records.append(json.loads(line))
        servers, raw = collect(records)
        meta = {
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "mode": a.mode,
            "elapsed_s": a.elapsed,
            "params": dict(p.split("=", 1) for p in a.params.split() if "="
                           in p),
            "host": {"machine": platform.machine(),
                     "kernel": platform.release(),
                     "cpus": os.cpu_count()},
        }
        meta.update(versions())
        doc = {"meta": meta, "records": records}
    ratios = build_ratios(servers)
    targets = check_targets(servers, meta["mode"])
    doc["summary"] = servers
    doc["ratios"] = ratios
    doc["targets"] = targets
    print_table(servers, ratios, targets, meta)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

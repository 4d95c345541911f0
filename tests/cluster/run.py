#!/usr/bin/python3
"""
tests/cluster/run.py - the chat flow across a distributed-mode cluster
(docs/distributed.md): two gateways, the session tier, Redis and the mock
Kafka, started by scripts/cluster.sh.

    /usr/bin/python3 tests/cluster/run.py --build BUILD_DIR [--keep]

Scenarios (each on its own tenant):
  full_flow   visitor on gateway 1, agent on gateway 2: queue, accept,
              messages both ways, acks, close
  race        10 agents, 5 on each gateway, accept at once: exactly one
              `accepted`, nine `already_taken`
  order       1,000 messages from the visitor reach the agent on the other
              gateway with seq 1..1000, once each, in order
Exits 1 on any failure.
"""
import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "chat"))
sys.dont_write_bytecode = True

import harness  # noqa: E402
from harness import Client, Server, check, eq  # noqa: E402


class Gateway(Server):
    """A running gateway of the cluster (started by cluster.sh)."""

    def __init__(self, port, key):
        Server.binary = Server.binary or "cluster"
        super().__init__(name="gw-%d" % port)
        self.port = port
        self.admin_key = key


async def full_flow(g1, g2):
    t = await g1.new_tenant()
    aid = await t.add_agent()
    await asyncio.sleep(0.5)       # the agent reaches its owner's model
    vid, vtok = t.visitor_token()
    v = await Client.open(g1.port, vtok, name="visitor@gw1")
    eq(v.hello.get("node"), "gw-1", "visitor hello node")
    a = await Client.open(g2.port, t.agent_token(aid), name="agent@gw2")
    eq(a.hello.get("node"), "gw-2", "agent hello node")
    s = v.hello["session"]
    sent = await v.send_msg(s, "hello from gw1")
    eq(sent.get("seq"), 1, "first sent seq")
    q = await a.recv_where(lambda f: f.get("type") == "queue" and
                           f.get("waiting"), timeout=10, what="queue")
    eq(q["waiting"][0]["session"], s, "queue item")
    acc = await a.accept(s)
    eq(acc.get("last_seq"), 1, "accepted last_seq")
    await v.recv_type("session_accepted", session=s, timeout=10)
    sent = await a.send_msg(s, "hello from gw2")
    eq(sent.get("seq"), 2, "agent sent seq")
    m = await v.recv_type("msg", session=s, timeout=10)
    eq(m.get("seq"), 2, "visitor got seq 2")
    eq(m.get("body"), {"text": "hello from gw2"}, "body")
    await v.ack(s, 2)
    await v.send({"type": "close", "session": s, "reason": "done"})
    cl = await a.recv_type("session_closed", session=s, timeout=10)
    eq(cl.get("reason"), "done", "close reason")
    await v.close()
    await a.close()


async def race(g1, g2):
    t = await g1.new_tenant()
    aids = await t.add_agents(10)
    await asyncio.sleep(0.5)
    agents = []
    for i, aid in enumerate(aids):
        gw = g1 if i % 2 == 0 else g2
        agents.append(await Client.open(gw.port, t.agent_token(aid),
                                        name=aid))
    vid, vtok = t.visitor_token()
    v = await Client.open(g1.port, vtok, name="visitor")
    s = v.hello["session"]
    await v.send_msg(s, "who takes me?")
    for a in agents:
        await a.recv_where(lambda f: f.get("type") == "queue" and
                           f.get("waiting"), timeout=10, what="queue")
    for i, a in enumerate(agents):
        await a.send({"type": "accept", "session": s, "ref": "r%d" % i})
    won = lost = 0
    for i, a in enumerate(agents):
        f = await a.recv_where(
            lambda f: f.get("type") == "accepted" or
            (f.get("type") == "error" and f.get("ref") == "r%d" % i),
            timeout=10, what="accept outcome")
        if f["type"] == "accepted":
            won += 1
        else:
            eq(f.get("code"), "already_taken", "loser's error")
            lost += 1
    eq((won, lost), (1, 9), "one winner, nine already_taken")
    for c in agents + [v]:
        await c.close()


async def order(g1, g2, n=1000):
    t = await g1.new_tenant(rate_limits={"messages_per_s": 100000,
                                         "burst": 100000,
                                         "tenant_messages_per_s": 100000})
    aid = await t.add_agent()
    await asyncio.sleep(0.5)
    vid, vtok = t.visitor_token()
    v = await Client.open(g1.port, vtok, name="visitor")
    a = await Client.open(g2.port, t.agent_token(aid), name="agent",
                          auto_ack=True)
    s = v.hello["session"]
    await v.send_msg(s, "start")
    await a.accept(s)
    for i in range(n):
        await v.send_msg(s, "m%d" % i, wait=False)
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < n and time.monotonic() < deadline:
        f = await a.recv_type("msg", session=s, timeout=30)
        seen.append(f["seq"])
    eq(seen, list(range(2, n + 2)), "seq 2..%d once each, in order" % (n + 1))
    await v.close()
    await a.close()


async def main_async(g1, g2):
    failed = 0
    for name, fn in (("full_flow", full_flow), ("race", race),
                     ("order", order)):
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(fn(g1, g2), 120)
            print("PASS %s (%.1f s)" % (name, time.monotonic() - t0),
                  flush=True)
        except Exception as e:   # noqa: BLE001 - report every failure
            failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
    return failed


def free_pair():
    """Two consecutive free TCP ports on 127.0.0.1."""
    import random
    import socket
    for _ in range(200):
        p = random.randint(20000, 59000)
        socks = []
        try:
            for q in (p, p + 1):
                so = socket.socket()
                so.bind(("127.0.0.1", q))
                socks.append(so)
            return p
        except OSError:
            continue
        finally:
            for so in socks:
                so.close()
    raise RuntimeError("no two free ports")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="chatcore-cluster-")
    script = os.path.join(ROOT, "scripts", "cluster.sh")
    port = free_pair()
    r = subprocess.run(["bash", script, "start", d, "--build", args.build,
                        "--port", str(port)])
    failed = 1
    try:
        if r.returncode == 0:
            env = dict(l.strip().split("=", 1) for l in
                       open(os.path.join(d, "cluster.env")) if "=" in l)
            g1 = Gateway(port, env["ADMIN_KEY"])
            g2 = Gateway(port + 1, env["ADMIN_KEY"])
            failed = asyncio.run(main_async(g1, g2))
        else:
            print("FAIL cluster did not start (logs in %s)" % d)
    finally:
        subprocess.run(["bash", script, "stop", d])
        if failed or args.keep:
            print("logs kept in %s" % d)
        else:
            subprocess.run(["rm", "-rf", d])
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

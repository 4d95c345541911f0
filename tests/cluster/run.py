#!/usr/bin/python3
"""
tests/cluster/run.py - the chat flow across a distributed-mode cluster
(docs/distributed.md): two gateways, the session tier, Redis and the mock
Kafka, started by scripts/cluster.sh.

    /usr/bin/python3 tests/cluster/run.py --build BUILD_DIR [--keep]

The cluster has two gateways (gw-1, gw-2) and two services (svc-1,
svc-2). Scenarios (each on its own tenant, in this order: the failures
come after the steady-state ones, the service kill last):
  full_flow      visitor on gateway 1, agent on gateway 2: queue, accept,
                 messages both ways, acks, close
  race           10 agents, 5 on each gateway, accept at once: exactly one
                 `accepted`, nine `already_taken`
  order          1,000 messages from the visitor reach the agent on the
                 other gateway with seq 2..1001, once each, in order
  fresh_elsewhere  a tenant and an agent created through gw-1 connect to
                 gw-2 at once: accepted (gw-2 loads them from the store)
  gateway_kill   kill -9 of the visitor's gateway with sends in flight: the
                 visitor resumes on the other gateway; nothing lost, no
                 message stored twice; gw-1 restarted after
  gateway_drain  SIGTERM of the visitor's gateway: `reconnect` and 1012,
                 the visitor resumes on gw-2; gw-1 restarted after
  redis_restart  kill -9 of redis-server: /readyz 503 on both gateways,
                 `sent` waits; after the restart every message arrives
                 once and /readyz is 200 again
  kafka_down     every broker down: /readyz 503, `sent` waits; back up:
                 everything arrives once. Then one broker down and up
                 with traffic both ways: nothing lost or doubled
  service_kill   kill -9 of the service that owns the tenant: the other
                 service takes its partitions, the clients are moved
                 (1012) and resume; the conversation goes on, nothing
                 lost or doubled
Every check of "nothing lost or doubled" reads both sides' frames and the
stored history (`sync`): each message once, seq 1..N without a gap.
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
from harness import Client, Server, check, eq, http_req  # noqa: E402
from harness import Closed, TestFailure, rand_hex  # noqa: E402

SCRIPT = os.path.join(ROOT, "scripts", "cluster.sh")
N_IN = 8          # chat.in partitions (cluster.sh)


def kafka_hash(key):
    """cc_kafka_hash: murmur2 as Kafka's default partitioner uses it."""
    m = 0x5bd1e995
    data = key.encode()
    n = len(data)
    h = (0x9747b28c ^ n) & 0xffffffff
    i = 0
    while n - i >= 4:
        w = int.from_bytes(data[i:i + 4], "little")
        w = (w * m) & 0xffffffff
        w ^= w >> 24
        w = (w * m) & 0xffffffff
        h = (h * m) & 0xffffffff
        h ^= w
        i += 4
    rest = n - i
    if rest == 3:
        h ^= data[i + 2] << 16
    if rest >= 2:
        h ^= data[i + 1] << 8
    if rest >= 1:
        h ^= data[i]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h & 0x7fffffff


class Cluster:
    """The processes of the cluster, through scripts/cluster.sh."""

    def __init__(self, d):
        self.d = d
        self.env = dict(l.strip().split("=", 1) for l in
                        open(os.path.join(d, "cluster.env")) if "=" in l)
        ports = self.env["GATEWAY_PORTS"].strip('"').split()
        self.ports = [int(p) for p in ports]

    def sh(self, *args):
        r = subprocess.run(["bash", SCRIPT, args[0], self.d] + list(args[1:]),
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "cluster.sh %s: %s", " ".join(args),
              r.stderr.strip())

    async def ash(self, *args):
        await asyncio.get_running_loop().run_in_executor(None, self.sh,
                                                         *args)

    def alive(self, name):
        try:
            pid = int(open(os.path.join(self.d, name + ".pid")).read())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        # a zombie is not alive: cluster.sh's children are reparented
        try:
            st = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1]
            return st.split()[0] != "Z"
        except OSError:
            return False

    async def wait_exit(self, name, timeout):
        deadline = time.monotonic() + timeout
        while self.alive(name):
            check(time.monotonic() < deadline, "%s still running after "
                  "%.0f s", name, timeout)
            await asyncio.sleep(0.1)

    def log(self, name):
        with open(os.path.join(self.d, name + ".log"), errors="replace") as f:
            return f.read()

    def owned(self, svc):
        """chat.in partitions svc owns now, from its log lines."""
        import json
        own = set()
        for line in self.log(svc).splitlines():
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if o.get("topic") != "chat.in":
                continue
            if o.get("msg") == "partition owned":
                own.add(o["partition"])
            elif o.get("msg") in ("partition revoked", "partition lost"):
                own.discard(o["partition"])
        return own

    async def readyz(self, port):
        r = await asyncio.get_running_loop().run_in_executor(
            None, lambda: http_req(port, "GET", "/readyz", timeout=3))
        return r.status

    async def wait_readyz(self, want, timeout, ports=None):
        deadline = time.monotonic() + timeout
        got = {}
        while True:
            for p in ports or self.ports:
                try:
                    got[p] = await self.readyz(p)
                except OSError as e:
                    got[p] = repr(e)
            if all(v == want for v in got.values()):
                return
            check(time.monotonic() < deadline, "/readyz: expected %d from "
                  "every gateway within %.0f s, got %r", want, timeout, got)
            await asyncio.sleep(0.2)


class Peer:
    """One chat user across connections, as a careful client behaves:
    frames are read by seq; every message without a `sent` is sent again
    with the same cid after a reconnect; a closed connection is replaced
    by one to the next gateway that answers, resuming with
    session=&last_seq= (the highest seq held without a gap)."""

    def __init__(self, name, token, ports, session=None):
        self.name = name
        self.token = token
        self.ports = list(ports)
        self.session = session
        self.got = []          # seqs of msg frames, in arrival order
        self.texts = {}        # seq -> text received
        self.mine = {}         # seq -> text, own messages (by `sent`)
        self.pending = {}      # cid -> text, no `sent` yet
        self.c = None
        self.codes = []        # close codes of replaced connections
        self.conns = 0
        self.frames = []       # every frame of every connection
        self.resent = 0        # sends repeated after a reconnect

    def absorb(self):
        if self.c is None:
            return
        for f in self.c.take_all("msg"):
            if f.get("session") != self.session:
                continue
            self.got.append(f["seq"])
            self.texts[f["seq"]] = (f.get("body") or {}).get("text")
        for f in self.c.take_all("sent"):
            text = self.pending.pop(f.get("cid"), None)
            if text is not None:
                self.mine[f["seq"]] = text

    def last_seq(self):
        known = set(self.texts) | set(self.mine)
        n = 0
        while n + 1 in known:
            n += 1
        return n

    async def connect(self, timeout=20.0):
        self.absorb()
        if self.c is not None:
            self.frames += [f for _, f in self.c.frames]
            self.codes.append(self.c.close_code)
            await self.c.close()
        deadline = time.monotonic() + timeout
        err = None
        while time.monotonic() < deadline:
            for port in self.ports:
                q = None
                if self.session:
                    q = {"session": self.session,
                         "last_seq": self.last_seq()}
                try:
                    c = await Client.open(port, self.token, query=q,
                                          auto_ack=True, timeout=3,
                                          name="%s#%d" % (self.name,
                                                          self.conns))
                except Exception as e:  # noqa: BLE001 - try the next one
                    err = e
                    continue
                self.c = c
                self.conns += 1
                self.session = self.session or c.hello.get("session")
                for cid, text in list(self.pending.items()):
                    self.resent += 1
                    await self.send_frame(cid, text)
                return c
            await asyncio.sleep(0.3)
        raise TestFailure("%s: no gateway took the connection within %.0f s"
                          " (last error %r)" % (self.name, timeout, err))

    async def send_frame(self, cid, text):
        try:
            await self.c.send({"type": "send", "session": self.session,
                               "cid": cid, "kind": "text",
                               "body": {"text": text}})
        except Exception:   # noqa: BLE001 - closed: sent again later
            pass

    async def say(self, text, wait=True):
        cid = "%s-%s" % (self.name, rand_hex(4))
        self.pending[cid] = text
        await self.send_frame(cid, text)
        if wait:
            await self.until(lambda: cid not in self.pending, 15,
                             "sent for %r" % text)
        return cid

    async def until(self, cond, timeout, what):
        """Wait for cond(), reconnecting whenever the connection closes."""
        deadline = time.monotonic() + timeout
        while True:
            self.absorb()
            if cond():
                return
            check(time.monotonic() < deadline, "%s: no %s within %.0f s "
                  "(pending %r, %d conns, codes %r)", self.name, what,
                  timeout, list(self.pending.values()), self.conns,
                  self.codes)
            if self.c.closed.is_set():
                await self.connect()
                continue
            self.c._new.clear()
            try:
                await asyncio.wait_for(self.c._new.wait(), 0.2)
            except asyncio.TimeoutError:
                pass

    def all_frames(self):
        return self.frames + ([f for _, f in self.c.frames] if self.c
                              else [])

    async def close(self):
        if self.c is not None:
            await self.c.close()


async def settle(v, a, timeout=40):
    """Both peers reconnect as needed until every message of each side
    has its `sent` and has reached the other side."""
    deadline = time.monotonic() + timeout

    def done():
        return (not v.pending and not a.pending and
                set(a.mine) <= set(v.texts) and set(v.mine) <= set(a.texts))

    while True:
        left = deadline - time.monotonic()
        check(left > 0, "not settled within %d s: visitor pending %r, agent "
              "pending %r, visitor lacks %r, agent lacks %r", timeout,
              list(v.pending.values()), list(a.pending.values()),
              sorted(set(a.mine) - set(v.texts)),
              sorted(set(v.mine) - set(a.texts)))
        # each side is driven in turn; a side that is done only keeps its
        # connection alive
        await v.until(lambda: done() or (not v.pending and
                                         set(a.mine) <= set(v.texts)),
                      left, "visitor settled")
        await a.until(lambda: done() or (not a.pending and
                                         set(v.mine) <= set(a.texts)),
                      max(deadline - time.monotonic(), 0.1), "agent settled")
        v.absorb()
        a.absorb()
        if done():
            return


async def check_once(v, a):
    """Nothing lost or doubled: the stored history is seq 1..N, every
    message either side had `sent` for is in it once with its text, and
    each side received each of the other's messages with the same text."""
    for seq, text in a.mine.items():
        eq(v.texts.get(seq), text, "visitor got agent's seq %d" % seq)
    for seq, text in v.mine.items():
        eq(a.texts.get(seq), text, "agent got visitor's seq %d" % seq)
    ref = "sync-" + rand_hex(3)
    await a.c.send({"type": "sync", "session": a.session, "after": 0,
                    "limit": 200, "ref": ref})
    h = await a.c.recv_type("history", timeout=10, session=a.session)
    msgs = h.get("messages") or []
    seqs = [m["seq"] for m in msgs]
    eq(seqs, list(range(1, len(seqs) + 1)), "stored seqs")
    texts = [(m.get("body") or {}).get("text") for m in msgs
             if m.get("kind") == "text"]
    dup = [t for t in set(texts) if texts.count(t) > 1]
    eq(dup, [], "messages stored twice")
    mine = set(v.mine.values()) | set(a.mine.values())
    eq(sorted(mine - set(texts)), [], "sent but not stored")
    for p in (v, a):
        NOTES.append("%s: %d conns, closes %r, %d re-sent, %d received"
                     % (p.name, p.conns, p.codes, p.resent, len(p.got)))
    NOTES.append("%d stored" % len(msgs))
    return len(msgs)


async def goes_on(v, a):
    """After a failure: one more message each way, both sides and the
    stored history checked, both clients closed. Returns how many
    messages are stored."""
    await v.say("v-after")
    await a.say("a-after")
    await settle(v, a)
    n = await check_once(v, a)
    await v.close()
    await a.close()
    return n


async def active_pair(cl, t, vport, aport, aid=None):
    """A visitor on vport, an agent on aport, in an active session with a
    first exchange; both are Peers that fail over to the other gateway."""
    aid = aid or await t.add_agent()
    await asyncio.sleep(0.5)
    vid, vtok = t.visitor_token()
    other = [p for p in cl.ports if p != vport]
    v = Peer("v", vtok, [vport] + other)
    await v.connect()
    a = Peer("a", t.agent_token(aid), [aport] + [p for p in cl.ports
                                                 if p != aport])
    await a.connect()
    await v.say("hello")
    acc = await a.c.accept(v.session)
    a.session = v.session
    for m in acc.get("history") or []:
        a.texts[m["seq"]] = (m.get("body") or {}).get("text")
    await v.c.recv_type("session_accepted", session=v.session, timeout=10)
    for i in range(3):
        await v.say("v-pre-%d" % i)
        await a.say("a-pre-%d" % i)
    await settle(v, a)
    return v, a


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


async def fresh_elsewhere(g1, g2, n=5):
    """A tenant and an agent created through gw-1 are used through gw-2 at
    once (before chat.control has told gw-2): gw-2 loads them from the
    store instead of answering 401 or 404. The WebSocket upgrades, then
    the HTTP API: each round starts with another call, since only the first
    call of a round finds gw-2 without the tenant."""
    for i in range(n):
        t = await g1.new_tenant()
        vid, vtok = t.visitor_token()
        v = await Client.open(g2.port, vtok, name="visitor%d" % i)
        aid = await t.add_agent()
        a = await Client.open(g2.port, t.agent_token(aid), name="agent%d" % i)
        eq(a.hello.get("type"), "hello", "agent hello")
        await v.close()
        await a.close()

    async def visitor_token(t, aid):
        r = await g2.ahttp("POST", "/v1/auth/visitor", {"tenant": t.id})
        eq(r.status, 200, "gw-2 visitor token for a fresh tenant: %r"
           % r.body[:200])

    async def agent_login(t, aid):
        r = await g2.ahttp("POST", "/v1/auth/agent",
                           {"tenant": t.id, "agent": aid,
                            "password": t.passwords[aid]})
        eq(r.status, 200, "gw-2 login of a fresh agent: %r" % r.body[:200])

    async def agent_get(t, aid):
        r = await g2.admin("GET", "/v1/tenants/%s/agents/%s" % (t.id, aid))
        eq(r.status, 200, "gw-2 GET of a fresh agent: %r" % r.body[:200])

    async def sessions(t, aid):
        r = await g2.ahttp("GET", "/v1/sessions",
                           token=t.token("adm", "admin"))
        eq(r.status, 200, "gw-2 sessions of a fresh tenant: %r"
           % r.body[:200])

    calls = [visitor_token, agent_login, agent_get, sessions]
    for i in range(2 * len(calls)):
        t = await g1.new_tenant()
        aid = await t.add_agent()
        first = calls[i % len(calls)]
        await first(t, aid)
        for c in calls:
            if c is not first:
                await c(t, aid)
    # a tenant that exists nowhere is still 404 (after one reload)
    r = await g2.ahttp("POST", "/v1/auth/visitor", {"tenant": "t_nowhere"})
    eq(r.status, 404, "gw-2 visitor token for no tenant")


async def gateway_kill(cl, g1, g2):
    t = await g1.new_tenant()
    v, a = await active_pair(cl, t, g1.port, g2.port)
    for i in range(5):
        await v.say("v-burst-%d" % i, wait=False)
    await cl.ash("signal", "gw-1", "KILL")
    for i in range(3):
        await a.say("a-gap-%d" % i)
    await settle(v, a)
    check(v.conns >= 2, "the visitor did not reconnect")
    eq(v.c.hello.get("node"), "gw-2", "visitor's new gateway")
    eq(v.c.hello.get("resumed"), True, "hello resumed")
    n = await goes_on(v, a)
    check(n >= 17, "only %d messages stored", n)
    await cl.ash("restart", "gw-1")


async def gateway_drain(cl, g1, g2):
    t = await g1.new_tenant()
    v, a = await active_pair(cl, t, g1.port, g2.port)
    old = v.c
    await cl.ash("signal", "gw-1", "TERM")
    f = await old.recv_type("reconnect", timeout=10)
    check(isinstance(f.get("after_ms"), int), "reconnect after_ms: %r", f)
    eq(await old.wait_closed(15), 1012, "drain close code")
    for i in range(3):
        await a.say("a-gap-%d" % i)
    await settle(v, a)
    eq(v.c.hello.get("node"), "gw-2", "visitor's new gateway")
    await v.say("v-after")
    await settle(v, a)
    await check_once(v, a)
    await v.close()
    await a.close()
    await cl.wait_exit("gw-1", 30)
    await cl.ash("restart", "gw-1")


async def sent_waits(cl, v, a, what):
    """With `what` away: /readyz 503 on every gateway, and four sends
    (both sides) get no `sent` for 1.5 s."""
    await cl.wait_readyz(503, 10)
    for i in range(3):
        await v.say("v-down-%d" % i, wait=False)
    await a.say("a-down-0", wait=False)
    await asyncio.sleep(1.5)
    v.absorb()
    a.absorb()
    eq(len(v.pending) + len(a.pending), 4, "`sent` while %s is down" % what)


async def redis_restart(cl, g1, g2):
    t = await g1.new_tenant()
    v, a = await active_pair(cl, t, g1.port, g2.port)
    await cl.ash("signal", "redis", "KILL")
    await sent_waits(cl, v, a, "Redis")
    await cl.ash("restart", "redis")
    await settle(v, a)
    await cl.wait_readyz(200, 15)
    await goes_on(v, a)


async def kafka_down(cl, g1, g2):
    t = await g1.new_tenant()
    v, a = await active_pair(cl, t, g1.port, g2.port)
    await cl.ash("kafka", "down", "all")
    await sent_waits(cl, v, a, "Kafka")
    await cl.ash("kafka", "up", "all")
    await settle(v, a)
    await cl.wait_readyz(200, 15)
    # one broker: its partitions stop until it is back, the rest go on
    for b in ("1", "2"):
        await cl.ash("kafka", "down", b)
        for i in range(3):
            await v.say("v-b%s-%d" % (b, i), wait=False)
            await a.say("a-b%s-%d" % (b, i), wait=False)
        await asyncio.sleep(1.0)
        await cl.ash("kafka", "up", b)
        await settle(v, a)
    await check_once(v, a)
    await v.close()
    await a.close()


async def service_kill(cl, g1, g2):
    # kafka_down may have left a rebalance going: wait until it settled
    await settled_group(cl)
    own1, own2 = cl.owned("svc-1"), cl.owned("svc-2")
    check(own1 and own2 and not own1 & own2, "partitions not split: "
          "svc-1 %r, svc-2 %r", own1, own2)
    for _ in range(1000):
        tid = "t" + rand_hex(6)
        if kafka_hash(tid) % N_IN in own1:
            break
    part = kafka_hash(tid) % N_IN
    t = await g1.new_tenant(tid=tid)
    v, a = await active_pair(cl, t, g1.port, g2.port)
    await cl.ash("signal", "svc-1", "KILL")
    for i in range(3):
        await v.say("v-gap-%d" % i, wait=False)
        await a.say("a-gap-%d" % i, wait=False)
    await settle(v, a, timeout=60)
    check(part in cl.owned("svc-2"), "svc-2 does not own partition %d", part)
    await goes_on(v, a)


async def settled_group(cl, timeout=40):
    """Wait until svc-1 and svc-2 split chat.in's partitions between
    them (each owns some, together all, none twice)."""
    deadline = time.monotonic() + timeout
    while True:
        o1, o2 = cl.owned("svc-1"), cl.owned("svc-2")
        if o1 and o2 and not o1 & o2 and o1 | o2 == set(range(N_IN)):
            return
        check(time.monotonic() < deadline, "the group did not settle: "
              "svc-1 %r, svc-2 %r", o1, o2)
        await asyncio.sleep(0.2)


async def main_async(cl, g1, g2):
    failed = 0
    await settled_group(cl)
    for name, fn in (("full_flow", full_flow), ("race", race),
                     ("order", order), ("fresh_elsewhere", fresh_elsewhere),
                     ("gateway_kill", gateway_kill),
                     ("gateway_drain", gateway_drain),
                     ("redis_restart", redis_restart),
                     ("kafka_down", kafka_down),
                     ("service_kill", service_kill)):
        if ONLY and name not in ONLY:
            continue
        t0 = time.monotonic()
        del NOTES[:]
        try:
            if fn in (full_flow, race, order, fresh_elsewhere):
                await asyncio.wait_for(fn(g1, g2), 120)
            else:
                await asyncio.wait_for(fn(cl, g1, g2), 150)
            print("PASS %s (%.1f s)%s" % (name, time.monotonic() - t0,
                                          "".join("\n  " + n for n in NOTES)),
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


ONLY = []
NOTES = []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only", action="append", default=[],
                    help="run only this scenario (repeatable)")
    args = ap.parse_args()
    ONLY.extend(args.only)
    d = tempfile.mkdtemp(prefix="chatcore-cluster-")
    script = SCRIPT
    port = free_pair()
    r = subprocess.run(["bash", script, "start", d, "--build", args.build,
                        "--port", str(port), "--services", "2"])
    failed = 1
    try:
        if r.returncode == 0:
            cl = Cluster(d)
            g1 = Gateway(port, cl.env["ADMIN_KEY"])
            g2 = Gateway(port + 1, cl.env["ADMIN_KEY"])
            failed = asyncio.run(main_async(cl, g1, g2))
        else:
            print("FAIL cluster did not start (logs in %s)" % d)
    finally:
        subprocess.run(["bash", script, "stop", d])
        # the sanitizer build: a report in any process's log fails the run
        for name in sorted(os.listdir(d)):
            if not name.endswith(".log"):
                continue
            with open(os.path.join(d, name), errors="replace") as f:
                text = f.read()
            hits = [m for m in harness.SANITIZER_MARKERS if m in text]
            if hits:
                print("FAIL %s: sanitizer report (%s)" % (name, hits[0]))
                failed += 1
        if failed or args.keep:
            print("logs kept in %s" % d)
        else:
            subprocess.run(["rm", "-rf", d])
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

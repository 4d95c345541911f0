"""
tests/chat/test_delivery.py - the delivery guarantees of PROTOCOL.md §5
over the wire: order and contiguity of seq under load, retransmission of
unacked msgs (2 s, doubling), replay on reconnect (with and without
last_seq), session_ttl and the offline/online cycle, and flow control
(1,024 unacked msgs, docs/protocol.md rule 60).
"""

import asyncio
import time

from harness import (TestFailure, active_session, check, eq, msg_obj_ok,
                     scenario)

FAST = {"messages_per_s": 100000, "burst": 100000,
        "tenant_messages_per_s": 1000000}


async def wait_msg_seq(client, session, seq, timeout):
    """Wait until client has received a msg of session with this seq;
    returns every msg of the session received so far (in order)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = client.all_of("msg", session)
        if any(m["seq"] == seq for m in got):
            return got
        if client.closed.is_set():
            raise TestFailure("%s closed (code %r) before msg seq %d; last "
                              "seq seen %r" % (client.name, client.close_code,
                                               seq,
                                               got[-1]["seq"] if got
                                               else None))
        if loop.time() > deadline:
            raise TestFailure("%s: no msg seq %d within %.0f s; got %d msgs,"
                              " last %r" % (client.name, seq, timeout,
                                            len(got),
                                            got[-1]["seq"] if got else None))
        await asyncio.sleep(0.02)


async def send_many(sender, session, n, prefix, timeout=90.0):
    """Pipeline n sends (cids prefix-0..n-1) and wait for all `sent`;
    returns the sent frames in cid order."""
    cids = ["%s-%d" % (prefix, i) for i in range(n)]
    for i, cid in enumerate(cids):
        await sender.send({"type": "send", "session": session, "cid": cid,
                           "kind": "text", "body": {"text": "%s #%d"
                                                    % (prefix, i)}})
    want = set(cids)
    got = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(got) < n:
        f = await sender.recv_where(
            lambda f: f.get("type") in ("sent", "error")
            and (f.get("cid") in want or f.get("ref") in want),
            max(0.1, deadline - loop.time()),
            "sent %d of %d" % (len(got) + 1, n))
        check(f["type"] == "sent", "send answered %r", f)
        got[f["cid"]] = f
    return [got[c] for c in cids]


@scenario("thousand_messages")
async def thousand_messages(env):
    t = await env.tenant(rate_limits=FAST)
    a_id = await t.add_agent()
    A = await t.agent(a_id, auto_ack=True)
    V, A, acc = await active_session(t, a_id, agent_client=A,
                                     auto_ack_visitor=True)
    S = V.session
    N = 1000
    sents = await send_many(V, S, N, "v")
    eq([s["seq"] for s in sents], list(range(2, N + 2)),
       "visitor's sent seqs in order")
    ts = [s["ts"] for s in sents]
    eq(ts, sorted(ts), "ts never goes back")
    got = await wait_msg_seq(A, S, N + 1, 60)
    await asyncio.sleep(0.3)
    got = A.all_of("msg", S)
    eq([m["seq"] for m in got], list(range(2, N + 2)),
       "agent's msg seqs (contiguous, no duplicate)")
    for i, m in enumerate(got):
        if m["cid"] != "v-%d" % i or m["body"] != {"text": "v #%d" % i}:
            raise TestFailure("msg %d: %r" % (i, m))
    msg_obj_ok(got[0], "msg")

    sents = await send_many(A, S, N, "a")
    eq([s["seq"] for s in sents], list(range(N + 2, 2 * N + 2)),
       "agent's sent seqs")
    await wait_msg_seq(V, S, 2 * N + 1, 60)
    await asyncio.sleep(0.3)
    vm = [m for m in V.all_of("msg", S) if m["from"] == "agent:" + a_id]
    eq([m["seq"] for m in vm], list(range(N + 2, 2 * N + 2)),
       "visitor's msg seqs from the agent")
    check(all(m["body"] == {"text": "a #%d" % i} for i, m in enumerate(vm)),
          "bodies in order")
    r = await t.server.ahttp("GET", "/v1/sessions/" + S,
                             token=t.agent_token(a_id))
    eq(r.json.get("last_seq"), 2 * N + 1, "session last_seq")


@scenario("retransmit")
async def retransmit(env):
    t = await env.tenant()
    a_id = await t.add_agent()
    V, A, acc = await active_session(t, a_id, auto_ack_visitor=True)
    S = V.session
    # an acked msg is not sent again
    await V.send_msg(S, "quick")
    await A.recv_type("msg", 5, seq=2)
    await A.ack(S, 2)
    await A.expect_none("msg", 3.0)

    await V.send_msg(S, "please ack me")
    first = await A.recv_type("msg", 5, seq=3)
    t0 = A.time_of(first)
    second = await A.recv_type("msg", 6, seq=3)
    t1 = A.time_of(second)
    third = await A.recv_type("msg", 9, seq=3)
    t2 = A.time_of(third)
    eq(second, first, "retransmitted frame")
    eq(third, first, "second retransmission")
    d1, d2 = t1 - t0, t2 - t1
    check(1.6 <= d1 <= 3.0, "first retransmission after %.2f s; expected "
          "about 2 s", d1)
    check(3.5 <= d2 <= 5.2, "second retransmission %.2f s after the first;"
          " expected about 4 s", d2)
    await A.ack(S, 3)
    # the next would have come about 8 s after the second one
    await A.expect_none("msg", 9.5)
    eq(len(A.all_of("msg", S)), 4, "msgs in all (2 once, 3 three times)")

    # one user, two connections: both get the msg; an ack on one releases
    # the retransmission on both (rule 51)
    A2 = await t.agent(a_id)
    await V.send_msg(S, "to both")
    await A.recv_type("msg", 5, seq=4)
    await A2.recv_type("msg", 5, seq=4)
    await A2.ack(S, 4)
    await A.expect_none("msg", 3.0)
    await A2.expect_none("msg", 0.1)

    r = await t.server.ahttp("GET", "/metrics")
    val = None
    for line in r.body.decode().splitlines():
        if line.startswith("chatcore_retransmits_total"):
            val = float(line.split()[-1])
    check(val is not None and val >= 2,
          "chatcore_retransmits_total = %r; expected >= 2", val)


@scenario("resume_replay")
async def resume_replay(env):
    t = await env.tenant()
    a_id = await t.add_agent()
    A = await t.agent(a_id, auto_ack=True)
    V, A, acc = await active_session(t, a_id, agent_client=A)
    S = V.session
    for text in ("a2", "a3"):
        await A.send_msg(S, text)
    await V.recv_type("msg", 5, seq=2)
    await V.recv_type("msg", 5, seq=3)
    s4 = await V.send_msg(S, "v4 own")
    eq(s4["seq"], 4, "visitor's own seq")
    await A.send_msg(S, "a5")
    await V.recv_type("msg", 5, seq=5)
    await V.ack(S, 5)             # cumulative: covers 1..5, its own 4 too
    await V.ping()
    await V.close()
    await A.expect_none("peer_offline", 0.5)   # session_ttl is 600 s
    for text in ("a6", "a7"):
        await A.send_msg(S, text)

    await A.send({"type": "sync", "session": S})
    full = (await A.recv_type("history", 5))["messages"]
    eq([m["seq"] for m in full], [1, 2, 3, 4, 5, 6, 7], "stored seqs")
    by_seq = {m["seq"]: m for m in full}

    # with last_seq: everything after it, own messages included
    V2 = await t.visitor(vid=V.user, query={"session": S, "last_seq": 2},
                         expect_resumed=True)
    eq((V2.session, V2.hello["state"]), (S, "active"), "resumed hello")
    await wait_msg_seq(V2, S, 7, 10)
    await asyncio.sleep(0.3)
    got = V2.all_of("msg", S)
    eq([m["seq"] for m in got], [3, 4, 5, 6, 7], "replay after last_seq 2")
    for m in got:
        eq({k: v for k, v in m.items() if k != "type"}, by_seq[m["seq"]],
           "replayed msg %d" % m["seq"])
    eq(got[1]["from"], "visitor:" + V.user, "own message replayed")
    # msg frames come right after hello, before anything else
    eq([f["type"] for _, f in V2.frames[1:6]], ["msg"] * 5,
       "frames right after hello")
    await V2.close()           # acked nothing: cursor stays at 5

    # without last_seq: what the visitor has not acked
    V3 = await t.visitor(vid=V.user, expect_resumed=True)
    eq(V3.session, S, "resumed session without session=")
    await wait_msg_seq(V3, S, 7, 10)
    await asyncio.sleep(0.3)
    eq([m["seq"] for m in V3.all_of("msg", S)], [6, 7],
       "replay of the unacked")
    await V3.ack(S, 7)
    await V3.ping()
    await V3.close()
    await A.send_msg(S, "a8")
    V4 = await t.visitor(vid=V.user, expect_resumed=True)
    await wait_msg_seq(V4, S, 8, 10)
    await asyncio.sleep(0.3)
    eq([m["seq"] for m in V4.all_of("msg", S)], [8], "replay after ack 7")
    await V4.ack(S, 8)
    await V4.ping()
    await V4.close()

    # session= naming something else is ignored, and so is last_seq
    V5 = await t.visitor(vid=V.user, query={"session": "S_0123456789abcdef"
                                            "0123", "last_seq": 0},
                         expect_resumed=True)
    eq(V5.session, S, "bogus session= falls back to the live session")
    await V5.expect_none("msg", 0.7)
    await V5.close()

    # last_seq 0: everything
    V6 = await t.visitor(vid=V.user, query={"session": S, "last_seq": 0},
                         expect_resumed=True)
    await wait_msg_seq(V6, S, 8, 10)
    await asyncio.sleep(0.3)
    eq([m["seq"] for m in V6.all_of("msg", S)], list(range(1, 9)),
       "replay from 0")
    await V6.close()

    # two connections of the visitor: a send from one is replayed to a
    # reconnect with last_seq
    V7 = await t.visitor(vid=V.user, auto_ack=True)
    V8 = await t.visitor(vid=V.user, auto_ack=True)
    s9 = await V7.send_msg(S, "from conn 7")
    eq(s9["seq"], 9, "seq from the second connection")
    await A.recv_type("msg", 5, seq=9)
    V9 = await t.visitor(vid=V.user, query={"session": S, "last_seq": 8})
    m9 = await V9.recv_type("msg", 5, seq=9)
    eq((m9["from"], m9["cid"]), ("visitor:" + V.user, s9["cid"]),
       "own message from another connection")
    await V9.expect_none("msg", 0.5)
    await V8.ping()


@scenario("offline_online")
async def offline_online(env):
    t = await env.tenant(session_ttl=1)
    a_id = await t.add_agent()
    A = await t.agent(a_id, auto_ack=True)
    V, A, acc = await active_session(t, a_id, agent_client=A)
    S = V.session
    await A.send_msg(S, "before")
    await V.recv_type("msg", 5, seq=2)
    await V.ack(S, 2)
    await V.ping()
    who = "visitor:" + V.user

    for rnd, query in enumerate((None, {"session": S})):
        tc = time.monotonic()
        await V.close()
        po = await A.recv_type("peer_offline", 8)
        dt = A.time_of(po) - tc
        eq(po, {"type": "peer_offline", "session": S, "who": who},
           "peer_offline")
        check(0.8 <= dt <= 4.0, "peer_offline %.2f s after the disconnect;"
              " session_ttl is 1 s", dt)
        r = await t.server.ahttp("GET", "/v1/sessions/" + S,
                                 token=t.agent_token(a_id))
        eq(r.json.get("state"), "offline", "state while away")
        replies = [await A.send_msg(S, "reply %d.%d" % (rnd, i))
                   for i in range(2)]
        seqs = [s["seq"] for s in replies]
        eq(seqs, [3 + 2 * rnd, 4 + 2 * rnd], "replies' seqs")
        V = await t.visitor(vid=V.user, query=query, expect_resumed=True)
        eq((V.session, V.hello["state"]), (S, "active"), "back, resumed")
        for s in seqs:
            m = await V.recv_type("msg", 5, seq=s)
            eq(m["from"], "agent:" + a_id, "reply from")
        pon = await A.recv_type("peer_online", 5)
        eq(pon, {"type": "peer_online", "session": S, "who": who},
           "peer_online")
        await asyncio.sleep(0.2)
        eq([m["seq"] for m in V.all_of("msg", S)], seqs,
           "only the replies are replayed")
        await V.ack(S, seqs[-1])
        await V.ping()
    s = await V.send_msg(S, "I'm back")
    eq(s["seq"], 7, "the visitor sends again")
    await A.recv_type("msg", 5, seq=7)
    r = await t.server.ahttp("GET", "/v1/sessions/" + S,
                             token=t.agent_token(a_id))
    eq(r.json.get("state"), "active", "state after the return")


@scenario("offline_queue")
async def offline_queue(env):
    """Rule 58: a queued session going offline leaves the queue and comes
    back to its original place; an empty `new` one is closed instead."""
    t = await env.tenant(session_ttl=1)
    a_id = await t.add_agent()
    A = await t.agent(a_id)
    V1 = await t.visitor()
    await V1.send_msg(V1.session, "one")
    eq((await V1.recv_type("queued", 5))["position"], 1, "V1 position")
    V2 = await t.visitor()
    await V2.send_msg(V2.session, "two")
    eq((await V2.recv_type("queued", 5))["position"], 2, "V2 position")
    V3 = await t.visitor()           # stays new
    S1, S2, S3 = V1.session, V2.session, V3.session
    await A.recv_type("queue", 5)
    await A.recv_type("queue", 5)
    await V1.close()
    await V3.close()
    eq(await V2.recv_type("queued", 6),
       {"type": "queued", "session": S2, "position": 1}, "V2 moves up")
    snap = await A.recv_type("queue", 6)
    eq([w["session"] for w in snap["waiting"]], [S2], "queue while V1 away")
    await A.expect_none("peer_offline", 0.3)   # nobody serves them
    tok = t.agent_token(a_id)
    r = await t.server.ahttp("GET", "/v1/sessions/" + S1, token=tok)
    eq(r.json.get("state"), "offline", "queued session offline")
    # V3 left a moment after V1: give its expiry a moment too
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3
    while True:
        r = await t.server.ahttp("GET", "/v1/sessions/" + S3, token=tok)
        if r.json.get("state") == "closed" or loop.time() > deadline:
            break
        await asyncio.sleep(0.1)
    eq(r.json.get("state"), "closed", "an empty new session is closed")

    V1b = await t.visitor(vid=V1.user, expect_resumed=True)
    eq((V1b.session, V1b.hello["state"]), (S1, "queued"), "V1 back")
    eq(await V1b.recv_type("queued", 5),
       {"type": "queued", "session": S1, "position": 1},
       "V1 back at its place")
    eq(await V2.recv_type("queued", 5),
       {"type": "queued", "session": S2, "position": 2}, "V2 moves down")
    snap = await A.recv_type("queue", 5)
    eq([w["session"] for w in snap["waiting"]], [S1, S2], "queue order")
    # the empty one was closed: its visitor starts over
    V3b = await t.visitor(vid=V3.user, expect_resumed=False)
    check(V3b.session != S3, "V3 got its closed session back")
    eq(V3b.hello["state"], "new", "V3's fresh session")
    await V3b.expect_none("session_closed", 0.3)


@scenario("flow_control")
async def flow_control(env):
    """Rule 60: at most 1,024 unacked msgs per connection; past that the
    server stops writing new ones (they stay stored) and goes on, in
    order, once acks make room; the connection stays open."""
    t = await env.tenant(rate_limits=FAST)
    a_id = await t.add_agent()
    V, A, acc = await active_session(t, a_id, auto_ack_visitor=True)
    S = V.session
    N = 1100
    sents = await send_many(V, S, N, "f")
    eq(sents[-1]["seq"], N + 1, "last seq")
    await wait_msg_seq(A, S, 1025, 30)
    await asyncio.sleep(1.0)
    got = sorted({m["seq"] for m in A.all_of("msg", S)})
    eq(got, list(range(2, 1026)), "1,024 msgs unacked, then a pause")
    check(not A.closed.is_set(), "closed with %r for not acking",
          A.close_code)
    n_before = len(A.frames)
    await A.ack(S, 1025)
    await wait_msg_seq(A, S, N + 1, 30)
    await asyncio.sleep(0.3)
    later = [f["seq"] for _, f in A.frames[n_before:]
             if f.get("type") == "msg"]
    eq(later, list(range(1026, N + 2)), "the rest, in order, after the ack")
    await A.ack(S, N + 1)
    await A.ping()
    A.take_all("msg")
    await A.expect_none("msg", 2.5)       # all acked: no retransmission


@scenario("slow_consumer")
async def slow_consumer(env):
    """PROTOCOL.md §5 flow control: a client that stops reading is closed
    with 1008 once its bounded outbound queue is full; its messages stay
    stored and come back on the next connection."""
    t = await env.tenant(rate_limits=FAST)
    a_id = await t.add_agent()
    V, A, acc = await active_session(t, a_id, auto_ack_visitor=True)
    S = V.session
    A.ws.transport.pause_reading()          # stop reading the socket
    N = 700                                 # about 10 MB of msg frames
    body = {"text": "z" * 15000}
    for i in range(N):
        await V.send({"type": "send", "session": S, "cid": "s-%d" % i,
                      "kind": "text", "body": body})
    n = 0
    while n < N:
        f = await V.recv_where(lambda f: f.get("type") in ("sent", "error"),
                               30, "sent %d" % n)
        check(f["type"] == "sent", "send answered %r", f)
        n += 1
    await asyncio.sleep(1.0)
    A.ws.transport.resume_reading()
    eq(await A.wait_closed(20), 1008, "close code of the non-reader")
    check("deleted" not in (A.close_reason or ""), "rule 68: reason %r",
          A.close_reason)
    got = sorted({m["seq"] for m in A.all_of("msg", S)})
    check(len(got) < N, "the non-reader got all %d msgs", len(got))
    eq(got, list(range(2, 2 + len(got))), "what it got is a prefix")
    A2 = await t.agent(a_id, auto_ack=True)
    await wait_msg_seq(A2, S, N + 1, 60)
    await asyncio.sleep(0.3)
    seqs = [m["seq"] for m in A2.all_of("msg", S)]
    eq(sorted(set(seqs)), list(range(2, N + 2)), "replayed after 1008")
    eq(seqs, sorted(seqs), "replay in order")


@scenario("heartbeat_change")
async def heartbeat_change(env):
    """A tenant's new heartbeat applies to open connections: after a PATCH
    from 60 s to 5 s, a silent connection is closed with 1001 about 15 s
    later, not 180 s."""
    t = await env.tenant(heartbeat=60)
    silent = await t.visitor(name="silent")
    eq(silent.hello["heartbeat_s"], 60, "heartbeat_s before")
    r = await t.server.admin("PATCH", "/v1/tenants/" + t.id,
                             {"heartbeat": 5})
    eq(r.status, 200, "PATCH status")
    t0 = time.monotonic()
    eq(await silent.wait_closed(40), 1001, "idle close code")
    took = time.monotonic() - t0
    check(took <= 30.0, "closed %.1f s after the change; 3 x 5 = 15", took)
    fresh = await t.visitor(name="fresh")
    eq(fresh.hello["heartbeat_s"], 5, "heartbeat_s after")


@scenario("heartbeat_idle")
async def heartbeat_idle(env):
    """PROTOCOL.md §3: silent for 3 x heartbeat_s -> close 1001; any frame
    (JSON ping or a WebSocket ping) keeps the connection."""
    t = await env.tenant(heartbeat=5)
    a_id = await t.add_agent()
    A = await t.agent(a_id, auto_ack=True)
    silent = await t.visitor(name="silent")
    eq(silent.hello["heartbeat_s"], 5, "heartbeat_s")
    pinger = await t.visitor(name="json-pinger")
    wsping = await t.visitor(name="ws-pinger")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 19:
        await pinger.ping()
        pong = await wsping.ws.ping()
        await asyncio.wait_for(pong, 5)
        await asyncio.sleep(4)
        if silent.closed.is_set():
            break
    eq(await silent.wait_closed(5), 1001, "idle close code")
    # silence began when the upgrade was answered, just before hello came
    t_hello = silent.frames[0][0]
    idle = silent.closed_wall - (time.time() - (time.monotonic() - t_hello))
    check(14.0 <= idle <= 17.0, "closed after %.1f s of silence; 3 x 5 = 15",
          idle)
    await asyncio.sleep(max(0, t0 + 17 - time.monotonic()))
    check(not pinger.closed.is_set(), "the JSON pinger was closed (%r)",
          pinger.close_code)
    check(not wsping.closed.is_set(), "the WebSocket pinger was closed (%r)",
          wsping.close_code)
    await pinger.ping()
    eq(await A.wait_closed(3), 1001, "a silent agent is closed too")


@scenario("multi_connection")
async def multi_connection(env):
    """Rule 51: every connection of a user gets its frames; an ack on one
    releases the retransmission on all."""
    t = await env.tenant()
    a_id = await t.add_agent()
    V1, A, acc = await active_session(t, a_id)
    S = V1.session
    V2 = await t.visitor(vid=V1.user, expect_resumed=True)
    eq(V2.session, S, "second connection, same session")
    s = await A.send_msg(S, "to both of you")
    m1 = await V1.recv_type("msg", 5, seq=s["seq"])
    m2 = await V2.recv_type("msg", 5, seq=s["seq"])
    eq(m1, m2, "the same msg on both")
    await V2.ack(S, s["seq"])
    await V1.expect_none("msg", 3.0, lambda f: f["seq"] == s["seq"])
    await V2.expect_none("msg", 0.01, lambda f: f["seq"] == s["seq"])
    await A.send({"type": "typing", "session": S, "on": True})
    await V1.recv_type("typing", 5)
    await V2.recv_type("typing", 5)
    await A.send({"type": "close", "session": S, "reason": "done"})
    for v in (V1, V2):
        await v.recv_type("session_closed", 5)
        st = await v.recv_type("session_started", 5)
        eq(st["state"], "new", "fresh session on %s" % v.name)
    eq(V1.all_of("session_started")[0]["session"],
       V2.all_of("session_started")[0]["session"],
       "both connections got the same fresh session")

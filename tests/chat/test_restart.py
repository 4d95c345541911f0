"""
tests/chat/test_restart.py - durability and draining: messages answered
`sent` survive kill -9 (PROTOCOL.md §5), SIGTERM drains (`reconnect` then
close 1012, exit status 0) and a restart on the same data directory
resumes sessions, queues, sequence numbers and idempotence.
"""

import asyncio
import time

from harness import TestFailure, check, eq, scenario

FAST = {"messages_per_s": 100000, "burst": 100000,
        "tenant_messages_per_s": 1000000}


async def reconnect_with_retry(fn, timeout=15.0):
    """Run fn() until it stops raising connection errors (the server is
    restarting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await fn()
        except (OSError, asyncio.TimeoutError) as e:
            if time.monotonic() > deadline:
                raise TestFailure("could not reconnect: %r" % e)
            await asyncio.sleep(0.2)


@scenario("kill9_durability", shared=False)
async def kill9_durability(env):
    srv = env.new_server(name="kill9")
    await asyncio.to_thread(srv.start)
    t = await srv.new_tenant(rate_limits=FAST)
    a_id = await t.add_agent()
    A = await t.agent(a_id)
    V = await t.visitor(auto_ack=True)
    S = V.session
    first = await V.send_msg(S, "m-first", cid="k-0")
    await V.recv_type("queued", 5)
    acc = await A.accept(S)
    eq(acc["last_seq"], 1, "accepted last_seq")
    N = 200
    cids = ["k-%d" % i for i in range(1, N)]
    for c in cids:
        await V.send({"type": "send", "session": S, "cid": c,
                      "kind": "text", "body": {"text": "m-" + c}})
    sents = {}
    while len(sents) < len(cids):
        f = await V.recv_where(lambda f: f.get("type") in ("sent", "error"),
                               30, "sent %d" % (len(sents) + 1))
        check(f["type"] == "sent", "send answered %r", f)
        sents[f["cid"]] = f
    eq([sents[c]["seq"] for c in cids], list(range(2, N + 1)), "sent seqs")
    # SIGKILL right after the last `sent`: nothing may be lost
    rc = await asyncio.to_thread(srv.kill)
    eq(rc, -9, "killed")
    await A.wait_closed(10)
    await V.wait_closed(10)
    await asyncio.to_thread(srv.start)

    A2 = await reconnect_with_retry(lambda: t.agent(a_id, auto_ack=True))
    eq(A2.hello["sessions"], [{"session": S, "visitor": V.user,
                               "state": "active", "last_seq": N}],
       "agent's sessions after the restart")
    # replay of the unacked: a contiguous run ending at N
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not any(m["seq"] == N for m in A2.all_of("msg", S)):
        check(loop.time() < deadline, "replay did not reach seq %d; got %r",
              N, [m["seq"] for m in A2.all_of("msg", S)][-5:])
        check(not A2.closed.is_set(), "agent closed %r", A2.close_code)
        await asyncio.sleep(0.05)
    seqs = [m["seq"] for m in A2.all_of("msg", S)]
    # the agent acked nothing: the replay starts where it accepted (1) or,
    # at least once, earlier (the cursor write may not have been flushed
    # before the kill)
    check(seqs and seqs[0] <= 2, "replay started at %r; the agent acked "
          "nothing", seqs[:1])
    eq(seqs, list(range(seqs[0], N + 1)), "replayed seqs")
    # sync sees all 200, exactly
    msgs = []
    after = 0
    while True:
        await A2.send({"type": "sync", "session": S, "after": after,
                       "limit": 200})
        h = await A2.recv_type("history", 10)
        msgs += h["messages"]
        if not h["more"]:
            break
        after = h["messages"][-1]["seq"]
    eq([m["seq"] for m in msgs], list(range(1, N + 1)), "synced seqs")
    eq([m["cid"] for m in msgs], ["k-0"] + cids, "synced cids")
    eq(msgs[0]["ts"], first["ts"], "first message's ts")
    eq([m["body"]["text"] for m in msgs[1:]], ["m-" + c for c in cids],
       "synced bodies")
    r = await srv.ahttp("GET", "/v1/sessions/%s/messages?after=0&limit=200"
                        % S, token=t.agent_token(a_id))
    eq(r.status, 200, "GET messages")
    eq([m["seq"] for m in r.json["messages"]], list(range(1, N + 1)),
       "HTTP messages")
    eq(r.json["more"], False, "HTTP more")
    r = await srv.ahttp("GET", "/v1/sessions/" + S,
                        token=t.agent_token(a_id))
    eq((r.json["state"], r.json["last_seq"], r.json["agent"]),
       ("active", N, a_id), "session after the restart")

    # the visitor resumes; idempotence survives the restart
    V2 = await t.visitor(vid=V.user, expect_resumed=True)
    eq((V2.session, V2.hello["state"]), (S, "active"), "visitor resumed")
    again = await V2.send_msg(S, "dup", cid=cids[-1])
    eq(again, sents[cids[-1]], "same cid after the restart")
    nxt = await V2.send_msg(S, "after restart")
    eq(nxt["seq"], N + 1, "seq continues")
    m = await A2.recv_type("msg", 10, seq=N + 1)
    eq(m["body"], {"text": "after restart"}, "live again")


@scenario("sigterm_drain", shared=False)
async def sigterm_drain(env):
    srv = env.new_server(name="drain")
    await asyncio.to_thread(srv.start)
    t = await srv.new_tenant()
    a_id = await t.add_agent()
    A = await t.agent(a_id, auto_ack=True)
    V = await t.visitor(auto_ack=True)
    S = V.session
    await V.send_msg(S, "hello")
    await V.recv_type("queued", 5)
    await A.accept(S)
    await V.recv_type("session_accepted", 5)
    await A.send_msg(S, "hi")
    await V.recv_type("msg", 5, seq=2)
    W = await t.visitor()                       # a queued one
    await W.send_msg(W.session, "waiting")
    await W.recv_type("queued", 5)
    await V.ping()
    await W.ping()

    t0 = time.monotonic()
    srv.proc.send_signal(15)
    for c in (A, V, W):
        rc = await c.recv_type("reconnect", 10)
        eq(set(rc), {"type", "after_ms"}, "reconnect keys")
        check(isinstance(rc["after_ms"], int) and rc["after_ms"] >= 0,
              "after_ms %r", rc["after_ms"])
        eq(await c.wait_closed(15), 1012, "%s close code" % c.name)
    code = await asyncio.to_thread(srv.wait_exit, 20)
    eq(code, 0, "exit status after SIGTERM")
    check(time.monotonic() - t0 < 15, "drain took %.1f s",
          time.monotonic() - t0)
    check(srv.sanitizer_report() is None, "sanitizer report")

    await asyncio.to_thread(srv.start)
    V2 = await reconnect_with_retry(
        lambda: t.visitor(vid=V.user, auto_ack=True, expect_resumed=True))
    eq((V2.session, V2.hello["state"]), (S, "active"), "visitor resumed")
    A2 = await t.agent(a_id, auto_ack=True)
    eq(A2.hello["sessions"], [{"session": S, "visitor": V.user,
                               "state": "active", "last_seq": 2}],
       "agent's sessions")
    eq([(q["session"], q["preview"]) for q in A2.hello["queue"]],
       [(W.session, "waiting")], "queue after the restart")
    W2 = await t.visitor(vid=W.user, expect_resumed=True)
    eq((W2.session, W2.hello["state"]), (W.session, "queued"),
       "queued visitor resumed")
    eq(await W2.recv_type("queued", 5),
       {"type": "queued", "session": W.session, "position": 1},
       "queued position after the restart")
    s = await V2.send_msg(S, "still there?")
    eq(s["seq"], 3, "seq continues")
    await A2.recv_type("msg", 5, seq=3)
    s = await A2.send_msg(S, "yes")
    await V2.recv_type("msg", 5, seq=4)

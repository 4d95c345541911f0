"""
tests/chat/test_errors.py - every bad input of PROTOCOL.md §6 and the
decisions of docs/protocol.md §12.6/§12.8 over the wire (the error code,
the ref echo, the connection staying healthy), the WebSocket-level closes
(1003, 1007, 1009), and the rate limits (per user, per tenant, 4008) with
another tenant's latency measured meanwhile.
"""

import asyncio
import threading
import time

from harness import Client, check, eq, scenario


def send_frame(session, cid="c-1", kind="text", body=None, **extra):
    f = {"type": "send", "session": session, "cid": cid, "kind": kind,
         "body": body if body is not None else {"text": "x"}}
    f.update(extra)
    return f


@scenario("bad_input")
async def bad_input(env):
    t = await env.tenant()
    t2 = await env.tenant()
    a_id = await t.add_agent()
    A = await t.agent(a_id)
    V = await t.visitor()
    S = V.session

    async def bad(client, frame, code, **kw):
        await client.request_error(frame, code, **kw)
        await client.ping()

    # syntax and shape: nothing to echo
    for raw in ('{"type":"ping"', "not json", "[]", '"ping"', "42", "null",
                '{"type":"ping",}', "{'type':'ping'}"):
        await bad(V, raw, "bad_request")
    # type
    await bad(V, {"type": "nope"}, "bad_request")
    await bad(V, {"type": "hello"}, "bad_request")       # a server frame
    await bad(V, {"type": "PING"}, "bad_request")
    await bad(V, {"session": S}, "bad_request")          # no type
    await bad(V, '{"type":"ping","type":"ping","ref":"dup"}', "bad_request",
              echo="dup")
    # missing, malformed, wrongly typed fields
    await bad(V, {"type": "ack", "session": S}, "bad_request")
    await bad(V, {"type": "ack", "session": S, "seq": "5"}, "bad_request")
    await bad(V, {"type": "ack", "session": S, "seq": -1}, "bad_request")
    await bad(V, {"type": "ack", "session": S, "seq": 1.5}, "bad_request")
    await bad(V, {"type": "ack", "session": S, "seq": None}, "bad_request")
    await bad(V, {"type": "read", "session": 7, "seq": 1}, "bad_request")
    await bad(V, {"type": "typing", "session": S, "on": 1}, "bad_request")
    await bad(V, {"type": "typing", "session": S}, "bad_request")
    await bad(V, {"type": "sync", "session": S, "limit": 0}, "bad_request")
    await bad(V, {"type": "sync", "session": ""}, "bad_request")
    await bad(V, {"type": "sync", "session": "S bad"}, "bad_request")
    await bad(V, {"type": "refresh"}, "bad_request")
    await bad(A, {"type": "transfer", "session": S}, "bad_request")
    await bad(A, {"type": "status", "status": "busy"}, "bad_request")
    await bad(A, {"type": "status"}, "bad_request")
    # send: the echo is the cid (rule 27)
    await bad(V, send_frame(S, cid="k1", kind="audio"), "bad_request",
              ref=False)
    await bad(V, send_frame(S, cid="k2", body=[1]), "bad_request",
              ref=False)
    await bad(V, send_frame(S, cid="k3", body="text"), "bad_request",
              ref=False)
    f = send_frame(S, cid="k4")
    del f["kind"]
    await bad(V, f, "bad_request", ref=False)
    await bad(V, {"type": "send", "session": S, "kind": "text",
                  "body": {}}, "bad_request")            # no cid: ref only
    await bad(V, {"type": "send", "session": S, "kind": "text",
                  "body": {}}, "bad_request", ref=False)  # nothing to echo
    await bad(V, send_frame(S, cid="c" * 65), "too_large", ref=False,
              echo="")                                # no valid cid
    await bad(V, send_frame(S, cid="k5", ref="r" * 65), "too_large",
              ref=False, echo="k5")
    f = send_frame(S, cid="k6", kind="nope", ref="myref")
    await bad(V, f, "bad_request", ref=False, echo="myref")  # ref wins
    # limits
    await bad(V, send_frame(S, cid="big", body={"text": "x" * (17 * 1024)}),
              "too_large", ref=False)
    await bad(V, send_frame(S, cid="big1", body={"text": "x" * 16374}),
              "too_large", ref=False)                # 16385 bytes compact
    await bad(V, send_frame("S" * 65, cid="long-s"), "too_large", ref=False)
    await bad(V, send_frame("S_" + "!" * 63, cid="long-bad"), "too_large",
              ref=False)                              # length before content
    await bad(V, {"type": "send", "session": None, "cid": "nos",
                  "kind": "text", "body": {"text": "x" * 20000}},
              "bad_request", ref=False)               # session first
    await bad(A, {"type": "close", "session": S, "reason": "r" * 201},
              "too_large")
    await bad(V, {"type": "sync", "session": "S" * 65}, "too_large")
    # 16,384 bytes compact is still fine (and not queued twice)
    ok = await V.send_msg(S, body={"text": "y" * 16373}, cid="max-body")
    eq(ok["seq"], 1, "a 16384-byte body is accepted")
    await V.recv_type("queued", 5, session=S)

    # malformed frames do not count toward 4008 (rule 46)
    for i in range(15):
        await V.send('{"type":"ack","ref":"m%d"}' % i)
    for i in range(15):
        e = await V.recv_type("error", 5, ref="m%d" % i)
        eq(e["code"], "bad_request", "malformed burst")
    await V.ping()

    # role, existence, party, state (rule 38)
    await bad(V, {"type": "accept", "session": S}, "forbidden")
    await bad(V, {"type": "transfer", "session": S, "to": a_id},
              "forbidden")
    await bad(V, {"type": "status", "status": "away"}, "forbidden")
    ghost = "S_00000000000000000000"
    await bad(V, send_frame(ghost, cid="ghost"), "not_found", ref=False)
    await bad(A, {"type": "accept", "session": ghost}, "not_found")
    await bad(A, {"type": "sync", "session": ghost}, "not_found")
    other = await t2.visitor()              # another tenant's session
    await other.send_msg(other.session, "mine")
    await bad(V, send_frame(other.session, cid="other-t"), "not_found",
              ref=False)
    await bad(V, {"type": "sync", "session": other.session}, "not_found")
    await bad(A, {"type": "accept", "session": other.session}, "not_found")
    await bad(A, {"type": "sync", "session": other.session}, "not_found")
    await bad(A, {"type": "typing", "session": other.session, "on": True},
              "not_found")
    W = await t.visitor()                   # same tenant, not V's
    await bad(V, send_frame(W.session, cid="not-mine"), "not_in_session",
              ref=False)
    await bad(V, {"type": "sync", "session": W.session}, "not_in_session")
    await bad(V, {"type": "typing", "session": W.session, "on": True},
              "not_in_session")
    await bad(V, {"type": "read", "session": W.session, "seq": 0},
              "not_in_session")
    await bad(V, {"type": "close", "session": W.session},
              "not_in_session")
    await bad(A, {"type": "accept", "session": W.session}, "invalid_state")
    await bad(A, send_frame(S, cid="a-queued"), "not_in_session",
              ref=False)                    # queued, not served
    await bad(A, {"type": "transfer", "session": S, "to": None},
              "not_in_session")
    # nothing above changed anything
    await W.send({"type": "sync", "session": W.session})
    eq((await W.recv_type("history", 5))["messages"], [], "W's session")
    await A.send({"type": "sync", "session": S})
    eq([m["cid"] for m in (await A.recv_type("history", 5))["messages"]],
       ["max-body"], "V's session holds the one good message")
    await other.send({"type": "sync", "session": other.session})
    eq(len((await other.recv_type("history", 5))["messages"]), 1,
       "the other tenant's session")
    await A.ping()
    await W.ping()


@scenario("ws_closes")
async def ws_closes(env):
    t = await env.tenant()

    async def closed_with(code, action):
        v = await t.visitor()
        await action(v)
        got = await v.wait_closed(10)
        eq(got, code, "close code")

    await closed_with(1003, lambda v: v.send_bytes(b"\x01\x02\x03"))
    await closed_with(1007, lambda v: v.send_text_bytes(
        b'{"type":"ping","x":"\xff\xfe"}'))
    await closed_with(1007, lambda v: v.send_text_bytes(
        b'{"type":"ping","x":"\xed\xa0\x80"}'))      # a UTF-16 surrogate
    def padded(n):
        shell = '{"type":"ping","pad":"%s"}'
        return shell % ("x" * (n - len(shell % "")))
    await closed_with(1009, lambda v: v.send(padded(70000)))
    await closed_with(1009, lambda v: v.send(padded(65537)))

    async def fragments(v):
        await v.ws.send(iter(['{"type":"ping","pad":"', "x" * 40000,
                              "x" * 40000 + '"}']))
    await closed_with(1009, fragments)
    # exactly 65,536 bytes is fine
    v = await t.visitor()
    msg = padded(65536)
    eq(len(msg.encode()), 65536, "message size")
    await v.send(msg)
    await v.recv_type("pong", 5)
    # the server is fine: new connections work
    v2 = await t.visitor()
    await v2.ping()
    r = await t.server.ahttp("GET", "/healthz")
    eq(r.status, 200, "/healthz after the closes")


def latency_probe(port, token, stop, out, errors):
    """In a thread with its own event loop (so the flooding client's work
    in the main loop does not count as server latency): {"type":"ping"}
    every 50 ms, round trips (s) appended to out."""
    async def run():
        c = await Client.open(port, token, name="probe")
        try:
            while not stop.is_set():
                out.append(await c.ping(2.0))
                await asyncio.sleep(0.05)
        finally:
            await c.close()
    try:
        asyncio.run(run())
    except Exception as e:
        errors.append(repr(e))


@scenario("rate_limit", alone=True)
async def rate_limit(env):
    tA = await env.tenant()
    tB = await env.tenant()
    stop = threading.Event()
    lat, probe_errors = [], []
    probe = threading.Thread(target=latency_probe,
                             args=(tB.server.port, tB.visitor_token()[1],
                                   stop, lat, probe_errors), daemon=True)
    probe.start()
    try:
        await asyncio.sleep(0.3)
        t_flood = time.monotonic()
        rounds = 0
        while rounds < 4 or time.monotonic() - t_flood < 2.0:
            rounds += 1
            VA = await tA.visitor()
            S = VA.session
            cids = ["f%d-%d" % (rounds, i) for i in range(60)]
            await asyncio.gather(*(VA.send(send_frame(S, cid=c))
                                   for c in cids))
            eq(await VA.wait_closed(10), 4008, "close after 10 refusals")
            sent = VA.all_of("sent")
            errs = VA.all_of("error")
            eq(len(errs), 10, "rate_limited errors before 4008")
            refused = [e["ref"] for e in errs]
            n = cids.index(refused[0])
            check(40 <= n <= 45, "round %d: %d sends passed; burst is 40",
                  rounds, n)
            eq(refused, cids[n:n + 10], "the refused cids")
            for e in errs:
                eq(set(e), {"type", "code", "message", "ref",
                            "retry_after_ms"}, "rate_limited keys")
                eq(e["code"], "rate_limited", "code")
                check(isinstance(e["retry_after_ms"], int)
                      and 1 <= e["retry_after_ms"] <= 51,
                      "retry_after_ms %r (20/s: one token per 50 ms)",
                      e["retry_after_ms"])
            # `sent` may be cut short by the close, but every send that
            # passed the bucket is stored, and only those
            eq([s["cid"] for s in sent], cids[:len(sent)], "sent cids")
            eq([s["seq"] for s in sent], list(range(1, len(sent) + 1)),
               "sent seqs")
            vtok = tA.visitor_token(VA.user)[1]
            r = await tA.server.ahttp(
                "GET", "/v1/sessions/%s/messages?limit=200" % S, token=vtok)
            eq(r.status, 200, "messages status")
            eq([m["cid"] for m in r.json["messages"]], cids[:n],
               "stored messages")
            # and a resend of one whose `sent` was lost gets its `sent`
            await asyncio.sleep(0.1)         # a token for the resend
            VR = await tA.visitor(vid=VA.user, expect_resumed=True)
            again = await VR.send_msg(S, "x", cid=cids[n - 1])
            eq(again["seq"], n, "resent cid's seq")
            await VR.close()
    finally:
        stop.set()
        await asyncio.to_thread(probe.join, 10)
    check(not probe_errors, "latency probe failed: %s", probe_errors)
    check(len(lat) >= 20, "only %d latency samples", len(lat))
    worst = max(lat)
    check(worst < 0.2, "tenant B's ping latency up to %.0f ms while tenant"
          " A floods (samples %d)", worst * 1000, len(lat))

    # fewer than 10 refusals: the connection stays; retry_after_ms works
    VA = await tA.visitor()
    S = VA.session
    cids = ["g-%d" % i for i in range(46)]
    await asyncio.gather(*(VA.send(send_frame(S, cid=c)) for c in cids))
    n = 0
    last_err = None
    while n < 46:
        f = await VA.recv_where(lambda f: f.get("type") in ("sent", "error"),
                                10, "reply %d" % n)
        n += 1
        if f["type"] == "error":
            eq(f["code"], "rate_limited", "code")
            last_err = f
    check(last_err is not None, "46 sends at once were not limited")
    check(len(VA.all_of("error")) < 10, "too many refusals")
    await asyncio.sleep(last_err["retry_after_ms"] / 1000.0 + 0.02)
    s = await VA.send_msg(S, "after waiting")
    eq(s["seq"], len(VA.all_of("sent")), "seq after retry")
    await VA.ping()

    # the tenant bucket: all frames, ping included, shared by its users
    tC = await env.tenant(rate_limits={"tenant_messages_per_s": 1})
    c1 = await tC.visitor()
    c2 = await tC.visitor()
    await c1.ping()
    e = await c2.request_error({"type": "ping"}, "rate_limited")
    check(1 <= e["retry_after_ms"] <= 1000, "tenant retry_after_ms %r",
          e["retry_after_ms"])
    refs = ["p%d" % i for i in range(12)]
    for r in refs:
        await c1.send({"type": "ping", "ref": r})
    eq(await c1.wait_closed(10), 4008, "tenant bucket: close after 10")
    errs = c1.all_of("error")
    pongs = c1.all_of("pong")
    eq(len(errs), 10, "tenant bucket refusals")
    check(len(pongs) <= 2, "%d pongs at 1 frame/s", len(pongs))
    check(all(e["code"] == "rate_limited" and e["ref"] in refs
              for e in errs), "tenant bucket errors %r", errs[:2])

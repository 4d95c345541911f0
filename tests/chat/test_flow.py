"""
tests/chat/test_flow.py - the customer-service flow of PROTOCOL.md §1 over
the wire: connect, queue, accept (and its race), chat, typing/read, sync,
close and the fresh session after it, queue positions, idempotent sends,
transfer, auto-assignment.
"""

import asyncio

from harness import (SESSION_RE, active_session, check, eq, msg_obj_ok,
                     now_ms, queued_session, scenario)

VISITOR_HELLO = {"type", "v", "tenant", "user", "role", "node",
                 "heartbeat_s", "session", "state", "resumed"}
AGENT_HELLO = {"type", "v", "tenant", "user", "role", "node", "heartbeat_s",
               "status", "queue", "sessions"}


def strip_type(f):
    return {k: v for k, v in f.items() if k != "type"}


@scenario("full_flow")
async def full_flow(env):
    t = await env.tenant()
    a_id = await t.add_agent()
    b_id = await t.add_agent()

    A = await t.agent(a_id)
    eq(set(A.hello), AGENT_HELLO, "agent hello keys")
    eq(A.hello["status"], "online", "agent hello status")
    eq(A.hello["queue"], [], "agent hello queue")
    eq(A.hello["sessions"], [], "agent hello sessions")
    eq(A.hello["heartbeat_s"], 20, "agent heartbeat_s")

    V = await t.visitor()
    eq(set(V.hello), VISITOR_HELLO, "visitor hello keys")
    eq(V.hello["state"], "new", "hello state")
    eq(V.hello["resumed"], False, "hello resumed")
    eq(V.hello["heartbeat_s"], 20, "hello heartbeat_s")
    S = V.session

    t0 = now_ms()
    text1 = "Hello, I need help with my order"
    sent = await V.send_msg(S, text1, cid="c1")
    eq(set(sent), {"type", "cid", "session", "seq", "ts"}, "sent keys")
    eq((sent["cid"], sent["session"], sent["seq"]), ("c1", S, 1), "sent")
    check(t0 - 1000 <= sent["ts"] <= now_ms() + 1000, "sent ts %r not now",
          sent["ts"])
    q = await V.recv_type("queued", 5)
    eq(q, {"type": "queued", "session": S, "position": 1}, "queued")

    snap = await A.recv_type("queue", 5)
    eq(set(snap), {"type", "waiting"}, "queue keys")
    eq(len(snap["waiting"]), 1, "queue length")
    item = snap["waiting"][0]
    check(t0 - 1000 <= item.get("since", 0) <= now_ms() + 1000,
          "queue since %r not now", item.get("since"))
    eq(item, {"session": S, "visitor": V.user, "since": item["since"],
              "preview": text1}, "queue item")

    B = await t.agent(b_id)
    eq(B.hello["queue"], [item], "second agent's hello queue")

    acc = await A.accept(S)
    eq(set(acc), {"type", "session", "visitor", "history", "last_seq"},
       "accepted keys")
    eq((acc["session"], acc["visitor"], acc["last_seq"]), (S, V.user, 1),
       "accepted")
    eq(len(acc["history"]), 1, "accepted history length")
    h0 = acc["history"][0]
    msg_obj_ok(h0, "history item")
    eq(h0, {"session": S, "seq": 1, "from": "visitor:" + V.user,
            "kind": "text", "body": {"text": text1}, "ts": sent["ts"],
            "cid": "c1"}, "accepted history[0]")
    sa = await V.recv_type("session_accepted", 5)
    eq(sa, {"type": "session_accepted", "session": S, "agent": a_id},
       "session_accepted")
    eq(await A.recv_type("queue", 5), {"type": "queue", "waiting": []},
       "A's queue after accept")
    eq(await B.recv_type("queue", 5), {"type": "queue", "waiting": []},
       "B's queue after accept")

    # chat both ways
    s2 = await V.send_msg(S, "second", cid="c2")
    eq(s2["seq"], 2, "seq of the visitor's second message")
    m2 = await A.recv_type("msg", 5, seq=2)
    eq(m2, {"type": "msg", "session": S, "seq": 2,
            "from": "visitor:" + V.user, "kind": "text",
            "body": {"text": "second"}, "ts": s2["ts"], "cid": "c2"},
       "agent's msg 2")
    await A.ack(S, 2)
    s3 = await A.send_msg(S, "Hi, how can I help?", cid="a1")
    eq((s3["seq"], s3["session"], s3["cid"]), (3, S, "a1"), "agent's sent")
    m3 = await V.recv_type("msg", 5, seq=3)
    eq(m3, {"type": "msg", "session": S, "seq": 3, "from": "agent:" + a_id,
            "kind": "text", "body": {"text": "Hi, how can I help?"},
            "ts": s3["ts"], "cid": "a1"}, "visitor's msg 3")
    await V.ack(S, 3)
    s4 = await V.send_msg(S, kind="event", body={"k": [1, 2.5, "x"]},
                          cid="c3")
    eq(s4["seq"], 4, "seq of an event message")
    m4 = await A.recv_type("msg", 5, seq=4)
    eq((m4["kind"], m4["body"]), ("event", {"k": [1, 2.5, "x"]}),
       "event message relayed")
    await A.ack(S, 4)
    await B.expect_none("msg", 0.3)

    # typing and read, relayed with who
    await V.send({"type": "typing", "session": S, "on": True})
    eq(await A.recv_type("typing", 5),
       {"type": "typing", "session": S, "who": "visitor:" + V.user,
        "on": True}, "typing to agent")
    await A.send({"type": "typing", "session": S, "on": False})
    eq(await V.recv_type("typing", 5),
       {"type": "typing", "session": S, "who": "agent:" + a_id,
        "on": False}, "typing to visitor")
    await A.send({"type": "read", "session": S, "seq": 2})
    eq(await V.recv_type("read", 5),
       {"type": "read", "session": S, "who": "agent:" + a_id, "seq": 2},
       "read to visitor")
    await V.send({"type": "read", "session": S, "seq": 3})
    eq(await A.recv_type("read", 5),
       {"type": "read", "session": S, "who": "visitor:" + V.user,
        "seq": 3}, "read to agent")
    # a read that does not raise the cursor is not relayed (rule 41)
    await V.send({"type": "read", "session": S, "seq": 1})
    await A.expect_none("read", 0.4)
    # a read above the last seq is clamped to it
    await V.send({"type": "read", "session": S, "seq": 999})
    eq(await A.recv_type("read", 5),
       {"type": "read", "session": S, "who": "visitor:" + V.user,
        "seq": 4}, "read clamped to last seq")

    # sync
    await A.send({"type": "sync", "session": S})
    hist = await A.recv_type("history", 5)
    eq(set(hist), {"type", "session", "messages", "more"}, "history keys")
    eq((hist["session"], hist["more"]), (S, False), "history")
    eq([m["seq"] for m in hist["messages"]], [1, 2, 3, 4], "history seqs")
    for m in hist["messages"]:
        msg_obj_ok(m, "history message")
    eq(hist["messages"][0], h0, "history[0]")
    eq(hist["messages"][1], strip_type(m2), "history[1]")
    eq(hist["messages"][2], strip_type(m3), "history[2]")
    eq(hist["messages"][3], strip_type(m4), "history[3]")
    await V.send({"type": "sync", "session": S, "after": 1, "limit": 1})
    eq(await V.recv_type("history", 5),
       {"type": "history", "session": S,
        "messages": [strip_type(m2)], "more": True}, "visitor sync page")
    await V.send({"type": "sync", "session": S, "after": 3, "limit": 5})
    eq(await V.recv_type("history", 5),
       {"type": "history", "session": S,
        "messages": [strip_type(m4)], "more": False}, "last page")
    await V.send({"type": "sync", "session": S, "after": 4})
    eq(await V.recv_type("history", 5),
       {"type": "history", "session": S, "messages": [], "more": False},
       "sync past the end")
    await B.send({"type": "sync", "session": S, "after": 0, "limit": 200})
    eq([m["seq"] for m in (await B.recv_type("history", 5))["messages"]],
       [1, 2, 3, 4], "any agent of the tenant may sync")

    # another agent is no party
    await B.request_error({"type": "send", "session": S, "cid": "b1",
                           "kind": "text", "body": {"text": "x"}},
                          "not_in_session", ref=False)
    await B.request_error({"type": "typing", "session": S, "on": True},
                          "not_in_session")
    await B.request_error({"type": "close", "session": S, "reason": "x"},
                          "not_in_session")
    await B.request_error({"type": "accept", "session": S},
                          "already_taken")

    # close by the serving agent
    await A.send({"type": "close", "session": S, "reason": "resolved"})
    want = {"type": "session_closed", "session": S, "reason": "resolved",
            "by": "agent:" + a_id}
    eq(await A.recv_type("session_closed", 5), want, "agent's close")
    cv = await V.recv_type("session_closed", 5)
    eq(cv, want, "visitor's close")
    st = await V.recv_type("session_started", 5)
    eq(set(st), {"type", "session", "state"}, "session_started keys")
    eq(st["state"], "new", "session_started state")
    check(SESSION_RE.match(st["session"]) and st["session"] != S,
          "session_started session %r", st["session"])
    check(V.time_of(cv) <= V.time_of(st),
          "session_started came before session_closed")
    await V.request_error({"type": "send", "session": S, "cid": "late",
                           "kind": "text", "body": {"text": "hello?"}},
                          "invalid_state", ref=False)
    await A.request_error({"type": "send", "session": S, "cid": "late-a",
                           "kind": "text", "body": {"text": "bye"}},
                          "invalid_state", ref=False)
    await A.request_error({"type": "close", "session": S},
                          "invalid_state")
    await B.request_error({"type": "accept", "session": S},
                          "already_taken")
    # the fresh session starts over
    S2 = st["session"]
    n1 = await V.send_msg(S2, "another question")
    eq((n1["session"], n1["seq"]), (S2, 1), "first seq of the new session")
    eq(await V.recv_type("queued", 5),
       {"type": "queued", "session": S2, "position": 1}, "queued again")

    # the store agrees
    tok = t.agent_token(a_id)
    r = await t.server.ahttp("GET", "/v1/sessions/" + S, token=tok)
    eq(r.status, 200, "GET session status")
    eq(set(r.json), {"id", "visitor", "agent", "state", "created",
                     "updated", "last_seq"}, "session object keys")
    eq((r.json["id"], r.json["visitor"], r.json["agent"], r.json["state"],
        r.json["last_seq"]), (S, V.user, a_id, "closed", 4),
       "closed session")
    check(r.json["created"] <= r.json["updated"], "created > updated")


@scenario("accept_race")
async def accept_race(env):
    t = await env.tenant()
    aids = [await t.add_agent() for _ in range(10)]
    agents = await asyncio.gather(*(t.agent(a) for a in aids))
    V, sent, q = await queued_session(t)
    S = V.session
    for a in agents:
        snap = await a.recv_type("queue", 5)
        eq([w["session"] for w in snap["waiting"]], [S], "queue before race")
    refs = ["race-%d" % i for i in range(10)]
    frames = ['{"type":"accept","session":"%s","ref":"%s"}' % (S, r)
              for r in refs]
    await asyncio.gather(*(a.send(f) for a, f in zip(agents, frames)))
    winners, losers = [], []
    for a, ref in zip(agents, refs):
        f = await a.recv_where(
            lambda f, ref=ref: (f.get("type") == "accepted"
                                and f.get("session") == S)
            or (f.get("type") == "error" and f.get("ref") == ref),
            10, "accept outcome")
        if f["type"] == "accepted":
            winners.append(a)
            eq((f["visitor"], f["last_seq"], len(f["history"])),
               (V.user, 1, 1), "winner's accepted")
        else:
            losers.append(a)
            eq(f, {"type": "error", "code": "already_taken",
                   "message": f["message"], "ref": ref}, "loser's error")
    eq(len(winners), 1, "number of winners")
    eq(len(losers), 9, "number of already_taken")
    sa = await V.recv_type("session_accepted", 5)
    eq(sa, {"type": "session_accepted", "session": S,
            "agent": winners[0].user}, "session_accepted")
    await V.expect_none("session_accepted", 0.5)
    for a in agents:
        await a.expect_none("accepted", 0.05)
    # the session is the winner's: it can send, a loser cannot
    w = winners[0]
    s = await w.send_msg(S, "I'm yours")
    eq(s["seq"], 2, "winner's message seq")
    await losers[0].request_error(
        {"type": "send", "session": S, "cid": "l1", "kind": "text",
         "body": {"text": "me too"}}, "not_in_session", ref=False)


@scenario("queue_positions")
async def queue_positions(env):
    t = await env.tenant()
    a_id, b_id = await t.add_agent(), await t.add_agent()
    A, B = await t.agent(a_id), await t.agent(b_id)
    vs = []
    for k in range(1, 6):
        v = await t.visitor()
        vs.append(v)
        await v.send_msg(v.session, "question %d" % k)
        eq(await v.recv_type("queued", 5),
           {"type": "queued", "session": v.session, "position": k},
           "visitor %d queued" % k)
        want = [x.session for x in vs]
        for ag in (A, B):
            snap = await ag.recv_type("queue", 5)
            eq([w["session"] for w in snap["waiting"]], want,
               "%s's queue after visitor %d" % (ag.name, k))
            eq([w["preview"] for w in snap["waiting"]],
               ["question %d" % (i + 1) for i in range(k)], "previews")
            since = [w["since"] for w in snap["waiting"]]
            eq(since, sorted(since), "queue oldest first")
    for r in range(1, 6):
        ag = A if r % 2 else B
        head = vs[r - 1]
        acc = await ag.accept(head.session)
        eq(acc["visitor"], head.user, "accepted visitor")
        await head.recv_type("session_accepted", 5, session=head.session)
        for j in range(r + 1, 6):
            v = vs[j - 1]
            eq(await v.recv_type("queued", 5),
               {"type": "queued", "session": v.session, "position": j - r},
               "visitor %d after accept %d" % (j, r))
        want = [x.session for x in vs[r:]]
        for x in (A, B):
            snap = await x.recv_type("queue", 5)
            eq([w["session"] for w in snap["waiting"]], want,
               "%s's queue after accept %d" % (x.name, r))
    await asyncio.sleep(0.3)
    for k, v in enumerate(vs, 1):
        eq([f["position"] for f in v.all_of("queued")],
           list(range(k, 0, -1)), "visitor %d's positions" % k)
        eq(len(v.all_of("session_accepted")), 1, "session_accepted count")
    for x in (A, B):
        eq([len(f["waiting"]) for f in x.all_of("queue")],
           [1, 2, 3, 4, 5, 4, 3, 2, 1, 0], "%s's snapshot sizes" % x.name)


@scenario("idempotent_cid")
async def idempotent_cid(env):
    t = await env.tenant()
    a_id = await t.add_agent()
    V, A, acc = await active_session(t, a_id)
    S = V.session
    s1 = await V.send_msg(S, "once", cid="dup-1")
    eq(s1["seq"], 2, "first send seq")
    eq(await V.send_msg(S, "once", cid="dup-1"), s1, "repeat, same body")
    eq(await V.send_msg(S, "another body", cid="dup-1"), s1,
       "repeat, other body")
    eq(await V.send_msg(S, kind="event", body={"x": 1}, cid="dup-1"), s1,
       "repeat, other kind")
    # two copies in flight at once
    await V.send({"type": "send", "session": S, "cid": "dup-1",
                  "kind": "text", "body": {"text": "once"}})
    await V.send({"type": "send", "session": S, "cid": "dup-1",
                  "kind": "text", "body": {"text": "once"}})
    eq(await V.recv_type("sent", 5, cid="dup-1"), s1, "pipelined repeat 1")
    eq(await V.recv_type("sent", 5, cid="dup-1"), s1, "pipelined repeat 2")
    m = await A.recv_type("msg", 5, seq=2)
    eq((m["cid"], m["body"], m["kind"]), ("dup-1", {"text": "once"}, "text"),
       "the first is authoritative")
    await A.ack(S, 2)
    await A.expect_none("msg", 1.0)
    # after a reconnect
    await V.close()
    V2 = await t.visitor(vid=V.user, expect_resumed=True)
    eq(V2.session, S, "resumed session")
    eq(await V2.send_msg(S, "after reconnect", cid="dup-1"), s1,
       "repeat after reconnect")
    s2 = await V2.send_msg(S, "next", cid="dup-2")
    eq(s2["seq"], 3, "a new cid gets the next seq")
    m3 = await A.recv_type("msg", 5, seq=3)
    eq(m3["cid"], "dup-2", "next msg cid")
    await A.ack(S, 3)
    await A.expect_none("msg", 0.5)
    eq(len([f for f in A.all_of("msg") if f["cid"] == "dup-1"]), 1,
       "msgs the agent got for dup-1")
    # the agent's own repeats are idempotent too
    sa = await A.send_msg(S, "agent", cid="agent-dup")
    eq(sa["seq"], 4, "agent's message")
    eq(await A.send_msg(S, "agent again", cid="agent-dup"), sa,
       "agent's repeat")
    await V2.recv_type("msg", 5, seq=4)
    await V2.expect_none("msg", 0.5, lambda f: f["seq"] > 4)
    await A.send({"type": "sync", "session": S})
    h = await A.recv_type("history", 5)
    eq([(m["seq"], m["cid"]) for m in h["messages"]],
       [(1, acc["history"][0]["cid"]), (2, "dup-1"), (3, "dup-2"),
        (4, "agent-dup")], "stored messages")
    eq(h["messages"][1]["body"], {"text": "once"}, "stored body")


@scenario("transfer")
async def transfer(env):
    t = await env.tenant()
    a_id, b_id, c_id = (await t.add_agent(), await t.add_agent(),
                        await t.add_agent())
    A = await t.agent(a_id, auto_ack=True)
    B = await t.agent(b_id, auto_ack=True)
    V, A, acc = await active_session(t, a_id, agent_client=A,
                                     auto_ack_visitor=True)
    S = V.session
    s2 = await A.send_msg(S, "let me transfer you")
    await V.recv_type("msg", 5, seq=2)

    await V.request_error({"type": "transfer", "session": S, "to": b_id},
                          "forbidden")
    await B.request_error({"type": "transfer", "session": S, "to": c_id},
                          "not_in_session")
    await A.request_error({"type": "transfer", "session": S,
                           "to": "nobody_here"}, "not_found")
    await A.request_error({"type": "transfer", "session": S, "to": a_id},
                          "invalid_state")

    await A.send({"type": "transfer", "session": S, "to": b_id})
    want = {"type": "session_transferred", "session": S, "from": a_id,
            "to": b_id}
    eq(await V.recv_type("session_transferred", 5), want, "visitor's")
    eq(await A.recv_type("session_transferred", 5), want, "old agent's")
    tb = await B.recv_type("session_transferred", 5)
    eq(set(tb), set(want) | {"history", "last_seq"}, "new agent's keys")
    eq({k: tb[k] for k in want}, want, "new agent's")
    eq(tb["last_seq"], 2, "new agent's last_seq")
    eq([m["seq"] for m in tb["history"]], [1, 2], "new agent's history")
    eq(tb["history"][1]["body"], {"text": "let me transfer you"},
       "history body")
    eq(tb["history"][1]["ts"], s2["ts"], "history ts")

    s3 = await B.send_msg(S, "B here")
    eq(s3["seq"], 3, "new agent's send")
    m3 = await V.recv_type("msg", 5, seq=3)
    eq(m3["from"], "agent:" + b_id, "from the new agent")
    await A.request_error({"type": "send", "session": S, "cid": "a-late",
                           "kind": "text", "body": {"text": "x"}},
                          "not_in_session", ref=False)
    await A.expect_none("msg", 0.3)
    s4 = await V.send_msg(S, "thanks B")
    m4 = await B.recv_type("msg", 5, seq=4)
    eq((m4["from"], m4["cid"]), ("visitor:" + V.user, s4["cid"]),
       "the visitor reaches B")

    # back to the queue
    A.take_all("queue")
    B.take_all("queue")
    await B.send({"type": "transfer", "session": S, "to": None})
    want = {"type": "session_transferred", "session": S, "from": b_id,
            "to": None}
    tv = await V.recv_type("session_transferred", 5)
    eq(tv, want, "visitor's, back to the queue")
    eq(await B.recv_type("session_transferred", 5), want,
       "B's, back to the queue")
    qv = await V.recv_type("queued", 5)
    eq(qv, {"type": "queued", "session": S, "position": 1}, "queued again")
    check(V.time_of(tv) <= V.time_of(qv), "queued before transferred")
    for ag in (A, B):
        snap = await ag.recv_type("queue", 5)
        eq([w["session"] for w in snap["waiting"]], [S],
           "%s's queue after transfer to null" % ag.name)
        eq(snap["waiting"][0]["preview"], "hello", "preview is the first "
           "message's")
    await B.request_error({"type": "send", "session": S, "cid": "b-late",
                           "kind": "text", "body": {"text": "x"}},
                          "not_in_session", ref=False)
    s5 = await V.send_msg(S, "still waiting")
    eq(s5["seq"], 5, "the visitor can send while queued")
    acc2 = await A.accept(S)
    eq(acc2["last_seq"], 5, "re-accepted last_seq")
    eq([m["seq"] for m in acc2["history"]], [1, 2, 3, 4, 5],
       "re-accepted history")
    eq(await V.recv_type("session_accepted", 5),
       {"type": "session_accepted", "session": S, "agent": a_id},
       "session_accepted after the queue")


@scenario("auto_assign")
async def auto_assign(env):
    t = await env.tenant(auto_assign=True)
    a_id, b_id = await t.add_agent(), await t.add_agent()
    A = await t.agent(a_id)
    B = await t.agent(b_id)
    await B.send({"type": "status", "status": "away"})
    await B.ping()      # frames are handled in order: the status is in
    await A.ping()

    async def visit(expect_agent, others):
        v = await t.visitor()
        s = await v.send_msg(v.session, "auto please")
        acc = await expect_agent.recv_type("accepted", 10, session=v.session)
        eq((acc["visitor"], acc["last_seq"]), (v.user, 1), "auto accepted")
        eq([(m["seq"], m["cid"]) for m in acc["history"]],
           [(1, s["cid"])], "auto accepted history")
        eq(await v.recv_type("session_accepted", 10),
           {"type": "session_accepted", "session": v.session,
            "agent": expect_agent.user}, "visitor's session_accepted")
        for o in others:
            await o.expect_none("accepted", 0.2,
                                lambda f: f.get("session") == v.session)
        return v

    await visit(A, [B])            # B is away
    await visit(A, [B])
    await B.send({"type": "status", "status": "online"})
    await B.ping()
    await visit(B, [A])            # B has the fewest active sessions
    await visit(B, [A])            # still fewer (1 against 2)
    await visit(A, [B])            # tie 2:2: A got its last one earlier

    # capacity: a full agent gets nothing; a freed slot takes the queue head
    t2 = await env.tenant(auto_assign=True, agent_capacity=1)
    c_id = await t2.add_agent()
    C = await t2.agent(c_id)
    v1 = await t2.visitor()
    await v1.send_msg(v1.session, "first")
    await C.recv_type("accepted", 10, session=v1.session)
    v2 = await t2.visitor()
    await v2.send_msg(v2.session, "second")
    eq(await v2.recv_type("queued", 10),
       {"type": "queued", "session": v2.session, "position": 1},
       "over capacity: queued")
    await C.expect_none("accepted", 0.5,
                        lambda f: f.get("session") == v2.session)
    await C.send({"type": "close", "session": v1.session,
                  "reason": "done"})
    await C.recv_type("session_closed", 5, session=v1.session)
    acc = await C.recv_type("accepted", 10, session=v2.session)
    eq(acc["last_seq"], 1, "assigned when capacity frees")
    await v2.recv_type("session_accepted", 10, session=v2.session)


@scenario("auto_assign_ties")
async def auto_assign_ties(env):
    """Fewest active sessions first; ties go to the agent idle longest."""
    t = await env.tenant(auto_assign=True)
    ids = [await t.add_agent() for _ in range(2)]
    X = await t.agent(ids[0])
    await asyncio.sleep(0.05)
    Y = await t.agent(ids[1])
    await X.ping()
    await Y.ping()
    order = []
    for i in range(4):
        v = await t.visitor()
        await v.send_msg(v.session, "hi %d" % i)
        sa = await v.recv_type("session_accepted", 10)
        order.append(sa["agent"])
    # X came online first (idle longest) -> X, then Y (fewer), then X
    # (tie; X got its session before Y), then Y.
    eq(order, [ids[0], ids[1], ids[0], ids[1]], "assignment order")
    for ag in (X, Y, X, Y):
        await ag.recv_type("accepted", 5)
    await X.expect_none("accepted", 0.3)
    await Y.expect_none("accepted", 0.01)


@scenario("close_rules")
async def close_rules(env):
    """Rules 55 and 56: the visitor leaves its own session; any agent may
    close a queued one; typing/read with no peer are accepted silently."""
    t = await env.tenant()
    a_id, b_id = await t.add_agent(), await t.add_agent()
    A, B = await t.agent(a_id), await t.agent(b_id)

    # no peer yet: typing and read are fine and go nowhere
    V, _, _ = await queued_session(t, "anyone?")
    S = V.session
    await V.send({"type": "typing", "session": S, "on": True, "ref": "ty"})
    await V.send({"type": "read", "session": S, "seq": 1, "ref": "rd"})
    await V.send({"type": "ack", "session": S, "seq": 99, "ref": "ak"})
    await V.ping()
    eq(V.all_of("error"), [], "errors for typing/read/ack without a peer")
    await A.expect_none("typing", 0.2)
    await A.expect_none("read", 0.01)

    # any agent of the tenant closes a queued session
    await B.send({"type": "close", "session": S, "reason": "spam"})
    want = {"type": "session_closed", "session": S, "reason": "spam",
            "by": "agent:" + b_id}
    eq(await V.recv_type("session_closed", 5), want, "visitor's close")
    eq(await B.recv_type("session_closed", 5), want, "closer's close")
    st = await V.recv_type("session_started", 5)
    eq(st["state"], "new", "fresh session")
    snap = None
    while True:
        snap = await A.recv_type("queue", 5)
        if not snap["waiting"]:
            break
    eq(snap, {"type": "queue", "waiting": []}, "queue after the close")

    # the visitor leaves an active session; the reason may be absent
    V2, A, _ = await active_session(t, a_id, agent_client=A)
    S2 = V2.session
    await V2.send({"type": "close", "session": S2})
    want = {"type": "session_closed", "session": S2, "reason": "",
            "by": "visitor:" + V2.user}
    eq(await A.recv_type("session_closed", 5), want, "agent told")
    eq(await V2.recv_type("session_closed", 5), want, "visitor told")
    st2 = await V2.recv_type("session_started", 5)
    check(st2["session"] != S2, "a fresh session after leaving")
    await A.request_error({"type": "send", "session": S2, "cid": "gone",
                           "kind": "text", "body": {"text": "hello?"}},
                          "invalid_state", ref=False)
    await V2.request_error({"type": "close", "session": S2},
                           "invalid_state")
    # the visitor may close a `new` session too
    S3 = st2["session"]
    await V2.send({"type": "close", "session": S3, "reason": "bye"})
    eq(await V2.recv_type("session_closed", 5),
       {"type": "session_closed", "session": S3, "reason": "bye",
        "by": "visitor:" + V2.user}, "closing a new session")
    st3 = await V2.recv_type("session_started", 5)
    check(st3["session"] not in (S2, S3), "another fresh session")


@scenario("history_limits")
async def history_limits(env):
    """accepted carries the last 50; sync clamps to 200; previews (rule
    44)."""
    t = await env.tenant(rate_limits={"messages_per_s": 100000,
                                      "burst": 100000,
                                      "tenant_messages_per_s": 1000000})
    a_id = await t.add_agent()
    A = await t.agent(a_id)
    V = await t.visitor()
    S = V.session
    long_text = "é" * 150
    await V.send_msg(S, long_text)
    for i in range(2, 251):
        await V.send({"type": "send", "session": S, "cid": "h-%d" % i,
                      "kind": "text", "body": {"text": "n%d" % i}})
    for i in range(2, 251):
        await V.recv_type("sent", 10, cid="h-%d" % i)
    snap = await A.recv_type("queue", 5)
    eq(snap["waiting"][0]["preview"], "é" * 100, "preview: 100 characters")
    acc = await A.accept(S)
    eq(acc["last_seq"], 250, "accepted last_seq")
    eq([m["seq"] for m in acc["history"]], list(range(201, 251)),
       "accepted history: the last 50, oldest first")
    await A.expect_none("msg", 0.5)          # older ones only via sync
    await A.send({"type": "sync", "session": S, "limit": 1000})
    h = await A.recv_type("history", 5)
    eq(([m["seq"] for m in h["messages"]], h["more"]),
       (list(range(1, 201)), True), "sync clamped to 200")
    eq(h["messages"][0]["body"], {"text": long_text}, "stored text whole")
    await A.send({"type": "sync", "session": S, "after": 200, "limit": 1000})
    h = await A.recv_type("history", 5)
    eq(([m["seq"] for m in h["messages"]], h["more"]),
       (list(range(201, 251)), False), "the rest")
    s = await V.send_msg(S, "after accept")
    eq((await A.recv_type("msg", 5, seq=251))["cid"], s["cid"],
       "messages after last_seq come as msg")

    # previews of other kinds
    for kind, body, want in (("image", {"object_url": "http://x/y.png"},
                              "[image]"),
                             ("file", {"object_url": "http://x/y.pdf"},
                              "[file]"),
                             ("event", {"e": 1}, "[event]"),
                             ("text", {"nottext": 1}, ""),
                             ("text", {"text": 5}, "")):
        v = await t.visitor()
        await v.send_msg(v.session, kind=kind, body=body)
        while True:
            snap = await A.recv_type("queue", 5)
            items = [w for w in snap["waiting"] if w["session"] == v.session]
            if items:
                break
        eq(items[0]["preview"], want, "preview of %s %r" % (kind, body))

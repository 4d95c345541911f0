"""
tests/chat/test_auth.py - authentication on the WebSocket upgrade
(PROTOCOL.md §2, docs/protocol.md rules 43, 49, 59): every bad token is
refused with HTTP 401 and {"error":"unauthorized","message":…} before the
upgrade, admin tokens with 403, access_token works, tokens expire (4001)
unless refreshed, a refresh for another user is refused, deleted agents
and tenants are cut off (1008), and the per-IP upgrade limit (429).
"""

import asyncio
import time

from harness import (Client, active_session, check, claims, eq,
                     expect_upgrade_status, jwt, now_s, rand_hex, scenario,
                     ws_upgrade_raw)


async def refused(port, token, status=401, code="unauthorized", query=None,
                  what=""):
    path = "/v1/ws"
    if query:
        path += "?" + query
    r = await asyncio.to_thread(ws_upgrade_raw, port, path, token)
    eq(r.status, status, "upgrade status (%s)" % what)
    check(r.json is not None, "refusal body is not JSON (%s): %r", what,
          r.body[:200])
    eq(set(r.json), {"error", "message"}, "refusal body keys (%s)" % what)
    eq(r.json["error"], code, "refusal error (%s)" % what)
    check(isinstance(r.json["message"], str) and r.json["message"],
          "refusal message (%s): %r", what, r.json["message"])
    check(r.headers.get("content-type", "").startswith("application/json"),
          "refusal content-type %r", r.headers.get("content-type"))


@scenario("jwt_upgrade")
async def jwt_upgrade(env):
    t = await env.tenant()
    port = t.server.port
    a_id = await t.add_agent()
    gone_id = await t.add_agent()
    r = await t.server.admin("DELETE", "/v1/tenants/%s/agents/%s"
                             % (t.id, gone_id))
    eq(r.status, 204, "DELETE agent")
    vid = "v_" + rand_hex(10)
    good = claims(t.id, vid, "visitor")
    hs256 = jwt(good, t.secret)

    # the good token works, both ways
    c = await Client.open(port, hs256, name="bearer")
    eq(c.hello["user"], vid, "hello user")
    c2 = await Client.open(port, None, query={"access_token": hs256},
                           name="query")
    eq((c2.hello["user"], c2.hello["role"]), (vid, "visitor"),
       "access_token hello")
    eq(c2.hello["session"], c.hello["session"], "same visitor, same session")
    c3 = await Client.open(port, hs256, name="no-subprotocol",
                           subprotocol=False)
    eq(c3.ws.subprotocol, None, "no subprotocol offered, none selected")

    h, p, s = hs256.split(".")
    cases = [
        ("expired", jwt(claims(t.id, vid, "visitor", exp_in=-100),
                        t.secret)),
        ("alg none", jwt(good, t.secret, alg="none")),
        ("alg none, signed", jwt(good, t.secret, alg="none",
                                 sign_alg="HS256")),
        ("alg HS512", jwt(good, t.secret, alg="HS512")),
        ("alg RS256", jwt(good, t.secret, alg="RS256", sign_alg="HS256")),
        ("alg hs256", jwt(good, t.secret, alg="hs256", sign_alg="HS256")),
        ("no alg", jwt(good, t.secret, header={"typ": "JWT"},
                       sign_alg="HS256")),
        ("wrong key", jwt(good, t.secret + "x")),
        ("unknown tenant", jwt(claims("t-nope-" + rand_hex(3), vid,
                                      "visitor"), t.secret)),
        ("agent unknown", jwt(claims(t.id, "a_nobody", "agent"), t.secret)),
        ("agent deleted", jwt(claims(t.id, gone_id, "agent"), t.secret)),
        ("no exp", jwt({k: v for k, v in good.items() if k != "exp"},
                       t.secret)),
        ("exp a string", jwt(dict(good, exp=str(good["exp"])), t.secret)),
        ("bad role", jwt(claims(t.id, vid, "superuser"), t.secret)),
        ("no sub", jwt({k: v for k, v in good.items() if k != "sub"},
                       t.secret)),
        ("no tid", jwt({k: v for k, v in good.items() if k != "tid"},
                       t.secret)),
        ("tampered", h + "." + jwt(claims(t.id, "v_other", "visitor"),
                                   t.secret).split(".")[1] + "." + s),
        ("bad signature text", h + "." + p + "." + s[:-4] + "!!!!"),
        ("garbage", "garbage"),
        ("three garbage parts", "abc.def.ghi"),
        ("two parts", h + "." + p),
        ("empty", ""),
    ]
    for what, tok in cases:
        await refused(port, tok, what=what)
    await refused(port, None, what="missing token")
    await refused(port, None, query="access_token=garbage",
                  what="garbage access_token")
    # websockets sees the same refusal
    for what, tok in cases[:3]:
        await expect_upgrade_status(port, tok, 401)
    await expect_upgrade_status(port, None, 401)
    # admin tokens do not chat (rule 43)
    adm = jwt(claims(t.id, "boss", "admin"), t.secret)
    await refused(port, adm, status=403, code="forbidden", what="admin")
    await expect_upgrade_status(port, adm, 403)
    # the old-enough but within-skew token passes the check, then expires
    # at once (rule 59: the 30 s skew applies only to the check)
    skew = jwt(claims(t.id, vid, "visitor", exp_in=-10), t.secret)
    cs = await Client.open(port, skew, name="skewed")
    eq(cs.hello["type"], "hello", "within-skew hello")
    eq(await cs.wait_closed(3), 4001, "within-skew token closes 4001")
    # the agent token of a live agent works
    ca = await Client.open(port, t.agent_token(a_id), name="agent")
    eq(ca.hello["role"], "agent", "agent hello")
    await c.ping()
    await c2.ping()


@scenario("token_expiry")
async def token_expiry(env):
    t = await env.tenant()
    port = t.server.port
    vid = "v_" + rand_hex(10)

    exp1 = now_s() + 3
    tok1 = jwt(dict(claims(t.id, vid, "visitor"), exp=exp1), t.secret)
    plain = await Client.open(port, tok1, name="expiring")
    refr = await Client.open(port, tok1, name="refreshing")
    other = await Client.open(port, tok1, name="bad-refresh")

    exp2 = now_s() + 3600
    tok2 = jwt(dict(claims(t.id, vid, "visitor"), exp=exp2), t.secret)
    await refr.send({"type": "refresh", "token": tok2})
    eq(await refr.recv_type("refreshed", 5),
       {"type": "refreshed", "expires": exp2}, "refreshed")

    # tokens of another user, role or tenant, or garbage: refused, open
    t2 = await env.tenant()
    for what, tok in (
            ("another user", jwt(claims(t.id, "v_" + rand_hex(10), "visitor",
                                        exp_in=3600), t.secret)),
            ("another role", jwt(claims(t.id, vid, "admin", exp_in=3600),
                                 t.secret)),
            ("another tenant", jwt(claims(t2.id, vid, "visitor",
                                          exp_in=3600), t2.secret)),
            ("expired", jwt(claims(t.id, vid, "visitor", exp_in=-100),
                            t.secret)),
            ("wrong key", jwt(claims(t.id, vid, "visitor", exp_in=3600),
                              "nope")),
            ("garbage", "garbage"),
            ("empty", "")):
        e = await other.request_error({"type": "refresh", "token": tok},
                                      "unauthorized")
        check(e["code"] == "unauthorized", "refresh with %s", what)
        await other.ping()

    # wait past exp1
    for c in (plain, other):
        code = await c.wait_closed(exp1 - time.time() + 3)
        eq(code, 4001, "%s: close code at exp" % c.name)
        when = c.closed_wall
        check(exp1 - 0.2 <= when <= exp1 + 1.5,
              "%s closed at exp%+.2f s" % (c.name, when - exp1))
    await asyncio.sleep(max(0, exp1 + 1.5 - time.time()))
    check(not refr.closed.is_set(), "the refreshed connection was closed "
          "(code %r)", refr.close_code)
    await refr.ping()
    # a refresh with a token for another user after a good one keeps the
    # good expiry
    await refr.request_error({"type": "refresh", "token": "garbage"},
                             "unauthorized")
    await refr.ping()


@scenario("deleted_agent_and_tenant")
async def deleted_agent_and_tenant(env):
    t = await env.tenant()
    a_id = await t.add_agent()
    b_id = await t.add_agent()
    B = await t.agent(b_id)
    V, A, acc = await active_session(t, a_id)
    S = V.session
    B.take_all("queue")
    r = await t.server.admin("DELETE", "/v1/tenants/%s/agents/%s"
                             % (t.id, a_id))
    eq(r.status, 204, "DELETE agent")
    eq(await A.wait_closed(5), 1008, "deleted agent's connection")
    check("deleted" in (A.close_reason or ""), "rule 68: reason %r",
          A.close_reason)
    await refused(t.server.port, t.agent_token(a_id), what="deleted agent")
    # its session goes back to the queue (rule 45)
    tr = await V.recv_type("session_transferred", 5)
    eq((tr["session"], tr["to"]), (S, None), "back to the queue")
    eq(await V.recv_type("queued", 5),
       {"type": "queued", "session": S, "position": 1}, "queued again")
    snap = await B.recv_type("queue", 5)
    eq([w["session"] for w in snap["waiting"]], [S], "other agents see it")
    acc = await B.accept(S)
    eq(acc["last_seq"], 1, "another agent takes it")
    await V.ping()
    r = await t.server.admin("DELETE", "/v1/tenants/" + t.id)
    eq(r.status, 204, "DELETE tenant")
    eq(await V.wait_closed(5), 1008, "deleted tenant's visitor")
    check("deleted" in (V.close_reason or ""), "rule 68: reason %r",
          V.close_reason)
    await refused(t.server.port, t.visitor_token()[1], what="deleted tenant")


@scenario("upgrade_limit")
async def upgrade_limit(env):
    t = await env.tenant(rate_limits={"connections_per_ip_per_min": 3})
    for _ in range(3):
        await t.visitor()
    vid, tok = t.visitor_token()
    r = await asyncio.to_thread(ws_upgrade_raw, t.server.port, "/v1/ws", tok)
    eq(r.status, 429, "4th upgrade in a minute")
    check(r.json is not None and isinstance(r.json.get("error"), str),
          "429 body %r", r.body[:200])
    # another tenant is not affected
    t2 = await env.tenant()
    await (await t2.visitor()).ping()

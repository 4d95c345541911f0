"""
tests/chat/test_http.py - the HTTP API of PROTOCOL.md §7 and rule 62:
visitor and agent tokens (signed requests, nonce replay, login limit),
tenants and agents CRUD (201/200/204/404, merge patch, write-only secret,
rotation with the old secret still valid), tenant admin tokens, sessions
listing with its visibility rules, health, readiness and metrics.

Agent logins are limited per IP (10 a minute), so only auth_endpoints
logs in on this module's server.
"""

import asyncio
import base64
import json
import re

from harness import (Client, active_session, check, claims, eq, jwt, now_s,
                     queued_session, rand_hex, scenario, signature_header,
                     VISITOR_RE)

TENANT_KEYS = {"id", "name", "secret", "session_ttl", "heartbeat",
               "auto_assign", "agent_capacity", "rate_limits", "uploads",
               "webhook"}
SESSION_KEYS = {"id", "visitor", "agent", "state", "created", "updated",
                "last_seq"}


def jwt_payload(tok):
    p = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def err_body(r, status, code=None, what=""):
    eq(r.status, status, "%s status (body %r)" % (what, r.body[:200]))
    check(r.json is not None and isinstance(r.json.get("error"), str)
          and isinstance(r.json.get("message"), str),
          "%s: error body %r", what, r.body[:200])
    if code:
        eq(r.json["error"], code, what + " error code")


@scenario("auth_endpoints")
async def auth_endpoints(env):
    srv = env.server
    t = await env.tenant()
    a_id = await t.add_agent(password="correct horse")

    # anonymous visitor
    r = await srv.ahttp("POST", "/v1/auth/visitor", {"tenant": t.id})
    eq(r.status, 200, "visitor token status")
    eq(set(r.json), {"token", "visitor", "expires"}, "visitor token keys")
    check(VISITOR_RE.match(r.json["visitor"]), "visitor id %r",
          r.json["visitor"])
    check(abs(r.json["expires"] - (now_s() + 86400)) <= 5,
          "visitor token expires %r", r.json["expires"])
    pl = jwt_payload(r.json["token"])
    eq((pl["tid"], pl["sub"], pl["role"], pl["exp"]),
       (t.id, r.json["visitor"], "visitor", r.json["expires"]),
       "visitor token claims")
    c = await Client.open(srv.port, r.json["token"], name="anon")
    eq(c.hello["user"], r.json["visitor"], "anonymous visitor's hello")
    r2 = await srv.ahttp("POST", "/v1/auth/visitor", {"tenant": t.id})
    check(r2.json["visitor"] != r.json["visitor"], "two anonymous visitors "
          "got the same id")
    r = await srv.ahttp("POST", "/v1/auth/visitor",
                        {"tenant": "t-nope-" + rand_hex(3)})
    err_body(r, 404, "not_found", "visitor token, unknown tenant")
    r = await srv.ahttp("POST", "/v1/auth/visitor", raw=b"{nope")
    err_body(r, 400, "bad_request", "visitor token, bad JSON")

    # a known visitor needs the tenant's signature
    body = json.dumps({"tenant": t.id, "visitor": "cust-42"}).encode()
    r = await srv.ahttp("POST", "/v1/auth/visitor", raw=body)
    err_body(r, 401, "unauthorized", "visitor id without signature")
    sig = signature_header(t.secret, body)
    r = await srv.ahttp("POST", "/v1/auth/visitor", raw=body,
                        headers={"X-Chatcore-Signature": sig})
    eq(r.status, 200, "signed visitor token (%r)" % r.body[:200])
    eq(r.json["visitor"], "cust-42", "signed visitor id")
    eq(jwt_payload(r.json["token"])["sub"], "cust-42", "signed token sub")
    c = await Client.open(srv.port, r.json["token"], name="cust-42")
    eq(c.hello["user"], "cust-42", "signed visitor's hello")
    r = await srv.ahttp("POST", "/v1/auth/visitor", raw=body,
                        headers={"X-Chatcore-Signature": sig})
    err_body(r, 401, "unauthorized", "replayed nonce")
    for what, hdr, raw in (
            ("stale t", signature_header(t.secret, body, t=now_s() - 400),
             body),
            ("future t", signature_header(t.secret, body, t=now_s() + 400),
             body),
            ("wrong secret", signature_header("nope", body), body),
            ("other body", signature_header(t.secret, body + b" "),
             body),
            ("malformed", "t=1,n=2", body),
            ("bad hex", "t=%d,n=%s,v1=zz" % (now_s(), rand_hex(4)), body)):
        r = await srv.ahttp("POST", "/v1/auth/visitor", raw=raw,
                            headers={"X-Chatcore-Signature": hdr})
        err_body(r, 401, "unauthorized", "signature: " + what)
    # within 300 s is fine
    sig = signature_header(t.secret, body, t=now_s() - 200)
    r = await srv.ahttp("POST", "/v1/auth/visitor", raw=body,
                        headers={"X-Chatcore-Signature": sig})
    eq(r.status, 200, "signature 200 s old")

    # agent login (10 per minute per IP: count them)
    logins = 0

    async def login(agent, password):
        nonlocal logins
        logins += 1
        return await srv.ahttp("POST", "/v1/auth/agent",
                               {"tenant": t.id, "agent": agent,
                                "password": password})
    r = await login(a_id, "correct horse")
    eq(r.status, 200, "agent login (%r)" % r.body[:200])
    eq(set(r.json), {"token", "expires"}, "agent login keys")
    check(abs(r.json["expires"] - (now_s() + 43200)) <= 5,
          "agent token expires %r", r.json["expires"])
    pl = jwt_payload(r.json["token"])
    eq((pl["tid"], pl["sub"], pl["role"]), (t.id, a_id, "agent"),
       "agent token claims")
    ca = await Client.open(srv.port, r.json["token"], name="login")
    eq(ca.hello["user"], a_id, "logged-in agent's hello")
    err_body(await login(a_id, "wrong horse"), 401, "unauthorized",
             "wrong password")
    err_body(await login("a_nobody", "correct horse"), 401, "unauthorized",
             "unknown agent")
    # a password change takes effect
    r = await srv.admin("PATCH", "/v1/tenants/%s/agents/%s" % (t.id, a_id),
                        {"password": "battery staple"})
    eq(r.status, 200, "PATCH password")
    err_body(await login(a_id, "correct horse"), 401, "unauthorized",
             "old password")
    eq((await login(a_id, "battery staple")).status, 200, "new password")
    while logins < 10:
        eq((await login(a_id, "battery staple")).status, 200,
           "login %d" % (logins))
    err_body(await login(a_id, "battery staple"), 429, None,
             "11th login in a minute")


@scenario("tenants_crud")
async def tenants_crud(env):
    srv = env.server
    tid = "tc" + rand_hex(5)
    path = "/v1/tenants/" + tid

    for tok, status in ((None, 401), ("wrong-key", 401)):
        r = await srv.ahttp("PUT", path, {"name": "X"}, token=tok)
        err_body(r, status, "unauthorized", "PUT without the admin key")
    r = await srv.admin("PUT", path, {"name": "Acme"})
    eq(r.status, 201, "PUT creates")
    eq(set(r.json), TENANT_KEYS, "created tenant keys")
    secret = r.json["secret"]
    check(re.match(r"^[0-9a-f]{64}$", secret), "generated secret %r",
          secret)
    want = {"id": tid, "name": "Acme", "secret": secret, "session_ttl": 600,
            "heartbeat": 20, "auto_assign": False, "agent_capacity": 5,
            "rate_limits": {"messages_per_s": 20, "burst": 40,
                            "tenant_messages_per_s": 2000,
                            "connections_per_ip_per_min": 60},
            "uploads": {"max_bytes": 10485760,
                        "allowed_mime": ["image/png", "image/jpeg",
                                         "application/pdf"],
                        "presign_per_min": 30},
            "webhook": {"url": None, "secret": None}}
    eq(r.json, want, "created tenant")
    r = await srv.admin("GET", path)
    eq(r.status, 200, "GET tenant")
    del want["secret"]
    eq(r.json, want, "GET tenant (no secret)")

    # replace without secret keeps it
    r = await srv.admin("PUT", path, {"name": "Acme 2", "heartbeat": 30})
    eq(r.status, 200, "PUT replaces")
    check("secret" not in r.json, "replace response shows the secret")
    eq((r.json["name"], r.json["heartbeat"], r.json["session_ttl"]),
       ("Acme 2", 30, 600), "replaced")
    v = await Client.open(srv.port, jwt(claims(tid, "v_" + rand_hex(10),
                                               "visitor"), secret))
    eq(v.hello["heartbeat_s"], 30, "heartbeat_s follows the tenant")
    await v.close()

    # merge patch
    r = await srv.admin("PATCH", path, {"session_ttl": 30,
                                        "rate_limits": {"burst": 10}})
    eq(r.status, 200, "PATCH")
    eq((r.json["session_ttl"], r.json["rate_limits"]["burst"],
        r.json["rate_limits"]["messages_per_s"], r.json["name"],
        r.json["heartbeat"]), (30, 10, 20, "Acme 2", 30), "merged")
    check("secret" not in r.json, "PATCH response shows the secret")
    r = await srv.admin("PATCH", path, {"session_ttl": None})
    eq(r.json["session_ttl"], 600, "null resets to the default")
    for bad in ({"session_ttl": 0}, {"heartbeat": 4}, {"nope": 1},
                {"auto_assign": "yes"}, {"id": "other"}):
        r = await srv.admin("PATCH", path, bad)
        err_body(r, 400, "bad_request", "PATCH %r" % bad)
    r = await srv.admin("PUT", "/v1/tenants/tbad" + rand_hex(3),
                        {"heartbeat": 301})
    err_body(r, 400, "bad_request", "PUT heartbeat 301")
    r = await srv.admin("PUT", "/v1/tenants/bad%20id", {})
    check(r.status in (400, 404), "PUT with a bad id: %d", r.status)
    r = await srv.admin("GET", path)
    eq(r.json["session_ttl"], 600, "bad patches changed nothing")

    # list
    r = await srv.admin("GET", "/v1/tenants")
    eq(r.status, 200, "GET /v1/tenants")
    ids = [x["id"] for x in r.json["tenants"]]
    check(tid in ids, "tenant %s not listed", tid)
    check(all("secret" not in x for x in r.json["tenants"]),
          "a listed tenant shows its secret")

    # rotation: both secrets sign
    r = await srv.admin("POST", path + "/secret")
    eq(r.status, 200, "rotate")
    new = r.json.get("secret")
    check(isinstance(new, str) and new != secret and len(new) >= 32,
          "rotated secret %r", new)
    for what, sec in (("old", secret), ("new", new)):
        c = await Client.open(srv.port, jwt(claims(tid, "v_" + rand_hex(10),
                                                   "visitor"), sec),
                              name=what)
        eq(c.hello["tenant"], tid, "%s secret signs" % what)
        await c.close()

    # a tenant admin token: its own tenant only
    adm = jwt(claims(tid, "boss", "admin"), new)
    r = await srv.ahttp("GET", path, token=adm)
    eq(r.status, 200, "tenant admin GET own")
    r = await srv.ahttp("PATCH", path, {"name": "Acme 3"}, token=adm)
    eq((r.status, r.json["name"]), (200, "Acme 3"), "tenant admin PATCH")
    other = await env.tenant()
    r = await srv.ahttp("GET", "/v1/tenants/" + other.id, token=adm)
    err_body(r, 403, "forbidden", "tenant admin GET other")
    r = await srv.ahttp("GET", "/v1/tenants", token=adm)
    eq([x["id"] for x in r.json["tenants"]], [tid], "tenant admin's list")
    r = await srv.ahttp("DELETE", path, token=adm)
    err_body(r, 403, "forbidden", "tenant admin DELETE")
    r = await srv.ahttp("PUT", path + "/agents/a_boss",
                        {"name": "B", "password": "longenough"}, token=adm)
    eq(r.status, 201, "tenant admin creates an agent")
    r = await srv.ahttp("POST", path + "/secret", token=adm)
    eq(r.status, 200, "tenant admin rotates")
    vis = jwt(claims(tid, "v_" + rand_hex(10), "visitor"), r.json["secret"])
    r = await srv.ahttp("GET", path, token=vis)
    err_body(r, 403, "forbidden", "visitor token on tenants")

    # delete
    r = await srv.admin("DELETE", path)
    eq((r.status, r.body), (204, b""), "DELETE")
    err_body(await srv.admin("GET", path), 404, "not_found", "GET deleted")
    err_body(await srv.admin("DELETE", path), 404, "not_found",
             "DELETE deleted")
    err_body(await srv.admin("PATCH", path, {"name": "x"}), 404,
             "not_found", "PATCH deleted")


@scenario("agents_crud")
async def agents_crud(env):
    srv = env.server
    t = await env.tenant()
    base = "/v1/tenants/%s/agents/" % t.id
    r = await srv.admin("PUT", base + "ann", {"name": "Ann",
                                              "password": "password1"})
    eq(r.status, 201, "PUT agent creates")
    eq(r.json, {"id": "ann", "tenant": t.id, "name": "Ann",
                "capacity": None}, "agent object")
    r = await srv.admin("PUT", base + "ann", {"name": "Ann B",
                                              "password": "password2",
                                              "capacity": 2})
    eq((r.status, r.json["name"], r.json["capacity"]), (200, "Ann B", 2),
       "PUT agent replaces")
    r = await srv.admin("GET", base + "ann")
    eq(r.json, {"id": "ann", "tenant": t.id, "name": "Ann B",
                "capacity": 2}, "GET agent")
    r = await srv.admin("PATCH", base + "ann", {"capacity": None})
    eq(r.json, {"id": "ann", "tenant": t.id, "name": "Ann B",
                "capacity": None}, "PATCH capacity null")
    for bad in ({"name": "x", "password": "short"}, {"name": "x"},
                {"password": "password1", "capacity": 0},
                {"password": "password1", "extra": 1}):
        err_body(await srv.admin("PUT", base + "bob", bad), 400,
                 "bad_request", "PUT agent %r" % bad)
    err_body(await srv.admin("PUT", "/v1/tenants/t-nope-%s/agents/x"
                             % rand_hex(3),
                             {"name": "x", "password": "password1"}),
             404, "not_found", "agent of an unknown tenant")
    await t.add_agent("bob")
    r = await srv.admin("GET", "/v1/tenants/%s/agents" % t.id)
    eq(r.status, 200, "list agents")
    eq(sorted(a["id"] for a in r.json["agents"]), ["ann", "bob"],
       "agents listed")
    check(all(set(a) == {"id", "tenant", "name", "capacity"}
              for a in r.json["agents"]), "listed agent keys")
    check(b"password" not in r.body and b"pbkdf2" not in r.body,
          "a password or hash shows")
    r = await srv.admin("DELETE", base + "ann")
    eq((r.status, r.body), (204, b""), "DELETE agent")
    err_body(await srv.admin("GET", base + "ann"), 404, "not_found",
             "GET deleted agent")
    err_body(await srv.admin("DELETE", base + "ann"), 404, "not_found",
             "DELETE deleted agent")


@scenario("sessions_api")
async def sessions_api(env):
    srv = env.server
    t = await env.tenant()
    a_id = await t.add_agent()
    V1, A, acc = await active_session(t, a_id, text="first")
    await A.send_msg(V1.session, "reply")
    V2, _, _ = await queued_session(t, "second")
    V3 = await t.visitor()
    S1, S2, S3 = V1.session, V2.session, V3.session
    atok = t.agent_token(a_id)

    r = await srv.ahttp("GET", "/v1/sessions", token=atok)
    eq(r.status, 200, "GET /v1/sessions")
    eq(set(r.json), {"sessions"}, "sessions keys")
    got = {s["id"]: s for s in r.json["sessions"]}
    eq(set(got), {S1, S2, S3}, "the tenant's sessions")
    for s in got.values():
        eq(set(s), SESSION_KEYS, "session keys")
    eq([s["id"] for s in r.json["sessions"]], [S3, S2, S1], "newest first")
    eq((got[S1]["state"], got[S1]["agent"], got[S1]["visitor"],
        got[S1]["last_seq"]), ("active", a_id, V1.user, 2), "S1")
    eq((got[S2]["state"], got[S2]["agent"], got[S2]["last_seq"]),
       ("queued", None, 1), "S2")
    eq((got[S3]["state"], got[S3]["last_seq"]), ("new", 0), "S3")
    for state, want in (("active", [S1]), ("queued", [S2]), ("new", [S3]),
                        ("closed", []), ("offline", [])):
        r = await srv.ahttp("GET", "/v1/sessions?state=" + state,
                            token=atok)
        eq([s["id"] for s in r.json["sessions"]], want, "state=" + state)
    err_body(await srv.ahttp("GET", "/v1/sessions?state=bogus",
                             token=atok), 400, "bad_request", "bad state")
    r = await srv.ahttp("GET", "/v1/sessions?limit=1", token=atok)
    eq([s["id"] for s in r.json["sessions"]], [S3], "limit=1")
    err_body(await srv.ahttp("GET", "/v1/sessions?limit=0", token=atok),
             400, "bad_request", "limit=0")

    # a visitor sees only its own
    v2tok = t.visitor_token(V2.user)[1]
    r = await srv.ahttp("GET", "/v1/sessions", token=v2tok)
    eq([s["id"] for s in r.json["sessions"]], [S2], "visitor's list")
    r = await srv.ahttp("GET", "/v1/sessions/" + S2, token=v2tok)
    eq((r.status, r.json["id"]), (200, S2), "visitor's own session")
    err_body(await srv.ahttp("GET", "/v1/sessions/" + S1, token=v2tok),
             404, "not_found", "another visitor's session")
    err_body(await srv.ahttp("GET", "/v1/sessions/%s/messages" % S1,
                             token=v2tok), 404, "not_found",
             "another visitor's messages")

    # messages, with the rules of sync
    r = await srv.ahttp("GET", "/v1/sessions/%s/messages" % S1, token=atok)
    eq(r.status, 200, "messages")
    eq(set(r.json), {"messages", "more"}, "messages keys")
    eq([m["seq"] for m in r.json["messages"]], [1, 2], "messages seqs")
    eq(r.json["more"], False, "more")
    eq(set(r.json["messages"][0]),
       {"session", "seq", "from", "kind", "body", "ts", "cid"},
       "message object keys")
    eq((r.json["messages"][0]["from"], r.json["messages"][0]["body"]),
       ("visitor:" + V1.user, {"text": "first"}), "message 1")
    r = await srv.ahttp("GET", "/v1/sessions/%s/messages?after=0&limit=1"
                        % S1, token=atok)
    eq(([m["seq"] for m in r.json["messages"]], r.json["more"]),
       ([1], True), "limit=1")
    r = await srv.ahttp("GET", "/v1/sessions/%s/messages?after=2" % S1,
                        token=atok)
    eq(r.json, {"messages": [], "more": False}, "after the end")
    r = await srv.ahttp("GET", "/v1/sessions/%s/messages?limit=100000"
                        % S1, token=atok)
    eq(r.status, 200, "limit clamped, not refused")
    err_body(await srv.ahttp("GET", "/v1/sessions/%s/messages?limit=0"
                             % S1, token=atok), 400, "bad_request",
             "messages limit=0")

    # other tenants, the admin key
    t2 = await env.tenant()
    b_id = await t2.add_agent()
    err_body(await srv.ahttp("GET", "/v1/sessions/" + S1,
                             token=t2.agent_token(b_id)), 404, "not_found",
             "another tenant's agent")
    r = await srv.admin("GET", "/v1/sessions?tenant=" + t.id)
    eq(sorted(s["id"] for s in r.json["sessions"]), sorted([S1, S2, S3]),
       "admin key with ?tenant=")
    r = await srv.admin("GET", "/v1/sessions/%s?tenant=%s" % (S1, t.id))
    eq((r.status, r.json["id"]), (200, S1), "admin key, one session")
    err_body(await srv.ahttp("GET", "/v1/sessions"), 401, "unauthorized",
             "no credentials")
    err_body(await srv.ahttp("GET", "/v1/sessions", token="garbage"), 401,
             "unauthorized", "garbage token")
    err_body(await srv.ahttp("GET", "/v1/sessions/S_nope", token=atok), 404,
             "not_found", "unknown session")


@scenario("health_metrics")
async def health_metrics(env):
    srv = env.server
    t = await env.tenant()
    a_id = await t.add_agent()
    A = await t.agent(a_id)
    V1, _, _ = await queued_session(t, "one")
    V2, _, _ = await queued_session(t, "two")
    await A.recv_type("queue", 5)
    await A.recv_type("queue", 5)

    r = await srv.ahttp("GET", "/healthz")
    eq(r.status, 200, "/healthz")
    r = await srv.ahttp("GET", "/readyz")
    eq((r.status, r.json), (200, {"ready": True}), "/readyz")
    r = await srv.ahttp("GET", "/metrics")
    eq(r.status, 200, "/metrics")
    check(r.headers.get("content-type", "").startswith("text/plain"),
          "metrics content-type %r", r.headers.get("content-type"))
    text = r.body.decode()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for name, typ in (("chatcore_connections", "gauge"),
                      ("chatcore_messages_total", "counter"),
                      ("chatcore_sessions", "gauge"),
                      ("chatcore_queue_length", "gauge"),
                      ("chatcore_retransmits_total", "counter"),
                      ("chatcore_rate_limited_total", "counter")):
        eq(types.get(name), typ, "TYPE of " + name)
    hists = [n for n, ty in types.items()
             if ty == "histogram" and n.endswith("_seconds")]
    check(hists, "no histogram named *_seconds; TYPEs: %r", types)
    for h in hists:
        check(re.search(r'^%s_bucket\{.*le="\+Inf".*\} \d+' % h, text, re.M),
              "%s has no +Inf bucket", h)
        check(re.search(r"^%s_sum(\{.*\})? \S+" % h, text, re.M)
              and re.search(r"^%s_count(\{.*\})? \d+" % h, text, re.M),
              "%s lacks _sum/_count", h)

    def value(pattern):
        m = re.search(r"^%s (\S+)$" % pattern, text, re.M)
        check(m, "no sample matching %r", pattern)
        return float(m.group(1))
    eq(value(r'chatcore_queue_length\{tenant="%s"\}' % t.id), 2.0,
       "our tenant's queue length")
    check(value(r'chatcore_connections\{role="visitor"\}') >= 2,
          "visitor connections")
    check(value(r'chatcore_connections\{role="agent"\}') >= 1,
          "agent connections")
    check(re.search(r'^chatcore_messages_total\{direction="[a-z]+"\} \d+',
                    text, re.M), "messages_total with direction")
    check(re.search(r'^chatcore_sessions\{state="queued"\} \d+', text,
                    re.M), "sessions with state")
    await close_quietly(V1, V2, A)


async def close_quietly(*cs):
    await asyncio.gather(*(c.close() for c in cs), return_exceptions=True)

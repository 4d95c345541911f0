"""
tests/chat/test_web_api.py - what the web pages need of the server beyond
PROTOCOL.md (docs/protocol.md rules 64-67): CORS on the widget's
endpoints and on static files, a visitor renewing its own token, agents
reading their colleagues, and an agent's public profile.
"""

import os
import tempfile

from harness import check, eq, rand_hex, scenario


def err(r, status, code, what):
    eq(r.status, status, "%s status (body %r)" % (what, r.body[:200]))
    eq((r.json or {}).get("error"), code, what + " error code")


@scenario("cors")
async def cors(env):
    srv = env.server
    t = await env.tenant()
    r = await srv.ahttp("OPTIONS", "/v1/auth/visitor",
                        headers={"Origin": "https://shop.example",
                                 "Access-Control-Request-Method": "POST"})
    eq(r.status, 204, "preflight status")
    eq(r.headers.get("access-control-allow-origin"), "*", "preflight origin")
    check("POST" in r.headers.get("access-control-allow-methods", ""),
          "preflight methods %r", r.headers)
    allow = r.headers.get("access-control-allow-headers", "").lower()
    check("authorization" in allow and "content-type" in allow,
          "preflight headers %r", allow)
    for path in ("/v1/agents/a1", "/v1/sessions", "/v1/sessions/S_x"):
        r = await srv.ahttp("OPTIONS", path)
        eq(r.status, 204, path + " preflight status")
    vid, vtok = t.visitor_token()
    r = await srv.ahttp("GET", "/v1/sessions", token=vtok)
    eq((r.status, r.headers.get("access-control-allow-origin")), (200, "*"),
       "sessions list origin")
    r = await srv.ahttp("GET", "/v1/sessions/S_nope", token=vtok)
    eq((r.status, r.headers.get("access-control-allow-origin")), (404, "*"),
       "session error origin")
    # answers and errors alike carry the header, or the page cannot read
    # the error
    r = await srv.ahttp("POST", "/v1/auth/visitor", {"tenant": t.id})
    eq(r.status, 200, "visitor token")
    eq(r.headers.get("access-control-allow-origin"), "*", "token origin")
    r = await srv.ahttp("POST", "/v1/auth/visitor", {"tenant": "nope-x"})
    err(r, 404, "not_found", "unknown tenant")
    eq(r.headers.get("access-control-allow-origin"), "*", "error origin")
    # the admin API stays same-origin only
    r = await srv.admin("GET", "/v1/tenants")
    eq(r.headers.get("access-control-allow-origin"), None, "admin API origin")
    r = await srv.ahttp("OPTIONS", "/v1/tenants")
    eq(r.status, 405, "no preflight for the admin API")

    d = tempfile.mkdtemp(prefix="chatwire-web-")
    with open(os.path.join(d, "widget.js"), "w") as f:
        f.write("// test\n")
    s2 = env.new_server(extra=("--static", d))
    s2.start()
    r = await s2.ahttp("GET", "/widget.js")
    eq(r.status, 200, "static file")
    eq(r.body, b"// test\n", "static body")
    eq(r.headers.get("access-control-allow-origin"), "*", "static origin")
    # pages at "/" must not shadow the API beside them
    r = await s2.ahttp("GET", "/healthz")
    eq((r.status, r.json), (200, {"status": "ok"}), "healthz beside pages")
    r = await s2.admin("GET", "/v1/tenants")
    eq(r.status, 200, "admin API beside pages (%r)" % r.body[:100])
    r = await s2.ahttp("GET", "/metrics")
    check(r.status == 200 and b"chatcore_connections" in r.body,
          "metrics beside pages: %d %r", r.status, r.body[:100])
    r = await s2.ahttp("GET", "/v1/auth/visitor")
    eq(r.status, 405, "a POST route's path is not a file")
    r = await s2.ahttp("GET", "/nope.js")
    eq(r.status, 404, "missing file")


@scenario("visitor_renewal")
async def visitor_renewal(env):
    srv = env.server
    t = await env.tenant()
    t2 = await env.tenant()
    r = await srv.ahttp("POST", "/v1/auth/visitor", {"tenant": t.id})
    vid, tok = r.json["visitor"], r.json["token"]
    r = await srv.ahttp("POST", "/v1/auth/visitor",
                        {"tenant": t.id, "visitor": vid}, token=tok)
    eq(r.status, 200, "renewal (%r)" % r.body[:200])
    eq(r.json["visitor"], vid, "renewed visitor id")
    check(r.json["token"] != tok, "renewal returned the same token")
    # only for itself, only in its tenant, only as a visitor
    r = await srv.ahttp("POST", "/v1/auth/visitor",
                        {"tenant": t.id, "visitor": "v_someone"}, token=tok)
    err(r, 401, "unauthorized", "renewal for another visitor")
    r = await srv.ahttp("POST", "/v1/auth/visitor",
                        {"tenant": t2.id, "visitor": vid}, token=tok)
    err(r, 401, "unauthorized", "renewal in another tenant")
    aid = await t.add_agent()
    r = await srv.ahttp("POST", "/v1/auth/visitor",
                        {"tenant": t.id, "visitor": aid},
                        token=t.agent_token(aid))
    err(r, 401, "unauthorized", "renewal with an agent token")
    _, expired = t.visitor_token(vid, exp_in=-120)
    r = await srv.ahttp("POST", "/v1/auth/visitor",
                        {"tenant": t.id, "visitor": vid}, token=expired)
    err(r, 401, "unauthorized", "renewal with an expired token")
    _, forged = t2.visitor_token(vid)
    r = await srv.ahttp("POST", "/v1/auth/visitor",
                        {"tenant": t.id, "visitor": vid}, token=forged)
    err(r, 401, "unauthorized", "renewal signed with another secret")


@scenario("agent_directory")
async def agent_directory(env):
    srv = env.server
    t = await env.tenant()
    t2 = await env.tenant()
    a1 = await t.add_agent(name="Alice 王")
    a2 = await t.add_agent(name="Bob")
    other = await t2.add_agent()
    atok = t.agent_token(a1)
    # rule 66: read the tenant's agents, change nothing
    r = await srv.ahttp("GET", "/v1/tenants/%s/agents" % t.id, token=atok)
    eq(r.status, 200, "agent lists colleagues (%r)" % r.body[:200])
    eq(sorted(a["id"] for a in r.json["agents"]), sorted([a1, a2]),
       "colleagues")
    check(all("password" not in a and "pwhash" not in a
              for a in r.json["agents"]), "password leaked %r", r.json)
    r = await srv.ahttp("GET", "/v1/tenants/%s/agents/%s" % (t.id, a2),
                        token=atok)
    eq((r.status, r.json.get("name")), (200, "Bob"), "one colleague")
    r = await srv.ahttp("PATCH", "/v1/tenants/%s/agents/%s" % (t.id, a2),
                        {"name": "Eve"}, token=atok)
    err(r, 403, "forbidden", "agent renames a colleague")
    r = await srv.ahttp("DELETE", "/v1/tenants/%s/agents/%s" % (t.id, a2),
                        token=atok)
    err(r, 403, "forbidden", "agent deletes a colleague")
    r = await srv.ahttp("GET", "/v1/tenants/%s" % t.id, token=atok)
    err(r, 403, "forbidden", "agent reads the tenant")
    r = await srv.ahttp("GET", "/v1/tenants/%s/agents" % t2.id, token=atok)
    err(r, 403, "forbidden", "agent reads another tenant's agents")
    vid, vtok = t.visitor_token()
    r = await srv.ahttp("GET", "/v1/tenants/%s/agents" % t.id, token=vtok)
    err(r, 403, "forbidden", "visitor lists agents")

    # rule 67: the public profile, for the widget
    r = await srv.ahttp("GET", "/v1/agents/" + a1, token=vtok)
    eq((r.status, r.json), (200, {"id": a1, "name": "Alice 王"}),
       "profile for a visitor")
    eq(r.headers.get("access-control-allow-origin"), "*", "profile origin")
    r = await srv.ahttp("GET", "/v1/agents/" + a2, token=atok)
    eq((r.status, r.json), (200, {"id": a2, "name": "Bob"}),
       "profile for an agent")
    r = await srv.ahttp("GET", "/v1/agents/" + other, token=vtok)
    err(r, 404, "not_found", "another tenant's agent")
    r = await srv.ahttp("GET", "/v1/agents/nobody-" + rand_hex(3),
                        token=vtok)
    err(r, 404, "not_found", "unknown agent")
    r = await srv.ahttp("GET", "/v1/agents/a%2F..", token=vtok)
    err(r, 404, "not_found", "bad agent id")
    r = await srv.ahttp("GET", "/v1/agents/" + a1)
    err(r, 401, "unauthorized", "profile without a token")
    r = await srv.admin("GET", "/v1/agents/" + a1)
    err(r, 400, "bad_request", "admin key without ?tenant=")
    r = await srv.admin("GET", "/v1/agents/%s?tenant=%s" % (a1, t.id))
    eq((r.status, r.json), (200, {"id": a1, "name": "Alice 王"}),
       "profile with the admin key")
    r = await srv.admin("DELETE", "/v1/tenants/%s/agents/%s" % (t.id, a2))
    eq(r.status, 204, "delete agent")
    r = await srv.ahttp("GET", "/v1/agents/" + a2, token=vtok)
    err(r, 404, "not_found", "deleted agent")

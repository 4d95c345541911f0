"""
tests/chat/harness.py - shared machinery for the over-the-wire tests of
examples/chatcore-server (the chat protocol of PROTOCOL.md and the
decisions of docs/protocol.md §12):

  Server     start the binary on port 0 with a fresh (or given) data dir,
             learn the port from its "listening" log line, keep draining
             its stderr into a file, stop it with SIGTERM (exit 0 and no
             sanitizer report expected) or SIGKILL, restart on the same
             data dir.
  http_req   one HTTP request over http.client; `ahttp` runs it off the
             event loop so WebSocket clients keep being read meanwhile.
  Tenant     a fresh tenant per test (PUT with the admin key), its agents,
             tokens minted locally (HS256 with hmac/hashlib) or fetched
             from the server, and WebSocket clients of its users.
  Client     a WebSocket client (websockets 10.4, asyncio API) that reads
             every frame in a background task, keeps them all, hands them
             out by type, optionally acks every msg, and records the
             close code.

Every wait takes a timeout: a server that stops answering fails the test,
it never hangs it. Only the standard library and websockets are used.
"""

import asyncio
import base64
import collections
import contextvars
import ctypes
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

SUBPROTOCOL = "chatcore.v1"
NODE = "gw-test"
ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
SESSION_RE = re.compile(r"^S_[0-9a-f]{20}$")
VISITOR_RE = re.compile(r"^v_[0-9a-f]{20}$")
MSG_KEYS = {"session", "seq", "from", "kind", "body", "ts", "cid"}

# Text a sanitizer prints when it finds something (ASan, LSan, UBSan).
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "SUMMARY: AddressSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
)


class TestFailure(AssertionError):
    pass


def check(cond, what, *args):
    if not cond:
        raise TestFailure(what % args if args else what)


def eq(got, want, what=""):
    if got != want:
        raise TestFailure("%s: expected %r, got %r" % (what or "value",
                                                       want, got))


def now_s():
    return int(time.time())


def now_ms():
    return int(time.time() * 1000)


def rand_hex(n=10):
    return secrets.token_hex(n)


# ------------------------------------------------------------- server ----

_live = set()


def kill_all_servers():
    for s in list(_live):
        s.kill()


def _die_with_parent():
    # In the child before exec: if the runner is SIGKILLed (ctest TIMEOUT),
    # the kernel takes the server down too.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Server:
    """One chatcore-server process on 127.0.0.1, any free port."""

    binary = None          # set by run.py (--server)
    logdir = None          # where stderr copies go; set by run.py

    def __init__(self, data=None, name="server", env=None, extra=()):
        if not Server.binary:
            raise RuntimeError("Server.binary is not set")
        self.name = name
        self.own_data = data is None
        self.data = data or tempfile.mkdtemp(prefix="chatwire-data-")
        self.admin_key = "adm-" + rand_hex(16)
        self.extra_env = dict(env or {})
        self.extra = list(extra)
        self.proc = None
        self.port = None
        self.starts = 0
        self.rc = None
        self.log_path = None
        self._log = None
        self._lines = []
        self._lock = threading.Lock()
        self._port_ev = threading.Event()

    # -- lifecycle --

    def start(self, timeout=30.0):
        """Start (or restart on the same data dir); returns self."""
        check(self.proc is None or self.proc.poll() is not None,
              "%s: start while running", self.name)
        self.starts += 1
        os.makedirs(Server.logdir or tempfile.gettempdir(), exist_ok=True)
        self.log_path = os.path.join(Server.logdir or tempfile.gettempdir(),
                                     "%s.%d.stderr.log"
                                     % (self.name, self.starts))
        self._log = open(self.log_path, "w", encoding="utf-8")
        self._lines = []
        self._port_ev = threading.Event()
        self.port = None
        argv = [Server.binary, "--port", "0", "--host", "127.0.0.1",
                "--data", self.data, "--demo", "false"] + self.extra
        penv = {k: v for k, v in os.environ.items()
                if not k.startswith("CHATCORE_")}
        penv["CHATCORE_ADMIN_KEY"] = self.admin_key
        penv["CHATCORE_NODE"] = NODE
        # every client here is 127.0.0.1: lift the server-wide per-IP
        # upgrade ceiling so concurrent tests do not starve each other
        penv["CHATCORE_IP_UPGRADES_PER_MIN"] = "1000000"
        penv.setdefault("ASAN_OPTIONS",
                        "detect_leaks=1:abort_on_error=0:exitcode=23")
        penv.setdefault("UBSAN_OPTIONS",
                        "print_stacktrace=1:halt_on_error=1")
        penv.update(self.extra_env)
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE,
                                     env=penv, preexec_fn=_die_with_parent)
        _live.add(self)
        self.rc = None
        t = threading.Thread(target=self._drain, args=(self.proc, self._log),
                             daemon=True)
        t.start()
        self._drainer = t
        if not self._port_ev.wait(timeout) or self.port is None:
            self.kill()
            raise TestFailure("%s did not log \"listening\" within %.0f s "
                              "(rc %r); stderr:\n%s"
                              % (self.name, timeout, self.proc.returncode,
                                 self.stderr_tail()))
        return self

    def _drain(self, proc, log):
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            with self._lock:
                self._lines.append(line)
            try:
                log.write(line)
                log.flush()
            except ValueError:
                pass
            if self.port is None and '"listening"' in line:
                try:
                    obj = json.loads(line)
                    if obj.get("msg") == "listening" and "port" in obj:
                        self.port = int(obj["port"])
                        self._port_ev.set()
                except ValueError:
                    pass
        self._port_ev.set()  # EOF: let start() stop waiting

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self):
        with self._lock:
            return "".join(self._lines)

    def stderr_tail(self, n=40):
        with self._lock:
            return "".join(self._lines[-n:])

    def sanitizer_report(self):
        err = self.stderr_text()
        for m in SANITIZER_MARKERS:
            if m in err:
                return err
        return None

    def _reap(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._drainer.join(5)
        try:
            self._log.close()
        except Exception:
            pass
        _live.discard(self)
        self.rc = self.proc.returncode
        return self.rc

    def terminate(self, timeout=30.0):
        """SIGTERM and wait; returns the exit status (-9 when it had to be
        killed after timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self._reap(timeout)

    def kill(self):
        """SIGKILL (kill -9) and wait."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        return self._reap(10)

    def wait_exit(self, timeout):
        return self._reap(timeout)

    def stop_checked(self, timeout=30.0):
        """SIGTERM; fail unless exit status 0 and no sanitizer report."""
        if self.proc is None or (self.proc.poll() is not None
                                 and self.rc is not None):
            return
        was_alive = self.proc.poll() is None
        rc = self.terminate(timeout)
        rep = self.sanitizer_report()
        check(rep is None, "%s: sanitizer report:\n%s", self.name,
              (rep or "")[-6000:])
        check(was_alive, "%s had died before the end (rc %r); stderr:\n%s",
              self.name, rc, self.stderr_tail())
        check(rc == 0, "%s exited %r after SIGTERM; stderr:\n%s", self.name,
              rc, self.stderr_tail())

    def cleanup_data(self):
        if self.own_data:
            shutil.rmtree(self.data, ignore_errors=True)

    # -- conveniences bound to this server --

    def http(self, method, path, body=None, **kw):
        return http_req(self.port, method, path, body, **kw)

    async def ahttp(self, method, path, body=None, **kw):
        return await asyncio.to_thread(http_req, self.port, method, path,
                                       body, **kw)

    async def admin(self, method, path, body=None, **kw):
        return await self.ahttp(method, path, body,
                                token=self.admin_key, **kw)

    async def new_tenant(self, tid=None, **settings):
        """A fresh tenant with a known secret (and a random id unless tid
        is given). settings are tenant fields (session_ttl=2, heartbeat=5,
        auto_assign=True, rate_limits={...})."""
        tid = tid or "t" + rand_hex(6)
        secret = "sec-" + rand_hex(16)
        body = {"name": "Test " + tid, "secret": secret}
        rl = {"connections_per_ip_per_min": 100000}
        rl.update(settings.pop("rate_limits", {}))
        body["rate_limits"] = rl
        body.update(settings)
        r = await self.admin("PUT", "/v1/tenants/" + tid, body)
        check(r.status == 201, "PUT tenant %s: %d %r", tid, r.status,
              r.body[:500])
        eq(r.json.get("secret"), secret, "PUT tenant response secret")
        return Tenant(self, tid, secret, r.json)


HttpResp = collections.namedtuple("HttpResp", "status headers body json")


def http_req(port, method, path, body=None, token=None, headers=None,
             raw=None, timeout=15.0):
    """One request; body (a dict/list) is sent as JSON, raw as bytes.
    Returns HttpResp(status, {lower-case name: value}, bytes, parsed JSON
    or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"Connection": "close"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        if token:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        rh = {k.lower(): v for k, v in resp.getheaders()}
        parsed = None
        if payload:
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = None
        return HttpResp(resp.status, rh, payload, parsed)
    finally:
        conn.close()


def ws_upgrade_raw(port, path, token=None, timeout=10.0):
    """A WebSocket upgrade request sent with http.client, to read the body
    of a refusal. Returns HttpResp (for a 101, body is b"")."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": base64.b64encode(os.urandom(16))
                .decode(),
                "Sec-WebSocket-Version": "13"}
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        conn.request("GET", path, headers=hdrs)
        resp = conn.getresponse()
        rh = {k.lower(): v for k, v in resp.getheaders()}
        if resp.status == 101:
            return HttpResp(101, rh, b"", None)
        payload = resp.read()
        parsed = None
        try:
            parsed = json.loads(payload)
        except ValueError:
            pass
        return HttpResp(resp.status, rh, payload, parsed)
    finally:
        conn.close()


# --------------------------------------------------------------- JWT ----

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims, secret, alg="HS256", header=None, sign_alg=None):
    """A JWT. alg goes in the header; sign_alg (default: alg) picks the
    HMAC used: "HS256", "HS512", or "none" for an empty signature."""
    hdr = {"alg": alg, "typ": "JWT"}
    if header is not None:
        hdr = header
    h = b64url(json.dumps(hdr, separators=(",", ":")).encode())
    p = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing = (h + "." + p).encode()
    how = sign_alg or alg
    if how == "none":
        sig = ""
    else:
        fn = {"HS256": hashlib.sha256, "HS512": hashlib.sha512,
              "RS256": hashlib.sha256}[how]
        key = secret.encode() if isinstance(secret, str) else secret
        sig = b64url(hmac.new(key, signing, fn).digest())
    return h + "." + p + "." + sig


def claims(tid, sub, role, exp_in=3600, **extra):
    t = now_s()
    c = {"tid": tid, "sub": sub, "role": role, "iat": t, "exp": t + exp_in}
    c.update(extra)
    return c


def signature_header(secret, body_bytes, t=None, nonce=None):
    """X-Chatcore-Signature for a signed request (PROTOCOL.md §2)."""
    t = now_s() if t is None else t
    nonce = nonce or rand_hex(8)
    mac = hmac.new(secret.encode(), b"%d.%s." % (t, nonce.encode())
                   + body_bytes, hashlib.sha256).hexdigest()
    return "t=%d,n=%s,v1=%s" % (t, nonce, mac)


# ------------------------------------------------------------ tenant ----

class Tenant:
    def __init__(self, server, tid, secret, obj):
        self.server = server
        self.id = tid
        self.secret = secret
        self.obj = obj
        self.passwords = {}

    def token(self, sub, role, exp_in=3600, secret=None, **extra):
        return jwt(claims(self.id, sub, role, exp_in, **extra),
                   secret or self.secret)

    def visitor_token(self, vid=None, exp_in=3600):
        vid = vid or "v_" + rand_hex(10)
        return vid, self.token(vid, "visitor", exp_in)

    def agent_token(self, aid, exp_in=3600):
        return self.token(aid, "agent", exp_in)

    async def add_agent(self, aid=None, password=None, name=None,
                        capacity=None):
        aid = aid or "a_" + rand_hex(4)
        password = password or "pw-" + rand_hex(8)
        body = {"name": name or ("Agent " + aid), "password": password}
        if capacity is not None:
            body["capacity"] = capacity
        r = await self.server.admin("PUT", "/v1/tenants/%s/agents/%s"
                                    % (self.id, aid), body)
        check(r.status == 201, "PUT agent %s: %d %r", aid, r.status,
              r.body[:300])
        self.passwords[aid] = password
        return aid

    async def add_agents(self, n):
        return [await self.add_agent() for _ in range(n)]

    async def visitor(self, vid=None, auto_ack=False, query=None,
                      name=None, expect_resumed=None):
        """Connect a visitor (a new id unless vid); checks the hello."""
        vid, tok = self.visitor_token(vid)
        c = await Client.open(self.server.port, tok, query=query,
                              auto_ack=auto_ack, name=name or vid)
        c.user = vid
        c.tenant = self
        h = c.hello
        eq(h.get("type"), "hello", "visitor hello type")
        eq(h.get("role"), "visitor", "hello role")
        eq(h.get("user"), vid, "hello user")
        eq(h.get("tenant"), self.id, "hello tenant")
        eq(h.get("v"), 1, "hello v")
        eq(h.get("node"), NODE, "hello node")
        check(SESSION_RE.match(str(h.get("session"))),
              "hello session %r is not S_ + 20 hex", h.get("session"))
        if expect_resumed is not None:
            eq(h.get("resumed"), expect_resumed, "hello resumed")
        c.session = h["session"]
        return c

    async def agent(self, aid, auto_ack=False, query=None):
        tok = self.agent_token(aid)
        c = await Client.open(self.server.port, tok, query=query,
                              auto_ack=auto_ack, name=aid)
        c.user = aid
        c.tenant = self
        h = c.hello
        eq(h.get("type"), "hello", "agent hello type")
        eq(h.get("role"), "agent", "hello role")
        eq(h.get("user"), aid, "hello user")
        eq(h.get("tenant"), self.id, "hello tenant")
        eq(h.get("v"), 1, "hello v")
        eq(h.get("node"), NODE, "hello node")
        return c


# ------------------------------------------------------------ client ----

class Closed(TestFailure):
    pass


class Client:
    """A WebSocket client. Every received frame goes to `frames` (all, in
    order, as (monotonic time, obj)) and to a pending list that `recv_type`
    takes from; frames that are not JSON are kept as {"type": "<raw>",
    "raw": text}."""

    def __init__(self, ws, name, auto_ack):
        self.ws = ws
        self.name = name
        self.auto_ack = auto_ack
        self.frames = []
        self.pending = []
        self.close_code = None
        self.close_reason = None
        self.closed_wall = None
        self.closed = asyncio.Event()
        self._new = asyncio.Event()
        self.hello = None
        self.user = None
        self.session = None
        self.tenant = None
        self._cid = 0
        self._reader = asyncio.get_running_loop().create_task(self._read())
        env = CURRENT_ENV.get()
        if env is not None:
            env.clients.append(self)

    @staticmethod
    def url(port, query=None):
        q = ""
        if query:
            q = "?" + urllib.parse.urlencode(query)
        return "ws://127.0.0.1:%d/v1/ws%s" % (port, q)

    @classmethod
    async def connect_raw(cls, port, token=None, query=None, timeout=10.0,
                          subprotocol=True):
        headers = {}
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        return await websockets.connect(
            cls.url(port, query), extra_headers=headers,
            subprotocols=[SUBPROTOCOL] if subprotocol else None,
            compression=None, open_timeout=timeout, ping_interval=None,
            close_timeout=5, max_size=None, max_queue=None)

    @classmethod
    async def open(cls, port, token=None, query=None, auto_ack=False,
                   name="client", timeout=10.0, subprotocol=True):
        ws = await cls.connect_raw(port, token, query, timeout, subprotocol)
        if subprotocol:
            eq(ws.subprotocol, SUBPROTOCOL, "selected subprotocol")
        c = cls(ws, name, auto_ack)
        c.hello = await c.recv(timeout)
        eq(c.hello.get("type"), "hello", "%s: first frame type" % name)
        return c

    async def _read(self):
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    obj = {"type": "<binary>", "raw": raw}
                else:
                    try:
                        obj = json.loads(raw)
                    except ValueError:
                        obj = {"type": "<raw>", "raw": raw}
                    if not isinstance(obj, dict):
                        obj = {"type": "<raw>", "raw": raw}
                t = time.monotonic()
                self.frames.append((t, obj))
                self.pending.append(obj)
                self._new.set()
                if (self.auto_ack and obj.get("type") == "msg"
                        and isinstance(obj.get("seq"), int)):
                    try:
                        await self.ws.send(json.dumps(
                            {"type": "ack", "session": obj["session"],
                             "seq": obj["seq"]}))
                    except ConnectionClosed:
                        pass
        except ConnectionClosed:
            pass
        except Exception as e:  # keep the failure visible
            self.frames.append((time.monotonic(),
                                {"type": "<reader-error>", "raw": repr(e)}))
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed_wall = time.time()
            self.closed.set()
            self._new.set()

    # -- receiving --

    def _describe(self):
        kinds = collections.Counter(f.get("type") for f in self.pending)
        last = [json.dumps(f)[:300] for f in self.pending[-5:]]
        return "%s: pending %s; last: %s; closed=%s code=%r" % (
            self.name, dict(kinds), last, self.closed.is_set(),
            self.close_code)

    async def recv_where(self, pred, timeout=5.0, what="frame"):
        """Take the first pending frame for which pred(frame) is true,
        leaving the others pending. Fails after timeout or when the
        connection closed without one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, f in enumerate(self.pending):
                if pred(f):
                    del self.pending[i]
                    return f
            if self.closed.is_set():
                raise Closed("%s: connection closed (code %r) while "
                             "waiting for %s; %s"
                             % (self.name, self.close_code, what,
                                self._describe()))
            left = deadline - loop.time()
            if left <= 0:
                raise TestFailure("%s: no %s within %.1f s; %s"
                                  % (self.name, what, timeout,
                                     self._describe()))
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def recv_type(self, typ, timeout=5.0, **fields):
        """The first pending frame of type typ whose fields equal the given
        ones (recv_type("msg", seq=3))."""
        def pred(f):
            if f.get("type") != typ:
                return False
            return all(f.get(k) == v for k, v in fields.items())
        desc = typ + (" %r" % fields if fields else "")
        return await self.recv_where(pred, timeout, desc)

    async def recv(self, timeout=5.0):
        """The next pending frame of any type."""
        return await self.recv_where(lambda f: True, timeout, "any frame")

    async def recv_error(self, ref=None, timeout=5.0):
        if ref is None:
            return await self.recv_type("error", timeout)
        return await self.recv_type("error", timeout, ref=ref)

    async def expect_none(self, typ, within, where=None):
        """Fail if a frame of type typ (matching where) arrives (or is
        pending) within `within` seconds."""
        try:
            f = await self.recv_where(
                lambda f: f.get("type") == typ and (where is None
                                                    or where(f)),
                within, typ)
        except Closed:
            return
        except TestFailure:
            return
        raise TestFailure("%s: unexpected %s: %s" % (self.name, typ,
                                                     json.dumps(f)[:500]))

    def take_all(self, typ):
        """Remove and return every pending frame of type typ."""
        got = [f for f in self.pending if f.get("type") == typ]
        self.pending = [f for f in self.pending if f.get("type") != typ]
        return got

    def all_of(self, typ, session=None):
        """Every frame of type typ received so far (pending or not)."""
        return [f for _, f in self.frames if f.get("type") == typ
                and (session is None or f.get("session") == session)]

    def timed(self, typ):
        return [(t, f) for t, f in self.frames if f.get("type") == typ]

    async def wait_closed(self, timeout=10.0):
        try:
            await asyncio.wait_for(self.closed.wait(), timeout)
        except asyncio.TimeoutError:
            raise TestFailure("%s: not closed within %.1f s; %s"
                              % (self.name, timeout, self._describe()))
        return self.close_code

    # -- sending --

    async def send(self, obj):
        """Send a frame: a dict/list goes as JSON text, a str as is."""
        data = obj if isinstance(obj, str) else json.dumps(obj)
        await self.ws.send(data)

    async def send_bytes(self, data):
        await self.ws.send(data)     # a binary frame

    async def send_text_bytes(self, data):
        """A text frame with exactly these payload bytes (may be invalid
        UTF-8, which websockets itself would never send)."""
        await self.ws.write_frame(True, 0x1, data)

    def next_cid(self):
        self._cid += 1
        return "%s-c%d-%s" % (self.name[:20], self._cid, rand_hex(3))

    async def send_msg(self, session, text=None, cid=None, kind="text",
                       body=None, timeout=10.0, wait=True):
        """send; with wait, returns the `sent` for its cid (fails on an
        error echoing the cid)."""
        cid = cid or self.next_cid()
        if body is None:
            body = {"text": text if text is not None else "hello"}
        await self.send({"type": "send", "session": session, "cid": cid,
                         "kind": kind, "body": body})
        if not wait:
            return cid
        f = await self.recv_where(
            lambda f: f.get("type") in ("sent", "error")
            and (f.get("cid") == cid or f.get("ref") == cid),
            timeout, "sent for cid %s" % cid)
        check(f["type"] == "sent", "%s: send %s answered %s", self.name,
              cid, json.dumps(f))
        return f

    async def ping(self, timeout=5.0):
        """{"type":"ping"} -> pong; returns the round trip in seconds."""
        t0 = time.monotonic()
        await self.send({"type": "ping"})
        await self.recv_type("pong", timeout)
        return time.monotonic() - t0

    async def ack(self, session, seq):
        await self.send({"type": "ack", "session": session, "seq": seq})

    async def accept(self, session, ref=None, timeout=10.0):
        """accept; returns the `accepted` (fails on an error)."""
        ref = ref or "acc-" + rand_hex(4)
        await self.send({"type": "accept", "session": session, "ref": ref})
        f = await self.recv_where(
            lambda f: (f.get("type") == "accepted"
                       and f.get("session") == session)
            or (f.get("type") == "error" and f.get("ref") == ref),
            timeout, "accepted %s" % session)
        check(f["type"] == "accepted", "%s: accept %s answered %s",
              self.name, session, json.dumps(f))
        return f

    async def request_error(self, frame, code, timeout=5.0, ref=None,
                            echo=None):
        """Send frame and expect an `error` with this code; returns it.
        A dict frame gets a fresh ref unless it has one or ref=False; the
        echo expected is then the frame's ref, else (ref=False) a send's
        cid, else none (the error must have no `ref` member). echo= overrides
        the expected echo ("" = none)."""
        if isinstance(frame, dict):
            frame = dict(frame)
            if ref is not False:
                frame.setdefault("ref", ref or "r-" + rand_hex(4))
                want = frame["ref"]
            elif frame.get("type") == "send" and "cid" in frame:
                want = frame["cid"]
            else:
                want = ""
        else:
            want = ""
        if echo is not None:
            want = echo
        await self.send(frame)
        if want:
            e = await self.recv_type("error", timeout, ref=want)
        else:
            e = await self.recv_type("error", timeout)
            check("ref" not in e, "%s: error for %s carries ref %r; "
                  "expected none", self.name, str(frame)[:200],
                  e.get("ref"))
        eq(e.get("code"), code, "%s: error code for %s (message %r)"
           % (self.name, str(frame)[:200], e.get("message")))
        check(isinstance(e.get("message"), str),
              "error message is not a string: %r", e)
        want_keys = {"type", "code", "message"} | ({"ref"} if want else set())
        if code == "rate_limited":
            want_keys.add("retry_after_ms")
        eq(set(e.keys()), want_keys, "error keys")
        return e

    def time_of(self, frame):
        """Arrival time (monotonic) of a frame object returned earlier."""
        for t, f in self.frames:
            if f is frame:
                return t
        raise TestFailure("%s: frame not found" % self.name)

    async def close(self):
        if not self.closed.is_set():
            try:
                await asyncio.wait_for(self.ws.close(), 6)
            except Exception:
                pass
        try:
            await asyncio.wait_for(self._reader, 6)
        except Exception:
            pass

    def abort(self):
        """Drop the TCP connection without a close handshake."""
        self.ws.transport.abort()


async def close_all(*clients):
    await asyncio.gather(*(c.close() for c in clients if c is not None),
                         return_exceptions=True)


def msg_obj_ok(m, what="message"):
    """A message object (msg without type, or history item) has exactly
    the seven fields."""
    keys = set(m.keys()) - {"type"}
    eq(keys, MSG_KEYS, what + " keys")


async def queued_session(tenant, text="hello", visitor=None):
    """A visitor whose session is queued: returns (client, sent, queued)."""
    v = visitor or await tenant.visitor()
    sent = await v.send_msg(v.session, text)
    q = await v.recv_type("queued", 10, session=v.session)
    return v, sent, q


async def active_session(tenant, aid, agent_client=None, text="hello",
                         auto_ack_visitor=False):
    """A visitor with a session accepted by agent aid: returns
    (visitor, agent, accepted)."""
    v = await tenant.visitor(auto_ack=auto_ack_visitor)
    a = agent_client or await tenant.agent(aid)
    await v.send_msg(v.session, text)
    await v.recv_type("queued", 10, session=v.session)
    acc = await a.accept(v.session)
    await v.recv_type("session_accepted", 10, session=v.session)
    return v, a, acc


async def expect_upgrade_status(port, token, status, query=None):
    """The upgrade must be refused with `status`; returns nothing."""
    try:
        ws = await Client.connect_raw(port, token, query)
    except InvalidStatusCode as e:
        eq(e.status_code, status, "upgrade status")
        return
    await ws.close()
    raise TestFailure("upgrade with token %r succeeded; expected HTTP %d"
                      % ((token or "")[:60], status))


# ------------------------------------------------------- registration ----

Scenario = collections.namedtuple("Scenario",
                                  "name fn module alone shared timeout")
SCENARIOS = []
CURRENT_ENV = contextvars.ContextVar("chat_test_env", default=None)


def scenario(name, alone=False, shared=True, timeout=150):
    """Register a test: fn(env) is a coroutine. alone: run it by itself
    (timing-sensitive); shared: it uses the module's server (env.server),
    else it starts its own with env.new_server()."""
    def deco(fn):
        SCENARIOS.append(Scenario(name, fn, fn.__module__, alone, shared,
                                  timeout))
        return fn
    return deco


class Env:
    """What a test gets: the module's server (or None) and a way to start
    servers of its own; everything is cleaned up after the test."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.clients = []
        self.servers = []

    def new_server(self, data=None, name=None, **kw):
        s = Server(data=data, name=name or "%s-%d" % (self.name,
                                                      len(self.servers)),
                   **kw)
        self.servers.append(s)
        return s

    async def tenant(self, **settings):
        return await self.server.new_tenant(**settings)

    async def cleanup(self):
        await close_all(*self.clients)
        problems = []
        for s in self.servers:
            try:
                if s.proc is not None and s.proc.poll() is None:
                    await asyncio.to_thread(s.stop_checked)
                else:
                    rep = s.sanitizer_report()
                    if rep:
                        problems.append("%s: sanitizer report:\n%s"
                                        % (s.name, rep[-6000:]))
            except TestFailure as e:
                problems.append(str(e))
            finally:
                s.kill()
                s.cleanup_data()
        if problems:
            raise TestFailure("\n".join(problems))

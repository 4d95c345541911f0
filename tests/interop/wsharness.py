"""
tests/interop/wsharness.py - shared helpers for the over-the-wire tests
(test_python.py, test_robust.py): start and stop examples/echo-server on a
free port, speak raw WebSocket frames over asyncio streams (so tests can
send what no well-behaved client would), and raw HTTP over plain sockets.

The server binary comes from the ECHO_SERVER environment variable (set by
tests/interop/tests.cmake). Every server started here is killed at exit,
even when a test fails, so no process outlives the test run. Stopping a
server sends SIGTERM (the drain path), waits for exit status 0 and fails
if the server's stderr holds a sanitizer report.
"""

import asyncio
import atexit
import base64
import collections
import ctypes
import hashlib
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Text a sanitizer prints when it finds something (ASan, LSan, UBSan, TSan).
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "SUMMARY: AddressSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
)

_live_servers = set()


def _kill_all():
    for srv in list(_live_servers):
        srv.kill()


atexit.register(_kill_all)


def _on_signal(signum, frame):
    # ctest kills a test that runs past its TIMEOUT with SIGTERM/SIGKILL;
    # take our servers down with us rather than leaking them.
    _kill_all()
    os._exit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    signal.signal(_sig, _on_signal)


def _die_with_parent():
    # Runs in the child before exec: if this test process is SIGKILLed
    # (ctest's TIMEOUT), the kernel kills the server too.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def server_binary():
    path = os.environ.get("ECHO_SERVER", "")
    if not path:
        raise RuntimeError("set ECHO_SERVER to the echo-server binary path")
    if not os.access(path, os.X_OK):
        raise RuntimeError("ECHO_SERVER=%r is not an executable" % path)
    return path


_sanitized = None


def server_is_sanitized():
    """True when the echo-server binary was built with ASan (-DCC_SANITIZE).
    Memory numbers mean little there (quarantine, shadow memory)."""
    global _sanitized
    if _sanitized is None:
        with open(server_binary(), "rb") as f:
            blob = f.read()
        _sanitized = b"__asan_init" in blob or b"AddressSanitizer" in blob
    return _sanitized


class EchoServer:
    """One echo-server process on 127.0.0.1, port chosen by the kernel."""

    def __init__(self, *extra, mode="echo", threads=1, env=None,
                 startup_timeout=20.0):
        self.argv = [server_binary(), "--port", "0", "--host", "127.0.0.1",
                     "--mode", mode, "--threads", str(threads)]
        self.argv += [str(a) for a in extra]
        penv = dict(os.environ)
        penv.setdefault("ASAN_OPTIONS",
                        "detect_leaks=1:abort_on_error=0:exitcode=23")
        penv.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        if env:
            penv.update(env)
        # stdout and stderr go to files, never to pipes nobody drains.
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err,
                                     env=penv, preexec_fn=_die_with_parent)
        _live_servers.add(self)
        self.pid = self.proc.pid
        self.rc = None
        self.port = self._wait_port(startup_timeout)

    def _wait_port(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"listening on port (\d+)", self.stdout_text())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(
            "echo-server did not report its port (argv %s, rc %r)\n"
            "stdout: %s\nstderr: %s" % (self.argv, self.proc.returncode,
                                        self.stdout_text(),
                                        self.stderr_text()))

    def _read(self, f):
        f.seek(0)
        return f.read().decode("utf-8", "replace")

    def stdout_text(self):
        return self._read(self._out)

    def stderr_text(self):
        return self._read(self._err)

    def alive(self):
        return self.proc.poll() is None

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _live_servers.discard(self)

    def terminate(self, timeout=15.0):
        """SIGTERM, wait; returns the exit status (SIGKILLed past timeout,
        then the status is -9)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _live_servers.discard(self)
        self.rc = self.proc.returncode
        return self.rc

    def wait_exit(self, timeout=15.0):
        """Wait (sending nothing) for the process to exit; SIGKILL it past
        timeout. Returns the exit status (-9 after the kill)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        _live_servers.discard(self)
        self.rc = self.proc.returncode
        return self.rc

    def sanitizer_report(self):
        err = self.stderr_text()
        for m in SANITIZER_MARKERS:
            if m in err:
                return err
        return None

    def stop_and_check(self, tc, timeout=15.0):
        """Stop with SIGTERM; the testcase `tc` fails unless the server
        exits 0 within timeout with nothing from a sanitizer."""
        if self._err.closed:
            return
        rc = self.terminate(timeout)
        report = self.sanitizer_report()
        tc.assertIsNone(report, "sanitizer report from %s:\n%s"
                        % (self.argv, report))
        err = self.stderr_text()
        self._out.close()
        self._err.close()
        tc.assertEqual(rc, 0, "echo-server %s exited %r after SIGTERM; "
                       "stderr:\n%s" % (self.argv, rc, err))


def start_server(tc, *extra, **kw):
    """Start a server for testcase tc; stopping (and checking) it is
    registered as a cleanup, so it runs even when the test fails."""
    srv = EchoServer(*extra, **kw)
    tc.addCleanup(srv.stop_and_check, tc)
    return srv


# ---------------------------------------------------------------- HTTP ----

def parse_head(head):
    """b"HTTP/1.1 101 ...\\r\\nA: b\\r\\n\\r\\n" -> (status, {name: value})
    with lower-cased names (repeated headers joined with ", ")."""
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError("bad status line %r" % lines[0])
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = headers[name] + ", " + value if name in headers \
            else value
    return status, headers


HttpResult = collections.namedtuple(
    "HttpResult", "status headers body closed elapsed raw")


def recv_http_response(sock, timeout=5.0, wait_close=True):
    """Read one HTTP response (head + Content-Length body) from a blocking
    socket, then (wait_close) wait up to timeout for the server to close.
    Returns an HttpResult; status is None when the server closed without
    answering. closed tells whether EOF (or a reset) was seen."""
    start = time.monotonic()
    deadline = start + timeout
    buf = b""
    closed = False
    head_end = -1
    need = None
    while True:
        if head_end < 0:
            head_end = buf.find(b"\r\n\r\n")
            if head_end >= 0:
                status, headers = parse_head(buf[:head_end + 4])
                need = head_end + 4 + int(headers.get("content-length", "0"))
        if need is not None and len(buf) >= need:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        if not chunk:
            closed = True
            break
        buf += chunk
    if not closed and wait_close:
        # Now see whether the server closes (it should for errors).
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            if not chunk:
                closed = True
                break
            buf += chunk
    elapsed = time.monotonic() - start
    if head_end < 0:
        return HttpResult(None, {}, b"", closed, elapsed, buf)
    status, headers = parse_head(buf[:head_end + 4])
    body = buf[head_end + 4:need]
    return HttpResult(status, headers, body, closed, elapsed, buf)


def http_exchange(port, data, timeout=5.0, shut_wr=False, wait_close=False):
    """Connect, send raw bytes, read the response (see recv_http_response)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        return recv_http_response(s, timeout, wait_close)


def http_get(port, path="/healthz", timeout=5.0):
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
           "\r\n" % (path, port)).encode()
    return http_exchange(port, req, timeout)


def ws_request(port, path="/", key=None, version="13", extra=""):
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % (path, port)
    req += "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    if key != "":
        req += "Sec-WebSocket-Key: %s\r\n" % key
    if version is not None:
        req += "Sec-WebSocket-Version: %s\r\n" % version
    req += extra + "\r\n"
    return req.encode(), key


def ws_accept_value(key):
    digest = hashlib.sha1((key + WS_GUID).encode()).digest()
    return base64.b64encode(digest).decode()


# ----------------------------------------------------------- WS frames ----

OP_CONT, OP_TEXT, OP_BINARY = 0, 1, 2
OP_CLOSE, OP_PING, OP_PONG = 8, 9, 10

Frame = collections.namedtuple("Frame", "fin rsv opcode payload")


def encode_frame(opcode, payload=b"", fin=True, rsv=0, mask=True,
                 length=None, mask_key=None, len_form=None):
    """Build one frame. length overrides the declared payload length;
    len_form forces the 7/16/64-bit length encoding (7, 16 or 64)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if mask else 0
    if len_form is None:
        len_form = 7 if n < 126 else (16 if n < 65536 else 64)
    if len_form == 7:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif len_form == 16:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return hdr + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return hdr + key + mask_bytes(payload, key)


def mask_bytes(payload, key):
    if not payload:
        return b""
    # XOR via big integers: fast enough for megabytes.
    reps = (len(payload) + 3) // 4
    k = (key * reps)[:len(payload)]
    x = int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")
    return x.to_bytes(len(payload), "big")


def close_payload(code, reason=b""):
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


class ProtocolViolation(Exception):
    """The server sent something RFC 6455 forbids it to send."""


class RawWS:
    """A WebSocket client with no rules: the handshake, then any bytes."""

    def __init__(self, reader, writer, status, headers, rest=b""):
        self.reader = reader
        self.writer = writer
        self.status = status
        self.headers = headers

    @classmethod
    async def connect(cls, port, path="/", version="13", key=None,
                      extra="", timeout=5.0, rcvbuf=None,
                      expect_status=101):
        if rcvbuf is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(
                sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(
                sock=sock, limit=1 << 22)
        else:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, limit=1 << 22)
        try:
            return await cls._handshake(reader, writer, port, path, version,
                                        key, extra, timeout, expect_status)
        except BaseException:
            writer.close()
            raise

    @classmethod
    async def _handshake(cls, reader, writer, port, path, version, key,
                         extra, timeout, expect_status):
        req, key = ws_request(port, path, key, version, extra)
        writer.write(req)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status, headers = parse_head(head)
        ws = cls(reader, writer, status, headers)
        if expect_status is not None and status != expect_status:
            raise AssertionError("handshake answered %d, expected %d: %r"
                                 % (status, expect_status, head))
        if status == 101:
            if headers.get("sec-websocket-accept") != ws_accept_value(key):
                raise ProtocolViolation("bad Sec-WebSocket-Accept %r"
                                        % headers.get("sec-websocket-accept"))
            if headers.get("upgrade", "").lower() != "websocket":
                raise ProtocolViolation("101 without Upgrade: websocket")
        return ws

    async def send_raw(self, data):
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, opcode, payload=b"", **kw):
        await self.send_raw(encode_frame(opcode, payload, **kw))

    async def send_text(self, s, **kw):
        await self.send(OP_TEXT, s.encode() if isinstance(s, str) else s, **kw)

    async def send_close(self, code=None, reason=b""):
        p = b"" if code is None else close_payload(code, reason)
        await self.send(OP_CLOSE, p)

    async def recv_frame(self, timeout=5.0):
        """Next frame from the server. Raises asyncio.TimeoutError,
        asyncio.IncompleteReadError (EOF), ProtocolViolation."""
        async def read():
            h = await self.reader.readexactly(2)
            fin = bool(h[0] & 0x80)
            rsv = (h[0] >> 4) & 7
            opcode = h[0] & 0x0F
            if h[1] & 0x80:
                raise ProtocolViolation("server frame is masked")
            n = h[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            if rsv:
                raise ProtocolViolation("server frame has RSV %d" % rsv)
            if opcode in (3, 4, 5, 6, 7) or opcode > 10:
                raise ProtocolViolation("reserved opcode %d" % opcode)
            if opcode >= 8 and (not fin or n > 125):
                raise ProtocolViolation("bad control frame")
            payload = await self.reader.readexactly(n) if n else b""
            return Frame(fin, rsv, opcode, payload)
        return await asyncio.wait_for(read(), timeout)

    async def recv_message(self, timeout=5.0, skip_pongs=False):
        """Next whole data message as (opcode, payload), or a control frame
        as (opcode, payload). Fragments are joined."""
        op = None
        parts = []
        while True:
            f = await self.recv_frame(timeout)
            if f.opcode >= 8:
                if f.opcode == OP_PONG and skip_pongs:
                    continue
                if op is not None:
                    # control frame between fragments: fine, report it
                    pass
                return f.opcode, f.payload
            if op is None:
                if f.opcode == OP_CONT:
                    raise ProtocolViolation("continuation without start")
                op = f.opcode
            elif f.opcode != OP_CONT:
                raise ProtocolViolation("new message inside a fragmented one")
            parts.append(f.payload)
            if f.fin:
                return op, b"".join(parts)

    async def expect_close(self, timeout=5.0, reply=True):
        """Read (skipping data and pongs) until a close frame; return its
        (code, reason) with code None for an empty payload. Then reply
        (optionally) and wait for EOF. Raises AssertionError on EOF with no
        close frame."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.01, deadline - time.monotonic())
            try:
                f = await self.recv_frame(left)
            except asyncio.IncompleteReadError:
                raise AssertionError("EOF without a close frame")
            except ConnectionResetError:
                raise AssertionError("reset without a close frame")
            if f.opcode == OP_CLOSE:
                break
        code = None
        reason = b""
        if len(f.payload) >= 2:
            code = struct.unpack("!H", f.payload[:2])[0]
            reason = f.payload[2:]
        elif len(f.payload) == 1:
            raise ProtocolViolation("1-byte close payload from server")
        if reply:
            try:
                await self.send_close(code if code not in (None, 1005)
                                      else None)
            except (ConnectionError, OSError):
                pass
        await self.wait_eof(max(0.5, deadline - time.monotonic()))
        return code, reason

    async def wait_eof(self, timeout=5.0):
        """Wait until the server closes the TCP connection; return any
        bytes that came first."""
        got = b""
        try:
            async def drain():
                nonlocal got
                while True:
                    chunk = await self.reader.read(65536)
                    if not chunk:
                        return
                    got += chunk
            await asyncio.wait_for(drain(), timeout)
        except ConnectionResetError:
            pass
        return got

    def close(self):
        try:
            self.writer.close()
        except Exception:
            pass

    def abort(self):
        """Drop the TCP connection with RST."""
        try:
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
            self.writer.transport.abort()
        except Exception:
            pass

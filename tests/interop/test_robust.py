#!/usr/bin/python3
"""
tests/interop/test_robust.py - examples/echo-server against hostile or
broken clients on raw sockets: oversized and slow heads, garbage,
half-closed sockets, wrong WebSocket versions, ten thousand connect/close
cycles (fd and memory must return to where they were) and a reader that
never reads while the server floods it (closed 1008, memory bounded).

Each test starts its own echo-server on port 0 and stops it with SIGTERM
at the end, checking exit status 0 and a clean stderr (sanitizer builds).

Run: ECHO_SERVER=build/examples/echo-server /usr/bin/python3 test_robust.py
"""

import asyncio
import json
import os
import random
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from wsharness import (OP_BINARY, OP_CLOSE, OP_TEXT, RawWS,  # noqa: E402
                       encode_frame, http_exchange, http_get,
                       recv_http_response, server_is_sanitized, start_server,
                       ws_accept_value, ws_request)

SANITIZED = server_is_sanitized()


def wait_until(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def json_error(tc, r, status):
    tc.assertEqual(r.status, status, "raw response %r" % r.raw[:300])
    if r.body:
        doc = json.loads(r.body)
        tc.assertIn("error", doc)


def echo_ok(port, text="ping?"):
    """One full WS round trip over a raw socket, synchronously."""
    async def go():
        r = await RawWS.connect(port)
        await r.send(OP_TEXT, text.encode())
        got = await r.recv_message()
        await r.send_close(1000)
        await r.expect_close(reply=False)
        r.close()
        return got
    return asyncio.run(go()) == (OP_TEXT, text.encode())


class Heads(unittest.TestCase):
    def setUp(self):
        self.srv = start_server(self, "--header-timeout-ms", "1000")
        self.port = self.srv.port

    def test_oversized_header_431(self):
        req = ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n"
               % ("a" * 9000)).encode()
        r = http_exchange(self.port, req, wait_close=True)
        json_error(self, r, 431)
        self.assertTrue(r.closed)
        self.assertEqual(http_get(self.port).status, 200)

    def test_many_headers_431(self):
        req = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
        req += "".join("X-H%d: %s\r\n" % (i, "v" * 40) for i in range(300))
        r = http_exchange(self.port, (req + "\r\n").encode(), wait_close=True)
        json_error(self, r, 431)
        self.assertTrue(r.closed)

    def test_long_request_line_431(self):
        req = ("GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % ("p" * 9000)).encode()
        r = http_exchange(self.port, req, wait_close=True)
        json_error(self, r, 431)
        self.assertTrue(r.closed)

    def test_oversized_header_ws_upgrade_431(self):
        req, _ = ws_request(self.port, extra="X-Pad: %s\r\n" % ("b" * 9000))
        r = http_exchange(self.port, req)
        json_error(self, r, 431)

    def test_oversized_header_streamed_431(self):
        # Never finishes the head: the server must answer once the limit
        # is passed, not wait for a blank line.
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ")
            for _ in range(10):
                try:
                    s.sendall(b"c" * 1024)
                except (BrokenPipeError, ConnectionResetError):
                    break
            r = recv_http_response(s, 3.0)
        json_error(self, r, 431)
        self.assertTrue(r.closed)

    def test_head_just_under_limit_ok(self):
        base = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n\r\n"
        pad = 7600 - len(base)
        req = ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n"
               % ("a" * pad)).encode()
        r = http_exchange(self.port, req)
        self.assertEqual(r.status, 200)

    def test_slowloris_closed_by_header_timeout(self):
        t0 = time.monotonic()
        closed_at = None
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            trickle = b"X-Slow: " + b"s" * 100
            got = b""
            for b in trickle:
                try:
                    s.sendall(bytes([b]))
                except (BrokenPipeError, ConnectionResetError):
                    closed_at = time.monotonic()
                    break
                s.settimeout(0.2)
                try:
                    chunk = s.recv(4096)
                    got += chunk
                    if not chunk:
                        closed_at = time.monotonic()
                        break
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed_at = time.monotonic()
                    break
                if time.monotonic() - t0 > 6:
                    break
        self.assertIsNotNone(closed_at, "still open after 6 s of trickle")
        took = closed_at - t0
        self.assertGreater(took, 0.8, "closed before the 1 s timeout")
        self.assertLess(took, 2.5)
        if got:
            self.assertTrue(got.startswith(b"HTTP/1.1 408"), got[:100])

    def test_silent_connection_closed(self):
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            r = recv_http_response(s, 4.0)
        self.assertTrue(r.closed)
        self.assertLess(r.elapsed, 2.5)
        self.assertGreater(time.monotonic() - t0, 0.8)
        if r.status is not None:
            self.assertEqual(r.status, 408)

    def test_body_slowloris_not_unbounded(self):
        # The head is complete; does anything bound a never-finished body?
        # (Only checked to not crash and still serve others.)
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 100\r\n\r\nabc")
            time.sleep(0.3)
            self.assertEqual(http_get(self.port).status, 200)

    def test_garbage_400(self):
        for junk in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" +
                     os.urandom(64) + b"\r\n\r\n",
                     b"HELLO THERE\r\n\r\n",
                     b"GET\r\n\r\n",
                     b"\x00" * 100 + b"\r\n\r\n",
                     b"GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n",
                     b"GET /healthz HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                     b"GET /healthz HTTP/1.1\r\nContent-Length: 1\r\n"
                     b"Content-Length: 2\r\n\r\n",
                     b"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                     b"\r\nzz\r\n"):
            r = http_exchange(self.port, junk, timeout=3, wait_close=True)
            json_error(self, r, 400)
            self.assertTrue(r.closed, "not closed after %r" % junk[:40])
        self.assertEqual(http_get(self.port).status, 200)

    def test_random_garbage_no_crash(self):
        rnd = random.Random(1234)
        for i in range(200):
            junk = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 600)))
            try:
                with socket.create_connection(("127.0.0.1", self.port), 3) as s:
                    s.sendall(junk)
                    s.shutdown(socket.SHUT_WR)
                    r = recv_http_response(s, 3)
                if r.status is not None:
                    self.assertIn(r.status, (400, 408, 431), repr(junk[:50]))
                self.assertTrue(r.closed)
            except (ConnectionResetError, BrokenPipeError):
                pass
        self.assertTrue(self.srv.alive())
        self.assertEqual(http_get(self.port).status, 200)

    def test_half_closed_partial_request(self):
        r = http_exchange(self.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
                          timeout=5, shut_wr=True, wait_close=True)
        self.assertTrue(r.closed)
        self.assertLess(r.elapsed, 0.8, "server waited for a timeout instead "
                        "of seeing EOF")
        if r.status is not None:
            self.assertEqual(r.status, 400)

    def test_half_closed_after_full_request_still_answered(self):
        r = http_exchange(self.port,
                          b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                          timeout=5, shut_wr=True, wait_close=True)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.closed)

    def test_half_closed_websocket(self):
        async def go():
            ws = await RawWS.connect(self.port)
            await ws.send(OP_TEXT, b"bye soon")
            ws.writer.write_eof()
            got = await ws.reader.read(65536)
            # the echo may still come (it was sent before the EOF); then
            # the server must close without waiting for anything
            t0 = time.monotonic()
            rest = await ws.wait_eof(3)
            return got + rest, time.monotonic() - t0
        data, took = asyncio.run(go())
        self.assertLess(took, 2.5)
        self.assertTrue(data.startswith(b"\x81\x08bye soon") or data == b"",
                        data[:40])

    def test_wrong_ws_version_426(self):
        for v in ("8", "12", "14", "abc", "13, 8"):
            req, _ = ws_request(self.port, version=v)
            r = http_exchange(self.port, req)
            self.assertEqual(r.status, 426, "version %r" % v)
            self.assertEqual(r.headers.get("sec-websocket-version"), "13",
                             "version %r" % v)

    def test_bad_handshakes_400(self):
        cases = [
            ws_request(self.port, key="")[0],             # no key
            ws_request(self.port, key="c2hvcnQ=")[0],     # 5 bytes, not 16
            ws_request(self.port, key="!!not base64!!!!!!!!!!==")[0],
            ws_request(self.port, version=None)[0],       # no version
        ]
        for req in cases:
            r = http_exchange(self.port, req)
            self.assertIn(r.status, (400, 426), req)
            if b"Sec-WebSocket-Version" in req:
                self.assertEqual(r.status, 400, req)

    def test_missing_host_400(self):
        # RFC 7230 5.4: an HTTP/1.1 request without Host MUST get 400;
        # RFC 6455 4.1 lists Host among the handshake's required fields.
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        ws = ("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade"
              "\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
              "\r\n" % key).encode()
        r = http_exchange(self.port, ws, timeout=2)
        self.assertEqual(r.status, 400, r.raw[:200])
        r = http_exchange(self.port, b"GET /healthz HTTP/1.1\r\n\r\n",
                          timeout=2)
        self.assertEqual(r.status, 400, r.raw[:200])

    def test_good_handshake_header_variants(self):
        # Case-insensitive tokens, extra Connection tokens, and a key with
        # surrounding spaces are all valid.
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        req = ("GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: WebSocket\r\n"
               "connection: keep-alive, Upgrade\r\nsec-websocket-key:   %s  \r\n"
               "sec-websocket-version: 13\r\n\r\n" % key).encode()
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            s.sendall(req)
            s.settimeout(5)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        self.assertTrue(buf.startswith(b"HTTP/1.1 101"), buf[:200])
        self.assertIn(("Sec-WebSocket-Accept: %s" % ws_accept_value(key))
                      .encode().lower(), buf.lower())

    def test_keepalive_pipelined_requests(self):
        req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            s.sendall(req)
            r = recv_http_response(s, 1.0)  # reads all it can in 1 s
        self.assertEqual(r.status, 200)
        self.assertEqual(r.raw.count(b"HTTP/1.1 200"), 3, r.raw)

    def test_unknown_path_404(self):
        r = http_get(self.port, "/no/such/thing")
        self.assertEqual(r.status, 404)


async def one_cycle(port, kind, sem):
    """One connection of the given kind; returns None or an error text."""
    async with sem:
        w = None
        r = None
        try:
            if kind == 0:  # plain TCP connect + close
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                await w.wait_closed()
            elif kind == 1:  # TCP connect + RST
                _, w = await asyncio.open_connection("127.0.0.1", port)
                sock = w.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
                w.transport.abort()
            elif kind == 2:  # full WS handshake + clean close
                r = await RawWS.connect(port, timeout=10)
                await r.send_close(1000)
                code, _ = await r.expect_close(10, reply=False)
                if code != 1000:
                    return "close code %r" % code
            elif kind == 3:  # WS handshake, half a frame, then drop
                r = await RawWS.connect(port, timeout=10)
                await r.send_raw(encode_frame(OP_BINARY, b"z" * 100)[:50])
                r.abort()
            elif kind == 4:  # partial HTTP request, then close
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(b"GET /healthz HTTP/1.1\r\nHo")
                await w.drain()
                w.close()
                await w.wait_closed()
            else:  # WS handshake, one echo, then just close TCP
                r = await RawWS.connect(port, timeout=10)
                await r.send(OP_TEXT, b"hi")
                got = await r.recv_message(10)
                if got != (OP_TEXT, b"hi"):
                    return "echo %r" % (got,)
        except (ConnectionError, asyncio.IncompleteReadError,
                asyncio.TimeoutError, AssertionError) as e:
            return "kind %d: %r" % (kind, e)
        finally:
            if w is not None:
                w.close()
            if r is not None:
                r.close()
        return None


class Cycles(unittest.TestCase):
    def test_10000_connect_close_cycles(self):
        self.cycles(10000, 1)

    def test_3000_cycles_two_threads(self):
        self.cycles(3000, 2)

    def test_1000_concurrent_connections(self):
        srv = start_server(self, threads=2)
        self.assertTrue(echo_ok(srv.port))
        time.sleep(0.2)
        fd0 = srv.fd_count()

        async def go():
            sem = asyncio.Semaphore(200)

            async def conn(i):
                async with sem:
                    return await RawWS.connect(srv.port, timeout=20)
            conns = await asyncio.gather(*(conn(i) for i in range(1000)))
            peak = srv.fd_count()
            for i, r in enumerate(conns):
                await r.send(OP_TEXT, b"%d" % i)
            for i, r in enumerate(conns):
                self.assertEqual(await r.recv_message(10),
                                 (OP_TEXT, b"%d" % i))
            for r in conns:
                await r.send_close(1000)
            for r in conns:
                await r.expect_close(10, reply=False)
                r.close()
            return peak
        peak = asyncio.run(go())
        self.assertGreaterEqual(peak, fd0 + 1000)
        settled = wait_until(lambda: abs(srv.fd_count() - fd0) <= 5, 10)
        self.assertTrue(settled, "fd count %d, baseline %d"
                        % (srv.fd_count(), fd0))

    def cycles(self, total, threads):
        srv = start_server(self, "--header-timeout-ms", "2000",
                           threads=threads)
        port = srv.port
        # warm up: first connections allocate per-loop buffers and such
        for _ in range(3):
            self.assertTrue(echo_ok(port))
            self.assertEqual(http_get(port).status, 200)
        time.sleep(0.3)
        fd0 = srv.fd_count()
        rss0 = srv.rss_kib()

        async def run_all():
            sem = asyncio.Semaphore(100)
            errors = []
            batch = 1000
            for start in range(0, total, batch):
                res = await asyncio.gather(*(one_cycle(port, i % 6, sem)
                                             for i in range(start,
                                                            start + batch)))
                errors += [e for e in res if e]
            return errors

        t0 = time.monotonic()
        errors = asyncio.run(run_all())
        took = time.monotonic() - t0
        self.assertEqual(errors[:10], [], "%d of %d cycles failed"
                         % (len(errors), total))
        self.assertTrue(srv.alive())
        # the server may still be finishing closes
        settled = wait_until(lambda: abs(srv.fd_count() - fd0) <= 5, 10)
        self.assertTrue(settled, "fd count %d, baseline %d"
                        % (srv.fd_count(), fd0))
        self.assertTrue(echo_ok(port))
        self.assertEqual(http_get(port).status, 200)
        rss1 = srv.rss_kib()
        limit = 64 * 1024 if SANITIZED else 8 * 1024
        self.assertLess(rss1 - rss0, limit, "RSS %d KiB -> %d KiB"
                        % (rss0, rss1))
        sys.stderr.write("\n  %d cycles (%d threads) in %.1f s; fds %d -> %d;"
                         " RSS %d -> %d KiB\n" % (total, threads, took, fd0,
                                                  srv.fd_count(), rss0, rss1))


class SlowConsumer(unittest.TestCase):
    def test_never_reading_client_closed_1008(self):
        env = {}
        if SANITIZED:
            env["ASAN_OPTIONS"] = ("detect_leaks=1:abort_on_error=0:"
                                   "exitcode=23:quarantine_size_mb=16")
        srv = start_server(self, mode="broadcast", env=env)
        port = srv.port
        self.assertTrue(echo_ok(port))  # broadcast to self only
        time.sleep(0.2)
        rss0 = srv.rss_kib()
        msg_len = 60000
        total_bytes = 64 << 20
        nmsgs = total_bytes // msg_len

        async def go():
            sleeper = await RawWS.connect(port, rcvbuf=4096)
            flooder = await RawWS.connect(port)
            try:
                return await asyncio.wait_for(flood(sleeper, flooder), 120)
            finally:
                sleeper.abort()
                flooder.abort()

        async def flood(sleeper, flooder):
            await asyncio.sleep(0.2)
            peak = srv.rss_kib()
            received = [0]

            async def read_own():
                # The flooder gets its own broadcasts; read them so only
                # the sleeper falls behind.
                while received[0] < nmsgs:
                    op, p = await flooder.recv_message(20, skip_pongs=True)
                    if op == OP_CLOSE:
                        raise AssertionError("flooder closed: %r" % p)
                    received[0] += 1

            reader_task = asyncio.create_task(read_own())
            payload = os.urandom(msg_len)
            frame = encode_frame(OP_BINARY, payload)
            for i in range(nmsgs):
                # Stay at most ~2 MiB ahead of our own copies, so only the
                # sleeper (never the flooder) exceeds the 4 MiB out limit.
                while i - received[0] > 32 and not reader_task.done():
                    await asyncio.sleep(0.001)
                flooder.writer.write(frame)
                await asyncio.wait_for(flooder.writer.drain(), 20)
                if i % 64 == 0:
                    peak = max(peak, srv.rss_kib())
                if reader_task.done():
                    break
            await asyncio.wait_for(reader_task, 60)
            peak = max(peak, srv.rss_kib())

            # Now the sleeper reads: whatever data was queued, then a close
            # frame with 1008, then EOF.
            code = None
            nframes = 0
            while True:
                try:
                    f = await sleeper.recv_frame(10)
                except (asyncio.IncompleteReadError, ConnectionResetError):
                    break
                if f.opcode == OP_CLOSE:
                    code = struct.unpack("!H", f.payload[:2])[0] \
                        if len(f.payload) >= 2 else None
                    break
                self.assertEqual(f.opcode, OP_BINARY)
                self.assertEqual(f.payload, payload)
                nframes += 1
            await flooder.send_close(1000)
            await flooder.expect_close(10, reply=False)
            return code, nframes, peak

        code, nframes, peak = asyncio.run(go())
        sys.stderr.write("\n  sleeper got %d frames then close %r; RSS %d "
                         "-> peak %d KiB\n" % (nframes, code, rss0, peak))
        self.assertEqual(code, 1008)
        self.assertLess(nframes, nmsgs // 2)
        limit = 96 * 1024 if SANITIZED else 32 * 1024
        self.assertLess(peak - rss0, limit)
        self.assertTrue(echo_ok(port))


class CloseAndDrain(unittest.TestCase):
    def test_close_timeout_when_peer_never_answers(self):
        # After the server's close frame, a peer that neither answers nor
        # closes TCP is cut after the close timeout (5 s by default).
        srv = start_server(self)

        async def go():
            r = await RawWS.connect(srv.port)
            try:
                await r.send(OP_TEXT, b"\xff")  # -> 1007
                f = await r.recv_frame()
                self.assertEqual(f.opcode, OP_CLOSE)
                t0 = time.monotonic()
                rest = await r.wait_eof(12)
                return rest, time.monotonic() - t0
            finally:
                r.abort()
        rest, took = asyncio.run(go())
        self.assertEqual(rest, b"")
        self.assertLess(took, 8.0)

    def test_drain_with_clients_that_never_read(self):
        # SIGTERM while clients sit on a full pipe and never answer: the
        # drain must still end (5 s drain timeout) and exit 0.
        srv = start_server(self, threads=2)

        async def go():
            stuck = []
            for _ in range(4):
                r = await RawWS.connect(srv.port, rcvbuf=4096)
                stuck.append(r)
                # ~3 MiB of echoes that nobody reads
                for _ in range(50):
                    r.writer.write(encode_frame(OP_BINARY, b"s" * 60000))
                await asyncio.wait_for(r.writer.drain(), 20)
            await asyncio.sleep(0.5)
            t0 = time.monotonic()
            srv.proc.send_signal(15)
            rc = await asyncio.to_thread(srv.wait_exit, 20)
            for r in stuck:
                r.abort()
            return rc, time.monotonic() - t0
        rc, took = asyncio.run(go())
        self.assertEqual(rc, 0, srv.stderr_text())
        self.assertLess(took, 9.0)

    def test_drain_many_connections_four_threads(self):
        srv = start_server(self, threads=4)

        async def go():
            conns = await asyncio.gather(*(RawWS.connect(srv.port)
                                           for _ in range(200)))
            for i, r in enumerate(conns):
                await r.send(OP_TEXT, b"c%d" % i)
            for i, r in enumerate(conns):
                self.assertEqual(await r.recv_message(), (OP_TEXT, b"c%d" % i))
            srv.proc.send_signal(15)

            async def one(r):
                op, p = await r.recv_message(10)
                code, _ = await r.expect_close(10)
                r.close()
                return op, json.loads(p), code
            res = await asyncio.gather(*(one(r) for r in conns))
            rc = await asyncio.to_thread(srv.wait_exit, 15)
            return res, rc
        res, rc = asyncio.run(go())
        for op, doc, code in res:
            self.assertEqual((op, doc, code),
                             (OP_TEXT, {"type": "reconnect", "after_ms": 1000},
                              1012))
        self.assertEqual(rc, 0, srv.stderr_text())


class FloodWithoutReading(unittest.TestCase):
    """A client that writes but never reads: in echo mode its own echoes
    (or pongs) pile up. The server must either stop reading it (TCP
    backpressure) or close it 1008; either way memory stays bounded and
    other clients are served meanwhile."""

    def flood(self, opcode, payload, total):
        env = {}
        if SANITIZED:
            env["ASAN_OPTIONS"] = ("detect_leaks=1:abort_on_error=0:"
                                   "exitcode=23:quarantine_size_mb=16")
        srv = start_server(self, env=env)
        port = srv.port
        self.assertTrue(echo_ok(port))
        rss0 = srv.rss_kib()
        frame = encode_frame(opcode, payload)
        n = total // len(frame)

        async def go():
            r = await RawWS.connect(port, rcvbuf=4096)
            peak = rss0
            blocked = False
            try:
                for i in range(0, n, 16):
                    r.writer.write(frame * 16)
                    try:
                        await asyncio.wait_for(r.writer.drain(), 3)
                    except asyncio.TimeoutError:
                        blocked = True  # server stopped reading: fine
                        break
                    except ConnectionError:
                        break
                    if i % 256 == 0:
                        peak = max(peak, srv.rss_kib())
                peak = max(peak, srv.rss_kib())
                # other clients are still served
                other = await RawWS.connect(port)
                await other.send(OP_TEXT, b"other")
                got = await other.recv_message()
                other.abort()
                return peak, blocked, got
            finally:
                r.abort()
        peak, blocked, got = asyncio.run(go())
        sys.stderr.write("\n  flood: RSS %d -> peak %d KiB, writer %s\n"
                         % (rss0, peak, "blocked" if blocked else "not blocked"))
        self.assertEqual(got, (OP_TEXT, b"other"))
        limit = 48 * 1024 if SANITIZED else 16 * 1024
        self.assertLess(peak - rss0, limit, "server memory grew %d KiB"
                        % (peak - rss0))
        self.assertTrue(echo_ok(port))

    def test_echo_flood(self):
        self.flood(OP_BINARY, os.urandom(60000), 64 << 20)

    def test_ping_flood(self):
        # Every ping owes a pong; unread pongs must count against the
        # outbound limit like any other frame.
        self.flood(0x9, b"P" * 125, 64 << 20)


def random_frames(rnd):
    """A random mix of valid and invalid client frames (seeded)."""
    out = []
    for _ in range(rnd.randint(1, 12)):
        k = rnd.random()
        if k < 0.35:
            op = rnd.choice([0, 1, 2, 1, 2, 8, 9, 10, 3, 11])
            n = rnd.choice([0, 1, 5, 125, 126, 300, 70000])
            payload = bytes(rnd.getrandbits(8) for _ in range(min(n, 400)))
            if n > 400:
                payload = payload * (n // 400 + 1)
                payload = payload[:n]
            out.append(encode_frame(op, payload, fin=rnd.random() < 0.7,
                                    rsv=rnd.choice([0, 0, 0, 0, 1, 4]),
                                    mask=rnd.random() < 0.95))
        elif k < 0.6:
            txt = "ok é😀".encode() * rnd.randint(0, 50)
            cut = rnd.randint(0, len(txt))
            out.append(encode_frame(OP_TEXT, txt[:cut], fin=False))
            out.append(encode_frame(0, txt[cut:], fin=True))
        elif k < 0.75:
            out.append(encode_frame(0x9, os.urandom(rnd.randint(0, 125))))
        elif k < 0.85:
            f = encode_frame(OP_BINARY, os.urandom(rnd.randint(1, 3000)))
            out.append(f[:rnd.randint(1, len(f))])  # truncated frame
        elif k < 0.95:
            out.append(encode_frame(8, struct.pack("!H", rnd.choice(
                [1000, 1005, 3000, 999, 4999, 5000])) + os.urandom(
                rnd.randint(0, 20))))
        else:
            out.append(bytes(rnd.getrandbits(8)
                             for _ in range(rnd.randint(1, 40))))
    return out


class RandomFrames(unittest.TestCase):
    def test_random_frame_sequences(self):
        srv = start_server(self, "--idle-timeout-ms", "2000", threads=2)
        rnd = random.Random(int(os.environ.get("CC_FUZZ_SEED", "4242")))
        plans = [random_frames(rnd) for _ in range(400)]

        async def one(plan, sem):
            async with sem:
                try:
                    r = await RawWS.connect(srv.port)
                except ConnectionError as e:
                    return "connect: %r" % e
                try:
                    for chunk in plan:
                        r.writer.write(chunk)
                    await r.writer.drain()
                    # read until the server closes or goes quiet
                    while True:
                        f = await r.recv_frame(3.0)
                        if f.opcode == OP_CLOSE:
                            break
                except (asyncio.TimeoutError, asyncio.IncompleteReadError,
                        ConnectionError):
                    pass
                finally:
                    r.abort()
                return None

        async def run():
            sem = asyncio.Semaphore(50)
            return await asyncio.gather(*(one(p, sem) for p in plans))
        errors = [e for e in asyncio.run(run()) if e]
        self.assertEqual(errors, [])
        self.assertTrue(srv.alive(), srv.stderr_text())
        self.assertTrue(echo_ok(srv.port))


class TlsRobust(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import shutil
        import subprocess
        import tempfile
        cls.tmp = tempfile.mkdtemp(prefix="cc-robust-tls-")
        cls.cert = os.path.join(cls.tmp, "cert.pem")
        cls.key = os.path.join(cls.tmp, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", cls.key,
             "-out", cls.cert, "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True, timeout=60)
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)

    def setUp(self):
        self.srv = start_server(self, "--tls", self.cert, self.key,
                                "--header-timeout-ms", "1000")
        self.port = self.srv.port

    def tls_echo_ok(self):
        import ssl
        ctx = ssl.create_default_context(cafile=self.cert)

        async def go():
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", self.port, ssl=ctx)
            r = RawWS(reader, writer, 0, {})
            req, key = ws_request(self.port)
            writer.write(req)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            await r.send(OP_TEXT, b"tls ok")
            got = await r.recv_message()
            r.abort()
            return got
        return asyncio.run(go()) == (OP_TEXT, b"tls ok")

    def test_silent_tcp_on_tls_port_closed(self):
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            r = recv_http_response(s, 4.0)
        self.assertTrue(r.closed)
        self.assertLess(r.elapsed, 2.5)

    def test_partial_client_hello_closed(self):
        hello = bytes.fromhex("160301020001000200")  # record + truncated hello
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            s.sendall(hello)
            r = recv_http_response(s, 4.0)
        self.assertTrue(r.closed)
        self.assertLess(r.elapsed, 2.5)

    def test_tls_handshake_then_silence_closed(self):
        import ssl
        ctx = ssl.create_default_context(cafile=self.cert)
        with socket.create_connection(("127.0.0.1", self.port), 5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                t0 = time.monotonic()
                s.settimeout(4)
                try:
                    data = s.recv(100)
                except (ConnectionResetError, ssl.SSLError, OSError):
                    data = b""
                took = time.monotonic() - t0
        self.assertFalse(data.startswith(b"HTTP/1.1 2"))
        self.assertLess(took, 2.5)

    def test_garbage_and_aborts(self):
        rnd = random.Random(99)
        for i in range(300):
            try:
                with socket.create_connection(("127.0.0.1", self.port), 3) as s:
                    kind = i % 3
                    if kind == 0:
                        s.sendall(bytes(rnd.getrandbits(8)
                                        for _ in range(rnd.randint(1, 400))))
                    elif kind == 1:
                        # a real ClientHello start, then RST
                        s.sendall(bytes.fromhex("16030100c4010000c00303") +
                                  os.urandom(40))
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
            except (ConnectionResetError, BrokenPipeError):
                pass
        self.assertTrue(self.srv.alive())
        self.assertTrue(self.tls_echo_ok())

    def test_tls_cycles_fd_baseline(self):
        import ssl
        self.assertTrue(self.tls_echo_ok())
        time.sleep(0.2)
        fd0 = self.srv.fd_count()
        ctx = ssl.create_default_context(cafile=self.cert)

        async def cycle(i, sem):
            async with sem:
                w = None
                try:
                    if i % 2:
                        _, w = await asyncio.open_connection(
                            "127.0.0.1", self.port, ssl=ctx)
                        req, key = ws_request(self.port)
                        w.write(req)
                        await w.drain()
                    else:  # handshake cut short
                        _, w = await asyncio.open_connection("127.0.0.1",
                                                             self.port)
                        w.write(bytes.fromhex("16030100c4010000c00303"))
                        await w.drain()
                except (ConnectionError, ssl.SSLError):
                    pass
                finally:
                    if w is not None:
                        w.transport.abort()

        async def run():
            sem = asyncio.Semaphore(20)
            await asyncio.gather(*(cycle(i, sem) for i in range(400)))
        asyncio.run(run())
        settled = wait_until(lambda: abs(self.srv.fd_count() - fd0) <= 5, 10)
        self.assertTrue(settled, "fd count %d, baseline %d"
                        % (self.srv.fd_count(), fd0))
        self.assertTrue(self.tls_echo_ok())


if __name__ == "__main__":
    unittest.main(verbosity=2)

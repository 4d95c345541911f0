#!/usr/bin/python3
"""
tests/interop/test_python.py - examples/echo-server spoken to by a
WebSocket client nobody here wrote (Debian's python3-websockets 10.4,
asyncio API), plus raw frames for what that client will not send: protocol
violations, invalid UTF-8, control frames between fragments, close codes.

Each test starts its own echo-server on port 0 and stops it with SIGTERM
at the end, checking exit status 0 and a clean stderr (sanitizer builds).

Run: ECHO_SERVER=build/examples/echo-server /usr/bin/python3 test_python.py
"""

import asyncio
import json
import os
import shutil
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from wsharness import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING,  # noqa: E402
                       OP_PONG, OP_TEXT, RawWS, close_payload, encode_frame,
                       http_get, parse_head, start_server, ws_request)

DEFAULT_MAX = 65536


def text_of(nbytes):
    """A str whose UTF-8 encoding is exactly nbytes long, with 1-, 2-, 3-
    and 4-byte characters in it (so UTF-8 crosses frame and read
    boundaries), padded with ASCII."""
    unit = "aé€😀"  # 1 + 2 + 3 + 4 bytes
    s = unit * (nbytes // 10)
    s += "x" * (nbytes - len(s.encode()))
    assert len(s.encode()) == nbytes
    return s


def binary_of(nbytes):
    return bytes((i * 7 + (i >> 8)) & 0xFF for i in range(nbytes))


async def agen(parts):
    for p in parts:
        yield p


def quiet_debug_loop():
    # IsolatedAsyncioTestCase runs the loop in debug mode, which logs every
    # step over 0.1 s; starting a server (blocking) is one. Not a problem.
    asyncio.get_running_loop().slow_callback_duration = 30.0


def rcvd_code(exc):
    return exc.rcvd.code if exc.rcvd is not None else None


class Base(unittest.IsolatedAsyncioTestCase):
    server_args = ()
    mode = "echo"
    threads = 1

    async def asyncSetUp(self):
        quiet_debug_loop()
        self.srv = start_server(self, *self.server_args, mode=self.mode,
                                threads=self.threads)
        self.port = self.srv.port
        self.raws = []
        self.clients = []

    async def asyncTearDown(self):
        for r in self.raws:
            r.abort()
        for c in self.clients:
            try:
                await asyncio.wait_for(c.close(), 5)
            except Exception:
                pass

    async def client(self, port=None, url=None, **kw):
        kw.setdefault("max_size", None)
        kw.setdefault("compression", None)
        kw.setdefault("ping_interval", None)
        kw.setdefault("open_timeout", 5)
        kw.setdefault("close_timeout", 5)
        url = url or "ws://127.0.0.1:%d/" % (port or self.port)
        c = await websockets.connect(url, **kw)
        self.clients.append(c)
        return c

    async def raw(self, **kw):
        r = await RawWS.connect(self.port, **kw)
        self.raws.append(r)
        return r

    async def assert_echo_works(self, port=None):
        async with websockets.connect(
                "ws://127.0.0.1:%d/" % (port or self.port),
                compression=None, ping_interval=None, open_timeout=5) as c:
            await c.send("still alive")
            self.assertEqual(await asyncio.wait_for(c.recv(), 5),
                             "still alive")

    async def assert_closed_with(self, raw, code, timeout=5.0):
        got, _ = await raw.expect_close(timeout)
        self.assertEqual(got, code)


class EchoMessages(Base):
    """Round trips through python-websockets."""

    async def test_text_sizes(self):
        c = await self.client()
        for n in (0, 1, 2, 125, 126, 127, 1000, 65535, 65536):
            msg = text_of(n)
            await c.send(msg)
            got = await asyncio.wait_for(c.recv(), 5)
            self.assertIsInstance(got, str, "size %d" % n)
            self.assertEqual(len(got.encode()), n)
            self.assertEqual(got, msg, "size %d" % n)

    async def test_binary_sizes(self):
        c = await self.client()
        for n in (0, 1, 125, 126, 127, 65535, 65536):
            msg = binary_of(n)
            await c.send(msg)
            got = await asyncio.wait_for(c.recv(), 5)
            self.assertIsInstance(got, bytes, "size %d" % n)
            self.assertEqual(got, msg, "size %d" % n)

    async def test_opcode_kept_alternating(self):
        c = await self.client()
        for i in range(20):
            if i % 2:
                await c.send(b"\x00\xffbin%d" % i)
            else:
                await c.send("txt%d" % i)
        for i in range(20):
            got = await asyncio.wait_for(c.recv(), 5)
            if i % 2:
                self.assertEqual(got, b"\x00\xffbin%d" % i)
            else:
                self.assertEqual(got, "txt%d" % i)

    async def test_many_pipelined_in_order(self):
        c = await self.client()
        n = 2000
        for i in range(n):
            await c.send("m%05d" % i)
        for i in range(n):
            self.assertEqual(await asyncio.wait_for(c.recv(), 10),
                             "m%05d" % i)

    async def test_fragmented_text(self):
        c = await self.client()
        parts = ["he", "llo ", "w\u00f6rld ", "", "\U0001F600!"]
        await c.send(agen(parts))
        self.assertEqual(await asyncio.wait_for(c.recv(), 5),
                         "".join(parts))

    async def test_fragmented_binary(self):
        c = await self.client()
        parts = [binary_of(1000), b"", binary_of(70)[::-1], b"\x00"]
        await c.send(agen(parts))
        self.assertEqual(await asyncio.wait_for(c.recv(), 5),
                         b"".join(parts))

    async def test_fragmented_sum_exactly_limit(self):
        c = await self.client()
        parts = [binary_of(30000), binary_of(30000), binary_of(5536)]
        await c.send(agen(parts))
        got = await asyncio.wait_for(c.recv(), 5)
        self.assertEqual(len(got), DEFAULT_MAX)
        self.assertEqual(got, b"".join(parts))

    async def test_fragmented_over_limit_1009(self):
        c = await self.client()
        parts = ["a" * 40000, "b" * 40000]
        try:
            await c.send(agen(parts))
        except ConnectionClosed:
            pass
        with self.assertRaises(ConnectionClosed) as cm:
            await asyncio.wait_for(c.recv(), 5)
        self.assertEqual(rcvd_code(cm.exception), 1009)

    async def test_text_over_limit_1009(self):
        c = await self.client()
        await c.send("x" * (DEFAULT_MAX + 1))
        with self.assertRaises(ConnectionClosed) as cm:
            await asyncio.wait_for(c.recv(), 5)
        self.assertEqual(rcvd_code(cm.exception), 1009)

    async def test_binary_over_limit_1009(self):
        c = await self.client()
        await c.send(b"\x01" * (DEFAULT_MAX + 1))
        with self.assertRaises(ConnectionClosed) as cm:
            await asyncio.wait_for(c.recv(), 5)
        self.assertEqual(rcvd_code(cm.exception), 1009)

    async def test_ping_pong(self):
        c = await self.client()
        for payload in (b"", b"abc", b"\x00" * 125):
            waiter = await c.ping(payload)
            # the waiter resolves only for a pong with this same payload
            await asyncio.wait_for(waiter, 5)
        await c.send("after pings")
        self.assertEqual(await asyncio.wait_for(c.recv(), 5), "after pings")

    async def test_close_codes_echoed(self):
        for code in (1000, 1001, 3000, 4000, 4999):
            c = await self.client()
            await asyncio.wait_for(c.close(code, "bye %d" % code), 5)
            self.assertEqual(c.close_code, code)

    async def test_healthz(self):
        r = http_get(self.port)
        self.assertEqual(r.status, 200)
        self.assertIn("application/json", r.headers.get("content-type", ""))
        json.loads(r.body)  # must be JSON

    async def test_concurrent_clients(self):
        async def one(i):
            async with websockets.connect(
                    "ws://127.0.0.1:%d/" % self.port, compression=None,
                    ping_interval=None, max_size=None) as c:
                for j in range(30):
                    m = "c%d-%d-%s" % (i, j, "z" * (j * 37))
                    await c.send(m)
                    self.assertEqual(await asyncio.wait_for(c.recv(), 10), m)
        await asyncio.gather(*(one(i) for i in range(25)))


class EchoMultiThread(Base):
    threads = 2

    async def test_concurrent_clients_two_threads(self):
        async def one(i):
            async with websockets.connect(
                    "ws://127.0.0.1:%d/" % self.port, compression=None,
                    ping_interval=None, max_size=None) as c:
                for j in range(30):
                    m = binary_of(j * 101) + b"%d" % i
                    await c.send(m)
                    self.assertEqual(await asyncio.wait_for(c.recv(), 10), m)
        await asyncio.gather(*(one(i) for i in range(40)))


class BigMessages(Base):
    server_args = ("--max-message", "1048576")

    async def test_text_1mib(self):
        c = await self.client()
        msg = text_of(1 << 20)
        await c.send(msg)
        self.assertEqual(await asyncio.wait_for(c.recv(), 10), msg)

    async def test_binary_1mib_fragmented(self):
        c = await self.client()
        parts = [binary_of(1 << 18)] * 4
        await c.send(agen(parts))
        got = await asyncio.wait_for(c.recv(), 10)
        self.assertEqual(len(got), 1 << 20)
        self.assertEqual(got, b"".join(parts))

    async def test_over_1mib_1009(self):
        c = await self.client()
        await c.send("y" * ((1 << 20) + 1))
        with self.assertRaises(ConnectionClosed) as cm:
            await asyncio.wait_for(c.recv(), 10)
        self.assertEqual(rcvd_code(cm.exception), 1009)


class RawProtocol(Base):
    """Frames python-websockets would never send."""

    async def test_raw_text_and_binary_opcodes(self):
        r = await self.raw()
        await r.send(OP_TEXT, b"hello")
        self.assertEqual(await r.recv_message(), (OP_TEXT, b"hello"))
        await r.send(OP_BINARY, b"\xff\x00")
        self.assertEqual(await r.recv_message(), (OP_BINARY, b"\xff\x00"))

    async def test_non_minimal_length_encoding_accepted(self):
        # RFC 6455 does not require the minimal length form from clients.
        r = await self.raw()
        await r.send(OP_TEXT, b"short", len_form=16)
        self.assertEqual(await r.recv_message(), (OP_TEXT, b"short"))
        await r.send(OP_TEXT, b"short64", len_form=64)
        self.assertEqual(await r.recv_message(), (OP_TEXT, b"short64"))

    async def test_zero_mask_key(self):
        r = await self.raw()
        await r.send(OP_TEXT, b"zero mask", mask_key=b"\0\0\0\0")
        self.assertEqual(await r.recv_message(), (OP_TEXT, b"zero mask"))

    async def test_frame_split_across_writes(self):
        r = await self.raw()
        data = encode_frame(OP_TEXT, text_of(300).encode())
        for i in range(len(data)):
            r.writer.write(data[i:i + 1])
            await r.writer.drain()
            if i < 20:
                await asyncio.sleep(0.002)
        self.assertEqual(await r.recv_message(),
                         (OP_TEXT, text_of(300).encode()))

    async def test_many_frames_one_write(self):
        r = await self.raw()
        blob = b"".join(encode_frame(OP_TEXT, b"f%d" % i) for i in range(500))
        await r.send_raw(blob)
        for i in range(500):
            self.assertEqual(await r.recv_message(), (OP_TEXT, b"f%d" % i))

    async def test_ping_answered_with_same_payload(self):
        r = await self.raw()
        for p in (b"", b"x", bytes(range(125))):
            await r.send(OP_PING, p)
            f = await r.recv_frame()
            self.assertEqual((f.opcode, f.fin, f.payload), (OP_PONG, True, p))

    async def test_ping_between_fragments(self):
        r = await self.raw()
        await r.send(OP_TEXT, b"ab", fin=False)
        await r.send(OP_PING, b"p1")
        await r.send(OP_CONT, b"cd", fin=False)
        await r.send(OP_PING, b"p2")
        await r.send(OP_CONT, b"ef", fin=True)
        self.assertEqual(await r.recv_message(), (OP_PONG, b"p1"))
        self.assertEqual(await r.recv_message(), (OP_PONG, b"p2"))
        self.assertEqual(await r.recv_message(), (OP_TEXT, b"abcdef"))

    async def test_unsolicited_pong_ignored(self):
        r = await self.raw()
        await r.send(OP_PONG, b"unasked")
        await r.send(OP_TEXT, b"next")
        self.assertEqual(await r.recv_message(), (OP_TEXT, b"next"))

    async def test_pong_between_fragments_ignored(self):
        r = await self.raw()
        await r.send(OP_BINARY, b"\x01", fin=False)
        await r.send(OP_PONG, b"zz")
        await r.send(OP_CONT, b"\x02", fin=True)
        self.assertEqual(await r.recv_message(), (OP_BINARY, b"\x01\x02"))

    async def test_utf8_split_across_fragments_valid(self):
        r = await self.raw()
        s = "é€😀".encode()  # c3 a9 | e2 82 ac | f0 9f 98 80
        await r.send(OP_TEXT, s[:1], fin=False)
        await r.send(OP_CONT, s[1:4], fin=False)
        await r.send(OP_CONT, s[4:7], fin=False)
        await r.send(OP_CONT, s[7:], fin=True)
        self.assertEqual(await r.recv_message(), (OP_TEXT, s))

    async def test_invalid_utf8_1007(self):
        cases = [b"\xff", b"abc\x80", b"\xc0\xaf", b"\xe0\x80\xaf",
                 b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80",
                 b"ok\xe2\x82"]  # last: truncated at the end of the message
        for payload in cases:
            r = await self.raw()
            await r.send(OP_TEXT, payload)
            code, _ = await r.expect_close()
            self.assertEqual(code, 1007, "payload %r" % payload)
        await self.assert_echo_works()

    async def test_invalid_utf8_in_unfinished_fragment_1007(self):
        # The library validates incrementally: the close must come without
        # the final fragment ever being sent.
        r = await self.raw()
        await r.send(OP_TEXT, b"fine so far \xed\xbf\xbf", fin=False)
        self.assertEqual((await r.expect_close(3.0))[0], 1007)

    async def test_invalid_utf8_split_fragments_1007(self):
        r = await self.raw()
        await r.send(OP_TEXT, b"\xe2", fin=False)
        await r.send(OP_CONT, b"(", fin=False)  # bad continuation byte
        self.assertEqual((await r.expect_close(3.0))[0], 1007)

    async def test_truncated_utf8_at_final_fragment_1007(self):
        r = await self.raw()
        await r.send(OP_TEXT, b"abc", fin=False)
        await r.send(OP_CONT, b"\xf0\x9f\x98", fin=True)
        self.assertEqual((await r.expect_close())[0], 1007)

    async def test_invalid_utf8_binary_is_fine(self):
        r = await self.raw()
        await r.send(OP_BINARY, b"\xff\xfe\xc0")
        self.assertEqual(await r.recv_message(), (OP_BINARY, b"\xff\xfe\xc0"))

    async def test_rsv_bits_1002(self):
        for rsv in (1, 2, 4, 7):
            r = await self.raw()
            await r.send(OP_TEXT, b"rsv", rsv=rsv)
            self.assertEqual((await r.expect_close())[0], 1002, "rsv %d" % rsv)
        r = await self.raw()
        await r.send(OP_PING, b"rsv", rsv=4)
        self.assertEqual((await r.expect_close())[0], 1002)

    async def test_unmasked_frame_1002(self):
        r = await self.raw()
        await r.send(OP_TEXT, b"no mask", mask=False)
        self.assertEqual((await r.expect_close())[0], 1002)
        r = await self.raw()
        await r.send(OP_PING, b"", mask=False)
        self.assertEqual((await r.expect_close())[0], 1002)

    async def test_reserved_opcodes_1002(self):
        for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
            r = await self.raw()
            await r.send(op, b"x")
            self.assertEqual((await r.expect_close())[0], 1002, "op %d" % op)

    async def test_fragmented_control_1002(self):
        for op in (OP_PING, OP_PONG, OP_CLOSE):
            r = await self.raw()
            await r.send(op, b"", fin=False)
            self.assertEqual((await r.expect_close())[0], 1002, "op %d" % op)

    async def test_control_payload_over_125_1002(self):
        for op in (OP_PING, OP_PONG, OP_CLOSE):
            r = await self.raw()
            payload = close_payload(1000, b"r" * 124) if op == OP_CLOSE \
                else b"p" * 126
            await r.send(op, payload)
            self.assertEqual((await r.expect_close())[0], 1002, "op %d" % op)

    async def test_continuation_without_start_1002(self):
        r = await self.raw()
        await r.send(OP_CONT, b"orphan", fin=True)
        self.assertEqual((await r.expect_close())[0], 1002)

    async def test_new_message_inside_fragmented_1002(self):
        r = await self.raw()
        await r.send(OP_TEXT, b"first", fin=False)
        await r.send(OP_TEXT, b"second", fin=True)
        self.assertEqual((await r.expect_close())[0], 1002)

    async def test_length_msb_set_1002(self):
        r = await self.raw()
        hdr = bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 1 << 63)
        await r.send_raw(hdr + b"\0\0\0\0")
        self.assertEqual((await r.expect_close())[0], 1002)

    async def test_oversized_header_alone_1009(self):
        # Declared 1 MiB, no payload sent: the server must refuse from the
        # header, not buffer and wait.
        r = await self.raw()
        await r.send_raw(encode_frame(OP_BINARY, b"", length=1 << 20))
        self.assertEqual((await r.expect_close(3.0))[0], 1009)

    async def test_fragment_sum_over_limit_1009_raw(self):
        r = await self.raw()
        await r.send(OP_BINARY, b"\0" * 65000, fin=False)
        await r.send(OP_CONT, b"\0" * 537, fin=False)  # 65537 so far
        self.assertEqual((await r.expect_close(3.0))[0], 1009)

    async def test_close_valid_codes_echoed(self):
        for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                     1012, 1013, 1014, 3000, 3999, 4000, 4999):
            r = await self.raw()
            await r.send_close(code, b"why")
            f = await r.recv_frame()
            self.assertEqual(f.opcode, OP_CLOSE, "code %d" % code)
            self.assertEqual(struct.unpack("!H", f.payload[:2])[0], code)
            await r.wait_eof(5)

    async def test_close_max_reason(self):
        r = await self.raw()
        await r.send_close(4321, "é" * 61 + "x")  # 123 bytes of reason
        f = await r.recv_frame()
        self.assertEqual(f.opcode, OP_CLOSE)
        self.assertEqual(struct.unpack("!H", f.payload[:2])[0], 4321)

    async def test_close_empty(self):
        r = await self.raw()
        await r.send_close(None)
        f = await r.recv_frame()
        self.assertEqual(f.opcode, OP_CLOSE)
        # Nothing to echo: an empty close or 1000 are both right; never 1005.
        self.assertIn(f.payload[:2], (b"", struct.pack("!H", 1000)))
        await r.wait_eof(5)

    async def test_close_invalid_codes_1002(self):
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000,
                     65535):
            r = await self.raw()
            await r.send_close(code)
            f = await r.recv_frame()
            self.assertEqual(f.opcode, OP_CLOSE)
            self.assertEqual(struct.unpack("!H", f.payload[:2])[0], 1002,
                             "code %d" % code)

    async def test_close_one_byte_payload_1002(self):
        r = await self.raw()
        await r.send(OP_CLOSE, b"\x03")
        f = await r.recv_frame()
        self.assertEqual((f.opcode, f.payload[:2]),
                         (OP_CLOSE, struct.pack("!H", 1002)))

    async def test_close_invalid_utf8_reason_1007(self):
        r = await self.raw()
        await r.send(OP_CLOSE, close_payload(1000, b"bad \xff"))
        f = await r.recv_frame()
        self.assertEqual((f.opcode, f.payload[:2]),
                         (OP_CLOSE, struct.pack("!H", 1007)))

    async def test_close_then_server_closes_tcp(self):
        r = await self.raw()
        await r.send(OP_TEXT, b"last")
        await r.send_close(1000)
        self.assertEqual(await r.recv_message(), (OP_TEXT, b"last"))
        f = await r.recv_frame()
        self.assertEqual(f.opcode, OP_CLOSE)
        # after the close, no more frames: just EOF
        self.assertEqual(await r.wait_eof(5), b"")

    async def test_frame_in_same_packet_as_handshake(self):
        # Bytes after the request head belong to the WebSocket: a client
        # may send its first frame in the same write as the upgrade.
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            req, key = ws_request(self.port)
            writer.write(req + encode_frame(OP_TEXT, b"eager") +
                         encode_frame(OP_PING, b"p"))
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            r = RawWS(reader, writer, 101, {})
            self.assertEqual(await r.recv_message(), (OP_TEXT, b"eager"))
            self.assertEqual(await r.recv_message(), (OP_PONG, b"p"))
        finally:
            writer.close()

    async def test_pipelined_http_then_upgrade(self):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            req, key = ws_request(self.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + req)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            status, headers = parse_head(head)
            self.assertEqual(status, 200)
            body = await reader.readexactly(int(headers["content-length"]))
            json.loads(body)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            r = RawWS(reader, writer, 101, {})
            await r.send(OP_TEXT, b"after http")
            self.assertEqual(await r.recv_message(), (OP_TEXT, b"after http"))
        finally:
            writer.close()

    async def test_upgrade_with_query_string(self):
        c = await self.client(url="ws://127.0.0.1:%d/?session=S_1&last_seq=4"
                              % self.port)
        await c.send("q")
        self.assertEqual(await asyncio.wait_for(c.recv(), 5), "q")

    async def test_upgrade_on_other_path_refused(self):
        r = await RawWS.connect(self.port, path="/nope", expect_status=None)
        self.raws.append(r)
        self.assertEqual(r.status, 404)

    async def test_data_after_close_ignored(self):
        r = await self.raw()
        await r.send_raw(encode_frame(OP_CLOSE, close_payload(1000)) +
                         encode_frame(OP_TEXT, b"too late"))
        f = await r.recv_frame()
        self.assertEqual((f.opcode, f.payload[:2]),
                         (OP_CLOSE, struct.pack("!H", 1000)))
        self.assertEqual(await r.wait_eof(5), b"")

    async def test_many_one_byte_fragments(self):
        r = await self.raw()
        data = text_of(2000).encode()
        frames = [encode_frame(OP_TEXT, data[:1], fin=False)]
        frames += [encode_frame(OP_CONT, data[i:i + 1], fin=False)
                   for i in range(1, len(data))]
        frames.append(encode_frame(OP_CONT, b"", fin=True))
        await r.send_raw(b"".join(frames))
        self.assertEqual(await r.recv_message(), (OP_TEXT, data))

    async def test_server_survives_all_of_it(self):
        # A mix of violations on live connections in parallel; the server
        # must still echo afterwards (stop_and_check then checks exit 0).
        async def bad(i):
            r = await RawWS.connect(self.port)
            self.raws.append(r)
            kind = i % 4
            if kind == 0:
                await r.send(OP_TEXT, b"\xff")
            elif kind == 1:
                await r.send(OP_TEXT, b"x", rsv=2)
            elif kind == 2:
                await r.send(OP_BINARY, b"", length=1 << 30)
            else:
                await r.send(OP_CONT, b"x")
            await r.expect_close()
        await asyncio.gather(*(bad(i) for i in range(40)))
        await self.assert_echo_works()


class IdleTimeout(Base):
    server_args = ("--idle-timeout-ms", "600")

    async def test_idle_closed_1001(self):
        r = await self.raw()
        t0 = time.monotonic()
        code, _ = await r.expect_close(5.0)
        took = time.monotonic() - t0
        self.assertEqual(code, 1001)
        self.assertGreater(took, 0.4)
        self.assertLess(took, 3.0)

    async def test_activity_keeps_open(self):
        r = await self.raw()
        for i in range(8):  # 1.6 s of pings, 200 ms apart
            await r.send(OP_PING, b"k%d" % i)
            self.assertEqual(await r.recv_message(), (OP_PONG, b"k%d" % i))
            await asyncio.sleep(0.2)
        await r.send(OP_TEXT, b"still here")
        self.assertEqual(await r.recv_message(), (OP_TEXT, b"still here"))

    async def test_idle_mid_fragmented_message(self):
        r = await self.raw()
        await r.send(OP_TEXT, b"half", fin=False)
        code, _ = await r.expect_close(5.0)
        self.assertEqual(code, 1001)

    async def test_idle_with_python_client(self):
        c = await self.client()
        with self.assertRaises(ConnectionClosed) as cm:
            await asyncio.wait_for(c.recv(), 5)
        self.assertEqual(rcvd_code(cm.exception), 1001)


class Broadcast(Base):
    mode = "broadcast"

    async def broadcast_round(self, nclients):
        cs = [await self.client() for _ in range(nclients)]
        await asyncio.sleep(0.3)  # let every connection register
        sent = []
        for i, c in enumerate(cs):
            m = "from client %d" % i
            sent.append(m)
            await c.send(m)
        for i, c in enumerate(cs):
            got = set()
            for _ in range(nclients):
                got.add(await asyncio.wait_for(c.recv(), 5))
            self.assertEqual(got, set(sent), "client %d" % i)
        # and nothing more arrives
        for c in cs:
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(c.recv(), 0.2)
        # binary relays as binary
        await cs[0].send(b"\x00\x01bin")
        for c in cs:
            self.assertEqual(await asyncio.wait_for(c.recv(), 5),
                             b"\x00\x01bin")

    async def test_three_clients(self):
        await self.broadcast_round(3)

    async def test_order_from_one_sender(self):
        cs = [await self.client() for _ in range(3)]
        await asyncio.sleep(0.3)
        for i in range(200):
            await cs[1].send("seq %d" % i)
        for c in cs:
            for i in range(200):
                self.assertEqual(await asyncio.wait_for(c.recv(), 5),
                                 "seq %d" % i)


class BroadcastTwoThreads(Broadcast):
    threads = 2

    async def test_three_clients(self):
        await self.broadcast_round(3)

    async def test_eight_clients(self):
        await self.broadcast_round(8)


class Tls(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("no openssl CLI")
        cls.tmp = tempfile.mkdtemp(prefix="cc-interop-tls-")
        cls.cert = os.path.join(cls.tmp, "cert.pem")
        cls.key = os.path.join(cls.tmp, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", cls.key, "-out", cls.cert, "-days", "2",
             "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True, timeout=60)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    async def asyncSetUp(self):
        quiet_debug_loop()
        self.srv = start_server(self, "--tls", self.cert, self.key)
        self.port = self.srv.port
        self.ctx = ssl.create_default_context(cafile=self.cert)
        self.url = "wss://127.0.0.1:%d/" % self.port

    def connect(self, **kw):
        return websockets.connect(self.url, ssl=self.ctx, compression=None,
                                  max_size=None, ping_interval=None,
                                  open_timeout=10, **kw)

    async def test_echo_round_trip(self):
        async with self.connect() as c:
            for n in (0, 1, 126, 65536):
                await c.send(text_of(n))
                self.assertEqual(await asyncio.wait_for(c.recv(), 5),
                                 text_of(n))
                await c.send(binary_of(n))
                self.assertEqual(await asyncio.wait_for(c.recv(), 5),
                                 binary_of(n))
            await c.send(agen(["tls ", "frag", "ments"]))
            self.assertEqual(await asyncio.wait_for(c.recv(), 5),
                             "tls fragments")
            await asyncio.wait_for(await c.ping(b"tls"), 5)
            await c.close(4001, "done")
            self.assertEqual(c.close_code, 4001)

    async def test_untrusted_client_refused_then_ok(self):
        # A client that does not trust the cert fails its handshake; the
        # server must shrug that off.
        bad = ssl.create_default_context()
        with self.assertRaises(ssl.SSLCertVerificationError):
            await websockets.connect(self.url, ssl=bad, open_timeout=10)
        async with self.connect() as c:
            await c.send("ok")
            self.assertEqual(await asyncio.wait_for(c.recv(), 5), "ok")

    async def test_plaintext_to_tls_port(self):
        r = await asyncio.wait_for(
            asyncio.to_thread(http_get, self.port, "/healthz", 5.0), 10)
        self.assertNotEqual(r.status, 200)
        self.assertTrue(r.closed, "server kept a plaintext conn open")
        async with self.connect() as c:
            await c.send("ok")
            self.assertEqual(await asyncio.wait_for(c.recv(), 5), "ok")

    async def test_many_tls_clients(self):
        async def one(i):
            async with self.connect() as c:
                for j in range(10):
                    await c.send("t%d.%d" % (i, j))
                    self.assertEqual(await asyncio.wait_for(c.recv(), 10),
                                     "t%d.%d" % (i, j))
        await asyncio.gather(*(one(i) for i in range(10)))


class Drain(unittest.IsolatedAsyncioTestCase):
    async def test_sigterm_reconnect_then_1012(self):
        quiet_debug_loop()
        srv = start_server(self, threads=2)
        url = "ws://127.0.0.1:%d/" % srv.port
        cs = [await websockets.connect(url, compression=None,
                                       ping_interval=None, open_timeout=5)
              for _ in range(3)]
        raw = await RawWS.connect(srv.port)
        for c in cs:  # every connection is live
            await c.send("x")
            self.assertEqual(await asyncio.wait_for(c.recv(), 5), "x")
        srv.proc.send_signal(15)
        for i, c in enumerate(cs):
            first = await asyncio.wait_for(c.recv(), 5)
            self.assertIsInstance(first, str)
            self.assertEqual(json.loads(first),
                             {"type": "reconnect", "after_ms": 1000},
                             "client %d" % i)
            with self.assertRaises(ConnectionClosed) as cm:
                await asyncio.wait_for(c.recv(), 5)
            self.assertEqual(rcvd_code(cm.exception), 1012)
        op, payload = await raw.recv_message()
        self.assertEqual(op, OP_TEXT)
        self.assertEqual(json.loads(payload),
                         {"type": "reconnect", "after_ms": 1000})
        code, _ = await raw.expect_close()
        self.assertEqual(code, 1012)
        # exits by itself once drained; no second signal (a second SIGTERM
        # during the drain kills it: libuv restores the default action)
        rc = await asyncio.to_thread(srv.wait_exit, 10)
        self.assertEqual(rc, 0, srv.stderr_text())

    async def test_sigterm_idle_server_exits_0(self):
        quiet_debug_loop()
        srv = start_server(self)
        t0 = time.monotonic()
        rc = await asyncio.to_thread(srv.terminate, 10)
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 3.0)


if __name__ == "__main__":
    unittest.main(verbosity=2)

// tests/interop/test_node.mjs - examples/echo-server spoken to by the npm
// `ws` client (pinned in package.json / package-lock.json, installed into
// tests/interop/node_modules by `npm ci`). Runs under node:test.
//
// Each describe() block starts its own echo-server on port 0 and stops it
// with SIGTERM at the end, checking exit status 0 and a clean stderr
// (sanitizer builds). Every server still alive at exit is killed.
//
// Run: ECHO_SERVER=build/examples/echo-server node --test test_node.mjs

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';

let WebSocket;
try {
  ({ WebSocket } = await import('ws'));
} catch (e) {
  throw new Error('npm package "ws" not found: run `npm ci` in tests/interop ' +
                  '(scripts/setup.sh does): ' + e.message);
}

const BIN = process.env.ECHO_SERVER;
if (!BIN) throw new Error('set ECHO_SERVER to the echo-server binary path');

const SANITIZER_MARKERS = ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer',
  'runtime error:', 'SUMMARY: AddressSanitizer',
  'SUMMARY: UndefinedBehaviorSanitizer'];
const live = new Set();
const HAVE_SETPRIV = (() => {
  try {
    execFileSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
process.on('exit', () => { for (const p of live) p.kill('SIGKILL'); });

function startServer(args = [], { mode = 'echo', threads = 1 } = {}) {
  const argv = ['--port', '0', '--host', '127.0.0.1', '--mode', mode,
    '--threads', String(threads), ...args];
  const env = { ...process.env };
  env.ASAN_OPTIONS ??= 'detect_leaks=1:abort_on_error=0:exitcode=23';
  env.UBSAN_OPTIONS ??= 'print_stacktrace=1:halt_on_error=1';
  // setpriv --pdeathsig: the server dies with us even if we are SIGKILLed
  // (ctest's TIMEOUT), which no exit handler of ours would survive.
  const proc = HAVE_SETPRIV
    ? spawn('setpriv', ['--pdeathsig', 'KILL', '--', BIN, ...argv],
      { stdio: ['ignore', 'pipe', 'pipe'], env })
    : spawn(BIN, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
  live.add(proc);
  const srv = { proc, argv, stdout: '', stderr: '', port: 0, exit: null };
  srv.exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      live.delete(proc);
      srv.exit = { code, signal };
      resolve(srv.exit);
    });
  });
  proc.stderr.on('data', (d) => { srv.stderr += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`echo-server gave no port: ${srv.stdout}${srv.stderr}`));
    }, 20000);
    proc.stdout.on('data', (d) => {
      srv.stdout += d;
      const m = /listening on port (\d+)/.exec(srv.stdout);
      if (m && !srv.port) {
        srv.port = Number(m[1]);
        clearTimeout(timer);
        resolve(srv);
      }
    });
    srv.exited.then((e) => {
      clearTimeout(timer);
      if (!srv.port) {
        reject(new Error(`echo-server exited ${JSON.stringify(e)}: ${srv.stderr}`));
      }
    });
  });
}

async function stopServer(srv) {
  if (!srv) return;
  if (srv.exit === null) {
    srv.proc.kill('SIGTERM');
    const t = setTimeout(() => srv.proc.kill('SIGKILL'), 15000);
    await srv.exited;
    clearTimeout(t);
  }
  for (const m of SANITIZER_MARKERS) {
    assert.ok(!srv.stderr.includes(m), `sanitizer report:\n${srv.stderr}`);
  }
  assert.deepEqual(srv.exit, { code: 0, signal: null },
    `echo-server exit after SIGTERM; stderr:\n${srv.stderr}`);
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, rej) => {
      t = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms);
    }),
  ]);
}

function open(url, protocols, opts = {}) {
  const ws = new WebSocket(url, protocols,
    { perMessageDeflate: false, handshakeTimeout: 5000, ...opts });
  const st = { queue: [], waiters: [], closed: null, errors: [] };
  ws.on('message', (data, isBinary) => {
    const m = { data: Buffer.from(data), isBinary };
    const w = st.waiters.shift();
    if (w) w.resolve(m); else st.queue.push(m);
  });
  ws.on('error', (e) => st.errors.push(e));
  st.closePromise = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      st.closed = { code, reason: reason.toString() };
      for (const w of st.waiters.splice(0)) w.reject(new Error(`closed ${code}`));
      resolve(st.closed);
    });
  });
  ws.next = (ms = 5000) => {
    if (st.queue.length) return Promise.resolve(st.queue.shift());
    if (st.closed) return Promise.reject(new Error(`closed ${st.closed.code}`));
    return withTimeout(new Promise((resolve, reject) => {
      st.waiters.push({ resolve, reject });
    }), ms, 'message');
  };
  ws.closed = (ms = 5000) => withTimeout(st.closePromise, ms, 'close');
  ws.st = st;
  return withTimeout(new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  }), 10000, 'open');
}

function textOf(n) {
  const unit = 'aé€😀';  // 1 + 2 + 3 + 4 bytes
  let s = unit.repeat(Math.floor(n / 10));
  s += 'x'.repeat(n - Buffer.byteLength(s));
  assert.equal(Buffer.byteLength(s), n);
  return s;
}

function binaryOf(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

const sendP = (ws, data, opts = {}) => new Promise((resolve, reject) => {
  ws.send(data, opts, (err) => (err ? reject(err) : resolve()));
});

async function roundTrips(ws) {
  for (const n of [0, 1, 125, 126, 127, 65535, 65536]) {
    const t = textOf(n);
    await sendP(ws, t);
    const m = await ws.next();
    assert.equal(m.isBinary, false, `text ${n}`);
    assert.equal(m.data.toString('utf8'), t, `text ${n}`);
    const b = binaryOf(n);
    await sendP(ws, b, { binary: true });
    const mb = await ws.next();
    assert.equal(mb.isBinary, true, `binary ${n}`);
    assert.ok(mb.data.equals(b), `binary ${n}`);
  }
}

describe('echo (plain)', () => {
  let srv;
  let url;
  before(async () => {
    srv = await startServer();
    url = `ws://127.0.0.1:${srv.port}/`;
  });
  after(async () => { await stopServer(srv); });

  it('echoes text and binary of every length form', async () => {
    const ws = await open(url);
    await roundTrips(ws);
    ws.close(1000);
    assert.equal((await ws.closed()).code, 1000);
  });

  it('joins fragments sent with fin:false', async () => {
    const ws = await open(url);
    ws.send('frag', { fin: false });
    ws.send('men', { fin: false });
    ws.send('', { fin: false });
    ws.send('ted ✓', { fin: true });
    let m = await ws.next();
    assert.equal(m.isBinary, false);
    assert.equal(m.data.toString(), 'fragmented ✓');
    ws.send(binaryOf(40000), { binary: true, fin: false });
    ws.send(binaryOf(25536), { binary: true, fin: true });
    m = await ws.next();
    assert.equal(m.isBinary, true);
    assert.ok(m.data.equals(Buffer.concat([binaryOf(40000), binaryOf(25536)])));
    ws.close();
    await ws.closed();
  });

  it('answers pings with the same payload', async () => {
    const ws = await open(url);
    for (const p of [Buffer.alloc(0), Buffer.from('node'), Buffer.alloc(125, 7)]) {
      const got = withTimeout(new Promise((r) => ws.once('pong', r)), 5000, 'pong');
      ws.ping(p);
      assert.ok((await got).equals(p));
    }
    ws.close();
    await ws.closed();
  });

  it('echoes close codes and reasons', async () => {
    for (const code of [1000, 3000, 4000, 4999]) {
      const ws = await open(url);
      ws.close(code, `bye ${code}`);
      const c = await ws.closed();
      assert.equal(c.code, code);
    }
  });

  it('closes 1009 for a message over 65536 bytes', async () => {
    const ws = await open(url);
    ws.send(Buffer.alloc(65537, 1), { binary: true });
    assert.equal((await ws.closed()).code, 1009);
  });

  it('closes 1009 when fragments sum over 65536 bytes', async () => {
    const ws = await open(url);
    ws.send('a'.repeat(40000), { fin: false });
    ws.send('b'.repeat(40000), { fin: true });
    assert.equal((await ws.closed()).code, 1009);
  });

  it('serves 30 concurrent clients', async () => {
    await Promise.all(Array.from({ length: 30 }, async (_, i) => {
      const ws = await open(url);
      for (let j = 0; j < 20; j++) {
        const t = `n${i}.${j}` + 'q'.repeat(j * 50);
        ws.send(t);
        assert.equal((await ws.next(10000)).data.toString(), t);
      }
      ws.close();
      await ws.closed();
    }));
  });

  it('answers GET /healthz with 200 JSON', async () => {
    const res = await new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: srv.port, path: '/healthz' }, (r) => {
        let body = '';
        r.on('data', (d) => { body += d; });
        r.on('end', () => resolve({ status: r.statusCode, body, ct: r.headers['content-type'] }));
      }).on('error', reject);
    });
    assert.equal(res.status, 200);
    assert.match(res.ct, /application\/json/);
    JSON.parse(res.body);
  });

  it('negotiates a subprotocol if the server offers one', async (t) => {
    let ws;
    try {
      ws = await open(url, ['chatcore.v1']);
    } catch (e) {
      if (/no subprotocol/i.test(String(e.message))) {
        t.skip('echo-server selects no subprotocol');
        return;
      }
      throw e;
    }
    assert.equal(ws.protocol, 'chatcore.v1');
    ws.send('with protocol');
    assert.equal((await ws.next()).data.toString(), 'with protocol');
    ws.close();
    await ws.closed();
  });

  it('selects no subprotocol nobody offered', async () => {
    const ws = await open(url);
    assert.equal(ws.protocol, '');
    ws.close();
    await ws.closed();
  });
});

describe('echo (1 MiB limit, 2 threads)', () => {
  let srv;
  let url;
  before(async () => {
    srv = await startServer(['--max-message', '1048576'], { threads: 2 });
    url = `ws://127.0.0.1:${srv.port}/`;
  });
  after(async () => { await stopServer(srv); });

  it('echoes 1 MiB text and binary', async () => {
    const ws = await open(url);
    const t = textOf(1 << 20);
    ws.send(t);
    assert.equal((await ws.next(10000)).data.toString(), t);
    const b = binaryOf(1 << 20);
    ws.send(b);
    assert.ok((await ws.next(10000)).data.equals(b));
    ws.send(Buffer.alloc((1 << 20) + 1), { binary: true });
    assert.equal((await ws.closed(10000)).code, 1009);
  });
});

describe('echo over TLS', () => {
  let srv;
  let url;
  let dir;
  let ca;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-interop-node-'));
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec',
      '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
      { stdio: 'ignore' });
    ca = fs.readFileSync(cert);
    srv = await startServer(['--tls', cert, key]);
    url = `wss://127.0.0.1:${srv.port}/`;
  });
  after(async () => {
    await stopServer(srv);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('echoes with the cert trusted through `ca`', async () => {
    const ws = await open(url, undefined, { ca });
    await roundTrips(ws);
    ws.send('tls ', { fin: false });
    ws.send('frags', { fin: true });
    assert.equal((await ws.next()).data.toString(), 'tls frags');
    const pong = withTimeout(new Promise((r) => ws.once('pong', r)), 5000, 'pong');
    ws.ping('p');
    assert.equal((await pong).toString(), 'p');
    ws.close(4002, 'tls bye');
    assert.equal((await ws.closed()).code, 4002);
  });

  it('refuses a client that does not trust the cert, then still serves', async () => {
    await assert.rejects(open(url), /self[- ]signed|certificate/i);
    const ws = await open(url, undefined, { ca });
    ws.send('ok');
    assert.equal((await ws.next()).data.toString(), 'ok');
    ws.close();
    await ws.closed();
  });
});

describe('broadcast', () => {
  let srv;
  let url;
  before(async () => {
    srv = await startServer([], { mode: 'broadcast', threads: 2 });
    url = `ws://127.0.0.1:${srv.port}/`;
  });
  after(async () => { await stopServer(srv); });

  it('relays each message to every connection', async () => {
    const socks = await Promise.all([0, 1, 2].map(() => open(url)));
    await new Promise((r) => setTimeout(r, 300));
    socks.forEach((ws, i) => ws.send(`hi from ${i}`));
    const want = ['hi from 0', 'hi from 1', 'hi from 2'];
    for (const ws of socks) {
      const got = [];
      for (let i = 0; i < 3; i++) got.push((await ws.next()).data.toString());
      assert.deepEqual(got.sort(), want);
    }
    for (const ws of socks) { ws.close(); await ws.closed(); }
  });
});

describe('drain on SIGTERM', () => {
  it('sends the reconnect frame, then closes 1012, then exits 0', async () => {
    const srv = await startServer();
    try {
      const url = `ws://127.0.0.1:${srv.port}/`;
      const socks = await Promise.all([0, 1].map(() => open(url)));
      for (const ws of socks) {
        ws.send('x');
        await ws.next();
      }
      srv.proc.kill('SIGTERM');
      for (const ws of socks) {
        const m = await ws.next();
        assert.equal(m.isBinary, false);
        assert.deepEqual(JSON.parse(m.data.toString()),
          { type: 'reconnect', after_ms: 1000 });
        assert.equal((await ws.closed()).code, 1012);
      }
      await withTimeout(srv.exited, 10000, 'exit');
    } finally {
      await stopServer(srv);
    }
  });
});

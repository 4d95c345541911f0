// tests/web/harness.mjs - the machinery of the real-browser tests of the
// web pages (docs/web.md): chatcore-server processes, the HTTP API with
// the admin key, one headless Chromium driven by playwright-core, and the
// people of a scenario (visitor, agents, admin), each in a browser context
// of their own so their localStorage and connections are separate.
//
// Pages are only ever touched through their data-testid hooks (the "Test
// hooks" section of docs/web.md); getByTestId pierces the widget's open
// shadow root. playwright-core has no `expect`, so the web-first waits
// here (waitAttr, waitCount, waitText, ...) poll a locator until it
// matches or their timeout (at most 10 s) runs out; none of them sleeps
// a fixed time to "let things settle".

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ADMIN_KEY = 'web-test-admin-key-7f2c9d';
export const WAIT = 10000;            // the longest any single wait may take
const POLL_MS = 50;

// Text a sanitizer prints when it finds something (ASan, LSan, UBSan).
const SANITIZER_MARKERS = [
    'ERROR: AddressSanitizer',
    'ERROR: LeakSanitizer',
    'runtime error:',
    'SUMMARY: AddressSanitizer',
    'SUMMARY: UndefinedBehaviorSanitizer',
];

export class TestFailure extends Error {}

export function check(cond, what) {
    if (!cond)
        throw new TestFailure(what);
}

export function eq(got, want, what) {
    const g = JSON.stringify(got);
    const w = JSON.stringify(want);
    if (g !== w)
        throw new TestFailure(`${what}: expected ${w}, got ${g}`);
}

export function rid(n = 6) {
    let s = '';
    for (let i = 0; i < n; i++)
        s += Math.floor(Math.random() * 16).toString(16);
    return s;
}

// ------------------------------------------------------------- server ----

// Every server still running, so the runner can take them down when it is
// interrupted (ctest's TIMEOUT, ^C).
export const liveServers = new Set();

// Whether this binary knows --logins-per-min; learnt on the first start.
let loginsFlag = null;

export class Server {
    constructor({ binary, web, name, tmp }) {
        this.binary = binary;
        this.web = web;
        this.name = name;
        this.data = fs.mkdtempSync(path.join(tmp, `${name}-data-`));
        this.logPath = path.join(this.data, 'server.log');
        this.lines = [];
        this.proc = null;
        this.port = 0;
        this.starts = 0;
        this.exitInfo = null;
        this.stopping = false;
        this.unexpected = null;   // how a started server died on its own
    }

    get base() {
        return `http://127.0.0.1:${this.port}`;
    }

    // Agent logins this server will take before answering 429; the
    // scenarios keep well below 10 when the flag is missing.
    get loginsLifted() {
        return loginsFlag === true;
    }

    argv(withLogins) {
        const a = ['--port', String(this.port), '--host', '127.0.0.1',
            '--data', this.data, '--admin-key', ADMIN_KEY,
            '--demo', 'false', '--static', this.web,
            '--drain-timeout-ms', '3000'];
        if (withLogins)
            a.push('--logins-per-min', '1000');
        return a;
    }

    // Start (port 0 the first time, the same port after a stop) and learn
    // the port from the "listening" log line.
    async start() {
        check(!this.proc, `${this.name}: start while running`);
        let withLogins = loginsFlag !== false;
        for (let attempt = 0; ; attempt++) {
            const r = await this.spawnOnce(withLogins);
            if (r.ok)
                return this;
            if (withLogins && r.unknownFlag) {
                loginsFlag = false;
                withLogins = false;
                continue;
            }
            // The same port right after a stop can still be taken for a
            // moment (another process, a slow close); try a few times.
            if (r.addrInUse && this.port !== 0 && attempt < 20) {
                await new Promise((res) => setTimeout(res, 150));
                continue;
            }
            throw new TestFailure(`${this.name}: did not start: ${r.why}\n`
                + this.tail(20));
        }
    }

    spawnOnce(withLogins) {
        this.starts++;
        const env = {};
        for (const [k, v] of Object.entries(process.env))
            if (!k.startsWith('CHATCORE_'))
                env[k] = v;
        env.ASAN_OPTIONS ??= 'detect_leaks=1:abort_on_error=0:exitcode=23';
        env.UBSAN_OPTIONS ??= 'print_stacktrace=1:halt_on_error=1';
        this.note(`--- start #${this.starts}: ${this.binary} `
            + this.argv(withLogins).join(' '));
        const proc = spawn(this.binary, this.argv(withLogins), {
            env, stdio: ['ignore', 'ignore', 'pipe'],
        });
        this.proc = proc;
        this.exitInfo = null;
        this.stopping = false;
        let listening = false;
        liveServers.add(this);
        const exited = new Promise((res) => {
            // 'close', not 'exit': by then all of stderr has been read
            proc.on('close', (code, signal) => {
                this.exitInfo = { code, signal };
                if (listening && !this.stopping && this.proc === proc
                    && !this.unexpected)
                    this.unexpected = { code, signal };
                liveServers.delete(this);
                res(this.exitInfo);
            });
        });
        this.exited = exited;
        let buf = '';
        return new Promise((resolve) => {
            let done = false;
            const finish = (r) => {
                if (!done) {
                    done = true;
                    clearTimeout(timer);
                    resolve(r);
                }
            };
            const timer = setTimeout(() => {
                this.kill();
                finish({ ok: false, why: 'no "listening" line in 15 s' });
            }, 15000);
            proc.stderr.setEncoding('utf8');
            proc.stderr.on('data', (chunk) => {
                buf += chunk;
                let i;
                while ((i = buf.indexOf('\n')) >= 0) {
                    const line = buf.slice(0, i);
                    buf = buf.slice(i + 1);
                    this.note(line);
                    if (done || !line.includes('"listening"'))
                        continue;
                    try {
                        const o = JSON.parse(line);
                        if (o.msg === 'listening' && o.port) {
                            this.port = o.port;
                            listening = true;
                            if (withLogins)
                                loginsFlag = true;
                            finish({ ok: true });
                        }
                    } catch { /* not JSON: keep reading */ }
                }
            });
            exited.then((info) => {
                if (buf)
                    this.note(buf);
                const log = this.lines.slice(-5).join('\n');
                if (this.proc === proc)
                    this.proc = null;
                finish({
                    ok: false,
                    why: `exited (code ${info.code}, signal ${info.signal})`,
                    unknownFlag: /unknown flag --logins-per-min/.test(log),
                    addrInUse: /in use|EADDRINUSE/i.test(log),
                });
            });
        });
    }

    note(line) {
        this.lines.push(line);
        try {
            fs.appendFileSync(this.logPath, line + '\n');
        } catch { /* the data dir is gone: keep the copy in memory */ }
    }

    // SIGTERM and wait for the exit: anything but status 0, or a sanitizer
    // report in the log, fails the scenario.
    async stop(timeoutMs = 20000) {
        if (this.unexpected) {
            const u = this.unexpected;
            this.unexpected = null;
            this.checkSanitizer();
            throw new TestFailure(`${this.name}: the server exited on its `
                + `own (code ${u.code}, signal ${u.signal})\n${this.tail(15)}`);
        }
        if (!this.proc)
            return;
        const proc = this.proc;
        this.stopping = true;
        proc.kill('SIGTERM');
        const timer = new Promise((res) => setTimeout(res, timeoutMs, null));
        const info = await Promise.race([this.exited, timer]);
        this.proc = null;
        this.stopping = false;
        if (!info) {
            proc.kill('SIGKILL');
            await this.exited;
            throw new TestFailure(`${this.name}: no exit within `
                + `${timeoutMs / 1000} s of SIGTERM\n${this.tail(15)}`);
        }
        this.checkSanitizer();
        if (info.code !== 0)
            throw new TestFailure(`${this.name}: exit status ${info.code}`
                + ` (signal ${info.signal}) after SIGTERM\n${this.tail(15)}`);
    }

    checkSanitizer() {
        const bad = this.lines.find((l) =>
            SANITIZER_MARKERS.some((m) => l.includes(m)));
        if (bad)
            throw new TestFailure(`${this.name}: sanitizer report: ${bad}\n`
                + this.tail(40));
    }

    async restart() {
        await this.stop();
        await this.start();
    }

    kill() {
        if (this.proc) {
            try {
                this.proc.kill('SIGKILL');
            } catch { /* already gone */ }
        }
    }

    tail(n = 30) {
        return this.lines.slice(-n).join('\n');
    }

    cleanup() {
        fs.rmSync(this.data, { recursive: true, force: true });
    }

    // One HTTP request with the admin key (or the given bearer); returns
    // the parsed JSON body. `expect` is the status wanted (default 2xx).
    async api(method, p, body, { key = ADMIN_KEY, expect } = {}) {
        const headers = { Authorization: `Bearer ${key}` };
        if (body !== undefined)
            headers['Content-Type'] = 'application/json';
        const res = await fetch(this.base + p, {
            method, headers,
            body: body === undefined ? undefined : JSON.stringify(body),
            signal: AbortSignal.timeout(WAIT),
        });
        const text = await res.text();
        const ok = expect === undefined ? res.status >= 200 && res.status < 300
            : res.status === expect;
        if (!ok)
            throw new TestFailure(`${method} ${p}: HTTP ${res.status} `
                + `(wanted ${expect ?? '2xx'}): ${text}`);
        try {
            return text ? JSON.parse(text) : null;
        } catch {
            return text;
        }
    }

    async tenant(tid, name, extra = {}) {
        return this.api('PUT', `/v1/tenants/${tid}`, { name, ...extra });
    }

    async agent(tid, aid, name, password) {
        return this.api('PUT', `/v1/tenants/${tid}/agents/${aid}`,
            { name, password });
    }

    async session(tid, sid) {
        return this.api('GET', `/v1/sessions/${encodeURIComponent(sid)}`
            + `?tenant=${encodeURIComponent(tid)}`);
    }

    // Every message of a session, following `more`.
    async messages(tid, sid) {
        const out = [];
        let after = 0;
        for (;;) {
            const r = await this.api('GET',
                `/v1/sessions/${encodeURIComponent(sid)}/messages?after=`
                + `${after}&limit=200&tenant=${encodeURIComponent(tid)}`);
            out.push(...r.messages);
            if (!r.more || r.messages.length === 0)
                return out;
            after = r.messages[r.messages.length - 1].seq;
        }
    }

    async sessions(tid, state) {
        const q = state ? `&state=${state}` : '';
        const r = await this.api('GET',
            `/v1/sessions?tenant=${encodeURIComponent(tid)}${q}`);
        return r.sessions;
    }
}

// ------------------------------------------------------------ browser ----

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu',
    '--disable-background-networking', '--disable-component-update',
    '--no-first-run', '--disable-sync', '--disable-quic'];

export async function launchBrowser() {
    const { chromium } = await import('playwright-core');
    return chromium.launch({
        executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS,
        timeout: 30000,
    });
}

// One person of a scenario: a browser context with one page at a time.
export class Person {
    constructor(env, name, context) {
        this.env = env;
        this.name = name;
        this.context = context;
        this.page = null;
        this.console = [];       // console errors/warnings, for failures
        this.pageErrors = [];    // uncaught exceptions: each fails the test
    }

    async newPage() {
        const page = await this.context.newPage();
        page.setDefaultTimeout(WAIT);
        page.on('console', (m) => {
            if (m.type() === 'error' || m.type() === 'warning') {
                const at = m.location() && m.location().url;
                this.console.push(`[${m.type()}] ${m.text()}`
                    + (at ? ` (${at})` : ''));
            }
        });
        page.on('pageerror', (e) => {
            this.pageErrors.push(String(e && e.stack ? e.stack : e));
        });
        this.page = page;
        return page;
    }

    id(testid) {
        return this.page.getByTestId(testid);
    }

    // ---- the visitor's widget ----

    // Opens the demo page for the tenant and the widget's panel.
    async openWidget(tenant) {
        const page = this.page || await this.newPage();
        await page.goto(`${this.env.server.base}/?tenant=`
            + encodeURIComponent(tenant), { waitUntil: 'load' });
        const launcher = this.id('cc-launcher');
        await launcher.waitFor({ state: 'visible', timeout: WAIT });
        if (!(await this.id('cc-panel').isVisible()))
            await launcher.click();
        await this.id('cc-panel').waitFor({ state: 'visible', timeout: WAIT });
        await this.id('cc-input').waitFor({ state: 'visible', timeout: WAIT });
        return page;
    }

    async visitorSend(text) {
        await this.id('cc-input').fill(text);
        await this.id('cc-send').click();
        // the message shows up at once (state "sending" or later)
        await waitCount(this.msgByText('cc-msg', text), 1,
            `${this.name}: own message "${text}" shown`);
    }

    // ---- the agent console ----

    async loginAgent(tenant, agent, password) {
        const page = this.page || await this.newPage();
        await page.goto(`${this.env.server.base}/agent`,
            { waitUntil: 'load' });
        await this.id('login-tenant').fill(tenant);
        await this.id('login-agent').fill(agent);
        await this.id('login-password').fill(password);
        await this.id('login-submit').click();
        this.env.logins++;
        check(this.env.server.loginsLifted || this.env.logins <= 10,
            'more than 10 agent logins on a server without --logins-per-min');
        await this.id('queue-list').waitFor({ state: 'attached',
            timeout: WAIT });
        await this.id('agent-status').waitFor({ state: 'visible',
            timeout: WAIT });
        return page;
    }

    queueItem(session) {
        return this.page.locator(
            `[data-testid="queue-item"][data-session="${session}"]`);
    }

    convTab(session) {
        return this.page.locator(
            `[data-testid="conv-tab"][data-session="${session}"]`);
    }

    conv(session) {
        return this.page.locator(
            `[data-testid="conv"][data-session="${session}"]`);
    }

    // Waits for the (only) queue item whose preview has `preview`; returns
    // its session id.
    async queuedSession(preview) {
        const item = this.id('queue-item').filter({
            has: this.id('queue-preview').filter({ hasText: preview }),
        });
        await waitCount(item, 1,
            `${this.name}: queue-item with preview "${preview}"`);
        const s = await item.getAttribute('data-session');
        check(/^S_[0-9a-f]{20}$/.test(s || ''),
            `${this.name}: queue-item data-session is a session id: ${s}`);
        return s;
    }

    async accept(session) {
        await this.queueItem(session).getByTestId('queue-accept').click();
        await this.conv(session).waitFor({ state: 'visible', timeout: WAIT });
    }

    async agentSend(session, text) {
        const c = this.conv(session);
        await c.getByTestId('conv-input').fill(text);
        await c.getByTestId('conv-send').click();
        await waitCount(this.msgByText('conv-msg', text, c), 1,
            `${this.name}: own message "${text}" shown`);
    }

    // ---- the admin page ----

    async loginAdmin() {
        const page = this.page || await this.newPage();
        await page.goto(`${this.env.server.base}/admin`,
            { waitUntil: 'load' });
        await this.id('admin-key').fill(ADMIN_KEY);
        await this.id('admin-login').click();
        await this.id('tenant-list').waitFor({ state: 'visible',
            timeout: WAIT });
        return page;
    }

    // ---- messages as shown ----

    msgByText(testid, text, scope) {
        return (scope || this.page).getByTestId(testid)
            .filter({ hasText: text });
    }

    // [{seq, from, text, state, cid, read}] (attribute values, strings or
    // null) of every `testid` element under scope, in DOM order.
    async shown(testid, scope) {
        const loc = (scope || this.page).getByTestId(testid);
        return loc.evaluateAll((els) => els.map((e) => ({
            seq: e.getAttribute('data-seq'),
            from: e.getAttribute('data-from'),
            state: e.getAttribute('data-state'),
            read: e.getAttribute('data-read'),
            cid: e.getAttribute('data-cid'),
            text: e.textContent,
        })));
    }

    async screenshot(file) {
        if (this.page && !this.page.isClosed())
            await this.page.screenshot({ path: file, timeout: WAIT,
                fullPage: true });
    }
}

// ----------------------------------------------------------- waits ----

// Polls fn() until it returns a truthy value (returned) or the timeout
// passes (TestFailure with `what` and the last value seen).
export async function waitFor(fn, what, timeout = WAIT) {
    const end = Date.now() + Math.min(timeout, WAIT);
    let last;
    let lastErr;
    for (;;) {
        try {
            last = await fn();
            if (last)
                return last;
        } catch (e) {
            lastErr = e;
        }
        if (Date.now() >= end)
            break;
        await new Promise((r) => setTimeout(r, POLL_MS));
    }
    throw new TestFailure(`timed out after ${Math.min(timeout, WAIT)} ms `
        + `waiting for ${what}`
        + (lastErr ? ` (last error: ${lastErr.message.split('\n')[0]})` : '')
        + (last !== undefined ? ` (last seen: ${JSON.stringify(last)})` : ''));
}

// Like waitFor, but the value is described on failure: fn returns
// {ok, seen}.
async function waitSeen(fn, what, timeout) {
    let seen;
    try {
        await waitFor(async () => {
            const r = await fn();
            seen = r.seen;
            return r.ok;
        }, what, timeout);
    } catch (e) {
        if (e instanceof TestFailure)
            throw new TestFailure(`${e.message.replace(/ \(last seen.*$/, '')}`
                + `; saw ${JSON.stringify(seen)}`);
        throw e;
    }
    return seen;
}

export async function waitCount(loc, n, what, timeout) {
    return waitSeen(async () => {
        const c = await loc.count();
        return { ok: c === n, seen: c };
    }, `${what} (count ${n})`, timeout);
}

// Waits until the locator (its first element) has the attribute value;
// `want` may be a string or a predicate.
export async function waitAttr(loc, attr, want, what, timeout) {
    const ok = typeof want === 'function' ? want : (v) => v === want;
    return waitSeen(async () => {
        const n = await loc.count();
        if (n === 0)
            return { ok: false, seen: '<no element>' };
        const v = await loc.first().getAttribute(attr, { timeout: 1000 });
        return { ok: ok(v), seen: v };
    }, `${what} [${attr}=${typeof want === 'function' ? 'ok' : want}]`,
    timeout);
}

export async function waitText(loc, want, what, timeout) {
    const ok = typeof want === 'function' ? want
        : want instanceof RegExp ? (v) => want.test(v)
            : (v) => v.trim() === want;
    return waitSeen(async () => {
        const n = await loc.count();
        if (n === 0)
            return { ok: false, seen: '<no element>' };
        const v = (await loc.first().textContent({ timeout: 1000 })) || '';
        return { ok: ok(v), seen: v };
    }, `${what} (text ${want})`, timeout);
}

export async function waitVisible(loc, what, timeout = WAIT) {
    try {
        await loc.first().waitFor({ state: 'visible', timeout });
    } catch (e) {
        throw new TestFailure(`${what}: not visible within ${timeout} ms`);
    }
}

export async function waitHidden(loc, what, timeout = WAIT) {
    try {
        await loc.first().waitFor({ state: 'hidden', timeout });
    } catch (e) {
        throw new TestFailure(`${what}: still visible after ${timeout} ms`);
    }
}

// ----------------------------------------------------- scenario env ----

// What a scenario gets: its server, its people, and where to put files.
export class Env {
    constructor({ name, browser, binary, web, out, tmp }) {
        this.name = name;
        this.browser = browser;
        this.out = out;
        this.server = new Server({ binary, web, name, tmp });
        this.people = [];
        this.logins = 0;
        this.softFailures = [];
        this.notes = [];
    }

    // A line printed under the scenario's result (what happened, e.g.
    // which way a race went).
    note(line) {
        this.notes.push(line);
    }

    // A check the rest of the scenario does not depend on: its failure is
    // recorded and the scenario goes on (so one run reports every broken
    // hook), then fails at its end with all of them.
    async soft(promise) {
        try {
            await promise;
        } catch (e) {
            if (!(e instanceof TestFailure))
                throw e;
            this.softFailures.push(e.message);
        }
    }

    softCheck(cond, what) {
        if (!cond)
            this.softFailures.push(what);
    }

    async person(name, { locale = 'en-US', viewport, isMobile } = {}) {
        const context = await this.browser.newContext({
            locale,
            viewport: viewport || { width: 1280, height: 800 },
            isMobile: !!isMobile,
            hasTouch: !!isMobile,
            deviceScaleFactor: 1,
        });
        context.setDefaultTimeout(WAIT);
        const p = new Person(this, name, context);
        this.people.push(p);
        return p;
    }

    async screenshots(suffix = '') {
        for (const p of this.people) {
            try {
                await p.screenshot(path.join(this.out,
                    `${this.name}-${p.name}${suffix}.png`));
            } catch { /* a page that is gone has nothing to show */ }
        }
    }

    pageErrors() {
        const out = [];
        for (const p of this.people)
            for (const e of p.pageErrors)
                out.push(`${p.name}: ${e}`);
        return out;
    }

    consoleLog() {
        const out = [];
        for (const p of this.people) {
            for (const e of p.console)
                out.push(`${p.name}: ${e}`);
            for (const e of p.pageErrors)
                out.push(`${p.name}: [pageerror] ${e}`);
        }
        return out.join('\n');
    }

    async closePeople() {
        for (const p of this.people) {
            try {
                await p.context.close();
            } catch { /* already closed */ }
        }
    }
}

export function tmpRoot() {
    const base = fs.existsSync('/tmp') ? '/tmp' : os.tmpdir();
    return fs.mkdtempSync(path.join(base, 'chatcore-webtest-'));
}

// ------------------------------------------------------ common flows ----

export const PASSWORD = 'secret-pw-1';

// A tenant with the given agents ([[id, name]]), each logged in to the
// console in a context of their own, and a visitor with the widget open.
// With queue: the visitor's first message queues a session, which the
// first agent accepts when accept is true. Returns the people, the
// session id and the first message's text.
export async function startChat(env, {
    tenant = 't1', agents = [['a1', 'Alice']], accept = true,
    visitorLocale = 'en-US', visitorViewport, existingTenant = false,
    existingAgents = false,
} = {}) {
    const s = env.server;
    if (!existingTenant)
        await s.tenant(tenant, 'Acme');
    const people = [];
    for (const [id, name] of agents) {
        if (!existingAgents)
            await s.agent(tenant, id, name, PASSWORD);
        const p = await env.person(`agent-${id}`);
        people.push(p);
    }
    await Promise.all(people.map((p, i) =>
        p.loginAgent(tenant, agents[i][0], PASSWORD)));
    const visitor = await env.person('visitor', {
        locale: visitorLocale, viewport: visitorViewport,
    });
    await visitor.openWidget(tenant);
    const first = `Hello, I need help with order ${rid()}`;
    await visitor.visitorSend(first);
    await waitAttr(visitor.id('cc-status'), 'data-state', 'queued',
        'visitor cc-status after the first message');
    const sids = await Promise.all(people.map((p) => p.queuedSession(first)));
    for (const x of sids)
        eq(x, sids[0], 'the session every agent sees queued');
    const sid = sids[0];
    if (accept) {
        await people[0].accept(sid);
        await waitAttr(visitor.id('cc-status'), 'data-state', 'active',
            'visitor cc-status after the accept');
    }
    return { tenant, agents: people, visitor, sid, first };
}

// The messages with a seq that `who` shows in `testid` elements (inside
// `scope`), as [{seq (number), from, text, ...}].
export async function seqMessages(who, testid, scope) {
    const all = await who.shown(testid, scope);
    return all.filter((m) => m.seq !== null && m.seq !== '')
        .map((m) => ({ ...m, seq: Number(m.seq) }));
}

// Waits until `who` shows exactly `want` ([{from, text}], seq 1..n in
// this order, each once) in its `testid` elements: every visitor or agent
// message element must carry its seq (a pending copy left next to the
// confirmed one fails too); local system lines are not counted.
export async function waitTranscript(who, testid, want, scope, what) {
    const expect = want.map((w, i) => ({ seq: i + 1, from: w.from,
        text: w.text }));
    let last = null;
    try {
        await waitFor(async () => {
            const got = (await who.shown(testid, scope))
                .filter((m) => m.from !== 'system');
            last = got.map((m) => ({ seq: m.seq, from: m.from,
                text: m.text }));
            if (got.length !== expect.length)
                return false;
            return got.every((m, i) => m.seq === String(expect[i].seq)
                && m.from === expect[i].from
                && m.text.includes(expect[i].text));
        }, what);
    } catch (e) {
        throw new TestFailure(`${what}: expected (seq, from, text) `
            + `${JSON.stringify(expect)}\n  got ${JSON.stringify(last)}`);
    }
}

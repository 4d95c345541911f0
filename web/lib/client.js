// web/lib/client.js - the chatcore protocol client shared by the visitor
// widget and the agent console (contract: docs/web.md, wire: PROTOCOL.md).
//
//     const c = new ChatClient({ base, token, resume });
//     c.addEventListener('msg', (e) => show(e.detail));
//     c.connect();
//
// Options:
//   base       origin of the server (default: this page's origin).
//   token      async ({renew}) => jwt. renew=true after a 4001, a failed
//              handshake, or when the current token is 5 min from `exp`.
//   resume     () => ({session, last_seq}) | null: query of each connect.
//   WebSocket  a WebSocket class (default: the global one; for tests).
//
// Methods and fields:
//   connect()                   start (once); close() stops for good
//   send(session, kind, body)   → cid ("c_" + 16 hex), kept until settled
//   request(frame)              → ref; writes {...frame, ref} when online
//   lastSeq(session), setLastSeq(session, n)  (seed after `accepted` etc.)
//   state, user ("role:id" from hello), hello (the last hello frame)
//
// Events (all CustomEvents; the payload is `detail`):
//   state       the new state: connecting | online | reconnecting | stopped
//               (online is set just before the hello's `frame` event)
//   frame       every frame the server sends, duplicates included; fired
//               before the msg/sent/send-error event the frame causes
//   msg         a new message (seq above lastSeq), once per seq
//   sending     {cid, session, kind, body}: send() accepted it
//   sent        the `sent` reply for a pending send, exactly once per cid
//   send-error  the `error` frame refusing a send (ref = its cid)
//
// Delivery rules (why they look like this):
// - lastSeq(session) is the highest seq seen. A msg at or below it is a
//   duplicate (server retransmit or replay): acked again, not re-emitted.
// - Our own message's seq is learnt from `sent`, but it is only folded into
//   lastSeq when every lower seq has been seen: jumping over a peer message
//   that is still in flight would make it look like a duplicate and lose it.
// - The server replays our own messages too on resume. A replayed msg from
//   ourselves whose cid is still pending proves that send is stored: it
//   settles the send (a `sent` event built from the msg), and the later
//   `sent` reply to the re-send (same cid, so the same seq) is ignored.
//   Own messages that are not pending (another tab, an older page) come
//   as ordinary `msg` events; match them by cid.
// - Acks are cumulative and batched: at most one per session per 50 ms.
// - Sends stay pending until settled and are written again, with the same
//   cid, after every reconnect; the server's idempotence makes that safe.
//   A `rate_limited` refusal pauses all sends for retry_after_ms; then the
//   unwritten ones go out again in order, one at a time (each after the
//   previous one's `sent`) until none is left pending, because ten
//   refusals within 10 s would close the connection with 4008.
// - request() writes only while online; anything else is dropped, since a
//   stale typing/read/accept replayed later would be wrong. Watch `state`.
// - Close codes 4008 and 1008 for a deleted agent or tenant stop for good;
//   1008 for a slow consumer is retried (the messages stay stored).

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;
const ACK_BATCH_MS = 50;
const REFRESH_BEFORE_S = 300;
const MAX_TIMER_MS = 0x7fffffff;

function jitter(ms) {
    return Math.round(ms * (0.8 + 0.4 * Math.random()));
}

function randomHex(bytes) {
    const a = new Uint8Array(bytes);
    crypto.getRandomValues(a);
    return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

// The `exp` claim of a JWT, in Unix seconds, or 0 when unreadable. The
// client only schedules with it; the server is the one that checks.
function tokenExp(jwt) {
    try {
        const p = String(jwt).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
        const exp = JSON.parse(atob(p + '='.repeat((4 - (p.length % 4)) % 4))).exp;
        return typeof exp === 'number' ? exp : 0;
    } catch {
        return 0;
    }
}

export class ChatClient extends EventTarget {
    constructor(opts = {}) {
        super();
        this.base = opts.base || (typeof location !== 'undefined' ? location.origin : '');
        this._tokenFn = opts.token;
        this._resumeFn = opts.resume || null;
        this._WS = opts.WebSocket || globalThis.WebSocket;
        this.state = 'stopped';
        this.hello = null;      // the last hello frame
        this.user = null;       // "visitor:v_…" / "agent:a_…" once known
        this._started = false;
        this._closed = false;
        this._ws = null;
        this._gen = 0;          // bumps per socket; stale callbacks check it
        this._attempt = 0;
        this._renew = false;
        this._token = null;
        this._hb = 20;
        this._lastRx = 0;
        this._timers = {};
        this._seq = new Map();      // session -> highest seq seen
        this._own = new Map();      // session -> Set of own seqs not yet folded
        this._ackDirty = new Set();
        this._pending = new Map();  // cid -> {session, kind, body, written}
        this._holdUntil = 0;
        this._throttled = false;
        this._refreshRef = null;
        this._refCount = 0;
        this._onOnline = () => {
            if (this.state === 'reconnecting')
                this._schedule(0);
        };
    }

    connect() {
        if (this._started || this._closed)
            return;
        this._started = true;
        if (typeof window !== 'undefined')
            window.addEventListener('online', this._onOnline);
        this._open();
    }

    close() {
        if (this._closed)
            return;
        this._closed = true;
        if (typeof window !== 'undefined')
            window.removeEventListener('online', this._onOnline);
        for (const k of Object.keys(this._timers))
            this._clear(k);
        this._dropSocket(1000);
        this._setState('stopped');
    }

    lastSeq(session) {
        return this._seq.get(session) || 0;
    }

    setLastSeq(session, n) {
        if (Number.isSafeInteger(n) && n > this.lastSeq(session)) {
            this._seq.set(session, n);
            this._fold(session);
        }
    }

    send(session, kind, body) {
        const cid = 'c_' + randomHex(8);
        this._pending.set(cid, { session, kind, body, written: false });
        this._emit('sending', { cid, session, kind, body });
        this._flushSends();
        return cid;
    }

    request(frame) {
        const ref = 'r_' + (++this._refCount).toString(36) + '_' + randomHex(3);
        this._write(Object.assign({}, frame, { ref }));
        return ref;
    }

    // ---- connection ------------------------------------------------------

    async _open() {
        const gen = ++this._gen;
        this._setState('connecting');
        let token;
        try {
            const renew = this._renew;
            token = await this._tokenFn({ renew });
            if (!token)
                throw new Error('no token');
        } catch {
            if (gen === this._gen && !this._closed)
                this._retry();
            return;
        }
        if (gen !== this._gen || this._closed)
            return;
        this._token = token;
        const u = new URL('/v1/ws', this.base);
        u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
        u.searchParams.set('access_token', token);
        const r = this._resumeFn ? this._resumeFn() : null;
        if (r && r.session) {
            u.searchParams.set('session', r.session);
            if (Number.isSafeInteger(r.last_seq) && r.last_seq >= 0)
                u.searchParams.set('last_seq', String(r.last_seq));
        }
        let ws;
        try {
            ws = new this._WS(u.toString(), 'chatcore.v1');
        } catch {
            this._retry();
            return;
        }
        this._ws = ws;
        this._helloSeen = false;
        ws.onmessage = (e) => {
            if (gen === this._gen)
                this._onText(e.data);
        };
        ws.onclose = (e) => {
            if (gen === this._gen)
                this._onClose(e.code, e.reason || '');
        };
        // an error is always followed by close; nothing to do here
        ws.onerror = () => {};
    }

    _onClose(code, reason) {
        this._ws = null;
        this._stopTimers();
        if (this._closed)
            return;
        if (code === 4008 || (code === 1008 && /delet/i.test(reason))) {
            this._closed = true;
            this._setState('stopped');
            return;
        }
        // a refused handshake looks like any failure to a browser (1006
        // with no hello), so it asks for a new token just like 4001 does
        if (code === 4001 || !this._helloSeen)
            this._renew = true;
        this._retry();
    }

    _retry() {
        const d = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this._attempt);
        this._attempt = Math.min(this._attempt + 1, 16);
        this._setState('reconnecting');
        this._schedule(jitter(d));
    }

    _schedule(ms) {
        this._clear('reconnect');
        this._timers.reconnect = setTimeout(() => {
            delete this._timers.reconnect;
            if (!this._closed)
                this._open();
        }, ms);
    }

    // Drop the socket without waiting for its close handshake: a dead peer
    // may never answer, and the old generation's events are ignored.
    _dropSocket(code) {
        const ws = this._ws;
        this._ws = null;
        this._gen++;
        this._stopTimers();
        if (ws) {
            ws.onmessage = ws.onclose = ws.onerror = null;
            try {
                ws.close(code);
            } catch { /* already closing */ }
        }
    }

    _lose() {
        this._dropSocket(1000);
        if (!this._closed)
            this._retry();
    }

    _stopTimers() {
        for (const k of ['ping', 'watchdog', 'refresh', 'ack', 'hold'])
            this._clear(k);
    }

    _clear(name) {
        if (this._timers[name] !== undefined) {
            clearTimeout(this._timers[name]);
            clearInterval(this._timers[name]);
            delete this._timers[name];
        }
    }

    _setState(s) {
        if (this.state === s)
            return;
        this.state = s;
        this._emit('state', s);
    }

    _emit(type, detail) {
        this.dispatchEvent(new CustomEvent(type, { detail }));
    }

    _write(obj) {
        if (this.state !== 'online' || !this._ws || this._ws.readyState !== 1)
            return false;
        this._ws.send(JSON.stringify(obj));
        return true;
    }

    // ---- incoming ----------------------------------------------------------

    _onText(text) {
        this._lastRx = Date.now();
        let f;
        try {
            f = JSON.parse(text);
        } catch {
            return;
        }
        if (!f || typeof f !== 'object' || typeof f.type !== 'string')
            return;
        if (f.type === 'hello')
            this._onHello(f);
        this._emit('frame', f);
        switch (f.type) {
        case 'hello':
            this._flushSends();
            break;
        case 'msg':
            this._onMsg(f);
            break;
        case 'sent':
            this._onSent(f);
            break;
        case 'error':
            this._onError(f);
            break;
        case 'refreshed':
            this._renew = false;
            this._scheduleRefresh(typeof f.expires === 'number' ? f.expires : 0);
            break;
        case 'reconnect': {
            const after = Number.isFinite(f.after_ms) && f.after_ms > 0 ? f.after_ms : 0;
            this._dropSocket(1000);
            this._setState('reconnecting');
            this._schedule(after + Math.round(Math.random() * Math.max(100, after * 0.2)));
            break;
        }
        default:
            break;
        }
    }

    _onHello(f) {
        this._helloSeen = true;
        this.hello = f;
        this.user = f.role && f.user ? f.role + ':' + f.user : null;
        this._attempt = 0;
        this._renew = false;
        this._hb = Number.isFinite(f.heartbeat_s) && f.heartbeat_s > 0 ? f.heartbeat_s : 20;
        this._clear('ping');
        this._timers.ping = setInterval(() => this._write({ type: 'ping' }),
            this._hb * 1000);
        this._armWatchdog(this._hb * 2000);
        this._scheduleRefresh(tokenExp(this._token));
        // a new socket: every pending send must be written on it again
        // (before listeners of the state change may send more)
        for (const p of this._pending.values())
            p.written = false;
        this._setState('online');
        // acks batched on the old socket may have been lost with it
        if (this._ackDirty.size)
            this._scheduleAck();
    }

    _armWatchdog(ms) {
        this._clear('watchdog');
        this._timers.watchdog = setTimeout(() => {
            delete this._timers.watchdog;
            const left = this._lastRx + this._hb * 2000 - Date.now();
            if (left > 0)
                this._armWatchdog(left);
            else
                this._lose();
        }, ms);
    }

    _scheduleRefresh(exp) {
        this._clear('refresh');
        if (!exp)
            return;
        const left = exp * 1000 - Date.now();
        // short-lived tokens refresh at half-life rather than in a loop
        const at = Math.max(left - REFRESH_BEFORE_S * 1000, left / 2, 1000);
        this._timers.refresh = setTimeout(() => this._refresh(),
            Math.min(at, MAX_TIMER_MS));
    }

    async _refresh() {
        delete this._timers.refresh;
        const gen = this._gen;
        let token;
        try {
            token = await this._tokenFn({ renew: true });
        } catch {
            token = null;
        }
        if (gen !== this._gen || this.state !== 'online')
            return;
        if (!token) {
            this._timers.refresh = setTimeout(() => this._refresh(), 60000);
            return;
        }
        this._token = token;
        this._refreshRef = this.request({ type: 'refresh', token });
    }

    _onMsg(f) {
        const s = f.session;
        if (typeof s !== 'string' || !Number.isSafeInteger(f.seq))
            return;
        const dup = f.seq <= this.lastSeq(s);
        if (!dup) {
            this._seq.set(s, f.seq);
            this._fold(s);
        }
        this._ackDirty.add(s);
        this._scheduleAck();
        if (dup)
            return;
        if (f.from === this.user && f.cid && this._pending.has(f.cid)) {
            this._settle(f.cid);
            this._emit('sent', { type: 'sent', cid: f.cid, session: s,
                seq: f.seq, ts: f.ts });
            return;
        }
        this._emit('msg', f);
    }

    _onSent(f) {
        const p = this._pending.get(f.cid);
        if (!p)
            return;
        this._settle(f.cid);
        const s = f.session;
        if (Number.isSafeInteger(f.seq) && f.seq > this.lastSeq(s)) {
            if (!this._own.has(s))
                this._own.set(s, new Set());
            this._own.get(s).add(f.seq);
            this._fold(s);
        }
        this._emit('sent', f);
    }

    // Fold own seqs that are now contiguous with lastSeq into it.
    _fold(s) {
        const own = this._own.get(s);
        if (!own)
            return;
        let n = this.lastSeq(s);
        while (own.has(n + 1))
            n++;
        this._seq.set(s, n);
        for (const q of own)
            if (q <= n)
                own.delete(q);
        if (own.size === 0)
            this._own.delete(s);
    }

    _onError(f) {
        if (f.ref && f.ref === this._refreshRef) {
            // keep the old token; try a fresh one in a minute (4001 at
            // exp would also get us reconnected with renew)
            this._refreshRef = null;
            this._clear('refresh');
            this._timers.refresh = setTimeout(() => this._refresh(), 60000);
            return;
        }
        const p = f.ref ? this._pending.get(f.ref) : null;
        if (!p)
            return;
        if (f.code === 'rate_limited') {
            p.written = false;
            this._throttled = true;
            const wait = Number.isFinite(f.retry_after_ms) ? f.retry_after_ms : 1000;
            this._holdUntil = Math.max(this._holdUntil, Date.now() + wait);
            this._clear('hold');
            this._timers.hold = setTimeout(() => {
                delete this._timers.hold;
                this._flushSends();
            }, this._holdUntil - Date.now());
            return;
        }
        this._settle(f.ref);
        this._emit('send-error', f);
    }

    _settle(cid) {
        this._pending.delete(cid);
        if (this._pending.size === 0)
            this._throttled = false;
        else if (this._throttled)
            this._flushSends();
    }

    _flushSends() {
        if (this.state !== 'online' || Date.now() < this._holdUntil)
            return;
        for (const [cid, p] of this._pending) {
            if (p.written) {
                if (this._throttled)
                    return;
                continue;
            }
            if (!this._write({ type: 'send', session: p.session, cid,
                kind: p.kind, body: p.body }))
                return;
            p.written = true;
            if (this._throttled)
                return;
        }
    }

    _scheduleAck() {
        if (this._timers.ack !== undefined)
            return;
        this._timers.ack = setTimeout(() => {
            delete this._timers.ack;
            for (const s of this._ackDirty)
                this._write({ type: 'ack', session: s, seq: this.lastSeq(s) });
            this._ackDirty.clear();
        }, ACK_BATCH_MS);
    }
}

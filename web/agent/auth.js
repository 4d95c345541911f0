// web/agent/auth.js - the agent's sign-in: POST /v1/auth/agent, the token
// kept in sessionStorage, and the token({renew}) function ChatClient calls.
//
// sessionStorage (not localStorage) so that a reload keeps the agent signed
// in within the tab while closing the tab signs out, and two tabs can hold
// two different agents (handy for a supervisor, and for testing).
//
// An agent token cannot be renewed without the password (PROTOCOL.md §7
// has no refresh grant for agents). So when the client asks for a renewal
// and the token is close to its end, we ask the agent to sign in again and
// hold the client's request until they have: the open connection stays up
// until `exp`, and a successful sign-in as the same agent hands the new
// token to the client (a `refresh` frame), so no conversation is lost.

const STORE_KEY = 'chatcore.agent.v1';
// The client asks 5 min before `exp`; anything inside this margin cannot
// be served without the password.
const NEAR_EXPIRY_S = 600;

export class AgentAuth {
    // onNeedLogin(why) is called when the password is needed again; why is
    // 'expired' | 'refused'.
    constructor({ base, onNeedLogin }) {
        this.base = base;
        this.onNeedLogin = onNeedLogin;
        this.cur = load();          // {tenant, agent, token, expires}
        this.waiters = [];          // token() calls waiting for a sign-in
    }

    get signedIn() {
        return !!this.cur && this.cur.expires - nowS() > 60;
    }

    // POST /v1/auth/agent. Resolves {ok:true} or {ok:false, kind, status,
    // message} with kind 'auth' (401), 'limit' (429), 'network', 'other'.
    async login(tenant, agent, password) {
        let res;
        try {
            res = await fetch(new URL('/v1/auth/agent', this.base), {
                method: 'POST',
                headers: { 'Content-Type': 'application/json' },
                body: JSON.stringify({ tenant, agent, password }),
                cache: 'no-store',
            });
        } catch {
            return { ok: false, kind: 'network' };
        }
        let body = null;
        try {
            body = await res.json();
        } catch { /* not JSON: reported by status below */ }
        if (res.status === 401)
            return { ok: false, kind: 'auth', status: 401 };
        if (res.status === 429)
            return { ok: false, kind: 'limit', status: 429 };
        if (!res.ok || !body || typeof body.token !== 'string') {
            return { ok: false, kind: 'other', status: res.status,
                message: (body && body.message) || res.statusText || '' };
        }
        const expires = Number.isFinite(body.expires) ? body.expires : nowS() + 3600;
        const same = this.cur && this.cur.tenant === tenant && this.cur.agent === agent;
        this.cur = { tenant, agent, token: body.token, expires };
        save(this.cur);
        // hand the new token to whoever was waiting, but only to the same
        // user: another agent's token on this client would be refused
        const w = this.waiters;
        this.waiters = [];
        for (const { resolve, reject } of w) {
            if (same)
                resolve(body.token);
            else
                reject(new Error('another agent signed in'));
        }
        return { ok: true, same };
    }

    logout() {
        this.cur = null;
        save(null);
        const w = this.waiters;
        this.waiters = [];
        for (const { reject } of w)
            reject(new Error('signed out'));
    }

    // Authorization header value for HTTP calls.
    bearer() {
        return this.cur ? 'Bearer ' + this.cur.token : '';
    }

    // ChatClient's token option.
    async token({ renew } = {}) {
        const a = this.cur;
        if (!a)
            throw new Error('signed out');
        const left = a.expires - nowS();
        if (left <= NEAR_EXPIRY_S && (renew || left <= 30))
            return this.waitForLogin('expired');
        if (!renew)
            return a.token;
        // A renewal asked of a token that should still be good means the
        // handshake failed: a network error or server restart (keep the
        // token), or a refused token (agent deleted, secret rotated away).
        // The browser cannot tell them apart; an HTTP call can.
        const verdict = await this.probe(a.token);
        if (verdict === 'refused' && this.cur === a)
            return this.waitForLogin('refused');
        return this.cur.token;
    }

    waitForLogin(why) {
        const p = new Promise((resolve, reject) => {
            this.waiters.push({ resolve, reject });
        });
        this.onNeedLogin(why);
        return p;
    }

    // 'ok' | 'refused' | 'unknown' (network error or anything else).
    async probe(token) {
        try {
            const r = await fetch(new URL('/v1/sessions?limit=1', this.base), {
                headers: { Authorization: 'Bearer ' + token },
                cache: 'no-store',
            });
            if (r.status === 401)
                return 'refused';
            return r.ok ? 'ok' : 'unknown';
        } catch {
            return 'unknown';
        }
    }
}

function nowS() {
    return Math.floor(Date.now() / 1000);
}

function load() {
    try {
        const v = JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null');
        if (v && typeof v.token === 'string' && typeof v.tenant === 'string' &&
            typeof v.agent === 'string' && Number.isFinite(v.expires))
            return v;
    } catch { /* storage blocked or garbage: start signed out */ }
    return null;
}

function save(v) {
    try {
        if (v)
            sessionStorage.setItem(STORE_KEY, JSON.stringify(v));
        else
            sessionStorage.removeItem(STORE_KEY);
    } catch { /* kept in memory only */ }
}

// web/agent/app.js - the agent console at /agent: sign-in, availability,
// the live waiting queue, conversations as tabs, transfer and close,
// notifications and keyboard shortcuts.
//
// It speaks only the wire contract (docs/protocol.md) through ChatClient
// (/lib/client.js) and two HTTP calls: POST /v1/auth/agent (auth.js) and
// GET /v1/tenants/{tid}/agents (protocol rule 66) for transfer targets.
// Modules: strings.js (texts), auth.js (token), conv.js (one
// conversation), notify.js (title badge and beep); this file ties them to
// the page. Replies to our own frames carry no ref (rule 39), so requests
// whose answer we must recognise are matched by session (accept) or kept
// in order per session (sync); `error` frames do echo the ref.

import { ChatClient } from '/lib/client.js';
import { t, translate, toggleLang, onLangChange, bindDocumentLang, getLang } from '/lib/i18n.js';
import './strings.js';
import { AgentAuth } from './auth.js';
import { Conversation, errText } from './conv.js';
import { Notifier } from './notify.js';

const $ = (id) => document.getElementById(id);
const LAST_KEY = 'chatcore.agent.last';     // tenant and agent ids typed last
// The server resets an agent to online when its first connection attaches,
// so a reload would silently make an "away" agent available again; the
// choice is kept for the tab, like the sign-in.
const STATUS_KEY = 'chatcore.agent.status';
const NOTICE_MS = 20000;
const TYPING_IDLE_MS = 2500;
const VISITOR_TYPING_MAX_MS = 30000;        // a lost "off" must not stick
const HISTORY_PAGE = 50;

const base = location.origin;
const wide = window.matchMedia('(min-width: 760px)');
const notifier = new Notifier();
const auth = new AgentAuth({ base, onNeedLogin: (why) => needLogin(why) });

let client = null;
let me = '';                    // agent id
let tenant = '';
let agents = new Map();         // id -> name, from rule 66
let agentsMode = 'unknown';     // 'list' | 'fallback' | 'unknown'
let queue = [];                 // waiting items, oldest first
const queueEls = new Map();     // session -> li
const convs = new Map();        // session -> Conversation
let shown = null;               // the Conversation in the pane
let view = 'queue';             // phone layout: which column is shown
const pendingAccept = new Map();    // ref -> session
const requests = new Map();         // ref -> {kind, session}
let newQueue = 0;               // queue arrivals not yet seen
let userStatus = null;          // availability picked on this page
let helloSeen = false;
let typingOn = false;
let typingTimer = 0;
let noticeTimer = 0;
let tick = 0;

// ---- language ----------------------------------------------------------

function applyLang() {
    translate(document);
    // the toggle shows the other language's name, in that language
    $('lang-toggle').lang = getLang() === 'zh' ? 'en' : 'zh-CN';
    notifier.setBase(t('title'));
    renderSound();
    renderConn();
    renderMe();
    for (const c of convs.values())
        c.relabel();
    for (const li of queueEls.values())
        relabelQueueItem(li);
    renderQueueWaits();
    renderPane();
    if (!$('notice-row').hidden && $('notice').dataset.key)
        $('notice-text').textContent = noticeText($('notice').dataset.key,
            JSON.parse($('notice').dataset.vars || '{}'));
    if (!$('login-why').hidden && $('login-why').dataset.key)
        $('login-why').textContent = t($('login-why').dataset.key);
    if (!$('login-error').hidden && $('login-error').dataset.key)
        $('login-error').textContent = t($('login-error').dataset.key,
            JSON.parse($('login-error').dataset.vars || '{}'));
}

// ---- sign-in -----------------------------------------------------------

function readLast() {
    try {
        return JSON.parse(localStorage.getItem(LAST_KEY) || 'null') || {};
    } catch {
        return {};
    }
}

function showLogin(why) {
    document.body.dataset.view = 'login';
    $('console-view').hidden = true;
    $('login-view').hidden = false;
    for (const id of ['status-wrap', 'sound-toggle', 'logout', 'help-button', 'me', 'conn'])
        $(id).hidden = true;
    $('help-line').hidden = true;
    const w = $('login-why');
    if (why) {
        w.dataset.key = 'login.why.' + why;
        w.textContent = t(w.dataset.key);
        w.hidden = false;
    } else {
        w.hidden = true;
        delete w.dataset.key;
    }
    const last = auth.cur || readLast();
    if (last.tenant && !$('login-tenant').value)
        $('login-tenant').value = last.tenant;
    if (last.agent && !$('login-agent').value)
        $('login-agent').value = last.agent;
    $('login-password').value = '';
    const first = !$('login-tenant').value ? 'login-tenant'
        : !$('login-agent').value ? 'login-agent' : 'login-password';
    $(first).focus();
    notifier.setCount(0);
}

function showConsole() {
    document.body.dataset.view = 'console';
    $('login-view').hidden = true;
    $('console-view').hidden = false;
    for (const id of ['status-wrap', 'sound-toggle', 'logout', 'help-button', 'me', 'conn'])
        $(id).hidden = false;
    $('help-line').hidden = false;
    $('login-error').hidden = true;
    renderMe();
    renderPane();
    updateBadges();
}

// The token is about to expire or was refused: ChatClient is waiting in
// auth.token() for a new one; the console stays as it is underneath.
function needLogin(why) {
    if (!$('login-view').hidden)
        return;
    showLogin(why);
}

function loginError(key, vars) {
    const e = $('login-error');
    e.dataset.key = key;
    e.dataset.vars = JSON.stringify(vars || {});
    e.textContent = t(key, vars);
    e.hidden = false;
}

async function onLoginSubmit(ev) {
    ev.preventDefault();
    const tn = $('login-tenant').value.trim();
    const ag = $('login-agent').value.trim();
    const pw = $('login-password').value;
    if (!tn || !ag || !pw) {
        loginError('login.err.empty');
        return;
    }
    const btn = $('login-submit');
    btn.disabled = true;
    btn.textContent = t('login.busy');
    $('login-error').hidden = true;
    let r;
    try {
        r = await auth.login(tn, ag, pw);
    } finally {
        btn.disabled = false;
        btn.textContent = t('login.submit');
    }
    if (!r.ok) {
        if (r.kind === 'auth')
            loginError('login.err.401');
        else if (r.kind === 'limit')
            loginError('login.err.429');
        else if (r.kind === 'network')
            loginError('login.err.network');
        else
            loginError('login.err.other', { status: r.status, message: r.message || '' });
        $('login-password').select();
        return;
    }
    $('login-password').value = '';
    try {
        localStorage.setItem(LAST_KEY, JSON.stringify({ tenant: tn, agent: ag }));
    } catch { /* a convenience only */ }
    if (r.same && client) {
        // the same agent signed in again: the waiting client got the token
        showConsole();
        return;
    }
    startConsole();
}

function logout() {
    try {
        sessionStorage.removeItem(STATUS_KEY);
    } catch { /* nothing kept */ }
    stopConsole();
    auth.logout();
    showLogin('loggedout');
}

// ---- console lifecycle -------------------------------------------------

function startConsole() {
    stopConsole();
    me = auth.cur.agent;
    tenant = auth.cur.tenant;
    helloSeen = false;
    userStatus = readStatus();
    showConsole();
    setView('queue');
    client = new ChatClient({ base, token: (o) => auth.token(o) });
    client.addEventListener('state', (e) => onState(e.detail));
    client.addEventListener('frame', (e) => onFrame(e.detail));
    client.addEventListener('msg', (e) => onMsg(e.detail));
    client.addEventListener('sent', (e) => {
        const c = convs.get(e.detail.session);
        if (c)
            c.sent(e.detail);
    });
    client.addEventListener('send-error', (e) => {
        const f = e.detail;
        for (const c of convs.values())
            c.failed(f.ref, f.code);
    });
    client.connect();
    loadAgents();
    tick = setInterval(renderQueueWaits, 1000);
}

function stopConsole() {
    if (client) {
        const c = client;
        client = null;
        c.close();
    }
    clearInterval(tick);
    setTypingOff();
    for (const c of convs.values())
        c.tab.remove();
    convs.clear();
    shown = null;
    queue = [];
    for (const li of queueEls.values())
        li.remove();
    queueEls.clear();
    pendingAccept.clear();
    requests.clear();
    agents = new Map();
    agentsMode = 'unknown';
    newQueue = 0;
    userStatus = null;
    hideNotice();
    hideForms();
    renderQueueCount();
    renderPane();
    updateBadges();
}

function onState(s) {
    renderConn();
    $('conn-banner').hidden = !(helloSeen && (s === 'reconnecting' || s === 'connecting'));
    renderAcceptButtons();
    if (s === 'stopped' && client) {
        // the server ended it for good (agent or tenant deleted, 4008)
        stopConsole();
        auth.logout();
        showLogin('stopped');
    }
}

// Accept works only while connected (request() drops frames otherwise),
// and once per session until its answer.
function renderAcceptButtons() {
    const busy = new Set(pendingAccept.values());
    const online = !!client && client.state === 'online';
    for (const li of queueEls.values())
        li.querySelector('[data-testid="queue-accept"]').disabled =
            !online || busy.has(li.dataset.session);
}

function renderConn() {
    const s = client ? client.state : 'stopped';
    const e = $('conn');
    e.dataset.state = s;
    e.textContent = t('conn.' + s);
}

function renderMe() {
    if (!me)
        return;
    const name = agents.get(me);
    const who = (name && name !== me ? `${name} (${me})` : me) + ' @ ' + tenant;
    $('me').textContent = who;
    $('me').title = t('me.label', { who });
}

// A toggle button keeps one name ("Sound") and tells its state with
// aria-pressed; the visible ": on"/": off" is for sighted users only.
function renderSound() {
    const b = $('sound-toggle');
    b.setAttribute('aria-pressed', String(notifier.sound));
    const name = document.createElement('span');
    name.textContent = t('sound.name');
    const state = document.createElement('span');
    state.setAttribute('aria-hidden', 'true');
    state.textContent = t(notifier.sound ? 'sound.state.on' : 'sound.state.off');
    const both = document.createElement('span');   // one flex item: no gap
    both.append(name, state);
    b.replaceChildren(both);
    b.dataset.beeps = String(notifier.beeps);
}

function readStatus() {
    try {
        const v = JSON.parse(sessionStorage.getItem(STATUS_KEY) || 'null');
        if (v && v.tenant === tenant && v.agent === me &&
            (v.status === 'online' || v.status === 'away'))
            return v.status;
    } catch { /* none kept */ }
    return null;
}

function keepStatus(status) {
    userStatus = status;
    try {
        sessionStorage.setItem(STATUS_KEY, JSON.stringify({ tenant, agent: me, status }));
    } catch { /* kept for this page only */ }
}

// ---- agents (rule 66) --------------------------------------------------

async function loadAgents() {
    const cl = client;
    let res;
    try {
        res = await fetch(new URL(`/v1/tenants/${encodeURIComponent(tenant)}/agents`, base), {
            headers: { Authorization: auth.bearer() },
            cache: 'no-store',
        });
    } catch {
        return false;
    }
    if (cl !== client)
        return false;
    if (res.status === 401) {
        needLogin('refused');
        return false;
    }
    if (res.status === 403 || res.status === 404) {
        agentsMode = 'fallback';
        return false;
    }
    if (!res.ok)
        return false;
    let body;
    try {
        body = await res.json();
    } catch {
        return false;
    }
    if (cl !== client || !body || !Array.isArray(body.agents))
        return false;
    agents = new Map();
    for (const a of body.agents)
        if (a && typeof a.id === 'string')
            agents.set(a.id, typeof a.name === 'string' && a.name ? a.name : a.id);
    agentsMode = 'list';
    renderMe();
    for (const c of convs.values())
        c.relabel();
    return true;
}

function agentName(id) {
    return agents.get(id) || id;
}

// ---- frames ------------------------------------------------------------

function onFrame(f) {
    switch (f.type) {
    case 'hello':
        onHello(f);
        break;
    case 'queue':
        setQueue(Array.isArray(f.waiting) ? f.waiting : []);
        break;
    case 'accepted':
        onAccepted(f);
        break;
    case 'history':
        onHistory(f);
        break;
    case 'session_transferred':
        onTransferred(f);
        break;
    case 'session_closed':
        onClosed(f);
        break;
    case 'peer_offline':
    case 'peer_online': {
        const c = convs.get(f.session);
        if (c && c.state !== 'closed') {
            const on = f.type === 'peer_online';
            if (c.online !== on)
                c.note(on ? 'sys.peer.online' : 'sys.peer.offline');
            c.setOnline(on);
            if (on && c.state === 'offline')
                c.setState('active');
            else if (!on && c.state === 'active')
                c.setState('offline');
            if (c === shown)
                renderPane();
        }
        break;
    }
    case 'read': {
        const c = convs.get(f.session);
        if (c && typeof f.who === 'string' && f.who.startsWith('visitor:'))
            c.setPeerRead(f.seq);
        break;
    }
    case 'typing': {
        const c = convs.get(f.session);
        if (c && typeof f.who === 'string' && f.who.startsWith('visitor:'))
            setVisitorTyping(c, !!f.on);
        break;
    }
    case 'error':
        onError(f);
        break;
    default:
        break;
    }
}

function onHello(h) {
    const first = !helloSeen;
    helloSeen = true;
    $('conn-banner').hidden = true;
    if (h.user && h.user !== me)
        me = h.user;
    const sel = $('agent-status');
    if (userStatus && userStatus !== h.status) {
        // chosen here while disconnected: the choice wins
        client.request({ type: 'status', status: userStatus });
        sel.value = userStatus;
    } else if (h.status === 'online' || h.status === 'away') {
        sel.value = h.status;
    }
    // in-flight requests died with the old socket
    pendingAccept.clear();
    requests.clear();
    setQueue(Array.isArray(h.queue) ? h.queue : [], first);
    renderAcceptButtons();
    const live = new Set();
    for (const s of Array.isArray(h.sessions) ? h.sessions : []) {
        if (!s || typeof s.session !== 'string')
            continue;
        live.add(s.session);
        let c = convs.get(s.session);
        const last = Number.isSafeInteger(s.last_seq) ? s.last_seq : 0;
        if (!c) {
            c = openConv({ session: s.session, visitor: s.visitor, state: s.state });
            // replays up to last_seq are covered by the history we ask for
            client.setLastSeq(s.session, last);
            loadHistory(c, Math.max(0, last - HISTORY_PAGE));
        } else {
            c.syncQ = [];
            if (c.state === 'closed')
                c.reopen(s.state);      // the server says it is ours
            else
                c.setState(s.state === 'offline' ? 'offline' : 'active');
            if (c.loading)
                loadHistory(c, c.maxSeq);
        }
    }
    for (const c of convs.values()) {
        if (!live.has(c.session) && c.state !== 'closed') {
            // closed or transferred while we were away
            c.setState('closed', '', '');
            c.note('sys.gone');
        }
    }
    if (!shown && convs.size)
        show(convs.values().next().value, false);
    renderTabsOrder();
    renderPane();
    if (shown)
        markViewed(shown);
    updateBadges();
}

function onAccepted(f) {
    let mine = false;
    for (const [ref, s] of pendingAccept) {
        if (s === f.session) {
            pendingAccept.delete(ref);
            mine = true;
        }
    }
    const c = openConv({ session: f.session, visitor: f.visitor, state: 'active' });
    fillFromHistory(c, f.history, f.last_seq);
    if (mine) {
        show(c, true);
    } else {
        // auto-assignment (tenant setting): the agent did not ask for it
        showNotice('assigned', 'notice.assigned', { visitor: c.visitor });
        if (!shown)
            show(c, false);
        if (!isViewing(c)) {
            c.setUnread(c.unread + countVisitorMsgs(f.history));
            notifier.beep();
            renderSound();
        }
    }
    updateBadges();
}

function countVisitorMsgs(list) {
    return (Array.isArray(list) ? list : [])
        .filter((m) => m && typeof m.from === 'string' && m.from.startsWith('visitor:')).length;
}

// session_transferred names no visitor; its history usually does.
function visitorOf(history) {
    for (const m of Array.isArray(history) ? history : [])
        if (m && typeof m.from === 'string' && m.from.startsWith('visitor:'))
            return m.from.slice(8);
    return '';
}

async function fetchVisitor(c) {
    try {
        const r = await fetch(new URL('/v1/sessions/' + encodeURIComponent(c.session), base), {
            headers: { Authorization: auth.bearer() },
            cache: 'no-store',
        });
        const s = r.ok ? await r.json() : null;
        if (s && typeof s.visitor === 'string' && s.visitor && !c.visitor) {
            c.setVisitor(s.visitor);
            if (c === shown)
                renderPane();
        }
    } catch { /* the session id stands in for it */ }
}

function fillFromHistory(c, history, last) {
    for (const m of Array.isArray(history) ? history : [])
        c.add(m);
    if (Number.isSafeInteger(last))
        client.setLastSeq(c.session, last);
    renderEarlier();
}

function onTransferred(f) {
    if (f.to === me) {
        const c = openConv({ session: f.session, visitor: visitorOf(f.history), state: 'active' });
        fillFromHistory(c, f.history, f.last_seq);
        if (!c.visitor)
            fetchVisitor(c);
        const from = f.from ? (f.from_name || agentName(f.from)) : t('msg.system');
        c.note('sys.transferred.in', { from });
        showNotice('transferred', 'notice.transferred.in', { from, visitor: c.visitor || f.session });
        if (!shown) {
            show(c, false);
        } else if (c !== shown) {
            c.setUnread(Math.max(c.unread, 1));
        }
        notifyIfUnseen(c);
        updateBadges();
        return;
    }
    if (f.from === me) {
        const c = convs.get(f.session);
        const visitor = c ? c.visitor : f.session;
        if (f.to)
            showNotice('transferred', 'notice.transferred.out',
                { visitor, to: f.to_name || agentName(f.to) });
        else
            showNotice('transferred', 'notice.transferred.queue', { visitor });
        if (c)
            removeConv(c);
    }
}

function onClosed(f) {
    const c = convs.get(f.session);
    if (!c || c.state === 'closed')
        return;
    const by = typeof f.by === 'string' ? f.by : 'system';
    c.setState('closed', f.reason, by);
    setVisitorTyping(c, false);
    const reason = f.reason || '—';
    if (by === 'agent:' + me)
        c.note('sys.closed.you', { reason });
    else if (by.startsWith('visitor:'))
        c.note('sys.closed.visitor');
    else if (by.startsWith('agent:'))
        c.note('sys.closed.agent', { agent: agentName(by.slice(6)), reason });
    else
        c.note('sys.closed.system', { reason });
    if (by !== 'agent:' + me && c !== shown)
        showNotice('closed', 'notice.closed', { visitor: c.visitor });
    if (c === shown) {
        const inPane = $('conv').contains(document.activeElement) ||
            document.activeElement === document.body;
        if (typingOn)
            setTypingOff();
        hideForms();
        renderPane();
        // the reply box just got disabled: keep keyboard users somewhere
        if (inPane)
            $('conv-dismiss').focus();
    }
}

function onError(f) {
    if (!f.ref)
        return;
    if (pendingAccept.has(f.ref)) {
        const session = pendingAccept.get(f.ref);
        pendingAccept.delete(f.ref);
        const li = queueEls.get(session);
        if (li)
            li.querySelector('[data-testid="queue-accept"]').disabled = false;
        if (f.code === 'already_taken')
            showNotice('already_taken', 'notice.already_taken');
        else
            showError(f.code);
        return;
    }
    const r = requests.get(f.ref);
    if (!r)
        return;
    requests.delete(f.ref);
    if (r.kind === 'sync') {
        const c = convs.get(r.session);
        if (c) {
            c.syncQ = c.syncQ.filter((q) => q.ref !== f.ref);
            c.loading = false;
            if (c === shown)
                renderPane();
        }
        return;
    }
    if (r.kind === 'typing' || r.kind === 'read')
        return;     // nothing the agent can do about these
    if (r.kind === 'status' && client && client.hello) {
        $('agent-status').value = client.hello.status;
        keepStatus(client.hello.status);
    }
    showError(f.code);
}

function showError(code) {
    showNotice(code || 'error', 'notice.error', { code });
}

// ChatClient drops frames while not connected, and nothing would answer
// them: say so for what the agent asked for, and keep no ref waiting.
function request(frame, kind, session) {
    if (!client || client.state !== 'online') {
        if (kind === 'transfer' || kind === 'close')
            showNotice('offline', 'notice.offline');
        return null;
    }
    const ref = client.request(frame);
    requests.set(ref, { kind, session });
    // nothing answers success for most frames: forget refs after a while
    setTimeout(() => requests.delete(ref), 60000);
    return ref;
}

// ---- history -----------------------------------------------------------

function loadHistory(c, after) {
    c.loading = true;
    syncPage(c, after, HISTORY_PAGE, 'forward');
    if (c === shown)
        renderPane();
}

function syncPage(c, after, limit, kind) {
    const ref = request({ type: 'sync', session: c.session, after, limit }, 'sync', c.session);
    if (ref)
        c.syncQ.push({ ref, kind });
}

function onHistory(f) {
    const c = convs.get(f.session);
    if (!c)
        return;
    const req = c.syncQ.shift() || { kind: 'forward' };
    requests.delete(req.ref);
    const msgs = Array.isArray(f.messages) ? f.messages : [];
    const list = c.list;
    const keepFromBottom = list.scrollHeight - list.scrollTop;
    for (const m of msgs)
        c.add(m);
    if (req.kind === 'earlier' && !c.stick && list.isConnected)
        list.scrollTop = list.scrollHeight - keepFromBottom;
    if (req.kind === 'forward') {
        if (f.more && msgs.length)
            syncPage(c, msgs[msgs.length - 1].seq, HISTORY_PAGE, 'forward');
        else
            c.loading = false;
    }
    if (c === shown) {
        renderPane();
        markViewed(c);
    }
}

function loadEarlier() {
    const c = shown;
    if (!c || c.minSeq <= 1)
        return;
    const after = Math.max(0, c.minSeq - 1 - HISTORY_PAGE);
    c.stick = false;
    syncPage(c, after, c.minSeq - 1 - after, 'earlier');
}

// ---- messages ----------------------------------------------------------

function onMsg(m) {
    const c = convs.get(m.session);
    if (!c)
        return;
    if (!c.add(m))
        return;
    if (typeof m.from !== 'string' || !m.from.startsWith('visitor:'))
        return;
    setVisitorTyping(c, false);
    if (isViewing(c)) {
        markViewed(c);
    } else {
        c.setUnread(c.unread + 1);
        notifier.beep();
        renderSound();
    }
    updateBadges();
}

function notifyIfUnseen(c) {
    if (!isViewing(c)) {
        notifier.beep();
        renderSound();
    }
}

function isViewing(c) {
    return c === shown && !document.hidden && !$('console-view').hidden &&
        (wide.matches || view === 'convs');
}

// Clear the unread count and tell the visitor how far we have read.
function markViewed(c) {
    if (!isViewing(c))
        return;
    if (c.unread)
        c.setUnread(0);
    if (c.maxVisitorSeq > c.readSent && client && client.state === 'online' &&
        c.state !== 'closed') {
        request({ type: 'read', session: c.session, seq: c.maxVisitorSeq }, 'read', c.session);
        c.readSent = c.maxVisitorSeq;
    }
    updateBadges();
}

function setVisitorTyping(c, on) {
    clearTimeout(c.typingTimer);
    c.typing = on && c.state !== 'closed';
    if (c.typing)
        c.typingTimer = setTimeout(() => setVisitorTyping(c, false), VISITOR_TYPING_MAX_MS);
    if (c === shown)
        $('conv-typing').hidden = !c.typing;
}

function sendReply() {
    const c = shown;
    const input = $('conv-input');
    if (!c || !client || c.state === 'closed')
        return;
    const text = input.value.replace(/\s+$/, '');
    if (!text.trim())
        return;
    const body = { text };
    const cid = client.send(c.session, 'text', body);
    c.addPending(cid, 'text', body);
    input.value = '';
    c.draft = '';
    setTypingOff();
    markViewed(c);
}

function onInputTyping() {
    const c = shown;
    if (!c || c.state === 'closed' || !client)
        return;
    c.draft = $('conv-input').value;
    if (!$('conv-input').value) {
        setTypingOff();
        return;
    }
    if (!typingOn) {
        typingOn = c.session;
        request({ type: 'typing', session: c.session, on: true }, 'typing', c.session);
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(setTypingOff, TYPING_IDLE_MS);
}

function setTypingOff() {
    clearTimeout(typingTimer);
    if (typingOn && client) {
        const c = convs.get(typingOn);
        if (c && c.state !== 'closed')
            request({ type: 'typing', session: typingOn, on: false }, 'typing', typingOn);
    }
    typingOn = false;
}

// ---- queue -------------------------------------------------------------

function setQueue(items, initial) {
    const valid = items.filter((q) => q && typeof q.session === 'string');
    const before = new Set(queue.map((q) => q.session));
    const arrived = valid.filter((q) => !before.has(q.session)).length;
    queue = valid;
    const list = $('queue-list');
    const keep = new Set(valid.map((q) => q.session));
    for (const [s, li] of queueEls) {
        if (!keep.has(s)) {
            li.remove();
            queueEls.delete(s);
        }
    }
    let prev = null;
    for (const q of valid) {
        let li = queueEls.get(q.session);
        if (!li) {
            li = queueItem(q);
            queueEls.set(q.session, li);
        }
        li.dataset.since = String(q.since);
        const want = prev ? prev.nextElementSibling : list.firstElementChild;
        if (want !== li)
            list.insertBefore(li, want);
        prev = li;
    }
    renderQueueWaits();
    renderQueueCount();
    if (arrived && !initial && helloSeen) {
        if (!queueSeen()) {
            newQueue += arrived;
            notifier.beep();
            renderSound();
        }
    }
    updateBadges();
}

function queueItem(q) {
    const li = document.createElement('li');
    li.className = 'ag-q';
    li.dataset.testid = 'queue-item';
    li.dataset.session = q.session;
    li.dataset.visitor = typeof q.visitor === 'string' ? q.visitor : '';
    const top = document.createElement('div');
    top.className = 'ag-q-top';
    const who = document.createElement('span');
    who.className = 'ag-q-visitor';
    who.textContent = li.dataset.visitor || q.session;
    who.title = li.dataset.visitor;
    const wait = document.createElement('span');
    wait.className = 'ag-q-wait';
    wait.dataset.testid = 'queue-wait';
    top.append(who, wait);
    const prev = document.createElement('p');
    prev.className = 'ag-q-preview';
    prev.dataset.testid = 'queue-preview';
    const text = typeof q.preview === 'string' ? q.preview : '';
    prev.textContent = text;
    if (!text)
        prev.classList.add('ag-q-none');
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'cc-btn cc-primary ag-q-accept';
    btn.dataset.testid = 'queue-accept';
    btn.disabled = !client || client.state !== 'online';
    btn.addEventListener('click', () => accept(q.session));
    li.append(top, prev, btn);
    relabelQueueItem(li);
    return li;
}

function relabelQueueItem(li) {
    const btn = li.querySelector('[data-testid="queue-accept"]');
    btn.textContent = t('queue.accept');
    btn.setAttribute('aria-label', t('queue.accept.label',
        { visitor: li.dataset.visitor || li.dataset.session }));
    const p = li.querySelector('[data-testid="queue-preview"]');
    if (p.classList.contains('ag-q-none'))
        p.textContent = t('queue.nopreview');
}

function formatWait(sec) {
    sec = Math.max(0, Math.floor(sec));
    const pad = (n) => String(n).padStart(2, '0');
    if (sec < 60)
        return t('wait.s', { s: sec });
    if (sec < 3600)
        return t('wait.ms', { m: Math.floor(sec / 60), s: pad(sec % 60) });
    return t('wait.hm', { h: Math.floor(sec / 3600), m: pad(Math.floor(sec / 60) % 60) });
}

function renderQueueWaits() {
    const now = Date.now();
    for (const li of queueEls.values()) {
        const since = Number(li.dataset.since);
        const w = li.querySelector('[data-testid="queue-wait"]');
        const text = Number.isFinite(since) ? formatWait((now - since) / 1000) : '';
        if (w.textContent !== text)
            w.textContent = text;
        w.title = t('queue.waiting', { time: text });
    }
}

function renderQueueCount() {
    const n = queue.length;
    $('queue-n').textContent = n ? String(n) : '';
    $('view-queue-n').textContent = n ? String(n) : '';
    $('queue-empty').hidden = n > 0;
}

function queueSeen() {
    return !document.hidden && !$('console-view').hidden && (wide.matches || view === 'queue');
}

function accept(session) {
    if (!client || client.state !== 'online')
        return;
    for (const s of pendingAccept.values())
        if (s === session)
            return;
    const ref = client.request({ type: 'accept', session });
    pendingAccept.set(ref, session);
    const li = queueEls.get(session);
    if (li)
        li.querySelector('[data-testid="queue-accept"]').disabled = true;
}

function acceptOldest() {
    const busy = new Set(pendingAccept.values());
    const q = queue.find((x) => !busy.has(x.session));
    if (q)
        accept(q.session);
}

// ---- conversations -----------------------------------------------------

function openConv(info) {
    let c = convs.get(info.session);
    if (c) {
        if (info.visitor && !c.visitor)
            c.setVisitor(info.visitor);
        // marked gone earlier, and now ours again (accepted, transferred)
        if (c.state === 'closed' && info.state && info.state !== 'closed') {
            c.reopen(info.state);
            if (c === shown)
                renderPane();
        }
        return c;
    }
    c = new Conversation({
        get me() {
            return me;      // learnt from hello, maybe after this opened
        },
        agentName,
        onTabClick: (x) => {
            show(x, false);
            if (!wide.matches)
                setView('convs');
        },
        onDismiss: (x) => removeConv(x),
    }, info);
    convs.set(c.session, c);
    $('tabs').append(c.tab);
    updateBadges();
    return c;
}

function renderTabsOrder() {
    for (const c of convs.values())
        $('tabs').append(c.tab);
}

function removeConv(c) {
    if (typingOn === c.session)
        setTypingOff();
    clearTimeout(c.typingTimer);
    const order = [...convs.values()];
    const i = order.indexOf(c);
    convs.delete(c.session);
    c.tab.remove();
    if (shown === c) {
        shown = null;
        hideForms();
        const next = order[i + 1] || order[i - 1];
        if (next && next !== c)
            show(next, false);
    }
    renderPane();
    updateBadges();
}

function show(c, focus) {
    if (shown && shown !== c) {
        shown.draft = $('conv-input').value;
        if (typingOn)
            setTypingOff();
        hideForms();
    }
    shown = c;
    for (const x of convs.values())
        x.setActive(x === c);
    renderPane();
    if (c) {
        markViewed(c);
        if (focus) {
            if (!wide.matches)
                setView('convs');
            const input = $('conv-input');
            if (!input.disabled)
                input.focus();
        }
    }
}

function nextConv() {
    const order = [...convs.values()];
    if (!order.length)
        return;
    const i = order.indexOf(shown);
    const c = order[(i + 1) % order.length];
    show(c, true);
    if (!wide.matches)
        setView('convs');
    c.tab.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    if ($('conv-input').disabled)
        c.tab.focus();
}

// Fill the single pane from the shown conversation.
function renderPane() {
    const c = shown;
    const pane = $('conv');
    $('convs-empty').hidden = !!c || convs.size > 0;
    if (!c) {
        pane.hidden = true;
        pane.removeAttribute('data-session');
        $('conv-slot').replaceChildren();
        return;
    }
    pane.hidden = false;
    pane.dataset.session = c.session;
    pane.setAttribute('aria-labelledby', c.tab.id);
    $('conv-title').textContent = t('conv.visitor', { visitor: c.visitor || c.session });
    $('conv-title').title = c.session;
    const peer = t(c.online ? 'conv.peer.online' : 'conv.peer.offline');
    const pt = $('conv-peer-text');
    pt.textContent = peer;
    pt.dataset.online = String(c.online);
    pt.hidden = c.state === 'closed';      // whether they are around no longer matters
    const st = $('conv-state');
    st.dataset.state = c.state;
    st.textContent = c.state === 'closed'
        ? (c.reason ? t('conv.state.closed.reason', { reason: c.reason }) : t('conv.state.closed'))
        : t('conv.state.' + c.state);
    const closed = c.state === 'closed';
    $('conv-transfer').hidden = closed;
    $('conv-close').hidden = closed;
    $('conv-dismiss').hidden = !closed;
    const slot = $('conv-slot');
    if (slot.firstElementChild !== c.list) {
        slot.replaceChildren(c.list);
        c.shown();
    }
    renderEarlier();
    $('conv-typing').hidden = !c.typing;
    const input = $('conv-input');
    input.disabled = closed;
    $('conv-send').disabled = closed;
    input.placeholder = closed ? t('conv.input.closed') : t('conv.input.ph');
    if (input.dataset.session !== c.session) {
        input.value = c.draft || '';
        input.dataset.session = c.session;
    }
    $('conv-body').setAttribute('aria-busy', String(c.loading));
}

function renderEarlier() {
    const c = shown;
    const b = $('conv-earlier');
    if (!c) {
        b.hidden = true;
        return;
    }
    b.hidden = !(c.minSeq > 1);
}

// ---- transfer and close ------------------------------------------------

function hideForms() {
    $('transfer-form').hidden = true;
    $('close-form').hidden = true;
    $('conv-transfer').setAttribute('aria-expanded', 'false');
    $('conv-close').setAttribute('aria-expanded', 'false');
}

async function openTransfer() {
    const c = shown;
    if (!c || c.state === 'closed')
        return;
    if (!$('transfer-form').hidden) {
        hideForms();
        return;
    }
    hideForms();
    $('transfer-form').hidden = false;
    $('conv-transfer').setAttribute('aria-expanded', 'true');
    fillTransferTargets();
    $('transfer-target').focus();
    // refresh the list each time: colleagues come and go
    if (await loadAgents()) {
        const had = $('transfer-target').value;
        fillTransferTargets();
        $('transfer-target').value = had;
        if ($('transfer-target').value !== had)
            $('transfer-target').value = '';
    } else if (agentsMode === 'fallback' && !$('transfer-form').hidden) {
        fillTransferTargets();
    }
}

function fillTransferTargets() {
    const sel = $('transfer-target');
    const opts = [];
    const q = document.createElement('option');
    q.value = '';
    q.textContent = t('transfer.queue');
    opts.push(q);
    const others = [...agents.entries()].filter(([id]) => id !== me)
        .sort((a, b) => a[1].localeCompare(b[1]));
    for (const [id, name] of others) {
        const o = document.createElement('option');
        o.value = id;
        o.textContent = name === id ? id : `${name} (${id})`;
        opts.push(o);
    }
    sel.replaceChildren(...opts);
    const fallback = agentsMode !== 'list';
    $('transfer-other-wrap').hidden = !fallback;
    const hint = $('transfer-hint');
    if (fallback) {
        hint.textContent = t('notice.agents.fallback');
        hint.hidden = false;
    } else if (!others.length) {
        hint.textContent = t('transfer.noagents');
        hint.hidden = false;
    } else {
        hint.hidden = true;
    }
}

function submitTransfer(ev) {
    ev.preventDefault();
    const c = shown;
    if (!c || c.state === 'closed')
        return;
    const other = $('transfer-other-wrap').hidden ? '' : $('transfer-other').value.trim();
    const to = other || $('transfer-target').value || null;
    request({ type: 'transfer', session: c.session, to }, 'transfer', c.session);
    $('transfer-other').value = '';
    hideForms();
}

function openClose() {
    const c = shown;
    if (!c || c.state === 'closed')
        return;
    hideForms();
    $('close-form').hidden = false;
    $('conv-close').setAttribute('aria-expanded', 'true');
    const r = $('close-reason');
    r.value = t('close.default');
    r.focus();
    r.select();
}

function submitClose(ev) {
    ev.preventDefault();
    const c = shown;
    if (!c || c.state === 'closed')
        return;
    const reason = $('close-reason').value.trim().slice(0, 200) || t('close.default');
    request({ type: 'close', session: c.session, reason }, 'close', c.session);
    hideForms();
    $('conv-input').focus();
}

// ---- notices, badges, views --------------------------------------------

function showNotice(code, key, vars) {
    const n = $('notice');
    n.dataset.code = code;
    n.dataset.key = key;
    n.dataset.vars = JSON.stringify(vars || {});
    $('notice-text').textContent = noticeText(key, vars);
    $('notice-row').hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(hideNotice, NOTICE_MS);
}

// Error notices keep the code, not its text, so they follow the language.
function noticeText(key, vars) {
    if (vars && vars.code !== undefined)
        return t(key, Object.assign({}, vars, { text: errText(vars.code) }));
    return t(key, vars);
}

function hideNotice() {
    clearTimeout(noticeTimer);
    $('notice-row').hidden = true;
    delete $('notice').dataset.code;
}

function updateBadges() {
    let unread = 0;
    for (const c of convs.values())
        unread += c.unread;
    if (queueSeen())
        newQueue = 0;
    notifier.setCount($('console-view').hidden ? 0 : unread + newQueue);
    $('view-convs-n').textContent = unread ? String(unread) : '';
}

function setView(v) {
    view = v;
    $('columns').dataset.view = v;
    $('view-queue').setAttribute('aria-pressed', String(v === 'queue'));
    $('view-convs').setAttribute('aria-pressed', String(v === 'convs'));
    if (shown && shown.list.isConnected)
        shown.shown();
    if (shown)
        markViewed(shown);
    updateBadges();
}

function onVisible() {
    if (document.hidden)
        return;
    if (shown)
        markViewed(shown);
    updateBadges();
}

// ---- keyboard ----------------------------------------------------------

function isTextField(elm) {
    return elm && (elm.tagName === 'INPUT' || elm.tagName === 'TEXTAREA' ||
        elm.tagName === 'SELECT' || elm.isContentEditable);
}

function onKeyDown(e) {
    if ($('console-view').hidden)
        return;
    if (e.altKey && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
        // e.code, not e.key: Alt+letter types other characters on macOS
        // and on some layouts
        if (e.code === 'KeyA') {
            e.preventDefault();
            acceptOldest();
        } else if (e.code === 'KeyN') {
            e.preventDefault();
            nextConv();
        } else if (e.code === 'KeyW') {
            e.preventDefault();
            openClose();
        }
        return;
    }
    if (e.key === 'Escape') {
        if (!$('transfer-form').hidden || !$('close-form').hidden) {
            e.preventDefault();
            hideForms();
            if (shown && !$('conv-input').disabled)
                $('conv-input').focus();
        }
        return;
    }
    if (e.key === '?' && !isTextField(e.target) && !e.ctrlKey && !e.metaKey) {
        e.preventDefault();
        toggleHelp();
    }
}

function toggleHelp() {
    const d = $('help');
    if (d.open)
        d.close();
    else
        d.showModal();
}

function onTabsKey(e) {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft' && e.key !== 'Home' && e.key !== 'End')
        return;
    const order = [...convs.values()];
    if (!order.length)
        return;
    e.preventDefault();
    let i = order.indexOf(shown);
    if (e.key === 'ArrowRight')
        i = (i + 1) % order.length;
    else if (e.key === 'ArrowLeft')
        i = (i - 1 + order.length) % order.length;
    else if (e.key === 'Home')
        i = 0;
    else
        i = order.length - 1;
    show(order[i], false);
    order[i].tab.focus();
}

// ---- wiring ------------------------------------------------------------

function init() {
    bindDocumentLang();
    onLangChange(applyLang);
    $('lang-toggle').addEventListener('click', () => toggleLang());
    $('login-form').addEventListener('submit', onLoginSubmit);
    $('logout').addEventListener('click', logout);
    $('agent-status').addEventListener('change', (e) => {
        keepStatus(e.target.value);
        request({ type: 'status', status: userStatus }, 'status', null);
    });
    $('sound-toggle').addEventListener('click', () => {
        notifier.setSound(!notifier.sound);
        renderSound();
    });
    notifier.onchange = renderSound;
    $('help-button').addEventListener('click', toggleHelp);
    $('notice-dismiss').addEventListener('click', hideNotice);
    $('view-queue').addEventListener('click', () => setView('queue'));
    $('view-convs').addEventListener('click', () => setView('convs'));
    $('tabs').addEventListener('keydown', onTabsKey);
    $('conv-transfer').addEventListener('click', openTransfer);
    $('transfer-form').addEventListener('submit', submitTransfer);
    $('transfer-cancel').addEventListener('click', () => {
        hideForms();
        $('conv-transfer').focus();
    });
    $('conv-close').addEventListener('click', () => {
        if (!$('close-form').hidden)
            hideForms();
        else
            openClose();
    });
    $('close-form').addEventListener('submit', submitClose);
    $('close-cancel').addEventListener('click', () => {
        hideForms();
        $('conv-close').focus();
    });
    $('conv-dismiss').addEventListener('click', () => {
        if (!shown)
            return;
        removeConv(shown);
        if (shown && !$('conv-input').disabled)
            $('conv-input').focus();
        else if (shown)
            shown.tab.focus();
        else
            $('queue-heading').focus();
    });
    $('conv-earlier').addEventListener('click', loadEarlier);
    $('composer').addEventListener('submit', (e) => {
        e.preventDefault();
        sendReply();
    });
    const input = $('conv-input');
    input.addEventListener('keydown', (e) => {
        // isComposing: Enter that picks a candidate in a Chinese IME
        if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.isComposing &&
            e.keyCode !== 229) {
            e.preventDefault();
            sendReply();
        }
    });
    input.addEventListener('input', onInputTyping);
    input.addEventListener('blur', () => {
        if (shown)
            shown.draft = input.value;
        setTypingOff();
    });
    document.addEventListener('keydown', onKeyDown);
    document.addEventListener('visibilitychange', onVisible);
    window.addEventListener('focus', onVisible);
    wide.addEventListener('change', () => {
        if (shown)
            markViewed(shown);
        updateBadges();
    });
    applyLang();
    if (auth.signedIn)
        startConsole();
    else
        showLogin(auth.cur ? 'expired' : null);
}

init();

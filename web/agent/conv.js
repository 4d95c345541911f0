// web/agent/conv.js - one conversation of the agent console: its messages,
// read/typing/online state, its tab and its message list.
//
// Each conversation owns a detached <div data-testid="conv-messages">; the
// console's single pane (app.js) swaps the shown one in, so switching tabs
// keeps every list and its scroll position without re-rendering, and the
// page only ever holds one conv-messages (what the tests expect).
//
// Messages are keyed by seq, so history pages, replays and live frames may
// overlap freely: whatever arrives twice is merged, and the list stays in
// seq order. Our own sends appear at once without a seq (data-state
// "sending") and take their place when `sent` tells the seq.

import { t, getLang } from '/lib/i18n.js';

export function shortId(id) {
    return id.length > 12 ? id.slice(0, 9) + '…' : id;
}

function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs)
        for (const [k, v] of Object.entries(attrs))
            e.setAttribute(k, v);
    if (text !== undefined)
        e.textContent = text;
    return e;
}

function safeUrl(u) {
    try {
        const x = new URL(String(u), location.href);
        return x.protocol === 'http:' || x.protocol === 'https:' ? x.href : null;
    } catch {
        return null;
    }
}

export function errText(code) {
    const key = 'err.' + code;
    const s = t(key);
    return s === key ? String(code) : s;
}

function clock(ts) {
    if (!Number.isFinite(ts))
        return '';
    // 24-hour in both languages: short, and the same width in every row
    return new Date(ts).toLocaleTimeString(getLang() === 'zh' ? 'zh-CN' : 'en-GB',
        { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
}

export class Conversation {
    // ctx: {me, agentName(id), onTabClick(conv), onDismiss(conv)}
    constructor(ctx, { session, visitor, state }) {
        this.ctx = ctx;
        this.session = session;
        this.visitor = visitor || '';
        this.state = state || 'active';
        this.online = this.state !== 'offline';
        this.reason = '';
        this.by = '';
        this.msgs = new Map();      // seq -> li
        this.pending = new Map();   // cid -> li (own, not yet stored)
        this.minSeq = 0;            // lowest / highest seq shown
        this.maxSeq = 0;
        this.maxVisitorSeq = 0;
        this.peerRead = 0;          // the visitor's read cursor
        this.readSent = 0;          // our read cursor as last sent
        this.unread = 0;
        this.typing = false;
        this.typingTimer = 0;
        this.draft = '';
        this.syncQ = [];            // outstanding sync requests, in order
        this.loading = false;       // initial history still coming
        this.stick = true;          // follow new messages at the bottom
        this.scrollTop = 0;
        this.buildTab();
        this.list = el('div', {
            'class': 'ag-msgs',
            'data-testid': 'conv-messages',
            'role': 'log',
            'aria-live': 'polite',
            'tabindex': '0',
        });
        this.list.addEventListener('scroll', () => {
            const l = this.list;
            this.stick = l.scrollHeight - l.scrollTop - l.clientHeight < 40;
            this.scrollTop = l.scrollTop;
        });
        this.relabel();
    }

    // ---- the tab ---------------------------------------------------------

    // The tab is one button; the "×" of a closed tab is part of it (a
    // button inside the tablist would break the tabs pattern), and Delete
    // on the tab or the pane's Dismiss button do the same from the keyboard.
    buildTab() {
        this.tab = el('button', {
            'type': 'button',
            'role': 'tab',
            'class': 'ag-tab',
            'id': 'tab-' + this.session,
            'data-testid': 'conv-tab',
            'data-session': this.session,
            'data-active': 'false',
            'aria-selected': 'false',
            'aria-controls': 'conv',
            'tabindex': '-1',
            'title': this.visitor,
            'data-state': this.state,
        });
        this.peerEl = el('span', { 'class': 'ag-peer', 'data-testid': 'conv-peer',
            'data-online': String(this.online), 'role': 'img' });
        this.tabLabel = el('span', { 'class': 'ag-tab-label' }, shortId(this.visitor || this.session));
        this.unreadEl = el('span', { 'class': 'ag-unread', 'data-testid': 'conv-unread' });
        this.unreadEl.hidden = true;
        this.dismissBtn = el('span', { 'class': 'ag-tab-x', 'data-testid': 'conv-tab-dismiss',
            'aria-hidden': 'true' }, '×');
        this.dismissBtn.hidden = true;
        this.tab.append(this.peerEl, this.tabLabel, this.unreadEl, this.dismissBtn);
        this.tab.addEventListener('click', (e) => {
            if (e.target === this.dismissBtn)
                this.ctx.onDismiss(this);
            else
                this.ctx.onTabClick(this);
        });
        this.tab.addEventListener('keydown', (e) => {
            if (e.key === 'Delete' && this.state === 'closed') {
                e.preventDefault();
                this.ctx.onDismiss(this);
            }
        });
    }

    setActive(on) {
        this.tab.dataset.active = String(on);
        this.tab.setAttribute('aria-selected', String(on));
        this.tab.tabIndex = on ? 0 : -1;
    }

    setUnread(n) {
        this.unread = n;
        this.unreadEl.textContent = n > 0 ? String(n) : '';
        this.unreadEl.hidden = n <= 0;
        this.relabelTab();
    }

    setOnline(on) {
        this.online = !!on;
        this.peerEl.dataset.online = String(this.online);
        this.relabelTab();
    }

    setState(state, reason, by) {
        this.state = state;
        if (state === 'closed') {
            this.reason = reason || '';
            this.by = by || '';
            this.typing = false;
            this.tab.classList.add('ag-closed');
            this.dismissBtn.hidden = false;
        } else if (state === 'offline') {
            this.setOnline(false);
        }
        this.tab.dataset.state = state;
    }

    setVisitor(v) {
        this.visitor = v;
        this.tab.title = v;
        this.tabLabel.textContent = shortId(v || this.session);
        this.relabel();
    }

    reopen(state) {
        this.state = state === 'offline' ? 'offline' : 'active';
        this.reason = '';
        this.by = '';
        this.tab.classList.remove('ag-closed');
        this.dismissBtn.hidden = true;
        this.tab.dataset.state = this.state;
        this.setOnline(this.state !== 'offline');
    }

    relabelTab() {
        const peer = t(this.online ? 'conv.peer.online' : 'conv.peer.offline');
        this.peerEl.setAttribute('aria-label', t('conv.peer.label', { state: peer }));
        this.peerEl.title = t('conv.peer.label', { state: peer });
        this.unreadEl.setAttribute('aria-label', t('conv.unread.label', { n: this.unread }));
        this.dismissBtn.title = t('conv.dismiss.label', { visitor: this.visitor });
    }

    // ---- messages --------------------------------------------------------

    // Add a stored message (msg frame or history item). Returns true when it
    // was not shown before.
    add(m) {
        if (!m || !Number.isSafeInteger(m.seq) || m.seq < 1)
            return false;
        if (this.msgs.has(m.seq))
            return false;
        const own = m.from === 'agent:' + this.ctx.me;
        let li = own && m.cid ? this.pending.get(m.cid) : null;
        if (li) {
            this.pending.delete(m.cid);
            li.remove();
        } else {
            li = this.render(m);
        }
        li.dataset.seq = String(m.seq);
        if (own) {
            li.dataset.state = 'sent';
            if (Number.isFinite(m.ts))
                li.querySelector('time').textContent = clock(m.ts);
        }
        this.msgs.set(m.seq, li);
        this.place(li, m.seq);
        if (!this.minSeq || m.seq < this.minSeq)
            this.minSeq = m.seq;
        if (m.seq > this.maxSeq)
            this.maxSeq = m.seq;
        if (typeof m.from === 'string' && m.from.startsWith('visitor:') &&
            m.seq > this.maxVisitorSeq)
            this.maxVisitorSeq = m.seq;
        this.applyRead(li);
        this.relabelMsg(li);
        return true;
    }

    // Keep the list in seq order; sends still without a seq stay last.
    place(li, seq) {
        let before = null;
        for (let n = this.list.lastElementChild; n; n = n.previousElementSibling) {
            if (n.dataset.testid === 'conv-msg' && n.dataset.seq === undefined) {
                before = n;      // a pending send: keep after the stored ones
                continue;
            }
            // a note written after message k follows k itself
            const later = n.dataset.after !== undefined
                ? Number(n.dataset.after) >= seq : Number(n.dataset.seq || 0) > seq;
            if (later) {
                before = n;
                continue;
            }
            break;
        }
        this.list.insertBefore(li, before);
        this.follow();
    }

    addPending(cid, kind, body) {
        const li = this.render({ from: 'agent:' + this.ctx.me, kind, body, ts: Date.now(), cid });
        li.dataset.state = 'sending';
        this.pending.set(cid, li);
        this.list.append(li);
        this.relabelMsg(li);
        this.stick = true;
        this.follow();
    }

    sent(f) {
        const li = this.pending.get(f.cid);
        if (!li)
            return;
        this.add({ seq: f.seq, from: 'agent:' + this.ctx.me, cid: f.cid, ts: f.ts });
    }

    failed(cid, code) {
        const li = this.pending.get(cid);
        if (!li)
            return;
        this.pending.delete(cid);
        li.dataset.state = 'failed';
        li.dataset.error = code || 'internal';
        this.relabelMsg(li);
    }

    setPeerRead(seq) {
        if (!Number.isSafeInteger(seq) || seq <= this.peerRead)
            return;
        this.peerRead = seq;
        for (const li of this.msgs.values())
            this.applyRead(li);
    }

    applyRead(li) {
        if (li.dataset.own !== 'true' || li.dataset.read === 'true')
            return;
        const seq = Number(li.dataset.seq || 0);
        if (seq && seq <= this.peerRead) {
            li.dataset.read = 'true';
            li.dataset.state = 'read';
            this.relabelMsg(li);
        }
    }

    render(m) {
        const from = typeof m.from === 'string' ? m.from : 'system';
        const role = from.startsWith('visitor:') ? 'visitor'
            : from.startsWith('agent:') ? 'agent' : 'system';
        const own = from === 'agent:' + this.ctx.me;
        const li = el('div', { 'data-testid': 'conv-msg', 'data-from': role,
            'class': 'ag-msg ag-' + (own ? 'own' : role) });
        li.dataset.sender = from;
        if (own)
            li.dataset.own = 'true';
        const bubble = el('div', { 'class': 'ag-bubble' });
        const body = m.body && typeof m.body === 'object' ? m.body : {};
        if (m.kind === 'text' || m.kind === undefined) {
            bubble.append(el('p', { 'class': 'ag-text' },
                typeof body.text === 'string' ? body.text : ''));
        } else {
            const p = el('p', { 'class': 'ag-text' });
            const tag = el('span', { 'class': 'ag-kind', 'data-kind': m.kind });
            p.append(tag);
            const url = safeUrl(body.object_url || body.url);
            const name = typeof body.name === 'string' ? body.name
                : typeof body.filename === 'string' ? body.filename
                    : typeof body.text === 'string' ? body.text : '';
            if (url) {
                p.append(' ');
                const a = el('a', { 'href': url, 'target': '_blank', 'rel': 'noopener noreferrer' },
                    name || url);
                p.append(a);
            } else if (name) {
                p.append(' ' + name);
            }
            bubble.append(p);
        }
        const meta = el('div', { 'class': 'ag-meta' });
        const time = el('time', {}, clock(m.ts));
        if (Number.isFinite(m.ts))
            time.dateTime = new Date(m.ts).toISOString();
        meta.append(el('span', { 'class': 'ag-who' }), time, el('span', { 'class': 'ag-st' }));
        li.append(bubble, meta);
        return li;
    }

    // Text that depends on the language or on the message's state.
    relabelMsg(li) {
        const from = li.dataset.sender || 'system';
        const who = li.querySelector('.ag-who');
        if (li.dataset.own === 'true')
            who.textContent = t('msg.you');
        else if (from.startsWith('visitor:'))
            who.textContent = t('msg.visitor');
        else if (from.startsWith('agent:'))
            who.textContent = t('msg.agent', { name: this.ctx.agentName(from.slice(6)) });
        else
            who.textContent = t('msg.system');
        const kind = li.querySelector('.ag-kind');
        if (kind)
            kind.textContent = t('msg.kind.' + kind.dataset.kind);
        const st = li.querySelector('.ag-st');
        const s = li.dataset.state;
        st.textContent = !s ? ''
            : s === 'failed' ? t('msg.failed', { reason: errText(li.dataset.error) })
                : t('msg.' + s);
    }

    // A line of our own (closed, transferred, went offline): not a message,
    // so it has its own test id and no seq; it sorts after `after`.
    note(key, vars) {
        const li = el('div', { 'class': 'ag-note', 'data-testid': 'conv-note' });
        li.dataset.key = key;
        li.dataset.vars = JSON.stringify(vars || {});
        li.dataset.after = String(this.maxSeq);
        li.textContent = t(key, vars);
        let before = null;
        for (const p of this.pending.values()) {
            before = p;
            break;
        }
        this.list.insertBefore(li, before);
        this.follow();
    }

    relabel() {
        this.relabelTab();
        for (const li of this.list.children) {
            if (li.dataset.testid === 'conv-msg')
                this.relabelMsg(li);
            else if (li.dataset.key)
                li.textContent = t(li.dataset.key, JSON.parse(li.dataset.vars || '{}'));
        }
        this.list.setAttribute('aria-label', t('conv.messages', { visitor: this.visitor }));
    }

    follow() {
        if (this.stick && this.list.isConnected)
            this.list.scrollTop = this.list.scrollHeight;
    }

    // The list was put back into the page: restore where the agent was.
    shown() {
        if (this.stick)
            this.list.scrollTop = this.list.scrollHeight;
        else
            this.list.scrollTop = this.scrollTop;
    }
}

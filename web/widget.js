// web/widget.js - the chatcore visitor widget: a chat button and panel that
// any site adds with one tag (docs/web.md, "Embedding the widget"):
//
//     <script src="https://chat.example.com/widget.js" data-tenant="acme"
//             async></script>
//
// Attributes: data-tenant (required), data-lang (zh/en; default: the
// browser's, or the visitor's earlier choice), data-title (panel heading),
// data-open ("true" opens the panel at load).
//
// A classic script, so it can read document.currentScript and run on pages
// that are not modules; it import()s /lib/client.js (the protocol) and
// /lib/i18n.js (strings) from its own origin. Its DOM lives in an open
// shadow root on <div id="chatcore-widget">, so the host page's CSS and
// ours cannot touch each other; all text is set with textContent.
//
// Visitor state is kept in localStorage "chatcore.v1.<tenant>" as
// {visitor, token, expires, session, last_seq} plus peer_read (the highest
// seq the agent has read, so read ticks survive a reload; the server does
// not repeat `read` on connect).
//
// Choices the contract leaves to us:
// - data-state of cc-status: connecting (first connect), reconnecting
//   (was or could not get online, retrying), offline (stopped for good:
//   tenant deleted, 4008), otherwise the session's state; after
//   session_closed it stays `closed` while the fresh session is still
//   `new`, until the visitor's next message queues it.
// - session_started keeps the ended conversation on screen, greyed and
//   followed by a "new conversation" line, so the agent's last words do not
//   vanish; a reload shows the current session only (its history).
// - A send refused because its session is gone (closed while we were away)
//   is re-sent once to the current session, so the text is not lost.
// - The offline banner is removed from the DOM while connected and not
//   shown during the very first connect attempt (it would only flash).
// - Agents are shown by name: GET /v1/agents/{aid} (protocol rule 67) for
//   every agent id a frame or message names; `agent_name`/`to_name` are
//   used too if a frame carries them. The id is shown until then.
(function () {
    'use strict';

    // one widget per page, even if the tag is pasted twice
    const ONCE = Symbol.for('chatcore.widget');
    const script = document.currentScript;
    if (!script || !script.src || document[ONCE] ||
        document.getElementById('chatcore-widget'))
        return;
    const cfg = {
        tenant: script.dataset.tenant || '',
        lang: script.dataset.lang || '',
        title: script.dataset.title || '',
        open: script.dataset.open === 'true',
        base: new URL(script.src, location.href).origin,
    };
    if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(cfg.tenant))
        return;
    document[ONCE] = true;
    const lib = (p) => new URL(p, script.src).href;

    Promise.all([import(lib('/lib/client.js')), import(lib('/lib/i18n.js'))])
        .then(([client, i18n]) => {
            const go = () => start(client.ChatClient, i18n);
            if (document.body)
                go();
            else
                document.addEventListener('DOMContentLoaded', go, { once: true });
        })
        .catch(() => { /* server unreachable: no widget, no console noise */ });

    const STRINGS = {
        en: {
            'widget.title': 'Chat with us',
            'widget.open': 'Open chat',
            'widget.openUnread': 'Open chat, {n} unread',
            'widget.close': 'Close chat',
            'widget.dialog': 'Customer service chat',
            'widget.messages': 'Messages',
            'widget.st.connecting': 'Connecting…',
            'widget.st.reconnecting': 'Reconnecting…',
            'widget.st.new': 'Send a message to start',
            'widget.st.queued': 'Waiting, position {pos}',
            'widget.st.waiting': 'Waiting for an agent…',
            'widget.st.active': 'Chatting with {agent}',
            'widget.st.offline': 'Chat is unavailable',
            'widget.st.closed': 'Chat ended. Write to start a new one.',
            'widget.banner': 'Connection lost. Reconnecting…',
            'widget.bannerStopped': 'Chat is unavailable right now. Please try again later.',
            'widget.input': 'Type a message…',
            'widget.inputLabel': 'Message',
            'widget.send': 'Send',
            'widget.leave': 'End chat',
            'widget.leaveLabel': 'End this chat',
            'widget.lang': '中文',
            'widget.langLabel': '切换到中文 (Switch to Chinese)',
            'widget.typing': '{agent} is typing…',
            'widget.you': 'You: ',
            'widget.agent': 'Agent',
            'widget.sending': 'Sending',
            'widget.sent': 'Sent',
            'widget.read': 'Read',
            'widget.failed': 'Not sent',
            'widget.joined': '{agent} joined the chat',
            'widget.transferred': 'You were transferred to {agent}',
            'widget.requeued': 'You are back in the queue',
            'widget.endedAgent': 'The agent ended the chat',
            'widget.endedYou': 'You left the chat',
            'widget.endedSystem': 'The chat was closed',
            'widget.reason': '{text} ({reason})',
            'widget.newChat': 'New conversation',
            'widget.image': 'Image',
            'widget.file': 'File',
        },
        zh: {
            'widget.title': '在线客服',
            'widget.open': '打开聊天',
            'widget.openUnread': '打开聊天，{n} 条未读',
            'widget.close': '关闭聊天',
            'widget.dialog': '客服聊天',
            'widget.messages': '消息',
            'widget.st.connecting': '正在连接…',
            'widget.st.reconnecting': '正在重新连接…',
            'widget.st.new': '发送消息即可开始咨询',
            'widget.st.queued': '排队中，第 {pos} 位',
            'widget.st.waiting': '正在等待客服接入…',
            'widget.st.active': '{agent} 正在为您服务',
            'widget.st.offline': '客服暂不可用',
            'widget.st.closed': '会话已结束，发送消息即可重新开始',
            'widget.banner': '连接已断开，正在重新连接…',
            'widget.bannerStopped': '客服暂不可用，请稍后再试。',
            'widget.input': '输入消息…',
            'widget.inputLabel': '消息',
            'widget.send': '发送',
            'widget.leave': '结束会话',
            'widget.leaveLabel': '结束本次会话',
            'widget.lang': 'EN',
            'widget.langLabel': 'Switch to English (切换到英文)',
            'widget.typing': '{agent} 正在输入…',
            'widget.you': '我：',
            'widget.agent': '客服',
            'widget.sending': '发送中',
            'widget.sent': '已发送',
            'widget.read': '已读',
            'widget.failed': '发送失败',
            'widget.joined': '{agent} 已接入会话',
            'widget.transferred': '已为您转接至 {agent}',
            'widget.requeued': '您已重新进入排队',
            'widget.endedAgent': '客服已结束本次会话',
            'widget.endedYou': '您已结束本次会话',
            'widget.endedSystem': '会话已关闭',
            'widget.reason': '{text}（{reason}）',
            'widget.newChat': '新的会话',
            'widget.image': '图片',
            'widget.file': '文件',
        },
    };

    // Same values as /lib/base.css (the widget cannot rely on it: it runs
    // on other sites, inside a shadow root). Contrast ≥ 4.5:1 throughout.
    const CSS = `
:host { all: initial; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
.root {
    --accent: #1a5fb4; --accent-hover: #154d93; --fg: #1f2328;
    --muted: #57606a; --surface: #fff; --subtle: #eef1f4; --bg: #f6f7f9;
    --border: #d0d7de; --danger: #b42318;
    font-family: system-ui, -apple-system, "Segoe UI", Roboto,
        "Helvetica Neue", Arial, "Noto Sans", "Noto Sans CJK SC",
        "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei", sans-serif;
    font-size: 15px; line-height: 1.45; color: var(--fg);
}
button, textarea { font: inherit; color: inherit; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
.sr { position: absolute; width: 1px; height: 1px; margin: -1px;
    overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.launcher {
    position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
    width: 56px; height: 56px; border-radius: 50%; border: 0;
    background: var(--accent); color: #fff; cursor: pointer;
    display: flex; align-items: center; justify-content: center;
    box-shadow: 0 4px 14px rgba(31,35,40,.25);
}
.launcher:hover { background: var(--accent-hover); }
.launcher:focus-visible { outline: 3px solid var(--fg); outline-offset: 3px; }
.launcher svg { width: 26px; height: 26px; }
.launcher .i-close { display: none; }
.launcher[aria-expanded="true"] .i-chat { display: none; }
.launcher[aria-expanded="true"] .i-close { display: block; }
.badge {
    position: absolute; top: -4px; right: -4px; min-width: 22px;
    height: 22px; padding: 0 6px; border-radius: 11px; background: var(--danger);
    color: #fff; font-size: 12px; font-weight: 600; line-height: 22px;
    text-align: center; border: 2px solid #fff;
}
.panel {
    position: fixed; right: 20px; bottom: 88px; z-index: 2147483000;
    width: 370px; height: min(580px, calc(100vh - 108px));
    display: flex; flex-direction: column; background: var(--surface);
    border: 1px solid var(--border); border-radius: 12px; overflow: hidden;
    box-shadow: 0 8px 32px rgba(31,35,40,.18);
}
header {
    flex: none; padding: 12px 14px 10px 16px; background: var(--accent);
    color: #fff;
}
.hrow { display: flex; align-items: center; gap: 8px; }
h2 { flex: 1 1 auto; min-width: 0; margin: 0; font-size: 16px;
    font-weight: 600; overflow: hidden; text-overflow: ellipsis;
    white-space: nowrap; }
.hbtn {
    flex: none; min-height: 30px; padding: 2px 10px; border-radius: 6px;
    border: 1px solid rgba(255,255,255,.6); background: transparent;
    color: #fff; font-size: 13px; cursor: pointer;
}
.hbtn:hover:not(:disabled) { background: rgba(255,255,255,.14); }
.hbtn:disabled { opacity: .55; cursor: default; }
.hbtn:focus-visible { outline-color: #fff; }
.status { display: flex; align-items: center; gap: 6px; margin-top: 4px;
    font-size: 13px; color: #fff; min-height: 19px; }
.dot { flex: none; width: 8px; height: 8px; border-radius: 50%;
    background: #c9d1d9; }
.status[data-state="active"] .dot { background: #6ee7a0; }
.status[data-state="queued"] .dot { background: #ffd166; }
.status[data-state="new"] .dot { background: #fff; }
.status b { font-weight: 600; }
.banner {
    flex: none; padding: 8px 16px; background: #fff4d6; color: #6e4b00;
    font-size: 13px; border-bottom: 1px solid #f0dca0;
}
.banner.stopped { background: #fdecea; color: var(--danger); }
.log {
    flex: 1 1 auto; overflow-y: auto; padding: 12px 12px 4px;
    background: var(--bg); overscroll-behavior: contain;
}
.m { display: flex; flex-direction: column; align-items: flex-start;
    margin: 0 0 10px; }
.m[data-from="visitor"] { align-items: flex-end; }
.bubble {
    max-width: 82%; padding: 8px 12px; border-radius: 14px;
    border-bottom-left-radius: 4px; background: var(--surface);
    border: 1px solid var(--border); white-space: pre-wrap;
    overflow-wrap: anywhere;
}
.m[data-from="visitor"] .bubble { background: var(--accent); color: #fff;
    border-color: var(--accent); border-radius: 14px;
    border-bottom-right-radius: 4px; }
.m[data-from="visitor"] .bubble a { color: #fff; }
.meta { display: flex; align-items: center; gap: 4px; margin-top: 3px;
    padding: 0 4px; font-size: 12px; color: var(--muted); }
.tick { display: inline-flex; width: 18px; height: 12px; }
.tick svg { width: 18px; height: 12px; }
.m[data-state="read"] .tick { color: var(--accent); }
.m[data-state="failed"] .meta { color: var(--danger); }
.m[data-from="system"] { align-items: center; }
.m[data-from="system"] .sys { max-width: 90%; padding: 2px 10px;
    font-size: 12.5px; color: var(--muted); text-align: center; }
.m.divider { flex-direction: row; gap: 8px; align-items: center; }
.m.divider::before, .m.divider::after { content: ""; flex: 1;
    border-top: 1px solid var(--border); }
.m.old .bubble, .m.old[data-from="visitor"] .bubble { background: var(--bg);
    color: var(--muted); border-color: var(--border); }
.m.old .tick { color: var(--muted); }
.typing { flex: none; padding: 2px 16px 6px; font-size: 12.5px;
    color: var(--muted); background: var(--bg); }
.compose { flex: none; display: flex; align-items: flex-end; gap: 8px;
    padding: 10px 12px; border-top: 1px solid var(--border);
    background: var(--surface); }
textarea {
    flex: 1 1 auto; min-width: 0; min-height: 40px; max-height: 120px;
    resize: none; padding: 9px 12px; border: 1px solid var(--border);
    border-radius: 8px; background: var(--surface); line-height: 1.4;
}
textarea:focus-visible { outline-offset: 0; border-color: var(--accent); }
textarea::placeholder { color: var(--muted); opacity: 1; }
.send {
    flex: none; height: 40px; padding: 0 16px; border: 0; border-radius: 8px;
    background: var(--accent); color: #fff; font-weight: 600; cursor: pointer;
}
.send:hover:not(:disabled) { background: var(--accent-hover); }
.send:disabled { opacity: .55; cursor: default; }
@media (max-width: 480px) {
    .panel { inset: 0; width: 100%; height: 100%; border: 0;
        border-radius: 0; }
    .launcher[aria-expanded="true"] { top: 8px; right: 8px; bottom: auto;
        width: 40px; height: 40px; box-shadow: none;
        border: 1px solid rgba(255,255,255,.6); }
    .launcher[aria-expanded="true"] svg { width: 20px; height: 20px; }
    header { padding-right: 56px; }
    .bubble { max-width: 88%; }
}
@media (prefers-reduced-motion: no-preference) {
    .panel:not([hidden]) { animation: rise .16s ease-out; }
    @keyframes rise { from { opacity: 0; transform: translateY(8px); } }
}`;

    // Icons are fixed markup (no data), built once.
    const ICON_CHAT = '<svg class="i-chat" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round"><path d="M4 5h16v11H9l-5 4z"/></svg>';
    const ICON_CLOSE = '<svg class="i-close" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"><path d="M6 6l12 12M18 6L6 18"/></svg>';
    const TICKS = {
        sending: '<svg viewBox="0 0 18 12" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="1.4"><circle cx="9" cy="6" r="4.5"/><path d="M9 3.5V6l1.8 1.2"/></svg>',
        sent: '<svg viewBox="0 0 18 12" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round"><path d="M3 6.5l3 3 7-7"/></svg>',
        read: '<svg viewBox="0 0 18 12" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round"><path d="M1 6.5l3 3 7-7M7.5 9.5l7-7"/></svg>',
        failed: '<svg viewBox="0 0 18 12" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round"><circle cx="9" cy="6" r="4.5"/><path d="M9 3.5v3M9 8.6v.1"/></svg>',
    };

    function start(ChatClient, i18n) {
        const { t } = i18n;
        i18n.addMessages(STRINGS);
        if (cfg.lang === 'zh' || cfg.lang === 'en')
            i18n.setLang(cfg.lang);

        // ---- stored visitor state ------------------------------------------
        const KEY = 'chatcore.v1.' + cfg.tenant;
        let mem = {};
        try {
            mem = JSON.parse(localStorage.getItem(KEY)) || {};
        } catch { /* unreadable or blocked: start fresh */ }
        if (typeof mem !== 'object')
            mem = {};
        function save(patch) {
            Object.assign(mem, patch);
            try {
                localStorage.setItem(KEY, JSON.stringify(mem));
            } catch { /* kept for this page only */ }
        }

        async function authVisitor(body, bearer) {
            const headers = { 'Content-Type': 'application/json' };
            if (bearer)
                headers.Authorization = 'Bearer ' + bearer;
            const r = await fetch(cfg.base + '/v1/auth/visitor', {
                method: 'POST', headers, body: JSON.stringify(body),
                credentials: 'omit', cache: 'no-store',
            });
            if (!r.ok) {
                const e = new Error('auth ' + r.status);
                e.status = r.status;
                throw e;
            }
            return r.json();
        }

        // The ChatClient's token source. Network failures throw (the
        // client backs off and asks again) and never cost the visitor its
        // identity; only a refusal (401/403) does.
        async function token({ renew }) {
            const now = Date.now() / 1000;
            const left = (mem.expires || 0) - now;
            if (mem.token && mem.visitor && !renew && left > 3600)
                return mem.token;
            if (mem.token && mem.visitor && left > 30) {
                try {
                    const j = await authVisitor(
                        { tenant: cfg.tenant, visitor: mem.visitor }, mem.token);
                    if (j.visitor === mem.visitor) {
                        save({ token: j.token, expires: j.expires });
                        return j.token;
                    }
                } catch (e) {
                    if (e.status !== 401 && e.status !== 403)
                        throw e;
                }
            }
            const j = await authVisitor({ tenant: cfg.tenant });
            save({ visitor: j.visitor, token: j.token, expires: j.expires,
                session: null, last_seq: 0, peer_read: 0 });
            return j.token;
        }

        const c = new ChatClient({
            base: cfg.base,
            token,
            resume: () => (mem.session
                ? { session: mem.session, last_seq: c.lastSeq(mem.session) }
                : null),
        });
        if (mem.session && Number.isSafeInteger(mem.last_seq))
            c.setLastSeq(mem.session, mem.last_seq);

        // ---- view state ----------------------------------------------------
        const st = {
            session: null,      // the current session (from hello/session_started)
            sstate: null,       // its state as the server last told us
            closedView: false,  // ended; stays so until the next queue/accept
            position: null,
            agent: null,        // serving agent id
            agentName: null,
            names: new Map(),   // agent id -> display name
            peerRead: 0,        // highest seq the agent has read
            peerMax: 0,         // highest seq of an agent message
            histMax: 0,         // highest seq of the history listing
            readSent: 0,
            open: false,
            unread: 0,
            everOnline: false,
            retried: false,
            stopped: false,
            synced: new Set(),
            typingOn: false,
            typingTimer: 0,
            peerTypingTimer: 0,
        };

        // ---- DOM -------------------------------------------------------------
        const host = document.createElement('div');
        host.id = 'chatcore-widget';
        const shadow = host.attachShadow({ mode: 'open' });
        const style = document.createElement('style');
        style.textContent = CSS;
        shadow.appendChild(style);
        const root = el('div', 'root');
        shadow.appendChild(root);

        const launcher = el('button', 'launcher', { 'data-testid': 'cc-launcher',
            type: 'button', 'aria-expanded': 'false', 'aria-controls': 'cc-panel' });
        launcher.innerHTML = ICON_CHAT + ICON_CLOSE;
        const badge = el('span', 'badge', { 'aria-hidden': 'true', hidden: '' });
        launcher.appendChild(badge);

        const panel = el('section', 'panel', { 'data-testid': 'cc-panel',
            id: 'cc-panel', role: 'dialog', hidden: '' });
        const header = el('header');
        const hrow = el('div', 'hrow');
        const title = el('h2', '', { id: 'cc-title' });
        const langBtn = el('button', 'hbtn', { 'data-testid': 'cc-lang', type: 'button' });
        const leaveBtn = el('button', 'hbtn', { 'data-testid': 'cc-leave', type: 'button' });
        hrow.append(title, langBtn, leaveBtn);
        const status = el('div', 'status', { 'data-testid': 'cc-status',
            'data-state': 'connecting', role: 'status' });
        header.append(hrow, status);
        const banner = el('div', 'banner', { 'data-testid': 'cc-offline-banner',
            role: 'alert' });
        const log = el('div', 'log', { 'data-testid': 'cc-messages', role: 'log',
            'aria-live': 'polite', 'aria-relevant': 'additions' });
        const typing = el('div', 'typing', { 'data-testid': 'cc-typing',
            'aria-live': 'polite', hidden: '' });
        const form = el('form', 'compose');
        const input = el('textarea', '', { 'data-testid': 'cc-input', rows: '1',
            maxlength: '4000' });
        const sendBtn = el('button', 'send', { 'data-testid': 'cc-send', type: 'submit' });
        form.append(input, sendBtn);
        panel.append(header, log, typing, form);
        root.append(panel, launcher);
        document.body.appendChild(host);

        function el(tag, cls, attrs) {
            const e = document.createElement(tag);
            if (cls)
                e.className = cls;
            for (const [k, v] of Object.entries(attrs || {}))
                e.setAttribute(k, v);
            return e;
        }

        // Text that follows the language: elements remember their key and
        // variables and are filled again on a switch.
        const texts = new Map();
        function tx(node, key, vars) {
            texts.set(node, [key, vars]);
            node.textContent = t(key, vars);
            return node;
        }

        // "{pos}"-style templates whose variables are elements (the test
        // hooks cc-position and cc-agent-name live inside the sentence).
        function fill(node, key, slots) {
            node.textContent = '';
            t(key).split(/\{(\w+)\}/).forEach((part, i) => {
                if (i % 2 === 0) {
                    if (part)
                        node.appendChild(document.createTextNode(part));
                } else if (slots[part]) {
                    node.appendChild(slots[part]);
                }
            });
        }

        const timeFmt = {};
        function timeText(ts) {
            const lang = i18n.getLang();
            timeFmt[lang] = timeFmt[lang] || new Intl.DateTimeFormat(
                lang === 'zh' ? 'zh-CN' : 'en', { hour: 'numeric', minute: '2-digit' });
            return timeFmt[lang].format(new Date(ts || Date.now()));
        }

        function agentLabel(id) {
            return st.names.get(id) || id || t('widget.agent');
        }

        function activeName() {
            return st.agent ? agentLabel(st.agent) : st.agentName || agentLabel(null);
        }

        // Frames name agents by id; the display name comes from the agent's
        // public profile (protocol rule 67), or from an `agent_name` field
        // when the frame carries one. Until then the id is shown.
        const lookups = new Set();
        function learnAgent(id) {
            if (!id || st.names.has(id) || lookups.has(id) || !mem.token)
                return;
            lookups.add(id);
            fetch(cfg.base + '/v1/agents/' + encodeURIComponent(id), {
                headers: { Authorization: 'Bearer ' + mem.token },
                credentials: 'omit', cache: 'no-store',
            })
                .then((r) => (r.ok ? r.json() : null))
                .then((j) => {
                    if (j && typeof j.name === 'string' && j.name)
                        nameAgent(id, j.name);
                })
                .catch(() => { /* keep showing the id */ })
                .finally(() => lookups.delete(id));
        }

        function nameAgent(id, name) {
            if (!id || !name || st.names.get(id) === name)
                return;
            st.names.set(id, name);
            for (const m of log.querySelectorAll('[data-from="agent"]')) {
                if (m.dataset.agent !== id)
                    continue;
                m.querySelector('.who').textContent = name + ': ';
                m.querySelector('.name').textContent = name + ' ·';
            }
            for (const [node, [key, vars]] of texts) {
                if (vars && vars.id === id) {
                    vars.agent = name;
                    node.textContent = t(key, vars);
                }
            }
            renderTyping();
            renderStatus();
        }

        // A reload in an active session whose agent has not written yet:
        // hello does not name the agent, the session resource does. It has
        // no CORS header (rule 64), so this is for same-origin pages only.
        function findServingAgent() {
            if (st.agent || st.sstate !== 'active' || cfg.base !== location.origin)
                return;
            const session = st.session;
            fetch(cfg.base + '/v1/sessions/' + encodeURIComponent(session), {
                headers: { Authorization: 'Bearer ' + mem.token }, cache: 'no-store',
            })
                .then((r) => (r.ok ? r.json() : null))
                .then((j) => {
                    if (j && j.agent && !st.agent && st.session === session) {
                        st.agent = j.agent;
                        learnAgent(j.agent);
                        renderStatus();
                    }
                })
                .catch(() => {});
        }

        // ---- rendering: status, banner, badge --------------------------------
        function viewState() {
            if (st.stopped)
                return 'offline';
            if (c.state !== 'online')
                return st.everOnline || st.retried ? 'reconnecting' : 'connecting';
            if (st.closedView)
                return 'closed';
            return st.sstate || 'connecting';
        }

        // The status line is a live region: rebuild it only when what it
        // says changes, or screen readers repeat it on every frame.
        let statusSig = '';
        function renderStatus() {
            const s = viewState();
            const sig = [s, st.position, activeName(), i18n.getLang()].join('|');
            if (sig !== statusSig) {
                statusSig = sig;
                renderStatusLine(s);
            }
            renderBanner();
        }

        function renderStatusLine(s) {
            status.setAttribute('data-state', s);
            status.textContent = '';
            status.appendChild(el('span', 'dot', { 'aria-hidden': 'true' }));
            const text = el('span');
            status.appendChild(text);
            if (s === 'queued' && st.position) {
                const pos = el('b', '', { 'data-testid': 'cc-position' });
                pos.textContent = String(st.position);
                fill(text, 'widget.st.queued', { pos });
            } else if (s === 'active') {
                const name = el('b', '', { 'data-testid': 'cc-agent-name' });
                name.textContent = activeName();
                fill(text, 'widget.st.active', { agent: name });
            } else {
                text.textContent = t('widget.st.' + (s === 'queued' ? 'waiting' : s));
            }
        }

        function renderBanner() {
            const connected = c.state === 'online';
            const showBanner = !connected && (st.everOnline || st.retried || st.stopped);
            if (showBanner) {
                banner.classList.toggle('stopped', st.stopped);
                const msg = t(st.stopped ? 'widget.bannerStopped' : 'widget.banner');
                if (banner.textContent !== msg)
                    banner.textContent = msg;
                if (!banner.isConnected)
                    panel.insertBefore(banner, log);
            } else if (banner.isConnected) {
                banner.remove();
            }
            leaveBtn.disabled = !connected || !st.session || st.closedView ||
                st.sstate === 'new' || st.sstate === 'closed';
            input.disabled = st.stopped;
            updateSendBtn();
        }

        function updateSendBtn() {
            sendBtn.disabled = st.stopped || !input.value.trim() || !st.session;
        }

        function renderBadge() {
            const n = st.open ? 0 : st.unread;
            badge.hidden = n === 0;
            badge.textContent = n > 99 ? '99+' : String(n);
            launcher.setAttribute('aria-label', st.open ? t('widget.close')
                : n ? t('widget.openUnread', { n }) : t('widget.open'));
        }

        function renderStatic() {
            const lang = i18n.getLang();
            root.setAttribute('lang', lang === 'zh' ? 'zh-CN' : 'en');
            title.textContent = cfg.title || t('widget.title');
            panel.setAttribute('aria-label', cfg.title || t('widget.dialog'));
            log.setAttribute('aria-label', t('widget.messages'));
            langBtn.textContent = t('widget.lang');
            langBtn.setAttribute('aria-label', t('widget.langLabel'));
            langBtn.setAttribute('lang', lang === 'zh' ? 'en' : 'zh-CN');
            leaveBtn.textContent = t('widget.leave');
            leaveBtn.setAttribute('aria-label', t('widget.leaveLabel'));
            input.setAttribute('placeholder', t('widget.input'));
            input.setAttribute('aria-label', t('widget.inputLabel'));
            sendBtn.textContent = t('widget.send');
            for (const [node, [key, vars]] of texts) {
                if (!node.isConnected)
                    texts.delete(node);
                else
                    node.textContent = t(key, vars);
            }
            for (const m of log.querySelectorAll('[data-ts]'))
                m.querySelector('.time').textContent = timeText(+m.dataset.ts);
            for (const m of log.querySelectorAll('[data-from="visitor"]'))
                setMsgState(m, m.getAttribute('data-state'));
            renderTyping();
            renderStatus();
            renderBadge();
        }

        // ---- rendering: messages ---------------------------------------------
        // Order within the current session: by seq; a local system line sorts
        // just after the seq it followed; pending sends (no seq yet) last.
        function sortKey(m) {
            const k = m.dataset.key;
            return k === undefined ? Infinity : +k;
        }

        function place(m) {
            const key = sortKey(m);
            const items = log.children;
            let before = null;
            for (let i = items.length - 1; i >= 0; i--) {
                const x = items[i];
                if (x === m)
                    continue;
                if (x.dataset.session !== st.session || sortKey(x) <= key)
                    break;
                before = x;
            }
            scheduleScroll(m.dataset.from === 'visitor');
            if (before)
                log.insertBefore(m, before);
            else if (m.parentNode !== log || m.nextSibling)
                log.appendChild(m);
        }

        // Follow new messages when the reader is at the bottom (or it is our
        // own). Layout is read once per frame, not per message: a 450-message
        // history would otherwise force a reflow per insertion.
        let scrollPending = false, scrollStick = false;
        function scheduleScroll(force) {
            if (!scrollPending) {
                scrollPending = true;
                scrollStick = log.scrollHeight - log.scrollTop - log.clientHeight < 60;
                requestAnimationFrame(() => {
                    scrollPending = false;
                    if (scrollStick)
                        log.scrollTop = log.scrollHeight;
                });
            }
            if (force)
                scrollStick = true;
        }

        function maxSeqShown() {
            let n = 0;
            for (const m of log.querySelectorAll('[data-seq]'))
                if (m.dataset.session === st.session)
                    n = Math.max(n, +m.dataset.seq);
            return n;
        }

        function systemLine(key, vars, extraClass) {
            const m = el('div', 'm' + (extraClass ? ' ' + extraClass : ''), {
                'data-testid': 'cc-msg', 'data-from': 'system' });
            m.dataset.session = st.session || '';
            m.dataset.key = String(maxSeqShown() + 0.5);
            m.appendChild(tx(el('div', 'sys'), key, vars));
            place(m);
            return m;
        }

        // Messages by "session seq" and "session cid", for merging.
        const bySeq = new Map(), byCid = new Map();
        function index(m) {
            const s = m.dataset.session;
            if (m.dataset.seq)
                bySeq.set(s + ' ' + m.dataset.seq, m);
            if (m.dataset.cid)
                byCid.set(s + ' ' + m.dataset.cid, m);
        }
        function unindex(m) {
            bySeq.delete(m.dataset.session + ' ' + m.dataset.seq);
            byCid.delete(m.dataset.session + ' ' + m.dataset.cid);
        }
        function findMsg(session, seq, cid) {
            return (seq && bySeq.get(session + ' ' + seq)) ||
                (cid && byCid.get(session + ' ' + cid)) || null;
        }

        function bodyNode(kind, body) {
            const b = el('div', 'bubble');
            const text = body && typeof body.text === 'string' ? body.text : '';
            const url = body && typeof body.object_url === 'string' ? body.object_url : '';
            if ((kind === 'image' || kind === 'file') && /^https?:\/\//i.test(url)) {
                const a = el('a', '', { href: url, target: '_blank', rel: 'noopener noreferrer' });
                a.textContent = text || (body.filename ? String(body.filename)
                    : t(kind === 'image' ? 'widget.image' : 'widget.file'));
                b.appendChild(a);
            } else {
                b.textContent = text;
            }
            return b;
        }

        function setMsgState(m, state) {
            m.setAttribute('data-state', state);
            const tick = m.querySelector('.tick');
            if (tick) {
                tick.innerHTML = TICKS[state] || '';
                const sr = el('span', 'sr');
                sr.textContent = t('widget.' + state);
                tick.appendChild(sr);
            }
        }

        function ownMsg(session, cid, kind, body, ts) {
            const m = el('div', 'm', { 'data-testid': 'cc-msg', 'data-from': 'visitor',
                'data-cid': cid });
            m.dataset.session = session;
            m.dataset.ts = String(ts);
            const b = bodyNode(kind, body);
            b.prepend(tx(el('span', 'sr'), 'widget.you'));
            const meta = el('div', 'meta');
            meta.append(el('span', 'time'), el('span', 'tick'));
            meta.firstChild.textContent = timeText(ts);
            m.append(b, meta);
            m._body = { kind, body };
            setMsgState(m, 'sending');
            index(m);
            return m;
        }

        // A stored message (live msg, replay, or history) into the view.
        function showMessage(f, live) {
            const s = f.session;
            if (s !== st.session || !Number.isSafeInteger(f.seq))
                return;
            const mine = f.from === c.user;
            let m = findMsg(s, f.seq, mine ? f.cid : null);
            if (m) {
                if (mine && !m.dataset.seq)
                    settleOwn(m, f.seq, f.ts);
                return;
            }
            if (mine) {
                m = ownMsg(s, f.cid || '', f.kind, f.body, f.ts);
                settleOwn(m, f.seq, f.ts);
                return;
            }
            const from = typeof f.from === 'string' ? f.from : 'system';
            if (from === 'system') {
                const text = f.body && typeof f.body.text === 'string' ? f.body.text : '';
                if (!text)
                    return;
                m = el('div', 'm', { 'data-testid': 'cc-msg', 'data-from': 'system' });
                const sys = el('div', 'sys');
                sys.textContent = text;
                m.appendChild(sys);
            } else if (from.startsWith('agent:')) {
                if (f.kind === 'event' && !(f.body && f.body.text))
                    return;
                const id = from.slice(6);
                if (!st.agent) {
                    st.agent = id;
                    if (st.agentName && !st.names.has(id))
                        st.names.set(id, st.agentName);
                }
                learnAgent(id);
                m = el('div', 'm', { 'data-testid': 'cc-msg', 'data-from': 'agent' });
                m.dataset.agent = id;
                const b = bodyNode(f.kind, f.body);
                const who = el('span', 'sr who');
                who.textContent = agentLabel(id) + ': ';
                b.prepend(who);
                const meta = el('div', 'meta');
                const name = el('span', 'name');
                name.textContent = agentLabel(id) + ' ·';
                meta.append(name, el('span', 'time'));
                meta.lastChild.textContent = timeText(f.ts);
                m.dataset.ts = String(f.ts || Date.now());
                m.append(b, meta);
                st.peerMax = Math.max(st.peerMax, f.seq);
                if (live) {
                    hidePeerTyping();
                    if (!st.open || document.visibilityState !== 'visible') {
                        st.unread++;
                        renderBadge();
                    }
                }
            } else {
                return; // another visitor id: not for this view
            }
            m.setAttribute('data-seq', String(f.seq));
            m.dataset.session = s;
            m.dataset.key = String(f.seq);
            index(m);
            place(m);
            if (live)
                scheduleRead();
        }

        function settleOwn(m, seq, ts) {
            m.setAttribute('data-seq', String(seq));
            m.dataset.key = String(seq);
            index(m);
            if (ts) {
                m.dataset.ts = String(ts);
                m.querySelector('.time').textContent = timeText(ts);
            }
            setMsgState(m, seq <= st.peerRead ? 'read' : 'sent');
            place(m);
        }

        function markRead(upto) {
            for (const m of log.querySelectorAll('[data-from="visitor"][data-seq]'))
                if (m.dataset.session === st.session && +m.dataset.seq <= upto &&
                    m.getAttribute('data-state') !== 'read')
                    setMsgState(m, 'read');
        }

        function persistSeq() {
            if (st.session && mem.session === st.session)
                save({ last_seq: c.lastSeq(st.session), peer_read: st.peerRead });
        }

        // ---- the conversation -------------------------------------------------
        function enterSession(session, state, fresh) {
            const changed = st.session !== session;
            if (st.session && changed) {
                // the ended conversation stays, greyed, above a divider
                const had = [...log.children].some((m) => m.dataset.session === st.session);
                for (const m of log.children)
                    m.classList.add('old');
                st.session = session;
                if (had)
                    systemLine('widget.newChat', null, 'divider');
            }
            st.session = session;
            st.sstate = state;
            if (changed) {
                st.agent = null;
                st.agentName = null;
                st.position = null;
                st.peerMax = 0;
                st.histMax = 0;
                st.readSent = 0;
                st.peerRead = mem.session === session ? mem.peer_read || 0 : 0;
                if (mem.session !== session)
                    save({ session, last_seq: c.lastSeq(session), peer_read: 0 });
            }
            if (fresh)
                st.synced.add(session);
        }

        function sync(session, after) {
            c.request({ type: 'sync', session, after, limit: 200 });
        }

        function onFrame(f) {
            switch (f.type) {
            case 'hello':
                st.everOnline = true;
                enterSession(f.session, f.state, false);
                if (f.agent)
                    st.agent = f.agent;
                if (f.agent_name) {
                    st.agentName = f.agent_name;
                    if (st.agent)
                        nameAgent(st.agent, f.agent_name);
                }
                learnAgent(st.agent);
                if (f.state !== 'closed' && f.state !== 'new')
                    st.closedView = false;
                if (!st.synced.has(f.session)) {
                    st.synced.add(f.session);
                    sync(f.session, 0);
                }
                maybeRead();
                break;
            case 'history':
                if (f.session !== st.session)
                    break;
                for (const m of f.messages || []) {
                    showMessage(Object.assign({ session: f.session }, m), false);
                    if (m.seq > st.histMax)
                        st.histMax = m.seq;
                }
                if (f.more && f.messages && f.messages.length) {
                    sync(f.session, f.messages[f.messages.length - 1].seq);
                } else {
                    // a complete listing: nothing at or below its end is
                    // missing (live seqs above it may still have gaps)
                    c.setLastSeq(f.session, st.histMax);
                    markRead(st.peerRead);
                    persistSeq();
                    maybeRead();
                    findServingAgent();
                }
                break;
            case 'queued':
                if (f.session !== st.session)
                    break;
                st.sstate = 'queued';
                st.closedView = false;
                st.position = f.position;
                break;
            case 'session_accepted':
                if (f.session !== st.session)
                    break;
                st.sstate = 'active';
                st.closedView = false;
                st.agent = f.agent;
                st.agentName = f.agent_name || null;
                nameAgent(f.agent, f.agent_name);
                learnAgent(f.agent);
                systemLine('widget.joined', { agent: agentLabel(f.agent), id: f.agent });
                break;
            case 'session_transferred':
                if (f.session !== st.session)
                    break;
                hidePeerTyping();
                if (f.to) {
                    st.sstate = 'active';
                    st.agent = f.to;
                    st.agentName = f.to_name || null;
                    nameAgent(f.to, f.to_name);
                    learnAgent(f.to);
                    systemLine('widget.transferred', { agent: agentLabel(f.to), id: f.to });
                } else {
                    st.sstate = 'queued';
                    st.agent = null;
                    st.agentName = null;
                    systemLine('widget.requeued');
                }
                break;
            case 'session_closed': {
                if (f.session !== st.session)
                    break;
                st.sstate = 'closed';
                st.closedView = true;
                st.position = null;
                hidePeerTyping();
                const by = String(f.by || '');
                const key = by === c.user ? 'widget.endedYou'
                    : by.startsWith('agent:') ? 'widget.endedAgent' : 'widget.endedSystem';
                if (f.reason && by !== c.user)
                    systemLine('widget.reason', { text: t(key), reason: f.reason });
                else
                    systemLine(key);
                break;
            }
            case 'session_started':
                enterSession(f.session, f.state, true);
                persistSeq();
                break;
            case 'typing':
                if (f.session === st.session && String(f.who).startsWith('agent:')) {
                    if (f.on)
                        showPeerTyping(String(f.who).slice(6));
                    else
                        hidePeerTyping();
                }
                break;
            case 'read':
                if (f.session === st.session && String(f.who).startsWith('agent:') &&
                    Number.isSafeInteger(f.seq) && f.seq > st.peerRead) {
                    st.peerRead = f.seq;
                    markRead(f.seq);
                    persistSeq();
                }
                break;
            default:
                return;
            }
            renderStatus();
        }

        let typingWho = null;
        function showPeerTyping(id) {
            typingWho = id;
            renderTyping();
            typing.hidden = false;
            // an `off` lost with a dropped connection must not leave it on
            clearTimeout(st.peerTypingTimer);
            st.peerTypingTimer = setTimeout(hidePeerTyping, 15000);
        }
        function hidePeerTyping() {
            clearTimeout(st.peerTypingTimer);
            typing.hidden = true;
        }
        function renderTyping() {
            typing.textContent = t('widget.typing', {
                agent: typingWho ? agentLabel(typingWho) : t('widget.agent') });
        }

        // ---- outgoing ---------------------------------------------------------
        // One `read` for a burst of messages (a replay after reconnect).
        let readTimer = 0;
        function scheduleRead() {
            if (!readTimer)
                readTimer = setTimeout(() => {
                    readTimer = 0;
                    maybeRead();
                }, 100);
        }

        function maybeRead() {
            if (!st.open || document.visibilityState !== 'visible' ||
                c.state !== 'online' || !st.session || st.peerMax <= st.readSent)
                return;
            st.readSent = st.peerMax;
            c.request({ type: 'read', session: st.session, seq: st.peerMax });
        }

        function typingOff() {
            clearTimeout(st.typingTimer);
            if (!st.typingOn)
                return;
            st.typingOn = false;
            if (c.state === 'online' && st.session)
                c.request({ type: 'typing', session: st.session, on: false });
        }

        function onInput() {
            updateSendBtn();
            input.style.height = 'auto';
            input.style.height = Math.min(input.scrollHeight + 2, 120) + 'px';
            if (!input.value.trim()) {
                typingOff();
                return;
            }
            if (!st.typingOn && c.state === 'online' && st.session) {
                st.typingOn = true;
                c.request({ type: 'typing', session: st.session, on: true });
            }
            clearTimeout(st.typingTimer);
            st.typingTimer = setTimeout(typingOff, 3000);
        }

        function sendText() {
            const text = input.value.trim();
            if (!text || !st.session || st.stopped)
                return;
            typingOff();
            c.send(st.session, 'text', { text });
            input.value = '';
            onInput();
            input.focus();
        }

        c.addEventListener('sending', (e) => {
            const d = e.detail;
            const m = ownMsg(d.session, d.cid, d.kind, d.body, Date.now());
            place(m);
        });
        c.addEventListener('sent', (e) => {
            const f = e.detail;
            const m = findMsg(f.session, 0, f.cid);
            if (m)
                settleOwn(m, f.seq, f.ts);
            persistSeq();
        });
        c.addEventListener('send-error', (e) => {
            const f = e.detail;
            let m = null;
            for (const x of byCid.values())
                if (x.dataset.cid === f.ref)
                    m = x;
            if (!m)
                return;
            const gone = ['invalid_state', 'not_found', 'not_in_session'].includes(f.code);
            if (gone && m.dataset.session !== st.session && st.session && !m._resent) {
                // its session ended while we were away: the text goes to the
                // current one instead of being lost
                const b = m._body;
                unindex(m);
                m.remove();
                const cid = c.send(st.session, b.kind, b.body);
                const n = findMsg(st.session, 0, cid);
                if (n)
                    n._resent = true;
                return;
            }
            setMsgState(m, 'failed');
        });
        c.addEventListener('msg', (e) => {
            showMessage(e.detail, true);
            persistSeq();
        });
        c.addEventListener('frame', (e) => onFrame(e.detail));
        let closing = false;
        window.addEventListener('pagehide', () => { closing = true; });
        c.addEventListener('state', (e) => {
            if (e.detail === 'reconnecting')
                st.retried = true;
            if (e.detail === 'stopped' && !closing)
                st.stopped = true;
            if (e.detail !== 'online') {
                st.typingOn = false;
                hidePeerTyping();
            }
            renderStatus();
        });

        // ---- panel ---------------------------------------------------------
        function setOpen(open, focus) {
            st.open = open;
            panel.hidden = !open;
            launcher.setAttribute('aria-expanded', String(open));
            if (open) {
                st.unread = 0;
                log.scrollTop = log.scrollHeight;
                if (focus)
                    input.focus();
                maybeRead();
            } else {
                typingOff();
            }
            renderBadge();
        }

        launcher.addEventListener('click', () => setOpen(!st.open, true));
        root.addEventListener('keydown', (e) => {
            if (e.key === 'Escape' && st.open) {
                e.stopPropagation();
                setOpen(false);
                launcher.focus();
            }
        });
        input.addEventListener('input', onInput);
        input.addEventListener('keydown', (e) => {
            // IME composition (pinyin) uses Enter to commit: not a send
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
                e.preventDefault();
                sendText();
            }
        });
        form.addEventListener('submit', (e) => {
            e.preventDefault();
            sendText();
        });
        langBtn.addEventListener('click', () => i18n.toggleLang());
        leaveBtn.addEventListener('click', () => {
            if (st.session && c.state === 'online')
                c.request({ type: 'close', session: st.session, reason: 'visitor left' });
            // the button turns disabled; keep focus somewhere useful
            input.focus();
        });
        document.addEventListener('visibilitychange', maybeRead);
        i18n.onLangChange(renderStatic);

        renderStatic();
        if (cfg.open)
            setOpen(true, false);
        c.connect();
    }
})();

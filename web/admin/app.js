// web/admin/app.js - the chatcore admin console (/admin).
//
// Signs in with a bearer credential - the server's admin key or a tenant
// admin token (a JWT with role "admin", which sees only its own tenant) -
// checked with GET /v1/tenants and kept in sessionStorage, so it is gone
// when the tab closes. Then: tenants (list, create, settings saved as a
// JSON merge patch of the changed fields only, secret rotation, delete),
// the selected tenant's agents (list, create, edit, delete) and live
// metrics (metrics.js) polled from GET /metrics every 2 s. It speaks only
// the HTTP API of PROTOCOL.md §7; every control the tests touch has the
// data-testid of docs/web.md. User and server text goes in with
// textContent only.

import { t, translate, toggleLang, getLang, onLangChange, bindDocumentLang }
    from '/lib/i18n.js';
import '/admin/strings.js';
import { parseMetrics, snapshot, MetricHistory, Chart, formatValue }
    from '/admin/metrics.js';

const KEY_STORE = 'chatcore.admin.key';
const POLL_MS = 2000;
const CONFIRM_MS = 8000;
// PROTOCOL.md conventions: ids are 1 to 64 characters from [A-Za-z0-9_.:-]
const ID_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

const $ = (id) => document.getElementById(id);

const state = {
    key: null,          // the bearer credential
    tenantScope: null,  // tid of a tenant admin token, null for the admin key
    tenants: [],
    selected: null,     // tid
    tenant: null,       // the selected tenant as last read from the server
    agents: [],
    editing: null,      // aid whose edit form is open
    secret: null,       // {tid, value, kind: 'created'|'rotated'}
    pollTimer: 0,
    polling: false,
    metricsDown: false,
};

const metricHistory = new MetricHistory();
let charts = [];

// ---- HTTP ----

class ApiError extends Error {
    constructor(status, code, message) {
        super(message || code || `HTTP ${status}`);
        this.status = status;
        this.code = code || '';
        this.serverMessage = message || '';
    }
}

async function api(method, path, body, key = state.key) {
    const headers = { Authorization: `Bearer ${key}` };
    if (body !== undefined)
        headers['Content-Type'] = 'application/json';
    let res;
    try {
        res = await fetch(path, {
            method, headers, cache: 'no-store',
            body: body === undefined ? undefined : JSON.stringify(body),
        });
    } catch {
        throw new ApiError(0, 'network', '');
    }
    const text = await res.text();
    let data = null;
    try {
        data = text ? JSON.parse(text) : null;
    } catch { /* not JSON: only the status speaks */ }
    if (!res.ok) {
        const err = new ApiError(res.status, data && data.error,
            data && typeof data.message === 'string' ? data.message : '');
        // a credential refused mid-session (rotated key, deleted tenant)
        if (res.status === 401 && key === state.key && state.key)
            signOut(t('login.expired'));
        throw err;
    }
    return data;
}

// The words for a failed call: the server's own message verbatim when it
// sent one, otherwise the status.
function errorText(err) {
    if (err.status === 0)
        return t('err.network');
    if (err.serverMessage)
        return t('err.server') + err.serverMessage;
    return t('err.status', { status: err.status });
}

function showError(el, text) {
    el.textContent = text || '';
    el.hidden = !text;
}

// The checks both create forms make before a PUT: a valid id, not one
// that exists (PUT would replace it, resetting its settings: never do that
// from a form that says "create"), and a name. Returns {id, name} or null
// after showing the error and focusing the field.
function checkNew(errEl, idEl, nameEl, existing, existsKey) {
    showError(errEl, '');
    const id = idEl.value.trim();
    const name = nameEl.value.trim();
    if (!ID_RE.test(id)) {
        showError(errEl, t('field.id.bad'));
        idEl.setAttribute('aria-invalid', 'true');
        idEl.focus();
        return null;
    }
    idEl.removeAttribute('aria-invalid');
    if (existing.some((x) => x.id === id)) {
        showError(errEl, t(existsKey));
        idEl.focus();
        return null;
    }
    if (!name) {
        showError(errEl, t('field.name.empty'));
        nameEl.focus();
        return null;
    }
    return { id, name };
}

function announce(text) {
    // re-set so the same words are announced again
    const el = $('announce');
    el.textContent = '';
    setTimeout(() => { el.textContent = text; }, 30);
}

const tidPath = (tid) => `/v1/tenants/${encodeURIComponent(tid)}`;
const aidPath = (tid, aid) => `${tidPath(tid)}/agents/${encodeURIComponent(aid)}`;

// ---- sign-in ----

// The tenant of a tenant admin token, read from its (unverified) payload
// only to shape the page; the server checks the signature on every call.
function tokenTenant(key) {
    const parts = key.split('.');
    if (parts.length !== 3)
        return null;
    try {
        const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
        const json = new TextDecoder().decode(
            Uint8Array.from(atob(b64 + '==='.slice((b64.length + 3) % 4)),
                (c) => c.charCodeAt(0)));
        const claims = JSON.parse(json);
        return claims && claims.role === 'admin' && typeof claims.tid === 'string'
            ? claims.tid : null;
    } catch {
        return null;
    }
}

async function signIn(key, fromStore) {
    const btn = $('admin-login');
    const errEl = $('admin-error');
    showError(errEl, '');
    if (!key) {
        showError(errEl, t('login.empty'));
        $('admin-key').focus();
        return;
    }
    btn.disabled = true;
    btn.textContent = t('login.checking');
    try {
        const data = await api('GET', '/v1/tenants', undefined, key);
        state.key = key;
        state.tenantScope = tokenTenant(key);
        try {
            sessionStorage.setItem(KEY_STORE, key);
        } catch { /* storage blocked: signed in for this page only */ }
        state.tenants = sortTenants(data && data.tenants);
        $('admin-key').value = '';
        showConsole();
    } catch (err) {
        let msg;
        if (err.status === 401)
            msg = t('login.401');
        else if (err.status === 403)
            msg = t('login.403');
        else
            msg = errorText(err);
        if ((err.status === 401 || err.status === 403) && err.serverMessage)
            msg += ` ${t('err.server')}${err.serverMessage}`;
        showError(errEl, msg);
        if (fromStore) {
            try {
                sessionStorage.removeItem(KEY_STORE);
            } catch { /* nothing kept anyway */ }
        }
        $('admin-key').focus();
    } finally {
        btn.disabled = false;
        btn.textContent = t('login.submit');
    }
}

function signOut(message) {
    state.key = null;
    state.tenantScope = null;
    state.tenants = [];
    state.selected = null;
    state.tenant = null;
    state.agents = [];
    state.secret = null;
    try {
        sessionStorage.removeItem(KEY_STORE);
    } catch { /* nothing kept */ }
    stopPolling();
    metricHistory.clear();
    $('console-view').hidden = true;
    $('login-view').hidden = false;
    $('logout').hidden = true;
    $('who').hidden = true;
    showError($('admin-error'), message || '');
    if (location.hash)
        setHash('');
    $('admin-key').focus();
}

function setHash(hash) {
    window.history.replaceState(null, '', location.pathname + location.search + hash);
}

function showConsole() {
    $('login-view').hidden = true;
    $('console-view').hidden = false;
    $('logout').hidden = false;
    renderWho();
    $('tenant-create-form').hidden = !!state.tenantScope;
    renderTenants();
    startPolling();
    // the sign-in form just vanished from under the focus
    $('main').focus({ preventScroll: true });
    // reopen the tenant named in the URL, or a tenant admin's only tenant
    const want = decodeURIComponent((location.hash.match(/^#tenant=(.+)$/) || [])[1] || '');
    const pick = state.tenants.find((x) => x.id === want) ||
        (state.tenantScope && state.tenants.find((x) => x.id === state.tenantScope));
    if (pick)
        selectTenant(pick.id, false);
    else
        renderDetail();
}

function renderWho() {
    const el = $('who');
    el.hidden = !state.key;
    el.textContent = state.tenantScope
        ? t('who.tenant', { tid: state.tenantScope }) : t('who.admin');
}

// ---- tenants ----

function sortTenants(list) {
    return (Array.isArray(list) ? list : []).slice()
        .sort((a, b) => String(a.id).localeCompare(String(b.id)));
}

async function reloadTenants() {
    try {
        const data = await api('GET', '/v1/tenants');
        state.tenants = sortTenants(data && data.tenants);
        renderTenants();
    } catch { /* the list stays as it was; actions show their own errors */ }
}

function renderTenants() {
    const ul = $('tenant-list');
    ul.replaceChildren();
    for (const tn of state.tenants) {
        const li = document.createElement('li');
        li.dataset.testid = 'tenant-item';
        li.dataset.tenant = tn.id;
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'item-btn';
        b.setAttribute('aria-label', t('tenant.select', { tid: tn.id }) +
            (tn.name ? ` (${tn.name})` : ''));
        if (tn.id === state.selected) {
            li.classList.add('selected');
            b.setAttribute('aria-current', 'true');
        }
        const name = document.createElement('span');
        name.className = 'item-name';
        name.textContent = tn.name || tn.id;
        const id = document.createElement('span');
        id.className = 'item-id';
        id.textContent = tn.id;
        b.append(name, id);
        b.addEventListener('click', () => selectTenant(tn.id, true));
        li.append(b);
        ul.append(li);
    }
    $('tenant-empty').hidden = state.tenants.length > 0;
}

async function createTenant(e) {
    e.preventDefault();
    const errEl = $('tenant-create-error');
    const idEl = $('tenant-new-id');
    const nameEl = $('tenant-new-name');
    const v = checkNew(errEl, idEl, nameEl, state.tenants, 'tenants.exists');
    if (!v)
        return;
    const { id, name } = v;
    const btn = $('tenant-create');
    btn.disabled = true;
    try {
        const created = await api('PUT', tidPath(id), { name });
        idEl.value = '';
        nameEl.value = '';
        await reloadTenants();
        if (!state.tenants.some((x) => x.id === id) && created) {
            state.tenants = sortTenants([...state.tenants, created]);
            renderTenants();
        }
        const secret = created && typeof created.secret === 'string' ? created.secret : null;
        await selectTenant(id, true);
        if (secret)
            showSecret(id, secret, 'created');
        announce(t('tenants.created', { tid: id }));
    } catch (err) {
        showError(errEl, errorText(err));
    } finally {
        btn.disabled = false;
    }
}

async function selectTenant(tid, focus) {
    if (state.selected !== tid) {
        state.secret = null;  // a secret is shown once, for its tenant only
        state.editing = null;
        state.agents = [];
    }
    state.selected = tid;
    setHash(`#tenant=${encodeURIComponent(tid)}`);
    disarmAll();
    renderTenants();
    showError($('tenant-form-error'), '');
    showError($('tenant-action-error'), '');
    showError($('detail-error'), '');
    $('tenant-saved').hidden = true;
    try {
        const tn = await api('GET', tidPath(tid));
        if (state.selected !== tid)
            return;
        state.tenant = tn;
    } catch (err) {
        if (state.selected !== tid)
            return;
        state.tenant = null;
        renderDetail();
        showError($('detail-error'), errorText(err));
        return;
    }
    fillForm(state.tenant);
    renderDetail();
    drawCharts();  // the queue chart follows the selected tenant
    if (focus)
        $('detail-h').focus();
    await loadAgents();
}

function renderDetail() {
    const has = !!(state.selected && state.tenant);
    $('detail-empty').hidden = has;
    $('detail-body').hidden = !has;
    $('detail-tid').textContent = has ? state.selected : '';
    renderSecret();
    if (has)
        renderUploads(state.tenant);
    renderAgents();
}

// ---- the settings form ----

const formInputs = () => Array.from($('tenant-form').querySelectorAll('[data-key]'));

function getPath(obj, path) {
    return path.split('.').reduce(
        (o, k) => (o && typeof o === 'object' ? o[k] : undefined), obj);
}

function setPath(obj, path, value) {
    const keys = path.split('.');
    let o = obj;
    for (const k of keys.slice(0, -1))
        o = (o[k] = o[k] && typeof o[k] === 'object' ? o[k] : {});
    o[keys[keys.length - 1]] = value;
}

function fillForm(tn) {
    for (const el of formInputs()) {
        const v = getPath(tn, el.dataset.key);
        if (el.type === 'checkbox')
            el.checked = !!v;
        else
            el.value = v === null || v === undefined ? '' : String(v);
        el.removeAttribute('aria-invalid');
    }
    $('tenant-webhook-secret').value = '';
}

function labelOf(el) {
    const l = document.querySelector(`label[for="${el.id}"]`);
    return l ? l.textContent.trim() : el.dataset.key;
}

// The merge patch (RFC 7396) of what differs from the tenant as loaded;
// throws {el, message} for a field that is not even a number.
function buildPatch() {
    const tn = state.tenant;
    const patch = {};
    for (const el of formInputs()) {
        const key = el.dataset.key;
        const old = getPath(tn, key);
        let v;
        if (el.type === 'checkbox') {
            v = el.checked;
        } else if (el.dataset.num) {
            const raw = el.value.trim();
            if (raw === '' || (el.validity && el.validity.badInput) ||
                !Number.isFinite(Number(raw)))
                throw { el, message: t('field.not_number', { field: labelOf(el) }) };
            v = Number(raw);
            if (el.dataset.num === 'int' && !Number.isInteger(v))
                throw { el, message: t('field.not_integer', { field: labelOf(el) }) };
        } else if (key === 'webhook.url') {
            v = el.value.trim() === '' ? null : el.value.trim();
        } else {
            v = el.value.trim();
        }
        if (v !== (old === undefined ? null : old))
            setPath(patch, key, v);
    }
    const ws = $('tenant-webhook-secret').value;
    if (ws !== '')
        setPath(patch, 'webhook.secret', ws);
    return patch;
}

async function saveTenant(e) {
    e.preventDefault();
    if (!state.tenant)
        return;
    const errEl = $('tenant-form-error');
    const saved = $('tenant-saved');
    showError(errEl, '');
    saved.hidden = true;
    for (const el of formInputs())
        el.removeAttribute('aria-invalid');
    let patch;
    try {
        patch = buildPatch();
    } catch (bad) {
        if (!bad || !bad.el)
            throw bad;
        bad.el.setAttribute('aria-invalid', 'true');
        showError(errEl, bad.message);
        bad.el.focus();
        return;
    }
    if (Object.keys(patch).length === 0) {
        saved.textContent = t('settings.unchanged');
        saved.hidden = false;
        return;
    }
    const tid = state.selected;
    const btn = $('tenant-save');
    btn.disabled = true;
    try {
        const tn = await api('PATCH', tidPath(tid), patch);
        if (state.selected !== tid)
            return;
        state.tenant = tn;
        fillForm(tn);
        renderUploads(tn);
        const i = state.tenants.findIndex((x) => x.id === tid);
        if (i >= 0) {
            state.tenants[i] = tn;
            renderTenants();
        }
        saved.textContent = t('settings.saved');
        saved.hidden = false;
    } catch (err) {
        showError(errEl, errorText(err));
        // point at the field the server named ("rate_limits.burst: ...")
        const m = /^([a-z_.]+):/.exec(err.serverMessage || '');
        const el = m && formInputs().find((x) => x.dataset.key === m[1]);
        if (el)
            el.setAttribute('aria-invalid', 'true');
    } finally {
        btn.disabled = false;
    }
}

function formatBytes(n) {
    if (typeof n !== 'number')
        return '';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n, u = 0;
    while (v >= 1024 && u < units.length - 1 && v % 1024 === 0) {
        v /= 1024;
        u++;
    }
    return `${v} ${units[u]}`;
}

function renderUploads(tn) {
    const up = (tn && tn.uploads) || {};
    $('up-max').textContent = formatBytes(up.max_bytes);
    $('up-mime').textContent = Array.isArray(up.allowed_mime) && up.allowed_mime.length
        ? up.allowed_mime.join(', ') : t('uploads.none');
    $('up-rate').textContent = up.presign_per_min === undefined
        ? '' : String(up.presign_per_min);
}

// ---- the secret ----

function showSecret(tid, value, kind) {
    state.secret = { tid, value, kind };
    renderSecret();
    $('secret-copy').focus();
}

function renderSecret() {
    const s = state.secret && state.secret.tid === state.selected ? state.secret : null;
    $('secret-box').hidden = !s;
    $('secret-copied').textContent = '';
    if (!s) {
        $('tenant-secret').textContent = '';
        return;
    }
    $('tenant-secret').textContent = s.value;
    $('secret-title').textContent = t(`secret.title.${s.kind}`, { tid: s.tid });
    $('secret-note').textContent = t(`secret.note.${s.kind}`);
}

async function copySecret() {
    const value = $('tenant-secret').textContent;
    let ok = false;
    try {
        await navigator.clipboard.writeText(value);
        ok = true;
    } catch {
        // plain http on a LAN address has no async clipboard: copy the
        // selected text the old way
        const range = document.createRange();
        range.selectNodeContents($('tenant-secret'));
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        try {
            ok = document.execCommand('copy');
        } catch {
            ok = false;
        }
    }
    $('secret-copied').textContent = t(ok ? 'secret.copied' : 'secret.copy_failed');
}

async function rotateSecret() {
    const tid = state.selected;
    if (!tid)
        return;
    const errEl = $('tenant-action-error');
    showError(errEl, '');
    const btn = $('tenant-rotate');
    btn.disabled = true;
    try {
        const res = await api('POST', `${tidPath(tid)}/secret`);
        if (state.selected === tid && res && typeof res.secret === 'string')
            showSecret(tid, res.secret, 'rotated');
    } catch (err) {
        showError(errEl, errorText(err));
    } finally {
        btn.disabled = false;
    }
}

// ---- delete with a confirm step ----
//
// The delete button arms itself on the first click (data-armed="true",
// its text asks for a second click, a Cancel appears) and deletes on the
// second; it disarms after a few seconds, on Escape or on Cancel. No modal
// dialog: the question sits where the pointer and the focus already are.

const armed = new Map(); // button -> {timer, restore}

function arm(btn, text, explain, cancelBtn) {
    disarmAll();
    const restore = { text: btn.textContent, label: btn.getAttribute('aria-label') };
    btn.dataset.armed = 'true';
    btn.textContent = text;
    btn.removeAttribute('aria-label');
    if (cancelBtn)
        cancelBtn.hidden = false;
    announce(explain);
    const timer = setTimeout(() => disarm(btn), CONFIRM_MS);
    armed.set(btn, { timer, restore, cancelBtn });
}

function disarm(btn) {
    const a = armed.get(btn);
    if (!a)
        return;
    clearTimeout(a.timer);
    armed.delete(btn);
    if (!btn.isConnected)
        return;
    btn.dataset.armed = 'false';
    btn.textContent = a.restore.text;
    if (a.restore.label)
        btn.setAttribute('aria-label', a.restore.label);
    if (a.cancelBtn)
        a.cancelBtn.hidden = true;
}

function disarmAll() {
    for (const b of Array.from(armed.keys()))
        disarm(b);
}

async function deleteTenant() {
    const btn = $('tenant-delete');
    const tid = state.selected;
    if (!tid)
        return;
    if (btn.dataset.armed !== 'true') {
        arm(btn, t('tenant.delete.confirm', { tid }),
            t('tenant.delete.armed', { tid }), $('tenant-delete-cancel'));
        return;
    }
    disarm(btn);
    const errEl = $('tenant-action-error');
    showError(errEl, '');
    btn.disabled = true;
    try {
        await api('DELETE', tidPath(tid));
        state.selected = null;
        state.tenant = null;
        state.agents = [];
        state.secret = null;
        setHash('');
        await reloadTenants();
        state.tenants = state.tenants.filter((x) => x.id !== tid);
        renderTenants();
        renderDetail();
        drawCharts();
        announce(t('tenant.deleted', { tid }));
        $('tenants-h').setAttribute('tabindex', '-1');
        $('tenants-h').focus();
    } catch (err) {
        showError(errEl, errorText(err));
    } finally {
        btn.disabled = false;
    }
}

// ---- agents ----

async function loadAgents() {
    const tid = state.selected;
    if (!tid)
        return;
    showError($('agent-list-error'), '');
    try {
        const data = await api('GET', `${tidPath(tid)}/agents`);
        if (state.selected !== tid)
            return;
        state.agents = (data && Array.isArray(data.agents) ? data.agents : [])
            .slice().sort((a, b) => String(a.id).localeCompare(String(b.id)));
    } catch (err) {
        if (state.selected !== tid)
            return;
        state.agents = [];
        showError($('agent-list-error'), errorText(err));
    }
    renderAgents();
}

function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {}))
        e.setAttribute(k, v);
    if (text !== undefined)
        e.textContent = text;
    return e;
}

function renderAgents() {
    const ul = $('agent-list');
    // keep a half-typed edit form across re-renders (language switch)
    const draft = {};
    for (const inp of ul.querySelectorAll('.agent-edit input'))
        draft[inp.name] = inp.value;
    disarmAll();
    ul.replaceChildren();
    for (const ag of state.agents)
        ul.append(agentItem(ag, draft));
    $('agent-empty').hidden = state.agents.length > 0 || !state.selected;
}

function agentLi(aid) {
    return $('agent-list').querySelector(`li[data-agent="${CSS.escape(aid)}"]`);
}

function agentItem(ag, draft) {
    const li = el('li', { 'data-testid': 'agent-item', 'data-agent': ag.id, class: 'agent' });
    const row = el('div', { class: 'agent-row' });
    const info = el('div', { class: 'agent-info' });
    info.append(el('span', { class: 'item-name' }, ag.name || ag.id),
        el('span', { class: 'item-id' }, ag.id),
        el('span', { class: 'item-meta' }, typeof ag.capacity === 'number'
            ? t('agent.capacity', { n: ag.capacity }) : t('agent.capacity.default')));
    const acts = el('div', { class: 'agent-actions' });
    const edit = el('button', {
        type: 'button', class: 'cc-btn cc-small', 'data-testid': 'agent-edit',
        'aria-label': t('agent.edit.label', { aid: ag.id }),
        'aria-expanded': String(state.editing === ag.id),
    }, t('agent.edit'));
    edit.addEventListener('click', () => {
        state.editing = state.editing === ag.id ? null : ag.id;
        renderAgents();
        const first = agentLi(ag.id)?.querySelector('.agent-edit input');
        if (first)
            first.focus();
    });
    const del = el('button', {
        type: 'button', class: 'cc-btn cc-small cc-danger', 'data-testid': 'agent-delete',
        'aria-label': t('agent.delete.label', { aid: ag.id }),
    }, t('agent.delete'));
    const cancel = el('button', {
        type: 'button', class: 'cc-btn cc-small ghost', 'data-testid': 'agent-delete-cancel',
        hidden: '',
    }, t('cancel'));
    cancel.addEventListener('click', () => {
        disarm(del);
        del.focus();
    });
    del.addEventListener('click', () => deleteAgent(ag.id, del, cancel, li));
    acts.append(edit, del, cancel);
    row.append(info, acts);
    li.append(row);
    const err = el('p', { class: 'error', role: 'alert', hidden: '' });
    if (state.editing === ag.id)
        li.append(agentEditForm(ag, draft, err));
    li.append(err);
    return li;
}

function agentEditForm(ag, draft, errEl) {
    const f = el('form', { class: 'agent-edit', novalidate: '' });
    const uid = `ae-${ag.id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const field = (name, label, attrs, value, hint) => {
        const d = el('div', { class: 'field' });
        const id = `${uid}-${name}`;
        d.append(el('label', { for: id }, label));
        const inp = el('input', { id, name, ...attrs });
        inp.value = draft[name] !== undefined ? draft[name] : value;
        if (hint) {
            inp.setAttribute('aria-describedby', `${id}-h`);
            d.append(inp, el('p', { class: 'hint', id: `${id}-h` }, hint));
        } else {
            d.append(inp);
        }
        return d;
    };
    const grid = el('div', { class: 'grid' });
    grid.append(
        field('name', t('field.name'), {
            'data-testid': 'agent-edit-name', maxlength: '200', autocomplete: 'off',
        }, ag.name || ''),
        field('capacity', t('field.capacity'), {
            'data-testid': 'agent-edit-capacity', type: 'number', inputmode: 'numeric',
            min: '1', step: '1',
        }, typeof ag.capacity === 'number' ? String(ag.capacity) : '',
        t('field.capacity.hint')),
        field('password', t('field.password.new'), {
            'data-testid': 'agent-edit-password', type: 'password',
            autocomplete: 'new-password',
        }, '', t('field.password.keep')));
    const acts = el('div', { class: 'actions' });
    const save = el('button', {
        type: 'submit', class: 'cc-btn cc-primary cc-small', 'data-testid': 'agent-save',
    }, t('agent.save'));
    const cancel = el('button', {
        type: 'button', class: 'cc-btn cc-small ghost', 'data-testid': 'agent-edit-cancel',
    }, t('cancel'));
    cancel.addEventListener('click', () => {
        state.editing = null;
        renderAgents();
        const b = agentLi(ag.id)?.querySelector('[data-testid="agent-edit"]');
        if (b)
            b.focus();
    });
    acts.append(save, cancel);
    f.append(grid, acts);
    f.addEventListener('submit', (e) => saveAgent(e, ag, f, errEl, save));
    return f;
}

async function saveAgent(e, ag, form, errEl, btn) {
    e.preventDefault();
    showError(errEl, '');
    const name = form.elements.name.value.trim();
    const capRaw = form.elements.capacity.value.trim();
    const pw = form.elements.password.value;
    const patch = {};
    if (!name) {
        showError(errEl, t('field.name.empty'));
        form.elements.name.focus();
        return;
    }
    if (name !== ag.name)
        patch.name = name;
    let cap = null;
    if (capRaw !== '' || form.elements.capacity.validity.badInput) {
        cap = Number(capRaw);
        if (capRaw === '' || !Number.isInteger(cap)) {
            showError(errEl, t('field.not_integer', { field: t('field.capacity') }));
            form.elements.capacity.focus();
            return;
        }
    }
    if (cap !== (typeof ag.capacity === 'number' ? ag.capacity : null))
        patch.capacity = cap;
    if (pw !== '')
        patch.password = pw;
    if (Object.keys(patch).length === 0) {
        state.editing = null;
        renderAgents();
        return;
    }
    const tid = state.selected;
    btn.disabled = true;
    try {
        const saved = await api('PATCH', aidPath(tid, ag.id), patch);
        if (state.selected !== tid)
            return;
        state.editing = null;
        const i = state.agents.findIndex((x) => x.id === ag.id);
        if (i >= 0 && saved)
            state.agents[i] = saved;
        $('agent-list').replaceChildren();  // drop the draft
        renderAgents();
        announce(t('agents.saved', { aid: ag.id }));
    } catch (err) {
        showError(errEl, errorText(err));
    } finally {
        btn.disabled = false;
    }
}

async function createAgent(e) {
    e.preventDefault();
    const tid = state.selected;
    if (!tid)
        return;
    const errEl = $('agent-create-error');
    const idEl = $('agent-new-id');
    const nameEl = $('agent-new-name');
    const pwEl = $('agent-new-password');
    const capEl = $('agent-new-capacity');
    const v = checkNew(errEl, idEl, nameEl, state.agents, 'agents.exists');
    if (!v)
        return;
    const { id, name } = v;
    const body = { name, password: pwEl.value };
    const capRaw = capEl.value.trim();
    if (capRaw !== '' || capEl.validity.badInput) {
        const cap = Number(capRaw);
        if (capRaw === '' || !Number.isInteger(cap)) {
            showError(errEl, t('field.not_integer', { field: t('field.capacity') }));
            capEl.focus();
            return;
        }
        body.capacity = cap;
    }
    const btn = $('agent-create');
    btn.disabled = true;
    try {
        await api('PUT', aidPath(tid, id), body);
        idEl.value = '';
        nameEl.value = '';
        pwEl.value = '';
        capEl.value = '';
        await loadAgents();
        announce(t('agents.created', { aid: id }));
    } catch (err) {
        showError(errEl, errorText(err));
    } finally {
        btn.disabled = false;
    }
}

async function deleteAgent(aid, btn, cancel, li) {
    if (btn.dataset.armed !== 'true') {
        arm(btn, t('agent.delete.confirm'), t('agent.delete.armed', { aid }), cancel);
        return;
    }
    disarm(btn);
    const tid = state.selected;
    const errEl = li.querySelector('p.error');
    showError(errEl, '');
    btn.disabled = true;
    try {
        await api('DELETE', aidPath(tid, aid));
        if (state.editing === aid)
            state.editing = null;
        await loadAgents();
        announce(t('agents.deleted', { aid }));
        $('agents-h').setAttribute('tabindex', '-1');
        $('agents-h').focus();
    } catch (err) {
        if (btn.isConnected) {
            btn.disabled = false;
            showError(errEl, errorText(err));
        }
    }
}

// ---- metrics ----

function queueTenant() {
    return state.tenantScope || state.selected;
}

function sumValues(o) {
    return Object.values(o || {}).reduce((a, b) => a + b, 0);
}

function buildCharts() {
    const conn = (s) => sumValues(s.snap.conns);
    charts = [
        new Chart('connections', {
            label: () => t('metric.connections'),
            value: conn,
            detail: (s) => ['visitor', 'agent']
                .filter((r) => r in s.snap.conns)
                .map((r) => t(`metric.role.${r}`, { n: formatValue(s.snap.conns[r]) }))
                .join(', '),
        }),
        new Chart('queue', {
            label: () => (queueTenant()
                ? t('metric.queue.tenant', { tid: queueTenant() }) : t('metric.queue')),
            value: (s) => {
                const q = queueTenant();
                return q ? (s.snap.queue[q] ?? 0) : sumValues(s.snap.queue);
            },
            detail: (s) => (queueTenant() ? '' : t('metric.tenants',
                { n: Object.keys(s.snap.queue).length })),
        }),
        new Chart('active', {
            label: () => t('metric.active'),
            value: (s) => s.snap.active,
            detail: () => '',
        }),
        new Chart('msgs_per_s', {
            label: () => t('metric.msgs_per_s'),
            value: (s) => s.rate,
            detail: () => t('metric.in'),
        }),
    ];
    $('charts').replaceChildren(...charts.map((c) => c.el));
}

function drawCharts() {
    const now = Date.now();
    const texts = {
        peak: (v) => t('metric.peak', { v }),
        noData: t('metric.nodata'),
        aria: (title, v, detail, peak) => t('metric.aria',
            { title, v, detail: detail ? ` (${detail})` : '', peak }),
    };
    for (const c of charts)
        c.draw(metricHistory.samples, now, texts);
    $('metrics-note').textContent = state.metricsDown ? t('metrics.down') : t('metrics.note');
    $('metrics-note').classList.toggle('warn', state.metricsDown);
}

async function pollMetrics() {
    if (!state.key || state.polling)
        return;
    state.polling = true;
    let snap = null;
    try {
        const res = await fetch('/metrics', { cache: 'no-store' });
        if (res.ok)
            snap = snapshot(parseMetrics(await res.text()));
    } catch { /* a gap in the charts says it */ }
    state.polling = false;
    if (!state.key)
        return;
    state.metricsDown = !snap;
    metricHistory.add(Date.now(), snap);
    drawCharts();
}

function startPolling() {
    stopPolling();
    pollMetrics();
    state.pollTimer = setInterval(pollMetrics, POLL_MS);
}

function stopPolling() {
    clearInterval(state.pollTimer);
    state.pollTimer = 0;
}

// ---- language ----

function renderLang() {
    translate(document);
    const b = $('lang-toggle');
    b.textContent = t('lang.other');
    b.setAttribute('lang', getLang() === 'zh' ? 'en' : 'zh-CN');
    b.setAttribute('aria-label', t('lang.other.name'));
    document.title = `chatcore ${t('title')}`;
    renderWho();
    if (state.key) {
        renderTenants();
        renderDetail();
        drawCharts();
    }
    if (!$('admin-login').disabled)
        $('admin-login').textContent = t('login.submit');
}

// ---- start ----

function init() {
    bindDocumentLang();
    buildCharts();
    renderLang();
    onLangChange(renderLang);
    $('lang-toggle').addEventListener('click', toggleLang);
    $('login-form').addEventListener('submit', (e) => {
        e.preventDefault();
        signIn($('admin-key').value.trim(), false);
    });
    $('logout').addEventListener('click', () => signOut(''));
    $('tenant-create-form').addEventListener('submit', createTenant);
    $('tenant-form').addEventListener('submit', saveTenant);
    $('tenant-form').addEventListener('input', () => { $('tenant-saved').hidden = true; });
    $('tenant-rotate').addEventListener('click', rotateSecret);
    $('tenant-delete').addEventListener('click', deleteTenant);
    $('tenant-delete-cancel').addEventListener('click', () => {
        disarm($('tenant-delete'));
        $('tenant-delete').focus();
    });
    $('secret-copy').addEventListener('click', copySecret);
    $('agent-create-form').addEventListener('submit', createAgent);
    document.addEventListener('keydown', (e) => {
        if (e.key === 'Escape' && armed.size)
            disarmAll();
    });
    let stored = null;
    try {
        stored = sessionStorage.getItem(KEY_STORE);
    } catch { /* no storage: sign in each time */ }
    if (stored)
        signIn(stored, true);
    else
        $('admin-key').focus();
}

init();

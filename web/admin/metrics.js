// web/admin/metrics.js - the admin console's live metrics: a parser for the
// Prometheus text format that GET /metrics answers with, the four numbers
// the console shows (connections, queue length, active sessions,
// messages/s) taken from it, and small line charts drawn as inline SVG.
//
// app.js polls /metrics every 2 s and feeds each scrape to a MetricHistory;
// the charts cover the last 5 minutes. The metric names and labels are the
// ones lib/chat/metrics.c writes (PROTOCOL.md §7 names the required ones).
// No chart library: a served page must not depend on anything but the
// server it comes from.

const SVG_NS = 'http://www.w3.org/2000/svg';
export const WINDOW_MS = 5 * 60 * 1000;
const W = 300;  // viewBox units; the SVG stretches to its box
const H = 80;

// Parse the text exposition format (version 0.0.4) into
// Map(name -> [{labels: {k: v}, value}]). Comments, blank lines and
// anything unparsable are skipped: a console that shows three charts out
// of four is better than one that shows none because of a stray line.
export function parseMetrics(text) {
    const out = new Map();
    for (const raw of String(text).split('\n')) {
        const line = raw.trim();
        if (!line || line[0] === '#')
            continue;
        const s = parseSample(line);
        if (!s)
            continue;
        if (!out.has(s.name))
            out.set(s.name, []);
        out.get(s.name).push({ labels: s.labels, value: s.value });
    }
    return out;
}

function parseSample(line) {
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)/.exec(line);
    if (!m)
        return null;
    const name = m[1];
    let i = name.length;
    const labels = {};
    if (line[i] === '{') {
        i++;
        for (;;) {
            while (line[i] === ' ' || line[i] === ',')
                i++;
            if (line[i] === '}') {
                i++;
                break;
            }
            const lm = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"/.exec(line.slice(i));
            if (!lm)
                return null;
            i += lm[0].length;
            let v = '';
            // label values escape only backslash, double quote and newline
            for (;;) {
                if (i >= line.length)
                    return null;
                const ch = line[i++];
                if (ch === '"')
                    break;
                if (ch === '\\') {
                    const e = line[i++];
                    v += e === 'n' ? '\n' : e;
                } else {
                    v += ch;
                }
            }
            labels[lm[1]] = v;
        }
    }
    const rest = line.slice(i).trim().split(/\s+/);
    const value = parseValue(rest[0]);
    if (value === null)
        return null;
    return { name, labels, value };
}

function parseValue(s) {
    if (s === undefined || s === '')
        return null;
    if (s === '+Inf')
        return Infinity;
    if (s === '-Inf')
        return -Infinity;
    if (s === 'NaN')
        return NaN;
    const v = Number(s);
    return Number.isNaN(v) ? null : v;
}

function sum(list, pred) {
    let n = 0;
    for (const s of list || [])
        if (!pred || pred(s.labels))
            n += s.value;
    return n;
}

// The console's numbers from one parsed scrape.
export function snapshot(parsed) {
    const conns = {};
    for (const s of parsed.get('chatcore_connections') || [])
        conns[s.labels.role || '?'] = (conns[s.labels.role || '?'] || 0) + s.value;
    const queue = {};
    for (const s of parsed.get('chatcore_queue_length') || [])
        queue[s.labels.tenant || ''] = s.value;
    const inList = parsed.get('chatcore_messages_total');
    return {
        conns,
        queue,
        active: sum(parsed.get('chatcore_sessions'), (l) => l.state === 'active'),
        msgsIn: inList ? sum(inList, (l) => l.direction === 'in') : null,
    };
}

// Counter rate between two scrapes. A counter that went down was reset
// (the server restarted): everything it counts now arrived since then,
// which is what Prometheus's rate() assumes too.
export function counterRate(prev, cur, dtMs) {
    if (prev === null || cur === null || !(dtMs > 0))
        return null;
    const inc = cur >= prev ? cur - prev : cur;
    return inc / (dtMs / 1000);
}

// The samples of the last 5 minutes. A failed scrape is kept as a gap
// (value null) so the line breaks instead of bridging the outage.
export class MetricHistory {
    constructor() {
        this.samples = [];
        this.lastIn = null;
        this.lastT = 0;
    }

    add(t, snap) {
        let rate = null;
        if (snap) {
            rate = counterRate(this.lastIn, snap.msgsIn, t - this.lastT);
            this.lastIn = snap.msgsIn;
            this.lastT = t;
        } else {
            this.lastIn = null; // a gap: no rate across it
        }
        this.samples.push({ t, snap, rate });
        while (this.samples.length && this.samples[0].t < t - WINDOW_MS)
            this.samples.shift();
    }

    clear() {
        this.samples = [];
        this.lastIn = null;
        this.lastT = 0;
    }
}

// A value with at most one decimal, only where a fraction means something
// (a rate below 10/s); digits and a dot, nothing else, for screen readers
// and the tests alike.
export function formatValue(v) {
    if (v === null || v === undefined || !Number.isFinite(v))
        return '';
    if (Number.isInteger(v) || Math.abs(v) >= 10)
        return String(Math.round(v));
    return String(Math.round(v * 10) / 10);
}

// The smallest of 1, 2, 5 × 10^k that is at least v (and at least 1), so
// the y-scale steps calmly instead of following every wiggle.
export function niceMax(v) {
    if (!(v > 1))
        return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 5, 10])
        if (m * p >= v)
            return m * p;
    return 10 * p;
}

function svgEl(name, attrs) {
    const el = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs || {}))
        el.setAttribute(k, v);
    return el;
}

function htmlEl(name, attrs, text) {
    const el = document.createElement(name);
    for (const [k, v] of Object.entries(attrs || {}))
        el.setAttribute(k, v);
    if (text !== undefined)
        el.textContent = text;
    return el;
}

// One chart: a <figure> with the title, the latest value in text, an SVG
// line over the last 5 minutes and a legend line. spec.value(sample) gives
// the plotted number (or null), spec.detail(sample) the words shown in the
// legend and tooltip; spec.label() the title, read again on every draw so a
// language switch needs no rebuild.
export class Chart {
    constructor(metric, spec) {
        this.metric = metric;
        this.spec = spec;
        this.hover = null;
        const fig = htmlEl('figure', {
            class: 'chart', 'data-testid': 'metric-chart', 'data-metric': metric,
        });
        const cap = htmlEl('figcaption', { class: 'chart-cap' });
        this.titleEl = htmlEl('span', { class: 'chart-title', id: `chart-${metric}-t` });
        this.valueEl = htmlEl('span', {
            class: 'chart-value', 'data-testid': 'metric-value',
            'aria-describedby': `chart-${metric}-t`,
        });
        cap.append(this.titleEl, this.valueEl);
        const box = htmlEl('div', { class: 'chart-box' });
        this.scaleEl = htmlEl('span', { class: 'chart-scale', 'aria-hidden': 'true' });
        this.svg = svgEl('svg', {
            viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img',
            class: 'chart-svg', focusable: 'false',
        });
        this.grid = svgEl('path', { class: 'chart-grid', 'vector-effect': 'non-scaling-stroke' });
        this.area = svgEl('path', { class: 'chart-area' });
        this.line = svgEl('path', { class: 'chart-line', 'vector-effect': 'non-scaling-stroke' });
        this.marker = svgEl('line', {
            class: 'chart-marker', y1: 0, y2: H, 'vector-effect': 'non-scaling-stroke',
            visibility: 'hidden',
        });
        this.svg.append(this.grid, this.area, this.line, this.marker);
        this.tip = htmlEl('div', { class: 'chart-tip', 'aria-hidden': 'true', hidden: '' });
        box.append(this.scaleEl, this.svg, this.tip);
        this.legendEl = htmlEl('p', { class: 'chart-legend' });
        fig.append(cap, box, this.legendEl);
        this.el = fig;
        this.svg.addEventListener('pointermove', (e) => this.onHover(e));
        this.svg.addEventListener('pointerleave', () => {
            this.hover = null;
            this.marker.setAttribute('visibility', 'hidden');
            this.tip.hidden = true;
        });
    }

    // Redraw from the history's samples; now is the right edge.
    draw(samples, now, texts) {
        this.samples = samples;
        this.now = now;
        const vals = samples.map((s) => (s.snap ? this.spec.value(s) : null));
        let max = 0;
        for (const v of vals)
            if (v !== null && v > max)
                max = v;
        const top = niceMax(max);
        this.top = top;
        const x = (t) => ((t - (now - WINDOW_MS)) / WINDOW_MS) * W;
        const y = (v) => H - (v / top) * (H - 4);
        let d = '', area = '', run = [];
        const flush = () => {
            if (run.length > 1) {
                area += `M${run[0][0].toFixed(1)},${H}` +
                    run.map(([px, py]) => `L${px.toFixed(1)},${py.toFixed(1)}`).join('') +
                    `L${run[run.length - 1][0].toFixed(1)},${H}Z`;
            }
            if (run.length === 1) // a lone point: a short stub to be seen
                run.push([run[0][0] - 1.5, run[0][1]]);
            d += run.map(([px, py], i) =>
                `${i ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join('');
            run = [];
        };
        samples.forEach((s, i) => {
            if (vals[i] === null)
                flush();
            else
                run.push([x(s.t), y(vals[i])]);
        });
        flush();
        this.line.setAttribute('d', d);
        this.area.setAttribute('d', area);
        const mid = y(top / 2).toFixed(1);
        this.grid.setAttribute('d', `M0,${H - 0.5}L${W},${H - 0.5}M0,${mid}L${W},${mid}`);
        this.scaleEl.textContent = formatValue(top);

        let latest = null;
        for (let i = samples.length - 1; i >= 0; i--) {
            if (samples[i].snap && vals[i] !== null) {
                latest = samples[i];
                break;
            }
        }
        const lastVal = latest ? this.spec.value(latest) : null;
        const title = this.spec.label();
        this.titleEl.textContent = title;
        this.valueEl.textContent = formatValue(lastVal);
        this.valueEl.dataset.value = lastVal === null ? '' : String(lastVal);
        const detail = latest ? this.spec.detail(latest) : '';
        this.legendEl.textContent = latest
            ? [detail, texts.peak(formatValue(max))].filter(Boolean).join(' · ')
            : texts.noData;
        this.svg.setAttribute('aria-label', latest
            ? texts.aria(title, formatValue(lastVal), detail, formatValue(max))
            : `${title}: ${texts.noData}`);
        if (this.hover)
            this.showAt(this.hover);
    }

    onHover(e) {
        const r = this.svg.getBoundingClientRect();
        if (!r.width)
            return;
        this.hover = (e.clientX - r.left) / r.width;
        this.showAt(this.hover);
    }

    // Tooltip at the sample nearest to the pointer's horizontal position.
    showAt(frac) {
        const samples = this.samples || [];
        const t = this.now - WINDOW_MS + frac * WINDOW_MS;
        let best = null;
        for (const s of samples)
            if (s.snap && this.spec.value(s) !== null &&
                (!best || Math.abs(s.t - t) < Math.abs(best.t - t)))
                best = s;
        if (!best) {
            this.marker.setAttribute('visibility', 'hidden');
            this.tip.hidden = true;
            return;
        }
        const px = ((best.t - (this.now - WINDOW_MS)) / WINDOW_MS) * W;
        this.marker.setAttribute('x1', px.toFixed(1));
        this.marker.setAttribute('x2', px.toFixed(1));
        this.marker.setAttribute('visibility', 'visible');
        const time = new Date(best.t).toLocaleTimeString([], { hour12: false });
        const detail = this.spec.detail(best);
        this.tip.textContent = `${time} · ${formatValue(this.spec.value(best))}` +
            (detail ? ` (${detail})` : '');
        this.tip.hidden = false;
        const at = Math.min(Math.max(px / W, 0), 1);
        this.tip.style.left = `${at * 100}%`;
        this.tip.style.transform = at < 0.3 ? 'none'
            : at > 0.7 ? 'translateX(-100%)' : 'translateX(-50%)';
    }
}

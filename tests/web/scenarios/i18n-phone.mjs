// tests/web/scenarios/i18n-phone.mjs - a browser set to Chinese gets the
// widget and the console in Chinese (<html lang>, the labels of known
// controls), each page's language toggle switches to English, and the
// widget on a 375x740 phone screen fits the screen and sends and
// receives (Chinese text included).

import {
    check, eq, rid, waitAttr, waitCount, waitFor, waitText, PASSWORD,
} from '../harness.mjs';

const CJK = /[\u3400-\u9fff]/;

// The text a control shows or announces: its content, placeholder,
// aria-label, title and value together.
async function label(loc) {
    return loc.evaluate((e) => [e.textContent, e.getAttribute('placeholder'),
        e.getAttribute('aria-label'), e.getAttribute('title'),
        e.tagName === 'SELECT' ? e.options[e.selectedIndex]?.text : e.value]
        .filter(Boolean).join(' | '));
}

async function waitLabel(loc, zh, what) {
    let last = '';
    await waitFor(async () => {
        last = await label(loc);
        return zh ? CJK.test(last) : last.trim() !== '' && !CJK.test(last);
    }, `${what} in ${zh ? 'Chinese' : 'English'}`).catch(() => {
        throw new Error(`${what}: expected ${zh ? 'Chinese' : 'English'} `
            + `text, saw ${JSON.stringify(last)}`);
    });
}

async function inViewport(who, loc, w, h, what) {
    const b = await loc.boundingBox();
    check(b !== null, `${what}: has a box`);
    check(b.x >= -0.5 && b.y >= -0.5 && b.x + b.width <= w + 0.5
        && b.y + b.height <= h + 0.5,
    `${what} lies within the ${w}x${h} screen: ${JSON.stringify(b)}`);
}

export async function run(env) {
    const s = env.server;
    const tenant = 't1';
    await s.tenant(tenant, 'Acme');
    await s.agent(tenant, 'a1', 'Alice', PASSWORD);

    // the console in Chinese, from the browser's language
    const agent = await env.person('agent', { locale: 'zh-CN' });
    const ap = await agent.newPage();
    await ap.goto(`${s.base}/agent`, { waitUntil: 'load' });
    await waitFor(async () => (await ap.evaluate(() =>
        document.documentElement.lang)).startsWith('zh'),
    'agent page <html lang> is zh*');
    await waitLabel(agent.id('login-submit'), true, 'agent login-submit');
    await agent.loginAgent(tenant, 'a1', PASSWORD);
    await waitLabel(agent.id('agent-status'), true, 'agent agent-status');

    // the widget on a phone, in Chinese
    const W = 375;
    const H = 740;
    const visitor = await env.person('visitor', { locale: 'zh-CN',
        viewport: { width: W, height: H }, isMobile: true });
    await visitor.openWidget(tenant);
    await waitLabel(visitor.id('cc-send'), true, 'widget cc-send');
    await waitLabel(visitor.id('cc-input'), true, 'widget cc-input');
    for (const id of ['cc-panel', 'cc-input', 'cc-send'])
        await inViewport(visitor, visitor.id(id), W, H, `widget ${id}`);
    const sw = await visitor.page.evaluate(() =>
        document.documentElement.scrollWidth);
    check(sw <= W, `the page does not scroll sideways on a phone `
        + `(scrollWidth ${sw} > ${W})`);

    const first = `你好，我的订单还没有到 ${rid()}`;
    await visitor.visitorSend(first);
    await waitAttr(visitor.id('cc-status'), 'data-state', 'queued',
        'phone widget cc-status after sending');
    await waitText(visitor.id('cc-position'), '1', 'phone cc-position');
    const sid = await agent.queuedSession(first);
    await agent.accept(sid);
    await waitAttr(visitor.id('cc-status'), 'data-state', 'active',
        'phone widget cc-status after the accept');
    const reply = `您好，我马上帮您查询 ${rid()}`;
    await agent.agentSend(sid, reply);
    await waitCount(visitor.msgByText('cc-msg', reply), 1,
        'phone widget shows the agent\'s Chinese reply');
    await inViewport(visitor, visitor.id('cc-send'), W, H,
        'widget cc-send with messages shown');

    // screenshots of the Chinese pages before switching
    await env.screenshots('-zh');

    // the toggles switch to English
    await visitor.id('cc-lang').click();
    await waitLabel(visitor.id('cc-send'), false, 'widget cc-send after cc-lang');
    await waitLabel(visitor.id('cc-input'), false,
        'widget cc-input after cc-lang');
    await agent.id('lang-toggle').click();
    await waitFor(async () => (await ap.evaluate(() =>
        document.documentElement.lang)) === 'en',
    'agent page <html lang> is en after lang-toggle');
    await waitLabel(agent.id('agent-status'), false,
        'agent agent-status after lang-toggle');
    await waitLabel(agent.conv(sid).getByTestId('conv-send'), false,
        'agent conv-send after lang-toggle');

    // the phone can still send after the switch
    const more = `Thanks, in English now ${rid()}`;
    await visitor.visitorSend(more);
    await waitCount(agent.msgByText('conv-msg', more, agent.conv(sid)), 1,
        'agent gets the phone visitor\'s message');

    // and English sticks on a reload (kept in localStorage)
    await ap.reload({ waitUntil: 'load' });
    await waitFor(async () => (await ap.evaluate(() =>
        document.documentElement.lang)) === 'en',
    'agent page <html lang> stays en after a reload');
    eq((await s.messages(tenant, sid)).length, 3, 'stored messages');
}

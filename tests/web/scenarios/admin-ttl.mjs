// tests/web/scenarios/admin-ttl.mjs - the admin page creates a tenant and
// an agent, rotates the secret and sets the session TTL to 2 s, and its
// live view counts the active session; a visitor who closes the page
// mid-chat is shown offline in the agent's console once the TTL passes
// (peer_offline), and back online with its history when it opens the page
// again in the same browser (same localStorage, same visitor, session).

import {
    PASSWORD, check, eq, rid, startChat, waitAttr, waitCount, waitFor,
    waitText, waitTranscript,
} from '../harness.mjs';

export async function run(env) {
    const s = env.server;
    const tenant = 't1';

    // the admin creates the tenant and its agent on the page
    const admin = await env.person('admin');
    await admin.loginAdmin();
    await admin.id('tenant-new-id').fill(tenant);
    await admin.id('tenant-new-name').fill('Acme');
    await admin.id('tenant-create').click();
    const item = admin.page.locator(
        `[data-testid="tenant-item"][data-tenant="${tenant}"]`);
    await waitCount(item, 1, 'admin tenant-item t1 after tenant-create');
    eq((await s.api('GET', `/v1/tenants/${tenant}`)).name, 'Acme',
        'GET /v1/tenants/t1 name after tenant-create');
    if (!(await admin.id('tenant-form').isVisible()))
        await item.click();
    const form = admin.id('tenant-form');
    await form.waitFor({ state: 'visible' });
    const ttl = admin.id('tenant-session-ttl');
    await waitFor(async () => (await ttl.inputValue()) === '600',
        'tenant-session-ttl shows the current 600');
    await waitFor(async () => (await admin.id('tenant-name').inputValue())
        === 'Acme', 'tenant-name shows Acme');
    await ttl.fill('2');
    await admin.id('tenant-save').click();
    await admin.id('tenant-saved').waitFor({ state: 'visible' });
    const t = await s.api('GET', `/v1/tenants/${tenant}`);
    eq(t.session_ttl, 2, 'GET /v1/tenants/t1 session_ttl after the save');
    eq([t.name, t.heartbeat, t.rate_limits.messages_per_s],
        ['Acme', 20, 20], 'the other settings are unchanged by the save');

    await admin.id('agent-new-id').fill('a1');
    await admin.id('agent-new-name').fill('Alice');
    await admin.id('agent-new-password').fill(PASSWORD);
    await admin.id('agent-create').click();
    await waitCount(admin.page.locator(
        '[data-testid="agent-item"][data-agent="a1"]'), 1,
    'admin agent-item a1 after agent-create');
    eq((await s.api('GET', `/v1/tenants/${tenant}/agents/a1`)).name, 'Alice',
        'GET the agent made on the admin page');

    // a rotated secret is shown once
    await admin.id('tenant-rotate').click();
    await env.soft(waitText(admin.id('tenant-secret'),
        (v) => /^\s*[0-9A-Za-z_-]{16,}\s*$/.test(v),
        'admin tenant-secret after tenant-rotate'));

    // the agent made above logs in; the visitor chats with it
    const { agents: [agent], visitor, sid, first } = await startChat(env,
        { tenant, existingTenant: true, existingAgents: true });
    const peer = agent.convTab(sid).getByTestId('conv-peer');
    await waitAttr(peer, 'data-online', 'true', 'agent conv-peer online');
    const m2 = `Let me look into it ${rid()}`;
    await agent.agentSend(sid, m2);
    await waitCount(visitor.msgByText('cc-msg', m2), 1,
        'visitor sees the agent\'s message');

    // the live view counts the active session
    const active = admin.page.locator(
        '[data-testid="metric-chart"][data-metric="active"]')
        .getByTestId('metric-value');
    await waitText(active, (v) => /^\s*[0-9]+\s*$/.test(v) && Number(v) >= 1,
        'admin metric-value of "active"');

    // the visitor leaves: offline once the 2 s TTL has passed
    await visitor.page.close();
    const left = Date.now();
    await waitAttr(peer, 'data-online', 'false',
        'agent conv-peer after the visitor left');
    const took = Date.now() - left;
    check(took >= 1500 && took <= 6000, 'peer_offline comes about the 2 s '
        + `TTL after the visitor left (took ${took} ms)`);
    eq((await s.session(tenant, sid)).state, 'offline',
        'server state after the TTL');
    // the agent may still reply while the visitor is away
    const m3 = `Reply while you were away ${rid()}`;
    await agent.agentSend(sid, m3);

    // back, same browser: same session, history and the missed reply
    await visitor.newPage();
    await visitor.openWidget(tenant);
    await waitAttr(peer, 'data-online', 'true',
        'agent conv-peer after the visitor came back');
    await waitAttr(visitor.id('cc-status'), 'data-state', 'active',
        'visitor cc-status after coming back');
    await waitTranscript(visitor, 'cc-msg', [
        { from: 'visitor', text: first },
        { from: 'agent', text: m2 },
        { from: 'agent', text: m3 },
    ], null, 'visitor history after coming back');
    eq((await s.session(tenant, sid)).state, 'active',
        'server state after the visitor came back');
}

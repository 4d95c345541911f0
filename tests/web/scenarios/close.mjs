// tests/web/scenarios/close.mjs - the agent closes the conversation with
// the reason "resolved": the agent's conv-state shows closed, the server
// has it closed with that reason's effect, the visitor sees a system line
// and can start over (its next message queues a new session).

import {
    check, eq, rid, startChat, waitAttr, waitCount, waitFor,
} from '../harness.mjs';

export async function run(env) {
    const s = env.server;
    const { agents: [agent], visitor, sid, tenant } = await startChat(env);
    const conv = agent.conv(sid);
    const m2 = `Is there anything else? ${rid()}`;
    await agent.agentSend(sid, m2);
    await waitCount(visitor.msgByText('cc-msg', m2), 1,
        'visitor sees the agent\'s message');
    const systemBefore = await visitor.page.locator(
        '[data-testid="cc-msg"][data-from="system"]').count();

    await conv.getByTestId('conv-close').click();
    const reason = agent.id('close-reason');
    await reason.waitFor({ state: 'visible' });
    const tag = await reason.evaluate((e) => e.tagName);
    if (tag === 'SELECT')
        await reason.selectOption('resolved');
    else
        await reason.fill('resolved');
    await agent.id('close-submit').click();

    await waitFor(async () => (await s.session(tenant, sid)).state
        === 'closed', 'the server has the session closed');
    await waitAttr(agent.conv(sid).getByTestId('conv-state'), 'data-state',
        'closed', 'agent conv-state after closing');
    await waitFor(async () => (await visitor.page.locator(
        '[data-testid="cc-msg"][data-from="system"]').count()) > systemBefore,
    'visitor gets a system line (cc-msg data-from=system) for the close');

    await env.soft(waitAttr(visitor.id('cc-status'), 'data-state', 'closed',
        'visitor cc-status after the agent closed'));

    // the visitor starts over: its next message queues a new session
    await visitor.id('cc-input').waitFor({ state: 'visible' });
    const again = `A new question ${rid()}`;
    await visitor.visitorSend(again);
    await waitAttr(visitor.id('cc-status'), 'data-state', 'queued',
        'visitor cc-status after writing again');
    const sid2 = await agent.queuedSession(again);
    check(sid2 !== sid, `a new session id: ${sid2} vs the closed ${sid}`);
    const x = await s.session(tenant, sid2);
    eq(x.state, 'queued', 'the new session\'s state');
    const queued = await s.sessions(tenant, 'queued');
    eq(queued.map((q) => q.id), [sid2], 'queued sessions on the server');
    eq((await s.session(tenant, sid)).state, 'closed',
        'the old session stays closed');
    // the new message is the new session's first
    const msgs = await s.messages(tenant, sid2);
    eq(msgs.map((m) => [m.seq, m.body && m.body.text]), [[1, again]],
        'the new session\'s messages');

    // the visitor ends the new one itself
    const leave = visitor.id('cc-leave');
    await waitFor(async () => leave.isEnabled(), 'cc-leave enabled');
    await leave.click();
    await waitFor(async () => (await s.session(tenant, sid2)).state
        === 'closed', 'the server has the new session closed after cc-leave');
    await waitCount(agent.queueItem(sid2), 0,
        'the session the visitor left leaves the agent\'s queue-list');
    await env.soft(waitAttr(visitor.id('cc-status'), 'data-state', 'closed',
        'visitor cc-status after cc-leave'));
}

// tests/web/scenarios/transfer.mjs - agent 1 hands a live conversation to
// agent 2 (whose console opens it with its history, while agent 1's tab
// goes away and the visitor sees the new agent's name), then agent 2
// sends it back to the queue (the visitor is queued again and every
// agent sees it waiting).

import {
    eq, rid, startChat, waitAttr, waitCount, waitFor, waitText,
    waitTranscript,
} from '../harness.mjs';

export async function run(env) {
    const s = env.server;
    const { agents: [a1, a2], visitor, sid, tenant, first } =
        await startChat(env, { agents: [['a1', 'Alice'], ['a2', 'Bob']] });
    await env.soft(waitText(visitor.id('cc-agent-name'),
        (v) => v.includes('Alice'), 'visitor cc-agent-name before the transfer'));
    const m2 = `Alice here, one moment ${rid()}`;
    await a1.agentSend(sid, m2);
    await waitCount(visitor.msgByText('cc-msg', m2), 1,
        'visitor sees Alice\'s message');
    const want = [{ from: 'visitor', text: first },
        { from: 'agent', text: m2 }];

    // agent 1 -> agent 2
    const c1 = a1.conv(sid);
    await c1.getByTestId('conv-transfer').click();
    const target = a1.id('transfer-target');
    await waitFor(async () => (await target.locator('option[value="a2"]')
        .count()) === 1, 'transfer-target offers a2');
    await target.selectOption('a2');
    await a1.id('transfer-submit').click();

    await waitFor(async () => {
        const x = await s.session(tenant, sid);
        return x.agent === 'a2' && x.state === 'active';
    }, 'the server has the session with a2');
    await waitCount(a2.convTab(sid), 1, 'agent 2 conv-tab');
    if ((await a2.conv(sid).count()) === 0)
        await a2.convTab(sid).click();
    const c2 = a2.conv(sid);
    await c2.waitFor({ state: 'visible' });
    await waitTranscript(a2, 'conv-msg', want, c2,
        'agent 2 shows the history');
    await waitCount(a1.convTab(sid), 0, 'agent 1 conv-tab after the transfer');
    await waitCount(a1.conv(sid), 0, 'agent 1 conv after the transfer');
    await env.soft(waitText(visitor.id('cc-agent-name'),
        (v) => v.includes('Bob'), 'visitor cc-agent-name after the transfer'));
    await waitAttr(visitor.id('cc-status'), 'data-state', 'active',
        'visitor cc-status after the transfer');

    // the new agent can talk
    const m3 = `Bob here, I can help ${rid()}`;
    await a2.agentSend(sid, m3);
    await waitCount(visitor.msgByText('cc-msg', m3), 1,
        'visitor sees Bob\'s message');
    want.push({ from: 'agent', text: m3 });
    await waitTranscript(visitor, 'cc-msg', want, null, 'visitor transcript');

    // agent 2 -> back to the queue
    await c2.getByTestId('conv-transfer').click();
    await a2.id('transfer-target').selectOption('');
    await a2.id('transfer-submit').click();
    await waitAttr(visitor.id('cc-status'), 'data-state', 'queued',
        'visitor cc-status after the transfer back to the queue');
    await waitText(visitor.id('cc-position'), '1',
        'visitor cc-position after the transfer back to the queue');
    await waitCount(a2.convTab(sid), 0,
        'agent 2 conv-tab after the transfer to the queue');
    for (const a of [a1, a2])
        await waitCount(a.queueItem(sid), 1,
            `${a.name} sees the session queued again`);
    const x = await s.session(tenant, sid);
    eq([x.state, x.agent ?? null], ['queued', null],
        'server state and agent after the transfer to the queue');
}

// tests/web/scenarios/chat.mjs - one visitor and one agent, end to end:
// queue position, the queue item's preview, accept, the agent's name in
// the widget, three messages each way in seq order on both sides,
// typing indicators both ways and read receipts both ways.

import {
    PASSWORD, check, rid, waitAttr, waitCount, waitHidden, waitText,
    waitTranscript, waitVisible,
} from '../harness.mjs';

export async function run(env) {
    const s = env.server;
    await s.tenant('t1', 'Acme');
    await s.agent('t1', 'a1', 'Alice', PASSWORD);
    const { agents: [agent], visitor, sid, first } =
        await startChatManual(env);

    // the agent's name, not its id (GET /v1/agents/{aid}, rule 67)
    await env.soft(waitText(visitor.id('cc-agent-name'),
        (v) => v.includes('Alice'), 'visitor cc-agent-name'));

    const conv = agent.conv(sid);
    await env.soft(waitAttr(agent.convTab(sid), 'data-active', 'true',
        'agent conv-tab of the accepted conversation'));
    const convInput = conv.getByTestId('conv-input');
    const want = [{ from: 'visitor', text: first }];

    // typing, agent -> visitor
    await convInput.pressSequentially('Let me', { delay: 20 });
    await env.soft(waitVisible(visitor.id('cc-typing'),
        'visitor cc-typing while the agent types'));
    const m2 = `Sure, let me check that for you ${rid()}`;
    await agent.agentSend(sid, m2);
    want.push({ from: 'agent', text: m2 });
    await waitCount(visitor.msgByText('cc-msg', m2), 1,
        'visitor sees the agent\'s first reply');
    await env.soft(waitHidden(visitor.id('cc-typing'),
        'visitor cc-typing after the agent sent'));

    // typing, visitor -> agent
    await visitor.id('cc-input').pressSequentially('Thank', { delay: 20 });
    await env.soft(waitVisible(conv.getByTestId('conv-typing'),
        'agent conv-typing while the visitor types'));
    const m3 = `Thanks! The order number is ${rid()}`;
    await visitor.visitorSend(m3);
    want.push({ from: 'visitor', text: m3 });
    await waitCount(agent.msgByText('conv-msg', m3, conv), 1,
        'agent sees the visitor\'s second message');
    await env.soft(waitHidden(conv.getByTestId('conv-typing'),
        'agent conv-typing after the visitor sent'));

    const m4 = `Found it: it ships tomorrow ${rid()}`;
    await agent.agentSend(sid, m4);
    want.push({ from: 'agent', text: m4 });
    await waitCount(visitor.msgByText('cc-msg', m4), 1,
        'visitor sees the agent\'s second reply');
    const m5 = `Great, one more question ${rid()}`;
    await visitor.visitorSend(m5);
    want.push({ from: 'visitor', text: m5 });
    await waitCount(agent.msgByText('conv-msg', m5, conv), 1,
        'agent sees the visitor\'s third message');
    const m6 = `Happy to help ${rid()}`;
    await agent.agentSend(sid, m6);
    want.push({ from: 'agent', text: m6 });

    await waitTranscript(visitor, 'cc-msg', want, null,
        'visitor transcript');
    await waitTranscript(agent, 'conv-msg', want, conv, 'agent transcript');

    // sending -> sent -> read: the agent has the conversation open, so the
    // visitor's own last message ends up read
    const own = visitor.msgByText('cc-msg', m5);
    await env.soft(waitAttr(own, 'data-state', 'read',
        'visitor\'s own last message cc-msg'));
    for (const t of [first, m3])
        await env.soft(waitAttr(visitor.msgByText('cc-msg', t), 'data-state',
            'read', `visitor\'s own message "${t}"`));
    // and the visitor has the panel open: the agent's last one is read
    await env.soft(waitAttr(agent.msgByText('conv-msg', m6, conv),
        'data-read', (v) => v !== null && v !== 'false',
        'agent\'s own last message conv-msg'));
    // every own message of the visitor carries its cid
    const vis = await visitor.shown('cc-msg');
    for (const m of vis.filter((x) => x.from === 'visitor'))
        env.softCheck(/^c_[0-9a-f]{16}$/.test(m.cid || ''),
            `visitor cc-msg data-cid is c_ + 16 hex: ${m.cid}`);
    // the server agrees
    const msgs = await s.messages('t1', sid);
    check(msgs.length === 6 && msgs.every((m, i) => m.seq === i + 1),
        `server has seq 1..6: ${JSON.stringify(msgs.map((m) => m.seq))}`);
}

// startChat, but with the tenant made above and the position checked
// before the agent accepts.
async function startChatManual(env) {
    const agent = await env.person('agent');
    await agent.loginAgent('t1', 'a1', PASSWORD);
    const visitor = await env.person('visitor');
    await visitor.openWidget('t1');
    const first = `Hello, I need help with order ${rid()}`;
    await visitor.visitorSend(first);
    await waitAttr(visitor.id('cc-status'), 'data-state', 'queued',
        'visitor cc-status after the first message');
    await waitText(visitor.id('cc-position'), '1', 'visitor cc-position');
    const sid = await agent.queuedSession(first);
    const item = agent.queueItem(sid);
    await waitText(item.getByTestId('queue-preview'),
        (v) => v.includes(first), 'agent queue-preview');
    await waitText(item.getByTestId('queue-wait'), (v) => /\d/.test(v),
        'agent queue-wait shows a time');
    await agent.accept(sid);
    await waitAttr(visitor.id('cc-status'), 'data-state', 'active',
        'visitor cc-status after the accept');
    await waitCount(agent.queueItem(sid), 0,
        'the accepted session leaves the agent\'s queue-list');
    return { agents: [agent], visitor, sid, first };
}

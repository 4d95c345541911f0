// tests/web/scenarios/restart.mjs - the server restarts under a live
// chat (SIGTERM, exit 0, start again on the same port and data dir):
// while it is down both sides show they are offline, and what the
// visitor and the agent send meanwhile is kept (state "sending") and
// delivered after the reconnect; afterwards each side shows every message
// exactly once, in seq order with no gap, exactly as the server has them.

import {
    check, eq, rid, seqMessages, startChat, waitAttr, waitCount, waitFor,
    waitHidden, waitTranscript, waitVisible,
} from '../harness.mjs';

export async function run(env) {
    const s = env.server;
    const { agents: [agent], visitor, sid, tenant, first } =
        await startChat(env);
    const conv = agent.conv(sid);
    const m2 = `Agent before the restart ${rid()}`;
    await agent.agentSend(sid, m2);
    await waitCount(visitor.msgByText('cc-msg', m2), 1,
        'visitor sees the agent\'s message');
    const m3 = `Visitor before the restart ${rid()}`;
    await visitor.visitorSend(m3);
    await waitCount(agent.msgByText('conv-msg', m3, conv), 1,
        'agent sees the visitor\'s message');
    const port = s.port;

    await s.stop();
    await waitVisible(visitor.id('cc-offline-banner'),
        'visitor cc-offline-banner while the server is down');
    await waitAttr(visitor.id('cc-status'), 'data-state',
        (v) => v === 'reconnecting' || v === 'connecting',
        'visitor cc-status while the server is down');
    // conn-state (data-state = the ChatClient state) is the console's
    // connection hook; docs/web.md is to list it
    await waitAttr(agent.id('conn-state'), 'data-state',
        (v) => v === 'reconnecting' || v === 'connecting',
        'agent conn-state while the server is down');

    // written while down: kept, shown as sending, no seq yet
    const m4 = `Visitor while the server is down ${rid()}`;
    await visitor.visitorSend(m4);
    const own = visitor.msgByText('cc-msg', m4);
    const pending = await own.getAttribute('data-state');
    eq(pending, 'sending', `cc-msg "${m4}" data-state while down`);
    const m5 = `Agent while the server is down ${rid()}`;
    await agent.agentSend(sid, m5);

    await s.start();
    eq(s.port, port, 'the port after the restart');
    await waitHidden(visitor.id('cc-offline-banner'),
        'visitor cc-offline-banner after the restart');
    await waitAttr(agent.id('conn-state'), 'data-state', 'online',
        'agent conn-state after the restart');
    await waitAttr(visitor.id('cc-status'), 'data-state', 'active',
        'visitor cc-status after the restart');
    await waitAttr(own, 'data-state', (v) => v === 'sent' || v === 'read',
        `visitor cc-msg "${m4}" after the restart`);
    await waitCount(agent.msgByText('conv-msg', m4, conv), 1,
        'agent gets the message the visitor wrote while down');
    await waitCount(visitor.msgByText('cc-msg', m5), 1,
        'visitor gets the message the agent wrote while down');

    // one more each way on the new connections
    const m6 = `Agent after the restart ${rid()}`;
    await agent.agentSend(sid, m6);
    const m7 = `Visitor after the restart ${rid()}`;
    await waitCount(visitor.msgByText('cc-msg', m6), 1,
        'visitor sees the agent\'s message after the restart');
    await visitor.visitorSend(m7);
    await waitCount(agent.msgByText('conv-msg', m7, conv), 1,
        'agent sees the visitor\'s message after the restart');

    // the server's record: 7 messages, seq 1..7, each text once
    const stored = await waitFor(async () => {
        const x = await s.messages(tenant, sid);
        return x.length >= 7 ? x : null;
    }, 'seven stored messages');
    eq(stored.map((m) => m.seq), [1, 2, 3, 4, 5, 6, 7], 'stored seqs');
    const texts = [first, m2, m3, m4, m5, m6, m7];
    for (const t of texts)
        eq(stored.filter((m) => m.body && m.body.text === t).length, 1,
            `stored copies of "${t}"`);
    const want = stored.map((m) => ({
        from: String(m.from).split(':')[0],
        text: m.body.text,
    }));
    await waitTranscript(visitor, 'cc-msg', want, null,
        'visitor transcript after the restart');
    await waitTranscript(agent, 'conv-msg', want, conv,
        'agent transcript after the restart');
    const vs = await seqMessages(visitor, 'cc-msg');
    check(vs.every((m) => m.from !== 'visitor' || m.state !== 'sending'),
        'no visitor message left in state sending');
}

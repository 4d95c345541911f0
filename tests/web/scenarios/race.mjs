// tests/web/scenarios/race.mjs - two agents click accept on the same
// queue item at the same moment: the server lets exactly one win, the
// winner's console opens the conversation, and the loser's shows
// "already taken" (notice data-code=already_taken) or had the item vanish
// before its click landed; either way it shows no conversation for it.

import {
    check, eq, startChat, waitAttr, waitCount, waitFor,
} from '../harness.mjs';

export async function run(env) {
    const { agents, visitor, sid, tenant } = await startChat(env, {
        agents: [['a1', 'Alice'], ['a2', 'Bob']], accept: false,
    });
    for (const p of agents)
        await p.queueItem(sid).getByTestId('queue-accept')
            .waitFor({ state: 'visible' });

    // Both clicks go out together. A click whose item is gone before it
    // can land fails; that is the "vanished" outcome, not an error.
    const clicks = await Promise.allSettled(agents.map((p) =>
        p.queueItem(sid).getByTestId('queue-accept')
            .click({ timeout: 3000 })));

    const sess = await waitFor(async () => {
        const x = await env.server.session(tenant, sid);
        return x.state === 'active' ? x : null;
    }, `session ${sid} active on the server`);
    check(sess.agent === 'a1' || sess.agent === 'a2',
        `the server's winner is one of the two: ${sess.agent}`);
    const wi = sess.agent === 'a1' ? 0 : 1;
    const winner = agents[wi];
    const loser = agents[1 - wi];
    check(clicks[wi].status === 'fulfilled',
        `the winner's click landed: ${clicks[wi].reason}`);

    await winner.conv(sid).waitFor({ state: 'visible' });
    await waitCount(winner.convTab(sid), 1, `winner (${winner.name}) conv-tab`);
    await waitAttr(visitor.id('cc-status'), 'data-state', 'active',
        'visitor cc-status');

    await waitCount(loser.queueItem(sid), 0,
        `loser (${loser.name}) queue-item gone`);
    if (clicks[1 - wi].status === 'fulfilled') {
        // its accept reached the server, which refused it
        await waitAttr(loser.id('notice'), 'data-code', 'already_taken',
            `loser (${loser.name}) notice`);
        env.note(`${winner.name} won; ${loser.name}'s click landed and it `
            + 'shows notice already_taken');
    } else {
        env.note(`${winner.name} won; ${loser.name}'s queue item went away `
            + 'before its click landed');
    }
    await waitCount(loser.convTab(sid), 0, `loser (${loser.name}) conv-tab`);
    await waitCount(loser.conv(sid), 0, `loser (${loser.name}) conv`);

    // the server still says the same, and nobody else holds the session
    const again = await env.server.session(tenant, sid);
    eq([again.state, again.agent], ['active', sess.agent],
        'session state and agent after the race');
}

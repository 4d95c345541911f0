#!/usr/bin/env node
// tests/web/run.mjs - runs the real-browser scenarios of the web pages.
//
//   node tests/web/run.mjs --server PATH/chatcore-server --web DIR
//                          --out DIR [--only NAME[,NAME]] [--list]
//
// One headless Chromium for the whole run; each scenario gets a server of
// its own (fresh data directory, port 0) and a browser context per person.
// Scenarios run one after another (the machine this runs on has 2 cores,
// and the server may be an ASan build). Prints one line per scenario with
// its time; exits 0 only if every scenario passed. Every scenario leaves
// <scenario>-<person>.png in --out; a failing one also leaves
// <scenario>-<person>-fail.png, <scenario>-server.log (the server's log
// tail) and <scenario>-console.log (the pages' console errors).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCENARIOS = ['chat', 'race', 'restart', 'transfer', 'close',
    'admin-ttl', 'i18n-phone'];
const SCENARIO_TIMEOUT_MS = 90000;

function usage(msg) {
    console.error(`run.mjs: ${msg}\nusage: node tests/web/run.mjs --server `
        + 'PATH --web DIR --out DIR [--only NAME[,NAME]] [--list]');
    process.exit(2);
}

function parseArgs(argv) {
    const a = { only: '' };
    for (let i = 0; i < argv.length; i++) {
        const k = argv[i];
        const next = () => {
            if (i + 1 >= argv.length)
                usage(`${k} needs a value`);
            return argv[++i];
        };
        if (k === '--server')
            a.server = next();
        else if (k === '--web')
            a.web = next();
        else if (k === '--out')
            a.out = next();
        else if (k === '--only')
            a.only = next();
        else if (k === '--list')
            a.list = true;
        else
            usage(`unknown argument ${k}`);
    }
    return a;
}

// The browser and the npm package are set up by scripts/setup.sh; a
// machine without them must fail this test, not skip it.
function prerequisites() {
    const missing = [];
    if (!fs.existsSync('/usr/bin/chromium'))
        missing.push('/usr/bin/chromium');
    if (!fs.existsSync(path.join(HERE, 'node_modules', 'playwright-core',
        'package.json')))
        missing.push(path.join(HERE, 'node_modules/playwright-core'));
    if (missing.length) {
        console.error(`FAIL web tests: missing ${missing.join(', ')}; `
            + 'run scripts/setup.sh (it installs chromium and '
            + 'fonts-wqy-microhei and runs `npm ci` in tests/web)');
        process.exit(1);
    }
}

function withTimeout(promise, ms, what) {
    let timer;
    const t = new Promise((_, rej) => {
        timer = setTimeout(() => rej(new Error(`${what}: timed out after `
            + `${ms / 1000} s`)), ms);
    });
    return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

function indent(text, pad = '     | ') {
    return String(text).split('\n').map((l) => pad + l).join('\n');
}

async function main() {
    const args = parseArgs(process.argv.slice(2));
    let names = SCENARIOS;
    if (args.only) {
        const want = args.only.split(',').map((s) => s.trim()).filter(Boolean);
        for (const w of want)
            if (!SCENARIOS.includes(w))
                usage(`no scenario named ${w} (have: ${SCENARIOS.join(', ')})`);
        names = SCENARIOS.filter((n) => want.includes(n));
    }
    if (args.list) {
        console.log(names.join('\n'));
        return 0;
    }
    if (!args.server || !args.web || !args.out)
        usage('--server, --web and --out are required');
    try {
        fs.accessSync(args.server, fs.constants.X_OK);
    } catch {
        usage(`--server ${args.server}: not an executable`);
    }
    if (!fs.existsSync(path.join(args.web, 'index.html')))
        console.error(`note: ${args.web}/index.html does not exist (yet)`);
    prerequisites();

    const H = await import('./harness.mjs');
    const server = path.resolve(args.server);
    const web = path.resolve(args.web);
    const out = path.resolve(args.out);
    fs.mkdirSync(out, { recursive: true });
    // files of an earlier run would pass for this one's
    for (const f of fs.readdirSync(out))
        if (/\.(png|log)$/.test(f))
            fs.rmSync(path.join(out, f), { force: true });
    const tmp = H.tmpRoot();

    let browser = null;
    const stopAll = () => {
        for (const s of H.liveServers)
            s.kill();
    };
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
        process.on(sig, () => {
            stopAll();
            fs.rmSync(tmp, { recursive: true, force: true });
            process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM'
                ? 15 : 1));
        });
    }
    process.on('exit', stopAll);

    const t0 = Date.now();
    const results = [];
    try {
        browser = await H.launchBrowser();
    } catch (e) {
        console.error(`FAIL cannot launch ${H.CHROMIUM}: ${e.message}`);
        return 1;
    }
    for (const name of names) {
        const mod = await import(`./scenarios/${name}.mjs`);
        const env = new H.Env({ name, browser, binary: server, web, out, tmp });
        const t1 = Date.now();
        let err = null;
        try {
            await withTimeout((async () => {
                await env.server.start();
                await mod.run(env, H);
                if (env.softFailures.length) {
                    const e = new H.TestFailure(env.softFailures.join('\n'));
                    e.soft = true;
                    throw e;
                }
                const pe = env.pageErrors();
                if (pe.length)
                    throw new H.TestFailure('uncaught exceptions in the '
                        + `pages:\n${pe.join('\n')}`);
                await env.screenshots();
            })(), SCENARIO_TIMEOUT_MS, name);
        } catch (e) {
            err = e;
            if (env.softFailures.length && !e.soft)
                err = new H.TestFailure(`${env.softFailures.join('\n')}\n`
                    + `then: ${e instanceof H.TestFailure ? e.message
                        : e.stack || e}`);
        }
        if (err) {
            try {
                await withTimeout(env.screenshots('-fail'), 20000,
                    'screenshots');
            } catch { /* best effort */ }
        }
        await env.closePeople();
        try {
            // a clean exit (status 0, no sanitizer report) is part of
            // every scenario
            await env.server.stop();
            env.server.checkSanitizer();
        } catch (e) {
            if (!err)
                err = e;
            else if (e instanceof H.TestFailure)
                err = new H.TestFailure(`${err instanceof H.TestFailure
                    ? err.message : err.stack || err}\nand: ${e.message}`);
        }
        env.server.kill();
        const dt = ((Date.now() - t1) / 1000).toFixed(1);
        if (!err) {
            console.log(`PASS ${name.padEnd(12)} ${dt.padStart(6)} s`);
            for (const n of env.notes)
                console.log(`     - ${n}`);
        } else {
            // playwright's messages carry terminal colours
            const msg = (err instanceof H.TestFailure ? err.message
                : (err.stack || String(err))).replace(/\x1b\[[0-9;]*m/g, '');
            console.log(`FAIL ${name.padEnd(12)} ${dt.padStart(6)} s\n`
                + indent(msg));
            fs.writeFileSync(path.join(out, `${name}-server.log`),
                env.server.tail(200) + '\n');
            const cl = env.consoleLog();
            fs.writeFileSync(path.join(out, `${name}-console.log`), cl + '\n');
            console.log(indent(`server log tail (all in ${name}-server.log):\n`
                + env.server.tail(12)));
            if (cl)
                console.log(indent('page console (in '
                    + `${name}-console.log):\n${cl.split('\n').slice(-12)
                        .join('\n')}`));
        }
        env.server.cleanup();
        results.push({ name, ok: !err });
    }
    await browser.close().catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
    const failed = results.filter((r) => !r.ok).map((r) => r.name);
    console.log(`${results.length - failed.length} passed, ${failed.length} `
        + `failed in ${((Date.now() - t0) / 1000).toFixed(1)} s; files in ${out}`);
    if (failed.length)
        console.log(`failed: ${failed.join(', ')}`);
    return failed.length ? 1 : 0;
}

main().then((rc) => process.exit(rc), (e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
});

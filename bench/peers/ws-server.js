#!/usr/bin/env node
/*
 * ws-server.js - the Node `ws` peer for bench/run.sh: an echo or broadcast
 * WebSocket server on one Node process (one JS thread, like our server
 * with --threads 1).
 *
 *   node ws-server.js --port N [--host H] --mode echo|broadcast
 *
 * echo: every message goes back to its sender with the same opcode.
 * broadcast: every message goes to every open connection, sender included.
 * Prints "listening on port N" once the socket is bound.
 */
'use strict';

const path = require('path');

let WebSocket;
try {
    WebSocket = require('ws');
} catch (e) {
    // run.sh installs into bench/node_modules; allow running from anywhere.
    WebSocket = require(path.join(__dirname, '..', 'node_modules', 'ws'));
}

function parseArgs(argv) {
    const o = { port: 0, host: '127.0.0.1', mode: 'echo' };
    for (let i = 2; i < argv.length; i++) {
        const a = argv[i];
        const v = argv[i + 1];
        if (a === '--port') { o.port = parseInt(v, 10); i++; }
        else if (a === '--host') { o.host = v; i++; }
        else if (a === '--mode') { o.mode = v; i++; }
        else if (a === '--threads') { i++; } // accepted for symmetry, ignored
        else {
            console.error(`unknown option ${a}`);
            process.exit(2);
        }
    }
    if (o.mode !== 'echo' && o.mode !== 'broadcast') {
        console.error('--mode must be echo or broadcast');
        process.exit(2);
    }
    return o;
}

const opt = parseArgs(process.argv);

// Compression off (the ws default for servers, stated so nobody wonders)
// and a generous backlog: the connect-rate test opens thousands at once.
const wss = new WebSocket.Server({
    host: opt.host,
    port: opt.port,
    backlog: 4096,
    perMessageDeflate: false,
    clientTracking: true,
    maxPayload: 1 << 20,
});

wss.on('connection', (ws) => {
    ws.on('error', () => {}); // a reset peer must not crash the server
    if (opt.mode === 'echo') {
        ws.on('message', (data, isBinary) => {
            ws.send(data, { binary: isBinary });
        });
    } else {
        ws.on('message', (data, isBinary) => {
            // ws frames the buffer again for every client; that is what a
            // plain ws application does, so it is what we measure.
            for (const c of wss.clients) {
                if (c.readyState === WebSocket.OPEN)
                    c.send(data, { binary: isBinary });
            }
        });
    }
});

wss.on('listening', () => {
    const a = wss.address();
    console.log(`listening on port ${a.port} mode ${opt.mode} pid ${process.pid}`);
});

wss.on('error', (e) => {
    console.error(`ws-server: ${e.message}`);
    process.exit(1);
});

function stop() {
    for (const c of wss.clients) c.terminate();
    wss.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

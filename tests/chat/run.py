#!/usr/bin/python3
"""
tests/chat/run.py - runs the over-the-wire tests of chatcore-server.

    /usr/bin/python3 tests/chat/run.py --server PATH [--only NAME[,NAME]]
                                       [--list] [--jobs N] [--keep-logs]

Modules run one after another; each gets one server (started here, stopped
with SIGTERM at the end: exit status 0 and no sanitizer report are checked
as a test of their own, "<module>.server_exit"). Within a module the tests
run concurrently (each on its own tenant), except those marked `alone`,
which run one at a time afterwards. Tests marked shared=False start their
own servers. Prints PASS/FAIL per test with its time; exits 1 on any
failure. --only takes exact names or fnmatch patterns.

Server stderr copies go to a log directory that is removed when everything
passed (kept with --keep-logs or on failure; its path is printed).
"""

import argparse
import asyncio
import fnmatch
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True      # no __pycache__ in the source tree

import harness  # noqa: E402
from harness import CURRENT_ENV, Env, SCENARIOS, Server  # noqa: E402

MODULES = ["test_flow", "test_delivery", "test_errors", "test_auth",
           "test_http", "test_restart", "test_web_api"]


def log(line):
    print(line, flush=True)


async def run_one(sc, server, sem, results):
    async with sem:
        env = Env(server, sc.name)
        CURRENT_ENV.set(env)
        t0 = time.monotonic()
        err = None
        try:
            if server is not None and not server.alive():
                raise harness.TestFailure(
                    "the module's server is not running (rc %r); stderr:\n%s"
                    % (server.proc.poll(), server.stderr_tail()))
            await asyncio.wait_for(sc.fn(env), sc.timeout)
        except asyncio.TimeoutError:
            err = "timed out after %d s\n%s" % (sc.timeout,
                                               traceback.format_exc())
        except Exception:
            err = traceback.format_exc()
        try:
            await asyncio.wait_for(env.cleanup(), 60)
        except Exception:
            err = (err or "") + "cleanup: " + traceback.format_exc()
        dt = time.monotonic() - t0
        if err is None:
            log("PASS %-28s %6.1f s" % (sc.name, dt))
        else:
            log("FAIL %-28s %6.1f s\n%s" % (sc.name, dt,
                                            indent(err.rstrip())))
            if server is not None:
                log("     server stderr (last lines, %s):\n%s"
                    % (server.log_path, indent(server.stderr_tail(15))))
        results.append((sc.name, err is None, dt))


def indent(text, pad="     | "):
    return "\n".join(pad + line for line in text.splitlines())


async def run_module(mod, scs, jobs, results):
    server = None
    if any(sc.shared for sc in scs):
        server = Server(name=mod)
        try:
            await asyncio.to_thread(server.start)
        except Exception:
            err = traceback.format_exc()
            for sc in scs:
                log("FAIL %-28s    0.0 s\n%s" % (sc.name,
                                                 indent("server start: "
                                                        + err)))
                results.append((sc.name, False, 0.0))
            server.kill()
            server.cleanup_data()
            return
    sem = asyncio.Semaphore(jobs)
    together = [sc for sc in scs if not sc.alone]
    await asyncio.gather(*(run_one(sc, server, sem, results)
                           for sc in together))
    one = asyncio.Semaphore(1)
    for sc in scs:
        if sc.alone:
            await run_one(sc, server, one, results)
    if server is not None:
        t0 = time.monotonic()
        name = mod + ".server_exit"
        try:
            await asyncio.to_thread(server.stop_checked)
            log("PASS %-28s %6.1f s" % (name, time.monotonic() - t0))
            results.append((name, True, 0.0))
        except Exception as e:
            log("FAIL %-28s %6.1f s\n%s" % (name, time.monotonic() - t0,
                                            indent(str(e))))
            results.append((name, False, 0.0))
        finally:
            server.kill()
            server.cleanup_data()


def selected(only):
    if not only:
        return list(SCENARIOS)
    pats = [p.strip() for p in only.split(",") if p.strip()]
    return [sc for sc in SCENARIOS
            if any(fnmatch.fnmatchcase(sc.name, p) for p in pats)]


async def main_async(args):
    scs = selected(args.only)
    if not scs:
        log("no test matches %r" % args.only)
        return 1
    results = []
    t0 = time.monotonic()
    for mod in MODULES:
        mine = [sc for sc in scs if sc.module == mod]
        if mine:
            await run_module(mod, mine, args.jobs, results)
    failed = [n for n, ok, _ in results if not ok]
    log("%d passed, %d failed in %.1f s"
        % (len(results) - len(failed), len(failed),
           time.monotonic() - t0))
    if failed:
        log("failed: " + ", ".join(failed))
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=False,
                    default=os.environ.get("CHATCORE_SERVER", ""))
    ap.add_argument("--only", default="")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--keep-logs", action="store_true")
    args = ap.parse_args()
    for mod in MODULES:
        importlib.import_module(mod)
    if args.list:
        for sc in SCENARIOS:
            log("%-28s %s%s" % (sc.name, sc.module,
                                " (alone)" if sc.alone else ""))
        return 0
    if not args.server or not os.access(args.server, os.X_OK):
        log("--server PATH: not an executable: %r" % args.server)
        return 2
    Server.binary = os.path.abspath(args.server)
    Server.logdir = tempfile.mkdtemp(prefix="chatwire-logs-")
    try:
        rc = asyncio.run(main_async(args))
    finally:
        harness.kill_all_servers()
    if rc == 0 and not args.keep_logs:
        shutil.rmtree(Server.logdir, ignore_errors=True)
    else:
        log("server logs: " + Server.logdir)
    return rc


if __name__ == "__main__":
    import signal

    def _on_signal(signum, frame):
        # ctest kills a test past its TIMEOUT: take the servers down too
        harness.kill_all_servers()
        os._exit(128 + signum)

    for _sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(_sig, _on_signal)
    sys.exit(main())

"""JavaScript functions, run in QuickJS inside a forked child process.

QuickJS has no file, network or process access, so a script can only reach the outside through
the built-ins this module gives it. The built-ins themselves run here, in the parent, each
bounded in time; the child only holds the interpreter and asks over a pipe. The whole run is
bounded too: the parent kills the child at the deadline (QuickJS cannot interrupt a script that
calls back into Python, so a separate process is what makes infinite loops safe).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import quickjs

BUILTIN_TIMEOUT_S = 30.0
MEMORY_LIMIT_BYTES = 64 * 1024 * 1024
MAX_LOG_LINES = 200
MAX_LOG_LINE_CHARS = 2000
BUILTINS = ("sendEvent", "executeTask", "executeTaskChain")

# The globals a script sees. Arguments cross to Python as JSON text; a failed built-in throws.
_PRELUDE = """
var event = JSON.parse(__event);
function __unwrap(reply) { var r = JSON.parse(reply); if (r.error !== undefined) throw new Error(r.error); return r.ok; }
function __json(value) { return JSON.stringify(value === undefined ? null : value); }
var console = { log: function () {
  __log(Array.prototype.map.call(arguments, function (a) { return typeof a === 'string' ? a : JSON.stringify(a); }).join(' '));
} };
function sendEvent(type, data) { return __unwrap(__sendEvent(__json([type, data]))); }
function executeTask(prompt, model, provider) { return __unwrap(__executeTask(__json([prompt, model, provider]))); }
function executeTaskChain(id, input) { return __unwrap(__executeTaskChain(__json([id, input]))); }
"""


class RunLimitExceeded(Exception):
    """Raised by a built-in when the run used up a limit: the whole run fails (the script cannot
    catch it and carry on)."""


@dataclass
class FunctionRun:
    status: str  # "ok", "error" or "timeout"
    result: Any = None
    error: str | None = None
    logs: list[str] = field(default_factory=list)


def syntax_error(script: str) -> str | None:
    """Compiles the script without running it; the error text, or None when it compiles."""
    context = quickjs.Context()
    context.set_memory_limit(MEMORY_LIMIT_BYTES)
    context.set_time_limit(2)
    context.set("__source", script)
    try:
        context.eval("new Function(__source); null")
    except quickjs.JSException as error:
        return str(error).splitlines()[0]
    return None


def _child(connection: Any, script: str, event_json: str) -> None:
    context = quickjs.Context()
    context.set_memory_limit(MEMORY_LIMIT_BYTES)

    def asking(name: str) -> Callable[[str], str]:
        def ask(arguments: str) -> str:
            connection.send(("call", name, arguments))
            return connection.recv()

        return ask

    for name in BUILTINS:
        context.add_callable(f"__{name}", asking(name))
    context.add_callable("__log", lambda text: connection.send(("log", str(text))))
    context.set("__event", event_json)
    context.set("__source", script)
    try:
        context.eval(_PRELUDE)
        result = context.eval(
            "JSON.stringify((function (v) { return v === undefined ? null : v; })((0, eval)(__source)))"
        )
        connection.send(("done", result))
    except Exception as error:  # the script threw or hit the memory limit
        connection.send(("failed", str(error).splitlines()[0] if str(error) else type(error).__name__))
    finally:
        connection.close()


def _call(builtin: Callable[..., Any], arguments: str, timeout_s: float) -> str:
    executor = ThreadPoolExecutor(max_workers=1)
    try:
        value = executor.submit(builtin, *json.loads(arguments)).result(timeout=timeout_s)
        return json.dumps({"ok": value}, default=str)
    except RunLimitExceeded:
        raise
    except FutureTimeout:
        return json.dumps({"error": f"timed out after {timeout_s:g} s"})
    except Exception as error:
        return json.dumps({"error": str(error) or type(error).__name__})
    finally:
        executor.shutdown(wait=False)


def run(
    script: str,
    event: dict[str, Any],
    builtins: dict[str, Callable[..., Any]],
    *,
    timeout_s: float,
    builtin_timeout_s: float = BUILTIN_TIMEOUT_S,
) -> FunctionRun:
    """Runs the script with `event` as a global; its last expression's value is the result."""
    processes = multiprocessing.get_context("fork")
    ours, theirs = processes.Pipe()
    child = processes.Process(target=_child, args=(theirs, script, json.dumps(event, default=str)), daemon=True)
    child.start()
    theirs.close()
    deadline = time.monotonic() + timeout_s
    logs: list[str] = []
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not ours.poll(remaining):
                return FunctionRun("timeout", error=f"the function ran past {timeout_s:g} s", logs=logs)
            try:
                message = ours.recv()
            except EOFError:
                return FunctionRun("error", error="the sandbox ended without a result", logs=logs)
            kind = message[0]
            if kind == "log":
                if len(logs) < MAX_LOG_LINES:
                    logs.append(message[1][:MAX_LOG_LINE_CHARS])
            elif kind == "call":
                budget = max(0.0, min(builtin_timeout_s, deadline - time.monotonic()))
                try:
                    ours.send(_call(builtins[message[1]], message[2], budget))
                except RunLimitExceeded as exceeded:
                    return FunctionRun("error", error=str(exceeded), logs=logs)
            elif kind == "done":
                return FunctionRun("ok", result=json.loads(message[1]), logs=logs)
            else:
                return FunctionRun("error", error=message[1], logs=logs)
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        ours.close()

"""One step of a chain run: one attempt of one task.

The chain-step Lambda calls `run_step` with the task, the chain's settings and the execution
state; Step Functions does the rest (order, branches, retries, timeouts, on_failure). The
execution state carries the variables:
    {"run_id", "vars": {name: value}, "types": {name: data type}, "current", "current_type",
     "transition", "transition_number", "halt" (null, or why the run stops), "failure"? (set by a Catch),
     "stream" (a streamed run), "handoff" (null, or the final model step left to the API function),
     "resume_at" (the Route state a resumed run starts at, or "")}
Every attempt, failed or not, is recorded as one CapturedStateUnit with the run. In a streamed run
the API function runs the handed-off step itself with `stream_step`.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import re
import time
import uuid
from collections.abc import Generator
from typing import Any

from aiplane.chains import hooks, store
from aiplane.chains.llm_port import LLMPort, ModelChoice, default_llm
from aiplane.chains.model import TaskDefinition, parse_duration_s
from aiplane.chains.templates import render, to_text
from aiplane.data import offload
from aiplane.errors import AiplaneError, ValidationError
from aiplane.identity.principal import Principal
from aiplane.observability import logger
from aiplane_shared.resources import CHAIN_RUNS_PREFIX

DEFAULT_TASK_TIMEOUT_S = 240.0  # below the Express limit, so a run always ends


class TaskFailed(Exception):
    """A task attempt failed for a reason of its own (raise_error, unparseable reply, no branch)."""


class TaskTimedOut(Exception):
    """A task attempt ran past its `timeout`."""


class TokenLimitExceeded(Exception):
    """The chat history is longer than the chain's `token_limit`."""


def initial_state(
    run_id: str, input_value: Any, input_type: str, actor: Principal | None = None, *, stream: bool = False
) -> dict[str, Any]:
    """`actor`: who runs the chain (None: the system); remote hooks are resolved with its rights.
    `stream`: the run stops before a final model step, for the API function to stream it."""
    return {
        "run_id": run_id,
        "vars": {"input": input_value},
        "types": {"input": input_type},
        "current": input_value,
        "current_type": input_type,
        "transition": "",
        "transition_number": None,
        "halt": None,
        "actor": _actor_entry(actor),
        "stream": stream,
        "handoff": None,
        "resume_at": "",
    }


def _actor_entry(actor: Principal | None) -> dict[str, str] | None:
    # The API key it came with, if any: the chain's model calls are metered against it (aiplane.gateway.metering).
    if actor is None:
        return None
    return {"id": actor.id, "kind": actor.kind, **({"keyId": actor.claims["keyId"]} if "keyId" in actor.claims else {})}


def actor_of(state: dict[str, Any]) -> Principal | None:
    actor = state.get("actor")
    if not actor:
        return None
    return Principal(
        id=actor["id"],
        kind=actor["kind"],
        credential="chain",
        claims={"keyId": actor["keyId"]} if actor.get("keyId") else {},
    )


def pack_state(state: dict[str, Any]) -> dict[str, Any]:
    """The state with every large value (variables, `current`) replaced by a reference, each stored once."""
    prefix, stored = f"{CHAIN_RUNS_PREFIX}{state['run_id']}/", dict[str, Any]()
    return {
        **state,
        "vars": {name: offload.offload(value, prefix, stored) for name, value in state["vars"].items()},
        "current": offload.offload(state["current"], prefix, stored),
    }


def unpack_state(state: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = {}
    return {
        **state,
        "vars": {name: offload.resolve(value, loaded) for name, value in state["vars"].items()},
        "current": offload.resolve(state["current"], loaded),
    }


def new_run_id() -> str:
    return uuid.uuid4().hex


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """About four characters a token, plus a few per message (no tokenizer for every model)."""
    return sum(
        4 + math.ceil(len(to_text(message.get("content")) + json.dumps(message.get("tool_calls") or "")) / 4)
        for message in messages
    )


# ---- data conversions ----------------------------------------------------------------------------


def as_chat_history(value: Any, data_type: str) -> dict[str, Any]:
    if data_type == "openai_chat" and isinstance(value, dict):
        return {
            "messages": list(value.get("messages") or []),
            "model": value.get("model", ""),
            "tools": value.get("tools") or [],
        }
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        return dict(value)
    if data_type == "chat_history":
        raise TaskFailed("input is not a chat history")
    return {"messages": [{"role": "user", "content": to_text(value)}]}


def to_openai_response(history: dict[str, Any]) -> dict[str, Any]:
    messages = history.get("messages") or []
    last = next((m for m in reversed(messages) if m.get("role") == "assistant"), {"role": "assistant", "content": ""})
    message = {"role": "assistant", "content": last.get("content")}
    if last.get("tool_calls"):
        message["tool_calls"] = last["tool_calls"]
    prompt_tokens = int(history.get("input_tokens") or 0)
    completion_tokens = int(history.get("output_tokens") or 0)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": history.get("model") or "",
        "system_fingerprint": "aiplane",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if last.get("tool_calls") else "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def openai_completion(output: Any, output_type: str, model: str) -> dict[str, Any]:
    """A chain's answer as an OpenAI `chat.completion` (the chain's model, else `model`, the request's)."""
    if output_type == "openai_chat_response" and isinstance(output, dict):
        completion = dict(output)
    else:
        completion = to_openai_response(as_chat_history(output, output_type))
    completion["model"] = completion.get("model") or model
    completion.setdefault("id", f"chatcmpl-{uuid.uuid4().hex}")
    completion.setdefault("created", int(time.time()))
    return completion


def _compose(output: Any, output_type: str, other: Any, other_type: str, strategy: str) -> tuple[Any, str]:
    both_histories = (
        isinstance(output, dict) and "messages" in output and isinstance(other, dict) and "messages" in other
    )
    strategy = strategy or ("merge_chat_histories" if both_histories else "override")
    if strategy == "merge_chat_histories":
        if not both_histories:
            raise TaskFailed("merge_chat_histories needs two chat histories")
        return {**output, "messages": list(output["messages"]) + list(other["messages"])}, "chat_history"
    if strategy == "append_string_to_chat_history":
        history = as_chat_history(other, other_type)
        return {
            **history,
            "messages": history["messages"] + [{"role": "user", "content": to_text(output)}],
        }, "chat_history"
    return output, output_type  # override: the task's output stands


# ---- the handlers --------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_PAIR_SPLIT = re.compile(r"[;,\n]")


def _coerce(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


class StepContext:
    def __init__(
        self, task: TaskDefinition, chain: dict[str, Any], state: dict[str, Any], llm: LLMPort, deadline: float
    ):
        self.task, self.chain, self.state, self.llm, self.deadline = task, chain, state, llm, deadline

    @property
    def actor(self) -> Principal | None:
        return actor_of(self.state)

    def remaining_s(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TaskTimedOut(f"task {self.task.id!r} ran past its timeout")
        return remaining

    def choice(self) -> ModelChoice:
        config = self.task.execute_config
        if config is None:
            return ModelChoice()
        models = tuple(name for name in (config.model, *config.models) if name)
        providers = tuple(name for name in (config.provider, *config.providers) if name)
        return ModelChoice(models, providers, config.temperature)

    def prompt_text(self, input_value: Any) -> str:
        if self.task.prompt_template:
            return render(self.task.prompt_template, self.state["vars"])
        return to_text(input_value)

    def ask(self, input_value: Any) -> str:
        return self.llm.prompt(
            self.prompt_text(input_value),
            self.choice(),
            system=self.task.system_instruction,
            timeout_s=self.remaining_s(),
        ).strip()


def handle(ctx: StepContext, value: Any, data_type: str) -> tuple[Any, str, str]:
    """(output, output type, transition value) of one attempt."""
    handler = ctx.task.handler
    if handler == "noop":
        return value, data_type, "noop"
    if handler == "raise_error":
        raise TaskFailed(ctx.prompt_text(value) or "raise_error")
    if handler == "parse_transition":
        text = to_text(value).strip()
        command = text[1:].split(maxsplit=1)[0] if text.startswith("/") and len(text) > 1 else "pass"
        return value, data_type, command
    if handler == "raw_string":
        reply = ctx.ask(value)
        return reply, "string", reply
    if handler == "condition_key":
        reply = ctx.ask(value).strip().strip("\"'.").strip()
        conditions = ctx.task.valid_conditions or {}
        key = next((k for k in conditions if k == reply), None) or next(
            (k for k in conditions if k.lower() == reply.lower()), None
        )
        if key is None:
            raise TaskFailed(f"reply {reply!r} is none of {', '.join(conditions)}")
        result = bool(conditions[key])
        return result, "bool", "true" if result else "false"
    if handler == "parse_number":
        reply = ctx.ask(value)
        try:
            number = int(reply)
        except ValueError:
            match = _NUMBER.search(reply)
            if not match:
                raise TaskFailed(f"no number in reply {reply!r}") from None
            number = int(float(match.group()))
        return number, "int", str(number)
    if handler == "parse_score":
        reply = ctx.ask(value)
        try:
            score = float(reply)
        except ValueError:
            match = _NUMBER.search(reply)
            if not match:
                raise TaskFailed(f"no score in reply {reply!r}") from None
            score = float(match.group())
        return score, "float", f"{score:.2f}"
    if handler == "parse_range":
        reply = ctx.ask(value).replace(" ", "")
        match = re.fullmatch(r"(-?\d+(?:\.\d+)?)(?:-(-?\d+(?:\.\d+)?))?", reply)
        if not match:
            raise TaskFailed(f"reply {reply!r} is not a range")
        text = f"{match.group(1)}-{match.group(2) or match.group(1)}"
        return text, "string", text
    if handler == "parse_key_value":
        reply = ctx.ask(value)
        pairs: dict[str, Any] = {}
        for part in _PAIR_SPLIT.split(reply):
            key, separator, raw = part.partition("=") if "=" in part else part.partition(":")
            if separator and key.strip():
                pairs[key.strip()] = _coerce(raw.strip())
        if not pairs:
            raise TaskFailed(f"no key=value pairs in reply {reply!r}")
        return pairs, "json", "parsed"
    if handler == "embedding":
        vector = ctx.llm.embed(ctx.prompt_text(value), ctx.choice(), timeout_s=ctx.remaining_s())
        return vector, "vector", "ok"
    if handler == "model_execution":
        return _model_execution(ctx, value, data_type)
    if handler == "execute_tool_calls":
        return _execute_tool_calls(ctx, value, data_type)
    if handler == "convert_to_openai_chat_response":
        return to_openai_response(as_chat_history(value, data_type)), "openai_chat_response", "converted"
    if handler == "hook":
        return _hook(ctx, value, data_type)
    raise ValidationError(f"unknown handler {handler!r}", param="handler")


def _tools(ctx: StepContext) -> list[hooks.Tool]:
    config = ctx.task.execute_config
    if not config or not config.hooks:
        return []
    return hooks.tools_of(config.hooks, config.hide_tools, ctx.remaining_s(), ctx.actor)


def _model_execution(ctx: StepContext, value: Any, data_type: str) -> tuple[Any, str, str]:
    history, messages, tools, choice, input_tokens = _model_request(ctx, value, data_type)
    answer = ctx.llm.chat(messages, choice, tools=tools or None, timeout_s=ctx.remaining_s())
    return _model_output(history, messages, answer, input_tokens)


def _model_request(
    ctx: StepContext, value: Any, data_type: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], ModelChoice, int]:
    """What a model_execution step asks: (the chat history, the messages, the tools, the model choice, input tokens)."""
    history = as_chat_history(value, data_type)
    messages = list(history["messages"])
    instruction = ctx.task.system_instruction
    if instruction and not any(m.get("role") == "system" and m.get("content") == instruction for m in messages):
        messages.insert(0, {"role": "system", "content": instruction})
    input_tokens = estimate_tokens(messages)
    token_limit = int(ctx.chain.get("token_limit") or 0)
    if token_limit and input_tokens > token_limit:
        raise TokenLimitExceeded(
            f"the input has about {input_tokens} tokens, over the chain's token_limit {token_limit}"
        )
    tools = [tool.openai() for tool in _tools(ctx)]
    config = ctx.task.execute_config
    if config and config.pass_clients_tools:
        tools += list(history.get("tools") or [])
    choice = ctx.choice()
    if not choice.models and history.get("model"):  # the request's model (OpenAI input, a chat turn)
        choice = ModelChoice((history["model"],), choice.providers, choice.temperature)
    if not choice.providers and history.get("provider"):
        choice = ModelChoice(choice.models, (history["provider"],), choice.temperature)
    return history, messages, tools, choice, input_tokens


def _model_output(
    history: dict[str, Any], messages: list[dict[str, Any]], answer: dict[str, Any], input_tokens: int
) -> tuple[Any, str, str]:
    message = {
        key: answer["message"].get(key)
        for key in ("role", "content", "tool_calls")
        if answer["message"].get(key) is not None
    }
    message.setdefault("role", "assistant")
    message.setdefault("content", "")
    usage = answer.get("usage") or {}
    output = {
        **history,
        "messages": messages + [message],
        "model": answer.get("model") or history.get("model", ""),
        "input_tokens": int(usage.get("prompt_tokens") or input_tokens),
        "output_tokens": int(usage.get("completion_tokens") or estimate_tokens([message])),
    }
    return output, "chat_history", "tool-call" if message.get("tool_calls") else "executed"


def _execute_tool_calls(ctx: StepContext, value: Any, data_type: str) -> tuple[Any, str, str]:
    history = as_chat_history(value, data_type)
    messages = list(history["messages"])
    calls = (messages[-1].get("tool_calls") if messages else None) or []
    if not calls:
        return history, "chat_history", "no_calls_found"
    tools = {tool.name: tool for tool in _tools(ctx)}
    for call in calls:
        function = call.get("function") or {}
        tool = tools.get(function.get("name", ""))
        if tool is None:
            content: Any = {"error": f"unknown tool {function.get('name')!r}"}
        else:
            try:
                content = hooks.run_tool(
                    tool, hooks.parse_arguments(function.get("arguments")), ctx.remaining_s(), ctx.actor
                )
            except AiplaneError as error:
                content = {"error": error.message}
        messages.append(
            {
                "role": "tool",
                "tool_call_id": call.get("id", ""),
                "name": function.get("name", ""),
                "content": content if isinstance(content, str) else json.dumps(content),
            }
        )
    return {**history, "messages": messages}, "chat_history", "tools_executed"


def _render_args(args: Any, variables: dict[str, Any]) -> Any:
    if isinstance(args, str):
        return render(args, variables)
    if isinstance(args, dict):
        return {key: _render_args(item, variables) for key, item in args.items()}
    if isinstance(args, list):
        return [_render_args(item, variables) for item in args]
    return args


def _hook(ctx: StepContext, value: Any, data_type: str) -> tuple[Any, str, str]:
    call = ctx.task.hook
    assert call is not None  # validated with the chain
    args = _render_args(call.args, ctx.state["vars"])
    result = hooks.call_hook(
        call.name, call.tool_name, args, value, data_type, ctx.state.get("transition", ""), ctx.remaining_s(), ctx.actor
    )
    if ctx.task.output_template:
        variables = result.output if isinstance(result.output, dict) else {"output": result.output}
        return render(ctx.task.output_template, {**ctx.state["vars"], **variables}), "string", "ok"
    return result.output, result.data_type, "ok"


# ---- one step ------------------------------------------------------------------------------------


def _transition_number(transition: str) -> float | None:
    try:
        number = float(transition)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class _Attempt:
    """One attempt of a task, begun: its unpacked state, input, context and CapturedStateUnit."""

    def __init__(self, task: TaskDefinition, chain: dict[str, Any], state: dict[str, Any], llm: LLMPort | None) -> None:
        self.task, self.chain = task, chain
        self.state = state = unpack_state({key: value for key, value in state.items() if key != "failure"})
        input_var = task.input_var or ""
        if input_var:
            if input_var not in state["vars"]:
                self.value, self.data_type = None, "nil"
            else:
                self.value, self.data_type = state["vars"][input_var], state["types"].get(input_var, "any")
        else:
            self.value, self.data_type = state["current"], state["current_type"]
        self.timeout_s = parse_duration_s(task.timeout) if task.timeout else DEFAULT_TASK_TIMEOUT_S
        self.started = time.monotonic()
        self.context = StepContext(
            task, chain, state, llm or default_llm(caller=actor_of(state)), self.started + self.timeout_s
        )
        self.unit: dict[str, Any] = {
            "taskID": task.id,
            "taskHandler": task.handler,
            "inputType": self.data_type,
            "outputType": "",
            "transition": "",
            "duration": 0,
            "error": None,
            "inputVar": input_var or "previous_output",
        }
        if chain.get("debug"):
            self.unit["input"] = to_text(self.value)

    def finish(self, result: tuple[Any, str, str] | None, failure: BaseException | None = None) -> dict[str, Any]:
        """Record the attempt; return the next state, or raise its failure."""
        task, chain, state, unit = self.task, self.chain, self.state, self.unit
        if failure is not None:
            unit["error"] = {"error": getattr(failure, "message", None) or str(failure) or type(failure).__name__}
        unit["duration"] = int((time.monotonic() - self.started) * 1e9)  # nanoseconds, as the contract's schema says
        if result is not None:
            output, output_type, transition = result
            unit.update(outputType=output_type, transition=transition)
            if chain.get("debug"):
                unit["output"] = to_text(output)
        steps = store.record_attempt(state["run_id"], unit)
        if steps > int(chain.get("max_steps") or 1):
            return pack_state({**state, "halt": f"the run exceeded {chain.get('max_steps')} steps"})
        if failure is not None:
            raise failure
        if task.print:
            logger.info(
                "task print", extra={"task": task.id, "print": render(task.print, {**state["vars"], task.id: output})}
            )
        state["vars"][task.id], state["types"][task.id] = output, output_type
        state["vars"]["previous_output"], state["types"]["previous_output"] = output, output_type
        return pack_state(
            {
                **state,
                "current": output,
                "current_type": output_type,
                "transition": transition,
                "transition_number": _transition_number(transition),
            }
        )


def run_step(
    task: TaskDefinition, chain: dict[str, Any], state: dict[str, Any], llm: LLMPort | None = None
) -> dict[str, Any]:
    """Run one attempt of `task`; return the next state, or raise so Step Functions retries/catches.
    In a streamed run, a final model step is not run here: the run ends handing it off."""
    if state.get("stream") and task.id in (chain.get("stream_steps") or ()):
        return {**state, "handoff": task.id}
    attempt = _Attempt(task, chain, state, llm)
    try:
        output, output_type, transition = _run_bounded(
            attempt.context, attempt.value, attempt.data_type, attempt.timeout_s
        )
        if task.compose and task.compose.with_var:
            other = attempt.state["vars"].get(task.compose.with_var)
            output, output_type = _compose(
                output,
                output_type,
                other,
                attempt.state["types"].get(task.compose.with_var, "any"),
                task.compose.strategy,
            )
            attempt.state["vars"][f"{task.id}_composed"], attempt.state["types"][f"{task.id}_composed"] = (
                output,
                output_type,
            )
    except Exception as error:  # recorded, then re-raised for Retry/Catch
        return attempt.finish(None, error)
    return attempt.finish((output, output_type, transition))


def stream_step(
    task: TaskDefinition, chain: dict[str, Any], state: dict[str, Any], llm: LLMPort | None = None
) -> Generator[dict[str, Any], None, dict[str, Any]]:
    """Run a handed-off final model step here: yield the model's deltas as they arrive, return the next
    state (with the step recorded as run_step records it). Stream steps have no compose, retry or on_failure."""
    attempt = _Attempt(task, chain, {**state, "handoff": None}, llm)
    context = attempt.context
    try:
        history, messages, tools, choice, input_tokens = _model_request(context, attempt.value, attempt.data_type)
        deltas = context.llm.chat_stream(messages, choice, tools=tools or None, timeout_s=context.remaining_s())
        try:
            while True:
                try:
                    delta = next(deltas)
                except StopIteration as done:
                    answer: dict[str, Any] = done.value
                    break
                context.remaining_s()  # past the task's timeout: TaskTimedOut
                yield delta
        finally:
            deltas.close()  # the backend's stream ends here too when the client goes away
        result = _model_output(history, messages, answer, input_tokens)
    except Exception as error:
        return attempt.finish(None, error)
    return attempt.finish(result)


def _run_bounded(context: StepContext, value: Any, data_type: str, timeout_s: float) -> tuple[Any, str, str]:
    """The handler, abandoned (and reported as a timeout) once the task's timeout has passed."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(handle, context, value, data_type)
    try:
        return future.result(timeout=timeout_s)
    except concurrent.futures.TimeoutError:
        raise TaskTimedOut(
            f"task {context.task.id!r} ran past its timeout of {context.task.timeout or timeout_s}"
        ) from None
    finally:
        pool.shutdown(wait=False)

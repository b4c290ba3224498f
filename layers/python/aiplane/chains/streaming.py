"""Streamed chain runs (`stream: true` on /openai/{chainID}/v1/chat/completions).

The chain's state machine runs in stream mode up to its final model step (`compiler.stream_steps`),
which it hands off; this process runs that step with the LLM port's streamed chat, sending each token
to the client as it arrives, then starts the machine again after the step, so the steps after it (and
a tool-call loop back to it) still run. A chain whose answer does not come from a final model step
runs whole and its answer is sent at the end. Everything up to the first token runs before the
response starts, so a failure there is an ordinary error status; after that, a failure ends the
stream with an error event and [DONE].
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Generator, Iterator
from typing import Any

from aiplane.chains import engine, runner, store
from aiplane.chains.compiler import chain_settings, route_state_name
from aiplane.chains.model import ChainDefinition
from aiplane.data.offload import resolve
from aiplane.errors import AiplaneError
from aiplane.identity.principal import Principal
from aiplane.observability import logger

# A handed-off step, begun: (its task id, its deltas returning the next state, the deltas read already).
Turn = tuple[str, Generator[dict[str, Any], None, dict[str, Any]], list[dict[str, Any]]]


def _as_error(error: Exception) -> AiplaneError:
    """A step's failure as the API answers it, as when the step fails inside the state machine."""
    return error if isinstance(error, AiplaneError) else runner.failure(type(error).__name__, str(error))


class StreamedRun:
    def __init__(self, state_machine_arn: str, chain: ChainDefinition, model: str, *, include_usage: bool) -> None:
        self.arn, self.model, self.include_usage = state_machine_arn, model, include_usage
        self.tasks = {task.id: task for task in chain.tasks}
        self.settings = chain_settings(chain)
        self.executions = 0
        self.id, self.created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def start(self, input_value: Any, input_type: str, principal: Principal | None) -> Iterator[str]:
        """Run up to the first token (raising what fails on the way), then return the stream's SSE lines."""
        state = self._execute(
            engine.pack_state(
                engine.initial_state(engine.new_run_id(), input_value, input_type, principal, stream=True)
            )
        )
        return self._chunks(state, self._open(state))

    def _execute(self, state: dict[str, Any]) -> dict[str, Any]:
        self.executions += 1  # a resumed run is another execution of the same run
        name = state["run_id"] if self.executions == 1 else f"{state['run_id']}-{self.executions}"
        return runner.execute(self.arn, state, name)

    def _open(self, state: dict[str, Any]) -> Turn | None:
        """Begin the handed-off step, if any, up to its first delta (so the backend is chosen and answering)."""
        task_id = state.get("handoff")
        if not task_id:
            return None
        steps = engine.stream_step(self.tasks[task_id], self.settings, state)
        try:
            return task_id, steps, [next(steps)]
        except StopIteration as done:  # an empty reply: the step is over already
            return task_id, _finished(done.value), []
        except Exception as error:
            raise _as_error(error) from None

    def _chunk(self, delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any) -> str:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
        return (
            "data: "
            + json.dumps(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": choices,
                    **extra,
                }
            )
            + "\n\n"
        )

    def _chunks(self, state: dict[str, Any], turn: Turn | None) -> Iterator[str]:
        yield self._chunk({"role": "assistant", "content": ""})
        try:
            answered = False  # the last streamed reply was the chain's answer (a plain reply, not tool calls)
            while turn is not None:
                task_id, steps, read = turn
                for delta in read:
                    yield from self._delta(delta)
                next_state = yield from self._relay(steps)
                answered = next_state.get("transition") == "executed"
                state = self._execute({**next_state, "resume_at": route_state_name(task_id)})
                turn = self._open(state)
            completion = engine.openai_completion(
                resolve(state.get("current")), state.get("current_type", "any"), self.model
            )
            choice = completion["choices"][0]
            if not answered and choice["message"].get("content"):  # the answer did not stream: it comes whole
                yield self._chunk({"content": choice["message"]["content"]})
            if choice["message"].get("tool_calls"):
                yield self._chunk(
                    {
                        "tool_calls": [
                            {"index": index, **call} for index, call in enumerate(choice["message"]["tool_calls"])
                        ]
                    }
                )
            yield self._chunk({}, choice["finish_reason"])
            if self.include_usage:
                yield self._chunk(None, usage=completion["usage"])
        except Exception as error:
            failure = _as_error(error)
            logger.warning("streamed chain run failed", extra={"error": failure.message})
            yield (
                "data: "
                + json.dumps(
                    {"error": {"code": failure.code, "message": failure.message, "param": None, "type": "server_error"}}
                )
                + "\n\n"
            )
        yield "data: [DONE]\n\n"

    def _delta(self, delta: dict[str, Any]) -> Iterator[str]:
        if delta.get("content"):  # tool calls wait for the run's end: the chain may run them itself
            yield self._chunk({"content": delta["content"]})

    def _relay(self, steps: Generator[dict[str, Any], None, dict[str, Any]]) -> Generator[str, None, dict[str, Any]]:
        while True:
            try:
                delta = next(steps)
            except StopIteration as done:
                return done.value
            yield from self._delta(delta)


def _finished(next_state: dict[str, Any]) -> Generator[dict[str, Any], None, dict[str, Any]]:
    """A step that has streamed all it had: no more deltas, then its next state."""
    yield from ()
    return next_state


def stream_stored(
    chain_id: str, input_value: Any, model: str, principal: Principal | None, *, include_usage: bool = False
) -> Iterator[str]:
    """Stream a stored chain's run on an OpenAI chat request (view on the chain needed, as run_stored)."""
    record = store.get_task_chain_record(chain_id, principal)
    chain = ChainDefinition.model_validate(json.loads(record.definition))  # validated when it was stored
    return StreamedRun(record.state_machine_arn, chain, model, include_usage=include_usage).start(
        input_value, "openai_chat", principal
    )

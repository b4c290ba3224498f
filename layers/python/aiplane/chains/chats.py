"""Chats: a history in DynamoDB, and a turn that runs the configured chat chain over it.

The chat chain is the stored chain named by AIPLANE_CHAT_CHAIN_ID, or else the built-in one
(model_execution, then execute_tool_calls while the model asks for tools), whose Express state
machine the CDK app deploys. The turn's model and provider travel in the chat-history input.
"""

from __future__ import annotations

from typing import Any

from aiplane.chains import runner, store
from aiplane.chains.model import parse_chain
from aiplane.identity.access import EDIT
from aiplane.identity.principal import Principal
from aiplane.settings import get_settings

BUILTIN_CHAT_KEY = "builtin-chat"

BUILTIN_CHAT_CHAIN: dict[str, Any] = {
    "id": BUILTIN_CHAT_KEY,
    "description": "built-in chat chain",
    "tasks": [
        {
            "id": "chat",
            "handler": "model_execution",
            "transition": {
                "branches": [
                    {"operator": "equals", "when": "tool-call", "goto": "tools"},
                    {"operator": "default", "goto": "end"},
                ]
            },
        },
        {
            "id": "tools",
            "handler": "execute_tool_calls",
            "transition": {"branches": [{"operator": "default", "goto": "chat"}]},
        },
    ],
}


def add_instruction(chat_id: str, instruction: str, principal: Principal | None = None) -> None:
    store.get_chat(chat_id, principal, EDIT)
    store.append_chat_messages(chat_id, [{"role": "system", "content": instruction}])


def chat_turn(
    chat_id: str, message: str, models: list[str], provider: str, principal: Principal | None = None
) -> dict[str, Any]:
    store.get_chat(chat_id, principal, EDIT)
    history = [{key: value for key, value in m.items() if key != "sentAt"} for m in store.chat_messages(chat_id)]
    user = {"role": "user", "content": message}
    input_value = {"messages": history + [user], "model": models[0] if models else "", "provider": provider}
    stored_chain = get_settings().chat_chain_id
    if stored_chain:
        output, _, state = runner.run_stored(stored_chain, input_value, "chat_history")
    else:
        output, _, state = runner.run_keyed(
            parse_chain(BUILTIN_CHAT_CHAIN), BUILTIN_CHAT_KEY, input_value, "chat_history", principal
        )
    messages = output.get("messages") if isinstance(output, dict) else None
    if not isinstance(messages, list):
        messages = history + [user, {"role": "assistant", "content": str(output)}]
    new_messages = messages[len(history) :]
    store.append_chat_messages(chat_id, new_messages)
    reply = next((m.get("content") or "" for m in reversed(new_messages) if m.get("role") == "assistant"), "")
    return {
        "response": reply,
        "state": state,
        "inputTokenCount": int(output.get("input_tokens") or 0) if isinstance(output, dict) else 0,
        "outputTokenCount": int(output.get("output_tokens") or 0) if isinstance(output, dict) else 0,
    }

"""Long chats through the chain path: large values travel as S3 references, the state stays small."""

from __future__ import annotations

import json

import pytest

from aiplane.chains import engine
from aiplane.data import aws, offload
from aiplane.settings import get_settings
from aiplane_shared import resources

STATE_BUDGET = 64 * 1024  # well below Step Functions' 256 KB
HISTORY_BYTES = 200 * 1024


@pytest.fixture
def step_payloads(monkeypatch):
    """Every event the chain-step Lambda receives from Step Functions and every result it returns, as JSON sizes."""
    import aiplane_local.moto_gaps as gaps

    sizes: list[tuple[str, int]] = []
    original = gaps.invoke

    def recording(function, event):
        result = original(function, event)
        if function == "runtime_chain_step":
            sizes.extend([("event", len(json.dumps(event))), ("result", len(json.dumps(result)))])
        return result

    monkeypatch.setattr(gaps, "invoke", recording)
    return sizes


def test_a_200_kb_chat_completes_through_the_chain_path_with_a_small_state(
    family_clients, admin_api_key, llm, step_payloads
):
    runtime, headers = family_clients["runtime"], {"X-API-Key": admin_api_key}
    llm.reply = lambda text, body: f"read {sum(len(m['content']) for m in body['messages'])} characters"
    chat_id = runtime.post("/chats", json={"subject": "long"}, headers=headers).json()["id"]
    chunk = 50 * 1024
    for part in range(HISTORY_BYTES // chunk):
        instruction = f"part {part} " + "x" * chunk
        assert (
            runtime.post(
                f"/chats/{chat_id}/instruction", json={"instruction": instruction}, headers=headers
            ).status_code
            == 200
        )
    response = runtime.post(
        f"/chats/{chat_id}/chat", json={"message": "sum it up", "models": ["stand-in"]}, headers=headers
    )
    assert response.status_code == 200, response.text
    history_chars = sum(len(f"part {part} ") + chunk for part in range(4)) + len("sum it up")
    assert response.json()["response"] == f"read {history_chars} characters"  # the model saw the whole history
    assert [m["role"] for m in runtime.get(f"/chats/{chat_id}", headers=headers).json()][-2:] == ["user", "assistant"]
    assert step_payloads and max(size for _, size in step_payloads) < STATE_BUDGET, step_payloads


def test_small_values_stay_inline_and_large_ones_are_stored_once():
    state = engine.initial_state(
        "run-offload", {"messages": [{"role": "user", "content": "y" * 40_000}]}, "chat_history"
    )
    packed = engine.pack_state(state)
    assert offload.is_reference(packed["current"]) and packed["vars"]["input"] == packed["current"]
    assert len(json.dumps(packed)) < 1024
    listing = aws.client("s3").list_objects_v2(
        Bucket=get_settings().bucket(resources.ARTIFACT_BUCKET.name),
        Prefix=f"{resources.CHAIN_RUNS_PREFIX}run-offload/",
    )
    assert listing["KeyCount"] == 1
    assert engine.unpack_state(packed) == state
    small = engine.initial_state("run-small", "hello", "string")
    assert engine.pack_state(small) == small

"""One way to send to SQS and EventBridge: batches of 10, and a refused entry is an error (both
services answer 200 to a batch whose entries they refused)."""

from __future__ import annotations

import pytest

from aiplane.data import event_bus, publish
from aiplane_shared import resources


class Answering:
    """A client that records each batch and answers with the given refusals."""

    def __init__(self, refuse_first: bool = False) -> None:
        self.batches: list[list[dict]] = []
        self.refuse_first = refuse_first

    def send_message_batch(self, QueueUrl, Entries):
        self.batches.append(Entries)
        return {"Failed": [{"Id": "0", "Code": "InvalidMessageContents"}] if self.refuse_first else []}

    def put_events(self, Entries):
        self.batches.append(Entries)
        if self.refuse_first:
            return {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}],
            }
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}


@pytest.fixture
def answering(monkeypatch):
    def make(**options):
        client = Answering(**options)
        monkeypatch.setattr(publish.aws, "client", lambda service: client)  # event_bus shares the module
        monkeypatch.setattr(publish, "queue_url", lambda queue: f"https://sqs/{queue.name}")
        return client

    return make


def test_messages_go_in_batches_of_ten(answering):
    client = answering()
    publish.send_messages(resources.PROVISIONING_QUEUE, [{"n": n} for n in range(23)])
    assert [len(batch) for batch in client.batches] == [10, 10, 3]
    assert client.batches[2][0]["MessageBody"] == '{"n": 20}'


def test_a_refused_message_is_an_error_naming_the_queue(answering):
    answering(refuse_first=True)
    with pytest.raises(publish.PublishRefused, match=resources.PROVISIONING_QUEUE.name):
        publish.send_messages(resources.PROVISIONING_QUEUE, [{"n": 1}])


def test_a_refused_event_is_an_error_naming_why(answering):
    client = answering()
    event_bus.put_events(resources.DOMAIN_EVENT_BUS, "aiplane.test", "probe", [{"n": n} for n in range(12)])
    assert [len(batch) for batch in client.batches] == [10, 2]
    answering(refuse_first=True)
    with pytest.raises(publish.PublishRefused, match="ThrottlingException slow down"):
        event_bus.put_events(resources.DOMAIN_EVENT_BUS, "aiplane.test", "probe", [{"n": 1}])

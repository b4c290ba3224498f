"""PynamoDB models of tracked requests, their operation counters and alerts (runtime table).

- ACTIVITY#<id> / META                    gsi1: ACTIVITY#REQUESTS / <startedAt>#<id>,
                                          gsi2: ACTIVITY#OP#<operation>#<subject> / <startedAt>#<id>
- ACTIVITY#OPERATIONS / <operation>#<subject>   how often an operation ran, and when last
- ACTIVITY#ALERTS / <at>#<request id>     a tracked request that failed on the server side
Everything expires after RETENTION (TTL; reads skip what has expired but is not yet removed).
"""

from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute

from aiplane.data.models import Gsi1
from aiplane.data.runtime_table import RuntimeItem
from aiplane.files.models import Gsi2

REQUESTS = "ACTIVITY#REQUESTS"
OPERATIONS = "ACTIVITY#OPERATIONS"
ALERTS = "ACTIVITY#ALERTS"


def operation_key(operation: str, subject: str) -> str:
    return f"ACTIVITY#OP#{operation}#{subject}"


class ActivityRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute(default=REQUESTS)
    gsi1sk = UnicodeAttribute()
    gsi2pk = UnicodeAttribute()
    gsi2sk = UnicodeAttribute()
    by_start = Gsi1()
    by_operation = Gsi2()
    request_id = UnicodeAttribute()
    operation = UnicodeAttribute()
    subject = UnicodeAttribute()
    principal_id = UnicodeAttribute()
    method = UnicodeAttribute()
    path = UnicodeAttribute()
    status = NumberAttribute()  # the HTTP status answered
    error = UnicodeAttribute(null=True)
    started_at = UnicodeAttribute()
    ended_at = UnicodeAttribute()
    duration_ms = NumberAttribute()
    metadata = JSONAttribute(default=dict)
    expires_at_epoch = NumberAttribute()


class OperationRecord(RuntimeItem):
    operation = UnicodeAttribute()
    subject = UnicodeAttribute()
    times = NumberAttribute(default=0, attr_name="count")  # `count` would hide Model.count()
    last_at = UnicodeAttribute()


class AlertRecord(RuntimeItem):
    request_id = UnicodeAttribute()
    message = UnicodeAttribute()
    metadata = JSONAttribute(default=dict)
    at = UnicodeAttribute()
    expires_at_epoch = NumberAttribute()

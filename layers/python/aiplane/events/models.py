"""PynamoDB records of the runtime events area (all in the runtime table).

Key layout (pk / sk; gsi sort keys lead with an RFC3339 timestamp so they sort in time order):
- FUNCTION#<name> / META            gsi1: FUNCTIONS / <createdAt>#<name>
- TRIGGER#<name> / META             gsi1: TRIGGERS / <createdAt>#<name>; gsi2: TRIGGERTYPE#<type> / <name>;
                                    gsi3: TRIGGERFUNCTION#<function> / <createdAt>#<name>
- EVENTTYPE#<type> / <createdAt>#<id>  one event; gsi1: EVENTAGG#<type>#<aggType>#<aggId>; gsi2: EVENTSRC#<source>
- EVENTTYPES / <type>               the distinct event types, with first and last event times
- COUNTER / <name>#<shard>          atomic counters for the numeric ids (nid), sharded (store.next_nid)
- RAWEVENTS#<shard> / <receivedAt>#<nid>  one raw event (shard: nid mod SHARDS); gsi1: RAWEVENT#<nid> / <receivedAt>
- MAPPING#<path> / META             gsi1: MAPPINGS / <path>
- JOB#<id> / META                   gsi1: JOBQUEUE#<status>#<taskType> / <createdAt>#<id> (pending) or
                                    JOBLEASES / <lease expiry epoch, zero padded>#<id> (leased);
                                    gsi2: JOBS#<status> / <createdAt>#<id>
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from aiplane.data.models import Gsi1, Gsi2, Gsi3
from aiplane.data.runtime_table import RuntimeItem


class FunctionRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute(default="FUNCTIONS")
    gsi1sk = UnicodeAttribute()
    by_created = Gsi1()
    name = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    script_type = UnicodeAttribute()
    script = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    owner_id = UnicodeAttribute(null=True)  # a triggered run acts as this user; None: the admin's (made before owners)


class TriggerRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute(default="TRIGGERS")
    gsi1sk = UnicodeAttribute()
    by_created = Gsi1()
    gsi2pk = UnicodeAttribute()  # TRIGGERTYPE#<listened event type>
    gsi2sk = UnicodeAttribute()  # the trigger name
    by_event_type = Gsi2()
    gsi3pk = UnicodeAttribute(null=True)  # trigger_function_key; set by every write (older items: aiplane.backfill)
    gsi3sk = UnicodeAttribute(null=True)  # as gsi1sk
    by_function = Gsi3()
    name = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    listen_for = UnicodeAttribute()
    trigger_type = UnicodeAttribute()
    function = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    owner_id = UnicodeAttribute(null=True)


def trigger_function_key(function: str) -> str:
    return f"TRIGGERFUNCTION#{function}"


class EventRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    by_aggregate = Gsi1()
    gsi2pk = UnicodeAttribute()
    gsi2sk = UnicodeAttribute()
    by_source = Gsi2()
    event_id = UnicodeAttribute()
    nid = NumberAttribute()
    created_at = UnicodeAttribute()
    event_type = UnicodeAttribute()
    event_source = UnicodeAttribute(default="")
    aggregate_id = UnicodeAttribute()
    aggregate_type = UnicodeAttribute()
    version = NumberAttribute()
    data = UnicodeAttribute()  # JSON
    metadata = UnicodeAttribute()  # JSON


class EventTypeRecord(RuntimeItem):
    first_at = UnicodeAttribute()
    last_at = UnicodeAttribute()


class CounterRecord(RuntimeItem):
    value = NumberAttribute(default=0)


class RawEventRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    by_nid = Gsi1()
    raw_id = UnicodeAttribute()
    nid = NumberAttribute()
    received_at = UnicodeAttribute()
    path = UnicodeAttribute()
    headers = UnicodeAttribute()  # JSON object
    payload = UnicodeAttribute()  # JSON object


class MappingRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute(default="MAPPINGS")
    gsi1sk = UnicodeAttribute()
    by_path = Gsi1()
    body = UnicodeAttribute()  # the MappingConfig as JSON


PENDING, LEASED = "pending", "leased"  # a job's states


class JobRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    by_queue = Gsi1()
    gsi2pk = UnicodeAttribute()
    gsi2sk = UnicodeAttribute()
    by_status = Gsi2()
    job_id = UnicodeAttribute()
    status = UnicodeAttribute()  # pending | leased
    task_type = UnicodeAttribute()
    operation = UnicodeAttribute(default="")
    subject = UnicodeAttribute(default="")
    entity_id = UnicodeAttribute(default="")
    entity_type = UnicodeAttribute(default="")
    payload = UnicodeAttribute(default="null")  # JSON
    scheduled_for = NumberAttribute()  # epoch seconds
    valid_until = NumberAttribute()  # epoch seconds
    retry_count = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    leaser_id = UnicodeAttribute(null=True)
    lease_expires_epoch = NumberAttribute(null=True)
    expires_at_epoch = NumberAttribute(null=True)  # TTL: removed after valid_until


class TriggerChainRecord(RuntimeItem):
    """TRIGGERCHAIN#<originating event id> / BUDGET: the events the trigger runs caused by one
    appended event have sent, at every depth (aiplane.events.triggers); removed after a day."""

    sent = NumberAttribute(default=0)
    expires_at_epoch = NumberAttribute()

"""PynamoDB model of a Telegram frontend (runtime table). The bot token is not here: it lives in
Secrets Manager under `<prefix>-telegram-<id>-bot-token`.

- TELEGRAM#<id> / META   gsi1: TELEGRAMS / <createdAt>#<id>, gsi2: TELEGRAM#USER#<userId> / <createdAt>#<id>
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from aiplane.data.models import Gsi1
from aiplane.data.runtime_table import RuntimeItem
from aiplane.files.models import Gsi2

ALL_FRONTENDS = "TELEGRAMS"


def user_key(user_id: str) -> str:
    return f"TELEGRAM#USER#{user_id}"


class TelegramFrontendRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute(default=ALL_FRONTENDS)
    gsi1sk = UnicodeAttribute()
    gsi2pk = UnicodeAttribute()
    gsi2sk = UnicodeAttribute()
    by_creation = Gsi1()
    by_user = Gsi2()
    frontend_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    chat_chain = UnicodeAttribute()
    secret_name = UnicodeAttribute()
    sync_interval = NumberAttribute(default=60)
    last_offset = NumberAttribute(default=0)
    status = UnicodeAttribute(default="pending")  # pending, active, error (set by the poller) or paused
    last_heartbeat = UnicodeAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    # The poller's own bookkeeping (aiplane.telegram.poller), epoch seconds: when it last started a
    # poll, and until when the poll in progress holds the frontend (no second poller answers twice).
    polled_at = NumberAttribute(default=0)
    poll_lease_until = NumberAttribute(default=0)

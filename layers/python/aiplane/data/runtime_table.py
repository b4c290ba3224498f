"""The runtime table's base model: every runtime record (files, events, gateway, chains, activity,
telegram) subclasses it."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from aiplane.data.models import table_meta
from aiplane_shared import resources


class RuntimeItem(Model):
    Meta = table_meta(resources.RUNTIME_TABLE)
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

"""The gpufarm table's base model: gpufarm's and commerce's records subclass it."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from aiplane.data.models import table_meta
from aiplane_shared import resources


class GpufarmItem(Model):
    Meta = table_meta(resources.GPUFARM_TABLE)
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)

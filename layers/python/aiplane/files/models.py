"""PynamoDB models of files, folders, name claims, indexed chunks and keywords (runtime table).

Key layout (pk / sk):
- FILENODE#<id> / META            a file or folder; gsi1: FILES#CHILDREN#<parent id or ROOT> / <name>,
                                  gsi2: FILES#ALL#<shard> / <createdAt>#<id> (every node, oldest first,
                                  over `aiplane.data.shards` shards by id)
- FILENAME#<parent>#<name> / META claims a name inside one folder (written in the same transaction)
- FILEUPLOAD#<file id> / META     a presigned upload not completed yet (expires with the policy);
                                  gsi1: FILEUPLOADS / <expiry epoch>#<file id> (the sweep's)
- SEARCH#<owner> / CHUNK#<doc id>#<n> one chunk's text of an indexed document
- SEARCH#<owner> / VECTORS#<doc id>#<b> block b of the document's embeddings: float32 rows packed
                                  together, so a search reads a few items per document, not one per chunk
- SEARCH#<owner> / VECTORS-VERSION  changes with every write of the owner's vectors (search's cache key)
- SEARCH#<owner> / KEYWORD#<word>     a keyword; gsi1: SEARCH#KEYWORDS#<owner> / <first seen>#<word>
"""

from __future__ import annotations

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute

from aiplane.data.models import Gsi1, Gsi2
from aiplane.data.runtime_table import RuntimeItem
from aiplane.data.shards import shard_of

ROOT = "ROOT"
ALL_NODES = "FILES#ALL"
FILE, FOLDER = "file", "folder"
INDEX_FILE_TASK = "file_index"  # the job type of a file's (re)indexing (aiplane.files.indexing)


def node_key(node_id: str) -> str:
    return f"FILENODE#{node_id}"


def all_nodes_key(node_id: str) -> str:
    return f"{ALL_NODES}#{shard_of(node_id)}"


def children_key(parent_id: str | None) -> str:
    return f"FILES#CHILDREN#{parent_id or ROOT}"


def name_claim_key(parent_id: str | None, name: str) -> str:
    return f"FILENAME#{parent_id or ROOT}#{name}"


class FileNodeRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    gsi2pk = UnicodeAttribute()  # all_nodes_key
    gsi2sk = UnicodeAttribute()
    by_parent = Gsi1()
    by_creation = Gsi2()
    node_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # file | folder
    name = UnicodeAttribute()
    parent_id = UnicodeAttribute(default="")  # "" at the root
    content_type = UnicodeAttribute(null=True)
    size = NumberAttribute(default=0)
    blob_key = UnicodeAttribute(null=True)  # the object in the artifacts bucket holding the content
    blob_version = UnicodeAttribute(null=True)  # its version: reads name it (aiplane.data.presigned)
    revision = NumberAttribute(default=1)  # bumped on every write; updates are conditional on it
    owner_id = UnicodeAttribute(null=True)  # who created it; None: made before owners were recorded (the admin's)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


PENDING_FILE_UPLOADS = "FILEUPLOADS"


class FileUploadRecord(RuntimeItem):
    """What a presigned upload will create (`revision` None) or replace (the revision it was read at)."""

    node_id = UnicodeAttribute()
    name = UnicodeAttribute()
    parent_id = UnicodeAttribute(default="")
    content_type = UnicodeAttribute()
    size = NumberAttribute()
    blob_key = UnicodeAttribute()
    revision = NumberAttribute(null=True)
    announced_by = UnicodeAttribute()  # the principal that may complete it (the new file's owner)
    sha256 = UnicodeAttribute(null=True)  # the content's declared SHA-256 (hex), checked at completion
    created_at = UnicodeAttribute()
    expires_at_epoch = NumberAttribute()
    gsi1pk = UnicodeAttribute(default=PENDING_FILE_UPLOADS)
    gsi1sk = UnicodeAttribute()  # presigned.expiry_sort_key: the sweep finds the abandoned ones
    by_expiry = Gsi1()


def upload_key(node_id: str) -> str:
    return f"FILEUPLOAD#{node_id}"


class NameClaimRecord(RuntimeItem):
    node_id = UnicodeAttribute()


class ChunkRecord(RuntimeItem):
    document_id = UnicodeAttribute()
    position = NumberAttribute()
    text = UnicodeAttribute()
    model = UnicodeAttribute()
    job_id = UnicodeAttribute(null=True)
    leaser_id = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()


class VectorBlockRecord(RuntimeItem):
    """The embeddings of chunks first_position .. first_position + rows - 1 of one document."""

    document_id = UnicodeAttribute()
    first_position = NumberAttribute()
    rows = NumberAttribute()
    dimensions = NumberAttribute()
    vectors = BinaryAttribute(legacy_encoding=False)  # rows x dimensions float32, row-major, little-endian
    model = UnicodeAttribute()


class VectorVersionRecord(RuntimeItem):
    version = UnicodeAttribute()


class KeywordRecord(RuntimeItem):
    gsi1pk = UnicodeAttribute()
    gsi1sk = UnicodeAttribute()
    by_first_seen = Gsi1()
    word = UnicodeAttribute()
    first_seen = UnicodeAttribute()

"""The semantic index's storage: per owner (`SEARCH#<owner>`), each document's chunk texts (one
item each) and its embeddings packed as float32 blocks (`VECTORS#<doc id>#<block>`, up to
BLOCK_BYTES each), so a search reads one item per block of rows, not one per chunk, and ranks
them with numpy (aiplane.files.search; this module only moves the bytes, so the folder tree
that calls it on deletes does not load numpy).

A warm container keeps the blocks it read per owner (up to CACHE_BYTES in all, least recently
used dropped first) with the owner's vectors version, an item every write changes: a search whose
owner's version is unchanged reads one item instead of every block."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from aiplane.data.models import get_or_none
from aiplane.files.models import ChunkRecord, VectorBlockRecord, VectorVersionRecord

BLOCK_BYTES = 256 * 1024  # well inside DynamoDB's 400 KB item limit
CACHE_BYTES = 192 * 1024 * 1024
VERSION_KEY = "VECTORS-VERSION"
FLOAT32_BYTES = 4  # vectors are float32, little-endian ("<f4")


def partition(owner: str) -> str:
    return f"SEARCH#{owner}"


def _chunk_key(document_id: str, position: int) -> str:
    return f"CHUNK#{document_id}#{position:05d}"


def _block_prefix(document_id: str) -> str:
    return f"VECTORS#{document_id}#"


def rows_per_block(dimensions: int) -> int:
    return max(1, BLOCK_BYTES // (FLOAT32_BYTES * dimensions))


def _blocks_of(owner: str, document_id: str) -> list[VectorBlockRecord]:
    return list(VectorBlockRecord.query(partition(owner), VectorBlockRecord.sk.startswith(_block_prefix(document_id))))


def chunk_count(owner: str, document_id: str) -> int:
    """How many chunks of the document are indexed (0: none)."""
    return sum(int(block.rows) for block in _blocks_of(owner, document_id))


def write_document(
    owner: str,
    document_id: str,
    texts: list[str],
    packed: bytes,
    dimensions: int,
    *,
    model: str,
    job_id: str | None,
    leaser_id: str | None,
    now: str,
) -> None:
    """Store the chunks and their embeddings (`packed`: one float32 row of `dimensions` per text,
    row-major), replacing what the document had.
    Overwritten in place, then the positions and blocks the new version no longer has are dropped:
    a concurrent search sees old or new chunks, never an empty document."""
    old_blocks = _blocks_of(owner, document_id)
    old_count = sum(int(block.rows) for block in old_blocks)
    rows, row_bytes = rows_per_block(dimensions), FLOAT32_BYTES * dimensions
    if len(packed) != row_bytes * len(texts):
        raise ValueError("one embedding row per text expected")
    with ChunkRecord.batch_write() as batch:
        for position, text in enumerate(texts):
            batch.save(
                ChunkRecord(
                    partition(owner),
                    _chunk_key(document_id, position),
                    document_id=document_id,
                    position=position,
                    text=text,
                    model=model,
                    job_id=job_id or None,
                    leaser_id=leaser_id or None,
                    created_at=now,
                )
            )
        for position in range(len(texts), old_count):
            batch.delete(ChunkRecord(partition(owner), _chunk_key(document_id, position)))
    new_keys = set()
    with VectorBlockRecord.batch_write() as batch:
        for block, start in enumerate(range(0, len(texts), rows)):
            count = min(rows, len(texts) - start)
            key = f"{_block_prefix(document_id)}{block:05d}"
            new_keys.add(key)
            batch.save(
                VectorBlockRecord(
                    partition(owner),
                    key,
                    document_id=document_id,
                    first_position=start,
                    rows=count,
                    dimensions=dimensions,
                    model=model,
                    vectors=packed[start * row_bytes : (start + count) * row_bytes],
                )
            )
        for old in old_blocks:
            if old.sk not in new_keys:
                batch.delete(old)
    _changed(owner)


def remove_document(owner: str, document_id: str) -> int:
    """Drop a document's chunks and embeddings; returns how many chunks it had."""
    blocks = _blocks_of(owner, document_id)
    count = sum(int(block.rows) for block in blocks)
    with VectorBlockRecord.batch_write() as batch:
        for block in blocks:
            batch.delete(block)
    with ChunkRecord.batch_write() as batch:
        for position in range(count):
            batch.delete(ChunkRecord(partition(owner), _chunk_key(document_id, position)))
    if blocks:
        _changed(owner)
    return count


def _changed(owner: str) -> None:
    """After the writes: a search that read the old version before them reloads next time."""
    VectorVersionRecord(partition(owner), VERSION_KEY, version=str(uuid.uuid4())).save()


def _version(owner: str) -> str | None:
    record = get_or_none(VectorVersionRecord, partition(owner), VERSION_KEY, consistent_read=True)
    return record.version if record is not None else None


@dataclass(frozen=True)
class Block:
    document_id: str
    first_position: int
    count: int
    dimensions: int
    vectors: bytes  # count x dimensions float32, row-major, little-endian


_cache: OrderedDict[tuple[str, int], tuple[str, list[Block], int]] = OrderedDict()  # -> (version, blocks, bytes)
_cache_lock = threading.Lock()


def blocks(owner: str, max_chunks: int) -> list[Block]:
    """The owner's embedding blocks in key order (document id, then position), at most `max_chunks`
    rows: the bound on one search's work. From the cache while the owner's version is unchanged."""
    version, key = _version(owner), (owner, max_chunks)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == version:
            _cache.move_to_end(key)
            return cached[1]
    loaded = list(_read_blocks(owner, max_chunks))
    size = sum(len(block.vectors) for block in loaded)
    if version is not None and size <= CACHE_BYTES:
        with _cache_lock:
            _cache[key] = (version, loaded, size)
            while sum(entry[2] for entry in _cache.values()) > CACHE_BYTES:
                _cache.popitem(last=False)
    return loaded


def _read_blocks(owner: str, max_chunks: int) -> Iterator[Block]:
    read = 0
    for record in VectorBlockRecord.query(partition(owner), VectorBlockRecord.sk.startswith("VECTORS#")):
        if read >= max_chunks:
            return
        count, dimensions = min(int(record.rows), max_chunks - read), int(record.dimensions)
        read += count
        yield Block(
            record.document_id,
            int(record.first_position),
            count,
            dimensions,
            record.vectors[: count * dimensions * FLOAT32_BYTES],
        )


def chunk_texts(owner: str, chunks: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The texts of (document id, position) chunks, read in batches."""
    keys = [(partition(owner), _chunk_key(document_id, position)) for document_id, position in chunks]
    return {(record.document_id, int(record.position)): record.text for record in ChunkRecord.batch_get(keys)}

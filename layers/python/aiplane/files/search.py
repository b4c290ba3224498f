"""Semantic index: chunks embedded through the runtime gateway, stored per caller, searched by
exact cosine similarity.

Search loads every chunk the caller has indexed (one Query on the caller's partition) and ranks
them in memory. That is exact and simple, and fine for small corpora (thousands of chunks); a
large corpus needs a vector index (OpenSearch, pgvector) instead.
"""

from __future__ import annotations

import math
import re
import sys
from array import array
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError

from aiplane.clock import now_iso
from aiplane.data.pagination import parse_limit, timestamp_cursor
from aiplane.errors import ConflictError, NotFoundError, ValidationError
from aiplane.files import tree
from aiplane.files.models import FILE, ChunkRecord, KeywordRecord
from aiplane.gateway.inference import default_embed_model, embed
from aiplane.identity.principal import Principal

DEFAULT_TOP_K = 10
MAX_CHUNKS_PER_CALL = 256
KEYWORDS_PER_DOCUMENT = 5
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # as gateway.clock.now_iso writes it
_WORD = re.compile(r"[a-z][a-z0-9]{2,}")
_STOPWORDS = frozenset(
    "the and for are but not you all any can had her was one our out has have his how its may new now "
    "who did get him let she too use that with this from they will would there their what about which when "
    "been were into more some than then them these those only also over such just very your".split()
)


def _partition(owner: str) -> str:
    return f"SEARCH#{owner}"


def _chunk_prefix(document_id: str) -> str:
    return f"CHUNK#{document_id}#"


def _chunks_of(owner: str, document_id: str) -> list[ChunkRecord]:
    return list(ChunkRecord.query(_partition(owner), ChunkRecord.sk.startswith(_chunk_prefix(document_id))))


def keywords_of(chunks: list[str]) -> list[str]:
    """The most frequent words of a document (stopwords and words under three letters left out)."""
    counts = Counter(word for chunk in chunks for word in _WORD.findall(chunk.lower()) if word not in _STOPWORDS)
    return [word for word, _ in counts.most_common(KEYWORDS_PER_DOCUMENT)]


def _validated_chunks(chunks: list[Any] | None) -> list[str]:
    if not chunks:
        raise ValidationError("chunks must hold at least one text", param="chunks")
    if len(chunks) > MAX_CHUNKS_PER_CALL:
        raise ValidationError(f"at most {MAX_CHUNKS_PER_CALL} chunks per call", param="chunks")
    for position, chunk in enumerate(chunks):
        if not isinstance(chunk, str) or not chunk.strip():
            raise ValidationError("every chunk must be a non-blank string", param=f"chunks.{position}")
    return list(chunks)


def index(owner: str, document_id: str | None, chunks: list[Any] | None, *, replace: bool,
          job_id: str | None = None, leaser_id: str | None = None) -> dict[str, Any]:
    """Embed and store a document's chunks. A document already indexed needs `replace: true`."""
    document_id = (document_id or "").strip()
    if not document_id or "#" in document_id:
        raise ValidationError("id is required and must not contain '#'", param="id")
    texts = _validated_chunks(chunks)
    existing = _chunks_of(owner, document_id)
    if existing and not replace:
        raise ConflictError(f"{document_id} is already indexed; send replace: true to replace it")
    model = default_embed_model()
    vectors = embed(texts, model)  # before any write: a failing backend leaves the old index intact
    now = now_iso()
    records = [
        ChunkRecord(_partition(owner), f"{_chunk_prefix(document_id)}{position:05d}", document_id=document_id,
                    position=position, text=text, vector=pack(vector), model=model, job_id=job_id or None,
                    leaser_id=leaser_id or None, created_at=now)
        for position, (text, vector) in enumerate(zip(texts, vectors, strict=True))
    ]
    # Overwrite in place, then drop the positions the new version no longer has: a concurrent
    # search sees the old or the new chunks, never an empty document.
    with ChunkRecord.batch_write() as batch:
        for record in records:
            batch.save(record)
        for record in existing[len(records):]:
            batch.delete(record)
    keywords = keywords_of(texts)
    first_seen = datetime.strptime(now, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    for offset, word in enumerate(keywords):
        # one microsecond apart, so every keyword has its own cursor position
        _remember_keyword(owner, word, (first_seen + timedelta(microseconds=offset)).strftime(TIMESTAMP_FORMAT))
    return {"id": document_id, "vectors": [f"{document_id}#{record.position}" for record in records], "augmentedMetadata": keywords}


def _remember_keyword(owner: str, word: str, now: str) -> None:
    record = KeywordRecord(_partition(owner), f"KEYWORD#{word}", gsi1pk=f"SEARCH#KEYWORDS#{owner}",
                           gsi1sk=f"{now}#{word}", word=word, first_seen=now)
    try:
        record.save(condition=KeywordRecord.pk.does_not_exist())  # keeps the first-seen time (the cursor)
    except PutError:
        pass  # already known


def _number(raw: str | None, param: str, *, minimum: float = 0.0) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(f"{param} must be a number", param=param) from None
    if not math.isfinite(value) or value < minimum:
        raise ValidationError(f"{param} must be a finite number >= {minimum}", param=param)
    return value


def pack(vector: list[float]) -> bytes:
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def unpack(raw: bytes) -> array:
    vector = array("f")
    vector.frombytes(raw)
    if sys.byteorder != "little":
        vector.byteswap()
    return vector


def cosine(a: list[float] | array, b: list[float] | array) -> float:
    if len(a) != len(b):
        return -1.0  # vectors of another embedding model never match
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b)) / norm if norm else 0.0


def search(owner: str, query: str | None, *, topk: str | None = None, radius: str | None = None,
           epsilon: str | None = None, expand: str | None = None, principal: Principal | None = None) -> dict[str, Any]:
    """Top-k chunks by cosine similarity. `radius` keeps only results within that cosine distance
    (1 - similarity); `epsilon` is accepted and validated but has no effect: the search is exact."""
    query = (query or "").strip()
    if not query:
        raise ValidationError("q is required", param="q")
    top_k = parse_limit(topk, default=DEFAULT_TOP_K)
    max_distance = _number(radius, "radius")
    _number(epsilon, "epsilon")
    if expand not in (None, "", "files"):
        raise ValidationError("expand must be 'files'", param="expand")
    vector = embed([query], default_embed_model())[0]
    scored = []
    for chunk in ChunkRecord.query(_partition(owner), ChunkRecord.sk.startswith("CHUNK#")):
        similarity = cosine(vector, unpack(chunk.vector))
        distance = 1.0 - similarity
        if max_distance is None or distance <= max_distance:
            scored.append((similarity, chunk))
    scored.sort(key=lambda item: (-item[0], item[1].sk))
    results = [_result(chunk, similarity, expand == "files", principal) for similarity, chunk in scored[:top_k]]
    return {"results": results, "triedQuery": [query]}


def _result(chunk: ChunkRecord, similarity: float, expand_files: bool, principal: Principal | None) -> dict[str, Any]:
    result: dict[str, Any] = {"id": f"{chunk.document_id}#{int(chunk.position)}", "documentId": chunk.document_id,
                              "chunkIndex": int(chunk.position), "text": chunk.text,
                              "score": similarity, "distance": 1.0 - similarity}
    if expand_files:
        try:
            result["file"] = tree.view(tree.get_node(chunk.document_id, FILE, principal))
        except NotFoundError:  # gone, or a file the caller may not see
            result["file"] = None
    return result


def list_keywords(owner: str, *, limit: str | None, cursor: str | None) -> tuple[list[str], str | None]:
    """Keywords in the order first seen, after the RFC3339 `cursor`; also the cursor of the next page."""
    page_size = parse_limit(limit)
    after = timestamp_cursor(cursor)
    condition = KeywordRecord.gsi1sk > f"{after}#\uffff" if after else None
    records = list(KeywordRecord.by_first_seen.query(f"SEARCH#KEYWORDS#{owner}", range_key_condition=condition,
                                                     limit=page_size, page_size=page_size))
    next_cursor = records[-1].first_seen if len(records) == page_size else None
    return [record.word for record in records], next_cursor

"""Semantic index: chunks embedded through the runtime gateway, stored per owner, searched by
exact cosine similarity over float32 blocks with numpy (`aiplane.files.ranking`).

Search reads the owner's embedding blocks (`aiplane.files.vectors`; a few rows' vectors per item)
up to `AIPLANE_SEARCH_MAX_CHUNKS` rows, ranks them with one matrix product and then reads the
texts of the top k only. That is exact and linear in the rows read (vectorised); past that bound a
corpus needs an approximate index (docs/runtime-files.md, "Large corpora").
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import PutError

from aiplane.clock import now_iso
from aiplane.data.pagination import parse_limit, timestamp_cursor
from aiplane.errors import BadGatewayError, ConflictError, NotFoundError, ValidationError
from aiplane.events import jobs
from aiplane.files import tree, vectors, views
from aiplane.files.models import FILE, INDEX_FILE_TASK, KeywordRecord
from aiplane.gateway.inference import default_embed_model, embed
from aiplane.identity.principal import Principal
from aiplane.settings import get_settings
from aiplane.snapshots import warm_before_snapshot

if TYPE_CHECKING:
    import numpy as np

DEFAULT_TOP_K = 10
MAX_CHUNKS_PER_CALL = 256  # per /index call, and per embedding request
KEYWORDS_PER_DOCUMENT = 5
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # as gateway.clock.now_iso writes it
_WORD = re.compile(r"[a-z][a-z0-9]{2,}")
_STOPWORDS = frozenset(
    "the and for are but not you all any can had her was one our out has have his how its may new now "
    "who did get him let she too use that with this from they will would there their what about which when "
    "been were into more some than then them these those only also over such just very your".split()
)


def keywords_of(chunks: list[str]) -> list[str]:
    """The most frequent words of a document (stopwords and words under three letters left out)."""
    counts = Counter(word for chunk in chunks for word in _WORD.findall(chunk.lower()) if word not in _STOPWORDS)
    return [word for word, _ in counts.most_common(KEYWORDS_PER_DOCUMENT)]


def _validated_chunks(chunks: list[Any] | None, max_chunks: int) -> list[str]:
    if not chunks:
        raise ValidationError("chunks must hold at least one text", param="chunks")
    if len(chunks) > max_chunks:
        raise ValidationError(f"at most {max_chunks} chunks per call", param="chunks")
    for position, chunk in enumerate(chunks):
        if not isinstance(chunk, str) or not chunk.strip():
            raise ValidationError("every chunk must be a non-blank string", param=f"chunks.{position}")
    return list(chunks)


def _job_owner(document_id: str, job_id: str | None, leaser_id: str | None) -> str | None:
    """The owner whose index a job's chunks go to, once the named leaser is found to hold the job's
    live lease and the job indexes this document; None when no job is named (the caller's own index)."""
    if not job_id and not leaser_id:
        return None
    job = jobs.held_job(job_id, leaser_id)
    if job.task_type != INDEX_FILE_TASK or job.entity_id != document_id:
        raise ValidationError(f"job {job_id!r} does not index {document_id!r}", param="id")
    return str(json.loads(job.payload)["ownerId"])


@warm_before_snapshot
def load_ranking() -> None:
    """numpy (the ranking) is imported by the indexing and searches that use it, not at init: the
    keyword routes and the indexer's other jobs never do, and it is about 50 ms of a cold start.
    Loaded before a SnapStart snapshot, so a restored function has it."""
    import aiplane.files.ranking  # noqa: F401


def _embedded(texts: list[str], model: str) -> np.ndarray:
    from aiplane.files.ranking import float32_rows

    rows: list[list[float]] = []
    for start in range(0, len(texts), MAX_CHUNKS_PER_CALL):
        rows.extend(embed(texts[start : start + MAX_CHUNKS_PER_CALL], model))
    if not rows[0] or any(len(row) != len(rows[0]) for row in rows):
        raise BadGatewayError("the backend returned embeddings of differing or zero length", code="backend_error")
    return float32_rows(rows)


def index(
    owner: str,
    document_id: str | None,
    chunks: list[Any] | None,
    *,
    replace: bool,
    job_id: str | None = None,
    leaser_id: str | None = None,
    max_chunks: int = MAX_CHUNKS_PER_CALL,
) -> dict[str, Any]:
    """Embed and store a document's chunks in the owner's index. A document already indexed needs
    `replace: true`. With `job_id` and `leaser_id`, the leaser must hold that indexing job's live
    lease (checked before embedding and again before writing) and the chunks go to the index of the
    job's owner (the file's)."""
    document_id = (document_id or "").strip()
    if not document_id or "#" in document_id:
        raise ValidationError("id is required and must not contain '#'", param="id")
    texts = _validated_chunks(chunks, max_chunks)
    owner = _job_owner(document_id, job_id, leaser_id) or owner
    if not replace and vectors.chunk_count(owner, document_id):
        raise ConflictError(f"{document_id} is already indexed; send replace: true to replace it")
    model = default_embed_model()
    matrix = _embedded(texts, model)  # before any write: a failing backend leaves the old index intact
    if job_id:
        jobs.held_job(job_id, leaser_id)  # the lease may have run out while the backend embedded
    now = now_iso()
    vectors.write_document(
        owner,
        document_id,
        texts,
        matrix.tobytes(),
        matrix.shape[1],
        model=model,
        job_id=job_id,
        leaser_id=leaser_id,
        now=now,
    )
    keywords = keywords_of(texts)
    first_seen = datetime.strptime(now, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    for offset, word in enumerate(keywords):
        # one microsecond apart, so every keyword has its own cursor position
        _remember_keyword(owner, word, (first_seen + timedelta(microseconds=offset)).strftime(TIMESTAMP_FORMAT))
    return {
        "id": document_id,
        "vectors": [f"{document_id}#{position}" for position in range(len(texts))],
        "augmentedMetadata": keywords,
    }


def _remember_keyword(owner: str, word: str, now: str) -> None:
    record = KeywordRecord(
        vectors.partition(owner),
        f"KEYWORD#{word}",
        gsi1pk=f"SEARCH#KEYWORDS#{owner}",
        gsi1sk=f"{now}#{word}",
        word=word,
        first_seen=now,
    )
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


def search(
    owner: str,
    query: str | None,
    *,
    topk: str | None = None,
    radius: str | None = None,
    epsilon: str | None = None,
    expand: str | None = None,
    principal: Principal | None = None,
) -> dict[str, Any]:
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
    from aiplane.files.ranking import rank

    ranked = rank(
        embed([query], default_embed_model())[0],
        vectors.blocks(owner, get_settings().search_max_chunks),
        top_k,
        max_distance,
    )
    texts = vectors.chunk_texts(owner, [chunk for chunk, _ in ranked])
    results = [
        _result(chunk, texts[chunk], score, expand == "files", principal) for chunk, score in ranked if chunk in texts
    ]  # a chunk removed meanwhile is left out
    return {"results": results, "triedQuery": [query]}


def _result(
    chunk: tuple[str, int], text: str, similarity: float, expand_files: bool, principal: Principal | None
) -> dict[str, Any]:
    document_id, position = chunk
    result: dict[str, Any] = {
        "id": f"{document_id}#{position}",
        "documentId": document_id,
        "chunkIndex": position,
        "text": text,
        "score": similarity,
        "distance": 1.0 - similarity,
    }
    if expand_files:
        try:
            result["file"] = views.node_view(tree.get_node(document_id, FILE, principal))
        except NotFoundError:  # gone, or a file the caller may not see
            result["file"] = None
    return result


def list_keywords(owner: str, *, limit: str | None, cursor: str | None) -> tuple[list[str], str | None]:
    """Keywords in the order first seen, after the RFC3339 `cursor`; also the cursor of the next page."""
    page_size = parse_limit(limit)
    after = timestamp_cursor(cursor)
    condition = KeywordRecord.gsi1sk > f"{after}#\uffff" if after else None
    records = list(
        KeywordRecord.by_first_seen.query(
            f"SEARCH#KEYWORDS#{owner}", range_key_condition=condition, limit=page_size, page_size=page_size
        )
    )
    next_cursor = records[-1].first_seen if len(records) == page_size else None
    return [record.word for record in records], next_cursor

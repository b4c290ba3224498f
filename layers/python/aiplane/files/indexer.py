"""The file indexer: leases indexing jobs through the job/lease queue (as an external worker would
through /leases), chunks the file's text, embeds and stores it through the index path, and reports
the job done; a failure returns the job to the queue with one more retry counted."""

from __future__ import annotations

import codecs
import time
from typing import Any

from aiplane.data import presigned
from aiplane.errors import NotFoundError
from aiplane.events import jobs
from aiplane.files import search, tree, vectors
from aiplane.files.models import FILE, INDEX_FILE_TASK, FileNodeRecord
from aiplane.observability import logger

LEASE_DURATION = "300s"  # the worker function's timeout
CHUNK_CHARS = 1000
MAX_CHUNKS_PER_FILE = 2048  # text past about 2 MB of a file is not indexed
MAX_ATTEMPTS = 5  # a job failed this often is given up (logged), so it cannot block the queue's head


def chunk_text(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Pieces of at most `size` characters, cut at a paragraph break, else at a space, in the second half."""
    chunks: list[str] = []
    rest = text.strip()
    while rest and len(chunks) < MAX_CHUNKS_PER_FILE:
        cut = len(rest)
        if cut > size:
            cut = rest.rfind("\n\n", size // 2, size)
            if cut < 0:
                cut = rest.rfind(" ", size // 2, size)
            if cut < 0:
                cut = size
        piece, rest = rest[:cut].strip(), rest[cut:].strip()
        if piece:
            chunks.append(piece)
    return chunks


def _text(node: FileNodeRecord) -> str | None:
    """The file's leading text (as much as the chunks can hold), None when it is not UTF-8 text."""
    read = MAX_CHUNKS_PER_FILE * CHUNK_CHARS * 4  # UTF-8: at most 4 bytes a character
    body = presigned.read_object(tree.bucket(), node.blob_key, node.blob_version, limit=read)  # its content, pinned
    if b"\x00" in body:
        return None
    try:  # final=False: a character cut by the range is left out, not an error
        return codecs.getincrementaldecoder("utf-8")().decode(body, final=False)
    except UnicodeDecodeError:
        return None


def index_file(job: dict[str, Any], leaser_id: str) -> int:
    """Index the job's file as it is now; returns how many chunks were stored."""
    file_id, owner = job["entityId"], job["payload"]["ownerId"]
    try:
        node = tree.get_node(file_id, FILE)
    except NotFoundError:
        vectors.remove_document(owner, file_id)
        return 0
    text = _text(node)
    chunks = chunk_text(text) if text else []
    if not chunks:  # binary or blank: nothing to search
        vectors.remove_document(owner, file_id)
        return 0
    search.index(
        owner, file_id, chunks, replace=True, job_id=job["id"], leaser_id=leaser_id, max_chunks=MAX_CHUNKS_PER_FILE
    )
    try:
        tree.get_node(file_id, FILE)
    except NotFoundError:  # deleted while it was being embedded
        vectors.remove_document(owner, file_id)
        return 0
    return len(chunks)


def index_pending(leaser_id: str, budget_s: float) -> int:
    """Lease and index pending indexing jobs until none is left or `budget_s` has passed; returns how
    many were done. A failing job goes back to the queue and the error is raised (the wake-up is retried)."""
    deadline, done = time.monotonic() + budget_s, 0
    while time.monotonic() < deadline:
        try:
            job = jobs.lease(leaser_id, LEASE_DURATION, [INDEX_FILE_TASK])
        except NotFoundError:
            break
        if job["retryCount"] >= MAX_ATTEMPTS:
            logger.error(
                "indexing job given up",
                extra={"job": job["id"], "file": job["entityId"], "attempts": job["retryCount"]},
            )
        else:
            try:
                chunks = index_file(job, leaser_id)
            except Exception:
                jobs.mark_failed(job["id"], leaser_id)
                raise
            logger.info("file indexed", extra={"job": job["id"], "file": job["entityId"], "chunks": chunks})
        jobs.mark_done(job["id"], leaser_id)
        done += 1
    return done

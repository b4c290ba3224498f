"""What file writes tell the semantic index (the files router calls these after the folder tree's
writes): a file's new content becomes an indexing job (the job/lease queue of
`aiplane.events.jobs`, so the indexer worker or any external worker holding `jobs` can lease it)
with a wake-up for the indexer worker; a deleted file's chunks go.

A file's chunks live in its owner's index (`SEARCH#<owner>`): the owner searches its files."""

from __future__ import annotations

from aiplane.data import publish
from aiplane.events import jobs
from aiplane.files import vectors
from aiplane.files.models import INDEX_FILE_TASK, FileNodeRecord
from aiplane.identity.principal import BOOTSTRAP_ADMIN_ID
from aiplane_shared.resources import FILE_INDEXING_QUEUE

FILE_ENTITY = "file"


def owner_of(node: FileNodeRecord) -> str:
    return node.owner_id or BOOTSTRAP_ADMIN_ID


def file_changed(node: FileNodeRecord) -> None:
    """Queue the (re)indexing of the file's current content."""
    job = jobs.create_job(
        INDEX_FILE_TASK,
        operation="index",
        subject=owner_of(node),
        entity_id=node.node_id,
        entity_type=FILE_ENTITY,
        payload={"fileId": node.node_id, "ownerId": owner_of(node), "revision": int(node.revision)},
    )
    _wake({"jobId": job["id"]})


def wake_indexer() -> None:
    """For jobs back in the queue (a lease ran out): the wake-up sent with them was spent."""
    _wake({})


def _wake(body: dict[str, str]) -> None:
    publish.send_messages(FILE_INDEXING_QUEUE, [body])


def file_removed(node: FileNodeRecord) -> None:
    vectors.remove_document(owner_of(node), node.node_id)

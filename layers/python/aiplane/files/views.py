"""How files that are still being uploaded answer over HTTP; kept out of the tree module, which holds
the reads, writes and rules."""

from __future__ import annotations

from typing import Any

from aiplane.files import tree
from aiplane.files.models import FOLDER, FileUploadRecord


def pending_view(pending: FileUploadRecord, upload: dict[str, Any]) -> dict[str, Any]:
    """filesapi_FileResponse of the file to be, plus `status: pending` and the presigned `upload`."""
    parent = tree.get_node(pending.parent_id, FOLDER) if pending.parent_id else None
    path = (tree.path_of(parent) if parent else "") + "/" + pending.name
    return {
        "id": pending.node_id,
        "name": pending.name,
        "path": path,
        "contentType": pending.content_type,
        "size": int(pending.size),
        "createdAt": pending.created_at,
        "updatedAt": pending.created_at,
        "status": "pending",
        "upload": upload,
        "complete": f"/files/{pending.node_id}/complete",
    }

"""How files and folders (and files still being uploaded) answer over HTTP; kept out of the tree
module, which holds the reads, writes and rules."""

from __future__ import annotations

from typing import Any

from aiplane.files import tree
from aiplane.files.models import FILE, FOLDER, FileNodeRecord, FileUploadRecord


def node_view(node: FileNodeRecord, path: str | None = None) -> dict[str, Any]:
    """filesapi_FileResponse for files (and for folders in lists), filesapi_FolderResponse for folders."""
    body: dict[str, Any] = {
        "id": node.node_id,
        "name": node.name,
        "path": path or tree.path_of(node),
        "createdAt": node.created_at,
        "updatedAt": node.updated_at,
    }
    if node.kind == FILE:
        body.update(contentType=node.content_type, size=int(node.size))
    else:
        body["size"] = 0
        if node.parent_id:
            body["parentId"] = node.parent_id
    return body


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

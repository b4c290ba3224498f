"""runtime files routes: a folder tree with content in the artifacts bucket. View on `files` to
read, edit to upload, rename and move, manage to delete; and the same level on the item itself
(owner, item grant or admin: `aiplane.identity.ownership`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from aiplane.activity.tracker import tracked
from aiplane.api.auth import current_principal
from aiplane.api.permissions import resource_permission
from aiplane.data import presigned
from aiplane.data.pagination import NEXT_CURSOR_HEADER, parse_limit
from aiplane.files import indexing, tree, views
from aiplane.files.models import FILE, FOLDER
from aiplane.files.uploads import read_presigned_request, read_upload, wants_presigned
from aiplane.identity.access import EDIT

router = APIRouter(dependencies=[Depends(tracked("files")), Depends(resource_permission("files"))])


class FolderCreateRequest(BaseModel):
    name: str
    parentId: str | None = None


class MoveRequest(BaseModel):
    newParentId: str | None = None  # "" or absent: the root


class NameUpdateRequest(BaseModel):
    name: str


@router.get("/files")
def list_files(
    request: Request, response: Response, path: str | None = None, limit: str | None = None, cursor: str | None = None
) -> list[dict[str, Any]]:
    """The body is the contract's plain array; the next page's cursor travels in `X-Next-Cursor`."""
    page = tree.list_nodes(path, current_principal(request), limit=parse_limit(limit), cursor=cursor)
    if page.next_cursor:
        response.headers[NEXT_CURSOR_HEADER] = page.next_cursor
    return [views.node_view(node, path) for node, path in page.items]


@router.post("/files", status_code=201)
async def upload(request: Request) -> dict[str, Any]:
    if wants_presigned(request):
        announced = await read_presigned_request(request)
        pending, form_fields = await run_in_threadpool(
            tree.start_create,
            announced.name,
            announced.parent_id,
            announced.size,
            announced.content_type,
            current_principal(request),
            announced.sha256,
        )
        return await run_in_threadpool(views.pending_view, pending, form_fields)
    form = await read_upload(request)
    node = await run_in_threadpool(
        tree.create_file,
        form.name or form.filename,
        form.parent_id,
        form.content,
        form.content_type,
        current_principal(request),
    )
    await run_in_threadpool(indexing.file_changed, node)
    return views.node_view(node)


@router.get("/files/{id}")
def read(id: str, request: Request) -> dict[str, Any]:
    return views.node_view(tree.get_node(id, FILE, current_principal(request)))


@router.put("/files/{id}")
async def replace(id: str, request: Request) -> dict[str, Any]:
    principal = current_principal(request)
    await run_in_threadpool(tree.get_node, id, FILE, principal, EDIT)  # an unknown id is 404 before the body is read
    if wants_presigned(request):
        announced = await read_presigned_request(request)
        pending, form_fields = await run_in_threadpool(
            tree.start_replace, id, announced.size, announced.content_type, principal, announced.sha256
        )
        return await run_in_threadpool(views.pending_view, pending, form_fields)
    form = await read_upload(request)
    node = await run_in_threadpool(tree.replace_file, id, form.content, form.content_type, principal)
    await run_in_threadpool(indexing.file_changed, node)
    return views.node_view(node)


@router.post("/files/{id}/complete", include_in_schema=False)
def complete_upload(id: str, request: Request) -> dict[str, Any]:
    """Extra route: the presigned upload of POST/PUT /files (JSON) is in S3; create or update the file."""
    node = tree.complete_upload(id, current_principal(request))
    indexing.file_changed(node)
    return views.node_view(node)


@router.delete("/files/{id}")
def delete(id: str, request: Request) -> dict[str, str]:
    indexing.file_removed(tree.delete_file(id, current_principal(request)))
    return {"message": "file removed"}


@router.get("/files/{id}/download")
def download(id: str, request: Request, skip: str | None = None) -> Response:
    node = tree.get_node(id, FILE, current_principal(request))
    if not presigned.is_inline(int(node.size)):  # too large for a Lambda answer: S3 serves it
        return RedirectResponse(tree.download_url(node, inline=skip == "true"), status_code=307)
    node, content = tree.read_content(id, current_principal(request))
    return Response(content, media_type=node.content_type, headers=tree.download_headers(node, inline=skip == "true"))


@router.put("/files/{id}/move")
def move_file(id: str, body: MoveRequest, request: Request) -> dict[str, Any]:
    return views.node_view(tree.move(id, FILE, body.newParentId, current_principal(request)))


@router.put("/files/{id}/name")
def rename_file(id: str, body: NameUpdateRequest, request: Request) -> dict[str, Any]:
    return views.node_view(tree.rename(id, FILE, body.name, current_principal(request)))


@router.post("/folders", status_code=201)
def create_folder(body: FolderCreateRequest, request: Request) -> dict[str, Any]:
    return views.node_view(tree.create_folder(body.name, body.parentId, current_principal(request)))


@router.delete("/folders/{id}")
def delete_folder(id: str, request: Request) -> dict[str, str]:
    for node in tree.delete_folder(id, current_principal(request)):
        indexing.file_removed(node)
    return {"message": "folder removed"}


@router.put("/folders/{id}/move")
def move_folder(id: str, body: MoveRequest, request: Request) -> dict[str, Any]:
    return views.node_view(tree.move(id, FOLDER, body.newParentId, current_principal(request)))


@router.put("/folders/{id}/name")
def rename_folder(id: str, body: NameUpdateRequest, request: Request) -> dict[str, Any]:
    return views.node_view(tree.rename(id, FOLDER, body.name, current_principal(request)))

"""The folder tree: files and folders with names unique per folder, content in the artifacts bucket.

Every write that touches a name goes through one DynamoDB transaction: the name claim
(`FILENAME#<parent>#<name>`, conditional on not existing), the node itself (conditional on the
revision the caller read) and condition checks on the parent and, for moves, on every ancestor of
the destination. So two writers cannot give two nodes one name, and two crossing folder moves
cannot build a cycle.

Each node has an owner (`aiplane.identity.ownership`): reading needs view on the node, writing in a
folder edit on it, renaming, moving and replacing edit on the node (and on the destination),
deleting manage. A folder's grant is its own; it does not extend to what the folder holds.
"""

from __future__ import annotations

import mimetypes
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from pynamodb.exceptions import DeleteError
from pynamodb.transactions import TransactWrite

from aiplane.clock import now_iso
from aiplane.data import aws, presigned
from aiplane.data.claims import create_claimed, delete_claimed, move_claim
from aiplane.data.models import get_or_404, get_or_none
from aiplane.data.pagination import DEFAULT_LIMIT, Page, decode_cursor, encode_cursor
from aiplane.data.shards import merged, shard_keys, shard_page_size
from aiplane.errors import ConflictError, NotFoundError, PayloadTooLargeError, ValidationError
from aiplane.files.models import (
    ALL_NODES,
    FILE,
    FOLDER,
    PENDING_FILE_UPLOADS,
    FileNodeRecord,
    FileUploadRecord,
    NameClaimRecord,
    all_nodes_key,
    children_key,
    name_claim_key,
    node_key,
    upload_key,
)
from aiplane.identity import ownership
from aiplane.identity.access import EDIT, MANAGE, VIEW
from aiplane.identity.principal import Principal
from aiplane.settings import get_settings
from aiplane_shared import resources

META = "META"
MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # the contract's fileservice.MaxUploadSize
MAX_NAME_LENGTH = 255
MAX_DEPTH = 64  # keeps a move's transaction (one check per ancestor) within DynamoDB's 100 items


def bucket() -> str:
    return get_settings().bucket(resources.ARTIFACT_BUCKET.name)


def valid_name(name: str | None, param: str = "name") -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError(f"{param} is required", param=param)
    if "/" in name or name in (".", "..") or len(name) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"{param} must be 1-{MAX_NAME_LENGTH} characters without '/' and not '.' or '..'", param=param
        )
    return name


# ---------------------------------------------------------------- reads


def get_node(
    node_id: str, kind: str | None = None, principal: Principal | None = None, needed: str = VIEW
) -> FileNodeRecord:
    node = get_or_none(FileNodeRecord, node_key(node_id), META)
    if node is None or (kind is not None and node.kind != kind):
        raise NotFoundError(f"{kind or 'file or folder'} {node_id} not found")
    ownership.require(principal, needed, ownership.FILES, node_id, node.owner_id)
    return node


def node_owner(node_id: str) -> str | None:
    return get_node(node_id).owner_id


def _parent_folder(parent_id: str | None, param: str, principal: Principal | None = None) -> FileNodeRecord | None:
    """The folder to write into (edit on it needed), None for the root."""
    if not parent_id:
        return None
    parent = get_or_404(FileNodeRecord, node_key(parent_id), META, missing=f"folder {parent_id} not found")
    ownership.require(principal, EDIT, ownership.FILES, parent_id, parent.owner_id)
    if parent.kind != FOLDER:
        raise ValidationError(f"{parent_id} is a file, not a folder", param=param)
    return parent


def node_at(path: str) -> FileNodeRecord:
    """The file or folder at an absolute path, through the per-folder name claims."""
    node = None
    for name in [part for part in path.strip().split("/") if part]:
        claim = get_or_404(
            NameClaimRecord,
            name_claim_key(node.node_id if node else None, name),
            META,
            missing=f"no file or folder at {path!r}",
        )
        node = get_node(claim.node_id)
    if node is None:
        raise ValidationError("a path names a file or folder, not the root", param="path")
    return node


def ancestors(node: FileNodeRecord | None) -> list[FileNodeRecord]:
    """The node and its ancestors, nearest first (empty for the root)."""
    chain: list[FileNodeRecord] = []
    while node is not None:
        chain.append(node)
        if len(chain) > MAX_DEPTH or not node.parent_id:
            break
        node = FileNodeRecord.get(node_key(node.parent_id), META)
    return chain


def path_of(node: FileNodeRecord) -> str:
    return "/" + "/".join(reversed([item.name for item in ancestors(node)]))


LIST_READ_BUDGET = 1000  # nodes one page of GET /files examines at most to find `limit` the caller may view


def list_nodes(
    path_prefix: str | None,
    principal: Principal | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[tuple[FileNodeRecord, str]]:
    """One page of the files and folders the principal may view, each with its path. Without a path (or `/`): every
    node, oldest first (the sharded creation index). With a path: the node there and everything
    below it in tree order (a folder, then its children by name, depth first; the children
    index). Either way a page reads at most `limit` nodes plus a read-ahead (or LIST_READ_BUDGET
    when the caller may view few of them), and the ancestors its paths need, whatever the total."""
    position = decode_cursor(cursor)
    prefix = "/" + (path_prefix or "").strip().strip("/")
    page_size = min(limit, LIST_READ_BUDGET) + 1
    if prefix == "/":
        listing = _every_node(position, shard_page_size(page_size))
    else:
        try:
            top = node_at(prefix)
        except NotFoundError:  # a filter that matches nothing
            return Page(items=[], next_cursor=None)
        listing = _tree_order(top, prefix, position, page_size)
    may_view = ownership.visibility(principal, ownership.FILES)
    found: list[tuple[FileNodeRecord, str | None]] = []
    examined, after, more = 0, None, False
    for node, path, position_after in listing:
        if len(found) == limit or examined == LIST_READ_BUDGET:
            more = True
            break
        examined, after = examined + 1, position_after
        if may_view(node.node_id, node.owner_id):
            found.append((node, path))
    paths = _paths([node for node, path in found if path is None])
    return Page(
        items=[(node, path or paths[node.node_id]) for node, path in found],
        next_cursor=encode_cursor(after) if more else None,
    )


Listed = Iterator[tuple[FileNodeRecord, str | None, dict[str, Any]]]  # node, its path if known, the cursor after it


def _every_node(position: dict[str, Any] | None, page_size: int) -> Listed:
    after = position.get("after") if position else None
    if position is not None and not isinstance(after, str):
        raise ValidationError("cursor is not valid for a listing without path", param="cursor")
    condition = FileNodeRecord.gsi2sk > after if after else None
    shards = [
        FileNodeRecord.by_creation.query(key, range_key_condition=condition, page_size=page_size)
        for key in shard_keys(ALL_NODES)
    ]
    for node in merged(shards, key=lambda node: node.gsi2sk):
        yield node, None, {"after": node.gsi2sk}


def _tree_order(top: FileNodeRecord, top_path: str, position: dict[str, Any] | None, page_size: int) -> Listed:
    """Depth first from `top`. The cursor is the stack of open folders: [folder id, its path, the
    last child name listed], so a page resumes where the previous one stopped."""
    if position is None:
        stack = [[top.node_id, top_path, None]] if top.kind == FOLDER else []
        yield top, top_path, {"top": top.node_id, "stack": stack}
    else:
        stack = _valid_stack(position, top)
    children: list[Iterator[FileNodeRecord]] = []
    while stack:
        if len(children) < len(stack):
            folder_id, _, last = stack[-1]
            condition = FileNodeRecord.gsi1sk > last if last is not None else None
            children.append(
                iter(
                    FileNodeRecord.by_parent.query(
                        children_key(folder_id), range_key_condition=condition, page_size=page_size
                    )
                )
            )
        child = next(children[-1], None)
        if child is None:
            stack.pop()
            children.pop()
            continue
        stack[-1][2] = child.name
        path = f"{stack[-1][1]}/{child.name}"
        if child.kind == FOLDER and len(stack) <= MAX_DEPTH:
            stack.append([child.node_id, path, None])
        yield child, path, {"top": top.node_id, "stack": [list(frame) for frame in stack]}


def _valid_stack(position: dict[str, Any], top: FileNodeRecord) -> list[list[Any]]:
    stack = position.get("stack")
    if (
        position.get("top") != top.node_id
        or not isinstance(stack, list)
        or len(stack) > MAX_DEPTH + 1
        or not all(
            isinstance(frame, list)
            and len(frame) == 3
            and isinstance(frame[0], str)
            and isinstance(frame[1], str)
            and isinstance(frame[2], str | None)
            for frame in stack
        )
    ):
        raise ValidationError("cursor is not valid for this path", param="cursor")
    return stack


def _paths(nodes: list[FileNodeRecord]) -> dict[str, str]:
    """The paths of these nodes, reading their ancestors a level at a time (BatchGet); a node whose
    parent is gone (see delete_folder) is shown at the root, as before."""
    known = {node.node_id: node for node in nodes}
    wanted = {node.parent_id for node in nodes if node.parent_id} - known.keys()
    for _ in range(MAX_DEPTH):
        if not wanted:
            break
        parents = list(FileNodeRecord.batch_get([(node_key(node_id), META) for node_id in wanted]))
        known.update((parent.node_id, parent) for parent in parents)
        wanted = {parent.parent_id for parent in parents if parent.parent_id} - known.keys()
    paths: dict[str, str] = {}

    def path(node: FileNodeRecord) -> str:
        if node.node_id not in paths:
            parent = known.get(node.parent_id) if node.parent_id else None
            paths[node.node_id] = (path(parent) if parent else "") + "/" + node.name
        return paths[node.node_id]

    return {node.node_id: path(node) for node in nodes}


def read_content(node_id: str, principal: Principal | None = None) -> tuple[FileNodeRecord, bytes]:
    node = get_node(node_id, FILE, principal)
    return node, presigned.read_object(bucket(), node.blob_key, node.blob_version)


def is_active_content(content_type: str) -> bool:
    """HTML, XML in any form (XHTML, SVG...) and script: shown inline, a browser would run them as this origin."""
    media = content_type.split(";", 1)[0].strip().lower()
    return (
        media in ("text/html", "text/xsl")
        or media.endswith(("+xml", "/xml"))
        or "javascript" in media
        or "ecmascript" in media
    )


def download_headers(node: FileNodeRecord, *, inline: bool) -> dict[str, str]:
    """A download is an attachment unless inline is asked for, and always when its type is active
    (nosniff is on every response: aiplane.api.app)."""
    if inline and not is_active_content(node.content_type):
        return {}
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(node.name, safe='')}"}


# ---------------------------------------------------------------- writes


def _name_claim(node: FileNodeRecord) -> NameClaimRecord:
    """The claim the node holds on its name in its folder."""
    return NameClaimRecord(name_claim_key(node.parent_id or None, node.name), META)


def _conflict(parent_id: str | None, name: str, node_id: str) -> ConflictError:
    """Why a transaction was refused: the name is taken (its claim belongs to another node), or
    something it checked changed meanwhile. The cancellation reasons come back in an order of
    PynamoDB's choosing, so the claim is read instead."""
    claim = get_or_none(NameClaimRecord, name_claim_key(parent_id, name), META)
    if claim is not None and claim.node_id != node_id:
        return ConflictError(f"a file or folder named {name!r} already exists in this folder")
    return ConflictError("the file or folder changed concurrently; retry")


def _blob_key(node_id: str) -> str:
    return f"files/{node_id}/{uuid.uuid4()}"


def _put_blob(node_id: str, content: bytes, content_type: str) -> tuple[str, str | None]:
    """The new object's key and version."""
    key = _blob_key(node_id)
    written = aws.client("s3").put_object(Bucket=bucket(), Key=key, Body=content, ContentType=content_type)
    return key, written.get("VersionId")


def _delete_blob(key: str | None) -> None:
    if key:
        presigned.delete_object(bucket(), key)


def content_type_for(name: str, declared: str | None) -> str:
    if declared and declared != "application/octet-stream":
        return declared
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _check_folder(transaction: TransactWrite, folder: FileNodeRecord | None) -> None:
    if folder is not None:
        transaction.condition_check(
            FileNodeRecord, node_key(folder.node_id), META, condition=FileNodeRecord.kind == FOLDER
        )


def _create(
    kind: str, name: str, parent_id: str | None, principal: Principal | None, **attributes: Any
) -> FileNodeRecord:
    parent = _parent_folder(parent_id, "parentId", principal)
    node_id = attributes.pop("node_id", None) or str(uuid.uuid4())
    now = now_iso()
    node = FileNodeRecord(
        node_key(node_id),
        META,
        gsi1pk=children_key(parent_id),
        gsi1sk=name,
        gsi2pk=all_nodes_key(node_id),
        gsi2sk=f"{now}#{node_id}",
        node_id=node_id,
        kind=kind,
        name=name,
        parent_id=parent_id or "",
        created_at=now,
        updated_at=now,
        owner_id=ownership.new_owner(principal),
        **attributes,
    )
    create_claimed(
        node,
        NameClaimRecord(name_claim_key(parent_id, name), META, node_id=node_id),
        lambda: _conflict(parent_id, name, node_id),
        also=lambda transaction: _check_folder(transaction, parent),
    )
    return node


def create_folder(name: str | None, parent_id: str | None, principal: Principal | None = None) -> FileNodeRecord:
    return _create(FOLDER, valid_name(name), parent_id or None, principal)


def create_file(
    name: str | None,
    parent_id: str | None,
    content: bytes,
    declared_type: str | None,
    principal: Principal | None = None,
) -> FileNodeRecord:
    name = valid_name(name)
    _parent_folder(parent_id, "parentid", principal)  # fail before the upload
    content_type = content_type_for(name, declared_type)
    node_id = str(uuid.uuid4())
    return _create_file_node(
        node_id, name, parent_id, content_type, len(content), *_put_blob(node_id, content, content_type), principal
    )


def _create_file_node(
    node_id: str,
    name: str,
    parent_id: str | None,
    content_type: str,
    size: int,
    key: str,
    version: str | None,
    principal: Principal | None,
) -> FileNodeRecord:
    try:
        return _create(
            FILE,
            name,
            parent_id or None,
            principal,
            node_id=node_id,
            content_type=content_type,
            size=size,
            blob_key=key,
            blob_version=version,
        )
    except Exception:
        _delete_blob(key)  # no orphaned content when the metadata write is refused
        raise


def replace_file(
    node_id: str, content: bytes, declared_type: str | None, principal: Principal | None = None
) -> FileNodeRecord:
    node = get_node(node_id, FILE, principal, EDIT)
    content_type = content_type_for(node.name, declared_type)
    return _swap_content(
        node, int(node.revision), content_type, len(content), *_put_blob(node_id, content, content_type)
    )


def _swap_content(
    node: FileNodeRecord, revision: int, content_type: str, size: int, key: str, version: str | None
) -> FileNodeRecord:
    """Point the node at new content, if it is still at `revision`; the old content is removed."""
    old_key = node.blob_key
    try:
        node.update(
            actions=[
                FileNodeRecord.blob_key.set(key),
                FileNodeRecord.size.set(size),
                FileNodeRecord.blob_version.set(version) if version else FileNodeRecord.blob_version.remove(),
                FileNodeRecord.content_type.set(content_type),
                FileNodeRecord.updated_at.set(now_iso()),
                FileNodeRecord.revision.add(1),
            ],
            condition=FileNodeRecord.revision == revision,
        )
    except Exception:
        _delete_blob(key)
        raise ConflictError("the file changed concurrently; retry") from None
    _delete_blob(old_key)
    return node


# ---------------------------------------------------------------- presigned uploads (bodies too large for Lambda)


def _valid_size(size: int) -> int:
    if size <= 0:
        raise ValidationError("size must be a positive number of bytes", param="size", code="file_empty")
    if size > MAX_UPLOAD_BYTES:
        raise PayloadTooLargeError(
            f"files are limited to {MAX_UPLOAD_BYTES} bytes", param="size", code="file_size_limit_exceeded"
        )
    return size


def _start_upload(
    node_id: str,
    name: str,
    parent_id: str | None,
    content_type: str,
    size: int,
    revision: int | None,
    principal: Principal | None,
    sha256: str | None,
) -> tuple[FileUploadRecord, dict[str, Any]]:
    pending = FileUploadRecord(
        upload_key(node_id),
        META,
        node_id=node_id,
        name=name,
        parent_id=parent_id or "",
        content_type=content_type,
        announced_by=ownership.new_owner(principal),
        sha256=presigned.valid_sha256(sha256),
        size=_valid_size(size),
        blob_key=_blob_key(node_id),
        revision=revision,
        created_at=now_iso(),
        expires_at_epoch=int(time.time()) + presigned.UPLOAD_EXPIRY_S,
    )
    pending.gsi1sk = presigned.expiry_sort_key(int(pending.expires_at_epoch), node_id)
    pending.save()
    return pending, presigned.upload_form(bucket(), pending.blob_key, size, content_type, pending.sha256)


def start_create(
    name: str | None,
    parent_id: str | None,
    size: int,
    declared_type: str | None,
    principal: Principal | None = None,
    sha256: str | None = None,
) -> tuple[FileUploadRecord, dict[str, Any]]:
    """A file created by a presigned POST: nothing is listed until `complete_upload` finds the object."""
    name = valid_name(name)
    _parent_folder(parent_id, "parentid", principal)
    if get_or_none(NameClaimRecord, name_claim_key(parent_id or None, name), META) is not None:
        raise ConflictError(f"a file or folder named {name!r} already exists in this folder")
    return _start_upload(
        str(uuid.uuid4()), name, parent_id, content_type_for(name, declared_type), size, None, principal, sha256
    )


def start_replace(
    node_id: str, size: int, declared_type: str | None, principal: Principal | None = None, sha256: str | None = None
) -> tuple[FileUploadRecord, dict[str, Any]]:
    node = get_node(node_id, FILE, principal, EDIT)
    return _start_upload(
        node_id,
        node.name,
        node.parent_id,
        content_type_for(node.name, declared_type),
        size,
        int(node.revision),
        principal,
        sha256,
    )


def complete_upload(node_id: str, principal: Principal | None = None) -> FileNodeRecord:
    """Create or update the file once its object is in S3 with the announced size (only its announcer completes it;
    the rights are checked again as the write needs them)."""
    pending = get_or_none(FileUploadRecord, upload_key(node_id), META, consistent_read=True)
    if (
        pending is None
        or pending.expires_at_epoch < time.time()
        or pending.announced_by != ownership.new_owner(principal)
    ):
        raise NotFoundError(f"no pending upload for file {node_id}")
    uploaded = presigned.uploaded_object(bucket(), pending.blob_key)
    if uploaded is None:
        raise ConflictError(
            "the content has not been uploaded yet: POST it to the upload URL first", code="upload_incomplete"
        )
    size, version = uploaded
    if pending.sha256:
        _refuse_other_content(pending.blob_key, pending.sha256, version)
    pending.delete()
    if size != pending.size:  # S3's policy makes this unreachable; never trust it blindly
        _delete_blob(pending.blob_key)
        raise ValidationError(
            f"the uploaded object has {size} bytes, not the {int(pending.size)} announced", param="size"
        )
    presigned.mark_completed(bucket(), pending.blob_key, version)
    if pending.revision is None:
        return _create_file_node(
            node_id,
            pending.name,
            pending.parent_id or None,
            pending.content_type,
            size,
            pending.blob_key,
            version,
            principal,
        )
    try:
        node = get_node(node_id, FILE, principal, EDIT)
    except Exception:
        _delete_blob(pending.blob_key)
        raise
    return _swap_content(node, int(pending.revision), pending.content_type, size, pending.blob_key, version)


def _refuse_other_content(key: str, sha256: str, version: str | None) -> None:
    """Content that is not what was declared is removed; the upload stays pending (the form may be used again)."""
    try:
        presigned.check_sha256(bucket(), key, sha256, version_id=version)
    except ValidationError:
        _delete_blob(key)
        raise


def sweep_abandoned_uploads(now: float | None = None) -> int:
    """Remove presigned uploads past their expiry (never completed): any uploaded object, then the
    record (unless it was announced again meanwhile). Returns how many were removed."""
    swept = 0
    bound = presigned.abandoned_before(time.time() if now is None else now)
    for pending in FileUploadRecord.by_expiry.query(PENDING_FILE_UPLOADS, FileUploadRecord.gsi1sk < bound):
        _delete_blob(pending.blob_key)  # a fresh key per announcement: never a file's current content
        try:
            pending.delete(condition=FileUploadRecord.gsi1sk == pending.gsi1sk)
        except DeleteError:
            continue
        swept += 1
    return swept


def download_url(node: FileNodeRecord, *, inline: bool) -> str:
    """A presigned GET with the same headers a direct download carries (`download_headers`)."""
    disposition = download_headers(node, inline=inline).get("Content-Disposition")
    return presigned.download_url(bucket(), node.blob_key, node.content_type, disposition, node.blob_version)


def _relocate(node: FileNodeRecord, name: str, parent_id: str | None, checks: list[FileNodeRecord]) -> FileNodeRecord:
    """Give the node a new name and/or parent in one transaction; `checks` are folders whose
    parent must not have changed since they were read (the destination's ancestry)."""
    now = now_iso()

    def update(transaction: TransactWrite) -> None:
        transaction.update(
            node,
            actions=[
                FileNodeRecord.name.set(name),
                FileNodeRecord.gsi1sk.set(name),
                FileNodeRecord.parent_id.set(parent_id or ""),
                FileNodeRecord.gsi1pk.set(children_key(parent_id)),
                FileNodeRecord.updated_at.set(now),
                FileNodeRecord.revision.add(1),
            ],
            condition=FileNodeRecord.revision == node.revision,
        )
        for folder in checks:
            transaction.condition_check(
                FileNodeRecord,
                node_key(folder.node_id),
                META,
                condition=(FileNodeRecord.kind == FOLDER) & (FileNodeRecord.parent_id == folder.parent_id),
            )

    move_claim(
        _name_claim(node),
        NameClaimRecord(name_claim_key(parent_id, name), META, node_id=node.node_id),
        lambda: _conflict(parent_id, name, node.node_id),
        also=update,
        old_condition=NameClaimRecord.node_id == node.node_id,
    )
    return get_node(node.node_id)


def rename(node_id: str, kind: str, name: str | None, principal: Principal | None = None) -> FileNodeRecord:
    node = get_node(node_id, kind, principal, EDIT)
    name = valid_name(name)
    if name == node.name:
        return node
    return _relocate(node, name, node.parent_id or None, [])


def move(node_id: str, kind: str, new_parent_id: str | None, principal: Principal | None = None) -> FileNodeRecord:
    """Move into another folder ("" or absent: the root). A folder cannot move into itself or below itself."""
    node = get_node(node_id, kind, principal, EDIT)
    new_parent_id = (new_parent_id or "").strip() or None
    destination = _parent_folder(new_parent_id, "newParentId", principal)
    if (new_parent_id or "") == node.parent_id:
        return node
    lineage = ancestors(destination)
    if len(lineage) > MAX_DEPTH:
        raise ValidationError(f"folders nest at most {MAX_DEPTH} deep", param="newParentId")
    if any(folder.node_id == node.node_id for folder in lineage):
        raise ValidationError("a folder cannot be moved into itself or one of its subfolders", param="newParentId")
    return _relocate(node, node.name, new_parent_id, lineage)


def _remove(node: FileNodeRecord, refused: str) -> None:
    delete_claimed(node, _name_claim(node), refused, condition=FileNodeRecord.revision == node.revision)


def delete_file(node_id: str, principal: Principal | None = None) -> FileNodeRecord:
    """Returns the file removed."""
    node = get_node(node_id, FILE, principal, MANAGE)
    _remove(node, "the file changed concurrently; retry")
    _delete_blob(node.blob_key)
    return node


def _subtree(folder: FileNodeRecord) -> list[FileNodeRecord]:
    """The folder's descendants, deepest first (children before their parents)."""
    found: list[FileNodeRecord] = []
    for child in FileNodeRecord.by_parent.query(children_key(folder.node_id)):
        if child.kind == FOLDER:
            found.extend(_subtree(child))
        found.append(child)
    return found


def delete_folder(folder_id: str, principal: Principal | None = None) -> list[FileNodeRecord]:
    """Recursive, as the contract says: files (content included), subfolders, then the folder
    (manage on the folder is enough: what others put in it goes with it). Returns the files removed."""
    folder = get_node(folder_id, FOLDER, principal, MANAGE)
    removed = []
    for node in [*_subtree(folder), folder]:
        _remove(node, f"{node.name!r} changed while the folder was being deleted; retry")
        if node.kind == FILE:
            _delete_blob(node.blob_key)
            removed.append(node)
    return removed

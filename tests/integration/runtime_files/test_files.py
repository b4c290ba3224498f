"""Files and folders: the inventory's fields, S3 round trips, unique names, moves and deletes."""

from __future__ import annotations

from datetime import datetime

from aiplane.data import aws
from aiplane.files import tree
from aiplane.files.models import FileNodeRecord, node_key

FILE_FIELDS = {"id", "name", "path", "contentType", "size", "createdAt", "updatedAt"}
FOLDER_FIELDS = {"id", "name", "path", "createdAt", "updatedAt", "size"}


def upload(runtime, name, content=b"hello", parent=None, content_type="text/plain"):
    data = {"name": name, **({"parentid": parent} if parent else {})}
    return runtime.post("/files", files={"file": (name, content, content_type)}, data=data)


def assert_error(response, status, code=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "param", "type"}
    if code:
        assert error["code"] == code


def objects_under(node_id):
    listing = aws.client("s3").list_objects_v2(Bucket=tree.bucket(), Prefix=f"files/{node_id}/")
    return [item["Key"] for item in listing.get("Contents", [])]


def test_upload_read_download_round_trip(runtime, folder):
    created = upload(runtime, "report.txt", b"quarterly numbers", folder["id"])
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == FILE_FIELDS
    assert body["path"] == f"{folder['path']}/report.txt" and body["size"] == 17 and body["contentType"] == "text/plain"
    datetime.fromisoformat(body["createdAt"].replace("Z", "+00:00"))
    assert runtime.get(f"/files/{body['id']}").json() == body
    download = runtime.get(f"/files/{body['id']}/download")
    assert download.status_code == 200 and download.content == b"quarterly numbers"
    assert download.headers["content-type"].startswith("text/plain")
    assert "report.txt" in download.headers["content-disposition"]
    skipped = runtime.get(f"/files/{body['id']}/download", params={"skip": "true"})
    assert skipped.content == b"quarterly numbers" and "content-disposition" not in skipped.headers
    record = FileNodeRecord.get(node_key(body["id"]), "META")
    stored = aws.client("s3").get_object(Bucket=tree.bucket(), Key=record.blob_key)["Body"].read()
    assert stored == b"quarterly numbers"


def test_active_content_is_always_an_attachment_that_is_never_sniffed(runtime, folder):
    # Stored XSS replay: an uploaded page or image with script, opened inline from the API's origin.
    script = b"<script>fetch('/runtime/users').then(r => r.text()).then(alert)</script>"
    for name, content_type in (
        ("page.html", "text/html"),
        ("logo.svg", "image/svg+xml"),
        ("feed.xml", "application/xml"),
        ("data.xhtml", "application/xhtml+xml"),
        ("app.js", "text/javascript"),
        ("lib.mjs", "application/javascript; charset=utf-8"),
    ):
        created = upload(runtime, name, script, folder["id"], content_type=content_type)
        assert created.status_code == 201, created.text
        for params in ({}, {"skip": "true"}):
            download = runtime.get(f"/files/{created.json()['id']}/download", params=params)
            assert download.headers["content-disposition"].startswith("attachment;"), (name, params)
            assert download.headers["x-content-type-options"] == "nosniff"
    inline = upload(runtime, "notes.txt", b"plain", folder["id"])
    shown = runtime.get(f"/files/{inline.json()['id']}/download", params={"skip": "true"})
    assert "content-disposition" not in shown.headers and shown.headers["x-content-type-options"] == "nosniff"


def test_name_defaults_to_the_uploaded_filename_and_type_is_guessed(runtime, folder):
    response = runtime.post(
        "/files", files={"file": ("data.json", b"{}", "application/octet-stream")}, data={"parentid": folder["id"]}
    )
    assert response.status_code == 201
    assert response.json()["name"] == "data.json" and response.json()["contentType"] == "application/json"


def test_replace_swaps_the_content_and_drops_the_old_object(runtime, folder):
    file_id = upload(runtime, "a.txt", b"one", folder["id"]).json()["id"]
    replaced = runtime.put(f"/files/{file_id}", files={"file": ("a.txt", b"second version", "text/plain")})
    assert replaced.status_code == 200 and replaced.json()["size"] == 14
    assert runtime.get(f"/files/{file_id}/download").content == b"second version"
    assert len(objects_under(file_id)) == 1


def test_upload_errors_write_nothing(runtime, folder):
    before = runtime.get("/files", params={"path": folder["path"]}).json()
    assert_error(
        runtime.post("/files", content=b"x", headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type"
    )
    assert_error(runtime.post("/files", json={"name": "x"}), 400)  # JSON announces a presigned upload: size is required
    assert_error(runtime.post("/files", data={"name": "x"}, files={"other": ("x", b"1")}), 400, "missing_parameter")
    assert_error(upload(runtime, "empty.txt", b"", folder["id"]), 400, "file_empty")
    assert_error(upload(runtime, "bad/name", b"x", folder["id"]), 400)
    assert_error(upload(runtime, "orphan.txt", b"x", "no-such-folder"), 404)
    assert runtime.get("/files", params={"path": folder["path"]}).json() == before


def test_upload_over_the_limit_is_413(runtime, folder, monkeypatch):
    monkeypatch.setattr("aiplane.files.uploads.MAX_UPLOAD_BYTES", 8)
    assert_error(upload(runtime, "big.bin", b"123456789", folder["id"]), 413, "file_size_limit_exceeded")


def test_names_are_unique_per_folder(runtime, folder, unique):
    assert upload(runtime, "same.txt", b"1", folder["id"]).status_code == 201
    assert_error(upload(runtime, "same.txt", b"2", folder["id"]), 409, "conflict")
    assert_error(runtime.post("/folders", json={"name": "same.txt", "parentId": folder["id"]}), 409)
    other = runtime.post("/folders", json={"name": unique("o")}).json()
    moved = upload(runtime, "same.txt", b"3", other["id"]).json()
    assert_error(runtime.put(f"/files/{moved['id']}/move", json={"newParentId": folder["id"]}), 409)
    second = upload(runtime, "second.txt", b"4", folder["id"]).json()
    assert_error(runtime.put(f"/files/{second['id']}/name", json={"name": "same.txt"}), 409)
    # the refused writes changed nothing
    assert runtime.get(f"/files/{second['id']}").json()["name"] == "second.txt"
    assert runtime.get(f"/files/{moved['id']}").json()["path"] == f"{other['path']}/same.txt"


def test_rename_frees_the_old_name(runtime, folder):
    first = upload(runtime, "old.txt", b"1", folder["id"]).json()
    renamed = runtime.put(f"/files/{first['id']}/name", json={"name": "new.txt"})
    assert renamed.status_code == 200 and renamed.json()["path"] == f"{folder['path']}/new.txt"
    assert upload(runtime, "old.txt", b"2", folder["id"]).status_code == 201


def test_folders_fields_rename_and_move(runtime, folder, unique):
    child = runtime.post("/folders", json={"name": "child", "parentId": folder["id"]})
    assert child.status_code == 201
    body = child.json()
    assert set(body) == FOLDER_FIELDS | {"parentId"} and body["parentId"] == folder["id"]
    assert body["path"] == f"{folder['path']}/child"
    file_id = upload(runtime, "inner.txt", b"x", body["id"]).json()["id"]
    renamed = runtime.put(f"/folders/{body['id']}/name", json={"name": "renamed"}).json()
    assert renamed["path"] == f"{folder['path']}/renamed"
    assert runtime.get(f"/files/{file_id}").json()["path"] == f"{folder['path']}/renamed/inner.txt"
    target = runtime.post("/folders", json={"name": unique("dest")}).json()
    moved = runtime.put(f"/folders/{body['id']}/move", json={"newParentId": target["id"]})
    assert moved.status_code == 200 and moved.json()["parentId"] == target["id"]
    assert runtime.get(f"/files/{file_id}").json()["path"] == f"{target['path']}/renamed/inner.txt"
    to_root = runtime.put(f"/folders/{body['id']}/move", json={"newParentId": ""}).json()
    assert to_root["path"] == "/renamed" and "parentId" not in to_root
    runtime.delete(f"/folders/{body['id']}")


def test_moves_refuse_cycles(runtime, folder):
    a = runtime.post("/folders", json={"name": "a", "parentId": folder["id"]}).json()
    b = runtime.post("/folders", json={"name": "b", "parentId": a["id"]}).json()
    assert_error(runtime.put(f"/folders/{a['id']}/move", json={"newParentId": b["id"]}), 400)
    assert_error(runtime.put(f"/folders/{a['id']}/move", json={"newParentId": a["id"]}), 400)
    assert runtime.get("/files", params={"path": folder["path"]}).json()[1]["path"] == f"{folder['path']}/a"


def test_move_into_a_file_or_unknown_folder_is_refused(runtime, folder):
    file_id = upload(runtime, "f.txt", b"x", folder["id"]).json()["id"]
    assert_error(runtime.put(f"/folders/{folder['id']}/move", json={"newParentId": file_id}), 400)
    assert_error(runtime.put(f"/files/{file_id}/move", json={"newParentId": "missing"}), 404)


def test_list_filters_by_path_prefix(runtime, folder):
    sub = runtime.post("/folders", json={"name": "docs", "parentId": folder["id"]}).json()
    upload(runtime, "in.txt", b"x", sub["id"])
    upload(runtime, "out.txt", b"x", folder["id"])
    listed = runtime.get("/files", params={"path": sub["path"]}).json()
    assert [item["path"] for item in listed] == [sub["path"], f"{sub['path']}/in.txt"]
    everything = {item["path"] for item in runtime.get("/files", params={"path": folder["path"]}).json()}
    assert everything == {folder["path"], sub["path"], f"{sub['path']}/in.txt", f"{folder['path']}/out.txt"}
    assert runtime.get("/files", params={"path": folder["path"] + "-not"}).json() == []


def test_delete_file_removes_metadata_and_content(runtime, folder):
    file_id = upload(runtime, "gone.txt", b"x", folder["id"]).json()["id"]
    assert runtime.delete(f"/files/{file_id}").json() == {"message": "file removed"}
    assert_error(runtime.get(f"/files/{file_id}"), 404, "not_found")
    assert objects_under(file_id) == []
    assert upload(runtime, "gone.txt", b"y", folder["id"]).status_code == 201


def test_folder_delete_is_recursive(runtime, folder):
    sub = runtime.post("/folders", json={"name": "sub", "parentId": folder["id"]}).json()
    deep = upload(runtime, "deep.txt", b"x", sub["id"]).json()["id"]
    top = upload(runtime, "top.txt", b"x", folder["id"]).json()["id"]
    assert runtime.delete(f"/folders/{folder['id']}").json() == {"message": "folder removed"}
    for node_id in (deep, top):
        assert_error(runtime.get(f"/files/{node_id}"), 404)
        assert objects_under(node_id) == []
    assert runtime.get("/files", params={"path": folder["path"]}).json() == []
    assert_error(runtime.delete(f"/folders/{folder['id']}"), 404)


def test_files_and_folders_are_not_interchangeable(runtime, folder):
    file_id = upload(runtime, "f.txt", b"x", folder["id"]).json()["id"]
    assert_error(runtime.get(f"/files/{folder['id']}"), 404)
    assert_error(runtime.delete(f"/folders/{file_id}"), 404)


def test_bad_bodies_are_400(runtime, folder):
    assert_error(runtime.post("/folders", json={}), 400)
    assert_error(runtime.post("/folders", json={"name": "  "}), 400)
    assert_error(runtime.put(f"/folders/{folder['id']}/name", json={}), 400)
    assert_error(runtime.put(f"/folders/{folder['id']}/name", json={"name": ".."}), 400)


def test_routes_need_credentials(admin_api_key):
    from fastapi.testclient import TestClient

    from functions.family_app import build_family_app

    client = TestClient(build_family_app("runtime"), raise_server_exceptions=False)
    assert_error(client.get("/files"), 401)


def test_concurrent_creates_of_one_name_give_one_winner(runtime, folder):
    from concurrent.futures import ThreadPoolExecutor

    from aiplane.errors import ConflictError

    def create(_):
        try:
            return tree.create_folder("race", folder["id"]).node_id
        except ConflictError:
            return None

    with ThreadPoolExecutor(8) as pool:
        winners = [node_id for node_id in pool.map(create, range(8)) if node_id]
    assert len(winners) == 1
    assert [item["name"] for item in runtime.get("/files", params={"path": folder["path"]}).json()] == [
        folder["name"],
        "race",
    ]


def test_crossing_folder_moves_cannot_build_a_cycle(runtime, folder, monkeypatch):
    """A into B reads B's ancestry; B moves into A before A's move commits: A's move is refused."""
    from aiplane.errors import ConflictError

    a = tree.create_folder("a", folder["id"]).node_id
    b = tree.create_folder("b", folder["id"]).node_id
    read_ancestry = tree.ancestors

    def ancestry_then_crossing_move(node):
        lineage = read_ancestry(node)
        monkeypatch.setattr(tree, "ancestors", read_ancestry)
        tree.move(b, "folder", a)  # the other writer wins the race
        return lineage

    monkeypatch.setattr(tree, "ancestors", ancestry_then_crossing_move)
    try:
        tree.move(a, "folder", b)
        raise AssertionError("the crossing move was accepted")
    except ConflictError:
        pass
    assert tree.get_node(a).parent_id == folder["id"] and tree.get_node(b).parent_id == a


def test_routes_need_the_files_permission(runtime, unique, admin_api_key, folder):
    from tests.integration.runtime_files.test_search import user_client

    viewer = user_client(runtime, unique, admin_api_key, permission="view")  # view on files
    assert viewer.get("/files", params={"path": folder["path"]}).status_code == 200
    assert_error(viewer.post("/folders", json={"name": "nope"}), 403, "forbidden")
    assert_error(viewer.delete(f"/folders/{folder['id']}"), 403)

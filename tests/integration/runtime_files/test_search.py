"""POST /index, GET /search and GET /keywords, embedding through the runtime gateway: a stand-in
Ollama registered as a backend, with an embedding model in the same group."""

from __future__ import annotations

from aiplane.gateway import routing
from tests.integration.runtime_files.conftest import user_client
from tests.integration.runtime_files.test_files import assert_error, upload

CORPUS = {
    "pets": ["the cat chased the dog", "a dog and a cat and a bird"],
    "cars": ["the car engine on the road", "engine oil for the car"],
    "sea": ["fish swim in ocean water"],
}


def index_corpus(client):
    for document_id, chunks in CORPUS.items():
        response = client.post(
            "/index", json={"id": document_id, "chunks": chunks, "jobId": "", "leaserId": "", "replace": False}
        )
        assert response.status_code == 200, response.text


def test_index_answers_with_the_inventory_fields(searcher, embedder):
    response = searcher.post("/index", json={"id": "pets", "chunks": CORPUS["pets"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"id", "vectors", "augmentedMetadata"}
    assert body["id"] == "pets" and body["vectors"] == ["pets#0", "pets#1"]
    assert body["augmentedMetadata"][:2] == ["cat", "dog"]
    assert embedder.embedded == CORPUS["pets"]


def test_search_ranks_by_cosine_similarity(searcher):
    index_corpus(searcher)
    response = searcher.get("/search", params={"q": "car engine", "topk": "2"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["triedQuery"] == ["car engine"]
    # "engine oil for the car" shares both words and nothing else; "the car engine on the road" adds "road"
    assert [item["id"] for item in body["results"]] == ["cars#1", "cars#0"]
    first = body["results"][0]
    assert set(first) == {"id", "documentId", "chunkIndex", "text", "score", "distance"}
    assert first["score"] > 0.5 and abs(first["score"] + first["distance"] - 1) < 1e-9
    ocean = searcher.get("/search", params={"q": "ocean"}).json()["results"]
    assert ocean[0]["documentId"] == "sea" and len(ocean) == 5  # topk defaults to 10; 5 chunks exist
    near = searcher.get("/search", params={"q": "ocean", "radius": "0.5"}).json()["results"]
    assert [item["documentId"] for item in near] == ["sea"]


def test_each_caller_searches_only_its_own_chunks(searcher, runtime, unique, admin_api_key):
    index_corpus(searcher)
    other = user_client(runtime, unique, admin_api_key, permission="edit")
    assert other.get("/search", params={"q": "cat"}).json()["results"] == []


def test_replace_is_needed_to_reindex(searcher):
    index_corpus(searcher)
    assert_error(searcher.post("/index", json={"id": "sea", "chunks": ["car"]}), 409)
    replaced = searcher.post("/index", json={"id": "sea", "chunks": ["tree"], "replace": True})
    assert replaced.status_code == 200 and replaced.json()["vectors"] == ["sea#0"]
    results = searcher.get("/search", params={"q": "tree", "radius": "0.1"}).json()["results"]
    assert [(item["documentId"], item["text"]) for item in results] == [("sea", "tree")]
    shorter = searcher.post("/index", json={"id": "pets", "chunks": ["bird"], "replace": True})
    assert shorter.json()["vectors"] == ["pets#0"]
    pets = [
        item
        for item in searcher.get("/search", params={"q": "cat dog bird"}).json()["results"]
        if item["documentId"] == "pets"
    ]
    assert [item["text"] for item in pets] == ["bird"]


def test_expand_files_adds_the_file_metadata(searcher, runtime, folder):
    file_id = upload(runtime, "notes.txt", b"dog", folder["id"]).json()["id"]
    assert searcher.post("/index", json={"id": file_id, "chunks": ["dog dog"]}).status_code == 200
    result = searcher.get("/search", params={"q": "dog", "topk": "1", "expand": "files"}).json()["results"][0]
    assert result["documentId"] == file_id and result["file"] is None  # the admin's file, not shared with the searcher
    shared = runtime.post(
        "/access-control",
        json={"identity": searcher.get("/ui/me").json()["id"], "resource": f"files#{file_id}", "permission": "view"},
    )
    assert shared.status_code == 201, shared.text
    result = searcher.get("/search", params={"q": "dog", "topk": "1", "expand": "files"}).json()["results"][0]
    assert result["file"]["name"] == "notes.txt"


def test_bad_input_is_400_and_writes_nothing(searcher, embedder):
    for body in (
        {},
        {"id": "x"},
        {"id": "x", "chunks": []},
        {"id": "x", "chunks": ["ok", " "]},
        {"id": "a#b", "chunks": ["x"]},
        {"id": "x", "chunks": [3]},
    ):
        assert_error(searcher.post("/index", json=body), 400)
    assert embedder.embedded == []
    for params in (
        {},
        {"q": "x", "topk": "0"},
        {"q": "x", "topk": "many"},
        {"q": "x", "radius": "-1"},
        {"q": "x", "epsilon": "nan"},
        {"q": "x", "expand": "users"},
    ):
        assert_error(searcher.get("/search", params=params), 400)
    assert searcher.get("/keywords").json() == []


def test_a_failing_embedder_leaves_the_index_unchanged(searcher, embedder):
    assert searcher.post("/index", json={"id": "pets", "chunks": ["cat"]}).status_code == 200
    embedder.failing = True
    failed = searcher.post("/index", json={"id": "pets", "chunks": ["dog"], "replace": True})
    assert failed.status_code == 502
    embedder.failing = False
    routing.reset_cooldowns()
    assert searcher.get("/search", params={"q": "cat"}).json()["results"][0]["text"] == "cat"


def test_keywords_page_with_an_rfc3339_cursor(searcher):
    index_corpus(searcher)
    everything = searcher.get("/keywords").json()
    assert {"cat", "dog", "car", "engine", "ocean"} <= set(everything)
    pages, cursor = [], None
    while True:
        response = searcher.get("/keywords", params={"limit": "2", **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200
        pages.extend(response.json())
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            break
    assert pages == everything
    assert_error(searcher.get("/keywords", params={"cursor": "yesterday"}), 400)
    assert_error(searcher.get("/keywords", params={"limit": "-1"}), 400)


def test_view_permission_cannot_index(runtime, unique, admin_api_key):
    viewer = user_client(runtime, unique, admin_api_key, permission="view")
    assert_error(viewer.post("/index", json={"id": "x", "chunks": ["cat"]}), 403)
    assert viewer.get("/keywords").status_code == 200

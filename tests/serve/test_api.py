"""The explorer's JSON API and its security, through Starlette's test client.

Expected pages are derived from the run's own tables (``Run.samples``, ``Run.scores``, read
with pyarrow here), maps from the methods called directly; the security cases: path
traversal in every parameter that names something, uploads that are not images (text,
truncated, a pickle, too large, too many pixels), the CSP header, errors without
tracebacks, the Host check, the default bind address and the warning for another one.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import time
import warnings

import numpy as np
import pytest
import torch

from attrib.core.errors import AttribError as AttribError_
from attrib.core.errors import AttribWarning
from attrib.runs import open_run
from attrib.runs.models import LoadedModel
from tests.conftest import assert_state_restored, model_state
from tests.serve.conftest import make_app
from tests.serve.synthetic import CLASS_NAMES, METHODS, SCRIPT_CLASS

pytest.importorskip("httpx")
from starlette.testclient import TestClient

TRAVERSALS = [
    "..%2f..%2fetc%2fpasswd",
    "../../etc/passwd",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "..%5c..%5cwindows%5cwin.ini",
    "....//....//etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
]


@pytest.fixture(scope="module")
def client(image_run, text_run, model_run, live_model):
    app = make_app([image_run, model_run, text_run], ["images", "model", "texts"], live_model)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _decoded(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


# -- pages of samples --------------------------------------------------------------------------


def test_info_lists_the_runs_and_the_model(client):
    info = client.get("/api/info").json()
    assert [r["name"] for r in info["runs"]] == ["images", "model", "texts"]
    images = info["runs"][0]
    assert images["classes"] == CLASS_NAMES and images["samples"] == 24
    assert [m["name"] for m in images["methods"]] == list(METHODS)
    assert info["model"]["classes"] and "GradCAM" in [m["name"] for m in info["model"]["methods"]]


def test_pages_filter_sort_and_slice_as_the_tables_say(client, image_run):
    run = open_run(image_run)
    rows = run.samples.to_pylist()
    scores = {
        r["id"]: r["value"]
        for r in run.scores.to_pylist()
        if r["method"] == "GradCAM" and r["metric"] == "deletion"
    }
    every = client.get("/api/runs/images/samples", params={"limit": 500}).json()
    assert every["total"] == len(rows) and [r["id"] for r in every["rows"]] == [
        r["id"] for r in rows
    ]

    wrong = client.get("/api/runs/images/samples", params={"correct": "false"}).json()
    expected = [
        r["id"] for r in rows if r["prediction"] is not None and r["prediction"] != r["label"]
    ]
    assert [r["id"] for r in wrong["rows"]] == expected and expected

    one = client.get("/api/runs/images/samples", params={"class": 1, "status": "ok"}).json()
    expected = [r["id"] for r in rows if r["label"] == 1 and r["status"] == "ok"]
    assert [r["id"] for r in one["rows"]] == expected
    assert {r["label_name"] for r in one["rows"]} == {SCRIPT_CLASS}

    errors = client.get("/api/runs/images/samples", params={"status": "error"}).json()
    assert [r["id"] for r in errors["rows"]] == ["00006", "00013", "00020"]
    assert [r["id"] for r in errors["rows"]] == [r["id"] for r in rows if r["status"] == "error"]

    ranked = sorted(scores, key=lambda k: -scores[k])  # the error rows have no score: last
    ranked += [r["id"] for r in rows if r["id"] not in scores]
    page = client.get(
        "/api/runs/images/samples",
        params={"sort": "GradCAM:deletion", "order": "desc", "offset": 5, "limit": 7},
    ).json()
    assert page["total"] == len(rows) and page["offset"] == 5
    assert [r["id"] for r in page["rows"]] == ranked[5:12]
    assert [r["sort_value"] for r in page["rows"]] == [scores[k] for k in ranked[5:12]]


def test_one_sample_has_the_tables_scores_and_top_classes(client, image_run):
    run = open_run(image_run)
    sample = client.get("/api/runs/images/sample", params={"id": "00003"}).json()
    row = next(r for r in run.samples.to_pylist() if r["id"] == "00003")
    assert [t["class"] for t in sample["top"]] == row["top_classes"]
    assert [t["name"] for t in sample["top"]] == [CLASS_NAMES[c] for c in row["top_classes"]]
    for r in run.scores.to_pylist():
        if r["id"] == "00003" and r["method"] in METHODS:
            assert sample["scores"][r["method"]][r["metric"]] == r["value"]


def test_a_map_png_is_the_stored_map_coloured_with_its_strongest_value_opaque(client, image_run):
    run = open_run(image_run)
    _, maps = run.maps("GradCAM", ["00002"])
    stored = maps[0].astype(np.float64)
    answer = client.get(
        "/api/runs/images/map.png", params={"id": "00002", "method": "GradCAM", "mode": "absolute"}
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    picture = _decoded(answer.content)
    assert picture.shape == (32, 32, 4)  # the input's size, RGBA
    # alpha = |v / p99(|v|)| ** 0.5, clipped at 1 (attrib.serve.pictures)
    scale = np.percentile(np.abs(stored), 99)
    expected = np.clip(np.abs(stored) / scale, 0, 1) ** 0.5 * 255
    assert np.abs(picture[..., 3].astype(float) - expected).max() <= 1.0 + 255 * 2**-10
    thumb = _decoded(client.get("/api/runs/images/thumb.png", params={"id": "00002"}).content)
    assert thumb.shape == (96, 96, 3)


# -- live explanations -------------------------------------------------------------------------


def _wait(client, job: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = client.get(f"/api/jobs/{job}").json()
        if state["state"] not in ("queued", "running"):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.02)


def test_an_upload_is_explained_as_the_method_called_directly(client, model_run, live_model):
    from attrib.methods import GradCAM

    picture = model_run.parent / "data" / "images" / "00004.png"
    made = client.post("/api/uploads", content=picture.read_bytes()).json()
    assert made["width"] == 32 and len(made["top"]) == 4
    job = client.post(
        "/api/jobs", json={"upload": made["upload"], "methods": ["GradCAM"], "target": 3}
    ).json()
    state = _wait(client, job["job"])
    assert state["state"] == "done" and state["target"] == 3 and state["errors"] == {}

    from PIL import Image

    pixels = np.asarray(Image.open(picture).convert("RGB"), dtype=np.float32) / 255
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    direct = GradCAM(live_model.model, layer=live_model.layer)(x, target=3).values[0].numpy()
    served = client.app.state.explorer.live.find_job(job["job"]).maps["GradCAM"]
    np.testing.assert_allclose(served, direct, rtol=1e-5, atol=1e-6 * np.abs(direct).max())
    png = client.get(f"/api/jobs/{job['job']}/map.png", params={"method": "GradCAM"})
    assert png.status_code == 200 and _decoded(png.content).shape == (32, 32, 4)


def test_a_run_sample_for_another_class(client):
    job = client.post(
        "/api/jobs", json={"run": "model", "id": "00001", "methods": ["Saliency"], "target": 0}
    ).json()
    state = _wait(client, job["job"])
    assert state["state"] == "done" and state["target"] == 0 and state["done"] == ["Saliency"]


def test_a_long_job_reports_progress_and_is_cancelled_leaving_the_model_clean():
    from attrib.serve.app import create_app
    from attrib.serve.live import Live
    from tests.runs.slow_model import slow_cnn

    model = slow_cnn(delay=0.02)
    before = model_state(model)
    live = Live(LoadedModel(model, "slow", "none", ["a", "b", "c", "d"], "inner.features.9"))
    app = create_app([], live, allowed_hosts=["testserver"])
    with TestClient(app, raise_server_exceptions=False) as c:
        upload = c.post("/api/uploads", content=_png(np.zeros((32, 32, 3), np.uint8))).json()
        # Occlusion with a 2 x 2 window, stride 1: 31 x 31 masked copies, one forward each
        live.settings = {"Occlusion.window": 2, "Occlusion.strides": 1, "batch_size": 1}
        job = c.post(
            "/api/jobs", json={"upload": upload["upload"], "methods": ["Occlusion", "Saliency"]}
        ).json()
        deadline = time.monotonic() + 30
        while c.get(f"/api/jobs/{job['job']}").json()["passes"] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        running = c.get(f"/api/jobs/{job['job']}").json()
        assert running["state"] == "running" and running["current"] == "Occlusion"
        c.delete(f"/api/jobs/{job['job']}")
        state = _wait(c, job["job"])
    assert state["state"] == "cancelled" and state["done"] == []
    assert state["passes"] < 31 * 31
    assert_state_restored(model, before)


# -- security ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", TRAVERSALS)
def test_path_traversal_in_any_parameter_is_a_404(client, bad):
    urls = [
        f"/{bad}",
        f"/api/runs/{bad}/samples",
        f"/api/runs/images/sample?id={bad}",
        f"/api/runs/images/input.png?id={bad}",
        f"/api/runs/images/thumb.png?id={bad}",
        f"/api/runs/images/map.png?id=00001&method={bad}",
        f"/api/runs/images/map.png?id={bad}&method=GradCAM",
        f"/api/runs/images/map.png?id=00001&method=GradCAM&cmap={bad}",
        f"/api/runs/images/map.png?id=00001&method=GradCAM&mode={bad}",
        f"/api/runs/images/samples?sort={bad}",
        f"/api/uploads/{bad}/input.png",
        f"/api/jobs/{bad}",
        f"/api/jobs/{bad}/map.png?method=GradCAM",
    ]
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 404, url
        assert "root:" not in answer.text and "Traceback" not in answer.text
    for body in (
        {"upload": bad, "methods": ["Saliency"]},
        {"run": bad, "methods": ["Saliency"]},
        {"run": "images", "id": bad, "methods": ["Saliency"]},
    ):
        assert client.post("/api/jobs", json=body).status_code == 404


def _refused(client, content: bytes, status: int, says: str) -> None:
    answer = client.post("/api/uploads", content=content)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"] and "Traceback" not in answer.text
    assert client.get("/api/info").status_code == 200  # the server keeps serving


def test_uploads_that_are_not_images_are_refused_with_a_message(client, model_run):
    from attrib.serve.live import MAX_PIXELS, MAX_UPLOAD_BYTES

    picture = (model_run.parent / "data" / "images" / "00004.png").read_bytes()
    _refused(client, b"just some text", 400, "not an image")
    _refused(client, b"", 400, "empty")
    _refused(client, picture[: len(picture) // 2], 400, "truncated")
    _refused(client, pickle.dumps({"a": torch.zeros(2)}), 400, "not an image")
    _refused(client, b"\0" * (MAX_UPLOAD_BYTES + 1), 413, "larger than 8 MiB")
    side = math.isqrt(MAX_PIXELS) + 1  # a few KB of PNG that decodes to too many pixels
    _refused(client, _png(np.zeros((side, side), np.uint8)), 413, "pixels")


def test_every_answer_carries_the_csp_and_errors_have_no_traceback(client, monkeypatch):
    for url in ("/", "/app.js", "/style.css", "/api/info", "/nothing", "/api/runs/x/samples"):
        answer = client.get(url)
        assert answer.headers["content-security-policy"].startswith("default-src 'self'")
        assert "script-src 'self';" in answer.headers["content-security-policy"]
        assert "unsafe" not in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
    served = client.app.state.explorer.runs["images"]

    def broken() -> dict:
        raise RuntimeError("secret detail /home/user/private")

    monkeypatch.setattr(served, "summary", broken)
    answer = client.get("/api/runs/images/summary")
    assert answer.status_code == 500
    assert "secret" not in answer.text and "Traceback" not in answer.text
    assert answer.json() == {"error": "internal error (the server's log says more)"}
    assert client.get("/api/info").status_code == 200


def test_bad_requests_are_4xx_with_a_message(client):
    for url, status in (
        ("/api/runs/images/samples?offset=x", 400),
        ("/api/runs/images/samples?limit=100000", 400),
        ("/api/runs/images/samples?correct=maybe", 400),
    ):
        answer = client.get(url)
        assert answer.status_code == status and answer.json()["error"]
    answer = client.post("/api/jobs", content=b"{not json")
    assert answer.status_code == 400
    answer = client.post("/api/jobs", json={"upload": "x", "methods": "GradCAM"})
    assert answer.status_code == 400


def test_the_host_header_must_be_the_loopback_one(client, image_run):
    from attrib.serve.app import create_app
    from attrib.serve.served import open_served

    assert client.get("/api/info", headers={"host": "evil.example"}).status_code == 400
    assert client.get("/api/info", headers={"host": "127.0.0.1:8765"}).status_code == 200
    # as served: the loopback names only
    with TestClient(create_app([open_served(image_run, "r")], host="127.0.0.1")) as c:
        assert c.get("/api/info").status_code == 400  # "testserver"
        for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765"):
            assert c.get("/api/info", headers={"host": host}).status_code == 200, host
        assert c.get("/api/info", headers={"host": "attacker.example:8765"}).status_code == 400


def test_the_text_page_escapes_nothing_itself_the_page_does(client):
    # the API returns tokens as data (JSON strings); the page puts them in as text
    sample = client.get("/api/runs/texts/sample", params={"id": "t2"}).json()
    assert sample["tokens"]["Saliency"]["tokens"][1] == "<img src=x onerror=alert(1)>"
    assert json.dumps(sample)


def test_serve_binds_the_loopback_address_by_default_and_warns_for_another(monkeypatch):
    from attrib.cli.main import build_parser
    from attrib.serve import server

    args = build_parser().parse_args(["serve", "some-run"])
    assert args.host == "127.0.0.1" and args.port == 8765 and not args.open
    assert server.is_loopback("127.0.0.1") and server.is_loopback("::1")
    assert not server.is_loopback("0.0.0.0") and not server.is_loopback("192.168.1.4")

    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    with pytest.warns(AttribWarning, match="anyone who can reach it"):
        with pytest.raises(SystemExit):
            server.serve(object(), host="0.0.0.0", port=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SystemExit):
            server.serve(object(), host="127.0.0.1", port=1)


def test_words_are_the_sum_of_their_pieces_special_tokens_in_none():
    from attrib.serve.served import _words

    words, scores = _words(["[CLS]", "a", "wonder", "##ful", "film", "[SEP]"], [5, 1, 2, 3, 4, 7])
    assert words == ["a", "wonderful", "film"] and scores == [1, 5, 4]
    words, scores = _words(["<s>", "▁un", "watch", "able", "▁film", "</s>"], [9, 1, 2, 3, 4, 9])
    assert words == ["unwatchable", "film"] and scores == [6, 4]


def test_a_job_request_is_small(client):
    answer = client.post("/api/jobs", content=b"[" + b"1," * 40_000 + b"1]")
    assert answer.status_code == 413


def test_a_typed_text_is_explained_as_explain_tokens_does(minilm, text_run):
    from attrib.serve.app import create_app
    from attrib.serve.live_text import TextLive
    from attrib.serve.served import open_served
    from attrib.text import explain_tokens

    live = TextLive(minilm, "minilm-sentiment")
    app = create_app([open_served(text_run, "texts")], live, allowed_hosts=["testserver"])
    with TestClient(app) as c:
        assert c.get("/api/info").json()["model"]["kind"] == "text"
        assert c.post("/api/uploads", content=b"\x89PNG").status_code == 409
        body = {"text": "an unwatchable film", "methods": ["Saliency"], "target": 0}
        state = _wait(c, c.post("/api/jobs", json=body).json()["job"])
        too_long = {"text": "a" * 5001, "methods": ["Saliency"]}
        assert c.post("/api/jobs", json=too_long).status_code == 400
    assert state["state"] == "done" and state["target"] == 0, state
    direct = explain_tokens(minilm, ["an unwatchable film"], "saliency", target=[0]).scores()
    served = state["tokens"]["Saliency"]
    assert served["tokens"] == [t for t, _ in direct.tokens_and_scores(0)]
    np.testing.assert_allclose(
        served["word_scores"], [v for _, v in direct.words_of(0)], rtol=1e-5, atol=1e-7
    )
    assert served["words"] == [w for w, _ in direct.words_of(0)]


def test_run_maps_of_some_ids_read_only_their_shards_and_equal_the_whole_read(image_run):
    run = open_run(image_run)
    every_ids, every = run.maps("GradCAM")
    wanted = ["00017", "00002", "00017", "00009"]  # three shards of 8, one id twice
    ids, some = run.maps("GradCAM", wanted)
    assert ids == wanted
    np.testing.assert_array_equal(some, every[[every_ids.index(i) for i in wanted]])
    assert run._shards_of(wanted) == {0, 1, 2}
    with pytest.raises(AttribError_, match="ids"):
        run.maps("GradCAM", ["00006"])  # an error row: no map


def test_run_source_opens_the_runs_source_again(image_run, tmp_path):
    run = open_run(image_run)
    source = run.source()
    assert [source[i].id for i in range(3)] == run.samples["id"].to_pylist()[:3]
    (tmp_path / "moved").mkdir()
    manifest = json.loads((image_run / "manifest.json").read_text())
    manifest["source"]["location"] = str(tmp_path / "gone.csv")
    (tmp_path / "moved" / "manifest.json").write_text(json.dumps(manifest))
    assert open_run(tmp_path / "moved").source() is None

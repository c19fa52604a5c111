"""Uploads (Files API): the simulator's endpoints, client.upload, reuse by content hash, large inputs as file ids."""

from __future__ import annotations

import io
import sqlite3

import httpx
import numpy as np
import pytest
from PIL import Image

import grok_nb
from grok_nb import Client
from grok_nb.api import files as api_files
from grok_nb.api.probe import probe
from tests._proxy import FaultProxy
from tests.conftest import FAST, SPEED, TEST_KEY, count

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


def _png(size=(640, 480), colour=(20, 160, 220)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _noise_png(side: int) -> bytes:
    """A PNG that does not compress: about 3 bytes a pixel."""
    pixels = np.random.default_rng(1).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", compress_level=0)
    return buf.getvalue()


def _multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[str, bytes]:
    body = b""
    for name, filename, data in parts:
        fn = f'; filename="{filename}"' if filename else ""
        body += f'--BOUNDARY\r\nContent-Disposition: form-data; name="{name}"{fn}\r\n\r\n'.encode() + data + b"\r\n"
    return "multipart/form-data; boundary=BOUNDARY", body + b"--BOUNDARY--\r\n"


def _file_rows(client) -> list[dict]:
    with sqlite3.connect(client.store.path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM files ORDER BY created_at")]


# -- the pure contract ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, 3599, 2_592_001, 3600.5, "3600", True, float("nan"), -1])
def test_expires_after_outside_its_range_is_refused(value):
    with pytest.raises(grok_nb.ValidationError, match="expires_after"):
        api_files.check_expires_after(value)


def test_expires_after_within_range():
    assert api_files.check_expires_after(3600) == 3600 and api_files.check_expires_after(None) is None
    assert api_files.check_expires_after(2_592_000.0) == 2_592_000


def test_upload_size_limit_names_the_limit():
    with pytest.raises(grok_nb.ValidationError, match="at most 50 MB"):
        api_files.check_upload_size(api_files.MAX_UPLOAD_BYTES + 1)
    with pytest.raises(grok_nb.ValidationError, match="non-empty"):
        api_files.check_upload_size(0)
    api_files.check_upload_size(api_files.MAX_UPLOAD_BYTES)


def test_parse_file_is_lenient_and_needs_an_id():
    info = api_files.parse_file({"id": "file_1", "bytes": 3, "created_at": 10, "filename": "a.png", "extra": 1})
    assert (info.id, info.bytes, info.created_at, info.filename, info.expires_at) == ("file_1", 3, 10, "a.png", None)
    assert api_files.parse_file({"file_id": "file_2", "bytes": "x"}).bytes is None
    for bad in (None, [], {"bytes": 3}, {"id": ""}):
        with pytest.raises(ValueError):
            api_files.parse_file(bad)


def test_large_inline_inputs_are_found_and_replaced():
    small = {"url": "data:image/png;base64," + "A" * 40}
    big = {"url": "data:video/mp4;base64," + "A" * 400}
    body = {"prompt": "x", "image": small, "reference_images": [small, big], "video": big,
            "keyframes": [{"image": big, "timestamp_s": 1}]}
    found = api_files.large_inline_inputs(body, limit=100)
    assert [path for path, _ in found] == [("reference_images", 1), ("video",), ("keyframes", 0, "image")]
    out = api_files.replace_at(body, ("keyframes", 0, "image"), {"file_id": "f"})
    assert out["keyframes"][0]["image"] == {"file_id": "f"} and body["keyframes"][0]["image"] is big  # a copy
    assert api_files.large_inline_inputs(body) == []  # the real limit: 10 MiB


# -- the simulator over loopback -----------------------------------------------------------------
def test_simulator_refuses_expires_after_after_the_file_part(sim):
    content_type, body = _multipart([("file", "a.png", _png()), ("expires_after", None, b"3600")])
    answer = httpx.post(sim.url + "/v1/files", headers={**AUTH, "Content-Type": content_type}, content=body)
    assert answer.status_code == 400 and "before the file" in answer.json()["error"]


@pytest.mark.parametrize("expires", [b"60", b"3000000", b"soon"])
def test_simulator_refuses_expires_after_out_of_range(sim, expires):
    content_type, body = _multipart([("expires_after", None, expires), ("file", "a.png", _png())])
    answer = httpx.post(sim.url + "/v1/files", headers={**AUTH, "Content-Type": content_type}, content=body)
    assert answer.status_code == 400 and "expires_after" in answer.json()["error"]


@pytest.mark.slow
def test_simulator_files_endpoints(sim):
    assert httpx.post(sim.url + "/v1/files", files={"file": ("a.png", _png())}).status_code == 401
    content_type, body = _multipart([("purpose", None, b"vision")])
    assert httpx.post(sim.url + "/v1/files", headers={**AUTH, "Content-Type": content_type},
                      content=body).status_code == 400  # no file part
    data = _png()
    made = httpx.post(sim.url + "/v1/files", headers=AUTH, data={"expires_after": "7200"},
                      files={"file": ("a.png", data, "image/png")}).json()
    assert made["id"].startswith("file_") and made["bytes"] == len(data) and made["filename"] == "a.png"
    assert made["expires_at"] > made["created_at"]
    fid = made["id"]
    assert httpx.get(f"{sim.url}/v1/files/{fid}", headers=AUTH).json()["id"] == fid
    assert httpx.get(f"{sim.url}/v1/files/{fid}/content", headers=AUTH).content == data
    assert fid in [f["id"] for f in httpx.get(f"{sim.url}/v1/files", headers=AUTH).json()["data"]]
    assert httpx.delete(f"{sim.url}/v1/files/{fid}", headers=AUTH).json() == {"id": fid, "deleted": True}
    assert httpx.get(f"{sim.url}/v1/files/{fid}", headers=AUTH).status_code == 404
    # A job naming a file that is gone is refused at submit.
    answer = httpx.post(sim.url + "/v1/videos/generations", headers=AUTH,
                        json={"prompt": "x", "duration": 1, "image": {"file_id": fid}})
    assert answer.status_code == 400 and "upload it first" in answer.json()["error"]


# -- the client ------------------------------------------------------------------------------------
def test_upload_over_50_mb_is_refused_before_sending(client, sim, tmp_path):
    big = tmp_path / "big.mp4"
    with open(big, "wb") as f:
        f.truncate(api_files.MAX_UPLOAD_BYTES + 1)  # sparse: the size is checked before the file is read
    with pytest.raises(grok_nb.ValidationError, match="at most 50 MB"):
        client.upload(big)
    with pytest.raises(grok_nb.ValidationError, match="expires_after"):
        client.upload(_png(), expires_after=60)
    with pytest.raises(grok_nb.ValidationError, match="file"):
        client.upload(tmp_path / "missing.png")
    assert count(sim, "POST", "/v1/files") == 0


def test_upload_is_remembered_and_not_repeated(client, sim, tmp_path):
    path = tmp_path / "blue.png"
    data = _png()
    path.write_bytes(data)
    fid = client.upload(path, expires_after=7200)
    assert fid.startswith("file_")
    (row,) = _file_rows(client)
    assert (row["file_id"], row["bytes"], row["filename"]) == (fid, len(data), "blue.png")
    assert row["sha256"] == api_files.sha256_hex(data) and row["expires_at"] is not None
    assert client.upload(data) == fid  # same bytes (as bytes this time): the same id, no second upload
    assert count(sim, "POST", "/v1/files") == 1
    # Deleted at the server: the next upload of those bytes sends them again.
    httpx.delete(f"{sim.url}/v1/files/{fid}", headers=AUTH)
    again = client.upload(data)
    assert again != fid and count(sim, "POST", "/v1/files") == 2
    assert [r["file_id"] for r in _file_rows(client)] == [again]


def test_an_expired_upload_is_not_reused(client, sim):
    data = _png(colour=(200, 10, 10))
    fid = client.upload(data, expires_after=3600)
    with sqlite3.connect(client.store.path) as db:  # its expiry has passed
        db.execute("UPDATE files SET expires_at = '2020-01-01T00:00:00+00:00'")
    assert client.upload(data) != fid and count(sim, "POST", "/v1/files") == 2


@pytest.mark.usefixtures("full_size")
@pytest.mark.slow
def test_pil_image_upload_and_generate_from_its_file_id(client, sim):
    image = Image.new("RGB", (640, 480), (240, 200, 20))
    fid = client.upload(image)
    run = client.generate("A yellow field", image={"file_id": fid}, duration=1)
    assert run.ok and run.params["image"] == f"file_id:{fid}"
    assert (probe(run.path).width, probe(run.path).height) == (640, 480)  # the uploaded image is the first frame


@pytest.mark.slow
def test_a_local_image_over_10_mib_goes_as_an_upload(client, sim):
    data = _noise_png(1900)  # about 10.3 MiB
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and api_files.INLINE_MAX_BYTES < len(data) < 20 * 2**20
    run = client.generate("Static on a screen", image=data, duration=1)
    assert run.ok
    assert sim.simulator.files.uploads >= 1 and count(sim, "POST", "/v1/files") == 1
    (row,) = _file_rows(client)
    assert row["sha256"] == api_files.sha256_hex(data) and row["bytes"] == len(data)
    client.generate("Static on a screen, again", image=data, duration=1)
    assert count(sim, "POST", "/v1/files") == 1  # the same bytes: the same file id


@pytest.mark.slow
def test_small_inputs_stay_inline(client, sim):
    run = client.generate("waves", image=_png(), duration=1)
    assert run.ok and count(sim, "POST", "/v1/files") == 0


@pytest.mark.slow
def test_a_local_mp4_over_the_inline_limit_is_edited_and_extended_through_an_upload(client, sim, monkeypatch):
    source = client.generate("A red ball bouncing", duration=2)
    data = source.path.read_bytes()
    monkeypatch.setattr(api_files, "INLINE_MAX_BYTES", len(data) // 2)  # this small MP4 counts as large
    edited = client.edit(source.path, "Make it night")
    assert edited.ok and count(sim, "POST", "/v1/files") == 1
    assert probe(edited.path).duration == pytest.approx(2.0, abs=0.1)
    longer = client.extend(data, "The ball rolls away", duration=2)
    assert longer.ok and count(sim, "POST", "/v1/files") == 1  # the same bytes: uploaded once
    assert probe(longer.path).duration == pytest.approx(4.0, abs=0.1)


@pytest.mark.slow
def test_an_upload_refused_with_429_is_retried(sim):
    refused = []

    def decide(method: str, path: str) -> str:
        if method == "POST" and path == "/v1/files" and not refused:
            refused.append(path)
            return "429"
        return "forward"

    with FaultProxy(sim.url, decide) as proxy, \
            Client(api_key=TEST_KEY, base_url=proxy.url, policy=FAST, rate_limit=SPEED) as client:
        assert client.upload(_png(colour=(1, 2, 3))).startswith("file_")
    assert refused and count(sim, "POST", "/v1/files") == 1

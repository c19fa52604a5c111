"""Image inputs: every accepted form becomes a payload; bad ones fail before sending."""

import base64
import io

import pytest
from PIL import Image

from grok_nb import ValidationError
from grok_nb.api.media import MAX_IMAGE_BYTES, image_ref


def _png(size=(64, 48), colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def test_url_passes_through_and_is_kept_as_is():
    ref = image_ref("https://example.com/cat.jpg")
    assert ref.payload == {"url": "https://example.com/cat.jpg"} and ref.label == "https://example.com/cat.jpg"


def test_local_forms_become_data_uris_and_the_history_keeps_a_hash(tmp_path):
    data = _png()
    path = tmp_path / "red.png"
    path.write_bytes(data)
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    refs = [image_ref(data), image_ref(str(path)), image_ref(path), image_ref(uri),
            image_ref(Image.open(io.BytesIO(data)))]
    assert all(r.payload["url"].startswith("data:image/png;base64,") for r in refs)
    assert len({r.label for r in refs[:4]}) == 1 and refs[0].label.startswith("sha256:")
    assert "base64" not in refs[0].label


def test_file_id_and_dict_forms():
    assert image_ref({"file_id": "file-1"}).payload == {"file_id": "file-1"}
    assert image_ref({"url": "https://e.com/a.png"}).payload == {"url": "https://e.com/a.png"}


@pytest.mark.parametrize("value,message", [
    ("/no/such/file.png", "no such file"),
    (b"GIF89a" + b"\0" * 100, "JPEG, PNG or WebP"),
    (b"", "non-empty"),
    ("data:image/gif;base64,R0lGODlh", "data URI of type"),
    ("data:image/png;base64,@@@", "valid base64"),
    (12345, "a data: URI, a base64 string, a file path"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 50, "readable image"),
])
def test_bad_images_name_the_problem(value, message):
    with pytest.raises(ValidationError, match=message) as info:
        image_ref(value, "image")
    assert info.value.field == "image"


def test_tiny_and_huge_images_are_refused(tmp_path):
    with pytest.raises(ValidationError, match="16 to 8192 px"):
        image_ref(_png((8, 8)))
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (MAX_IMAGE_BYTES + 1))
    with pytest.raises(ValidationError, match="at most 20 MiB"):
        image_ref(big)


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height (the IDAT is a real 16×16 image's)."""
    import struct
    import zlib

    data = bytearray(_png((16, 16)))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def test_a_decompression_bomb_is_refused_not_decoded():
    bomb = _png_declaring(40000, 40000)
    assert len(bomb) < 200
    with pytest.raises(ValidationError, match="8192 px") as info:
        image_ref(bomb, "image")
    assert info.value.field == "image"
    with pytest.raises(ValidationError, match="8192 px"):
        image_ref(_png_declaring(10000, 10000))  # over Pillow's warning threshold, under its error one


def test_pil_images_of_no_size_or_odd_modes():
    with pytest.raises(ValidationError, match="16 to 8192 px"):
        image_ref(Image.new("RGB", (0, 0)))
    ref = image_ref(Image.new("F", (32, 32)))  # a float image: converted, or refused, never a crash
    assert ref.payload["url"].startswith("data:image/png")
    with pytest.raises(ValidationError):
        image_ref(Image.new("RGB", (9000, 20)))


def test_a_bare_base64_string_is_an_image():
    data = _png()
    for text in (base64.b64encode(data).decode(), base64.encodebytes(data).decode(),
                 base64.urlsafe_b64encode(data).decode().rstrip("=")):
        ref = image_ref(text)
        assert ref.payload["url"] == "data:image/png;base64," + base64.b64encode(data).decode()
        assert ref.label.startswith("sha256:")


@pytest.mark.parametrize("value,message", [
    (base64.b64encode(b"\x00" * 600).decode(), "decodes to none"),
    ("A" * 5000, "decodes to none"),
    ("x" * 5000 + ".png", "a file path"),
    ("/tmp/\x00evil.png", "a file path"),
    ("~no_such_user_xyz/a.png", "a file path"),
    ("bad\ud800name.png", "UTF-8"),
    ("https://example.com/\udcff.png", "UTF-8"),
    ("https://example.com/a b.png", "without spaces"),
    ("   ", "a file path"),
    ({"file_id": "a\nb"}, "file id"),
    ({"file_id": "\ud800"}, "UTF-8"),
])
def test_strings_that_cannot_be_files_never_raise_oserror(value, message):
    with pytest.raises(ValidationError, match=message) as info:
        image_ref(value, "image")
    assert info.value.field == "image"


def test_a_directory_or_unreadable_path_is_a_validation_error(tmp_path):
    with pytest.raises(ValidationError, match="no such file"):
        image_ref(tmp_path)


def test_a_pathlike_of_bytes_is_a_validation_error():
    class BytesPath:
        def __fspath__(self):
            return b"/tmp/x.png"

    with pytest.raises(ValidationError, match="file path"):
        image_ref(BytesPath())

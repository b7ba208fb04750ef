"""The release check 'every plot renders' decodes each PNG whole (Pillow), not only its header."""
import base64
import io

from PIL import Image

from autograder.release.verify import _png_size


def _png(width=80, height=60) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_whole_png_decodes_to_its_size():
    assert _png_size(base64.b64encode(_png()).decode()) == (80, 60)


def test_a_png_with_a_valid_header_but_broken_pixels_does_not_decode():
    raw = _png()
    broken = raw[:40] + b"\0" * (len(raw) - 52) + raw[-12:]  # header kept, image data zeroed
    assert _png_size(base64.b64encode(broken).decode()) is None
    assert _png_size(base64.b64encode(raw[:30]).decode()) is None  # truncated after the header


def test_not_a_png():
    assert _png_size(base64.b64encode(b"GIF89a" + b"\0" * 40).decode()) is None


def test_a_master_that_does_not_run_is_one_failure_of_plots():
    """The master runs while the other verifications do (a Future); if it fails, `plots` says so."""
    from concurrent.futures import Future

    from autograder.release.term import derive
    from autograder.release.verify import plots

    failed = Future()
    failed.set_exception(RuntimeError("cell 3 raised NameError"))
    assert plots(failed, derive("2026-fall")) == [
        "the master does not run top to bottom: RuntimeError: cell 3 raised NameError"]

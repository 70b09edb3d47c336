"""The image example: thumbnails written with the right sizes, progress reported per size."""

from __future__ import annotations

import io

import pytest
from _exampletools import record_states, wait_until
from PIL import Image

from taskqueue_kit import TaskState, get_task_info
from taskqueue_kit.testing import run_worker


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), "teal").save(buffer, format="PNG")
    return buffer.getvalue()


def _final(app, task_id):
    return wait_until(
        lambda: (info := get_task_info(task_id, app=app)).ready and info,
        timeout=30,
        what=f"task {task_id} to finish",
    )


def test_thumbnails_have_the_sizes_asked_for_with_progress_per_size(
    load_example, monkeypatch
) -> None:
    """A 640x480 upload gives 64x48, 128x96 and 256x192 JPEGs; progress 0/3, 1/3, 2/3, 3/3."""
    tasks = load_example("examples.images.tasks")
    writes = record_states(monkeypatch, tasks.make_thumbnails)
    name = tasks.save_upload(_png(640, 480), ".png")
    with run_worker(tasks.app):
        result = tasks.make_thumbnails.delay(name, [64, 128, 256])
        info = _final(tasks.app, result.id)

    assert info.state is TaskState.SUCCEEDED, info.error
    assert info.result == {
        "upload": name,
        "thumbnails": [
            {"size": 64, "file": f"{name[:-4]}-64.jpg", "width": 64, "height": 48},
            {"size": 128, "file": f"{name[:-4]}-128.jpg", "width": 128, "height": 96},
            {"size": 256, "file": f"{name[:-4]}-256.jpg", "width": 256, "height": 192},
        ],
    }
    for thumb in info.result["thumbnails"]:
        with Image.open(tasks.THUMBNAILS / thumb["file"]) as written:
            assert written.format == "JPEG"
            assert written.size == (thumb["width"], thumb["height"])
    progress = [(meta["current"], meta["total"], meta["message"]) for state, meta in writes]
    assert [state for state, _ in writes] == ["PROGRESS"] * 4
    assert progress == [(0, 3, "64px"), (1, 3, "128px"), (2, 3, "256px"), (3, 3, "done")]
    assert not list(tasks.THUMBNAILS.glob(".*partial"))


def test_transparency_kept_and_small_images_never_enlarged(load_example) -> None:
    """An RGBA upload gives PNGs with alpha; a size above the original keeps the original."""
    tasks = load_example("examples.images.tasks")
    name = tasks.save_upload(_png(100, 50, "RGBA"), ".png")
    with run_worker(tasks.app):
        info = _final(tasks.app, tasks.make_thumbnails.delay(name, [32, 400]).id)

    assert info.state is TaskState.SUCCEEDED, info.error
    sizes = [(t["width"], t["height"]) for t in info.result["thumbnails"]]
    assert sizes == [(32, 16), (100, 50)]
    with Image.open(tasks.THUMBNAILS / info.result["thumbnails"][0]["file"]) as written:
        assert (written.format, written.mode) == ("PNG", "RGBA")


def test_bad_uploads_and_sizes_are_refused(load_example) -> None:
    """Non-images are refused at upload; a path outside the upload dir or a bad size fails."""
    tasks = load_example("examples.images.tasks")
    with pytest.raises(ValueError, match="not an image"):
        tasks.save_upload(b"GIF89a but not really", ".gif")
    name = tasks.save_upload(_png(40, 40), ".png")
    (tasks.UPLOADS.parent / "secret.png").write_bytes(_png(10, 10))
    with run_worker(tasks.app):
        escaping = tasks.make_thumbnails.delay("../secret.png")
        too_big = tasks.make_thumbnails.delay(name, [64, 10_000])
        infos = [_final(tasks.app, r.id) for r in (escaping, too_big)]

    for info in infos:
        assert info.state is TaskState.FAILED
        assert info.error is not None
        assert info.error.type == "ValueError"
    assert "plain file names" in infos[0].error.message
    assert "10000" in infos[1].error.message
    assert not tasks.THUMBNAILS.exists() or not list(tasks.THUMBNAILS.iterdir())


def test_sender_program_prints_progress_and_files(load_example, capsys) -> None:
    """``python -m examples.images.send`` uploads a test picture and lists three thumbnails."""
    tasks = load_example("examples.images.tasks")
    from examples.images import send  # imported after the example, so it shares its app

    with run_worker(tasks.app):
        status = send.main(["--timeout", "30"])

    out = capsys.readouterr().out
    assert status == 0, out
    assert "succeeded" in out
    lines = [line.split() for line in out.splitlines() if "x" in line and "thumbnails" in line]
    assert [dims for dims, _ in lines] == ["64x48", "128x96", "256x192"]
    for _, path in lines:
        with Image.open(path) as written:
            assert written.size[0] in {64, 128, 256}

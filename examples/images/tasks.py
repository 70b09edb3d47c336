"""Processing an uploaded image: thumbnails in several sizes, with progress per size.

Worker: ``celery -A examples.images.tasks worker -Q images --loglevel=INFO``.
Sender: ``python -m examples.images.send [photo.jpg]``.

The upload travels as a file name, not as bytes: the web process saves the upload under
``$TASKQUEUE_HOME/uploads`` and queues its name; the worker reads the file from there and
writes thumbnails to ``$TASKQUEUE_HOME/thumbnails``. Messages stay a few hundred bytes
whatever the image weighs (see the README for why that matters).
"""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from taskqueue_kit import TaskQueueSettings, create_celery, report_progress

QUEUE = "images"
DEFAULT_SIZES = (64, 128, 256)
MIN_SIZE, MAX_SIZE = 16, 4096

settings = TaskQueueSettings(queues=(QUEUE,))
app = create_celery(settings, main="examples.images")

UPLOADS = settings.home.resolve() / "uploads"
THUMBNAILS = settings.home.resolve() / "thumbnails"


def save_upload(data: bytes, suffix: str = ".img") -> str:
    """Store uploaded bytes under a fresh name in the upload directory; returns the name.

    What a web view does with a request body before queueing the task. The bytes are
    checked to be an image here, so a bad upload is refused at once rather than queued.

    Raises:
        ValueError: the bytes are not an image Pillow can read.
    """
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"not an image: {exc}") from exc
    UPLOADS.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}{suffix if suffix.startswith('.') else '.' + suffix}"
    (UPLOADS / name).write_bytes(data)
    return name


def upload_path(name: str) -> Path:
    """The stored upload called ``name``; a name that points elsewhere is refused.

    Raises:
        ValueError: ``name`` is not a plain file name (``../``, a directory, an absolute path).
    """
    path = UPLOADS / name
    if not name or Path(name).name != name or path.resolve().parent != UPLOADS:
        raise ValueError(f"upload names are plain file names, got {name!r}")
    return path


def _check_sizes(sizes: list[int]) -> list[int]:
    if not sizes:
        raise ValueError("give at least one size")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(f"sizes are whole pixels in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes repeat: {sizes}")
    return sizes


def _save(image: Image.Image, target: Path, image_format: str) -> None:
    """Write to a temporary name, then rename: a reader never sees half a thumbnail."""
    partial = target.with_name(f".{target.name}.partial")
    image.save(partial, format=image_format)
    os.replace(partial, target)


@app.task(bind=True, name="images:thumbnails", shared=False)
def make_thumbnails(self: Any, upload: str, sizes: list[int] | None = None) -> dict[str, Any]:
    """Write one thumbnail per size (the longest side, never enlarged), reporting each size.

    Returns:
        ``{"upload": name, "thumbnails": [{"size", "file", "width", "height"}, ...]}``, the
        files named relative to the thumbnail directory.
    """
    wanted = _check_sizes(list(DEFAULT_SIZES if sizes is None else sizes))
    source = upload_path(upload)
    THUMBNAILS.mkdir(parents=True, exist_ok=True)
    made = []
    with Image.open(source) as opened:
        image = ImageOps.exif_transpose(opened)  # phone photos are stored sideways plus a tag
        has_alpha = image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info
        image_format, extension = ("PNG", "png") if has_alpha else ("JPEG", "jpg")
        image = image.convert("RGBA" if has_alpha else "RGB")
        for done, size in enumerate(wanted):
            report_progress(self, done, len(wanted), f"{size}px")
            thumbnail = image.copy()
            thumbnail.thumbnail((size, size))
            target = THUMBNAILS / f"{source.stem}-{size}.{extension}"
            _save(thumbnail, target, image_format)
            made.append(
                {
                    "size": size,
                    "file": target.name,
                    "width": thumbnail.width,
                    "height": thumbnail.height,
                }
            )
    report_progress(self, len(wanted), len(wanted), "done")
    return {"upload": upload, "thumbnails": made}

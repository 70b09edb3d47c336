"""Upload an image and follow its thumbnails: ``python -m examples.images.send [photo.jpg]``.

Without a file it makes a 1600x1200 test picture. Prints progress per size, then the
thumbnails written; exits 0 on success, 1 on failure or when ``--timeout`` runs out.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

from PIL import Image, ImageDraw

from examples.images.tasks import DEFAULT_SIZES, THUMBNAILS, app, make_thumbnails, save_upload
from taskqueue_kit import TaskState, get_task_info


def sample_picture(width: int = 1600, height: int = 1200) -> bytes:
    """A JPEG with a gradient and a circle, so the thumbnails show something."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    ImageDraw.Draw(image).ellipse(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(200, 60, 40)
    )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Store the upload, queue the task, print each progress step and the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", type=Path, help="image file (default: a test picture)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to follow")
    args = parser.parse_args(argv)

    data = args.image.read_bytes() if args.image else sample_picture()
    name = save_upload(data, args.image.suffix if args.image else ".jpg")
    result = make_thumbnails.delay(name, args.sizes)
    print(f"queued {result.id} for upload {name}", flush=True)
    deadline = time.monotonic() + args.timeout
    last = None
    while time.monotonic() < deadline:
        info = get_task_info(result.id, app=app)
        step = (info.state, info.progress)
        if step != last:
            last = step
            if info.progress is not None:
                print(f"{info.progress.percent:5.1f}%  {info.progress.message}", flush=True)
            else:
                print(info.state.value, flush=True)
        if info.ready:
            if info.state is not TaskState.SUCCEEDED:
                print(f"failed: {info.error.message if info.error else info.state.value}")
                return 1
            for thumb in info.result["thumbnails"]:
                print(f"{thumb['width']:>5}x{thumb['height']:<5} {THUMBNAILS / thumb['file']}")
            return 0
        time.sleep(0.05)
    print(f"not finished after {args.timeout:g}s; is a worker running on queue 'images'?")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())

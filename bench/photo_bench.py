#!/usr/bin/env python3
"""Photo figures, measured side by side in one run on this machine.

1. Thumbnail of a 12-megapixel JPEG (4000×3000): fieldapp's derived-size path (JPEG draft
   mode: the decoder scales by 1/8 while it decodes) against a plain Pillow
   ``open → load → thumbnail`` without draft mode, on the same file, alternating, median of
   ``--runs``. Also the upload path, which decodes once for ``medium`` and ``thumb`` together.
2. Upload of a 20 MiB photo to a running server (``fieldapp demo --scale small``, a separate
   process): how far the server's peak RSS rises above its RSS just before the upload (Linux:
   the peak is reset through /proc/<pid>/clear_refs, then read from VmHWM).

Usage: bench/photo_bench.py [--runs 15] [--skip-upload] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageFilter  # noqa: E402

from fieldapp.photos import imaging  # noqa: E402


def photo_like(width: int, height: int, quality: int, *, blur: float = 0.0) -> bytes:
    """A JPEG that compresses like a photo (noise over gradients), not like a flat test card.

    ``blur`` 1.0 gives about 2.5 MB at 12 MP and quality 90, like a phone's photo of a shop
    front; 0 gives pixel-level detail (about 6.4 MB), the worst case for draft mode, whose
    Huffman decoding still reads every byte.
    """
    noise = Image.effect_noise((width, height), 48)
    if blur:
        noise = noise.filter(ImageFilter.GaussianBlur(blur))
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (noise, gradient, Image.blend(noise, gradient, 0.5)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def plain_thumbnail(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()  # the whole 12 MP decoded, as without draft mode
        image.thumbnail((256, 256), reducing_gap=None)
        return image.size


def fieldapp_thumbnail(path: Path) -> tuple[int, int]:
    data = imaging.derive_from_file(path, "thumb")
    return Image.open(io.BytesIO(data)).size


def fieldapp_upload_sizes(path: Path) -> int:
    with Image.open(path) as image:
        return len(imaging.derive(image)["thumb"])


def time_it(function, path: Path) -> float:
    started = time.perf_counter()
    function(path)
    return time.perf_counter() - started


def thumbnail_figures(runs: int, blur: float) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "12mp.jpg"
        path.write_bytes(photo_like(4000, 3000, 90, blur=blur))
        assert plain_thumbnail(path)[0] == 256 and fieldapp_thumbnail(path)[0] == 256
        timings: dict[str, list[float]] = {"plain": [], "draft": [], "upload_path": []}
        for _ in range(runs):  # alternating, so both see the same machine state
            timings["plain"].append(time_it(plain_thumbnail, path))
            timings["draft"].append(time_it(fieldapp_thumbnail, path))
            timings["upload_path"].append(time_it(fieldapp_upload_sizes, path))
        medians = {name: statistics.median(values) for name, values in timings.items()}
        return {
            "file_bytes": path.stat().st_size,
            "pixels": 4000 * 3000,
            "runs": runs,
            "median_ms": {name: round(value * 1000, 1) for name, value in medians.items()},
            "speedup_draft_vs_plain": round(medians["plain"] / medians["draft"], 2),
        }


# -- upload against a running server -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def upload_figures() -> dict:
    import requests

    fieldapp = str(Path(sys.executable).with_name("fieldapp"))
    with tempfile.TemporaryDirectory() as instance:
        env = {
            **os.environ,
            "FIELDAPP_INSTANCE_PATH": instance,
            "FIELDAPP_PASSWORD_TIME_COST": "1",
            "FIELDAPP_PASSWORD_MEMORY_KIB": "64",
            "FIELDAPP_LOG_LEVEL": "WARNING",
        }
        env.pop("FIELDAPP_DATABASE_URL", None)
        built = subprocess.run(
            [fieldapp, "demo", "--scale", "small", "--no-serve"], env=env, capture_output=True
        )
        assert built.returncode == 0, built.stderr
        port = _free_port()
        server = subprocess.Popen(
            [fieldapp, "demo", "--scale", "small", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}/api/v1"
            for _ in range(300):
                try:
                    requests.get(f"{base}/openapi.json", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            token = requests.post(
                f"{base}/auth/token",
                json={"username": "officer1", "password": "fieldapp-demo", "device_id": "bench"},
                timeout=30,
            ).json()["token"]
            auth = {"Authorization": f"Bearer {token}"}

            def put(data_path: Path) -> requests.Response:
                digest = hashlib.sha256(data_path.read_bytes()).hexdigest()
                with open(data_path, "rb") as body:
                    return requests.put(
                        f"{base}/photos/{uuid.uuid4()}",
                        data=body,
                        headers={**auth, "X-Content-SHA256": digest},
                        timeout=300,
                    )

            warm = Path(instance) / "warm.jpg"
            warm.write_bytes(photo_like(2000, 1500, 90))
            assert put(warm).status_code == 201  # codecs, imports and pools warmed up
            big = Path(instance) / "big.jpg"
            # the largest photo under the 20 MiB limit: shrink a 4:3 frame until it fits,
            # then widen it while the next step still fits
            width = 6000
            data = photo_like(width, width * 3 // 4, 95)
            while len(data) > 20 * 1024 * 1024:
                width -= 400
                data = photo_like(width, width * 3 // 4, 95)
            while True:
                wider = photo_like(width + 100, (width + 100) * 3 // 4, 95)
                if len(wider) > 20 * 1024 * 1024:
                    break
                width, data = width + 100, wider
            height = width * 3 // 4
            big.write_bytes(data)
            print(f"photo for the upload: {len(data):,} bytes ({width}×{height})", flush=True)
            rss_before = _kib(server.pid, "VmRSS")
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # reset the peak to now
            started = time.perf_counter()
            response = put(big)
            seconds = time.perf_counter() - started
            assert response.status_code == 201, response.text
            peak = _kib(server.pid, "VmHWM")
            return {
                "photo_bytes": len(data),
                "photo_pixels": width * height,
                "upload_seconds": round(seconds, 2),
                "rss_before_mb": round(rss_before / 1024, 1),
                "peak_rss_mb": round(peak / 1024, 1),
                "peak_growth_mb": round((peak - rss_before) / 1024, 1),
            }
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--skip-upload", action="store_true")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    figures = {
        "thumbnail": thumbnail_figures(args.runs, blur=1.0),
        "thumbnail_high_detail": thumbnail_figures(args.runs, blur=0.0),
    }
    for name, label in (("thumbnail", "photo-like"), ("thumbnail_high_detail", "high-detail")):
        thumb = figures[name]
        print(
            f"thumbnail of a 12 MP {label} JPEG ({thumb['file_bytes'] / 1e6:.1f} MB), median of "
            f"{args.runs}: draft {thumb['median_ms']['draft']} ms, plain Pillow "
            f"{thumb['median_ms']['plain']} ms -> {thumb['speedup_draft_vs_plain']}x; upload path "
            f"(medium + thumb, one decode) {thumb['median_ms']['upload_path']} ms"
        )
    if not args.skip_upload:
        figures["upload"] = upload = upload_figures()
        print(
            f"upload of {upload['photo_bytes'] / 2**20:.1f} MiB ({upload['photo_pixels'] / 1e6:.0f}"
            f" MP) in {upload['upload_seconds']} s: server RSS {upload['rss_before_mb']} MB before,"
            f" peak {upload['peak_rss_mb']} MB, growth {upload['peak_growth_mb']} MB"
        )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()

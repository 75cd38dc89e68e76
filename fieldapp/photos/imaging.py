"""What Pillow tells about an uploaded photo: its real type, whether it decodes, its EXIF
capture time and GPS position, and the derived sizes shown to people.

Nothing here trusts the client: the type is judged from the bytes, the pixel count is checked
before any pixel is decoded (decompression bombs), and the whole image is decoded once (in
JPEG draft mode, at the scale the medium size needs) so that corrupt and truncated files are
refused at upload rather than discovered in court.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

#: The formats a device may upload, by Pillow's name, with their media types. ``MPO`` is
#: Pillow's name for a JPEG that carries further images after the picture (CIPA DC-007 MPF:
#: the depth map or preview many phones append); it starts with the JPEG marker and its
#: first image is the photo, so it is a JPEG to everyone but Pillow.
ACCEPTED_FORMATS = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
}
#: The Pillow plugins tried on an upload: JPEG's also opens MPO (Pillow registers no opener
#: of its own for it).
OPENERS = ("JPEG", "PNG", "WEBP")
#: Formats decoded by libjpeg, where draft mode can scale while decoding.
JPEG_FORMATS = frozenset({"JPEG", "MPO"})

#: Derived sizes: the box each fits in.
BOXES = {"thumb": (256, 256), "medium": (1280, 1280)}
DERIVED_QUALITY = 82


class UnsupportedImage(Exception):
    """Not a JPEG, PNG or WebP (judged by content): 415."""


class BadImage(Exception):
    """A supported type that is corrupt, truncated or too large to decode safely: 422."""


@dataclass(frozen=True)
class Limits:
    max_pixels: int
    max_side: int
    max_aspect: float

    @classmethod
    def from_config(cls, config) -> Limits:
        return cls(config["PHOTO_MAX_PIXELS"], config["PHOTO_MAX_SIDE"], config["PHOTO_MAX_ASPECT"])


@dataclass(frozen=True)
class Inspected:
    """What the server learned from a valid upload."""

    content_type: str
    width: int
    height: int
    taken_at: datetime | None
    lon: float | None
    lat: float | None
    derived: dict[str, bytes]


def _claims_accepted_format(path) -> bool:
    with open(path, "rb") as source:
        head = source.read(12)
    return (
        head.startswith(b"\xff\xd8\xff")
        or head.startswith(b"\x89PNG\r\n\x1a\n")
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    )


def _open(path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow warns, then refuses, past its own pixel limit; ours is lower and checked next
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Only the accepted formats are tried: another (a GIF whose header claims 60000×60000
            # pixels) is 415 for its type, not 422 for a size Pillow would read from it first.
            return Image.open(path, formats=OPENERS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise BadImage(f"too many pixels to decode safely ({exc})") from None
    except UnidentifiedImageError:
        if _claims_accepted_format(path):  # a JPEG/PNG/WebP signature Pillow could not parse
            raise BadImage("the image header is corrupt") from None
        raise UnsupportedImage("not a JPEG, PNG or WebP image") from None
    except Exception as exc:  # a header Pillow recognized but could not parse
        raise BadImage(f"the image cannot be read: {exc}") from None


def _check_dimensions(image: Image.Image, limits: Limits) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise BadImage("the image has no pixels")
    if width * height > limits.max_pixels:
        raise BadImage(
            f"{width}×{height} is {width * height:,} pixels; the limit is {limits.max_pixels:,}"
        )
    if max(width, height) > limits.max_side:
        raise BadImage(f"{width}×{height}: a side is longer than {limits.max_side} pixels")
    if max(width, height) / min(width, height) > limits.max_aspect:
        raise BadImage(f"{width}×{height} is not a photo's shape (more than {limits.max_aspect}:1)")


def inspect_upload(path, limits: Limits, local_zone: str) -> Inspected:
    """Judge the file at ``path``: its type, soundness, EXIF facts, and its derived sizes.

    Raises :class:`UnsupportedImage` or :class:`BadImage`.
    """
    image = _open(path)
    with image:
        if image.format not in ACCEPTED_FORMATS:
            raise UnsupportedImage(
                f"{image.format} images are not accepted; send JPEG, PNG or WebP"
            )
        _check_dimensions(image, limits)
        content_type = ACCEPTED_FORMATS[image.format]
        width, height = image.size
        # EXIF facts are read before and apart from the pixels: a camera's odd or broken EXIF
        # (a reset clock, a garbled tag) leaves the time or place unknown, and the checks fall
        # back to what the device reported; it does not make a sound picture a bad image.
        exif = read_exif(image)
        taken_at = exif_taken_at(exif, local_zone)
        lon, lat = exif_position(exif)
        try:
            derived = derive(image)
        except Exception as exc:  # any decoder failure (OSError, zlib, struct, EOF...)
            raise BadImage(f"the image is corrupt or truncated: {exc}") from None
    return Inspected(content_type, width, height, taken_at, lon, lat, derived)


def read_exif(image: Image.Image) -> Image.Exif:
    """The image's EXIF block, or an empty one when it cannot be parsed (no EXIF facts: the
    picture itself is judged by decoding it, not by its metadata)."""
    try:
        return image.getexif()
    except Exception:  # Pillow raises whatever its parser hit (struct, OSError, ValueError...)
        return Image.Exif()


def _ifd(exif: Image.Exif, ifd: ExifTags.IFD) -> dict:
    """One sub-IFD of ``exif`` (Exif, GPS), empty when it is missing or cannot be parsed."""
    try:
        return exif.get_ifd(ifd)
    except Exception:  # a broken offset inside the EXIF block: no facts, as in read_exif
        return {}


def _fitted(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The size an image of ``size`` takes when it fits in ``box`` (never enlarged)."""
    scale = min(box[0] / size[0], box[1] / size[1], 1.0)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _shrink(image: Image.Image, box: tuple[int, int]) -> Image.Image:
    """Decode ``image`` at the smallest scale that still covers ``box`` and fit it there.

    For JPEG, draft mode makes libjpeg scale by 1/2, 1/4 or 1/8 while decoding (less work and
    an eighth to a sixty-fourth of the memory); the orientation is applied to the small image
    afterwards, not to the full one.
    """
    orientation = read_exif(image).get(ExifTags.Base.Orientation)
    if image.format in JPEG_FORMATS:
        image.draft("RGB", _fitted(image.size, box))
    image.load()  # decodes everything: a truncated or corrupt file fails here
    small = _flatten(image)
    small.thumbnail(box, Image.Resampling.LANCZOS)
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        small.getexif()[ExifTags.Base.Orientation] = orientation
        small = ImageOps.exif_transpose(small)
    return small


def derive(image: Image.Image) -> dict[str, bytes]:
    """The medium and thumb sizes of an opened image: decoded once, at the smallest JPEG
    scale that covers the medium size (draft mode), turned as the camera was held, and saved
    without any metadata (no EXIF, no GPS in what is shown around)."""
    medium = _shrink(image, BOXES["medium"])
    thumb = medium.copy()
    thumb.thumbnail(BOXES["thumb"], Image.Resampling.LANCZOS)
    return {"medium": _jpeg(medium), "thumb": _jpeg(thumb)}


def derive_from_file(path, size: str) -> bytes:
    """One derived size made from a stored original (when the cached copy is missing)."""
    with Image.open(path) as image:
        return _jpeg(_shrink(image, BOXES[size]))


def _flatten(image: Image.Image) -> Image.Image:
    """RGB for JPEG: transparency over white, palettes and greys expanded."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _jpeg(image: Image.Image) -> bytes:
    """``image`` as a JPEG without any metadata. Its ``info`` is emptied first: Pillow writes
    a ``comment`` it finds there (a JPEG COM segment, or a PNG text chunk of that name, where
    apps put an owner's name or a place) into the JPEG it saves, and derived sizes are what
    gets shared around."""
    image.info = {}
    out = io.BytesIO()
    image.save(out, "JPEG", quality=DERIVED_QUALITY, optimize=True)
    return out.getvalue()


# -- EXIF ----------------------------------------------------------------------------------------


#: An EXIF UTC offset as the standard writes it ("+08:00"); blanks and NULs mean "unknown".
_OFFSET = re.compile(r"[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]")

#: Where a capture time is written, best first, each with the tag of its own UTC offset.
#: IFD0 ``DateTime`` is left out on purpose: it is when the file was last written, which an
#: editor or a re-save moves. Taken as the capture time, an old photo re-saved during an
#: inspection would look taken during it (hiding the one thing the time check exists to
#: find), and a photo edited the next day would be flagged falsely. Without a capture time
#: the checks use the device's ``taken_at``.
_CAPTURE_TAGS = (
    (ExifTags.Base.DateTimeOriginal, ExifTags.Base.OffsetTimeOriginal),
    (ExifTags.Base.DateTimeDigitized, ExifTags.Base.OffsetTimeDigitized),
)


def _exif_text(value) -> str | None:
    """An EXIF ASCII value without the NULs and blanks cameras pad it with; None if empty."""
    if not isinstance(value, str):
        return None
    return value.strip("\x00 ") or None


def exif_taken_at(exif: Image.Exif, local_zone: str) -> datetime | None:
    """When the picture was taken, as UTC: ``DateTimeOriginal``, else ``DateTimeDigitized``.

    The zone is the time's own offset tag, else ``OffsetTime`` (the zone the camera was set to
    when it wrote the file), else ``local_zone``: phones sold in China write local time, and
    a blank offset (NULs or spaces) is no offset. The result is always aware: a naive time
    would be read in the server's own zone, hours off. A time that cannot be a real instant
    (the year 1 east of UTC, a reset clock's 0000:00:00) is unknown: None.
    """
    detail = _ifd(exif, ExifTags.IFD.Exif)
    for time_tag, offset_tag in _CAPTURE_TAGS:
        raw = _exif_text(detail.get(time_tag))
        if raw is None:
            continue
        try:
            naive = datetime.strptime(raw[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            continue
        offsets = (detail.get(offset_tag), detail.get(ExifTags.Base.OffsetTime))
        return _as_utc(naive, offsets, local_zone)
    return None


def _as_utc(naive: datetime, offsets: tuple, local_zone: str) -> datetime | None:
    """``naive`` at the first well-formed offset of ``offsets``, else in ``local_zone``."""
    zone = ZoneInfo(local_zone)
    for offset in offsets:
        text = _exif_text(offset)
        if text is not None and _OFFSET.fullmatch(text):
            zone = datetime.fromisoformat(f"2000-01-01T00:00:00{text}").tzinfo
            break
    try:
        return naive.replace(tzinfo=zone).astimezone(UTC)
    except OverflowError:  # before 0001-01-01 or after 9999-12-31 in UTC
        return None


def _degrees(value) -> float:
    d, m, s = (float(part) for part in value)
    return d + m / 60.0 + s / 3600.0


def exif_position(exif: Image.Exif) -> tuple[float | None, float | None]:
    """The GPS position recorded by the camera, as (lon, lat) in WGS-84, or (None, None)."""
    gps = _ifd(exif, ExifTags.IFD.GPSInfo)
    try:
        lat = _degrees(gps[ExifTags.GPS.GPSLatitude])
        lon = _degrees(gps[ExifTags.GPS.GPSLongitude])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None, None
    if str(gps.get(ExifTags.GPS.GPSLatitudeRef, "N")).upper().startswith("S"):
        lat = -lat
    if str(gps.get(ExifTags.GPS.GPSLongitudeRef, "E")).upper().startswith("W"):
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None, None
    return lon, lat

"""The bytes of a cropped image: same format and quality as the source, upright, box-exact.

The source is checked with `probe_image` (size limit, allowed decoders, truncation) before
a pixel is decoded. The crop is taken on the image as displayed (EXIF orientation
applied) at `CropBox.to_pixels` of that size, and the orientation tag of the copy is reset
to 1. Quality: a JPEG is re-encoded with the source's own quantization tables and chroma
subsampling (95 when they cannot be read); PNG, BMP, GIF and TIFF are lossless; a WebP is
lossless when its source is (VP8L), else quality 95. Colour profile and resolution travel
along; other EXIF fields are kept. `check_output_folders` makes sure, before anything is
written, that every folder a crop writes to can be written.
"""

from __future__ import annotations

import errno
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, JpegImagePlugin

from workbench.core.crops import CropBox
from workbench.core.errors import FileOperationError, UnsafePath
from workbench.core.images import _TRANSPOSE, ImageInfo, UnreadableImage, probe_image
from workbench.core.project import Project

log = logging.getLogger(__name__)

ORIGINALS = "originals"  # crop_cropped/originals/: the uncropped originals (ADR 0006)
FALLBACK_QUALITY = 95
_ORIENTATION_TAG = 0x0112
_TIFF_LOSSLESS = {"raw", "tiff_lzw", "tiff_adobe_deflate", "packbits", "tiff_deflate"}
_WEBP_SNIFF_BYTES = 1 << 16
_open_probe = os.open  # the writability probe's opener (tests make it refuse)


@dataclass(frozen=True)
class CroppedImage:
    """An encoded crop: its bytes, format, pixel box in the upright source and its size."""

    data: bytes
    format: str
    pixels: tuple[int, int, int, int]
    source_size: tuple[int, int]
    quality: str  # how quality was kept, for the report: "source tables", "lossless", "95"

    @property
    def size(self) -> tuple[int, int]:
        left, top, right, bottom = self.pixels
        return right - left, bottom - top


def crop_image(path: Path, box: CropBox) -> CroppedImage:
    """The cropped copy of the image at `path`, encoded like its source.

    Raises UnreadableImage (a sentence) when the file cannot be decoded or encoded.
    """
    path = Path(path)
    info = probe_image(path)
    if not isinstance(info, ImageInfo):
        raise UnreadableImage(path, info.reason)
    try:
        with open(path, "rb") as fp, Image.open(fp, formats=[info.format]) as im:
            im.load()
            meta = _metadata(im, fp)
            upright = (
                im.transpose(_TRANSPOSE[info.orientation])
                if info.orientation in _TRANSPOSE
                else im.copy()
            )
    except MemoryError:
        raise
    except Exception as exc:  # decoder errors on an untrusted file become a sentence
        raise UnreadableImage(path, f"it cannot be decoded ({exc or type(exc).__name__})") from exc
    width, height = upright.size
    pixels = box.to_pixels(width, height)
    cropped = upright.crop(pixels)
    try:
        data, fmt, quality = _encode(cropped, meta)
    except (OSError, ValueError) as exc:
        raise UnreadableImage(
            path, f"its crop cannot be encoded as {meta['format']} ({exc})"
        ) from exc
    return CroppedImage(data, fmt, pixels, (width, height), quality)


def _metadata(im: Image.Image, fp: Any) -> dict[str, Any]:
    """What the encoder needs to keep: format, tables, profile, EXIF (orientation reset)."""
    fmt = "JPEG" if im.format == "MPO" else str(im.format)
    meta: dict[str, Any] = {"format": fmt, "info": dict(im.info)}
    if fmt == "JPEG":
        meta["qtables"] = getattr(im, "quantization", None) or None
        sampling = JpegImagePlugin.get_sampling(im)
        meta["subsampling"] = sampling if sampling >= 0 else None
    if fmt == "WEBP":
        fp.seek(0)
        meta["lossless"] = b"VP8L" in fp.read(_WEBP_SNIFF_BYTES)
    meta["exif"] = _upright_exif(im) if fmt in ("JPEG", "PNG", "WEBP") else None
    return meta


def _upright_exif(im: Image.Image) -> bytes | None:
    """The image's EXIF with the orientation tag reset to 1 (the pixels are upright now)."""
    try:
        exif = im.getexif()
        if _ORIENTATION_TAG in exif:
            exif[_ORIENTATION_TAG] = 1
        return exif.tobytes() if len(exif) else None
    except Exception:  # a malformed EXIF block is dropped, the picture is kept
        log.info("dropped an unreadable EXIF block", exc_info=True)
        return None


def _encode(im: Image.Image, meta: dict[str, Any]) -> tuple[bytes, str, str]:
    fmt, info = meta["format"], meta["info"]
    kwargs: dict[str, Any] = {}
    quality = "lossless"
    for key in ("icc_profile", "dpi"):
        if info.get(key) and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
            kwargs[key] = info[key]
    if meta.get("exif"):
        kwargs["exif"] = meta["exif"]
    if fmt == "JPEG":
        if meta.get("qtables"):
            kwargs["qtables"] = meta["qtables"]
            quality = "source tables"
        else:
            kwargs["quality"] = FALLBACK_QUALITY
            quality = str(FALLBACK_QUALITY)
        if meta.get("subsampling") is not None:
            kwargs["subsampling"] = meta["subsampling"]
        if im.mode not in ("L", "RGB", "CMYK"):
            im = im.convert("RGB")
    elif fmt == "WEBP":
        if meta.get("lossless"):
            kwargs["lossless"] = True
        else:
            kwargs["quality"] = FALLBACK_QUALITY
            quality = str(FALLBACK_QUALITY)
    elif fmt == "TIFF":
        compression = info.get("compression")
        kwargs["compression"] = compression if compression in _TIFF_LOSSLESS else "tiff_lzw"
    elif fmt in ("PNG", "GIF") and "transparency" in info:
        kwargs["transparency"] = info["transparency"]
    out = io.BytesIO()
    im.save(out, format=fmt, **kwargs)
    data = out.getvalue()
    with Image.open(io.BytesIO(data)) as check:  # header only: the size is what we promised
        if check.size != im.size:
            raise ValueError(f"the encoder wrote {check.size}, not {im.size}")
    return data, fmt, quality


def check_output_folders(project: Project) -> None:
    """Raise WorkbenchError (nothing changed) unless every folder a crop writes to is writable."""
    folders = (
        project.folder("crop_cropped"),
        project.folder("crop_cropped") / ORIGINALS,
        project.folder("delete_staging"),
    )
    for folder in folders:
        if folder.is_symlink() or not project.is_allowed(folder):
            raise UnsafePath(
                f"{folder} is a link or lies outside the project; nothing was cropped."
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".wbprobe-{os.getpid()}"
            fd = _open_probe(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            probe.unlink()
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                why = "the disk is full; free some space"
            elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                why = "it is read-only; make it writable"
            else:
                why = f"it cannot be written ({exc.strerror or exc})"
            raise FileOperationError(
                f"Cannot crop: Workbench writes to {folder}, but {why} and submit again. "
                "Nothing was changed."
            ) from exc


def write_error(image: Path, folder: Path, exc: OSError) -> str:
    """The sentence for a failed write of a cropped copy into `folder`."""
    if exc.errno == errno.ENOSPC or exc.errno == getattr(errno, "EDQUOT", -1):
        return (
            f"The disk is full: the cropped copy of {image.name} could not be written. Free "
            "some space and submit again; nothing was changed for this image."
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"{folder} is read-only: the cropped copy of {image.name} could not be written. "
            "Make it writable and submit again; nothing was changed for this image."
        )
    return (
        f"The cropped copy of {image.name} could not be written ({exc.strerror or exc}); "
        "nothing was changed for this image."
    )

"""Display-ready pictures: PIL thumbnails turned into QImages, and a bounded cache of them.

A `Picture` is already scaled to the exact picture area of a tile, in the pixel format
the screen uses, so painting it is a copy. `to_qimage` runs on prefetch threads (QImage,
unlike QPixmap, may be made off the GUI thread). `PictureCache` keeps the recent ones
(an LRU bounded in bytes); it is used on the GUI thread only.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image
from PySide6.QtGui import QImage

PICTURE_BYTES = 64 * 1024 * 1024  # the default bound; the reviewer sets it by screen size

PictureKey = tuple[str, tuple[int, int]]  # (path, picture area in device pixels)


@dataclass(frozen=True)
class Picture:
    """An image scaled to fit one picture area; `image` owns its pixels."""

    path: str
    area: tuple[int, int]
    image: QImage

    @property
    def key(self) -> PictureKey:
        return (self.path, self.area)


def to_qimage(image: Image.Image, dpr: float = 1.0, *, fast_format: bool = True) -> QImage:
    """A QImage that owns a copy of an RGB PIL image's pixels.

    `fast_format` converts to 32-bit RGB, which the raster paint engine copies without
    per-pixel work (worth it for pictures painted at every key; not for loupe originals,
    which stay 24-bit to take a quarter less memory).
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    data = image.tobytes("raw", "RGB")
    wrapped = QImage(data, image.width, image.height, image.width * 3, QImage.Format.Format_RGB888)
    out = wrapped.convertToFormat(QImage.Format.Format_RGB32) if fast_format else wrapped.copy()
    out.setDevicePixelRatio(dpr)
    return out


class PictureCache:
    """Recently prepared pictures by (path, area): an LRU bounded in bytes."""

    def __init__(self, max_bytes: int = PICTURE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[PictureKey, Picture] = OrderedDict()
        self._bytes = 0

    def __contains__(self, key: PictureKey) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: PictureKey) -> Picture | None:
        picture = self._items.get(key)
        if picture is not None:
            self._items.move_to_end(key)
        return picture

    def put(self, picture: Picture) -> None:
        old = self._items.pop(picture.key, None)
        if old is not None:
            self._bytes -= old.image.sizeInBytes()
        self._items[picture.key] = picture
        self._bytes += picture.image.sizeInBytes()
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            self._bytes -= evicted.image.sizeInBytes()

    def any_for(self, path: str) -> Picture | None:
        """A picture of `path` at any area (a stand-in while the right size is made)."""
        for (p, _area), picture in reversed(self._items.items()):
            if p == path:
                return picture
        return None

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0

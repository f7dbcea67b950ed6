"""Content identity of an image file: a key that changes when the file's content changes.

The feature cache (table image_features) and the thumbnail cache are keyed by it, so a
file keeps its cached features and thumbnails when finalize moves it to `selected/` or
`delete_staging/`, and loses them when it is edited in place.

Why not a hash of the whole file: a 3072 px PNG is 10-25 MB; hashing all of it costs
about as much as decoding it (tens of milliseconds), which is exactly what the caches
exist to avoid, and the key is computed for every image shown. Instead the key hashes
the file size with its first and last 64 KiB. Any re-encode or edit changes the size or
the compressed stream's start or end (PNG and JPEG headers, the image's first rows, the
last rows, the trailing chunk CRCs and markers); an edit that keeps the exact byte count
and touches only the middle of the compressed data would go unnoticed, an accepted risk
for a cache (it can always be cleared) and never used for decisions.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

CHUNK_BYTES = 64 * 1024
# Bumped when the recipe changes, so old cache entries are simply never found again.
_RECIPE = b"wbck1"


class SizedStat(Protocol):
    """What content_key needs from an os.stat_result (so a caller can reuse its stat)."""

    @property
    def st_size(self) -> int: ...


def content_key(path: Path | str, stat: SizedStat | None = None) -> str:
    """The file's content key: 40 hex digits of sha1(size, first 64 KiB, last 64 KiB).

    Reads at most 128 KiB whatever the file's size. Raises OSError (FileNotFoundError,
    PermissionError, ...) when the file cannot be read. `stat` saves a syscall when the
    caller already has the file's size; it must describe the file as it is now.
    """
    digest = hashlib.sha1(_RECIPE, usedforsecurity=False)
    with open(path, "rb") as fp:
        size = stat.st_size if stat is not None else os.fstat(fp.fileno()).st_size
        digest.update(size.to_bytes(8, "little"))
        digest.update(fp.read(CHUNK_BYTES))
        if size > CHUNK_BYTES:
            # The tail never overlaps the head: a 100 KiB file contributes its last 36 KiB.
            fp.seek(max(CHUNK_BYTES, size - CHUNK_BYTES))
            digest.update(fp.read(CHUNK_BYTES))
    return digest.hexdigest()

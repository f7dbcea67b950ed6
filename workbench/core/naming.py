"""File-name rules for grouping: natural order, timestamps in names, burst stems."""

from __future__ import annotations

import calendar
import re

_DIGITS_RE = re.compile(r"(\d+)")


_NUMBER_WIDTH = 20  # digits of a 64-bit number; longer runs still sort, by their text


# A date and time inside a file name; separators optional so 20250705_220230,
# 2025-07-05 22.02.30, "2025-07-05 at 22.02.30" and PXL_20250705_220230123 all match.
# Field ranges are part of the pattern, so a match is a valid date and time (12345678
# in a long ID is not), and the digits joined together sort chronologically.
_DATE = r"(?<!\d)((?:19|20)\d\d)[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])"


_TIMESTAMP_RE = re.compile(
    _DATE + r"(?:[-_ T.]| at )?([01]\d|2[0-3])[-_.:h]?([0-5]\d)[-_.:m]?([0-5]\d)(\d{1,3})?(?!\d)",
    re.IGNORECASE,
)


_DATE_RE = re.compile(_DATE + r"(?!\d)")


# One trailing variant suffix: " (3)", "_1"/"-2"/" 3" (1-3 digits), "_a", or an edit word.
_VARIANT_SUFFIX_RE = re.compile(
    r"(?:\s*\(\d{1,3}\)|[ _-]\d{1,3}|[ _-][a-z]"
    r"|[ _-](?:copy|edit|edited|enhanced|final|hdr|retouched|crop|cropped|stage\d*|v\d{1,2}))$",
    re.IGNORECASE,
)


_SHOT_ID_RE = re.compile(r"\d{4,}$")


def natural_key(text: str) -> str:
    """A sort key where digit runs compare as numbers: IMG_2 before IMG_10, case ignored.

    A string (digit runs zero-padded to 20 places), not a list of str and int: 100,000
    such keys sort about eight times faster, which the first group waits for.
    """
    parts = _DIGITS_RE.split(text.casefold())
    if len(parts) > 1:
        parts[1::2] = [p.zfill(_NUMBER_WIDTH) for p in parts[1::2]]  # digit runs: odd indices
    return "".join(parts)


def name_timestamp(stem: str) -> float | None:
    """Seconds for the date and time written in a file name (read as UTC), or None.

    Only differences between such values are used, so the time zone does not matter.
    """
    match = _TIMESTAMP_RE.search(stem)
    if match is None:
        return None
    y, mo, d, h, mi, s = (int(g) for g in match.groups()[:6])
    frac = match[7]
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + (
        int(frac) / 10 ** len(frac) if frac else 0.0
    )


def burst_stem(stem: str) -> str | None:
    """The shot a file name belongs to, with variant suffixes removed; None if it names none.

    Rule: strip trailing variant suffixes - " (3)", "_1", "-2", " 3" (1-3 digits),
    a single letter "_a", or an edit word ("_copy", "-edit", "_enhanced", "_stage3",
    "_v2", ...) - repeatedly, but never into a date/time written in the name. What is
    left is a burst stem only when it still identifies one shot: it ends with a run of
    at least 4 digits (IMG_0042, DSC01234, 20250705_220230) or with the name's timestamp.
    "IMG_001" -> "IMG" and "holiday_2" -> "holiday" therefore have no burst stem.
    """
    protected = 0
    ts = _TIMESTAMP_RE.search(stem)
    if ts is not None:
        protected = ts.end()
    elif (date := _DATE_RE.search(stem)) is not None:
        protected = date.end()
    rest = stem
    while (m := _VARIANT_SUFFIX_RE.search(rest)) is not None and m.start() >= protected:
        rest = rest[: m.start()]
    if _SHOT_ID_RE.search(rest) or (ts is not None and len(rest) == ts.end()):
        return rest
    return None


def name_key(name: str) -> str:
    """Natural order of the stem, then the extension: IMG_0042 < IMG_0042 (3) < IMG_0042_1."""
    stem, dot, ext = name.rpartition(".")
    return natural_key(stem) + "\0" + ext.lower() if dot else natural_key(name)


def order_key(name: str) -> str:
    """A folder's sort key as one string: name time first, else natural name order.

    Timestamped names come before the others. Kept cheap because every file of a folder is keyed before its first group
    (timestamped names sort on their digits alone; `_ordered` then breaks ties).
    """
    match = _TIMESTAMP_RE.search(name)
    if match is not None:
        # Fields are fixed width and an absent fraction is "", so the joined digits sort
        # chronologically ("5" = 0.5 s sorts after "123" = 0.123 s, as it should).
        return "0" + "".join(match.groups(""))
    return "1" + name_key(name)

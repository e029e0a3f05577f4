"""Masks the catalog may name for a ``personal`` or ``sensitive`` field (its ``"mask"`` attribute).

A field an organisation may not see in clear is replaced by its mask's output when the catalog names a
mask for it, and left out otherwise. Every mask accepts any value whatever its shape (a value of an
unexpected shape is hidden entirely, never shown in part), so a malformed record can never leak more
than a well-formed one.

- ``registration-number``: keeps the birth date and the sex digit of a resident registration number,
  ``900101-1******``, whether it was stored with a hyphen, a space or none.
- ``name-initial``: keeps the first character (in Korean names, the family name), ``홍**``.
- ``birth-year``: keeps the year of an ISO date, ``1990``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

HIDDEN = "***"
"""What a value of an unexpected shape becomes under any mask."""

_DIGIT = re.compile(r"\d")
_YEAR = re.compile(r"(\d{4})-\d{2}-\d{2}")


def registration_number(value: Any) -> str:
    """``YYMMDD-G******`` from any text holding the 13 digits of a registration number; else hidden."""
    digits = "".join(_DIGIT.findall(value)) if isinstance(value, str) else ""
    if len(digits) != 13 or not digits.isascii():
        return HIDDEN
    return f"{digits[:6]}-{digits[6]}******"


def name_initial(value: Any) -> str:
    """The first character followed by one ``*`` per other character; hidden when not a text."""
    if not isinstance(value, str) or not value.strip():
        return HIDDEN
    text = value.strip()
    return text[0] + "*" * max(len(text) - 1, 1)


def birth_year(value: Any) -> str:
    """The year of an ISO date (``YYYY-MM-DD``); hidden otherwise."""
    found = _YEAR.fullmatch(value) if isinstance(value, str) else None
    return str(found.group(1)) if found else HIDDEN


MASKS: dict[str, Callable[[Any], str]] = {
    "registration-number": registration_number,
    "name-initial": name_initial,
    "birth-year": birth_year,
}
"""Mask name (as the catalog names it) → the function applied to the value."""

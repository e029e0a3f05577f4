"""The catalog's masks: each keeps only what it promises, whatever the value's shape."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.catalog import load_catalog
from schemas.masks import HIDDEN, MASKS, birth_year, name_initial, registration_number


@pytest.mark.parametrize(
    "value", ["900101-1234567", "9001011234567", "900101 1234567", " 900101-1234567\n", "900101—1234567"]
)
def test_registration_number_keeps_birth_date_and_sex_digit(value: str) -> None:
    """Every spelling of the same number masks to the birth date, a hyphen and the sex digit."""
    assert registration_number(value) == "900101-1******"


@pytest.mark.parametrize(
    "value", ["", "900101-123456", "900101-12345678", "٩٠٠١٠١-١٢٣٤٥٦٧", None, 9001011234567, "x" * 5000]
)
def test_registration_number_of_any_other_shape_is_hidden(value: Any) -> None:
    """A value that is not 13 ASCII digits shows nothing of itself."""
    assert registration_number(value) == HIDDEN


def test_name_initial_keeps_the_family_name() -> None:
    """A name keeps its first character and hides the rest, one star per character (at least one)."""
    assert name_initial("홍길동") == "홍**"
    assert name_initial("김") == "김*"
    assert name_initial("") == HIDDEN
    assert name_initial(None) == HIDDEN


def test_birth_year_keeps_the_year_only() -> None:
    """An ISO date keeps its year; anything else is hidden."""
    assert birth_year("1990-01-01") == "1990"
    assert birth_year("1990") == HIDDEN
    assert birth_year(19900101) == HIDDEN


def test_every_mask_the_catalog_names_exists_and_covers_a_personal_field() -> None:
    """The catalog names only known masks, each on a personal or sensitive field."""
    for event in load_catalog():
        classes = event.classifications()
        for path, mask in event.masks().items():
            assert mask in MASKS
            assert classes[path] in ("personal", "sensitive")

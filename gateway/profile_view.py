"""The citizen profile as an agreement shows it: each part disclosed by the contract of its table.

The profile (:func:`consumers.projections.profile.citizen_profile`) joins rows of seven tables; each part
is shown through the :class:`~gateway.disclosure.Plan` of the table it comes from, under the caller's
``citizen_profile`` agreement: the resident's own fields and address by ``residents``, the household by
``family_relations`` (a relative's name and status by ``residents``), vehicles by ``vehicles``, enrolment
by ``students`` (the school's name and level by ``schools``), public service by ``civil_servants``,
active benefits by ``benefits`` and the benefit totals by ``benefit_recipients``. So an agreement
granting ``name`` shows every name in the profile, and one that does not masks them all.

The relatives named in the household are subjects of the read too: their names and status are
disclosed, so the audit lists them and each of them sees the read in their own audit view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consumers.projections.profile import Profile
from gateway.agreements import Agreement
from gateway.disclosure import CLEAR, MASKED, WITHHELD, Disclosures

SECTIONS = {
    "household": ("family_relations", {"relative_name": "name", "relative_status": "status"}, "residents"),
    "vehicles": ("vehicles", {}, None),
    "enrolment": ("students", {"school_name": "name", "school_level": "level"}, "schools"),
    "public_service": ("civil_servants", {}, None),
}
"""List part of the profile → (its table, extra keys → the column of the joined table, that table)."""
OWN = ("benefits", "sources", *SECTIONS)


@dataclass(frozen=True)
class ShownProfile:
    """A profile as shown, what it disclosed in clear, masked and withheld, and whom it is about."""

    data: dict[str, Any]
    disclosed: tuple[str, ...]
    masked: tuple[str, ...]
    withheld: tuple[str, ...]
    subjects: tuple[str, ...]


class ProfileView:
    """Shows profiles under agreements."""

    def __init__(self, disclosures: Disclosures) -> None:
        self.disclosures = disclosures

    def show(self, profile: Profile, agreement: Agreement | None) -> ShownProfile:
        """``profile`` as ``agreement`` shows it."""

        def plan(table: str) -> Any:
            return self.disclosures.plan(table, agreement)

        seen: dict[str, set[str]] = {}
        shown = plan("residents").present({k: v for k, v in profile.items() if k not in OWN}, None, seen)
        subjects = [str(profile["resident_id"])]
        for section, (table, joined, other) in SECTIONS.items():
            parts = []
            for row in profile.get(section, []):
                part = plan(table).present({k: v for k, v in row.items() if k not in joined}, None, seen)
                if other is not None:
                    part.update(plan(other).present({k: row[k] for k in joined if k in row}, joined, seen))
                parts.append(part)
                if section == "household" and row.get("relative_resident_id"):
                    subjects.append(str(row["relative_resident_id"]))
            shown[section] = parts
        benefits = profile.get("benefits", {})
        shown["benefits"] = {
            "active": [plan("benefits").present(b, None, seen) for b in benefits.get("active", [])],
            **plan("benefit_recipients").present(
                {k: v for k, v in benefits.items() if k != "active"}, None, seen
            ),
        }
        shown["sources"] = profile.get("sources", [])
        return ShownProfile(
            shown,
            tuple(sorted(seen.get(CLEAR, ()))),
            tuple(sorted(seen.get(MASKED, ()))),
            tuple(sorted(seen.get(WITHHELD, ()))),
            tuple(dict.fromkeys(subjects)),
        )

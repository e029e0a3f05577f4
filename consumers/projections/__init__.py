"""The agencies' read models, by name: each one adapter, a pure projection of its topics' events.

``READ_MODELS`` is the one table that names them; each entry builds a
:class:`~consumers.readmodel.ReadModel` whose ``name`` is the adapter's name and the name of its
table set. The citizen profile (:mod:`consumers.projections.profile`) is a query over these models,
not one of them. ``residents.py`` is the first residents projection (``migrate``/``handle`` with its
own SQL), which the runtime uses until it runs read models.
"""

from __future__ import annotations

from collections.abc import Callable

from consumers.projections.education import SchoolsModel, StudentsModel
from consumers.projections.finance import BenefitsModel, BudgetModel
from consumers.projections.localgov import HouseholdsModel, ResidentsModel, VehiclesModel
from consumers.projections.personnel import CivilServantsModel
from consumers.readmodel import ReadModel

READ_MODELS: dict[str, Callable[[], ReadModel]] = {
    "residents": ResidentsModel,
    "households": HouseholdsModel,
    "vehicles": VehiclesModel,
    "schools": SchoolsModel,
    "students": StudentsModel,
    "civil_servants": CivilServantsModel,
    "budget": BudgetModel,
    "benefits": BenefitsModel,
}

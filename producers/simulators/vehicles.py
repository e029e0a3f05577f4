"""The vehicle register (localgov.vehicle): new registrations, sales, gifts and inheritances.

About a third of onboarded adults already own a car (registered in the past, so the register is
not empty on day one); adults buy new cars at about 3% a year; a car changes hands every seven
years or so, and when its owner dies it passes to the spouse or a child.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from producers.simulators.reference import YEAR_DAYS, age_on
from producers.simulators.world import Arrival, Resident, World

REGISTERED = "govbus.localgov.VehicleRegistered"
TRANSFERRED = "govbus.localgov.VehicleOwnershipTransferred"
TYPES = (REGISTERED, TRANSFERRED)

OWNERSHIP_AT_ONBOARDING = 0.35
PURCHASE_RATE = 0.03
RESALE_YEARS = 7.0
NATIONAL_PLATES_FROM = date(2019, 9, 1)
# Hangul plate syllables of private passenger cars (commercial and rental ones use others).
PLATE_SYLLABLES = "가나다라마거너더러머버서어저고노도로모보소오조구누두루무부수우주"
VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
VIN_YEAR = "ABCDEFGHJKLMNPRSTVWXY123456789"  # 2010 = A ... repeats every 30 years
VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_VALUE = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}


@dataclass(frozen=True)
class Model:
    """A car model as registered: maker, name, VIN prefix, new price in KRW and fuels offered."""

    manufacturer: str
    name: str
    wmi: str
    price: int
    fuels: tuple[str, ...]


MODELS = (
    Model("현대자동차", "아반떼", "KMH", 21_000_000, ("GASOLINE", "GASOLINE", "HYBRID", "LPG")),
    Model("현대자동차", "쏘나타", "KMH", 29_000_000, ("GASOLINE", "HYBRID", "LPG")),
    Model("현대자동차", "그랜저", "KMH", 40_000_000, ("GASOLINE", "HYBRID", "HYBRID")),
    Model("현대자동차", "투싼", "KMH", 30_000_000, ("GASOLINE", "DIESEL", "HYBRID")),
    Model("현대자동차", "싼타페", "KMH", 36_000_000, ("GASOLINE", "HYBRID", "DIESEL")),
    Model("현대자동차", "아이오닉 5", "KMH", 52_000_000, ("ELECTRIC",)),
    Model("현대자동차", "캐스퍼", "KMH", 14_000_000, ("GASOLINE", "ELECTRIC")),
    Model("현대자동차", "넥쏘", "KMH", 69_000_000, ("HYDROGEN",)),
    Model("현대자동차", "포터", "KMF", 20_000_000, ("DIESEL", "ELECTRIC", "LPG")),
    Model("기아", "모닝", "KNA", 13_000_000, ("GASOLINE",)),
    Model("기아", "K5", "KNA", 27_000_000, ("GASOLINE", "LPG", "HYBRID")),
    Model("기아", "쏘렌토", "KNA", 36_000_000, ("HYBRID", "DIESEL", "GASOLINE")),
    Model("기아", "카니발", "KNA", 38_000_000, ("DIESEL", "GASOLINE", "HYBRID")),
    Model("기아", "EV6", "KNA", 50_000_000, ("ELECTRIC",)),
    Model("제네시스", "G80", "KMT", 58_000_000, ("GASOLINE", "ELECTRIC")),
    Model("KG모빌리티", "토레스", "KPT", 30_000_000, ("GASOLINE", "ELECTRIC")),
    Model("르노코리아", "QM6", "KNM", 28_000_000, ("LPG", "GASOLINE")),
    Model("BMW", "520i", "WBA", 68_000_000, ("GASOLINE",)),
    Model("메르세데스-벤츠", "E 300", "W1K", 80_000_000, ("GASOLINE",)),
    Model("테슬라", "Model Y", "LRW", 55_000_000, ("ELECTRIC",)),
)


@dataclass(eq=False, slots=True)
class Vehicle:
    """A registered vehicle and its current owner."""

    id: str
    plate: str
    model: Model
    model_year: int
    owner: Resident


class VehicleRegister:
    """Registers vehicles and records their changes of owner."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._owned: dict[str, list[Vehicle]] = {}
        world.registered.append(self._resident_registered)
        world.died.append(self._owner_died)
        world.within(30, self._purchases)

    def _resident_registered(self, resident: Resident, arrival: Arrival) -> None:
        world = self.world
        if arrival != "onboarded" or not 20 <= resident.years_on(world.day) < 80:
            return
        if world.rng.random() < OWNERSHIP_AT_ONBOARDING:
            # The register's existing entry reaches the bus a few days after the owner's.
            world.within(10, self._register_existing, resident)

    def _register_existing(self, owner: Resident) -> None:
        world = self.world
        if world.alive(owner):
            adult_for = int((owner.years_on(world.day) - 19) * YEAR_DAYS)
            since = world.day - int(world.rng.random() * min(adult_for, 12 * YEAR_DAYS))
            self._register(owner, date.fromordinal(since))

    def _purchases(self, _: object) -> None:
        world = self.world
        world.recur(max(len(world.living), 1) * PURCHASE_RATE, self._purchases)
        buyer = world.find(lambda r: 20 <= r.years_on(world.day) < 80)
        if buyer is not None:
            self._register(buyer, world.today)

    def _register(self, owner: Resident, registered_on: date) -> None:
        world, rng = self.world, self.world.rng
        model = MODELS[int(rng.random() * len(MODELS))]
        model_year = registered_on.year + (1 if registered_on.month >= 9 and rng.random() < 0.5 else 0)
        vehicle = Vehicle(world.next_id("V"), self._plate(registered_on), model, model_year, owner)
        self._owned.setdefault(owner.id, []).append(vehicle)
        world.emit(
            REGISTERED,
            {
                "vehicle_id": vehicle.id,
                "plate_number": vehicle.plate,
                "vin": self._vin(model, model_year),
                "manufacturer": model.manufacturer,
                "model": model.name,
                "model_year": model_year,
                "fuel_type": model.fuels[int(rng.random() * len(model.fuels))],
                "owner_resident_id": owner.id,
                "base_address": dict(owner.address),
                "registered_on": registered_on,
                "registering_office": owner.region.office_code,
            },
        )
        self._plan_resale(vehicle)

    def _plan_resale(self, vehicle: Vehicle) -> None:
        world = self.world
        day = world.day + int(world.rng.expovariate(1 / RESALE_YEARS) * YEAR_DAYS)
        if day < vehicle.owner.dies:
            world.on(day, self._resell, (vehicle, vehicle.owner))

    def _resell(self, subject: tuple[Vehicle, Resident]) -> None:
        vehicle, seller = subject
        world, rng = self.world, self.world.rng
        if vehicle.owner is not seller or not world.alive(seller):
            return
        family = [r for r in (seller.spouse, *seller.children) if r is not None and world.alive(r)]
        buyer: Resident | None
        if family and rng.random() < 0.1:
            cause, buyer = "GIFT", family[int(rng.random() * len(family))]
        else:
            cause = "SALE" if rng.random() < 0.97 else "AUCTION"
            buyer = world.find(lambda r: r is not seller and 20 <= r.years_on(world.day) < 80)
        if buyer is None or age_on(buyer.born, world.today) < 18:
            self._plan_resale(vehicle)
            return
        self._transfer(vehicle, buyer, cause)
        self._plan_resale(vehicle)

    def _owner_died(self, owner: Resident) -> None:
        world = self.world
        heirs = [r for r in (owner.spouse, *owner.children) if r is not None and world.alive(r)]
        for vehicle in self._owned.pop(owner.id, []):
            if heirs:
                # Inheritance must be registered within six months of the death.
                world.within(150, self._inherit, (vehicle, heirs[0]))

    def _inherit(self, subject: tuple[Vehicle, Resident]) -> None:
        vehicle, heir = subject
        if self.world.alive(heir):
            self._transfer(vehicle, heir, "INHERITANCE")
            self._plan_resale(vehicle)

    def _transfer(self, vehicle: Vehicle, buyer: Resident, cause: str) -> None:
        world, rng = self.world, self.world.rng
        previous = vehicle.owner
        owned = self._owned.get(previous.id)
        if owned is not None and vehicle in owned:
            owned.remove(vehicle)
        vehicle.owner = buyer
        self._owned.setdefault(buyer.id, []).append(vehicle)
        price: Decimal | None = None
        if cause in {"SALE", "AUCTION"}:
            age = max(world.today.year - vehicle.model_year, 0)
            value = vehicle.model.price * 0.85**age * (0.85 + rng.random() * 0.25)
            value *= 0.7 if cause == "AUCTION" else 1.0
            price = Decimal(max(int(value / 10_000), 50) * 10_000)
        world.emit(
            TRANSFERRED,
            {
                "vehicle_id": vehicle.id,
                "plate_number": vehicle.plate,
                "previous_owner_resident_id": previous.id,
                "new_owner_resident_id": buyer.id,
                "cause": cause,
                "transfer_price": price,
                "base_address": dict(buyer.address),
                "transferred_on": world.today,
                "registering_office": buyer.region.office_code,
            },
        )

    def _plate(self, registered_on: date) -> str:
        """'12가3456' before plates got a third leading digit (September 2019), '123가4567' after."""
        rng = self.world.rng
        syllable = PLATE_SYLLABLES[int(rng.random() * len(PLATE_SYLLABLES))]
        serial = 1000 + int(rng.random() * 9000)
        if registered_on >= NATIONAL_PLATES_FROM:
            return f"{100 + int(rng.random() * 600)}{syllable}{serial}"
        return f"{10 + int(rng.random() * 60)}{syllable}{serial}"

    def _vin(self, model: Model, model_year: int) -> str:
        """A 17-character VIN: maker prefix, model code, check digit, model-year code, plant, serial."""
        rng = self.world.rng
        vds = "".join(VIN_CHARS[int(rng.random() * len(VIN_CHARS))] for _ in range(5))
        plant = "U" if model.wmi.startswith("K") else "E"
        serial = f"{int(rng.random() * 1_000_000):06d}"
        body = f"{model.wmi}{vds}0{VIN_YEAR[(model_year - 2010) % 30]}{plant}{serial}"
        total = sum(_VIN_VALUE[c] * w for c, w in zip(body, VIN_WEIGHTS, strict=True))
        check = "X" if total % 11 == 10 else str(total % 11)
        return body[:8] + check + body[9:]

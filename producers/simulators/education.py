"""Schools and students (education.school, education.student), following the Korean school calendar.

A child born in year Y enters elementary school on 2 March of Y+7 (aged six or seven), middle
school in Y+13 and high school in Y+16; each course ends with a graduation in January or
February. Onboarded children already at school reach the bus with their historical entrance;
children arriving from abroad are admitted at their age's grade. A pupil whose family moves to
another sigungu transfers to a school there. Schools are registered lazily, always before the
first student they admit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from producers.simulators.reference import Region, address
from producers.simulators.world import Arrival, Resident, World

SCHOOL_REGISTERED = "govbus.education.SchoolRegistered"
ENROLLED = "govbus.education.StudentEnrolled"
TRANSFERRED = "govbus.education.StudentTransferred"
GRADUATED = "govbus.education.StudentGraduated"
TYPES = (SCHOOL_REGISTERED, ENROLLED, TRANSFERRED, GRADUATED)

LEVELS = ("ELEMENTARY", "MIDDLE", "HIGH")
ENTRY_AGE = (7, 13, 16)  # years after the birth year in which each course starts
COURSE_YEARS = (6, 3, 3)
SUFFIX = ("초등학교", "중학교", "고등학교")
CLASSES = (8, 10, 12)
FOUNDATION_WEIGHTS = ((1, 98, 1), (1, 80, 19), (1, 59, 40))  # national, public, private
FOUNDATIONS = ("NATIONAL", "PUBLIC", "PRIVATE")
NEW_SCHOOL_CHANCE = 0.03
OTHER_TRANSFER_RATE = 0.002
NAME_STEMS = (
    "한빛", "새솔", "가온", "푸른", "중앙", "동산", "신흥",
    "대성", "한울", "솔빛", "은빛", "미래", "해오름", "늘푸른",
)  # fmt: skip
# Office of education (ATPT_OFCDC_SC_CODE) and the leading NEIS school-code digits, by sido.
OFFICES = {
    "서울특별시": ("B10", "70"),
    "부산광역시": ("C10", "71"),
    "대구광역시": ("D10", "72"),
    "인천광역시": ("E10", "73"),
    "광주광역시": ("F10", "73"),
    "대전광역시": ("G10", "74"),
    "세종특별자치시": ("I10", "90"),
    "경기도": ("J10", "75"),
    "강원특별자치도": ("K10", "78"),
    "충청북도": ("M10", "80"),
    "전북특별자치도": ("P10", "83"),
    "경상남도": ("S10", "88"),
    "제주특별자치도": ("T10", "92"),
}


@dataclass(eq=False, slots=True)
class School:
    """A registered school and how many certificates it has issued."""

    id: str
    level: int
    region: Region
    graduates: int = 0


@dataclass(eq=False, slots=True)
class Student:
    """A resident's school career: the current course, school and the day it ends."""

    id: str
    resident: Resident
    level: int = 0
    school: School | None = None
    until: int = 0
    """Ordinal day the current course ends (0 before the first enrolment)."""


class SchoolSystem:
    """Registers schools, admits, transfers and graduates students."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._schools: dict[tuple[str, int], list[School]] = {}
        self._students: dict[str, Student] = {}
        world.registered.append(self._resident_registered)
        world.moved.append(self._resident_moved)
        world.within(30, self._other_transfers)

    # -- calendar --------------------------------------------------------------------------------

    @staticmethod
    def _entrance(resident: Resident, level: int) -> int:
        return date(resident.born.year + ENTRY_AGE[level], 3, 2).toordinal()

    def _graduation(self, resident: Resident, level: int) -> int:
        """A January or February day of the course's last school year."""
        year = resident.born.year + ENTRY_AGE[level] + COURSE_YEARS[level]
        return date(year, 1, 5).toordinal() + int(self.world.rng.random() * 42)

    def _grade(self, resident: Resident, level: int) -> int:
        today = self.world.today
        school_year = today.year if today.month >= 3 else today.year - 1
        grade = school_year - (resident.born.year + ENTRY_AGE[level]) + 1
        return min(max(grade, 1), COURSE_YEARS[level])

    # -- admissions ------------------------------------------------------------------------------

    def _resident_registered(self, resident: Resident, arrival: Arrival) -> None:
        world = self.world
        today = world.day
        if world.today.year > resident.born.year + ENTRY_AGE[-1] + COURSE_YEARS[-1]:
            return  # past school age: most residents
        for level in range(len(LEVELS)):
            start = self._entrance(resident, level)
            end = date(resident.born.year + ENTRY_AGE[level] + COURSE_YEARS[level], 2, 15).toordinal()
            if today < start:
                world.on(start, self._enrol, (resident, level, "ENTRANCE", start))
                return
            if today < end:
                if arrival == "immigrated":
                    world.within(20, self._enrol, (resident, level, "ADMISSION_FROM_ABROAD", 0))
                else:
                    # The school register reaches the bus a few days after the resident register.
                    world.within(7, self._enrol, (resident, level, "ENTRANCE", start))
                return

    def _enrol(self, subject: tuple[Resident, int, str, int]) -> None:
        resident, level, admission, enrolled_on = subject
        world = self.world
        if not world.alive(resident):
            return
        student = self._students.get(resident.id)
        if student is None:
            student = self._students[resident.id] = Student(world.next_id("P"), resident)
        school = self._school(resident.region, level)
        student.level, student.school = level, school
        student.until = max(self._graduation(resident, level), world.day + 1)
        grade = 1 if admission == "ENTRANCE" else self._grade(resident, level)
        world.emit(
            ENROLLED,
            {
                "student_id": student.id,
                "resident_id": resident.id,
                "school_id": school.id,
                "grade": grade,
                "class_number": self._class_number(level),
                "admission_type": admission,
                "enrolled_on": date.fromordinal(enrolled_on or world.day),
            },
        )
        world.on(student.until, self._graduate, student)

    def _graduate(self, student: Student) -> None:
        world = self.world
        school = student.school
        if school is None or not world.alive(student.resident):
            return
        school.graduates += 1
        certificate = None if world.rng.random() < 0.05 else f"{world.today.year}-{school.graduates:04d}"
        world.emit(
            GRADUATED,
            {
                "student_id": student.id,
                "resident_id": student.resident.id,
                "school_id": school.id,
                "certificate_number": certificate,
                "graduated_on": world.today,
            },
        )
        student.school = None
        if student.level + 1 < len(LEVELS):
            start = self._entrance(student.resident, student.level + 1)
            world.on(start, self._enrol, (student.resident, student.level + 1, "ENTRANCE", start))

    # -- transfers -------------------------------------------------------------------------------

    def _resident_moved(self, resident: Resident, old_region: Region) -> None:
        student = self._students.get(resident.id)
        if student is not None and student.school is not None and resident.region is not old_region:
            self.world.within(10, self._transfer, (student, "RESIDENCE_CHANGE"))

    def _other_transfers(self, _: object) -> None:
        world = self.world
        world.recur(max(len(world.living), 1) * OTHER_TRANSFER_RATE, self._other_transfers)
        pupil = world.find(lambda r: r.id in self._students, tries=10)
        if pupil is not None:
            reason = world.rng.choices(
                ("FAMILY_CIRCUMSTANCES", "OTHER", "SCHOOL_VIOLENCE_MEASURE"), weights=(6, 3, 1)
            )[0]
            self._transfer((self._students[pupil.id], reason))

    def _transfer(self, subject: tuple[Student, str]) -> None:
        student, reason = subject
        world = self.world
        school = student.school
        if school is None or student.until <= world.day or not world.alive(student.resident):
            return
        region = student.resident.region
        if reason == "RESIDENCE_CHANGE" and region is school.region:
            return
        target = self._school(region, student.level, avoid=school)
        student.school = target
        world.emit(
            TRANSFERRED,
            {
                "student_id": student.id,
                "resident_id": student.resident.id,
                "from_school_id": school.id,
                "to_school_id": target.id,
                "grade": self._grade(student.resident, student.level),
                "reason": reason,
                "transferred_on": world.today,
            },
        )

    # -- schools ---------------------------------------------------------------------------------

    def _school(self, region: Region, level: int, avoid: School | None = None) -> School:
        """A school of ``level`` in ``region``, registering a new one when there is none to choose."""
        rng = self.world.rng
        schools = self._schools.setdefault((region.office_code, level), [])
        choices = [s for s in schools if s is not avoid]
        if choices and rng.random() >= NEW_SCHOOL_CHANCE:
            return choices[int(rng.random() * len(choices))]
        school = School(self.world.next_id("S", 4), level, region)
        schools.append(school)
        self._register(school)
        return school

    def _register(self, school: School) -> None:
        world, rng, region = self.world, self.world.rng, school.region
        office, neis_prefix = OFFICES[region.sido]
        district = region.sigungu.split()[-1][:-1]
        town = region.sido[:2] if len(district) < 2 or rng.random() < 0.5 else district
        foundation = rng.choices(FOUNDATIONS, weights=FOUNDATION_WEIGHTS[school.level])[0]
        world.emit(
            SCHOOL_REGISTERED,
            {
                "school_id": school.id,
                "neis_code": f"{neis_prefix}{int(rng.random() * 100_000):05d}",
                "name": f"{town}{NAME_STEMS[int(rng.random() * len(NAME_STEMS))]}{SUFFIX[school.level]}",
                "level": LEVELS[school.level],
                "foundation": foundation,
                "address": address(rng, region),
                "education_office": office,
                "opened_on": date(1946 + int(rng.random() * 75), 3, 1),
            },
        )

    def _class_number(self, level: int) -> int | None:
        rng = self.world.rng
        return None if rng.random() < 0.1 else 1 + int(rng.random() * CLASSES[level])

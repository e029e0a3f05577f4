"""Reference data the simulators draw from: regions, names, identity numbers and calendar rules.

Helpers take the world's seeded ``random.Random`` so that every value stays reproducible. Hot
paths use ``int(rng.random() * n)`` rather than ``randint``/``choice``: it is several times faster
and equally deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from operator import mul
from typing import Any

KST = timezone(timedelta(hours=9), "KST")
YEAR_DAYS = 365.2425


@dataclass(frozen=True)
class Region:
    """A sigungu with its office code, district-code prefix, some road names and its postal-code range."""

    sido: str
    sigungu: str
    office_code: str
    admin_prefix: str
    roads: tuple[str, ...]
    postal_low: int
    postal_high: int


REGIONS: tuple[Region, ...] = (
    Region(
        "서울특별시", "종로구", "3000000", "11110", ("세종대로", "종로", "율곡로", "자하문로"), 3000, 3199
    ),
    Region(
        "서울특별시", "강남구", "3220000", "11680", ("테헤란로", "강남대로", "도산대로", "선릉로"), 6000, 6399
    ),
    Region(
        "서울특별시", "마포구", "3130000", "11440", ("월드컵로", "양화로", "마포대로", "독막로"), 3900, 4199
    ),
    Region(
        "부산광역시", "해운대구", "3330000", "26350", ("해운대로", "센텀중앙로", "달맞이길"), 48000, 48199
    ),
    Region("대구광역시", "수성구", "3450000", "27260", ("달구벌대로", "동대구로", "들안로"), 42000, 42299),
    Region(
        "인천광역시", "연수구", "3500000", "28185", ("컨벤시아대로", "송도과학로", "먼우금로"), 21900, 22099
    ),
    Region("광주광역시", "북구", "3600000", "29170", ("무등로", "서암대로", "용봉로"), 61000, 61299),
    Region("대전광역시", "유성구", "3680000", "30200", ("대학로", "유성대로", "엑스포로"), 34000, 34299),
    Region("세종특별자치시", "세종시", "5690000", "36110", ("한누리대로", "도움로", "갈매로"), 30000, 30199),
    Region("경기도", "수원시 영통구", "3740000", "41117", ("광교중앙로", "영통로", "매영로"), 16200, 16799),
    Region("경기도", "성남시 분당구", "3780000", "41135", ("판교역로", "분당로", "황새울로"), 13400, 13699),
    Region("강원특별자치도", "춘천시", "4180000", "51110", ("중앙로", "공지로", "석사로"), 24200, 24499),
    Region("충청북도", "청주시 상당구", "4310000", "43111", ("상당로", "중앙로", "대성로"), 28500, 28799),
    Region(
        "전북특별자치도", "전주시 완산구", "4640000", "52111", ("팔달로", "기린대로", "효자로"), 54900, 55199
    ),
    Region(
        "경상남도", "창원시 성산구", "5310000", "48123", ("중앙대로", "원이대로", "창원대로"), 51400, 51699
    ),
    Region("제주특별자치도", "제주시", "6510000", "50110", ("중앙로", "연북로", "노형로"), 63000, 63399),
)

# Administrative organisation codes (haengjeong gigwan kodeu) of central ministries and agencies.
MINISTRIES = {
    "1051000": "기획재정부",
    "1270000": "법무부",
    "1320000": "경찰청",
    "1342000": "교육부",
    "1352000": "보건복지부",
    "1492000": "고용노동부",
    "1613000": "국토교통부",
    "1661000": "소방청",
    "1721000": "과학기술정보통신부",
    "1741000": "행정안전부",
    "1760000": "인사혁신처",
    "1210000": "국세청",
}

# Surnames repeated roughly in proportion to their share of the population (김 ~21%, 이 ~15%, ...).
SURNAMES = (
    *("김",) * 21, *("이",) * 15, *("박",) * 8, *("최",) * 5, *("정",) * 4, *("강",) * 2, *("조",) * 2,
    *("윤",) * 2, *("장",) * 2, *("임",) * 2, "한", "오", "서", "신", "권", "황", "안", "송", "전", "홍",
)  # fmt: skip

# Popular given names change by generation; a name should fit the birth year it goes with.
_GIVEN_NAMES: dict[tuple[int, bool], tuple[str, ...]] = {
    (1900, False): ("영수", "영호", "영식", "정수", "상철", "성호", "광수", "정호", "종수", "영철"),
    (1900, True): ("순자", "영숙", "정숙", "영자", "옥순", "명숙", "미경", "경숙", "정희", "영희"),
    (1970, False): ("동현", "지훈", "성민", "현우", "준호", "정훈", "상현", "재훈", "성진", "민수"),
    (1970, True): ("지영", "은정", "미영", "수진", "혜진", "지현", "은주", "선영", "미정", "현정"),
    (1990, False): ("민준", "서준", "도윤", "예준", "시우", "하준", "지호", "주원", "지훈", "건우"),
    (1990, True): ("서연", "서윤", "지우", "하은", "민서", "지유", "하윤", "수빈", "지민", "예은"),
}


def given_name(rng: random.Random, female: bool, born_year: int) -> str:
    """A given name that was common for people of that sex born around ``born_year``."""
    era = 1990 if born_year >= 1990 else 1970 if born_year >= 1970 else 1900
    names = _GIVEN_NAMES[era, female]
    return names[int(rng.random() * len(names))]


def surname(rng: random.Random) -> str:
    """A surname drawn with realistic frequencies."""
    return SURNAMES[int(rng.random() * len(SURNAMES))]


def korean_name(rng: random.Random, female: bool = False, born_year: int = 1980) -> str:
    """A plausible Korean full name: a surname and a given name of the right generation."""
    return surname(rng) + given_name(rng, female, born_year)


def address(rng: random.Random, region: Region | None = None) -> dict[str, Any]:
    """A road-name address in ``region`` (random when None), as the govbus.common.Address record."""
    region = region or REGIONS[int(rng.random() * len(REGIONS))]
    detail = (
        None
        if rng.random() < 0.35
        else f"{1 + int(rng.random() * 25)}층 {1 + int(rng.random() * 20)}{1 + int(rng.random() * 9):02d}호"
    )
    road = region.roads[int(rng.random() * len(region.roads))]
    span = region.postal_high - region.postal_low + 1
    return {
        "sido": region.sido,
        "sigungu": region.sigungu,
        "road_address": f"{road} {1 + int(rng.random() * 420)}",
        "detail": detail,
        "postal_code": f"{region.postal_low + int(rng.random() * span):05d}",
        "admin_code": f"{region.admin_prefix}{101 + int(rng.random() * 599):03d}00",
    }


_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def registration_number(rng: random.Random, birth: date, female: bool) -> str:
    """A resident registration number 'YYMMDD-GNNNNNC' that agrees with birth date and sex.

    G is 1/2 (male/female) before 2000 and 3/4 from 2000; C is the statutory check digit.
    """
    century_digit = (3 if birth.year >= 2000 else 1) + (1 if female else 0)
    serial = int(rng.random() * 100_000)
    body = f"{birth.year % 100:02d}{birth.month:02d}{birth.day:02d}{century_digit}{serial:05d}"
    check = (11 - sum(map(mul, map(int, body), _RRN_WEIGHTS)) % 11) % 10
    return f"{body[:6]}-{body[6:]}{check}"


_BRN_WEIGHTS = (1, 3, 7, 1, 3, 7, 1, 3, 5)


def business_number(rng: random.Random) -> str:
    """A corporate business registration number 'NNN-81-NNNNC' with a valid check digit."""
    body = f"{101 + int(rng.random() * 799)}81{int(rng.random() * 10_000):04d}"
    total = sum(int(d) * w for d, w in zip(body, _BRN_WEIGHTS, strict=True))
    total += int(body[8]) * 5 // 10
    check = (10 - total % 10) % 10
    return f"{body[:3]}-{body[3:5]}-{body[5:]}{check}"


def previous_business_day(day: int) -> int:
    """``day`` or, when it falls on a weekend, the Friday before (benefits are paid early, not late)."""
    wd = (day - 1) % 7
    return day - (wd - 4) if wd >= 5 else day


def anniversary(born: date, years: int) -> date:
    """The date ``years`` after ``born``; 29 February maps to 1 March in common years."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:
        return date(born.year + years, 3, 1)


def age_on(born: date, when: date) -> int:
    """Completed years of age on ``when``."""
    return when.year - born.year - ((when.month, when.day) < (born.month, born.day))


def month_start(year: int, month: int) -> date:
    """The first day of a month, months beyond 12 rolling into later years."""
    return date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def month_end(year: int, month: int) -> date:
    """The last day of a month, months beyond 12 rolling into later years."""
    return month_start(year, month + 1) - timedelta(days=1)

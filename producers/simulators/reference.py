"""Reference data the simulators draw from: regions with real road names and postal-code ranges, names."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any


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

SURNAMES = ("김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권", "황")
GIVEN_SYLLABLES = (
    "민", "서", "준", "지", "현", "우", "연", "수", "하",
    "윤", "도", "예", "은", "주", "진", "영", "호", "성",
)  # fmt: skip


def korean_name(rng: random.Random) -> str:
    """A plausible Korean full name: surname plus two given-name syllables."""
    return rng.choice(SURNAMES) + rng.choice(GIVEN_SYLLABLES) + rng.choice(GIVEN_SYLLABLES)


def address(rng: random.Random, region: Region | None = None) -> dict[str, Any]:
    """A road-name address in ``region`` (random when None), as the govbus.common.Address record."""
    region = region or rng.choice(REGIONS)
    detail = (
        None
        if rng.random() < 0.35
        else f"{rng.randint(1, 25)}층 {rng.randint(1, 20)}{rng.randint(1, 9):02d}호"
    )
    return {
        "sido": region.sido,
        "sigungu": region.sigungu,
        "road_address": f"{region.sigungu.split()[-1]} {rng.choice(region.roads)} {rng.randint(1, 420)}",
        "detail": detail,
        "postal_code": f"{rng.randint(region.postal_low, region.postal_high):05d}",
        "admin_code": f"{region.admin_prefix}{rng.randint(101, 699):03d}00",
    }


def registration_number(rng: random.Random, birth: date, female: bool) -> str:
    """A resident registration number shape 'YYMMDD-GNNNNNN' (gender digit 1/2 before 2000, 3/4 after)."""
    century_digit = (3 if birth.year >= 2000 else 1) + (1 if female else 0)
    return f"{birth:%y%m%d}-{century_digit}{rng.randint(0, 999_999):06d}"


def random_date(rng: random.Random, start: date, end: date) -> date:
    """A date in [start, end]."""
    return start + timedelta(days=rng.randint(0, max((end - start).days, 0)))

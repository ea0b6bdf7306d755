"""The Thai starter catalogue and the shipped holidays (issue 22, setup steps 4 and 6).

Every entry loads as mailbot rules; each service's keywords carry realistic citizen subjects to
that service, and to no other rule, through the classifier ``mailbot rules test`` uses; the
holidays are whole years with a substitution day for each weekend holiday. Fast: no network."""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from mailbot.app import rules_test
from mailbot.config import Referral, Rules, ScheduleConfig, Service, load_rules, yaml_load
from mailbot.errors import RulesError
from mailbot.intake.classify import match_subject
from mailbot.setup import catalogue as cat
from mailbot.thai import normalise

RAW = yaml_load((Path(cat.__file__).parent / cat.CATALOGUE_FILE).read_text(encoding="utf-8"))

# two or three subjects a citizen really types, per service
SUBJECTS: dict[str, list[str]] = {
    "BLD": ["ขออนุญาตต่อเติมบ้าน เลขที่ 12 หมู่ 3", "ยื่นคำขออนุญาตก่อสร้างอาคารพักอาศัย 2 ชั้น",
            "ขอรื้อถอนโรงเรือนเก่า", "Building permit application - house no. 5"],
    "HAZ": ["ขอต่อใบอนุญาตประกอบกิจการที่เป็นอันตรายต่อสุขภาพ ปี ๒๕๖๙", "ขออนุญาตเปิดอู่ซ่อมรถ หมู่ 5",
            "ขอใบอนุญาตร้านเสริมสวย", "ขออนุญาตตั้งตู้น้ำดื่มหยอดเหรียญ"],
    "FOOD": ["ขออนุญาตจัดตั้งสถานที่จำหน่ายอาหาร ร้านก๋วยเตี๋ยวป้าแดง", "ขอหนังสือรับรองการแจ้งสถานที่สะสมอาหาร",
             "ต่อใบอนุญาตร้านอาหาร"],
    "COM": ["จดทะเบียนพาณิชย์ ร้านขายของชำ", "ขอเปลี่ยนแปลงรายการทะเบียนพาณิชย์"],
    "LTX": ["สอบถามยอดภาษีที่ดินและสิ่งปลูกสร้าง ปี 2569", "คัดค้านการประเมินภาษี ภ.ด.ส. แปลงเลขที่ 45"],
    "SGN": ["ยื่นแบบ ภ.ป.1 ภาษีป้าย ประจำปี 2569", "ชำระภาษีป้ายโฆษณาหน้าร้าน"],
    "WST": ["ขอรับบริการเก็บขยะ บ้านเลขที่ 8", "ชำระค่าธรรมเนียมเก็บขนมูลฝอย เดือนมกราคม"],
    "WTR": ["ขอใช้น้ำประปาหมู่บ้าน บ้านใหม่ หมู่ 2", "น้ำไม่ไหล 3 วันแล้ว ซอยวัดกลาง"],
    "OLD": ["ขอลงทะเบียนรับเบี้ยยังชีพผู้สูงอายุ (อายุครบ 60 ปี)", "สอบถามเบี้ยผู้สูงอายุ เดือนนี้ยังไม่เข้าบัญชี"],
    "DIS": ["ขอรับเบี้ยความพิการ", "ลงทะเบียนเบี้ยยังชีพคนพิการให้ลูกชาย"],
    "INF": ["ขอข้อมูลข่าวสารตาม พ.ร.บ.ข้อมูลข่าวสารของราชการ 2540", "ขอคัดสำเนาสัญญาจ้างโครงการก่อสร้างถนน"],
    "REP": ["แจ้งซ่อมไฟฟ้าส่องสว่าง หมู่ 4 ดับ 3 ต้น", "ถนนชำรุดเป็นหลุมบ่อ ซอย 5", "Street light broken on Soi 3"],
    "RLF": ["ขอความช่วยเหลือผู้ประสบภัยน้ำท่วม หมู่ 7", "บ้านถูกพายุพัดหลังคาเสียหาย"],
    "CMP": ["ร้องเรียนเสียงดังจากโรงงานยามวิกาล", "แจ้งเหตุเดือดร้อนรำคาญ กลิ่นเหม็นจากฟาร์มหมู",
            "Complaint about noise at night"],
}
# subjects for other agencies: (words of the agency's name, subjects)
REFERRAL_SUBJECTS: list[tuple[str, list[str]]] = [
    ("อำเภอ", ["ขอทำบัตรประชาชนใหม่ บัตรหาย", "แจ้งย้ายเข้าทะเบียนบ้าน"]),
    ("ที่ดิน", ["ขอรังวัดที่ดิน โฉนดเลขที่ 1234", "สอบถามการโอนที่ดินให้ลูก"]),
    ("การไฟฟ้า", ["ไฟฟ้าดับทั้งหมู่บ้าน", "ขอติดตั้งมิเตอร์ไฟฟ้าบ้านใหม่"]),
    ("ขนส่ง", ["ต่อใบขับขี่", "ต่อภาษีรถยนต์ประจำปี"]),
    ("สรรพากร", ["ยื่นภาษีเงินได้บุคคลธรรมดา", "ขอคืนภาษีมูลค่าเพิ่ม"]),
]


@pytest.fixture(scope="module")
def catalogue() -> cat.Catalogue:
    return cat.catalogue()


@pytest.fixture(scope="module")
def rules(catalogue: cat.Catalogue) -> Rules:
    return catalogue.rules()


def _every_rule(rules: Rules) -> list[tuple[str, Rules]]:
    """Each rule alone, labelled: which rules a subject fires, not only the first."""
    out = [(s.code, Rules(services=[s])) for s in rules.services]
    out += [(r.agency, Rules(referrals=[r])) for r in rules.referrals]
    return out


def _fired(subject: str, rules: Rules) -> list[str]:
    return [label for label, alone in _every_rule(rules) if match_subject(subject, alone).kind != "none"]


# ---------------------------------------------------------------------------- the catalogue loads as rules

def test_every_service_validates_as_a_service_once_its_group_is_dropped():
    assert len(RAW["services"]) >= 12
    for item in RAW["services"]:
        assert item["group"] in ("การอนุญาต", "ภาษีและค่าธรรมเนียม", "สวัสดิการ", "เรื่องทั่วไป"), item["code"]
        service = Service.model_validate({k: v for k, v in item.items() if k != "group"})
        assert service.name and service.name_en and service.next_steps, service.code
        assert service.days is not None and service.days >= 1, service.code
        assert not service.forward_to and service.fee is None, f"{service.code}: the office adds its own"
        assert len(service.keywords) >= 3, service.code
        assert any(kw.isascii() for kw in service.keywords), f"{service.code}: no English keyword"
        for doc in service.documents:
            assert doc.match, (service.code, doc.name)
    with pytest.raises(ValidationError, match="group"):      # the display key is not a rules key
        Service.model_validate(RAW["services"][0])


def test_every_referral_validates_as_a_referral_as_it_is():
    assert len(RAW["referrals"]) >= 3
    for item in RAW["referrals"]:
        referral = Referral.model_validate(item)
        assert referral.contact and referral.keywords, referral.agency


def test_codes_are_unique_and_the_whole_catalogue_is_valid_rules(catalogue, rules):
    codes = catalogue.codes
    assert len(codes) == len(set(codes)) == len(RAW["services"])
    agencies = [r.agency for r in catalogue.referrals]
    assert len(agencies) == len(set(agencies))
    Rules.model_validate({"services": [{k: v for k, v in s.items() if k != "group"} for s in RAW["services"]],
                          "referrals": RAW["referrals"]})
    assert [s.code for s in rules.services] == codes
    assert set(SUBJECTS) == set(codes), "every service has subjects below"


def test_licence_services_are_the_ones_that_issue_a_licence(catalogue):
    licences = {e.code for e in catalogue.entries if e.service.licence}
    assert {"BLD", "HAZ", "FOOD"} <= licences
    assert not licences & {"LTX", "SGN", "WST", "OLD", "DIS", "INF", "REP", "RLF", "CMP"}


def test_groups_keep_the_file_order(catalogue):
    groups = catalogue.groups()
    assert list(groups) == ["การอนุญาต", "ภาษีและค่าธรรมเนียม", "สวัสดิการ", "เรื่องทั่วไป"]
    assert [s.code for g in groups.values() for s in g] == catalogue.codes
    assert catalogue.service("BLD") is not None and catalogue.service("NOPE") is None
    assert catalogue.codes[-1] == "CMP", "complaints last: a complaint naming a service goes to the service"


def test_every_keyword_normalises_to_something_and_none_is_repeated(rules):
    seen: Counter[str] = Counter()
    for item in [*rules.services, *rules.referrals]:
        for kw in item.keywords:
            assert normalise(kw), kw
            seen[normalise(kw)] += 1
        for doc in getattr(item, "documents", []):
            assert all(normalise(m) for m in doc.match), doc.name
    assert [kw for kw, n in seen.items() if n > 1] == []


# ---------------------------------------------------------------------------- real subjects, real classifier

@pytest.mark.parametrize(("code", "subject"), [(c, s) for c, subjects in SUBJECTS.items() for s in subjects])
def test_a_citizens_subject_lands_on_its_service_and_on_no_other_rule(rules, code, subject):
    result = rules_test(None, rules, subject)       # what `mailbot rules test` prints
    match = result.decision.match
    assert match is not None and match.service is not None, (subject, result.thai)
    assert match.service.code == code, (subject, match.rule, match.keyword)
    assert _fired(subject, rules) == [code], subject


@pytest.mark.parametrize(("agency", "subject"), [(a, s) for a, subjects in REFERRAL_SUBJECTS for s in subjects])
def test_another_agencys_subject_lands_on_the_referral(rules, agency, subject):
    match = match_subject(subject, rules)
    assert match.kind == "referral" and match.referral is not None, (subject, match.rule)
    assert agency in match.referral.agency, (subject, match.rule)
    fired = _fired(subject, rules)
    assert fired == [match.referral.agency], (subject, fired)


def test_a_subject_that_names_nothing_is_left_to_the_officer(rules):
    for subject in ("สวัสดีครับ", "เรียนท่านนายก", "Hello", "ขอบคุณมากครับ"):
        assert match_subject(subject, rules).kind == "none", subject


# ---------------------------------------------------------------------------- pick

def test_pick_keeps_the_catalogue_order_and_drops_the_display_keys(tmp_path):
    mapping = cat.pick(["CMP", "WST", "BLD", "BLD"])
    assert [s["code"] for s in mapping["services"]] == ["BLD", "WST", "CMP"]
    assert all("group" not in s for s in mapping["services"])
    assert len(mapping["referrals"]) == len(RAW["referrals"])
    # written out, it loads as the office's rules.yaml
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False), encoding="utf-8")
    loaded = load_rules(path)
    assert [s.code for s in loaded.services] == ["BLD", "WST", "CMP"]
    assert loaded.services[0].licence and loaded.services[0].days == 45


def test_pick_chooses_referrals_by_agency_and_refuses_what_it_does_not_know():
    first = RAW["referrals"][0]["agency"]
    assert [r["agency"] for r in cat.pick([], [first])["referrals"]] == [first]
    assert cat.pick([], [])["referrals"] == [] and cat.pick([])["services"] == []
    with pytest.raises(RulesError) as exc:
        cat.pick(["BLD", "XYZ"])
    assert "XYZ" in exc.value.thai and "XYZ" in exc.value.english
    with pytest.raises(RulesError):
        cat.pick(["BLD"], ["กรมที่ไม่มีจริง"])


def test_pick_hands_out_copies():
    mapping = cat.pick(["BLD"])
    mapping["services"][0]["keywords"].append("แก้ในหน้าจอ")
    assert "แก้ในหน้าจอ" not in cat.pick(["BLD"])["services"][0]["keywords"]


# ---------------------------------------------------------------------------- holidays

def test_the_shipped_years():
    assert cat.holiday_years() == [2569, 2570]
    assert cat.holidays(2400) == [] and cat.holidays(2571) == []


@pytest.mark.parametrize("year_be", [2569, 2570])
def test_a_years_holidays_are_unique_inside_the_year_and_off_the_weekend(year_be):
    days = cat.holidays(year_be)
    assert len(days) >= 18
    dates = [h.date for h in days]
    assert len(dates) == len(set(dates)) and dates == sorted(dates)
    assert all(d.year + 543 == year_be for d in dates)
    assert all(h.name and not h.name.isascii() and h.name_en.isascii() and h.name_en for h in days)
    substituted = {h.substitute_for: h.date for h in days if h.substitute_for}
    for h in days:
        if h.date.weekday() >= 5:
            assert h.date in substituted, f"{h.date} {h.name} falls on a weekend with no substitution day"
    for weekend, sub in substituted.items():
        assert weekend in dates and weekend.weekday() >= 5 and sub.weekday() < 5
        assert timedelta(days=1) <= sub - weekend <= timedelta(days=4), (weekend, sub)
    # the fixed days of every year
    for month, day in ((1, 1), (4, 6), (4, 13), (4, 14), (4, 15), (5, 4), (6, 3), (7, 28), (8, 12),
                       (10, 13), (10, 23), (12, 5), (12, 10), (12, 31)):
        assert date(year_be - 543, month, day) in dates, (month, day)
    assert date(year_be - 543, 5, 1) not in dates, "Labour Day: government offices stay open"
    # they import into mailbot.yaml's schedule as they are
    assert ScheduleConfig(holidays=dates).holidays == dates


def test_2569_has_its_known_days_and_2570_lunar_days_say_they_need_checking():
    by_date = {h.date: h for h in cat.holidays(2569)}
    for d in (date(2026, 12, 5), date(2026, 12, 10), date(2026, 12, 7), date(2026, 6, 1)):
        assert d in by_date, d
    assert by_date[date(2026, 6, 1)].substitute_for == date(2026, 5, 31)
    lunar = {"วันมาฆบูชา", "วันวิสาขบูชา", "วันอาสาฬหบูชา", "วันเข้าพรรษา"}
    assert {h.name for h in cat.holidays(2569)} >= lunar
    for h in cat.holidays(2570):
        if h.name in lunar:
            assert h.verify, f"{h.date} {h.name}: 2570's lunar days are not announced yet"

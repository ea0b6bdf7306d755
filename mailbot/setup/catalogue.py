"""The Thai starter catalogue of local-government services and the shipped public holidays.

Owns: reading ``catalogue.yaml`` and ``holidays.yaml`` from inside the package (they ship in the
wheel beside this module), the catalogue's display groups, picking services into a rules
mapping that is ready to be written into ``rules.yaml`` (in the catalogue's order, which is the
order the classifier tries them), and the holidays of a Buddhist-Era year. No writing, no
network, no clock: the console's setup pages (steps 4 and 6) show and write what these return.
"""
from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from pydantic import ValidationError

from ..config import Referral, Rules, Service, describe_validation, yaml_load
from ..errors import RulesError

CATALOGUE_FILE = "catalogue.yaml"
HOLIDAYS_FILE = "holidays.yaml"
DISPLAY_KEYS = ("group",)           # catalogue-only keys, never written into rules.yaml


@dataclass(frozen=True)
class Entry:
    """One service of the catalogue and the group it is shown under."""

    service: Service
    group: str

    @property
    def code(self) -> str:
        return self.service.code


@dataclass(frozen=True)
class Catalogue:
    """The starter services in file order (each with its group) and the referrals."""

    entries: tuple[Entry, ...]
    referrals: tuple[Referral, ...]

    @property
    def services(self) -> list[Service]:
        return [e.service for e in self.entries]

    @property
    def codes(self) -> list[str]:
        return [e.code for e in self.entries]

    def groups(self) -> dict[str, list[Service]]:
        """Services by display group, groups in the order they first appear, services in file order."""
        out: dict[str, list[Service]] = {}
        for e in self.entries:
            out.setdefault(e.group, []).append(e.service)
        return out

    def service(self, code: str) -> Service | None:
        return next((e.service for e in self.entries if e.code == code), None)

    def rules(self) -> Rules:
        """The whole catalogue as one rules.yaml would hold it."""
        return Rules(services=self.services, referrals=list(self.referrals))


@dataclass(frozen=True)
class Holiday:
    """A government holiday: its date (Common Era), Thai and English names; ``verify`` when the
    date still has to be checked against the cabinet's announcement; ``substitute_for`` on a
    substitution day (วันหยุดชดเชย) names the weekend holiday it stands for."""

    date: dt.date
    name: str
    name_en: str
    verify: bool = False
    substitute_for: dt.date | None = None


def _text(name: str) -> str:
    return resources.files(__package__ or "mailbot.setup").joinpath(name).read_text(encoding="utf-8")


@cache
def _raw_catalogue() -> dict[str, Any]:
    data = yaml_load(_text(CATALOGUE_FILE))
    if not isinstance(data, dict):
        raise RulesError("บัญชีบริการตั้งต้นเสียหาย", f"{CATALOGUE_FILE} is not a mapping")
    return data


def _rule(item: dict[str, Any]) -> dict[str, Any]:
    """A catalogue entry as rules.yaml writes it: the display keys dropped."""
    return {k: copy.deepcopy(v) for k, v in item.items() if k not in DISPLAY_KEYS}


def catalogue() -> Catalogue:
    """The starter catalogue, validated: every service a ``Service``, every referral a ``Referral``."""
    data = _raw_catalogue()
    try:
        entries = tuple(Entry(Service.model_validate(_rule(item)), str(item.get("group") or ""))
                        for item in data.get("services") or [])
        referrals = tuple(Referral.model_validate(item) for item in data.get("referrals") or [])
    except ValidationError as exc:   # a broken package, not the officer's doing
        raise RulesError("บัญชีบริการตั้งต้นเสียหาย", f"{CATALOGUE_FILE} does not validate",
                         describe_validation(exc)) from None
    return Catalogue(entries, referrals)


def pick(codes: Iterable[str], agencies: Sequence[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The chosen services (by code) and referrals (by agency name; ``None``: all of them) as a rules
    mapping ``{"services": [...], "referrals": [...]}`` ready to be written into rules.yaml.

    Services keep the catalogue's order whatever order the codes come in (the classifier tries
    them in file order: complaints last). An unknown code or agency is refused, naming it."""
    data = _raw_catalogue()
    wanted = list(dict.fromkeys(codes))
    known = [str(item.get("code")) for item in data.get("services") or []]
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise RulesError(f"ไม่มีบริการรหัส {', '.join(unknown)} ในบัญชีบริการตั้งต้น",
                         f"no service {', '.join(unknown)} in the starter catalogue")
    all_referrals = data.get("referrals") or []
    if agencies is not None:
        names = [str(item.get("agency")) for item in all_referrals]
        missing = [a for a in agencies if a not in names]
        if missing:
            raise RulesError(f"ไม่มีหน่วยงาน {', '.join(missing)} ในบัญชีบริการตั้งต้น",
                             f"no referral to {', '.join(missing)} in the starter catalogue")
    chosen = set(wanted)
    mapping = {
        "services": [_rule(item) for item in data.get("services") or [] if item.get("code") in chosen],
        "referrals": [_rule(item) for item in all_referrals if agencies is None or item.get("agency") in agencies],
    }
    Rules.model_validate(mapping)    # what is written loads
    return mapping


@cache
def _raw_holidays() -> dict[int, list[Holiday]]:
    data = yaml_load(_text(HOLIDAYS_FILE)) or {}
    out: dict[int, list[Holiday]] = {}
    for year, rows in data.items():
        out[int(year)] = [
            Holiday(date=dt.date.fromisoformat(str(row["date"])), name=str(row["name"]),
                    name_en=str(row.get("name_en") or ""), verify=bool(row.get("verify", False)),
                    substitute_for=dt.date.fromisoformat(str(row["substitute_for"])) if row.get("substitute_for")
                    else None)
            for row in rows or []
        ]
    return out


def holiday_years() -> list[int]:
    """The Buddhist-Era years whose holidays ship with mailbot."""
    return sorted(_raw_holidays())


def holidays(year_be: int) -> list[Holiday]:
    """The government holidays of a Buddhist-Era year, by date; empty for a year not shipped."""
    return sorted(_raw_holidays().get(year_be, []), key=lambda h: h.date)

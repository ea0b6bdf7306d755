"""The core's setup service: what the console's setup pages and settings forms call.

Owns: the first hour's steps and whether each is done (``State.setup_steps``; the mailbox step
only for the servers and account it passed with), each step's saving (through
``setup.settings``: validated, comments kept, audited with who made it), the mailbox password
put in the credential store (never in a file), trying the mailbox for real, the starter
catalogue and the public holidays, and starting with the computer.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable

from ..casework.replies import Templates, sample_context, sample_letter_context
from ..config import Config, Rules, load_rules
from ..errors import ConfigError, MailbotError
from ..mail.credentials import save_server_password
from ..mail.wire import Wire
from ..store import State, iso
from ..thai import normalise, to_bangkok
from . import autostart, providers, settings

STEPS: tuple[tuple[str, str], ...] = (
    ("agency", "ข้อมูลหน่วยงาน"),
    ("mailbox", "กล่องอีเมลกลาง"),
    ("test", "ทดสอบการเชื่อมต่อ"),
    ("services", "งานบริการ"),
    ("letters", "หนังสือและข้อความตอบกลับ"),
    ("holidays", "วันหยุดและเวลาทำการ"),
    ("autostart", "ให้ทำงานทุกวัน"),
    ("poll", "รับอีเมลครั้งแรก"),
)
LABEL = dict(STEPS)
STARTER_ADDRESS = "saraban@example.go.th"
EMBLEM_MAX = 5 * 1024 * 1024


@dataclass
class Step:
    key: str
    label: str
    done: bool
    when: str = ""       # ISO time it was done
    by: str = ""


def _fingerprint(cfg: Config) -> str:
    """The servers and account a mailbox test passed with: changing any asks for the test again."""
    parts: list[str] = [cfg.mailbox]
    if cfg.graph is not None and cfg.mailbox == "graph":
        parts += [cfg.graph.tenant_id, cfg.graph.client_id, cfg.graph_mailbox, cfg.graph.base_url]
    for s in (cfg.imap, cfg.smtp):
        parts += [s.host, str(s.effective_port()), s.security, s.username, s.auth]
        o = s.oauth2_settings() if s.auth == "oauth2" else None
        if o is not None:
            parts += [o.provider, o.tenant, o.client_id, o.flow]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


EDITABLE = (("receipt", "อีเมลตอบรับ (เลขรับ)"), ("documents_still_missing", "แจ้งเอกสารไม่ครบ"),
            ("referral", "แนะนำหน่วยงานที่ถูกต้อง"), ("unclassified", "รอเจ้าหน้าที่ตรวจสอบ"),
            ("result_letter", "หนังสือแจ้งผลการพิจารณา (ข้อความในหนังสือ)"))


class SetupDesk:
    def __init__(self, cfg: Config, clock: Callable[[], datetime], state: State, wire: Wire,
                 templates: Templates | None = None) -> None:
        self.cfg = cfg
        self.templates = templates
        self.clock = clock
        self.state = state
        self.wire = wire

    # ------------------------------------------------------------------ progress

    def steps(self) -> list[Step]:
        done = self.state.setup_steps()
        out = []
        for key, label in STEPS:
            row = done.get(key)
            ok = row is not None
            if key == "test" and row is not None:
                ok = row["detail"] == _fingerprint(self.cfg)
            out.append(Step(key, label, ok, row["done_at"] if row else "", row["actor"] if row else ""))
        return out

    def finished(self) -> bool:
        """Setup is through once the mailbox passed its test and the first poll ran."""
        s = {x.key: x.done for x in self.steps()}
        return s["test"] and s["poll"]

    def begin(self) -> None:
        """A workspace made by ``mailbot start``: its mailbox is left alone until it passes its test."""
        if "workspace" not in self.state.setup_steps():
            self.done("workspace", "mailbot start")

    def waiting(self) -> bool:
        """Whether the service should leave the mailbox alone for now: a workspace made by
        ``mailbot start`` whose mailbox has not passed its test (or has changed since). An office
        set up by hand (``mailbot init``, a config of its own) never waits."""
        done = self.state.setup_steps()
        if "workspace" not in done:
            return False
        row = done.get("test")
        return row is None or row["detail"] != _fingerprint(self.cfg)

    def next_step(self) -> str | None:
        return next((s.key for s in self.steps() if not s.done), None)

    def done(self, step: str, actor: str, detail: str = "") -> None:
        self.state.setup_done(step, iso(self.clock()), actor, detail)

    def _audit(self, actor: str, file: str, changed: list[str], **more: Any) -> None:
        with self.state.tx():
            self.state.audit(self.clock(), actor, "settings", file, {"changed": sorted(changed), **more})

    def _save(self, actor: str, changes: dict[str, Any]) -> None:
        settings.update_config(self.cfg.source, changes)
        self._audit(actor, self.cfg.source.name, list(changes))

    # ------------------------------------------------------------------ 1. the agency

    def save_agency(self, actor: str, *, name: str, address: str, unit: str = "", phone: str = "",
                    postal: str = "", signer_name: str = "", signer_position: str = "",
                    emblem: tuple[str, bytes] | None = None) -> None:
        name, address = " ".join(name.split()), address.strip().lower()
        if not name:
            raise ConfigError("ยังไม่ได้ใส่ชื่อหน่วยงาน", "the agency's name is empty")
        if "@" not in address or " " in address or address.startswith("@") or address.endswith("@"):
            raise ConfigError(f"อีเมลกลางไม่ถูกต้อง: {address or '(ว่าง)'} (เขียนเช่น saraban@tambon.go.th)",
                              f"not an e-mail address: {address!r}")
        changes: dict[str, Any] = {
            "agency.name": name, "agency.address": address,
            "letters.unit": " ".join(unit.split()), "letters.phone": " ".join(phone.split()),
            "letters.signer_name": " ".join(signer_name.split()),
            "letters.signer_position": " ".join(signer_position.split()),
            "letters.address": [line.strip() for line in postal.splitlines() if line.strip()],
        }
        if emblem is not None and emblem[1]:
            changes["letters.emblem"] = str(self._emblem(*emblem))
        old = self.cfg.agency.address
        for section in ("imap", "smtp"):     # the starter's mailbox account follows the agency's address
            if getattr(self.cfg, section).username in ("", STARTER_ADDRESS, old):
                changes[f"{section}.username"] = address
        self._save(actor, changes)
        self.done("agency", actor)

    def _emblem(self, filename: str, data: bytes) -> Path:
        """The emblem image checked (an image, PNG or JPEG, at most 5 MB) and kept beside the config."""
        if len(data) > EMBLEM_MAX:
            raise ConfigError(f"ไฟล์ตราใหญ่เกินไป ({len(data) / 1024 / 1024:.1f} MB) ใช้ไฟล์ไม่เกิน 5 MB",
                              f"the emblem file is too large ({len(data)} bytes; 5 MB at most)")
        try:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                im.verify()
                kind = (im.format or "").upper()
        except Exception:  # noqa: BLE001 - anything Pillow cannot read is not an image to us
            raise ConfigError("ไฟล์ตราไม่ใช่รูปภาพ ใช้ไฟล์ PNG หรือ JPG",
                              f"the emblem {filename!r} is not an image (PNG or JPG)") from None
        if kind not in ("PNG", "JPEG"):
            raise ConfigError(f"ไฟล์ตราเป็นรูปชนิด {kind} ใช้ไฟล์ PNG หรือ JPG",
                              f"the emblem is {kind}; use PNG or JPG")
        target = self.cfg.base_dir / ("emblem.png" if kind == "PNG" else "emblem.jpg")
        tmp = target.with_suffix(".new")
        tmp.write_bytes(data)
        tmp.replace(target)
        return target.relative_to(self.cfg.base_dir)

    # ------------------------------------------------------------------ 2. the mailbox

    def save_mailbox(self, actor: str, *, provider: str, address: str, password: str,
                     imap: tuple[str, int, str] | None = None, smtp: tuple[str, int, str] | None = None) -> str:
        """The mailbox's servers into mailbot.yaml, its password into the credential store;
        where the password went (for the page)."""
        if provider not in providers.BY_KEY:
            raise ConfigError("เลือกผู้ให้บริการอีเมล", f"unknown provider {provider!r}")
        address = address.strip().lower() or self.cfg.agency.address
        sections = providers.server_settings(provider, address, imap=imap, smtp=smtp)
        changes: dict[str, Any] = {"mailbox": "imap"}
        for name, values in sections.items():
            for key, value in values.items():
                changes[f"{name}.{key}"] = value
            changes[f"{name}.password_env"] = settings.REMOVE
            changes[f"{name}.password"] = settings.REMOVE
            changes[f"{name}.auth"] = settings.REMOVE
        if not password and not self._has_password(address):
            raise ConfigError("ยังไม่ได้ใส่รหัสผ่านของกล่องอีเมล", "the mailbox password is empty")
        self._save(actor, changes)
        where = ""
        if password:
            from ..config import load_config

            fresh = load_config(self.cfg.source)
            for section in ("imap", "smtp"):
                where = save_server_password(getattr(fresh, section), section, password)
            self._audit(actor, "credential store", ["imap password", "smtp password"])
        self.done("mailbox", actor)
        return where

    def save_oauth(self, actor: str, *, address: str, tenant: str, client_id: str, flow: str,
                   secret: str = "") -> None:
        """Microsoft 365 / workD: IMAP and SMTP signed in with OAuth2 through the agency's app
        registration — the officer's own sign-in in the page (device code) or the app's secret
        (client credentials, kept in the credential store)."""
        from ..config import load_config
        from ..mail import oauth

        tenant, client_id = tenant.strip(), client_id.strip()
        if not tenant or not client_id:
            raise ConfigError("ใส่รหัสผู้เช่า (tenant) และรหัสแอป (client ID) ที่ได้จากผู้ดูแลระบบ",
                              "give the tenant and the application (client) ID")
        if flow not in ("device_code", "client_credentials"):
            raise ConfigError("เลือกวิธีลงชื่อเข้าใช้", f"unknown sign-in {flow!r}")
        if flow == "client_credentials" and not secret.strip() and not self._has_secret(tenant, client_id):
            raise ConfigError("ใส่รหัสลับของแอป (client secret) ที่ได้จากผู้ดูแลระบบ", "the client secret is empty")
        address = address.strip().lower() or self.cfg.agency.address
        sections = providers.server_settings("microsoft", address)
        changes: dict[str, Any] = {"mailbox": "imap", "oauth2.provider": "microsoft", "oauth2.flow": flow,
                                   "oauth2.tenant": tenant, "oauth2.client_id": client_id}
        for name, values in sections.items():
            for key, value in values.items():
                if key != "password_store":
                    changes[f"{name}.{key}"] = value
            changes[f"{name}.auth"] = "oauth2"
            for key in ("password_store", "password_env", "password"):
                changes[f"{name}.{key}"] = settings.REMOVE
        self._save(actor, changes)
        if flow == "client_credentials" and secret.strip():
            src = oauth.source(load_config(self.cfg.source).imap)
            src.store.set(src.secret_name, secret.strip())
            self._audit(actor, "credential store", ["oauth2 client secret"])
        self.done("mailbox", actor)

    def save_graph(self, actor: str, *, address: str, tenant: str, client_id: str, secret: str = "") -> None:
        """Microsoft 365 with IMAP and SMTP switched off: the mailbox read and sent through
        Microsoft Graph with the app's secret (kept in the credential store)."""
        from ..config import load_config
        from ..mail import oauth

        tenant, client_id = tenant.strip(), client_id.strip()
        if not tenant or not client_id:
            raise ConfigError("ใส่รหัสผู้เช่า (tenant) และรหัสแอป (client ID) ที่ได้จากผู้ดูแลระบบ",
                              "give the tenant and the application (client) ID")
        have = self.cfg.graph is not None and self.cfg.graph.tenant_id == tenant and self.cfg.graph.client_id == client_id
        if not secret.strip() and not (have and bool(oauth.graph_source(self.cfg).client_secret())):
            raise ConfigError("ใส่รหัสลับของแอป (client secret) ที่ได้จากผู้ดูแลระบบ", "the client secret is empty")
        address = address.strip().lower() or self.cfg.agency.address
        self._save(actor, {"mailbox": "graph", "graph.tenant_id": tenant, "graph.client_id": client_id,
                           "graph.mailbox": address})
        if secret.strip():
            src = oauth.graph_source(load_config(self.cfg.source))
            src.store.set(src.secret_name, secret.strip())
            self._audit(actor, "credential store", ["graph client secret"])
        self.done("mailbox", actor)

    def _has_secret(self, tenant: str, client_id: str) -> bool:
        from ..mail import oauth

        try:
            src = oauth.source(self.cfg.imap)
        except MailbotError:
            return False
        return src.settings.tenant == tenant and src.settings.client_id == client_id and bool(src.client_secret())

    # the device-code sign-ins under way, one per data folder: (address, code, expires, done, error)
    _DEVICE: dict[str, dict[str, Any]] = {}

    def device_start(self, actor: str) -> dict[str, Any]:
        """Start the officer's sign-in (RFC 8628) in the background; the page shows the address
        and the code and looks again until it is done."""
        import threading

        from ..mail import oauth

        key = str(self.cfg.data_dir.resolve())
        now = self._DEVICE.get(key)
        if now is not None and not now["done"] and not now["error"]:
            return now
        src = oauth.source(self.cfg.imap)
        state: dict[str, Any] = {"uri": "", "code": "", "expires": 0, "done": False, "error": ""}
        shown = threading.Event()

        def show(uri: str, code: str, expires: int) -> None:
            state.update(uri=uri, code=code, expires=expires)
            shown.set()

        def run() -> None:
            try:
                src.device_login(show)
            except MailbotError as exc:
                state["error"] = exc.thai
            except Exception as exc:  # noqa: BLE001 - said on the page, not a traceback
                state["error"] = f"ลงชื่อเข้าใช้ไม่สำเร็จ ({type(exc).__name__})"
            else:
                state["done"] = True
            shown.set()

        self._DEVICE[key] = state
        threading.Thread(target=run, name="device-login", daemon=True).start()
        shown.wait(30)
        self._audit(actor, "oauth2 sign-in", ["device code"])
        return state

    def device_status(self) -> dict[str, Any] | None:
        return self._DEVICE.get(str(self.cfg.data_dir.resolve()))

    def signed_in(self) -> bool:
        """OAuth2 with the officer's sign-in: whether a token (or its refresh token) is kept."""
        from ..mail import oauth

        if self.cfg.imap.auth != "oauth2":
            return True
        settings_ = self.cfg.imap.oauth2_settings()
        if settings_ is None or settings_.flow != "device_code":
            return True
        src = oauth.source(self.cfg.imap)
        return bool(src.store.get(src.token_name))

    def _has_password(self, address: str) -> bool:
        from ..mail.credentials import server_password

        try:
            return bool(self.cfg.imap.password_store and server_password(self.cfg.imap, "imap"))
        except MailbotError:
            return False

    # ------------------------------------------------------------------ 3. the test

    def test_mailbox(self, actor: str) -> list[Any]:
        """IMAP and SMTP tried for real; the step is done only when both pass."""
        from .probe import probe

        findings = probe(self.cfg, self.wire)
        if findings and all(f.ok for f in findings):
            self.done("test", actor, _fingerprint(self.cfg))
        else:
            self.state.setup_undone("test")
        return findings

    # ------------------------------------------------------------------ 4. services

    def save_services(self, actor: str, services: list[dict[str, Any]],
                      referrals: list[dict[str, Any]] | None = None) -> Rules:
        for s in services:
            s["keywords"] = [k for k in (" ".join(str(k).split()) for k in s.get("keywords", [])) if normalise(k)]
        settings.update_rules(self.cfg.rules_path, services, referrals)
        self._audit(actor, self.cfg.rules_path.name, ["services"] + (["referrals"] if referrals is not None else []))
        self.done("services", actor)
        return load_rules(self.cfg.rules_path)

    # ------------------------------------------------------------------ 5. letters and replies

    def previews(self) -> list[tuple[str, str, str]]:
        """Each editable reply as a citizen receives it, with sample data: (name, label, text)."""
        assert self.templates is not None
        out = []
        for name, label in EDITABLE:
            try:
                out.append((name, label, self.templates.render(name, self._sample(name))))
            except MailbotError as exc:
                out.append((name, label, f"แม่แบบนี้มีข้อผิดพลาด: {exc.thai}"))
        return out

    def _sample(self, name: str) -> dict:
        if name == "result_letter":
            return sample_letter_context(self.cfg.agency, self.clock())
        return sample_context(self.cfg.agency, self.clock())

    def template_text(self, name: str) -> str:
        if name not in dict(EDITABLE):
            raise ConfigError("ไม่มีแม่แบบนี้ให้แก้", f"no editable template {name!r}")
        path = self.cfg.templates_dir / f"{name}.txt.j2"
        return path.read_text(encoding="utf-8") if path.is_file() else ""

    def save_template(self, actor: str, name: str, text: str) -> None:
        """A reply's text saved only if it renders with sample data; the version it replaces is
        kept beside it (``<name>.txt.j2.previous``)."""
        import jinja2

        assert self.templates is not None
        self.template_text(name)                 # a known one
        text = text.replace("\r\n", "\n")
        label = dict(EDITABLE)[name]
        try:
            self.templates.env.from_string(text).render(**self._sample(name))
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"ข้อความ \"{label}\" เขียนผิดรูปแบบที่บรรทัด {exc.lineno} (ตรวจวงเล็บ {{{{ }}}} และ {{% %}}) "
                              "ยังไม่ได้บันทึก ใช้ข้อความเดิมต่อไป",
                              f"template {name} line {exc.lineno}: {exc.message}; not saved") from None
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"ข้อความ \"{label}\" ใช้ชื่อข้อมูลที่ไม่มี ยังไม่ได้บันทึก ใช้ข้อความเดิมต่อไป",
                              f"template {name}: {exc.message}; not saved") from None
        except Exception as exc:  # noqa: BLE001 - anything else the template does wrong
            raise ConfigError(f"ข้อความ \"{label}\" ใช้ไม่ได้ ยังไม่ได้บันทึก ใช้ข้อความเดิมต่อไป",
                              f"template {name}: {type(exc).__name__}; not saved") from None
        path = self.cfg.templates_dir / f"{name}.txt.j2"
        if path.is_file():
            path.with_name(path.name + ".previous").write_bytes(path.read_bytes())
        tmp = path.with_name(f".{path.name}.new")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        self._audit(actor, f"templates/{path.name}", ["text"])

    # ------------------------------------------------------------------ 6. holidays

    def save_schedule(self, actor: str, holidays: list[date], office_hours: str | None = None) -> None:
        changes: dict[str, Any] = {"schedule.holidays": [f"{d.year + 543}-{d.month:02d}-{d.day:02d}"
                                                         for d in sorted(set(holidays))]}
        if office_hours is not None:
            changes["schedule.office_hours"] = office_hours
        self._save(actor, changes)
        self.done("holidays", actor)

    # ------------------------------------------------------------------ after setup: the rest

    def save_more(self, actor: str, *, supervisors: list[str], alerts_to: list[str], backup_dir: str) -> None:
        """Who gets the daily log and alerts, and where the nightly backup goes."""
        import email.utils

        def addresses(values: list[str], what: str) -> list[str]:
            out = []
            for v in values:
                _, addr = email.utils.parseaddr(v)
                if not addr or "@" not in addr or " " in addr.strip():
                    raise ConfigError(f"{what}: อีเมลไม่ถูกต้อง: {v}", f"{what}: not an address: {v!r}")
                out.append(v.strip())
            return out

        changes: dict[str, Any] = {"supervisors": addresses(supervisors, "ผู้บังคับบัญชา"),
                                   "alerts.to": addresses(alerts_to, "ผู้รับการแจ้งเตือน")}
        folder = backup_dir.strip()
        if self.cfg.database is not None and folder != str(self.cfg.backup.dir or ""):
            # a host's agency: the folders of the other agencies are on the same volume; where the
            # backups go is the host operator's to set, in the agency's file
            raise ConfigError("หน่วยงานที่ใช้บริการของผู้ให้บริการ ที่เก็บข้อมูลสำรองกำหนดโดยผู้ให้บริการ",
                              "an agency served by a host: the backup folder is set by the host operator")
        if folder:
            path = Path(folder)
            if not path.is_absolute():
                raise ConfigError(f"ที่เก็บข้อมูลสำรองต้องเป็นโฟลเดอร์เต็ม เช่น D:\\สำรอง mailbot (ใส่ไว้ {folder})",
                                  f"the backup folder must be a full path: {folder!r}")
            if not path.is_dir():
                raise ConfigError(f"ไม่พบโฟลเดอร์ {folder} (ต่อไดรฟ์สำรองหรือสร้างโฟลเดอร์ก่อน)",
                                  f"no such folder: {folder!r}")
            if path.resolve() == self.cfg.base_dir.resolve() or self.cfg.base_dir.resolve() in path.resolve().parents:
                raise ConfigError("ที่เก็บข้อมูลสำรองต้องอยู่นอกโฟลเดอร์ของ mailbot (ควรเป็นอีกไดรฟ์หนึ่ง)",
                                  "the backup folder must be outside mailbot's own folder")
            changes["backup.dir"] = str(path)
        else:
            changes["backup.dir"] = settings.REMOVE
        self._save(actor, changes)

    # ------------------------------------------------------------------ 7. every day

    def autostart(self, actor: str, on: bool) -> autostart.Autostart:
        result = autostart.install(self.cfg.base_dir) if on else autostart.remove()
        self._audit(actor, "autostart", ["on" if on else "off"], where=result.where)
        if on:
            self.done("autostart", actor)
        else:
            self.state.setup_undone("autostart")
        return result

    def today(self) -> date:
        return to_bangkok(self.clock()).date()

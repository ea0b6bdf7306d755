"""Pipeline: one polling cycle, the only place that knows the order of the steps.

Before anything is fetched: the receipt counters stand above every number ever issued (a lost
or restored database is caught up from the archive's index, the registers and the Sent folder:
recovery.py), queued mail is sent and decided messages are moved. Then, per message, in this
order (isync spirit: record intent before an effect; every effect after the commit is
idempotent on retry):

  1. fetch      BODY.PEEK in batches; the attempt counter goes up first (poison detection);
                mail older than imap.since is left alone
  2. archive    raw bytes to data/archive (content-addressed, atomic)
  3. decide     parse + classify; trust, duplicates, follow-ups and numbers looked up in the state
  4. commit     outcome, case with its receipt number, reply queued with a fixed Message-ID:
                one transaction per batch; the numbers then go into the archive's receipt index
  5. send       the queued mail over one SMTP connection (outbox.py), each marked at once
  6. move       out of the watched folder into the outcome folder, by UID set; then marked

A crash anywhere, followed by a rerun, loses no message and gives none a second number; a
second reply is possible only between SMTP accepting it and step 5's mark. A failure belongs
to what caused it: a message that cannot be processed is quarantined after max_attempts, a
mail that cannot be sent fails on its own; a failure of the machine (disk full, no permission,
database locked) stops the cycle cleanly without counting against any message.
"""
from __future__ import annotations

import email.utils
import json
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from .. import faults
from ..casework import completeness, triage, trust, workflow
from ..casework.replies import context
from ..config import Config
from ..documents import promptpay
from ..errors import EnvironmentFailure, MailbotError, explain_environment
from ..mail import forwarded
from ..mail.mailbox import Fetched, Mailbox
from ..mail.outbox import Delivery, day_start
from ..mail.parse import Letter, Unparseable, our_message_ids, parse
from ..mail.smtp import Smtp
from ..ops import recovery
from ..ops.archive import Archive
from ..ops.recovery import Recovery
from ..registers.numbering import numbering_year
from ..store import iso
from ..thai import BANGKOK, one_line, thai_date_short, to_bangkok
from .classify import decide, reference

if TYPE_CHECKING:
    from ..casework.cases import Desk
    from ..casework.replies import Templates
    from ..casework.results import ResultsReport
    from ..config import Rules
    from ..mail.outbox import Outbox
    from ..ops.alerts import Alerts
    from ..store import State


class Parts(Protocol):
    """What a cycle works with: the office's parts (app.Office has them all)."""

    cfg: Config
    rules: "Rules"
    templates: "Templates"
    state: "State"
    desk: "Desk"
    outbox: "Outbox"
    alerts: "Alerts"
    clock: Clock

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Progress = Callable[[int, int], None]     # (messages done, messages to do)

REMARK_NO_ADDRESS = "ไม่มีที่อยู่สำหรับตอบกลับ"




@dataclass
class Handled:
    """One line of the cycle report."""

    uid: int
    sender: str
    subject: str
    outcome: str
    receipt: str | None = None
    reason: str = ""
    reply: str = ""


@dataclass
class CycleReport:
    handled: list[Handled] = field(default_factory=list)
    delivery: Delivery = field(default_factory=Delivery)   # what the outbox sent in this cycle
    backlog: int = 0              # replies still queued (global cap or SMTP trouble)
    batches: int = 0              # fetch batches used
    workflow: list[tuple[str, str]] = field(default_factory=list)  # (receipt, reminder/closing)
    results: "ResultsReport | None" = None
    registers: list[Path] = field(default_factory=list)
    register_failures: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    left_before_since: int = 0    # messages older than imap.since, left where they are
    recovery: Recovery | None = None   # when numbers issued earlier had to be found

    @property
    def smtp_error(self) -> MailbotError | None:
        return self.delivery.smtp_error

    @property
    def replies_sent(self) -> int:
        """Mail sent to citizens in this cycle (internal forwards, alerts and daily logs not counted)."""
        return self.delivery.replies_sent

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for h in self.handled:
            out[h.outcome] += 1
        return dict(out)


@dataclass
class _Plan:
    """What step 3 found out about one fetched message, before the commit."""

    fetched: Fetched
    row_id: int
    received: datetime
    archive: str | None = None
    sha256: str | None = None
    letter: Letter | None = None
    error: str | None = None      # parse/processing failure, for the attempt counter
    attempts: int = 1
    too_large: bool = False


class Cycle:
    """One cycle over one IMAP and one SMTP session, with the office's state and rules."""

    def __init__(self, office: Parts, mailbox: Mailbox, smtp: Smtp, stop: threading.Event | None = None,
                 progress: Progress | None = None) -> None:
        self.office = office
        self.cfg = office.cfg
        self.rules = office.rules
        self.templates = office.templates
        self.state = office.state
        self.desk = office.desk
        self.outbox = office.outbox
        self.clock = office.clock
        self.mb = mailbox
        self.smtp = smtp
        self.stop = stop   # set by the daemon on Ctrl-C / SIGTERM: finish the batch, then stop
        self.progress = progress
        self.archive = Archive(self.cfg.data_dir)
        self.report = CycleReport()
        self.account = self.cfg.account
        self.folder = self.cfg.imap.folder
        self.uidvalidity = 0
        self.smtp_down = False
        self.staff = {a.lower() for a in self.cfg.staff}
        self._new_cases: list = []  # numbered in this batch, for the receipt index
        self._flag: list[int] = []   # our own alerts in this batch: flagged, left in the inbox
        self._marked: list = []  # urgent or secret cases: officers alerted

    # ------------------------------------------------------------------ the cycle

    def run(self) -> CycleReport:
        self.uidvalidity = self.mb.select(self.folder)
        self._recover()
        old = self.state.check_uidvalidity(self.account, self.folder, self.uidvalidity, self.clock())
        if old is not None:
            text = (f"UIDVALIDITY ของโฟลเดอร์ {self.folder} เปลี่ยนจาก {old} เป็น {self.uidvalidity}: "
                    f"จับคู่ข้อความเดิมด้วย Message-ID/ค่าแฮช ไม่ประมวลผลซ้ำ / UIDVALIDITY of {self.folder} "
                    f"changed {old} -> {self.uidvalidity}; known messages are matched through the ledger")
            self.state.event(self.clock(), "warning", "uidvalidity", text)
            self.report.warnings.append(text)
        self._ensure_folders()
        uids = self.mb.uids()
        ledger = self.state.ledger(self.account, self.folder, self.uidvalidity, uids)

        # finish what an earlier run left: replies owed, messages decided but not moved
        self._send_queued()
        self._move_decided(set(uids))

        todo = [u for u in uids if u not in ledger or ledger[u].outcome is None]
        suspects = [u for u in todo if u in ledger]   # an earlier attempt did not finish
        fresh = [u for u in todo if u not in ledger]
        arrivals = self.mb.arrivals(fresh) if fresh else {}
        fresh = self._leave_old_mail(fresh, arrivals)
        self.report.left_before_since = self.state.before_since_count(self.account, self.folder, self.uidvalidity)
        batches = [[u] for u in suspects] + self._batches(fresh, arrivals)
        self.report.batches = len(batches)
        total, done = sum(len(b) for b in batches), 0
        for batch in batches:
            if self.stop is not None and self.stop.is_set():
                self.report.warnings.append("หยุดตามคำสั่ง งานที่เหลือทำรอบถัดไป / stop requested: the rest waits")
                break
            self._process_batch(batch)
            done += len(batch)
            if self.progress is not None:
                self.progress(done, total)
        for receipt, effect in self.desk.tick(self.clock()):   # reminders and closures due today
            self.report.workflow.append((receipt, effect or ""))
        results = self._results()
        self._send_queued()
        if results is not None and self.report.results is not None:
            results.settle(self.report.results)
        self.report.backlog = len(self.state.queued())
        return self.report

    def _recover(self) -> None:
        """Before any number is issued: the counters stand above every number ever issued (see
        recovery.py). Cheap when nothing was lost: only the receipt index is read."""
        st = self.state
        pending = st.get("recovery_pending")
        issued = st.issued()
        behind = any(top > issued.get(year, 0) for year, top in recovery.journal_top(self.cfg.data_dir).items())
        if not pending and not behind:
            return
        evidence = list(recovery.local_evidence(self.cfg).values())
        if pending:
            headers = []
            ours = f"@{self.cfg.agency.domain}>"
            for raw in self.mb.sent_headers():
                try:
                    letter = parse(raw + b"\r\n\r\n")
                except Unparseable:
                    continue
                mid = letter.message_id or ""
                if not (mid.startswith("<mailbot.") and mid.endswith(ours)):
                    continue          # only mailbot's own copies vouch for a number it issued
                headers.append((letter.subject, letter.to[0] if letter.to else "",
                                iso(letter.date) if letter.date else None))
            evidence += recovery.sent_evidence(headers)
        result = recovery.recover(st, evidence, self.cfg, self.rules, self.clock())
        st.put("recovery_pending", None)
        if result:
            text = "\n".join(result.lines())
            st.event(self.clock(), "warning", "recovery", text)
            self.report.warnings.append(text)
            self.report.recovery = result

    def since(self) -> datetime | None:
        """The start of imap.since (midnight in Bangkok), if configured."""
        day = self.cfg.imap.since
        return datetime.combine(day, time(0), BANGKOK) if day else None

    def _leave_old_mail(self, uids: list[int], arrivals: dict[int, tuple[int, datetime | None]]) -> list[int]:
        """Mail that reached the mailbox before imap.since is left where it is, unanswered; the
        ledger remembers it so it is not looked at again."""
        start = self.since()
        if start is None:
            return uids
        old = [u for u in uids if (arrivals.get(u, (0, None))[1] or start) < start]
        if old:
            self.state.leave_alone(self.account, self.folder, self.uidvalidity, old, iso(self.clock()))
        left = set(old)
        return [u for u in uids if u not in left]

    def _batches(self, uids: list[int], arrivals: dict[int, tuple[int, datetime | None]]) -> list[list[int]]:
        """Groups of at most batch_size UIDs and batch_megabytes of raw mail (one big message alone)."""
        if not uids:
            return []
        sizes = {u: arrivals.get(u, (0, None))[0] for u in uids}
        budget = self.cfg.imap.batch_megabytes * 1024 * 1024
        out: list[list[int]] = []
        current: list[int] = []
        used = 0
        for uid in uids:
            size = sizes.get(uid, 0)
            if current and (len(current) >= self.cfg.imap.batch_size or used + size > budget):
                out.append(current)
                current, used = [], 0
            current.append(uid)
            used += size
        out.append(current)
        return out

    def _ensure_folders(self) -> None:
        for name in self.cfg.folders.model_dump().values():
            self.mb.ensure_folder(name)

    # ------------------------------------------------------------------ steps 1-4

    def _process_batch(self, uids: list[int]) -> None:
        fetched = self.mb.fetch(uids)
        faults.point("after_fetch")
        # intent before work: the attempt counter goes up before parsing, so a message that
        # crashes the process every time is quarantined after max_attempts; a lost
        # connection before this point costs the messages nothing
        self.state.start_attempts(self.account, self.folder, self.uidvalidity, sorted(fetched))
        ledger = self.state.ledger(self.account, self.folder, self.uidvalidity, sorted(fetched))
        try:
            self._work_batch(uids, fetched, ledger)
        except Exception as exc:
            self._new_cases = []     # the batch's transaction was rolled back: no number was issued
            self._marked = []
            failure = explain_environment(exc, self.cfg.data_dir)
            if failure is None:
                raise
            # the machine failed, not these messages: their attempts do not count (best effort:
            # with the disk still full this write may fail too, and the next cycle tries again)
            try:
                self.state.release_attempts([entry.id for entry in ledger.values()])
            except Exception:  # noqa: BLE001
                log.warning("could not release the attempt counters after: %s", failure.english)
            raise failure from None

    def _work_batch(self, uids: list[int], fetched: dict, ledger: dict) -> None:
        plans: list[_Plan] = []
        now = self.clock()
        for uid in uids:
            item = fetched.get(uid)
            if item is None:   # expunged by someone else meanwhile: nothing to do
                continue
            entry = ledger[uid]
            received = item.internal_date or now
            start = self.since()
            if start is not None and received < start:   # never a register year before imap.since
                received = start
            plans.append(_Plan(item, entry.id, received, attempts=entry.attempts, error=entry.last_error))
        for plan in plans:   # disk full, no permission: the cycle stops (see _process_batch)
            plan.archive, plan.sha256 = self.archive.store(plan.fetched.raw, plan.received)
        faults.point("after_archive")
        for plan in plans:
            if plan.attempts > self.cfg.limits.max_attempts:
                continue  # quarantined without trying again
            try:
                if len(plan.fetched.raw) > self.cfg.limits.max_message_mb * 1024 * 1024:
                    plan.too_large = True     # kept whole in the archive; only its header is read
                    plan.letter = parse(plan.fetched.raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0])
                else:
                    plan.letter = parse(plan.fetched.raw)
                plan.error = None
            except Unparseable as exc:
                plan.error = f"unparseable: {exc}"
                plan.attempts = self.cfg.limits.max_attempts + 1  # no point retrying
            except Exception as exc:  # a bug of ours on odd input: retry, then quarantine
                plan.error = f"parse failed: {type(exc).__name__}: {exc}"
                log.exception("parse failed for UID %s", plan.fetched.uid)
        moves: dict[str, list[tuple[int, int]]] = defaultdict(list)
        handled_before = len(self.report.handled)
        with self.state.tx():
            for plan in plans:
                target = self._commit_one(plan, now)
                if target:
                    moves[target].append((plan.fetched.uid, plan.row_id))
            faults.point("after_decide")
        faults.point("after_commit")
        if self._new_cases:
            try:
                self.archive.record_receipts(self._new_cases)
            except OSError as exc:   # the database has them; the index is the second copy
                log.warning("receipt index not written: %s", exc)
            self._new_cases = []
        self._alert_marked(now)
        for h in self.report.handled[handled_before:]:
            log.info("UID %s %s %s %s", h.uid, h.outcome, h.receipt or "-", h.reason)
        self._send_queued()
        self._move(moves)
        if self._flag:
            self.mb.flag(self._flag)
            self._flag = []

    def _commit_one(self, plan: _Plan, now: datetime) -> str | None:
        """Decide and record one message inside the batch transaction; returns its folder."""
        st = self.state
        if st.message_outcome(plan.row_id) is not None:
            return None  # decided by a concurrent run
        if plan.letter is None:
            if plan.attempts <= self.cfg.limits.max_attempts:
                st.record_message(plan.row_id, last_error=plan.error, archive=plan.archive, sha256=plan.sha256)
                return None  # stays in the inbox, tried again next cycle
            return self._quarantine(plan, plan.error or "processing crashed repeatedly", now)
        reported, numbered = len(self.report.handled), len(self._new_cases)
        try:
            with st.tx():
                return self._decide_and_record(plan, now)
        except Exception as exc:  # noqa: BLE001 - a bug must not block the messages behind
            del self.report.handled[reported:]   # its savepoint was rolled back: nothing happened
            del self._new_cases[numbered:]
            self._marked = [m for m in self._marked if m[0]["id"] in {c["id"] for c in self._new_cases}]
            if explain_environment(exc, self.cfg.data_dir) is not None:
                raise                            # the machine's fault, not the message's
            log.exception("processing failed for UID %s", plan.fetched.uid)
            error = f"processing failed: {type(exc).__name__}: {exc}"
            if plan.attempts >= self.cfg.limits.max_attempts:
                return self._quarantine(plan, error, now)
            st.record_message(plan.row_id, last_error=error[:500])
            return None

    def _quarantine(self, plan: _Plan, reason: str, now: datetime) -> str | None:
        local = to_bangkok(plan.received)      # the file name carries the Buddhist-Era date, like the rest
        name = f"{local.year + 543}{local:%m%d-%H%M%S}-uid{plan.fetched.uid}"
        try:
            copy = self.archive.quarantine(plan.fetched.raw, name, reason)
        except OSError as exc:
            self.report.warnings.append(f"quarantine copy failed for UID {plan.fetched.uid}: {exc}")
            return None  # stays in the inbox
        folder = self.cfg.folders.quarantined
        self.state.record_message(
            plan.row_id, outcome="quarantined", reason=reason, quarantine_copy=copy, target_folder=folder,
            archive=plan.archive, sha256=plan.sha256, size=len(plan.fetched.raw),
            received_at=iso(plan.received), decided_at=iso(now), last_error=reason[:500],
        )
        self.report.handled.append(Handled(plan.fetched.uid, "", "", "quarantined", reason=reason))
        return folder

    def _decide_and_record(self, plan: _Plan, now: datetime) -> str | None:
        st, letter, f = self.state, plan.letter, self.cfg.folders
        assert letter is not None
        base = dict(
            message_id=letter.message_id, content_hash=letter.content_hash, sha256=plan.sha256,
            archive=plan.archive, size=letter.size, received_at=iso(plan.received),
            sender=letter.from_addr, subject=letter.subject[:500], decided_at=iso(now), last_error=None,
        )
        handled = Handled(plan.fetched.uid, letter.from_addr or "", letter.subject, "")
        self.report.handled.append(handled)
        if plan.too_large:
            return self._too_large(plan, letter, base, handled, now)

        if self._own_alert(letter):   # an alert to our own mailbox is for a person: kept there, flagged
            st.record_message(plan.row_id, **base, outcome="own_alert", moved=1, reason="mailbot alert kept in the inbox")
            handled.outcome, handled.reason = "own_alert", "mailbot alert: kept in the inbox, flagged"
            self._flag.append(plan.fetched.uid)
            return None

        dup = st.find_duplicate(plan.row_id, letter.content_hash, letter.message_id, letter.from_addr)
        if dup is not None:   # filed with the first copy: no number, no reply, not counted as a registration
            st.record_message(plan.row_id, **base, outcome="duplicate", duplicate_of=dup["id"],
                              case_id=dup["case_id"], target_folder=dup["target_folder"],
                              reason=f"duplicate of message #{dup['id']} ({dup['outcome']})")
            handled.outcome, handled.reason = "duplicate", "duplicate: same message already handled"
            if dup["case_id"]:
                handled.receipt = st.case_by_id(dup["case_id"])["receipt"]
            return dup["target_folder"]

        # trust: the receiving server's verdict, judged on the OUTER message (before a staff forward is unpacked)
        screening = trust.screen(letter, self.cfg.trust)
        hold = screening.hold
        via = None
        fwd = trust.staff_forward(letter, screening, staff=self.cfg.staff, own_address=self.cfg.agency.address,
                                  own_domains=tuple(self.cfg.agency.own_domains))
        if fwd.flag:
            hold = fwd.flag
        if fwd.take:
            original = forwarded.extract(letter, letter.embedded)
            if original is not None:   # wrong channel: register under the citizen who wrote
                via = letter.from_addr
                letter = replace(letter, subject=original.subject, from_name=original.from_name,
                                 from_addr=original.from_addr, reply_to=original.from_addr,
                                 body_text=original.text, new_text=original.text,
                                 attachments=original.attachments, message_id=None,
                                 in_reply_to=(), references=())
                handled.sender, handled.subject = original.from_addr, original.subject

        ref = reference(letter, own_names=(self.cfg.agency.name,))
        known, replies_to_us = self.desk.known_case(letter, ref)
        may_act = True
        if known is not None:
            may_act = trust.who_may_act(
                case_addresses=(known["sender_addr"], known["reply_to"]), sender=letter.from_addr,
                sender_is_staff=(letter.from_addr or "").lower() in self.staff,
                authenticated=screening.authenticated, held=bool(hold)) == "may_act"
        over_cap = ""
        looks = trust.looks_automatic(letter)
        if looks and known is None and letter.from_addr:
            today = st.cases_from_sender_since(letter.from_addr, day_start(now))
            over_cap = trust.new_case_cap(looks, today, self.cfg.trust.automatic_new_cases_per_day)
        decision = decide(letter, self.rules, own_address=self.cfg.agency.address,
                          own_domains=tuple(self.cfg.agency.own_domains),
                          known_case=known["receipt"] if known else None, replies_to_us=replies_to_us,
                          ref=ref, may_act=may_act, hold=hold, over_cap=over_cap)
        tri = triage.triage(letter.subject, plan.received)
        public_subject = triage.mask_subject(letter.subject, tri)
        handled.outcome, handled.reason = decision.outcome, decision.reason
        if decision.outcome == "automatic":
            bounced = self._bounced_replies(plan, now)
            if bounced:
                handled.reason += f"; bounce of our {', '.join(bounced)}"
            st.record_message(plan.row_id, **base, outcome="automatic", target_folder=f.automatic,
                              reason=handled.reason)
            return f.automatic
        if decision.outcome == "followup" and known is None:   # an inquiry about a number we never issued
            st.record_message(plan.row_id, **base, outcome="followup", reason=decision.reason,
                              target_folder=f.followup)
            if decision.flag:
                handled.reply = "held: " + decision.flag
                return f.followup
            ctx = context(self.cfg.agency, receipt=None, received_at=plan.received, subject=public_subject,
                          sender_name=letter.from_name)
            handled.reply = self.outbox.queue("status_private", recipient=letter.reply_to, subject=public_subject,
                                              in_reply_to=letter.message_id, references=letter.references,
                                              key=plan.row_id, key_hash=letter.content_hash, now=now, ctx=ctx,
                                              message_row=plan.row_id)
            return f.followup
        if decision.outcome == "followup":
            assert known is not None
            handled.receipt = known["receipt"]
            st.record_message(plan.row_id, **base, outcome="followup", reason=decision.reason,
                              case_id=known["id"], target_folder=f.followup)
            if decision.inquiry:
                handled.reply = self._answer_inquiry(known, letter, plan, now, held=decision.flag)
            else:
                handled.reply = self._followup(known, letter, plan, now)
            return f.followup
        if decision.outcome == "wrong_agency":
            referral = decision.match.referral
            assert referral is not None     # classify decides wrong_agency only on a referral's match
            st.record_message(plan.row_id, **base, outcome="wrong_agency", reason=decision.reason,
                              target_folder=f.wrong_agency)
            ctx = context(self.cfg.agency, receipt=None, received_at=plan.received, subject=public_subject,
                          sender_name=letter.from_name, referral=referral.model_dump())
            handled.reply = self.outbox.queue(
                "referral", recipient=letter.reply_to, subject=public_subject,
                in_reply_to=letter.message_id, references=letter.references, key=plan.row_id,
                key_hash=letter.content_hash, now=now, ctx=ctx, message_row=plan.row_id)
            return f.wrong_agency
        # registered: a service, or unclassified for the officer
        service = decision.match.service
        checklist = completeness.check(service, [completeness.File(a.name, a.size, a.content_type)
                                                 for a in letter.attachments if not a.inline])
        status = workflow.initial(service is not None, checklist.verdict)
        remarks = []
        if decision.flag and decision.flag == hold:
            remarks.append(trust.hold_remark(decision.flag))
        elif decision.flag:
            remarks.append(f"อ้างเป็นอีเมลของหน่วยงาน ไม่ตอบอัตโนมัติ (flagged: {decision.flag})")
        if tri.urgent:
            remarks.append(tri.urgency_label)
        if tri.secret:
            remarks.append(f"ชั้นความลับ: {tri.secrecy}")
        if not letter.reply_to:
            remarks.append(REMARK_NO_ADDRESS)
        if via:
            remarks.append(f"รับผ่านช่องทางอื่น ส่งต่อโดย {via}")
        case = st.new_case(
            numbering_year(plan.received, self.cfg.registers.year_reset),
            message_row=plan.row_id, received_at=iso(plan.received),
            doc_date=iso(letter.date) if letter.date else None,
            sender_name=one_line(letter.from_name, 120), sender_addr=letter.from_addr,
            reply_to=letter.reply_to, subject=one_line(letter.subject, 500),
            service_code=service.code if service else None,
            service_name=service.name if service else None,
            status=status,
            action=f"รับเรื่อง: {service.name}" if service else "รอเจ้าหน้าที่คัดแยก",
            remark="; ".join(remarks),
            message_id=letter.message_id, attachments=len([a for a in letter.attachments if not a.inline]),
            archive=plan.archive, sha256=plan.sha256, via=via,
            awaiting_since=iso(now) if status == "awaiting_documents" else None,
            checklist=json.dumps(checklist.as_dict(), ensure_ascii=False),
            urgency=tri.urgency_label or None, urgency_rank=tri.urgency_rank,
            deadline=iso(tri.deadline) if tri.deadline else None, secrecy=tri.secrecy or None,
            linked_to=known["receipt"] if decision.linked_case and known is not None else None,
            held=decision.flag or None,
            due_date=self._due(service, plan.received) if status != "awaiting_documents" else None,
        )
        self._new_cases.append(case)
        if tri.urgent or tri.secret:
            self._marked.append((case, tri))
        self.desk.add_files(case["id"], plan.row_id, letter.attachments, plan.received)
        st.record_message(plan.row_id, **base, outcome="registered", reason=decision.reason,
                          case_id=case["id"], target_folder=f.registered)
        handled.receipt = case["receipt"]
        if decision.linked_case and known is not None:   # someone else's case named: linked, its owner not mailed
            mine, theirs = trust.linked_notes(case["receipt"], known["receipt"])
            self.desk.event(case, plan.received, "linked", mine, message_row=plan.row_id)
            self.desk.event(known, plan.received, "linked", theirs, message_row=plan.row_id)
        if decision.flag and decision.flag != hold:   # claims to be us: never answered, never forwarded
            st.update_case(case["id"], reply_status="ไม่ตอบอัตโนมัติ (flagged)")
            handled.reply = "flagged: not answered"
            return f.registered
        ctx = self.desk.case_context(case, plan.received, checklist=checklist)
        fee = promptpay.fee_qr(service, case["receipt"])       # a service with a fee: the Thai QR code
        if fee is not None:
            ctx["fee"] = fee.context
        if tri.secret:
            ctx["subject"] = triage.SECRET_MASK
        # flagged: the receipt is composed but held for the officer (`release` sends it), never forwarded
        handled.reply = self.outbox.queue(
            "receipt" if service else "unclassified", recipient=letter.reply_to, subject=public_subject,
            receipt=case["receipt"], in_reply_to=letter.message_id, references=letter.references,
            key=plan.row_id, key_hash=letter.content_hash, now=now, ctx=ctx, case_id=case["id"],
            message_row=plan.row_id, files=(fee.attachment,) if fee else (),
            hold=f"flagged: {decision.flag}" if decision.flag else None)
        if decision.flag:
            return f.registered
        if service is not None and service.forward_to and not tri.secret:   # secret: never forwarded automatically
            self.report.warnings.extend(self.desk.forward(case, plan.fetched.raw, checklist, now))
        return f.registered

    def _due(self, service, received: datetime) -> str | None:
        s = self.cfg.schedule
        due = workflow.due_date(to_bangkok(received).date(), service.days if service else None, s.workdays, s.holidays)
        return due.isoformat() if due else None

    def _alert_marked(self, now: datetime) -> None:
        """Urgent requests: an immediate alert to the officers and the responsible unit. Secret
        ones: the officers are told (the subject never leaves in an alert)."""
        for case, tri in self._marked:
            service = self.desk.service(case["service_code"])
            units = tuple(email.utils.parseaddr(e)[1] for e in (service.forward_to if service else ())
                          if self.desk.allowed(email.utils.parseaddr(e)[1]))
            subject = triage.mask_subject(case["subject"] or "", tri)
            marks = " ".join(m for m in (tri.urgency_label, f"ชั้นความลับ: {tri.secrecy}" if tri.secret else "") if m)
            thai = (f"เรื่องเลขรับ {case['receipt']} {marks}: {subject} จาก {case['sender_addr'] or '-'} "
                    f"ดำเนินการก่อนเรื่องอื่น" + (" (เรื่องลับ ไม่ส่งต่ออัตโนมัติ เจ้าหน้าที่ต้องดำเนินการเอง)" if tri.secret else ""))
            english = (f"case {case['receipt']} is marked {'urgent' if tri.urgent else ''}"
                       f"{' and ' if tri.urgent and tri.secret else ''}{'secret' if tri.secret else ''}: handle it first")
            self.office.alerts.alert(f"marked-{case['receipt']}", thai, english, now,
                                     title=f"{marks} เลขรับ {case['receipt']}",
                                     also=units if tri.urgent and not tri.secret else ())
        self._marked = []

    def _own_alert(self, letter: Letter) -> bool:
        """Our own alert (its Message-ID is one mailbot queued as an alert, from our address)."""
        if not letter.message_id or (letter.from_addr or "").lower() != self.cfg.agency.address.lower():
            return False
        return self.state.is_alert_message(letter.message_id)

    def _too_large(self, plan: _Plan, letter: Letter, base: dict, handled: Handled, now: datetime) -> str | None:
        """Over limits.max_message_mb: kept (archive + quarantine), the sender told the limit."""
        limit = self.cfg.limits.max_message_mb
        size_mb = len(plan.fetched.raw) / 1024 / 1024
        reason = f"too large: {size_mb:.1f} MB > limit {limit:g} MB"
        folder = self._quarantine(plan, reason, now)
        if folder is None:
            return None
        self.state.record_message(plan.row_id, message_id=letter.message_id, content_hash=letter.content_hash,
                                  sender=letter.from_addr, subject=letter.subject[:500])
        self.report.handled.pop()          # _quarantine's own line; this message already has one
        handled.outcome, handled.reason = "quarantined", reason
        if not letter.auto_signals and not trust.screen(letter, self.cfg.trust).hold:
            # a secret subject is never echoed
            shown = triage.mask_subject(letter.subject, triage.triage(letter.subject, plan.received))
            ctx = context(self.cfg.agency, receipt=None, received_at=plan.received, subject=shown,
                          sender_name=letter.from_name)
            ctx["note"] = f"{limit:g}"
            ctx["size"] = f"{size_mb:.1f}"
            handled.reply = self.outbox.queue(
                "too_large", recipient=letter.reply_to, subject=shown,
                in_reply_to=letter.message_id, references=letter.references, key=plan.row_id,
                key_hash=letter.content_hash, now=now, ctx=ctx, message_row=plan.row_id)
        return folder

    def _bounced_replies(self, plan: _Plan, now: datetime) -> list[str]:
        """A delivery report about one of our messages: mark it and its case "ส่งอีเมลไม่สำเร็จ"."""
        found = []
        for mid in our_message_ids(plan.fetched.raw):
            row = self.state.outbox_by_message_id(mid)
            if row is None:
                continue
            self.state.mark_bounced(row["id"])
            found.append(row["kind"])
            if row["case_id"] is not None:
                case = self.state.case_by_id(row["case_id"])
                self.desk.event(case, plan.received, "bounce",
                                f"ส่งอีเมลไม่สำเร็จ {thai_date_short(plan.received)} ({row['kind']})",
                                message_row=plan.row_id)
                self.state.update_case(case["id"], reply_status="ส่งอีเมลไม่สำเร็จ — ติดต่อผู้ยื่นทางอื่น (bounced)")
        return found

    def _followup(self, case, letter: Letter, plan: _Plan, now: datetime) -> str:
        """More from the citizen on an existing case: noted; documents re-checked when awaited."""
        desk = self.desk
        files = [a for a in letter.attachments if not a.inline]
        note = f"ติดตาม/ส่งเพิ่มเติม {thai_date_short(plan.received)}"
        if files:
            note += f" (ไฟล์แนบ {len(files)})"
            desk.add_files(case["id"], plan.row_id, files, plan.received)
            self.state.update_case(case["id"], attachments=(case["attachments"] or 0) + len(files))
        desk.event(case, plan.received, "followup", note, message_row=plan.row_id)
        if files and case["status"] == "awaiting_documents":
            checklist = desk.checklist(case)
            desk.store_checklist(case["id"], checklist)
            event = {"complete": "documents_complete", "unsure": "documents_unsure"}.get(
                checklist.verdict, "documents_incomplete")
            effect = desk.apply(self.state.case_by_id(case["id"]), event, now, message_row=plan.row_id,
                                received_at=plan.received)
            return f"documents re-checked: {checklist.verdict} ({effect})"
        if self.state.followup_ack_since(case["id"], day_start(now)):
            return "acknowledged today already"
        fresh = self.state.case_by_id(case["id"])
        return desk.reply_about(fresh, "followup", now, key=plan.row_id, received_at=plan.received,
                                message_row=plan.row_id, attachments=len(files))   # this message's files only

    def _answer_inquiry(self, case, letter: Letter, plan: _Plan, now: datetime,
                        held: str = "") -> str:
        """Status goes only to the requester's address on file; anyone else is told so, nothing more."""
        desk = self.desk
        desk.event(case, plan.received, "inquiry", f"สอบถามสถานะ {thai_date_short(plan.received)}"
                   + ("" if desk.is_requester(case, letter.from_addr) else " (ผู้อื่น)"), message_row=plan.row_id)
        if held:
            return "held: " + held
        if desk.is_requester(case, letter.from_addr):
            fresh = self.state.case_by_id(case["id"])
            return desk.reply_about(fresh, "status", now, key=plan.row_id, received_at=plan.received,
                                    message_row=plan.row_id, history=desk.history(fresh, citizen=True))
        shown = triage.mask_subject(letter.subject, triage.triage(letter.subject, plan.received))   # never if secret
        ctx = context(self.cfg.agency, receipt=None, received_at=plan.received, subject=shown,
                      sender_name=letter.from_name)
        return self.outbox.queue("status_private", recipient=letter.reply_to, subject=shown,
                                 in_reply_to=letter.message_id, references=letter.references, key=plan.row_id,
                                 key_hash=letter.content_hash, now=now, ctx=ctx, message_row=plan.row_id)

    # ------------------------------------------------------------------ step 5

    def _send_queued(self) -> None:
        if self.smtp_down:
            return
        self.outbox.deliver(self.smtp, self.clock, self.report.delivery)
        if self.report.delivery.smtp_error is not None:
            self.smtp_down = True
        self._copy_to_sent()

    def _results(self):
        """Signed results from results/outbox (when a certificate is configured)."""
        if self.cfg.signing is None:
            return None
        from ..casework.results import Results  # pyHanko and fpdf2 load only where signing is configured

        try:
            results = Results(self.cfg, self.desk, self.clock)
            report = results.process(self.clock())
        except EnvironmentFailure:
            raise
        except MailbotError as exc:
            self.report.warnings.append(exc.plain())
            return None
        self.report.results = report
        for name, reason in report.problems:
            self.report.warnings.append(f"ไฟล์ผลการพิจารณามีปัญหา / result file problem: {name}: "
                                        + reason.splitlines()[0])
        for name, why in report.stuck:
            self.report.warnings.append(f"ไฟล์ผลการพิจารณา {name}: {why}")
        return results

    def _copy_to_sent(self) -> None:
        rows = self.state.uncopied()
        if not rows:
            return
        folder = self.mb.sent_folder()
        if folder:
            try:
                self.mb.append_sent_many(folder, [bytes(row["raw"]) for row in rows])
            except Exception as exc:  # noqa: BLE001 - a copy is a convenience, never a blocker
                self.report.warnings.append(f"copy to Sent failed: {type(exc).__name__}")
                return
        self.state.mark_copied([row["id"] for row in rows])

    # ------------------------------------------------------------------ step 6

    def _move_decided(self, present: set[int]) -> None:
        moves: dict[str, list[tuple[int, int]]] = defaultdict(list)
        gone = []
        for row in self.state.unmoved(self.account, self.folder, self.uidvalidity):
            if row["uid"] in present:
                moves[row["target_folder"]].append((row["uid"], row["id"]))
            else:
                gone.append(row["id"])
        if gone:
            self.state.mark_moved(gone)
        self._move(moves)

    def _move(self, moves: dict[str, list[tuple[int, int]]]) -> None:
        for folder, items in moves.items():
            self.mb.move([uid for uid, _ in items], folder)
            faults.point("after_move")
            self.state.mark_moved([row for _, row in items])


"""Kinds (pure): what each outcome of a message is, and what each kind of outgoing mail is.

Owns: the policy tables every other module reads instead of keeping its own sets —

* ``OUTCOMES``: for each outcome a message can get, the server folder it goes to (a key of
  ``folders:`` in mailbot.yaml), its Thai and English labels (poll summary, daily log, console),
  and whether the sender may get an automatic answer.
* ``MAIL_KINDS``: for each kind of mail mailbot sends, its template, its ``Auto-Submitted``
  value, whether the per-sender and hourly caps apply, whether it updates the case's
  การตอบกลับ (reply) column, whether it is internal (to staff, not a citizen: never counted as
  a reply to a citizen), whether it answers in the citizen's thread (``Re:`` + receipt tag), and
  whether it carries the citizen's files to staff (then it waits for a cycle's replies).
* ``REASONS``: for each technical reason mailbot records (a failed sender check, a spam score,
  a size over the limit...), the plain Thai sentence an officer and the register read; the
  technical text itself is kept for the console's รายละเอียด.
* ``SEND_STATES``: the states of an outgoing message, in Thai; ``UNSENT`` and ``UNDELIVERED``
  name the sets of them that queries use.

No I/O here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """What can happen to a message: each key is written here once; code names it
    ``Outcome.REGISTERED``, the store keeps its text."""

    REGISTERED = "registered"
    WRONG_AGENCY = "wrong_agency"
    FOLLOWUP = "followup"
    AUTOMATIC = "automatic"
    QUARANTINED = "quarantined"
    DUPLICATE = "duplicate"
    OWN_ALERT = "own_alert"
    BEFORE_SINCE = "before_since"


@dataclass(frozen=True)
class OutcomeRow:
    key: Outcome
    folder: str           # attribute of config.FoldersConfig ("" : no folder of its own)
    thai: str
    english: str
    reply: str | None     # the mail kind its sender usually gets (a key of MAIL_KINDS), if any

    @property
    def answered(self) -> bool:
        """The sender may get an automatic answer."""
        return self.reply is not None


O = Outcome
OUTCOMES: dict[str, OutcomeRow] = {o.key: o for o in (
    # a case with the next receipt number; "unclassified" instead of "receipt" when no service matched
    OutcomeRow(O.REGISTERED, "registered", "ลงทะเบียนรับ", "registered", "receipt"),
    OutcomeRow(O.WRONG_AGENCY, "wrong_agency", "แนะนำหน่วยงานอื่น", "wrong agency", "referral"),
    # "status" or "status_private" for a status inquiry; documents_* when awaited files came
    OutcomeRow(O.FOLLOWUP, "followup", "ติดตามเรื่องเดิม", "follow-up", "followup"),
    OutcomeRow(O.AUTOMATIC, "automatic", "อีเมลอัตโนมัติ (ไม่ตอบ)", "automatic (not answered)", None),
    # "too_large" when it was quarantined for its size
    OutcomeRow(O.QUARANTINED, "quarantined", "กักกัน", "quarantined", None),
    # the same message delivered again: filed with the first copy, no number, no reply
    OutcomeRow(O.DUPLICATE, "", "ฉบับซ้ำ (รับแล้ว)", "duplicate (already handled)", None),
    # an alert mailbot sent to the agency's own mailbox: left in the INBOX, flagged, for a person
    OutcomeRow(O.OWN_ALERT, "", "แจ้งเตือนของ mailbot (คงไว้ในกล่อง ติดดาว)",
               "mailbot's alert (kept in the inbox, flagged)", None),
    # left in the watched folder: arrived before imap.since (mailbot's start date)
    OutcomeRow(O.BEFORE_SINCE, "", "ก่อนวันเริ่มใช้ (ไม่แตะต้อง)", "older than imap.since (left alone)", None),
)}


def outcome_label(key: str | None) -> str:
    """The Thai label of an outcome (the key itself when unknown)."""
    o = OUTCOMES.get(key or "")
    return o.thai if o else (key or "")


@dataclass(frozen=True)
class MailKind:
    key: str
    thai: str                  # what the officer reads (console, case history, reply lists)
    when: str                  # when it is sent (documentation, `mailbot check`)
    template: str = ""         # templates/<template>.txt.j2; default: the key
    auto_submitted: str = "auto-replied"   # RFC 3834: auto-replied (an answer) | auto-generated
    capped: bool = True        # per-sender daily cap and hourly cap apply
    reply_column: bool = True  # its state shows in the case's การตอบกลับ column
    internal: bool = False     # to staff or officers, not to a citizen
    threaded: bool = True      # in the citizen's thread: "Re: <subject> [เลขรับ N/YYYY]"
    optional: bool = False     # its template may be absent (then nothing is sent)
    carries_files: bool = False   # to staff with the citizen's files: after a cycle's replies (outbox.forwards_last)

    @property
    def template_name(self) -> str:
        return self.template or self.key


MAIL_KINDS: dict[str, MailKind] = {k.key: k for k in (
    MailKind("receipt", "อีเมลตอบรับ", "registered, a service recognised (with the document checklist)"),
    MailKind("unclassified", "ตอบรับ (รอคัดแยก)", "registered, needs officer review"),
    MailKind("referral", "แนะนำหน่วยงานอื่น", "wrong agency: where to go instead"),
    MailKind("followup", "ตอบรับการติดตาม", "acknowledgement of a follow-up (at most once a day per case)"),
    MailKind("documents_complete", "แจ้งเอกสารครบ", "a case awaiting documents became complete"),
    MailKind("documents_unsure", "แจ้งรอตรวจเอกสาร", "a case awaiting documents received files; the officer checks"),
    MailKind("documents_still_missing", "แจ้งเอกสารยังไม่ครบ", "files received but documents still missing"),
    MailKind("reminder", "เตือนส่งเอกสาร", "no answer to a request for documents after reminder_days"),
    MailKind("closing_notice", "แจ้งยุติเรื่อง", "no answer after close_days more: the case is closed"),
    MailKind("status", "แจ้งสถานะ", "status inquiry from the requester: status and history"),
    MailKind("status_private", "แจ้งว่าสถานะส่งเฉพาะผู้ยื่น", "status inquiry from anyone else: status goes only to the requester"),
    MailKind("late_notice", "แจ้งเรื่องล่าช้า", "a case past its service time: the reason and the expected date, every 7 days",
             capped=False),
    MailKind("too_large", "แจ้งอีเมลใหญ่เกินกำหนด", "a message over limits.max_message_mb: kept, not processed; the sender told the limit"),
    MailKind("result", "ผลการพิจารณา", "the signed result PDF sent back to the requester", capped=False),
    MailKind("officer_status", "แจ้งสถานะใหม่", "an officer changed the case's status (templates/status_<status>.txt.j2)",
             template="status_{status_key}", capped=False, optional=True),
    MailKind("officer_message", "ข้อความจากเจ้าหน้าที่", "a message an officer chose to send the citizen (case set --tell)",
             capped=False),
    MailKind("forward", "ส่งต่อส่วนงาน", "internal forward of a case to a unit", auto_submitted="auto-generated",
             capped=False, reply_column=False, internal=True, threaded=False, carries_files=True),
    MailKind("alert", "แจ้งเตือน", "a problem the officers must fix (to alerts.to and supervisors, at most hourly)",
             auto_submitted="auto-generated", capped=False, reply_column=False, internal=True, threaded=False),
    MailKind("daily_report", "บันทึกประจำวัน", "the supervisors' daily log (xlsx attached)", auto_submitted="auto-generated",
             capped=False, reply_column=False, internal=True, threaded=False),
)}



def mail_kind(key: str | None) -> MailKind:
    """The kind of a stored outbox row. A key an earlier release wrote that this one no longer
    knows is never a crash: round 1 stored an officer's status mail as ``status_<status>``, which
    is ``officer_status`` now; anything else becomes a plain message to a citizen (uncapped: it
    was already allowed once), shown under the key it was stored with."""
    key = key or ""
    known = MAIL_KINDS.get(key)
    if known is not None:
        return known
    if key.startswith("status_"):
        return MailKind(key, MAIL_KINDS["officer_status"].thai, MAIL_KINDS["officer_status"].when, template=key,
                        capped=False, optional=True)
    return MailKind(key, key, "stored by an earlier release", capped=False)


def kind_label(key: str | None) -> str:
    """The Thai name of a mail kind (a key an earlier release stored: shown as stored)."""
    return mail_kind(key).thai


INTERNAL = frozenset(k for k, v in MAIL_KINDS.items() if v.internal)
UNCAPPED = frozenset(k for k, v in MAIL_KINDS.items() if not v.capped)

# the state of an outgoing message as the officer reads it (register column, case show, daily log)
SEND_STATES: dict[str, str] = {
    "queued": "รอส่ง",
    "sent": "ส่งแล้ว",
    "held": "ระงับไว้ รอเจ้าหน้าที่",
    "failed": "ส่งไม่สำเร็จ",
    "bounced": "ส่งอีเมลไม่สำเร็จ (ตีกลับ)",
    "discarded": "ยกเลิกโดยเจ้าหน้าที่",
}

# outgoing messages still waiting to go (a cancelled case's are discarded, never sent)
UNSENT = frozenset({"queued", "held"})
# outgoing messages that did not reach their recipient (the console's work queue lists them)
UNDELIVERED = frozenset({"bounced", "failed"})
assert UNSENT <= SEND_STATES.keys() and UNDELIVERED <= SEND_STATES.keys()


def send_state(status: str | None) -> str:
    return SEND_STATES.get(status or "", status or "")

# each outcome's usual reply is a kind of mail this table knows, and every outcome has its row
assert set(OUTCOMES) == set(Outcome) and all(o.reply is None or o.reply in MAIL_KINDS for o in OUTCOMES.values())


# ---------------------------------------------------------------------------- reasons, in Thai

# (pattern on the technical reason, the sentence people read); first match wins. The reasons are
# written by casework.trust, intake.verdict and the store (quarantine); older releases' texts too.
REASONS: tuple[tuple[str, str], ...] = (
    (r"^authentication failed", "เซิร์ฟเวอร์อีเมลตรวจแล้วว่าอีเมลนี้อาจไม่ได้ส่งมาจากผู้ส่งที่ระบุไว้"),
    (r"^the sender's name shows another address", "ชื่อผู้ส่งแสดงที่อยู่อีเมลอื่น ไม่ตรงกับที่อยู่ที่ส่งมาจริง"),
    (r"^forged authentication-results", "อีเมลแนบผลการตรวจสอบผู้ส่งที่ปลอมขึ้นมา"),
    (r"^x-spam-flag|^spam score|^microsoft scl|^spam\b", "ระบบกรองอีเมลขยะระบุว่าเป็นอีเมลขยะ"),
    (r"^sender on trust\.blocklist", "ผู้ส่งอยู่ในรายชื่อที่หน่วยงานปิดกั้นไว้"),
    (r"^staff forward from .* not vouched for", "อีเมลส่งต่อที่อ้างว่ามาจากเจ้าหน้าที่ แต่ยังยืนยันไม่ได้ว่าเจ้าหน้าที่ส่งจริง"),
    (r"^(staff forward )?sent from our own address", "อีเมลอ้างว่าส่งจากที่อยู่อีเมลของหน่วยงานเอง"),
    (r"^(staff forward )?from our own domain", "อีเมลอ้างว่ามาจากโดเมนของหน่วยงาน แต่ตรวจสอบไม่ผ่าน"),
    (r"^too large", "อีเมลมีขนาดใหญ่เกินกว่าที่รับได้"),
    (r"^claims to be the agency", "อีเมลอ้างว่าส่งจากหน่วยงานเอง"),
    (r"^(could not|cannot) be (read|parsed)|^unreadable|^unparseable|^parse", "อ่านอีเมลฉบับนี้ไม่ได้ (รูปแบบเสียหาย)"),
    (r"^[45]\d\d\b|^[45]\.\d\.\d|recipient|mailbox (unavailable|full)|user unknown|refused",
     "เซิร์ฟเวอร์อีเมลปลายทางไม่รับอีเมลฉบับนี้"),
    (r"^processing stopped", "การทำงานหยุดกลางคันซ้ำหลายครั้งขณะจัดการอีเมลฉบับนี้"),
    (r"^(processing failed|error|crash|bug|internal)", "เกิดข้อผิดพลาดซ้ำหลายครั้งขณะจัดการอีเมลฉบับนี้"),
)
UNKNOWN_REASON = "ตรวจพบความผิดปกติ ดูรายละเอียดทางเทคนิค"


def reason_parts(text: str | None) -> list[str]:
    """A recorded reason split into its parts ("a; b"), without the "flagged:" prefix and the
    quarantine copy's file name."""
    text = re.sub(r"\s*\(copy: [^)]*\)", "", text or "")
    text = re.sub(r"^\s*flagged:\s*", "", text.strip(), flags=re.I)
    return [p.strip() for p in re.split(r";\s*", text) if p.strip()]


def explain(text: str | None) -> str:
    """The reason(s) as plain Thai, one sentence each, each once ("" for no reason). A text that
    is Thai already stays as it is."""
    out: list[str] = []
    for part in reason_parts(text):
        if re.search("[\u0e00-\u0e7f]", part):
            thai = part.split(" / ")[0].strip()        # "Thai / English": the Thai half
        else:
            low = re.sub(r"^flagged:\s*", "", part.lower())
            thai = next((t for pattern, t in REASONS if re.search(pattern, low)), UNKNOWN_REASON)
            if low.startswith("names case "):
                continue
        if thai not in out:
            out.append(thai)
    return " · ".join(out)

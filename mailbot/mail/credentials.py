"""Credentials: where refresh tokens, access tokens and client secrets are kept.

Owns: the secret store. On Windows (and wherever ``keyring`` finds a real credential store:
macOS Keychain, the Secret Service) secrets go to the operating system's store under the
service name ``mailbot``; a value longer than Windows Credential Manager takes (2,560 bytes,
UTF-16) is split over several entries. Where no such store exists, they go to one JSON file
readable only by its owner (0600, in a 0700 folder) under the data folder:
``<data>/secrets/credentials.json``; once that file exists, ``auto`` keeps using it (a store that
appears later does not hide what is in it). Nothing here is ever written to mailbot.yaml, the logs,
the state database, the registers or a backup (``mailbot backup`` copies only the database,
the archive, the registers and the signed results).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from ..errors import MailbotError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

SERVICE = "mailbot"
CHUNK = 1000              # characters per Credential Manager entry (2,560 bytes as UTF-16)
_HEADER = "mailbot-chunks:"


def keyring_backend() -> KeyringBackend | None:
    """The operating system's credential store through keyring, or None where there is none."""
    try:
        import keyring
        from keyring.backends import fail
    except Exception:  # noqa: BLE001 - keyring missing or broken: the file store serves
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001
        return None
    if isinstance(backend, fail.Keyring):
        return None
    try:
        if float(backend.priority) < 1:   # the "fail" and "null" backends, plaintext ones
            return None
    except Exception:  # noqa: BLE001
        return None
    if getattr(backend, "backends", None) == []:   # a chainer with nothing behind it
        return None
    return backend


class Store:
    """get/set/delete secrets by name; ``kind`` is "keyring" or "file"."""

    def __init__(self, data_dir: Path, prefer: str = "auto") -> None:
        self.data_dir = Path(data_dir)
        self.folder = self.data_dir / "secrets"
        self.path = self.folder / "credentials.json"
        self.backend: KeyringBackend | None = None
        if os.environ.get("MAILBOT_SECRET_STORE") == "file":
            prefer = "file"      # a host's process: one file per agency (host.console.use_host_secrets)
        if prefer == "auto" and self.path.is_file():
            # secrets already kept in the file stay there: a credential store that appears later
            # (a Secret Service installed, a desktop session) must not hide them (the audit
            # chain's key, a refresh token, a password); and a start then skips keyring's search
            # for a backend (0.13-0.2 s on every poll here)
            prefer = "file"
        if prefer in ("auto", "keyring"):
            self.backend = keyring_backend()
            if self.backend is None and prefer == "keyring":
                raise MailbotError(
                    "ไม่พบที่เก็บรหัสผ่านของระบบปฏิบัติการ ให้ตั้ง oauth2.store เป็น auto หรือ file",
                    "no operating-system credential store found (keyring); set oauth2.store to auto or file",
                )
        self.kind = "keyring" if self.backend is not None else "file"

    def where(self) -> str:
        if self.backend is not None:
            name = "Windows Credential Manager" if sys.platform == "win32" else type(self.backend).__name__
            return f"{name} (keyring, service '{SERVICE}')"
        return str(self.path)

    # ------------------------------------------------------------------ API

    def get(self, name: str) -> str | None:
        if self.backend is not None:
            return self._kr_get(name)
        return self._read().get(name)

    def set(self, name: str, value: str) -> None:
        if self.backend is not None:
            self._kr_set(name, value)
            return
        with self._lock():
            data = self._read()
            data[name] = value
            self._write(data)

    def delete(self, name: str) -> None:
        if self.backend is not None:
            self._kr_delete(name)
            return
        with self._lock():
            data = self._read()
            if data.pop(name, None) is not None:
                self._write(data)

    # ------------------------------------------------------------------ keyring (chunked)

    def _keyring(self) -> KeyringBackend:
        """The operating system's store; the _kr_ methods are reached only when it is in use."""
        if self.backend is None:
            raise RuntimeError("the credential store is the file, not the keyring")
        return self.backend

    def _kr_get(self, name: str) -> str | None:
        kr = self._keyring()
        try:
            head = kr.get_password(SERVICE, name)
            if head is None or not head.startswith(_HEADER):
                return head
            count = int(head[len(_HEADER):])
            parts = [kr.get_password(SERVICE, f"{name}#{i}") for i in range(count)]
        except Exception as exc:  # noqa: BLE001 - a locked or broken store: say so plainly
            raise self._failed(exc) from None
        found = [p for p in parts if p is not None]
        if len(found) < count:       # a chunk is missing
            return None
        return "".join(found)

    def _kr_set(self, name: str, value: str) -> None:
        kr = self._keyring()
        try:
            old = kr.get_password(SERVICE, name)
            if len(value) <= CHUNK and not value.startswith(_HEADER):
                kr.set_password(SERVICE, name, value)
                new_count = 0
            else:
                parts = [value[i:i + CHUNK] for i in range(0, len(value), CHUNK)]
                for i, part in enumerate(parts):
                    kr.set_password(SERVICE, f"{name}#{i}", part)
                kr.set_password(SERVICE, name, f"{_HEADER}{len(parts)}")
                new_count = len(parts)
            if old and old.startswith(_HEADER):
                for i in range(new_count, int(old[len(_HEADER):])):
                    self._kr_remove(f"{name}#{i}")
        except MailbotError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._failed(exc) from None

    def _kr_delete(self, name: str) -> None:
        kr = self._keyring()
        try:
            old = kr.get_password(SERVICE, name)
        except Exception as exc:  # noqa: BLE001
            raise self._failed(exc) from None
        if old is None:
            return
        if old.startswith(_HEADER):
            for i in range(int(old[len(_HEADER):])):
                self._kr_remove(f"{name}#{i}")
        self._kr_remove(name)

    def _kr_remove(self, name: str) -> None:
        kr = self._keyring()
        try:
            kr.delete_password(SERVICE, name)
        except Exception:  # noqa: BLE001 - already gone
            pass

    @staticmethod
    def _failed(exc: Exception) -> MailbotError:
        return MailbotError(
            "อ่านหรือเขียนที่เก็บรหัสผ่านของระบบไม่ได้",
            f"the operating-system credential store failed ({type(exc).__name__})",
            "ลองตั้ง oauth2.store: file / try oauth2.store: file",
        )

    # ------------------------------------------------------------------ file

    def _lock(self) -> FileLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        _owner_only(self.folder, 0o700)
        return FileLock(str(self.folder / ".credentials.lock"))

    def _read(self) -> dict[str, str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise MailbotError(f"อ่านแฟ้มเก็บรหัสลับไม่ได้: {self.path}",
                               f"cannot read the secrets file {self.path} ({type(exc).__name__})") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise MailbotError(f"แฟ้มเก็บรหัสลับเสียหาย: {self.path} ลบแฟ้มนี้แล้วเข้าสู่ระบบใหม่ด้วย mailbot login",
                               f"the secrets file is damaged: {self.path}; delete it and run: mailbot login") from None
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write(self, data: dict[str, str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _owner_only(self.folder, 0o700)
        fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=self.folder)   # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            _owner_only(Path(tmp), 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _owner_only(path: Path, mode: int) -> None:
    """chmod where the file system has POSIX modes (on Windows the user profile's ACL applies)."""
    if os.name == "posix":
        try:
            os.chmod(path, mode)
        except OSError:
            pass


# ---------------------------------------------------------------------------- mail server passwords

def password_name(section: str, user: str) -> str:
    """The name a server's password is kept under: one per server kind and mailbox, so that two
    workspaces on one computer keep their own."""
    return f"{section}-password:{user.strip().lower()}"


def server_password(server, section: str) -> str:
    """The password ``server`` (an imap or smtp section) signs in with: from the credential store
    when ``password_store`` (the console's setup put it there), else as the config says."""
    if not getattr(server, "password_store", False):
        return server.require_secret(section)
    from ..errors import ConfigError

    root = server.root
    store = Store(root.data_dir if root is not None else Path("data"))
    value = store.get(password_name(section, server.login_name()))
    if value:
        return value
    raise ConfigError(
        f"ยังไม่ได้ใส่รหัสผ่านของ {section.upper()} ในที่เก็บรหัสผ่าน: เปิดหน้าจอเจ้าหน้าที่ > ตั้งค่า > กล่องอีเมล แล้วใส่รหัสผ่าน",
        f"the {section} password is not in the credential store: open the console, Settings, Mailbox, and enter it",
    )


def save_server_password(server, section: str, password: str) -> str:
    """Keep ``password`` for ``server`` in the credential store; where it went, for the officer."""
    root = server.root
    store = Store(root.data_dir if root is not None else Path("data"))
    store.set(password_name(section, server.login_name()), password)
    return store.where()

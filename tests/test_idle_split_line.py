"""IMAP IDLE when the server sends a line in two pieces (slow tier: a timed wait on a socket).

imapclient's ``idle_check`` reads without blocking, so a response line that arrives in two TCP
pieces ("* 1 FETCH (" ... "FLAGS (\\Recent))") reached it half-read: imaplib raised
"unterminated line", and the half left behind broke the answer to DONE ("unexpected response").
Seen once in CI with pymap. A scripted server here sends exactly that, every time."""
from __future__ import annotations

import socket
import threading
import time

import pytest

pytestmark = pytest.mark.slow


class SplitLineServer:
    """A one-connection IMAP server on 127.0.0.1 that, in IDLE, sends an untagged FETCH in two
    pieces 0.3 s apart, then answers DONE and the SEARCH that follows."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(20)
        f = conn.makefile("rb")
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS] ready\r\n")
        idle_tag = None
        while True:
            line = f.readline()
            if not line:
                return
            text = line.decode().rstrip("\r\n")
            self.seen.append(text)
            if text == "DONE" and idle_tag:
                conn.sendall(f"{idle_tag} OK IDLE terminated\r\n".encode())
                idle_tag = None
                continue
            tag, _, rest = text.partition(" ")
            command = rest.split(" ")[0].upper()
            if command == "CAPABILITY":
                conn.sendall(f"* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n{tag} OK done\r\n".encode())
            elif command in ("SELECT", "EXAMINE"):
                conn.sendall(f"* 0 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 1] ok\r\n"
                             f"{tag} OK [READ-WRITE] done\r\n".encode())
            elif command == "IDLE":
                idle_tag = tag
                conn.sendall(b"+ idling\r\n")
                time.sleep(0.3)
                conn.sendall(b"* 1 EXISTS\r\n* 1 FETCH (")        # the line cut in two
                time.sleep(0.3)
                conn.sendall(b"FLAGS (\\Recent))\r\n")
            elif command == "UID" and rest.split(" ")[1].upper() == "SEARCH":
                conn.sendall(f"* SEARCH 1\r\n{tag} OK done\r\n".encode())
            elif command == "LOGOUT":
                conn.sendall(f"* BYE bye\r\n{tag} OK done\r\n".encode())
                conn.close()
                return
            else:
                conn.sendall(f"{tag} OK done\r\n".encode())


def test_a_line_that_comes_in_two_pieces_during_idle_is_read_whole():
    from mailbot.config import ImapConfig
    from mailbot.mail.wire import REAL

    server = SplitLineServer()
    cfg = ImapConfig(host="127.0.0.1", port=server.port, security="none", username="saraban", password="pw",
                     timeout_seconds=10)
    with REAL.mailbox(cfg) as mb:
        assert type(mb.c).__name__ == "IMAPClient"            # the real client, not a test double
        assert mb.wait_for_new_mail(threading.Event(), rearm_seconds=10) is True
    assert "DONE" in server.seen and any("SEARCH" in s for s in server.seen)

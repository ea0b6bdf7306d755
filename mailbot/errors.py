"""The small exception hierarchy: every error an officer may see, in Thai then English.

Owns: the message texts of failures that stop a command. Each carries ``thai`` and
``english`` so the CLI prints both, never a traceback (unless ``--debug``).
"""
from __future__ import annotations


class MailbotError(Exception):
    """Base: a failure with a plain-language explanation in Thai and English."""

    exit_code = 1

    def __init__(self, thai: str, english: str, detail: str = "") -> None:
        super().__init__(english)
        self.thai = thai
        self.english = english
        self.detail = detail

    def plain(self) -> str:
        lines = [self.thai, self.english]
        if self.detail:
            lines.append(self.detail)
        return "\n".join(lines)


class ConfigError(MailbotError):
    """mailbot.yaml is missing, unreadable or invalid."""

    exit_code = 2


class RulesError(MailbotError):
    """rules.yaml is missing, unreadable or invalid."""

    exit_code = 2


class TemplateError(MailbotError):
    """A reply template is missing or does not render."""

    exit_code = 2


class ConnectionFailure(MailbotError):
    """The mail server could not be reached or refused the login."""

    exit_code = 3


class AlreadyRunning(MailbotError):
    """Another mailbot is working on the same data folder."""

    exit_code = 4

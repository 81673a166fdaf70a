"""A real SMTP server on loopback (aiosmtpd), collecting what it is sent: the e-mail
tests' mail server, as tests/push_service.py is their push service. It can be stopped
and started again on the same port, to test a mail server that is down."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: Message


@dataclass
class _Collector:
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's name
        content = envelope.original_content or b""
        with self.lock:
            self.messages.append(
                Received(
                    str(envelope.mail_from),
                    [str(r) for r in envelope.rcpt_tos],
                    message_from_bytes(content),
                )
            )
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """`with SmtpServer() as smtp:` ... smtp.port, smtp.messages; stop()/start() to take it
    down and bring it back on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._collector = _Collector()
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[Received]:
        with self._collector.lock:
            return list(self._collector.messages)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]

    def start(self) -> None:
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.stop()

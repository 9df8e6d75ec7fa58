"""The refusal every certs service raises: a stable code for programs, a message for the admin."""

from __future__ import annotations


class ServiceError(Exception):
    """A refused change, with a stable code and a message for the admin."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

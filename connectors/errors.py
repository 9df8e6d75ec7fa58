"""The refusal every connector service raises; the agent API and the pages render it as is."""

from __future__ import annotations


class ConnectorError(Exception):
    """A refusal with a stable code the API returns as is."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

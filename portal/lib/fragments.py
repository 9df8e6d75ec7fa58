"""Rendered pieces of pages, kept in this process while nothing they show can have changed.

A piece is kept under a key that names everything it depends on, so a different key is a
different piece and a kept piece is never shown where it does not belong. The caller builds the
key from, typically:

- a clock that moves with every change to the data (the portal's is the newest audit event:
  ``portal.summaries.change_clock``), so a change shows at once;
- who looks: the viewer's effective scope (``portal.access.viewer_key``), so an admin never gets
  a piece rendered for someone who may see more;
- what was asked: the page's parameters.

Every piece is also dropped ``max_age`` seconds after it was rendered, whatever its key: that
bounds what a key cannot see (the time of day a certificate expires at, a change whose
transaction commits out of order). Pieces are rendered outside the lock: two threads missing
the same piece at once both render it, and the second result is kept.

Keep only markup that is the same for every viewer with the same key: never a CSRF token, a
message or a name of the signed-in admin (render pieces without the request to make sure). A
piece with forms renders with ``{"csrf_token": CSRF_SLOT}`` in its context, so ``{% csrf_token %}``
writes the slot, and ``with_csrf_token`` puts the request's own token in each time it is shown.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from django.http import HttpRequest
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH, get_token
from django.utils.safestring import SafeString, mark_safe

# What ``{% csrf_token %}`` writes in a kept piece in place of a token; no token looks like it.
CSRF_SLOT = "csrf-token-slot"


def with_csrf_token(piece: str, request: HttpRequest) -> SafeString:
    """A kept ``piece`` (markup rendered by a template) with the request's CSRF token in every slot.

    The token is letters and digits only, so the markup stays as safe as it was rendered."""
    return mark_safe(piece.replace(CSRF_SLOT, csrf_token(request)))


_CHARS = CSRF_ALLOWED_CHARS
_INDEX = {c: i for i, c in enumerate(_CHARS)}


def csrf_token(request: HttpRequest) -> str:
    """The request's CSRF token, as ``django.middleware.csrf.get_token`` gives it.

    Django draws the token's mask one character at a time from the system's random source (32
    reads, about 85 µs); a kept page is shown in little more than that, so the mask is drawn here
    from one read of 24 bytes (192 bits, more than the 32 base-62 characters hold). Nor is the
    cookie the browser already holds sent again to push its expiry a year on (Django does, at
    the cost of writing an HTTP date on every page); when it does expire, the next page gets a new
    one. A request without a CSRF cookie yet goes to Django, which makes the secret and sets it.
    """
    secret = request.META.get("CSRF_COOKIE")
    if not isinstance(secret, str) or len(secret) != CSRF_SECRET_LENGTH:
        return get_token(request)
    n = int.from_bytes(os.urandom(24))
    size = len(_CHARS)
    mask: list[int] = []
    for _ in range(CSRF_SECRET_LENGTH):
        n, digit = divmod(n, size)
        mask.append(digit)
    masked = "".join(_CHARS[(_INDEX[c] + m) % size] for c, m in zip(secret, mask, strict=True))
    return "".join(_CHARS[m] for m in mask) + masked


def _now() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class _Piece:
    at: float
    text: str


class Fragments:
    """A bounded store of rendered pieces: the least recently used go first."""

    def __init__(self, *, max_entries: int = 256, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._pieces: OrderedDict[Hashable, _Piece] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def peek(self, key: Hashable, *, max_age: float) -> str | None:
        """The piece kept under ``key`` if younger than ``max_age`` seconds, else None."""
        with self._lock:
            found = self._pieces.get(key)
            if found is None or _now() - found.at >= max_age:
                return None
            self._pieces.move_to_end(key)
            self.hits += 1
            return found.text

    def kept(
        self,
        key: Hashable,
        render: Callable[[], str],
        *,
        max_age: float,
        keep: Callable[[], bool] | None = None,
    ) -> str:
        """The piece kept under ``key`` if younger than ``max_age`` seconds, else ``render()``.

        ``keep``, asked after rendering, may refuse to keep what was rendered (the caller knows
        it was built from values older than its key says).
        """
        now = _now()
        with self._lock:
            found = self._pieces.get(key)
            if found is not None and now - found.at < max_age:
                self._pieces.move_to_end(key)
                self.hits += 1
                return found.text
        text = render()
        keeping = (keep is None or keep()) and len(text) <= self.max_bytes
        with self._lock:
            self.misses += 1
            if keeping:
                self._drop(key)
                # Timed from before rendering: never younger than it is.
                self._pieces[key] = _Piece(now, text)
                self._bytes += len(text)
                while len(self._pieces) > self.max_entries or self._bytes > self.max_bytes:
                    self._drop(next(iter(self._pieces)))
        return text

    def _drop(self, key: Hashable) -> None:
        gone = self._pieces.pop(key, None)
        if gone is not None:
            self._bytes -= len(gone.text)

    def forget(self) -> None:
        """Drop every piece."""
        with self._lock:
            self._pieces.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._pieces)

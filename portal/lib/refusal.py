"""The one way a service refuses a change, and the one way each kind of caller shows it.

A service that will not make a change raises :class:`Refused` with a stable snake_case ``code``
(API clients, tests and support rely on it, so it never changes once released) and a ``message``
written for the admin. ``status`` is the HTTP status an API answers with; ``field`` names the
form field the refusal is about, when there is one.

- Pages: ``with refusal.shown(request, form): ...`` puts a refusal raised in the block on the form,
  next to its field, or (without a form) among the page's messages, and the view goes on after the
  block. Only refusals are caught: anything else is a bug and still fails the request.
- JSON APIs: :func:`json_response`, ``{"error": {"code": ..., "message": ...}}`` with ``status``,
  or the :func:`answers_json` decorator around a view.
- Management commands: :func:`command_error`, or the :func:`stops_command` decorator on ``handle``.

Models keep validating with Django's ``ValidationError``; a service runs that validation with
:func:`full_clean`, which turns it into a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from functools import wraps
from types import TracebackType
from typing import Self

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import CommandError
from django.db import models
from django.forms import BaseForm
from django.http import HttpRequest, JsonResponse

_CODE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")

# The code of a model validation error that names none of its own.
INVALID = "invalid"


class Refused(Exception):
    """A change a service will not make: a stable code for programs, a message for the admin."""

    def __init__(self, code: str, message: str, *, status: int = 400, field: str | None = None) -> None:
        if not _CODE.fullmatch(code):
            raise ValueError(f"a refusal's code is snake_case, not {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field

    def __repr__(self) -> str:
        return f"Refused({self.code!r}, {self.message!r}, status={self.status}, field={self.field!r})"

    @property
    def text(self) -> str:
        """What a page shows: the message, then the code that support and the docs search by."""
        return f"{self.message} (code {self.code})"

    def as_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> Refused:
        """A model's validation failure as a refusal: the first error's code, every message, and the
        field when all the errors are about one field."""
        by_field = exc.error_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.error_list}
        errors = [error for field_errors in by_field.values() for error in field_errors]
        code = errors[0].code if errors else None
        fields = set(by_field) - {NON_FIELD_ERRORS}
        return cls(
            code if isinstance(code, str) and _CODE.fullmatch(code) else INVALID,
            " ".join(exc.messages) or "The change is not valid.",
            field=fields.pop() if len(fields) == 1 and len(by_field) == 1 else None,
        )


def full_clean(instance: models.Model, *, exclude: Collection[str] | None = None) -> None:
    """Validate ``instance`` as ``Model.full_clean`` does, refusing with what it found."""
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as exc:
        raise Refused.from_validation_error(exc) from exc


# --- Pages ------------------------------------------------------------------------------------


def show(request: HttpRequest, refused: Refused, form: BaseForm | None = None, *, field: str = "") -> None:
    """Put ``refused`` on ``form`` (next to its field, else ``field``, else above the form), or
    without a form among the messages of the next page."""
    if form is None:
        messages.error(request, refused.text)
        return
    on = next((name for name in (refused.field, field) if name and name in form.fields), None)
    form.add_error(on, refused.text)


class Shown:
    """The context manager of :func:`shown`; ``refused`` is what the block raised, if anything."""

    def __init__(self, request: HttpRequest, form: BaseForm | None, field: str) -> None:
        self.request, self.form, self.field = request, form, field
        self.refused: Refused | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        if not isinstance(exc, Refused):
            return False
        self.refused = exc
        show(self.request, exc, self.form, field=self.field)
        return True


def shown(request: HttpRequest, form: BaseForm | None = None, *, field: str = "") -> Shown:
    """Show a refusal raised inside the ``with`` block (see :func:`show`) and carry on after it.

    The rest of the block is skipped, so the block ends with what follows success (a message,
    a redirect) and the code after it renders the page again::

        with refusal.shown(request, form):
            role = services.role_create(...)
            return redirect("role_detail", code=role.code)
        return render(request, "role_form.html", {"form": form})
    """
    return Shown(request, form, field)


# --- JSON APIs --------------------------------------------------------------------------------


def json_response(refused: Refused) -> JsonResponse:
    return JsonResponse(refused.as_json(), status=refused.status)


def answers_json[**P](view: Callable[P, JsonResponse]) -> Callable[P, JsonResponse]:
    """Answer a refusal raised by ``view`` with :func:`json_response`."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> JsonResponse:
        try:
            return view(*args, **kwargs)
        except Refused as exc:
            return json_response(exc)

    return wrapped


# --- Management commands ----------------------------------------------------------------------


def command_error(refused: Refused) -> CommandError:
    """The command's error line, ``code: message`` like the other command-line problems."""
    return CommandError(f"{refused.code}: {refused.message}")


def stops_command[**P, R](handle: Callable[P, R]) -> Callable[P, R]:
    """Stop the command with :func:`command_error` when ``handle`` raises a refusal."""

    @wraps(handle)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return handle(*args, **kwargs)
        except Refused as exc:
            raise command_error(exc) from exc

    return wrapped

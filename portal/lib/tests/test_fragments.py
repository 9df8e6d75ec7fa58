from __future__ import annotations

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CsrfViewMiddleware
from django.test import RequestFactory
from django.utils.crypto import get_random_string

from portal.lib import fragments
from portal.lib.fragments import Fragments


class Renderer:
    """Renders ``text`` and counts how often it was asked to."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.text


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(fragments, "_now", lambda: now[0])
    return now


def test_a_kept_piece_is_shown_again_without_rendering_it(clock: list[float]) -> None:
    store, render = Fragments(), Renderer("<p>rows</p>")
    assert store.kept("list", render, max_age=60) == "<p>rows</p>"
    assert store.kept("list", render, max_age=60) == "<p>rows</p>"
    assert render.calls == 1 and (store.hits, store.misses) == (1, 1)


def test_another_key_is_another_piece(clock: list[float]) -> None:
    store = Fragments()
    store.kept(("list", "scope A"), Renderer("A"), max_age=60)
    assert store.kept(("list", "scope B"), Renderer("B"), max_age=60) == "B"
    assert store.kept(("list", "scope A"), Renderer("not A"), max_age=60) == "A"


def test_a_piece_older_than_its_maximum_age_is_rendered_again(clock: list[float]) -> None:
    store, render = Fragments(), Renderer("x")
    store.kept("k", render, max_age=60)
    clock[0] += 59.9
    store.kept("k", render, max_age=60)
    assert render.calls == 1
    clock[0] += 0.2
    store.kept("k", render, max_age=60)
    assert render.calls == 2


def test_with_a_maximum_age_of_zero_nothing_is_reused(clock: list[float]) -> None:
    store, render = Fragments(), Renderer("x")
    store.kept("k", render, max_age=0)
    store.kept("k", render, max_age=0)
    assert render.calls == 2


def test_a_piece_the_caller_will_not_keep_is_rendered_every_time(clock: list[float]) -> None:
    store, render = Fragments(), Renderer("built from old counts")
    store.kept("k", render, max_age=60, keep=lambda: False)
    store.kept("k", render, max_age=60, keep=lambda: False)
    assert render.calls == 2 and len(store) == 0


def test_the_least_recently_used_piece_goes_first_when_the_store_is_full(clock: list[float]) -> None:
    store = Fragments(max_entries=2)
    store.kept("a", Renderer("a"), max_age=60)
    store.kept("b", Renderer("b"), max_age=60)
    store.kept("a", Renderer("a again"), max_age=60)  # a is used: b is now the oldest
    store.kept("c", Renderer("c"), max_age=60)
    assert store.kept("a", Renderer("a again"), max_age=60) == "a"
    assert store.kept("b", Renderer("b again"), max_age=60) == "b again"


def test_pieces_beyond_the_byte_budget_push_out_older_ones_and_a_piece_over_it_is_not_kept(
    clock: list[float],
) -> None:
    store = Fragments(max_bytes=10)
    store.kept("a", Renderer("a" * 6), max_age=60)
    store.kept("b", Renderer("b" * 6), max_age=60)
    assert len(store) == 1
    store.kept("huge", Renderer("h" * 11), max_age=60)
    assert store.kept("huge", Renderer("rendered again"), max_age=60) == "rendered again"
    assert store.kept("b", Renderer("b again"), max_age=60) == "b" * 6


def test_forgetting_drops_every_piece(clock: list[float]) -> None:
    store, render = Fragments(), Renderer("x")
    store.kept("k", render, max_age=60)
    store.forget()
    store.kept("k", render, max_age=60)
    assert render.calls == 2


def _posting(secret: str, token: str) -> HttpRequest:
    request = RequestFactory().post("/", HTTP_X_CSRFTOKEN=token, secure=False)
    request.COOKIES[settings.CSRF_COOKIE_NAME] = secret
    return request


def _accepted(request: HttpRequest) -> bool:
    middleware = CsrfViewMiddleware(lambda r: HttpResponse())
    middleware.process_request(request)
    return middleware.process_view(request, lambda r: HttpResponse(), (), {}) is None


def test_the_csrf_token_put_in_a_kept_page_passes_djangos_check_for_the_cookie_it_was_made_for() -> None:
    secret = get_random_string(32, CSRF_ALLOWED_CHARS)
    request = RequestFactory().get("/")
    request.META["CSRF_COOKIE"] = secret
    tokens = {fragments.csrf_token(request) for _ in range(50)}
    assert len(tokens) == 50  # masked anew on every view
    assert not request.META.get("CSRF_COOKIE_NEEDS_UPDATE")  # the browser keeps the cookie it has
    assert all(_accepted(_posting(secret, token)) for token in tokens)
    other = get_random_string(32, CSRF_ALLOWED_CHARS)
    assert not any(_accepted(_posting(other, token)) for token in tokens)


def test_a_request_without_a_csrf_cookie_gets_a_new_secret_from_django() -> None:
    request = RequestFactory().get("/")
    token = fragments.csrf_token(request)
    assert len(request.META["CSRF_COOKIE"]) == 32
    assert _accepted(_posting(request.META["CSRF_COOKIE"], token))

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.lib.paging import CountAsFarAsShown
from portal.models import ScopeTag

pytestmark = pytest.mark.django_db


@pytest.fixture
def tags(db: None) -> None:
    ScopeTag.objects.bulk_create([ScopeTag(name=f"Tag {n:03d}") for n in range(130)])


def _names(page: object) -> list[str]:
    return [tag.name for tag in page.object_list]  # type: ignore[attr-defined]


def test_a_first_page_of_a_long_list_says_more_than_it_counted_and_offers_the_next(tags: None) -> None:
    rows = ScopeTag.objects.exclude(is_default=True).order_by("name", "pk")
    paginator = CountAsFarAsShown(rows, 50, number="1", count_at_least=60)
    page = paginator.get_page("1")
    assert _names(page)[:2] == ["Tag 000", "Tag 001"] and len(page.object_list) == 50
    assert not paginator.counted_all and paginator.at_least == 60 and page.has_next()


def test_the_last_page_is_known_without_counting_when_it_is_not_full(tags: None) -> None:
    rows = ScopeTag.objects.exclude(is_default=True).order_by("name", "pk")
    paginator = CountAsFarAsShown(rows, 50, number="3", count_at_least=200)
    with CaptureQueriesContext(connection) as queries:
        page = paginator.get_page("3")
    assert _names(page) == [f"Tag {n:03d}" for n in range(100, 130)]
    assert paginator.counted_all and paginator.count == 130 and not page.has_next()
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)


def test_a_deep_page_counts_as_far_as_its_end(tags: None) -> None:
    rows = ScopeTag.objects.exclude(is_default=True).order_by("-name", "pk")
    paginator = CountAsFarAsShown(rows, 20, number="4", count_at_least=30)
    page = paginator.get_page("4")
    assert _names(page) == [f"Tag {n:03d}" for n in range(69, 49, -1)]
    assert not paginator.counted_all and paginator.at_least == 80 and page.has_next()


def test_a_page_number_that_is_not_a_number_is_the_first_page(tags: None) -> None:
    rows = ScopeTag.objects.exclude(is_default=True).order_by("name", "pk")
    paginator = CountAsFarAsShown(rows, 50, number="x", count_at_least=60)
    assert _names(paginator.get_page("x"))[0] == "Tag 000"

from __future__ import annotations

from portal.lib import sections


def test_sections_are_shown_in_order_with_their_context_and_a_section_without_context_is_left_out() -> None:
    seen: list[tuple[str, int]] = []

    def context(name: str, value: int | None) -> sections.Section[[str]]:
        def compute(who: str) -> dict[str, object] | None:
            seen.append((who, value or 0))
            return None if value is None else {"value": value, "who": who}

        return sections.Section(f"{name}.html", compute, order=value or 0)

    shown = sections.shown([context("b", 20), context("hidden", None), context("a", 10)], "alice")
    assert shown == [
        {"template": "a.html", "context": {"value": 10, "who": "alice"}},
        {"template": "b.html", "context": {"value": 20, "who": "alice"}},
    ]
    assert sorted(seen) == [("alice", 0), ("alice", 10), ("alice", 20)]


def test_sections_of_the_same_order_come_by_template_name() -> None:
    same = [sections.Section(name, lambda: {}, order=5) for name in ("z.html", "m.html", "a.html")]
    assert [s["template"] for s in sections.shown(same)] == ["a.html", "m.html", "z.html"]

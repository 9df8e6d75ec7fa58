from __future__ import annotations

from pathlib import Path

from portal.lib.env import development_secret, parse_database_url


def test_a_development_secret_is_made_once_kept_private_and_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "staging_key"
    made: list[str] = []

    def make() -> str:
        made.append(f"value-{len(made)}")
        return made[-1]

    assert development_secret(path, make) == "value-0"
    assert development_secret(path, make) == "value-0"
    assert made == ["value-0"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["staging_key"]


def test_a_secret_another_process_wrote_first_is_the_one_read(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    path.write_text("theirs\n")
    assert development_secret(path, lambda: "mine") == "theirs"


def test_a_postgres_url_prepares_repeated_statements_unless_the_url_turns_it_off(tmp_path: Path) -> None:
    plain = parse_database_url("postgres://app:pw@db:5432/portal", base_dir=tmp_path)
    assert plain["OPTIONS"] == {"server_side_binding": True, "prepare_threshold": 5}
    pooled = parse_database_url(
        "postgres://app@db/portal?prepare_threshold=&sslmode=require", base_dir=tmp_path
    )
    assert pooled["OPTIONS"] == {"server_side_binding": True, "prepare_threshold": None, "sslmode": "require"}

"""The import services on the real database: batches, the pipeline, duplicates, retries and deletes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.utils import timezone

from certs import imports, lifecycle, pipeline, staging, sweeps
from certs.keys import key_add
from certs.models import Certificate, GraphState, ImportBatch, ImportItem, ItemState
from certs.tests.importing import add_key, connector_private_key, directory_user, pfx_for
from portal.audit import Actor
from portal.lib.refusal import Refused
from portal.models import AuditEvent, ScopeTag

pytestmark = pytest.mark.django_db

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"


def _run(batch: ImportBatch) -> None:
    ids = list(batch.items.values_list("pk", flat=True))
    pipeline.process_chunk(batch.pk, ids)


def _bulk(entries, **kwargs) -> ImportBatch:
    return imports.batch_create(
        Actor.system(),
        kind=ImportBatch.Kind.BULK,
        key=kwargs.pop("key", None) or add_key(),
        entries=entries,
        tags=[ScopeTag.default()],
        enqueue=False,
        **kwargs,
    )


def test_a_bulk_batch_stores_good_files_and_fails_bad_ones_with_their_codes() -> None:
    directory_user(ALICE)
    directory_user(BOB)
    batch = _bulk(
        [
            imports.Entry(
                "alice.pfx", pfx_for(ALICE, "Alice-Pass-1"), "Alice-Pass-1", ALICE, "smimeEncryption"
            ),
            imports.Entry("bob.pfx", pfx_for(BOB, "Bob-Pass-1"), "wrong", BOB, "smimeEncryption"),
            imports.Entry("junk.pfx", b"not a pfx", "x", BOB, "unassigned"),
        ]
    )
    _run(batch)
    states = dict(batch.items.values_list("filename", "state"))
    codes = dict(batch.items.values_list("filename", "problem_code"))
    assert states == {"alice.pfx": "stored", "bob.pfx": "failed", "junk.pfx": "failed"}
    assert codes["bob.pfx"] == "wrong_password"
    assert codes["junk.pfx"] == "not_pkcs12"
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.DONE


def test_the_stored_password_decrypts_with_the_connector_key_and_the_item_keeps_no_staged_secret() -> None:
    directory_user(ALICE)
    batch = _bulk([imports.Entry("a.pfx", pfx_for(ALICE, "Secret-Alice-9"), "Secret-Alice-9", ALICE)])
    assert batch.items.get().staged_password is not None
    _run(batch)
    item = batch.items.get()
    assert item.staged_password is None and bytes(item.pfx) == b""
    cert = Certificate.objects.get()
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA512()), algorithm=hashes.SHA512(), label=None)
    assert connector_private_key().decrypt(bytes(cert.encrypted_password), oaep) == b"Secret-Alice-9"
    assert cert.graph_state == GraphState.NOT_UPLOADED
    assert list(cert.scope_tags.all()) == [ScopeTag.default()]


def test_a_failed_item_loses_its_staged_password_too() -> None:
    directory_user(ALICE)
    batch = _bulk([imports.Entry("a.pfx", pfx_for(ALICE, "right"), "wrong", ALICE)])
    _run(batch)
    item = batch.items.get()
    assert item.state == ItemState.FAILED and item.staged_password is None and bytes(item.pfx)


def test_running_a_chunk_twice_processes_each_item_once() -> None:
    directory_user(ALICE)
    batch = _bulk([imports.Entry("a.pfx", pfx_for(ALICE, "pw-1"), "pw-1", ALICE)])
    _run(batch)
    _run(batch)
    assert Certificate.objects.count() == 1
    assert batch.items.get().attempts == 1


def test_an_empty_upn_is_taken_from_the_certificate() -> None:
    directory_user(ALICE)
    batch = _bulk([imports.Entry("a.pfx", pfx_for(ALICE, "pw-2"), "pw-2", "")])
    _run(batch)
    item = batch.items.get()
    assert item.state == ItemState.STORED and item.upn == ALICE


def test_a_certificate_naming_no_directory_user_fails_with_no_upn() -> None:
    batch = _bulk([imports.Entry("a.pfx", pfx_for("nobody@elsewhere.example", "pw-3"), "pw-3", "")])
    _run(batch)
    assert batch.items.get().problem_code == "no_upn"


def test_a_reimport_is_skipped_or_updates_on_request() -> None:
    directory_user(ALICE)
    key = add_key()
    data = pfx_for(ALICE, "pw-4")
    first = _bulk([imports.Entry("a.pfx", data, "pw-4", ALICE)], key=key)
    _run(first)
    again = _bulk([imports.Entry("a.pfx", data, "pw-4", ALICE)], key=key)
    _run(again)
    assert again.items.get().state == ItemState.SKIPPED
    assert again.items.get().problem_code == "already_imported"
    update = _bulk([imports.Entry("a.pfx", data, "pw-4", ALICE)], key=key, on_duplicate="update")
    _run(update)
    assert update.items.get().state == ItemState.STORED
    assert Certificate.objects.count() == 1
    assert Certificate.objects.get().batch == update


def test_the_same_file_twice_in_one_batch_is_stored_once() -> None:
    directory_user(ALICE)
    data = pfx_for(ALICE, "pw-5")
    batch = _bulk([imports.Entry("a.pfx", data, "pw-5", ALICE), imports.Entry("b.pfx", data, "pw-5", ALICE)])
    _run(batch)
    assert sorted(batch.items.values_list("state", flat=True)) == ["skipped", "stored"]


def test_a_newer_certificate_keeps_the_past_one() -> None:
    directory_user(ALICE)
    key = add_key()
    _run(_bulk([imports.Entry("old.pfx", pfx_for(ALICE, "a", days=20, kind="old"), "a", ALICE)], key=key))
    _run(_bulk([imports.Entry("new.pfx", pfx_for(ALICE, "b", days=400, kind="new"), "b", ALICE)], key=key))
    assert Certificate.objects.filter(upn=ALICE).count() == 2


def test_a_dry_run_validates_and_stores_nothing() -> None:
    directory_user(ALICE)
    batch = _bulk([imports.Entry("a.pfx", pfx_for(ALICE, "pw-6"), "pw-6", ALICE)], dry_run=True)
    _run(batch)
    assert batch.items.get().state == ItemState.VALIDATED
    assert not Certificate.objects.exists()
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.DONE


def test_retrying_a_failed_row_with_the_right_password_stores_it() -> None:
    directory_user(ALICE)
    batch = _bulk([imports.Entry("a.pfx", pfx_for(ALICE, "right-7"), "wrong", ALICE)])
    _run(batch)
    item = batch.items.get()
    imports.items_retry(Actor.system(), batch=batch, passwords={item.pk: "right-7"})
    _run(batch)
    item.refresh_from_db()
    assert item.state == ItemState.STORED and item.staged_password is None


def test_cancelling_destroys_the_staged_passwords_of_waiting_rows() -> None:
    directory_user(ALICE)
    batch = _bulk([imports.Entry("a.pfx", pfx_for(ALICE, "pw-8"), "pw-8", ALICE)])
    assert imports.batch_cancel(Actor.system(), batch=batch) == 1
    item = batch.items.get()
    assert item.state == ItemState.CANCELLED and item.staged_password is None
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.CANCELLED


def test_a_single_import_stores_the_certificate_at_once() -> None:
    directory_user(ALICE)
    item = lifecycle.certificate_import(
        Actor.system(),
        entry=imports.Entry("a.pfx", pfx_for(ALICE, "pw-9"), "pw-9", ALICE, "smimeSigning"),
        key=add_key(),
        tags=[ScopeTag.default()],
    )
    assert item.state == ItemState.STORED
    assert item.certificate is not None and item.certificate.purpose == "smimeSigning"
    assert AuditEvent.objects.filter(activity="Import certificates", category="Certificates").exists()


def test_deleting_a_certificate_is_audited() -> None:
    directory_user(ALICE)
    item = lifecycle.certificate_import(
        Actor.system(),
        entry=imports.Entry("a.pfx", pfx_for(ALICE, "pw-10"), "pw-10", ALICE),
        key=add_key(),
        tags=[ScopeTag.default()],
    )
    assert item.certificate is not None
    lifecycle.certificate_delete(Actor.system(), certificate=item.certificate)
    assert not Certificate.objects.exists()
    assert AuditEvent.objects.filter(activity="Delete certificate").exists()


def test_remove_expired_deletes_only_expired_certificates() -> None:
    directory_user(ALICE)
    key = add_key()
    for name in ("valid", "expired"):
        _run(_bulk([imports.Entry(f"{name}.pfx", pfx_for(ALICE, "p", kind=name), "p", ALICE)], key=key))
    expired = Certificate.objects.order_by("pk").last()
    assert expired is not None
    Certificate.objects.filter(pk=expired.pk).update(not_after=timezone.now() - timedelta(days=5))
    assert lifecycle.remove_expired(Actor.system(), certificates=Certificate.objects.all()) == 1
    assert list(Certificate.objects.all()) != [expired] and Certificate.objects.count() == 1


def test_a_staged_password_opens_only_for_its_own_row() -> None:
    sealed = staging.seal("s3cret", context="batch:1")
    assert staging.unseal(sealed, context="batch:1") == "s3cret"
    with pytest.raises(staging.StagingError):
        staging.unseal(sealed, context="batch:2")


def test_an_unreadable_staged_password_fails_the_row_with_staging_failed() -> None:
    directory_user(ALICE)
    batch = _bulk([imports.Entry("a.pfx", pfx_for(ALICE, "pw-11"), "pw-11", ALICE)])
    ImportItem.objects.filter(batch=batch).update(staged_password=staging.seal("pw-11", context="other"))
    _run(batch)
    assert batch.items.get().problem_code == "staging_failed"


def test_a_private_key_is_refused_as_an_encryption_key() -> None:
    from cryptography.hazmat.primitives import serialization

    pem = connector_private_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(Refused) as refused:
        key_add(
            Actor.system(),
            data=pem,
            provider_name="p",
            key_name="k",
            default_padding="oaepSha512",
            make_default=True,
            tags=[],
        )
    assert refused.value.code == "private_key_given"


def test_the_same_key_pair_is_refused_for_a_second_user_naming_the_user_who_holds_it() -> None:
    directory_user(ALICE)
    directory_user(BOB)
    key = add_key()
    data = pfx_for(ALICE, "pw-12")
    _run(_bulk([imports.Entry("alice.pfx", data, "pw-12", ALICE)], key=key))
    alice = Certificate.objects.get()
    # The same file for another user, and another certificate of the same key pair naming that user.
    again = _bulk(
        [
            imports.Entry("alice-as-bob.pfx", data, "pw-12", BOB),
            imports.Entry("bob.pfx", pfx_for(BOB, "pw-13", kind=f"rsa-{ALICE}"), "pw-13", BOB),
        ],
        key=key,
    )
    _run(again)
    for item in again.items.all():
        assert item.state == ItemState.FAILED and item.problem_code == "key_held_by_other_user"
        assert f"held by {ALICE}, certificate {alice.thumbprint}" in item.problem_message
        # No password can fix it, so the file is not kept for a retry.
        assert item.staged_password is None and bytes(item.pfx) == b""
    assert list(Certificate.objects.all()) == [alice]


def test_one_key_for_two_users_in_one_batch_goes_to_the_first_row_only() -> None:
    directory_user(ALICE)
    directory_user(BOB)
    batch = _bulk(
        [
            imports.Entry("alice.pfx", pfx_for(ALICE, "pw-14"), "pw-14", ALICE),
            imports.Entry("bob.pfx", pfx_for(BOB, "pw-15", kind=f"rsa-{ALICE}"), "pw-15", BOB),
        ],
        dry_run=True,
    )
    _run(batch)
    bob = batch.items.get(filename="bob.pfx")
    assert batch.items.get(filename="alice.pfx").state == ItemState.VALIDATED
    assert bob.problem_code == "key_held_by_other_user"
    assert f"held by {ALICE}, row 1 (alice.pfx)" in bob.problem_message


def test_one_user_may_hold_one_key_pair_in_several_certificates() -> None:
    directory_user(ALICE)
    key = add_key()
    same_key = f"rsa-{ALICE}"
    for days, purpose in ((100, "smimeEncryption"), (400, "smimeEncryption"), (400, "smimeSigning")):
        data = pfx_for(ALICE, "pw", days=days, kind=same_key)
        _run(_bulk([imports.Entry(f"{days}.pfx", data, "pw", ALICE, purpose)], key=key))
    assert Certificate.objects.filter(upn=ALICE).count() == 3
    assert len(set(Certificate.objects.values_list("key_fingerprint", flat=True))) == 1


def test_a_key_stored_for_another_user_while_a_chunk_was_encrypting_is_refused_when_storing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory_user(ALICE)
    bob = directory_user(BOB)
    key = add_key()
    batch = _bulk([imports.Entry("alice.pfx", pfx_for(ALICE, "pw-16"), "pw-16", ALICE)], key=key)
    encrypt = pipeline._encrypt

    def encrypt_while_another_worker_stores_bob(*args: object) -> None:
        encrypt(*args)  # type: ignore[arg-type]
        # Another chunk commits a certificate of the same key pair for Bob meanwhile.
        other = _bulk(
            [imports.Entry("bob.pfx", pfx_for(BOB, "pw-17", kind=f"rsa-{ALICE}"), "pw-17", BOB)], key=key
        )
        monkeypatch.setattr(pipeline, "_encrypt", encrypt)
        _run(other)

    monkeypatch.setattr(pipeline, "_encrypt", encrypt_while_another_worker_stores_bob)
    _run(batch)
    item = batch.items.get()
    assert item.problem_code == "key_held_by_other_user" and BOB in item.problem_message
    assert list(Certificate.objects.values_list("user", flat=True)) == [bob.pk]


def test_stored_certificates_get_their_key_fingerprint_and_the_migration_fills_in_readable_ones() -> None:
    import importlib

    from cryptography.hazmat.primitives.serialization import NoEncryption, pkcs12
    from django.apps import apps

    from certs.tests.conftest import make_pair

    directory_user(ALICE)
    directory_user(BOB)
    key = add_key()
    _run(_bulk([imports.Entry("alice.pfx", pfx_for(ALICE, "pw-18"), "pw-18", ALICE)], key=key))
    plain_pair = make_pair(f"rsa-{BOB}", email=BOB, upn=BOB, cn=BOB)
    # Certificates outside any encrypted container (as some exporters write them).
    plain = pkcs12.serialize_key_and_certificates(
        b"bob", plain_pair.key, plain_pair.cert, None, NoEncryption()
    )
    _run(_bulk([imports.Entry("bob.pfx", plain, "", BOB)], key=key))
    recorded = dict(Certificate.objects.values_list("upn", "key_fingerprint"))
    assert all(len(f) == 64 for f in recorded.values()) and recorded[ALICE] != recorded[BOB]

    Certificate.objects.update(key_fingerprint="")
    migration = importlib.import_module("certs.migrations.0003_key_fingerprint_and_dry_run_promotion")
    migration.record_key_fingerprints(apps, None)
    after = dict(Certificate.objects.values_list("upn", "key_fingerprint"))
    # Bob's file shows its certificate; Alice's encrypts it with the password the portal does not keep.
    assert after == {BOB: recorded[BOB], ALICE: ""}


def test_a_finished_dry_run_is_imported_with_its_kept_files_and_passwords_and_audited() -> None:
    directory_user(ALICE)
    directory_user(BOB)
    dry = _bulk(
        [
            imports.Entry("alice.pfx", pfx_for(ALICE, "pw-19"), "pw-19", ALICE, "smimeEncryption"),
            imports.Entry("bob.pfx", pfx_for(BOB, "pw-20"), "wrong", BOB, "smimeSigning"),
        ],
        dry_run=True,
    )
    _run(dry)
    assert all(i.staged_password and bytes(i.pfx) for i in dry.items.all())
    dry.refresh_from_db()

    real = imports.batch_promote(Actor.system("promoter"), batch=dry)
    assert not real.dry_run and real.promoted_from == dry and real.total == 2
    assert list(real.scope_tags.all()) == list(dry.scope_tags.all())
    # The dry run gave its files and passwords up to the import.
    assert not dry.items.filter(staged_password__isnull=False).exists()
    assert all(bytes(i.pfx) == b"" for i in dry.items.all())
    _run(real)
    rows = {i.filename: (i.state, i.problem_code, i.purpose) for i in real.items.all()}
    assert rows == {
        "alice.pfx": ("stored", "", "smimeEncryption"),
        "bob.pfx": ("failed", "wrong_password", "smimeSigning"),
    }
    event = AuditEvent.objects.get(activity="Start certificate import (from dry run)")
    assert event.actor_name == "promoter" and str(dry.code) in json.dumps(event.resources)

    with pytest.raises(Refused) as again:
        imports.batch_promote(Actor.system(), batch=dry)
    assert again.value.code == "already_promoted"
    with pytest.raises(Refused) as not_dry:
        imports.batch_promote(Actor.system(), batch=real)
    assert not_dry.value.code == "not_a_dry_run"


def test_a_dry_run_past_its_keeping_time_loses_its_files_and_passwords_and_cannot_be_imported(
    settings: Any,
) -> None:
    settings.CERTS_DRY_RUN_KEEP_HOURS = 2
    directory_user(ALICE)
    key = add_key()
    data = pfx_for(ALICE, "pw-21")
    dry = _bulk([imports.Entry("alice.pfx", data, "pw-21", ALICE)], key=key, dry_run=True)
    _run(dry)
    running = _bulk([imports.Entry("a.pfx", data, "pw-21", ALICE)], key=key, dry_run=True)
    ImportBatch.objects.filter(pk=dry.pk).update(finished_at=timezone.now() - timedelta(hours=3))
    assert sweeps.expire_dry_runs() == 1
    item = dry.items.get()
    assert item.staged_password is None and bytes(item.pfx) == b""
    # A dry run still waiting for a worker keeps its rows.
    assert running.items.get().staged_password is not None
    dry.refresh_from_db()
    with pytest.raises(Refused) as expired:
        imports.batch_promote(Actor.system(), batch=dry)
    assert expired.value.code == "dry_run_expired"
    with pytest.raises(Refused) as unfinished:
        imports.batch_promote(Actor.system(), batch=running)
    assert unfinished.value.code == "dry_run_not_finished"

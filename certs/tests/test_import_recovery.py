"""Claims, leases and sweeps of the import pipeline, cancel and retry, and which files are kept for a retry."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from django.db.models.functions import Length
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from certs import imports, pipeline, sweeps
from certs.models import Certificate, ImportBatch, ImportItem, ItemState
from certs.tests.importing import add_key, directory_user, pfx_for
from portal.audit import Actor
from portal.lib.refusal import Refused
from portal.models import ScopeTag, User

pytestmark = pytest.mark.django_db

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
CAROL = "carol@contoso.example"
LEASE = 420


@pytest.fixture(autouse=True)
def lease(settings: Any) -> None:
    settings.CERTS_CLAIM_LEASE_SECONDS = LEASE
    settings.CERTS_RETRY_WINDOW_DAYS = 7


def _bulk(entries: list[imports.Entry], **kwargs: Any) -> ImportBatch:
    return imports.batch_create(
        Actor.system(),
        kind=ImportBatch.Kind.BULK,
        key=add_key(),
        entries=entries,
        tags=[ScopeTag.default()],
        enqueue=False,
        **kwargs,
    )


def _three_users() -> ImportBatch:
    for upn in (ALICE, BOB, CAROL):
        directory_user(upn)
    return _bulk([imports.Entry(f"{upn}.pfx", pfx_for(upn, "pw"), "pw", upn) for upn in (ALICE, BOB, CAROL)])


def _ids(batch: ImportBatch) -> list[int]:
    return list(batch.items.order_by("position").values_list("pk", flat=True))


def _claim(ids: list[int], *, seconds_ago: float) -> list[ImportItem]:
    """Rows as a worker holds them: claimed ``seconds_ago``, read back with their claim."""
    ImportItem.objects.filter(pk__in=ids).update(
        claim=uuid.uuid4(), claimed_at=timezone.now() - timedelta(seconds=seconds_ago)
    )
    return list(ImportItem.objects.filter(pk__in=ids).order_by("position"))


def _queued_chunks(callbacks: list[Callable[[], Any]]) -> list[list[int]]:
    chunks = []
    for callback in callbacks:
        assert isinstance(callback, partial)
        chunks.append(callback.args[1])
    return chunks


def test_a_task_takes_over_rows_whose_lease_ended_and_leaves_rows_under_a_live_claim() -> None:
    batch = _three_users()
    alice, bob, carol = _ids(batch)
    _claim([alice], seconds_ago=LEASE + 5)  # its worker died
    _claim([bob], seconds_ago=LEASE - 60)  # its worker is still at work
    assert pipeline.process_chunk(batch.pk, [alice, bob, carol]) == 2
    rows = {item.pk: item for item in ImportItem.objects.filter(batch=batch)}
    assert rows[alice].state == rows[carol].state == ItemState.STORED
    assert rows[alice].lost_claims == 1 and rows[carol].lost_claims == 0
    assert rows[bob].state == ItemState.QUEUED and rows[bob].claim is not None


def test_a_late_worker_whose_rows_were_taken_over_writes_and_stores_nothing() -> None:
    batch = _three_users()
    ids = _ids(batch)
    late = _claim(ids, seconds_ago=3600)
    assert pipeline.process_chunk(batch.pk, ids) == 3  # another worker took the expired claim over
    # The first worker was not dead after all and now finishes the same rows.
    pipeline.process_items(batch, late, {item.pk: "pw" for item in late})
    assert Certificate.objects.count() == 3
    rows = list(ImportItem.objects.filter(batch=batch))
    assert {item.state for item in rows} == {ItemState.STORED}
    assert [item.attempts for item in rows] == [1, 1, 1]


def test_cancel_ends_claimed_rows_too_destroys_their_passwords_and_reports_the_true_count() -> None:
    batch = _three_users()
    alice, bob, carol = _ids(batch)
    held = _claim([alice, bob], seconds_ago=1)
    assert imports.batch_cancel(Actor.system(), batch=batch) == 3
    rows = list(ImportItem.objects.filter(batch=batch))
    assert {item.state for item in rows} == {ItemState.CANCELLED}
    assert all(item.staged_password is None and item.claim is None for item in rows)
    # The worker that held two rows finishes them: the batch stays cancelled, nothing is stored.
    pipeline.process_items(batch, held, {item.pk: "pw" for item in held})
    assert not Certificate.objects.exists()
    assert set(ImportItem.objects.filter(batch=batch).values_list("state", flat=True)) == {
        ItemState.CANCELLED
    }
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.CANCELLED
    # Every cancelled row can be retried with its password.
    assert (
        imports.items_retry(Actor.system(), batch=batch, passwords=dict.fromkeys((alice, bob, carol), "pw"))
        == 3
    )
    pipeline.process_chunk(batch.pk, [alice, bob, carol])
    assert Certificate.objects.count() == 3


def test_the_sweep_queues_rows_of_a_dead_worker_and_rows_of_a_lost_task_again_once(
    django_capture_on_commit_callbacks: Any,
) -> None:
    batch = _three_users()
    alice, bob, carol = _ids(batch)
    _claim([alice, bob], seconds_ago=LEASE + 5)
    ImportItem.objects.filter(pk=carol).update(queued_at=timezone.now() - timedelta(seconds=LEASE + 5))
    with django_capture_on_commit_callbacks() as callbacks:
        assert sweeps.sweep_stalled_items() == 3
    assert _queued_chunks(callbacks) == [[alice, bob, carol]]
    with django_capture_on_commit_callbacks() as callbacks:
        assert sweeps.sweep_stalled_items() == 0
    assert callbacks == []
    rows = {item.pk: item for item in ImportItem.objects.filter(batch=batch)}
    assert all(item.claim is None and item.state == ItemState.QUEUED for item in rows.values())
    assert (rows[alice].lost_claims, rows[bob].lost_claims, rows[carol].lost_claims) == (1, 1, 0)
    assert pipeline.process_chunk(batch.pk, [alice, bob, carol]) == 3
    assert Certificate.objects.count() == 3


def test_the_sweep_leaves_rows_under_a_live_claim_and_rows_recently_queued() -> None:
    batch = _three_users()
    alice, _bob, _carol = _ids(batch)
    _claim([alice], seconds_ago=LEASE - 60)
    assert sweeps.sweep_stalled_items() == 0
    assert ImportItem.objects.get(pk=alice).lost_claims == 0


def test_a_row_that_keeps_stopping_its_worker_fails_alone_with_worker_lost(
    django_capture_on_commit_callbacks: Any,
) -> None:
    batch = _three_users()
    alice, bob, carol = _ids(batch)
    _claim([alice, bob, carol], seconds_ago=LEASE + 5)
    sweeps.sweep_stalled_items()
    # Lost a second time: from now on each row goes in a task of its own.
    _claim([alice, bob, carol], seconds_ago=LEASE + 5)
    with django_capture_on_commit_callbacks() as callbacks:
        assert sweeps.sweep_stalled_items() == 3
    assert _queued_chunks(callbacks) == [[alice], [bob], [carol]]
    pipeline.process_chunk(batch.pk, [bob])
    pipeline.process_chunk(batch.pk, [carol])
    _claim([alice], seconds_ago=LEASE + 5)  # the bad row stops its worker a third time
    with django_capture_on_commit_callbacks() as callbacks:
        assert sweeps.sweep_stalled_items() == 0
    assert callbacks == []
    rows = {item.pk: item for item in ImportItem.objects.filter(batch=batch)}
    assert rows[alice].state == ItemState.FAILED and rows[alice].problem_code == "worker_lost"
    assert rows[alice].staged_password is None and rows[alice].retryable and bytes(rows[alice].pfx)
    assert rows[bob].state == rows[carol].state == ItemState.STORED
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.DONE


def test_the_sweep_finishes_a_batch_whose_worker_died_after_writing_the_last_results() -> None:
    batch = _three_users()
    pipeline.process_chunk(batch.pk, _ids(batch))
    # The worker wrote the results of the last chunk and died before it could mark the batch done.
    ImportBatch.objects.filter(pk=batch.pk).update(state=ImportBatch.State.RUNNING, finished_at=None)
    sweeps.sweep_stalled_items()
    batch.refresh_from_db()
    assert batch.state == ImportBatch.State.DONE and batch.finished_at is not None


# --- Files kept for a retry ---------------------------------------------------------


def _bytes_kept(batch: ImportBatch) -> int:
    return sum(batch.items.annotate(size=Length("pfx")).values_list("size", flat=True))


def test_only_rows_a_new_password_can_fix_keep_their_file() -> None:
    directory_user(ALICE)
    wrong_password = pfx_for(ALICE, "right")
    batch = _bulk(
        [
            imports.Entry("zeros.pfx", b"\0" * 1024 * 1024, "pw", ALICE),
            imports.Entry("huge.pfx", b"\0" * (1024 * 1024 + 1), "pw", ALICE),
            imports.Entry("truncated.pfx", pfx_for(ALICE, "pw", kind="truncated")[:1200], "pw", ALICE),
            imports.Entry("expired.pfx", pfx_for(ALICE, "pw", days=-1, kind="expired"), "pw", ALICE),
            imports.Entry("nobody.pfx", pfx_for(ALICE, "pw", kind="nobody"), "pw", "nobody@contoso.example"),
            imports.Entry("wrong.pfx", wrong_password, "wrong", ALICE),
        ]
    )
    pipeline.process_chunk(batch.pk, _ids(batch))
    codes = dict(batch.items.values_list("filename", "problem_code"))
    assert codes == {
        "zeros.pfx": "not_pkcs12",
        "huge.pfx": "file_too_large",
        "truncated.pfx": "corrupt",
        "expired.pfx": "expired",
        "nobody.pfx": "unknown_user",
        "wrong.pfx": "wrong_password",
    }
    # A user missing from the directory may be added before the retry; a wrong password retyped.
    nobody = bytes(batch.items.get(filename="nobody.pfx").pfx)
    assert _bytes_kept(batch) == len(wrong_password) + len(nobody) and nobody
    assert sorted(item.filename for item in batch.items.all() if item.retryable) == [
        "nobody.pfx",
        "wrong.pfx",
    ]


def test_a_row_no_password_can_fix_cannot_be_retried() -> None:
    directory_user(ALICE)
    batch = _bulk([imports.Entry("zeros.pfx", b"\0" * 4096, "pw", ALICE)])
    pipeline.process_chunk(batch.pk, _ids(batch))
    (item,) = batch.items.all()
    with pytest.raises(Refused) as refused:
        imports.items_retry(Actor.system(), batch=batch, passwords={item.pk: "another"})
    assert refused.value.code == "nothing_to_retry"


def test_files_kept_for_a_retry_are_deleted_when_the_retry_window_ends() -> None:
    directory_user(ALICE)
    batch = _bulk(
        [
            imports.Entry("wrong.pfx", pfx_for(ALICE, "right"), "wrong", ALICE),
            imports.Entry("later.pfx", pfx_for(ALICE, "pw", kind="later"), "pw", ALICE),
        ]
    )
    wrong, later = _ids(batch)
    pipeline.process_chunk(batch.pk, [wrong])
    # While the batch runs, a failed row keeps its file.
    assert sweeps.purge_retry_files() == 0
    pipeline.process_chunk(batch.pk, [later])
    batch.refresh_from_db()
    assert batch.finished_at is not None and batch.retry_open
    # A file no retry can use, left by an older version, goes at the next sweep.
    ImportItem.objects.filter(pk=later).update(pfx=b"leftover")
    assert sweeps.purge_retry_files() == 1
    assert bytes(ImportItem.objects.get(pk=later).pfx) == b""
    assert bytes(ImportItem.objects.get(pk=wrong).pfx)

    ImportBatch.objects.filter(pk=batch.pk).update(finished_at=timezone.now() - timedelta(days=7, minutes=1))
    assert sweeps.purge_retry_files() == 1
    ended = ImportBatch.objects.get(pk=batch.pk)
    assert _bytes_kept(ended) == 0 and not ended.retry_open
    with pytest.raises(Refused) as refused:
        imports.items_retry(Actor.system(), batch=ended, passwords={wrong: "right"})
    assert refused.value.code == "retry_window_over"


def test_the_batch_page_offers_a_password_box_only_where_a_password_can_help(
    settings: Any, intune_admin: User
) -> None:
    settings.PORTAL_ENFORCE_MFA = False
    directory_user(ALICE)
    batch = _bulk(
        [
            imports.Entry("zeros.pfx", b"\0" * 4096, "pw", ALICE),
            imports.Entry("wrong.pfx", pfx_for(ALICE, "right"), "wrong", ALICE),
        ]
    )
    pipeline.process_chunk(batch.pk, _ids(batch))
    zeros, wrong = _ids(batch)
    client = Client()
    client.force_login(intune_admin)
    page = client.get(reverse("certs:batch", args=[batch.code])).content.decode()
    assert f'name="password-{wrong}"' in page and f'name="password-{zeros}"' not in page
    batch.refresh_from_db()
    assert batch.retry_deadline is not None
    assert f"until {timezone.localtime(batch.retry_deadline):%Y-%m-%d %H:%M}" in page

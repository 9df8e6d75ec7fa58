"""The Celery application and the whole beat schedule, in one place."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

from portal.lib import filebroker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
filebroker.install()

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Every 30 seconds: a worker records that it is alive, so Home shows whether beat and workers run.
    "portal-heartbeat": {"task": "portal.tasks.heartbeat", "schedule": 30.0},
    # Every day at 06:00: e-mail reminders for certificates expiring in 30, 14, 7 and 1 days (each sent once).
    "certs-expiry-reminders": {
        "task": "certs.tasks.send_expiry_reminders_task",
        "schedule": crontab(hour=6, minute=0),
    },
    # Every hour at :50: dry runs kept longer than CERTS_DRY_RUN_KEEP_HOURS lose their files and
    # staged passwords (until then they can be imported without uploading the files again).
    "certs-expire-dry-runs": {"task": "certs.tasks.expire_dry_runs_task", "schedule": crontab(minute=50)},
    # Every minute: import rows held by a worker that died (their claim's lease,
    # CERTS_CLAIM_LEASE_SECONDS, has ended) or whose task message was lost go back on the queue.
    "certs-sweep-stalled-imports": {"task": "certs.tasks.sweep_stalled_imports_task", "schedule": 60.0},
    # Every hour at :40: files kept for retrying failed import rows are deleted once the import's
    # retry window (CERTS_RETRY_WINDOW_DAYS) has ended.
    "certs-purge-retry-files": {"task": "certs.tasks.purge_retry_files_task", "schedule": crontab(minute=40)},
    # Every 30 seconds: compare each connector's last check-in with its interval, store status
    # changes and send one alert per change (e-mail, optional webhook).
    "connectors-health-sweep": {"task": "connectors.tasks.health_sweep", "schedule": 30.0},
    # Every minute: profiles whose devices in Error crossed DELIVERY_ALERT_FAILED_DEVICES (either
    # way) since the last run get one alert per crossing (e-mail, optional webhook).
    "delivery-failure-alerts": {"task": "delivery.tasks.failure_alerts", "schedule": 60.0},
    # Every 2 minutes: uploads, profile writes and Intune deletions held by a worker that died, or whose task
    # message was lost, go back on the queue.
    "graph-sweep-stalled": {"task": "graph.tasks.sweep_stalled", "schedule": 120.0},
    # Every hour at :15: compare every imported certificate in Intune with the portal (reconcile report).
    "graph-reconcile": {"task": "graph.tasks.reconcile", "schedule": crontab(minute=15)},
    # Every minute: complete sets in the import drop folders (API_DROP_ROOT) are imported, each
    # once, and the results of finished ones are written next to them (api.dropfolder).
    "api-scan-drop-folders": {"task": "api.tasks.scan_drop_folders", "schedule": 60.0},
    # Every 30 minutes: users, groups with members and managed devices from Microsoft Graph.
    "graph-directory-sync": {"task": "graph.tasks.sync_directory", "schedule": crontab(minute="*/30")},
    # Every 10 minutes: Microsoft's certificate connectors as Intune lists them, their health, and alerts.
    # Every 30 minutes at :05 and :35: what Intune reports about each profile's devices and certificates,
    # into the delivery status model (source: Intune); a run whose worker died is closed first.
    "graph-intune-status-sync": {
        "task": "graph.tasks.sync_intune_status",
        "schedule": crontab(minute="5,35"),
    },
    "graph-intune-connectors": {"task": "graph.tasks.refresh_intune_connectors", "schedule": 600.0},
}

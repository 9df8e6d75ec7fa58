import logging

from django.db import DatabaseError, migrations, models, transaction

logger = logging.getLogger(__name__)

# The certificate list searches with UPPER(column) LIKE '%text%' (thumbprints by prefix); on
# PostgreSQL trigram indexes over the same expressions find the matches without reading the table.
SEARCH_INDEXES = {
    "certs_cert_upn_trgm": "upn",
    "certs_cert_subject_trgm": "subject",
    "certs_cert_thumbprint_trgm": "thumbprint",
}


def add_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError:
        # pg_trgm is a trusted contrib extension; where it is missing, searches scan the table.
        logger.warning("pg_trgm is not available: certificate searches will scan the table")
        return
    for name, column in SEARCH_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON certs_certificate USING gin (UPPER({column}) gin_trgm_ops)"
        )
    # The planner knows how selective a search is only from statistics on the indexed expressions;
    # without them it walks the whole expiry index for a search that matches a handful of rows.
    schema_editor.execute("ANALYZE certs_certificate")


def drop_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in SEARCH_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("certs", "0005_item_claim_lease_and_retry_files"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="certificate",
            name="certs_certi_issuer_727188_idx",
        ),
        migrations.AlterField(
            model_name="certificate",
            name="not_after",
            field=models.DateTimeField(),
        ),
        migrations.AddIndex(
            model_name="certificate",
            index=models.Index(fields=["not_after", "upn"], name="certs_certi_not_aft_69997a_idx"),
        ),
        migrations.AddIndex(
            model_name="certificate",
            index=models.Index(fields=["upn", "-not_after"], name="certs_certi_upn_639fb6_idx"),
        ),
        migrations.AddIndex(
            model_name="certificate",
            index=models.Index(fields=["issuer", "upn"], name="certs_certi_issuer_835c71_idx"),
        ),
        migrations.AddIndex(
            model_name="certificate",
            index=models.Index(fields=["purpose", "upn"], name="certs_certi_purpose_39de03_idx"),
        ),
        migrations.AddIndex(
            model_name="certificate",
            index=models.Index(fields=["created_at", "upn"], name="certs_certi_created_94d030_idx"),
        ),
        migrations.RunPython(add_search_indexes, drop_search_indexes),
    ]

"""The membership journal as triggers, and the PATCH's function without its own history and event writes
(sql/0014_membership_journal.sql); undone by sql/0014_membership_journal_reverse.sql."""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent / "sql"


class Migration(migrations.Migration):
    dependencies = [("segments", "0013_membership_active")]

    operations = [
        migrations.RunSQL(
            (SQL / "0014_membership_journal.sql").read_text(),
            (SQL / "0014_membership_journal_reverse.sql").read_text(),
        ),
    ]

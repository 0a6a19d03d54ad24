"""The membership journal as triggers (sql/0014_membership_journal.sql), and the PATCH's function without
its own history and event writes (sql/0014_memberships_update.sql)."""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent / "sql"

UNDO = """
DROP TRIGGER segments_journal_added ON segments_membership;
DROP TRIGGER segments_journal_removed ON segments_membership;
DROP TRIGGER segments_membership_not_moved ON segments_membership;
DROP FUNCTION segments_journal_added(), segments_journal_removed(), segments_membership_not_moved(),
    segments_journal_context();
"""


class Migration(migrations.Migration):
    dependencies = [("segments", "0012_import_register")]

    operations = [
        migrations.RunSQL(
            (SQL / "0014_membership_journal.sql").read_text() + (SQL / "0014_memberships_update.sql").read_text(),
            UNDO + (SQL / "0007_memberships_update_events.sql").read_text(),
        ),
    ]

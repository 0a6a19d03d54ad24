"""`segments_memberships_update`, second version (sql/0005_memberships_update_clock_after_locks.sql):
each event's time is read after the locks its change waited for (clock_timestamp()), so that history
follows commit order."""

from pathlib import Path

from django.db import migrations

FUNCTION = Path(__file__).parent / "sql" / "0005_memberships_update_clock_after_locks.sql"


class Migration(migrations.Migration):
    dependencies = [("segments", "0004_memberships_update_function")]

    operations = [migrations.RunSQL(FUNCTION.read_text(), migrations.RunSQL.noop)]

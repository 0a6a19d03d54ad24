"""Install segments/sql/memberships_update.sql again: each event's time is read after the locks
its change waited for (clock_timestamp()), so that history follows commit order."""

from pathlib import Path

from django.db import migrations

FUNCTION = Path(__file__).resolve().parents[1] / "sql" / "memberships_update.sql"


class Migration(migrations.Migration):
    dependencies = [("segments", "0004_memberships_update_function")]

    operations = [migrations.RunSQL(FUNCTION.read_text(), migrations.RunSQL.noop)]

"""Install segments/sql/memberships_update.sql again: each history row's event is written in the same statement."""

from pathlib import Path

from django.db import migrations

FUNCTION = Path(__file__).resolve().parents[1] / "sql" / "memberships_update.sql"


class Migration(migrations.Migration):
    dependencies = [("segments", "0006_historyevent_partitions"), ("events", "0001_initial")]

    operations = [migrations.RunSQL(FUNCTION.read_text(), migrations.RunSQL.noop)]

"""`segments_memberships_update`, third version (sql/0007_memberships_update_events.sql): each history
row's event is written in the same statement."""

from pathlib import Path

from django.db import migrations

FUNCTION = Path(__file__).parent / "sql" / "0007_memberships_update_events.sql"


class Migration(migrations.Migration):
    dependencies = [("segments", "0006_historyevent_partitions"), ("events", "0001_initial")]

    operations = [migrations.RunSQL(FUNCTION.read_text(), migrations.RunSQL.noop)]

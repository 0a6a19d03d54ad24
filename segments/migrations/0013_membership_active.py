"""`segments_membership_active(expires_at, at)`: the one definition of an active membership
(sql/0013_membership_active.sql), which queries call by name and the planner inlines."""

from pathlib import Path

from django.db import migrations

FUNCTION = Path(__file__).parent / "sql" / "0013_membership_active.sql"
DROP = "DROP FUNCTION segments_membership_active(timestamptz, timestamptz)"


class Migration(migrations.Migration):
    dependencies = [("segments", "0012_import_register")]

    operations = [migrations.RunSQL(FUNCTION.read_text(), DROP)]

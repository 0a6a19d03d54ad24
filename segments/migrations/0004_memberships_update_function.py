"""`segments_memberships_update`: a user's PATCH as one call (see services/memberships.py).

Its SQL lives in segments/sql/memberships_update.sql; this migration and later ones install the
file as it is now (CREATE OR REPLACE), so a fresh database gets the current function here.
"""

from pathlib import Path

from django.db import migrations

FUNCTION = Path(__file__).resolve().parents[1] / "sql" / "memberships_update.sql"
DROP = "DROP FUNCTION segments_memberships_update(bigint, text[], timestamptz[], bigint[], text[], text, text)"


class Migration(migrations.Migration):
    dependencies = [("segments", "0003_membership_autovacuum")]

    operations = [migrations.RunSQL(FUNCTION.read_text(), DROP)]

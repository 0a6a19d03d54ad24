"""`segments_memberships_update`: a user's PATCH as one call (see services/memberships.py).

Installs the function as it was first written, frozen in sql/0004_memberships_update_function.sql;
later migrations install its later versions, each from its own file.
"""

from pathlib import Path

from django.db import migrations

FUNCTION = Path(__file__).parent / "sql" / "0004_memberships_update_function.sql"
DROP = "DROP FUNCTION segments_memberships_update(bigint, text[], timestamptz[], bigint[], text[], text, text)"


class Migration(migrations.Migration):
    dependencies = [("segments", "0003_membership_autovacuum")]

    operations = [migrations.RunSQL(FUNCTION.read_text(), DROP)]

"""Every membership's expiry is before 9999-01-01T00:00:00Z (models.EXPIRES_BEFORE).

Imports could store a later one (9999-12-31T23:59:59-05:00 is year 10000 in UTC), which Python cannot
read back: the user's page, the members list and the admin failed while the row was there. Such a row
(or an 'infinity') becomes 9998-12-31T23:59:59Z, the latest second allowed: still a member for
thousands of years, now readable. No history or event: a changed expiry writes none (as a PATCH).

Not atomic, so that writers wait for no scan: the constraint is added NOT VALID (checked from then
on for every write, a brief lock), the rows repaired through the expiry index, then the constraint
validated (a scan that lets reads and writes go on).
"""

import datetime

from django.db import migrations, models

BOUND = "'9999-01-01 00:00:00+00'"

# Frozen here: the constant may change later, this migration's SQL may not.
SQL = [
    f"ALTER TABLE segments_membership ADD CONSTRAINT membership_expires_at_range CHECK (expires_at < {BOUND}) NOT VALID",
    f"UPDATE segments_membership SET expires_at = '9998-12-31 23:59:59+00' WHERE expires_at >= {BOUND}",
    "ALTER TABLE segments_membership VALIDATE CONSTRAINT membership_expires_at_range",
]
REVERSE_SQL = "ALTER TABLE segments_membership DROP CONSTRAINT membership_expires_at_range"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("segments", "0009_import_ttl_seconds_bigint"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="membership",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            ("expires_at__lt", datetime.datetime(9999, 1, 1, 0, 0, tzinfo=datetime.UTC))
                        ),
                        name="membership_expires_at_range",
                    ),
                ),
            ],
            database_operations=[migrations.RunSQL(sql=SQL, reverse_sql=REVERSE_SQL)],
        ),
    ]

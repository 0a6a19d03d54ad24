"""Vacuum and analyse memberships after 1% of rows change, not PostgreSQL's default 20%.

A rollout or segment deletion removes up to millions of rows at once; until they are vacuumed,
planning the hot-path query reads the dead index entries (11 ms instead of 0.13 ms measured).
"""

from django.db import migrations

TUNED = "ALTER TABLE segments_membership SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.01)"
DEFAULT = "ALTER TABLE segments_membership RESET (autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor)"


class Migration(migrations.Migration):
    dependencies = [("segments", "0002_membership_drop_redundant_indexes")]

    operations = [migrations.RunSQL(TUNED, DEFAULT)]

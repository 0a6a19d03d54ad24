"""The per-client request counts of the rates (core/throttles.py), replacing the database cache's.

UNLOGGED: a count is written at each throttled request and needs no WAL (nor its flush at commit);
a crash of PostgreSQL or a failover empties the table, and every window starts over.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("segmenter", "0003_jobrun")]

    operations = [
        migrations.CreateModel(
            name="RateCount",
            fields=[
                ("key", models.CharField(max_length=200, primary_key=True, serialize=False)),
                ("window_end", models.DateTimeField()),
                ("count", models.IntegerField()),
            ],
        ),
        migrations.RunSQL(
            "ALTER TABLE segmenter_ratecount SET UNLOGGED", reverse_sql="ALTER TABLE segmenter_ratecount SET LOGGED"
        ),
    ]

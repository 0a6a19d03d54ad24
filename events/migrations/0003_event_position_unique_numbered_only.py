"""The position's unique index leaves out the events not numbered yet: inserting an event (on the PATCH's
path) writes two index entries instead of three; the sequencer's update writes the position's entry.

Built CONCURRENTLY (outside a transaction): writers of a big event log are not held up while it builds.
"""

from django.db import migrations, models

CREATE = (
    'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "event_position_unique" ON "events_event" ("position")'
    ' WHERE "position" IS NOT NULL'
)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("events", "0002_webhooks")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(CREATE, 'DROP INDEX CONCURRENTLY IF EXISTS "event_position_unique"'),
                migrations.RunSQL(
                    'ALTER TABLE "events_event" DROP CONSTRAINT "events_event_position_key"',
                    'ALTER TABLE "events_event" ADD CONSTRAINT "events_event_position_key" UNIQUE ("position")',
                ),
            ],
            state_operations=[
                migrations.AlterField(model_name="event", name="position", field=models.BigIntegerField(null=True)),
                migrations.AddConstraint(
                    model_name="event",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(("position__isnull", False)),
                        fields=("position",),
                        name="event_position_unique",
                    ),
                ),
            ],
        )
    ]

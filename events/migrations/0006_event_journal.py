"""Events written by the database: from each history row and each segment write (sql/0006_event_journal.sql,
undone by sql/0006_event_journal_reverse.sql); the event types held to Event.Type."""

from pathlib import Path

from django.db import migrations, models

SQL = Path(__file__).resolve().parent / "sql"



class Migration(migrations.Migration):
    dependencies = [("events", "0005_delivery_verbose_name_plural"), ("segments", "0014_membership_journal")]

    operations = [
        migrations.AddConstraint(
            model_name="event",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    type__in=[
                        "membership.added",
                        "membership.removed",
                        "segment.created",
                        "segment.updated",
                        "segment.deleted",
                    ]
                ),
                name="event_type_valid",
            ),
        ),
        migrations.RunSQL(
            (SQL / "0006_event_journal.sql").read_text(), (SQL / "0006_event_journal_reverse.sql").read_text()
        ),
    ]

"""The event log's jobs on the task queue: numbering committed events in commit order."""

from procrastinate.contrib.django import app

from events.services.log import events_sequence
from core.jobs import job_round


@app.periodic(cron="* * * * * *", periodic_id="sequence_events")
@app.task(name="sequence_events", queueing_lock="sequence_events", lock="sequence_events")
def sequence_events(timestamp: int) -> int:
    return job_round("sequence_events", events_sequence)

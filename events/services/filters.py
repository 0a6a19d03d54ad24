"""A webhook's filters, one rule for sending and for retention: an event is wanted when its type is in
`event_types` and its segment in `segments`, an empty list meaning all (API.md)."""


def wanted_sql(event: str, event_types: str, segments: str) -> str:
    """SQL, true when the event row `event` (an alias of events_event) passes the filters `event_types`
    and `segments` (SQL expressions of jsonb arrays of strings)."""
    return (
        f"(jsonb_array_length({event_types}) = 0 OR {event_types} ? {event}.type)"
        f" AND (jsonb_array_length({segments}) = 0 OR {segments} ? {event}.segment)"
    )

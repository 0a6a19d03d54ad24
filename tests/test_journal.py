"""The membership journal, through every path: each real change of a membership (a row added or removed) has
exactly one history row and one event, with the same user, segment, `at`, source and actor; nothing else is
written. No test default is set here (`journal_unset`): every path names its own source and actor."""

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from events.models import Event
from segments.models import HistoryEvent, Membership, Segment
from segments.services import import_run, memberships_expire

pytestmark = [pytest.mark.django_db, pytest.mark.journal_unset]

FIELDS = ("user_id", "segment_slug", "operation", "source", "actor", "at")


def _members() -> set[tuple[int, str]]:
    return set(Membership.objects.values_list("user_id", "segment__slug"))


class Journal:
    """What each step changed in memberships, and what it wrote to history and events."""

    def __init__(self) -> None:
        self.last_history = self._top(HistoryEvent)
        self.last_event = self._top(Event)

    @staticmethod
    def _top(model) -> int:
        return model.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def step(self, run, *, source: str, actor: str) -> list[tuple]:
        before = _members()
        run()
        after = _members()
        history = list(HistoryEvent.objects.filter(id__gt=self.last_history).order_by("id").values_list(*FIELDS))
        events = Event.objects.filter(id__gt=self.last_event, type__startswith="membership.").order_by("id")
        self.last_history, self.last_event = self._top(HistoryEvent), self._top(Event)

        added = [(row[0], row[1]) for row in history if row[2] == "added"]
        removed = [(row[0], row[1]) for row in history if row[2] == "removed"]
        assert sorted(added) == sorted(after - before)  # each real change once, nothing else
        assert sorted(removed) == sorted(before - after)
        for row in history:
            expected = ("ttl", "system") if row[3] == "ttl" else (source, actor)
            assert (row[3], row[4]) == expected, row
        assert [
            (e.user_id, e.segment, e.type.removeprefix("membership."), e.source, e.actor, e.at) for e in events
        ] == (history)
        return history


@pytest.fixture
def journal() -> Journal:
    return Journal()


def request(client, method: str, path: str, body=None, **kwargs):
    """A step: the request, which must succeed (a redirect included: the admin's answer to a form it took)."""

    def run() -> None:
        response = getattr(client, method)(path, body, **kwargs)
        assert response.status_code < 400, response.content

    return run


def test_every_path__one_history_row_and_one_event_per_change__same_at_source_actor(api, admin_client, journal):
    assert api.post("/api/v1/users/", {"user_ids": list(range(1, 7))}, format="json").status_code == 200
    for slug in ("S1", "S2", "S3"):
        assert api.post("/api/v1/segments/", {"slug": slug}, format="json").status_code == 201
    s1 = Segment.objects.get(slug="S1")

    def patch(user_id: int, body: dict):
        return request(api, "patch", f"/api/v1/users/{user_id}/segments/", body, format="json")

    def step(run, source: str = "api", actor: str = "tests") -> list[tuple]:
        return journal.step(run, source=source, actor=actor)

    # The REST API: adds, an add that changes only the expiry (no change), removals.
    assert len(step(patch(1, {"add": ["S1", {"slug": "S2", "ttl_seconds": 3600}]}))) == 2
    assert step(patch(1, {"add": ["S1"]})) == []
    assert len(step(patch(1, {"remove": ["S1", "S3"]}))) == 1

    # The older API.
    assert (
        len(
            step(
                request(
                    api,
                    "post",
                    "/api/update_user_segments",
                    {"user_id": 2, "assign_segments": ["S1", "S3"]},
                    format="json",
                )
            )
        )
        == 2
    )

    # The admin: many users at once, then one membership deleted.
    add = {"segment": s1.pk, "user_ids": "3\n4", "ttl_unit": "days"}
    assert len(step(request(admin_client, "post", "/admin/segments/membership/add/", add), "admin", "admin")) == 2
    membership = Membership.objects.get(user_id=3, segment=s1)
    url = f"/admin/segments/membership/{membership.pk}/delete/"
    assert len(step(request(admin_client, "post", url, {"post": "yes"}), "admin", "admin")) == 1

    # Rollout up and down, and registrations joining it.
    rollout = "/api/v1/segments/S3/rollout/"
    assert step(request(api, "post", rollout, {"percent": 60}, format="json"), "rollout")
    assert step(request(api, "post", "/api/v1/users/", {"user_ids": list(range(7, 40))}, format="json"), "rollout")
    assert step(request(api, "post", rollout, {"percent": 20}, format="json"), "rollout")

    # The TTL sweep: due memberships leave at their expiry.
    expired = timezone.now() - timedelta(minutes=1)
    Membership.objects.filter(user_id=1, segment__slug="S2").update(expires_at=expired)  # no change of membership
    swept = step(memberships_expire, "ttl", "system")
    assert [(row[3], row[5]) for row in swept] == [("ttl", expired)]

    # Imports, received by the API and run as the worker runs them.
    for mode, body, changes in (("add", "5\n6\n7\n", 3), ("replace", "5\n", 2)):
        response = api.post(f"/api/v1/segments/S2/imports/?mode={mode}", body, content_type="text/csv")
        assert response.status_code == 202
        assert len(step(lambda: import_run(response.json()["id"]), "import")) == changes  # noqa: B023

    # A user deleted, then segments (a due member leaves by its TTL first).
    assert len(step(request(api, "delete", "/api/v1/users/2/"), "user_deleted")) == 2
    assert step(patch(5, {"add": ["S1"]}))
    Membership.objects.filter(user_id=4, segment=s1).update(expires_at=expired)
    removed = step(request(api, "delete", "/api/v1/segments/S1/"), "segment_deleted")
    assert sorted((row[0], row[3]) for row in removed) == [(4, "ttl"), (5, "segment_deleted")]
    assert step(request(api, "delete", "/api/delete_segment", {"segment_slug": "S2"}, format="json"), "segment_deleted")
    assert not Membership.objects.filter(segment__slug__in=["S1", "S2"]).exists()


def test_segment_writes__one_event_each_with_the_actor_and_what_changed(api):
    assert api.post("/api/v1/segments/", {"slug": "S1", "description": "one"}, format="json").status_code == 201
    assert api.patch("/api/v1/segments/S1/", {"description": "two"}, format="json").status_code == 200
    assert api.patch("/api/v1/segments/S1/", {"description": "two"}, format="json").status_code == 200  # no event
    assert api.post("/api/v1/segments/S1/rollout/", {"percent": 12.5}, format="json").status_code == 200
    assert api.delete("/api/v1/segments/S1/").status_code == 204

    found = [(e.type, e.segment, e.actor, e.changes) for e in Event.objects.order_by("id")]
    assert found == [
        (
            "segment.created",
            "S1",
            "tests",
            {"description": [None, "one"], "rollout_percent": [None, 0.0], "rule": [None, None]},
        ),
        ("segment.updated", "S1", "tests", {"description": ["one", "two"]}),
        ("segment.updated", "S1", "tests", {"rollout_percent": [0.0, 12.5]}),
        ("segment.deleted", "S1", "tests", None),
    ]


def test_writes_by_hand__journaled_with_who_wrote_them_or_refused(db):
    """A session that says who it is gets history and events as any service does; one that does not is refused,
    and nothing is written; a membership is never moved to another user or segment."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO users_user (id, created_at) VALUES (1, now()), (2, now())")
        segment = "INSERT INTO segments_segment (slug, description, rollout_percent) VALUES ('S', '', 0) RETURNING id"
        with pytest.raises(DatabaseError, match="without segments.actor"), transaction.atomic():
            cursor.execute(segment)
        cursor.execute("SELECT set_config('segments.actor', 'dba', true)")
        cursor.execute(segment)
        member = "INSERT INTO segments_membership (user_id, segment_id, source) VALUES (1, %s, 'manual')"
        with pytest.raises(DatabaseError, match="without segments.source"), transaction.atomic():
            cursor.execute(member, [cursor.fetchone()[0]])
        cursor.execute("SELECT set_config('segments.source', 'admin', true)")
        cursor.execute(member, [Segment.objects.get().pk])
        with pytest.raises(DatabaseError, match="cannot change its user or segment"), transaction.atomic():
            cursor.execute("UPDATE segments_membership SET user_id = 2")

    history = list(HistoryEvent.objects.values_list("user_id", "segment_slug", "operation", "source", "actor"))
    assert history == [(1, "S", "added", "admin", "dba")]
    assert list(Event.objects.order_by("id").values_list("type", "actor")) == [
        ("segment.created", "dba"),
        ("membership.added", "dba"),
    ]

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from segments import admin as segments_admin
from segments.admin import lists as admin_lists
from segments.admin.charts import members_by_day, members_chart_svg
from segments.admin.lists import CappedPaginator
from segments.models import HistoryEvent, Import, Membership, Segment
from segments.services import AddItem, import_run, is_covered, memberships_update, segment_create
from users.models import User

pytestmark = pytest.mark.django_db


USER_IDS = range(1, 201)


@pytest.fixture
def population():
    User.objects.bulk_create([User(id=i) for i in USER_IDS])


@pytest.fixture
def segment(population):
    segment = segment_create(slug="PROMO", description="spring promo", actor="setup")
    for user_id in (1, 2, 3):
        memberships_update(user_id=user_id, add=[AddItem(slug="PROMO")], remove=[], source="api", actor="setup")
    return segment


def covered(slug: str, percent) -> set[int]:
    return {i for i in USER_IDS if is_covered(slug, i, Decimal(percent))}


def history(**filters) -> list[tuple]:
    return list(HistoryEvent.objects.filter(**filters).values_list("user_id", "operation", "source", "actor"))


def test_segment_list__several_segments__active_counts_in_constant_queries(
    admin_client, segment, django_assert_max_num_queries
):
    for n in range(5):
        segment_create(slug=f"S{n}", actor="setup")
    past = timezone.now() - timedelta(days=1)
    Membership.objects.create(user_id=9, segment=segment, expires_at=past)  # expired, not swept yet

    with django_assert_max_num_queries(8):
        response = admin_client.get(reverse("admin:segments_segment_changelist"))

    assert response.status_code == 200
    admin = response.context["cl"].model_admin
    rows = {row.slug: admin.member_count(row) for row in response.context["cl"].result_list}
    assert rows["PROMO"] == 3 and rows["S0"] == 0


def test_segment_list__more_members_than_cap__count_shown_capped(admin_client, segment, monkeypatch):
    monkeypatch.setattr(admin_lists, "MEMBER_COUNT_CAP", 2)
    monkeypatch.setattr(segments_admin, "MEMBER_COUNT_CAP", 2)

    response = admin_client.get(reverse("admin:segments_segment_changelist"))

    assert '<td class="field-member_count">2+</td>' in response.content.decode()


def test_segment_add__with_rollout__confirmation_shows_dry_run_and_creates_nothing(admin_client, population):
    response = admin_client.post(
        reverse("admin:segments_segment_add"), {"slug": "TEN", "description": "", "rollout_percent": "10", "_save": "1"}
    )

    assert response.status_code == 200
    assert response.templates[0].name == "admin/segments/segment/rollout_confirm.html"
    assert response.context["result"].added == len(covered("TEN", 10))
    assert f'id="rollout-added">{len(covered("TEN", 10))}<' in response.content.decode()
    assert not Segment.objects.filter(slug="TEN").exists()
    assert not HistoryEvent.objects.exists()


def test_segment_add__confirmed__rollout_members_join_with_admin_actor(admin_client, population):
    data = {"slug": "TEN", "description": "d", "rollout_percent": "10", "_save": "1", "_rollout_confirmed": "1"}

    response = admin_client.post(reverse("admin:segments_segment_add"), data, follow=True)

    assert response.status_code == 200
    segment = Segment.objects.get(slug="TEN")
    assert (segment.description, segment.rollout_percent) == ("d", Decimal("10.00"))
    assert set(Membership.objects.filter(segment=segment).values_list("user_id", flat=True)) == covered("TEN", 10)
    assert {(op, source, actor) for _, op, source, actor in history(segment_slug="TEN")} == {
        ("added", "rollout", "admin")
    }
    assert "users added" in response.content.decode()


def test_segment_add__invalid_slug__form_error_without_confirmation(admin_client, population):
    response = admin_client.post(reverse("admin:segments_segment_add"), {"slug": "-bad slug", "rollout_percent": "5"})

    assert response.status_code == 200
    assert "slug" in response.context["adminform"].form.errors
    assert not Segment.objects.exists()


def test_segment_change__description_only__saved_without_confirmation(admin_client, segment):
    url = reverse("admin:segments_segment_change", args=[segment.pk])

    response = admin_client.post(url, {"description": "new words", "rollout_percent": "0", "_save": "1"})

    assert response.status_code == 302
    assert Segment.objects.get(pk=segment.pk).description == "new words"


def test_segment_change__lower_rollout__confirmed_counts_match_applied(admin_client, segment):
    admin_client.post(
        reverse("admin:segments_segment_change", args=[segment.pk]),
        {"description": "", "rollout_percent": "50", "_rollout_confirmed": "1"},
    )
    url = reverse("admin:segments_segment_change", args=[segment.pk])

    preview = admin_client.post(url, {"description": "", "rollout_percent": "20"}).context["result"]
    applied = admin_client.post(url, {"description": "", "rollout_percent": "20", "_rollout_confirmed": "1"})

    assert applied.status_code == 302
    removed = [uid for uid, op, source, _ in history(segment_slug="PROMO", operation="removed")]
    assert preview.removed == len(removed) > 0 and preview.added == 0
    manual = {1, 2, 3}
    assert (
        set(Membership.objects.filter(segment=segment).values_list("user_id", flat=True))
        == covered("PROMO", 20) | manual
    )


def test_segment_page__members_chart_counts_and_links(admin_client, segment):
    response = admin_client.get(reverse("admin:segments_segment_change", args=[segment.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in body and "now 3, peak 3" in body
    assert "Members (3)" in body
    assert reverse("admin:segments_segment_export", args=[segment.pk]) in body
    assert '<script src="http' not in body


def test_segment_delete__confirmation__states_active_memberships(admin_client, segment):
    response = admin_client.get(reverse("admin:segments_segment_delete", args=[segment.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    assert "Active memberships: 3" in body
    assert "removes all its memberships" in body


def test_segment_delete__confirmed__members_leave_through_service(admin_client, segment):
    response = admin_client.post(reverse("admin:segments_segment_delete", args=[segment.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not Segment.objects.filter(slug="PROMO").exists()
    assert sorted(history(operation="removed")) == [(i, "removed", "segment_deleted", "admin") for i in (1, 2, 3)]


def test_segment_bulk_delete__action__each_segment_through_service(admin_client, segment):
    other = segment_create(slug="OTHER", actor="setup")
    data = {"action": "delete_selected", "_selected_action": [segment.pk, other.pk], "post": "yes"}

    response = admin_client.post(reverse("admin:segments_segment_changelist"), data)

    assert response.status_code == 302
    assert not Segment.objects.exists()
    assert HistoryEvent.objects.filter(source="segment_deleted", actor="admin").count() == 3


def add_members(admin_client, segment, user_ids: str, **fields):
    data = {"segment": segment.pk, "user_ids": user_ids, "ttl_unit": "days", **fields}
    return admin_client.post(reverse("admin:segments_membership_add"), data)


def test_membership_add__with_expiry__through_service_with_admin_history(admin_client, segment):
    expires = datetime.now(UTC) + timedelta(days=3)

    response = add_members(
        admin_client, segment, "7", expires_at_0=expires.strftime("%Y-%m-%d"), expires_at_1="12:00:00"
    )

    assert response.status_code == 302
    membership = Membership.objects.get(user_id=7, segment=segment)
    assert membership.expires_at == expires.replace(hour=12, minute=0, second=0, microsecond=0)
    assert history(user_id=7) == [(7, "added", "admin", "admin")]


def test_membership_add__many_ids_with_a_ttl_in_days__all_added_and_back_to_the_segment_page(admin_client, segment):
    before = timezone.now()

    response = add_members(admin_client, segment, "7, 8\n9 3,7", ttl="2", ttl_unit="days")

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:segments_segment_change", args=[segment.pk])
    rows = dict(
        Membership.objects.filter(segment=segment, user_id__in=[3, 7, 8, 9]).values_list("user_id", "expires_at")
    )
    assert set(rows) == {3, 7, 8, 9}
    assert all(before + timedelta(days=2) <= expiry <= timezone.now() + timedelta(days=2) for expiry in rows.values())
    assert sorted(history(operation="added", source="admin")) == [(i, "added", "admin", "admin") for i in (7, 8, 9)]
    page = admin_client.get(response["Location"]).content.decode()
    assert "3 users added to PROMO for 2 days. 1 already member, with this expiry now." in page


def test_membership_add__ttl_in_hours__expires_that_many_hours_later(admin_client, segment):
    before = timezone.now()

    assert add_members(admin_client, segment, "7", ttl="5", ttl_unit="hours").status_code == 302

    expiry = Membership.objects.get(user_id=7).expires_at
    assert before + timedelta(hours=5) <= expiry <= timezone.now() + timedelta(hours=5)


def test_membership_add__unknown_ids__a_message_per_id_and_nothing_added(admin_client, segment):
    response = add_members(admin_client, segment, "7 5001 8 5002")

    assert response.status_code == 200
    assert response.context["form"].errors["user_ids"] == [
        "User 5001 is not registered; nothing was added.",
        "User 5002 is not registered; nothing was added.",
    ]
    assert not Membership.objects.filter(user_id__in=[7, 8]).exists()


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        ({"user_ids": "7 x1"}, "user_ids", "Not a user id: 'x1'."),
        ({"user_ids": " , "}, "user_ids", "Give at least one user id."),
        (
            {"ttl": "1", "expires_at_0": "2040-01-01", "expires_at_1": "00:00:00"},
            "ttl",
            "Give a TTL or an expiry, not both.",
        ),
        ({"ttl": "40000"}, "ttl", "At most 36,600 days."),
        ({"expires_at_0": "2001-01-01", "expires_at_1": "00:00:00"}, "expires_at", "The expiry is in the past."),
    ],
)
def test_membership_add__bad_input__form_error_and_nothing_added(admin_client, segment, fields, field, error):
    response = add_members(admin_client, segment, **{"user_ids": "7", **fields})

    assert response.status_code == 200
    assert response.context["form"].errors[field] == [error]
    assert not Membership.objects.filter(user_id=7).exists()


BOUND_ERROR = "The expiry must be before 9999-01-01T00:00:00Z."


def test_membership_add__expiry_at_the_bound__form_error_and_nothing_added(admin_client, segment):
    response = add_members(admin_client, segment, "7", expires_at_0="9999-01-01", expires_at_1="00:00:00")

    assert response.status_code == 200
    assert response.context["form"].errors["expires_at"] == [BOUND_ERROR]
    assert not Membership.objects.filter(user_id=7).exists()


@pytest.mark.parametrize("value", ["abc", "99999999999999999999999", "-1"])
def test_membership_add__segment_not_an_id__form_error_or_blank_never_a_500(admin_client, segment, value):
    shown = admin_client.get(reverse("admin:segments_membership_add"), {"segment": value})
    data = {"segment": value, "user_ids": "7", "ttl_unit": "days"}
    posted = admin_client.post(reverse("admin:segments_membership_add"), data)

    assert shown.status_code == 200 and '<textarea name="user_ids"' in shown.content.decode()
    assert posted.status_code == 200 and posted.context["form"].errors["segment"] == ["This field is required."]
    assert not Membership.objects.filter(user_id=7).exists()


def test_membership__label__user_id_in_the_segments_slug(segment):
    assert str(Membership.objects.get(user_id=1, segment=segment)) == "1 in PROMO"


def test_membership_change__expiry_past_the_bound__form_error_and_unchanged(admin_client, segment):
    membership = Membership.objects.get(user_id=1, segment=segment)
    data = {"expires_at_0": "9999-12-31", "expires_at_1": "23:59:59"}

    response = admin_client.post(reverse("admin:segments_membership_change", args=[membership.pk]), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["expires_at"] == [BOUND_ERROR]
    assert Membership.objects.get(pk=membership.pk).expires_at is None


def test_membership_change__new_expiry__updated_by_service(admin_client, segment):
    membership = Membership.objects.get(user_id=1, segment=segment)
    data = {"expires_at_0": "2040-05-06", "expires_at_1": "07:08:09"}

    response = admin_client.post(reverse("admin:segments_membership_change", args=[membership.pk]), data)

    assert response.status_code == 302
    assert Membership.objects.get(pk=membership.pk).expires_at == datetime(2040, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_membership_delete__confirmed__removed_with_admin_history(admin_client, segment):
    membership = Membership.objects.get(user_id=2, segment=segment)

    response = admin_client.post(reverse("admin:segments_membership_delete", args=[membership.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert history(user_id=2, operation="removed") == [(2, "removed", "admin", "admin")]


def test_membership_list__segment_filter_and_user_search__exact_rows_in_few_queries(
    admin_client, segment, django_assert_max_num_queries
):
    segment_create(slug="OTHER", actor="setup")
    memberships_update(user_id=2, add=[AddItem(slug="OTHER")], remove=[], source="api", actor="setup")
    url = reverse("admin:segments_membership_changelist")

    with django_assert_max_num_queries(10):
        by_segment = admin_client.get(url, {"segment__id__exact": segment.pk})
    by_user = admin_client.get(url, {"q": "2"})
    by_text = admin_client.get(url, {"q": "abc"})

    assert [m.user_id for m in by_segment.context["cl"].result_list] == [1, 2, 3]
    assert sorted(m.segment.slug for m in by_user.context["cl"].result_list) == ["OTHER", "PROMO"]
    assert list(by_text.context["cl"].result_list) == []


def test_membership_list__more_rows_than_cap__count_capped_and_marked(admin_client, segment, monkeypatch):
    monkeypatch.setattr(CappedPaginator, "CAP", 2)

    response = admin_client.get(reverse("admin:segments_membership_changelist"))

    assert response.context["cl"].result_count == 2
    assert "2+ memberships" in response.content.decode()


def upload(admin_client, segment, body: bytes, **fields):
    """POST the import form with `body` as the CSV; the response."""
    file = SimpleUploadedFile("members.csv", body, content_type="text/csv")
    return admin_client.post(reverse("admin:segments_segment_import", args=[segment.pk]), {"file": file, **fields})


def progress_url(segment, import_id: int) -> str:
    return reverse("admin:segments_segment_import_progress", args=[segment.pk, import_id])


def test_import_page__upload__queued_import_and_redirect_to_its_self_refreshing_progress_page(admin_client, segment):
    response = upload(admin_client, segment, b"1\n4\n", mode="add")

    queued = Import.objects.get()
    assert response.status_code == 302 and response["Location"] == progress_url(segment, queued.pk)
    assert (queued.segment_slug, queued.mode, queued.status, queued.actor) == ("PROMO", "add", "queued", "admin")
    assert not Membership.objects.filter(user_id=4).exists()  # applied by the worker, not in the request
    page = admin_client.get(response["Location"]).content.decode()
    assert "Queued: waiting for the worker (manage.py worker)" in page
    assert '<meta http-equiv="refresh" content="2">' in page


def test_import_progress__run__counts_shown_and_no_more_refresh(admin_client, segment):
    upload(admin_client, segment, b"user_id\n1\n4\n5,2031-02-03T04:05:06Z\n999\n", mode="add")
    import_run(Import.objects.get().pk)

    response = admin_client.get(progress_url(segment, Import.objects.get().pk))

    page = response.content.decode()
    assert "Import applied" in page and 'http-equiv="refresh"' not in page
    for cell, value in [("total", 4), ("done", 4), ("added", 2), ("removed", 0), ("already", 1), ("unknown", 1)]:
        assert f'<td id="count-{cell}">{value}</td>' in page
    assert '<td id="unknown-ids">999</td>' in page
    assert history(source="import") == [(4, "added", "import", "admin"), (5, "added", "import", "admin")]
    assert Membership.objects.get(user_id=5).expires_at == datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC)


def test_import_progress__running__percent_shown_and_refreshed(admin_client, segment):
    upload(admin_client, segment, b"1\n4\n", mode="add")
    Import.objects.update(status="running", total=4, done=1)  # as between two chunks

    page = admin_client.get(progress_url(segment, Import.objects.get().pk)).content.decode()

    assert "Running: 25%" in page and '<meta http-equiv="refresh" content="2">' in page


def test_import_progress__invalid_lines__failed_with_the_lines_listed_and_nothing_applied(admin_client, segment):
    upload(admin_client, segment, b"4\nfive\n6,soon\n", mode="add")
    import_run(Import.objects.get().pk)

    page = admin_client.get(progress_url(segment, Import.objects.get().pk)).content.decode()

    assert "Failed" in page and 'http-equiv="refresh"' not in page
    assert "2 invalid lines; nothing was changed." in page
    assert "<li>line 2: invalid user id &#x27;five&#x27;</li>" in page
    assert "<li>line 3: invalid expires_at &#x27;soon&#x27;" in page
    assert not Membership.objects.filter(user_id__in=[4, 6]).exists()


def test_import_progress__expiry_past_the_bound__failed_and_the_pages_still_open(admin_client, segment):
    upload(admin_client, segment, b"4,9999-12-31T23:59:59-05:00\n", mode="add")
    import_run(Import.objects.get().pk)

    page = admin_client.get(progress_url(segment, Import.objects.get().pk)).content.decode()

    assert "1 invalid line; nothing was changed." in page
    assert "must be before 9999-01-01T00:00:00Z</li>" in page
    assert not Membership.objects.filter(user_id=4).exists()
    for url in [reverse("admin:segments_membership_changelist"), reverse("admin:users_user_change", args=[4])]:
        assert admin_client.get(url).status_code == 200


def test_import_progress__import_of_another_segment__404(admin_client, segment):
    other = segment_create(slug="OTHER", actor="setup")
    upload(admin_client, segment, b"4\n", mode="add")

    response = admin_client.get(progress_url(other, Import.objects.get().pk))

    assert response.status_code == 404


def test_import_page__replace_with_ttl__only_the_listed_manual_members_stay_with_the_ttl(admin_client, segment):
    response = upload(admin_client, segment, b"2\n4\n", mode="replace", ttl_seconds="3600")
    started = Import.objects.get()
    assert (started.mode, started.ttl_seconds) == ("replace", 3600)
    import_run(started.pk)

    page = admin_client.get(response["Location"]).content.decode()

    assert "replace, TTL 3600 s" in page and "Import applied" in page
    assert set(Membership.objects.filter(segment=segment).values_list("user_id", flat=True)) == {2, 4}
    for expires_at in Membership.objects.filter(segment=segment).values_list("expires_at", flat=True):
        assert abs(expires_at - (timezone.now() + timedelta(hours=1))) < timedelta(minutes=1)
    assert sorted(history(source="import")) == [
        (1, "removed", "import", "admin"), (3, "removed", "import", "admin"), (4, "added", "import", "admin")
    ]  # fmt: skip


def test_import_pages__view_only_staff__progress_shown_upload_refused(admin_client, client, segment, django_user_model):
    upload(admin_client, segment, b"4\n", mode="add")
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_segment"))
    client.force_login(viewer)

    refused = upload(client, segment, b"5\n", mode="add")
    shown = client.get(progress_url(segment, Import.objects.get().pk))

    assert refused.status_code == 403 and Import.objects.count() == 1
    assert shown.status_code == 200 and "Queued" in shown.content.decode()


def test_import_page__more_lines_than_allowed__form_error_and_nothing_stored(
    admin_client, segment, monkeypatch, settings
):
    monkeypatch.setattr("segments.services.import_files.MAX_LINES", 2)

    response = upload(admin_client, segment, b"1\n2\n3\n", mode="add")

    assert response.status_code == 200
    assert response.context["form"].errors["file"] == ["An import file has at most 2 lines."]
    assert not Import.objects.exists() and not any((settings.MEDIA_ROOT / "imports").glob("*"))


@pytest.mark.parametrize(("ttl", "accepted"), [("0", False), ("3162240001", False), ("3000000000", True)])
def test_import_page__ttl_bounds__form_error_or_import(admin_client, segment, ttl, accepted):
    response = upload(admin_client, segment, b"4\n", mode="add", ttl_seconds=ttl)

    assert (response.status_code == 302) == accepted
    assert Import.objects.filter(ttl_seconds=int(ttl)).exists() == accepted
    if not accepted:
        assert response.context["form"].errors["ttl_seconds"]


def test_export__active_members__streamed_csv(admin_client, segment):
    memberships_update(
        user_id=5,
        add=[AddItem(slug="PROMO", expires_at=datetime(2035, 1, 1, tzinfo=UTC))],
        remove=[],
        source="api",
        actor="x",
    )
    Membership.objects.create(user_id=9, segment=segment, expires_at=timezone.now() - timedelta(seconds=1))

    response = admin_client.get(reverse("admin:segments_segment_export", args=[segment.pk]))

    assert response.streaming and response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "user_id,expires_at,source,added_at"
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["1", "", "manual"],
        ["2", "", "manual"],
        ["3", "", "manual"],
        ["5", "2035-01-01T00:00:00Z", "manual"],
    ]


def test_history_admin__read_only__no_add_change_or_delete(admin_client, segment):
    event = HistoryEvent.objects.first()

    add = admin_client.get(reverse("admin:segments_historyevent_add"))
    change = admin_client.post(reverse("admin:segments_historyevent_change", args=[event.pk]), {"actor": "forged"})
    delete = admin_client.post(reverse("admin:segments_historyevent_delete", args=[event.pk]), {"post": "yes"})
    listing = admin_client.get(reverse("admin:segments_historyevent_changelist"))

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert HistoryEvent.objects.get(pk=event.pk).actor == "setup"
    assert "delete_selected" not in listing.content.decode()


def test_history_admin__filters_search_and_date_hierarchy__matching_rows(admin_client, segment):
    HistoryEvent.objects.create(
        user_id=1, segment_slug="OLD", operation="added", source="ttl", at=datetime(2024, 3, 1, tzinfo=UTC)
    )
    url = reverse("admin:segments_historyevent_changelist")

    by_slug = admin_client.get(url, {"q": "PROMO", "operation": "added", "source__exact": "api"})
    by_user = admin_client.get(url, {"q": "1"})
    by_year = admin_client.get(url, {"at__year": "2024"})
    top = admin_client.get(url)

    assert sorted(e.user_id for e in by_slug.context["cl"].result_list) == [1, 2, 3]
    assert {e.segment_slug for e in by_user.context["cl"].result_list} == {"PROMO", "OLD"}
    assert [e.segment_slug for e in by_year.context["cl"].result_list] == ["OLD"]
    years = [str(year) for year in range(2024, timezone.now().year + 1)]
    assert all(f"at__year={year}" in top.content.decode() for year in years)


def test_members_by_day__events_on_past_days__level_per_day(segment):
    today = timezone.now().date()
    two_days_ago = datetime.combine(today - timedelta(days=2), datetime.min.time(), tzinfo=UTC)
    HistoryEvent.objects.filter(segment_slug="PROMO").update(at=two_days_ago)
    memberships_update(user_id=3, add=[], remove=["PROMO"], source="api", actor="x")

    series = members_by_day(segment, days=4, today=today)

    assert [level for _, level in series] == [0, 3, 3, 2]
    assert "now 2, peak 3" in members_chart_svg(series)


def test_membership_add_page__from_segment__ids_box_and_the_segment_preselected_by_slug(admin_client, segment):
    response = admin_client.get(reverse("admin:segments_membership_add"), {"segment": segment.pk})

    body = response.content.decode()
    assert response.status_code == 200
    assert '<textarea name="user_ids"' in body
    assert f'<option value="{segment.pk}" selected>PROMO</option>' in body


def test_export_then_import__admin_upload__the_same_members_and_expiries_in_another_segment(admin_client, segment):
    memberships_update(
        user_id=5,
        add=[AddItem(slug="PROMO", expires_at=datetime(2035, 1, 1, tzinfo=UTC))],
        remove=[],
        source="api",
        actor="x",
    )
    exported = b"".join(admin_client.get(reverse("admin:segments_segment_export", args=[segment.pk])).streaming_content)
    copy = segment_create(slug="PROMO_COPY", actor="setup")

    upload(admin_client, copy, exported, mode="add")
    done = import_run(Import.objects.get().pk)

    assert (done.status, done.added, done.error) == ("succeeded", 4, "")
    assert dict(Membership.objects.filter(segment=copy).values_list("user_id", "expires_at")) == {
        1: None,
        2: None,
        3: None,
        5: datetime(2035, 1, 1, tzinfo=UTC),
    }


def test_import_page__register_ticked__unknown_users_registered_and_shown(admin_client, segment):
    upload(admin_client, segment, b"4\n9001\n", mode="add", register="on")
    done = import_run(Import.objects.get().pk)

    page = admin_client.get(progress_url(segment, done.pk)).content.decode()

    assert (done.register, done.registered, done.added) == (True, 1, 2) and User.objects.filter(pk=9001).exists()
    assert '<td id="count-registered">1</td>' in page


def test_import_page__register_with_remove__form_error_nothing_queued(admin_client, segment):
    response = upload(admin_client, segment, b"4\n", mode="remove", register="on")

    assert response.status_code == 200 and response.context["form"].errors["register"]
    assert not Import.objects.exists()


def test_import_list__api_and_admin_imports__status_progress_actor_and_unknown_ids(admin_client, api, segment):
    api.generic("POST", "/api/v1/segments/PROMO/imports/", b"1\n7001\n7002\n", content_type="text/csv")
    upload(admin_client, segment, b"4\n", mode="add")
    by_api = import_run(Import.objects.get(actor="tests").pk)  # the token's name

    listed = admin_client.get(reverse("admin:segments_import_changelist"), {"segment_id": segment.pk})
    shown = admin_client.get(reverse("admin:segments_import_change", args=[by_api.pk])).content.decode()

    rows = [(i.pk, i.actor, i.status) for i in listed.context["cl"].result_list]
    assert rows == [(by_api.pk + 1, "admin", "queued"), (by_api.pk, by_api.actor, "succeeded")]
    page = listed.content.decode()
    assert "3/3 (100%)" in page and "not checked yet" in page
    assert "7001, 7002" in shown and by_api.actor in shown
    assert 'name="_save"' not in shown  # read-only


def test_import_list__other_segment_filtered_out_and_no_add_or_delete(admin_client, segment):
    other = segment_create(slug="OTHER", actor="setup")
    upload(admin_client, segment, b"4\n", mode="add")
    upload(admin_client, other, b"4\n", mode="add")

    listed = admin_client.get(reverse("admin:segments_import_changelist"), {"segment_id": other.pk})

    assert [i.segment_slug for i in listed.context["cl"].result_list] == ["OTHER"]
    assert admin_client.get(reverse("admin:segments_import_add")).status_code == 403
    done = Import.objects.filter(segment_slug="OTHER").get()
    assert (
        admin_client.post(reverse("admin:segments_import_delete", args=[done.pk]), {"post": "yes"}).status_code == 403
    )


def test_segment_page__links_to_its_imports_and_add_members(admin_client, segment):
    body = admin_client.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()

    assert f"{reverse('admin:segments_import_changelist')}?segment_id={segment.pk}" in body
    assert "Add members</a>" in body

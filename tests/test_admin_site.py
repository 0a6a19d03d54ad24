"""The admin's index: the product manager's objects first, access next, internals last, one "Users"
section; "View site" opens the API docs (segmenter/admin_site.py)."""

from django.urls import reverse

SECTIONS = [
    ("Segments", ["Segments", "Memberships"]),
    ("Users", ["Users"]),
    ("Webhooks", ["Webhooks", "Deliveries"]),
    ("API access", ["API tokens"]),
    ("Staff accounts", ["Staff users", "Groups"]),
    ("Login lockout", ["Access attempts"]),
    ("Task queue", []),
]


def test_admin_index__pm_objects_first_internals_last_one_users_section(admin_client):
    app_list = admin_client.get(reverse("admin:index")).context["app_list"]

    names = [app["name"] for app in app_list]
    assert names == [name for name, _ in SECTIONS]
    for app, (_, first_models) in zip(app_list, SECTIONS, strict=True):
        assert [model["name"] for model in app["models"]][: len(first_models)] == first_models
    model_names = [model["name"] for app in app_list for model in app["models"]]
    assert model_names.count("Users") == 1


def test_admin_index__view_site__the_api_docs(admin_client):
    response = admin_client.get(reverse("admin:index"))

    assert response.context["site_url"] == "/api/docs/"
    assert 'href="/api/docs/">View site</a>' in response.content.decode()
    assert admin_client.get("/api/docs/").status_code == 200

"""A catalogue of hostile input on every endpoint: each one is a clear 4xx problem+json and changes nothing."""

import base64
import json
from urllib.parse import quote

import pytest

from segments.models import HistoryEvent, Membership, Segment
from segments.services import AddItem, memberships_update, segment_create
from users.models import User
from users.services import user_register

V1_BODY_ENDPOINTS = [
    ("POST", "/api/v1/segments/"),
    ("PUT", "/api/v1/segments/S1/"),
    ("PATCH", "/api/v1/segments/S1/"),
    ("POST", "/api/v1/segments/S1/rollout/"),
    ("POST", "/api/v1/users/"),
    ("PATCH", "/api/v1/users/1000/segments/"),
    ("POST", "/api/v1/reports/"),
]
SEED_ENDPOINTS = [
    ("POST", "/api/create_segment"),
    ("DELETE", "/api/delete_segment"),
    ("POST", "/api/update_user_segments"),
    ("GET", "/api/get_user_segments"),
    ("POST", "/api/auto_assign_segment"),
    ("GET", "/api/get_user_history"),
]
DEEP = 100_000
MALFORMED_BODIES = {
    "truncated": b'{"slug": "S9"',
    "not_json": b"not json",
    "single_quotes": b"{'slug': 'S9'}",
    "nan": b'{"slug": "S9", "rollout_percent": NaN}',
    "two_documents": b'{"slug": "S9"}{"slug": "S8"}',
    "whitespace_only": b"   \n",
    "invalid_utf8": b'{"slug": "S\xff\xfe9"}',
    "utf16": '{"slug": "S9"}'.encode("utf-16"),
    "raw_nul_in_string": b'{"slug": "S\x009"}',
    "deep_arrays": b"[" * DEEP + b"]" * DEEP,
    "deep_objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "over_1_mib": b'{"slug": "S9", "description": "' + b"x" * (1024 * 1024) + b'"}',
    "null": b"null",
    "array": b'["S9"]',
    "number": b"12",
    "duplicate_key": b'{"slug": "S9", "slug": "S8", "user_id": 1000, "user_id": 1001}',
    "duplicate_nested_key": b'{"add": [{"slug": "S2", "slug": "S1"}], "user_ids": [{"a": 1, "a": 2}]}',
}
WRONG_CONTENT_TYPES = {
    "text/plain": b'{"slug": "S9"}',
    "application/x-www-form-urlencoded": b"slug=S9&user_ids=5",
    "multipart/form-data; boundary=x": b'--x\r\nContent-Disposition: form-data; name="slug"\r\n\r\nS9\r\n--x--\r\n',
    "application/xml": b"<slug>S9</slug>",
}
BAD_IDS = [0, -1, 2**63, 10**100, 1.5, True, False, "abc", "", "1e3", "-5", " 7", "٣", None, [], {}]
BAD_PATH_IDS = [
    "0",
    "-1",
    "9223372036854775808",
    "1.5",
    "true",
    "abc",
    "1e3",
    "%00",
    "%D9%A3",
    "%207",
    "00000000000000000001x",
]
FORMULA_SLUGS = ["=cmd()", "+1", "@x", "-1", '=HYPERLINK("http://x")', "\tS1"]
BAD_SLUGS = [
    *FORMULA_SLUGS,
    "",
    "a" * 101,
    "é",
    "Сегмент",
    "_x",
    ".x",
    "a b",
    "a\x00b",
    "S1\n",
    "a/b",
    None,
    7,
    True,
    [],
    {},
]
BAD_PATH_SLUGS = ["a" * 101, "%C3%A9", "%3Dcmd()", "%2B1", "%40x", "-1", "%00", "a%20b", "_x", "%FF"]
BAD_MONTHS = ["2023-13", "0000-01", "2023-0", "2023", "2023-1-1", "2023-08-01", "abc", "", "９９９９-01", "2023-08\n"]
BAD_MONTHS += [None, 202308, ["2023-08"], "=cmd()"]
BAD_PERCENTS = [-1, 100.01, 101, 1.234, "NaN", "Infinity", "abc", None, True, [], 10**30]
V1_ONLY_BAD_PERCENTS = ["10.5", "50", "0"]  # v1 takes JSON numbers only; the seed API takes these strings
BAD_TTLS = [0, -1, 10**30, 1.5, 60.0, "60", "abc", True, None, [], {}]
TEN_THOUSAND_AND_ONE = 10_001


def _cursor(position: str) -> str:
    """A well-formed cursor (as DRF encodes it) around a hostile position."""
    return quote(base64.b64encode(position.encode()).decode())


def _json(value) -> bytes:
    return json.dumps(value).encode()


def _field_cases() -> list[tuple[str, str, bytes, str]]:
    """(method, path, body, case id): one poisoned field in an otherwise valid body."""
    cases = []
    for slug in BAD_SLUGS:
        cases += [
            ("POST", "/api/v1/segments/", _json({"slug": slug})),
            ("PATCH", "/api/v1/users/1000/segments/", _json({"add": [slug]})),
            ("PATCH", "/api/v1/users/1000/segments/", _json({"remove": [slug]})),
            ("PATCH", "/api/v1/users/1000/segments/", _json({"add": [{"slug": slug, "ttl_seconds": 60}]})),
            ("POST", "/api/create_segment", _json({"segment_slug": slug})),
            ("DELETE", "/api/delete_segment", _json({"segment_slug": slug})),
            ("POST", "/api/update_user_segments", _json({"user_id": 1000, "assign_segments": [slug]})),
            ("POST", "/api/auto_assign_segment", _json({"segment_slug": slug, "fraction": 50})),
        ]
    for user_id in BAD_IDS:
        cases += [
            ("POST", "/api/v1/users/", _json({"user_ids": [user_id]})),
            ("POST", "/api/update_user_segments", _json({"user_id": user_id, "assign_segments": ["S2"]})),
            ("GET", "/api/get_user_segments", _json({"user_id": user_id})),
        ]
    for percent in BAD_PERCENTS:
        cases += [
            ("POST", "/api/v1/segments/", _json({"slug": "S9", "rollout_percent": percent})),
            ("PATCH", "/api/v1/segments/S1/", _json({"rollout_percent": percent})),
            ("PUT", "/api/v1/segments/S2/", _json({"rollout_percent": percent})),
            ("POST", "/api/v1/segments/S1/rollout/", _json({"percent": percent})),
            ("POST", "/api/create_segment", _json({"segment_slug": "S9", "fraction": percent})),
            ("POST", "/api/auto_assign_segment", _json({"segment_slug": "S2", "fraction": percent})),
        ]
    for percent in V1_ONLY_BAD_PERCENTS:
        cases += [
            ("POST", "/api/v1/segments/", _json({"slug": "S9", "rollout_percent": percent})),
            ("PATCH", "/api/v1/segments/S1/", _json({"rollout_percent": percent})),
            ("PUT", "/api/v1/segments/S2/", _json({"rollout_percent": percent})),
            ("POST", "/api/v1/segments/S1/rollout/", _json({"percent": percent})),
        ]
    for ttl in BAD_TTLS:
        cases.append(("PATCH", "/api/v1/users/1000/segments/", _json({"add": [{"slug": "S2", "ttl_seconds": ttl}]})))
    for month in BAD_MONTHS:
        cases += [
            ("POST", "/api/v1/reports/", _json({"from": month})),
            ("POST", "/api/v1/reports/", _json({"from": "2023-08", "to": month})),
            ("GET", "/api/get_user_history", _json({"user_id": 1000, "start_date": month})),
        ]
    for value in BAD_SLUGS[:12]:
        cases.append(("POST", "/api/v1/reports/", _json({"from": "2023-08", "segment": value})))
    for value in BAD_IDS:
        cases.append(("POST", "/api/v1/reports/", _json({"from": "2023-08", "user_id": value})))
    cases += [
        ("POST", "/api/v1/reports/", _json({"from": "2023-08", "to": "2023-07"})),
        ("POST", "/api/v1/reports/", _json({"from": "2023-08", "header": "maybe"})),
        ("POST", "/api/v1/reports/", _json({"from": "2023-08", "path": "../../etc/passwd"})),
        ("GET", "/api/get_user_history", _json({"user_id": 0, "start_date": "2023-08"})),
        ("GET", "/api/get_user_history", _json({"user_id": 1000, "start_date": "2023-08", "end_date": "2023-01"})),
    ]
    many_slugs = [f"S{i}" for i in range(TEN_THOUSAND_AND_ONE)]
    cases += [
        ("POST", "/api/v1/segments/S1/rollout/", b'{"percent": 1e400}'),
        ("POST", "/api/v1/segments/S1/rollout/", _json({"percent": 10, "dry_run": "maybe"})),
        ("POST", "/api/v1/segments/", _json({"slug": "S9", "description": "a\x00b"})),
        ("POST", "/api/v1/segments/", _json({"slug": "S9", "description": "x" * 10_001})),
        ("POST", "/api/v1/segments/", _json({"slug": "S9", "owner": "me"})),
        ("PATCH", "/api/v1/segments/S1/", _json({"description": "\x00"})),
        ("POST", "/api/v1/users/", _json({"user_ids": list(range(1, TEN_THOUSAND_AND_ONE + 1))})),
        ("POST", "/api/v1/users/", _json({"user_ids": []})),
        ("POST", "/api/v1/users/", _json({"user_ids": "1000"})),
        ("PATCH", "/api/v1/users/1000/segments/", _json({"add": many_slugs})),
        ("PATCH", "/api/v1/users/1000/segments/", _json({"remove": many_slugs})),
        ("PATCH", "/api/v1/users/1000/segments/", _json({"add": "S2"})),
        ("PATCH", "/api/v1/users/1000/segments/", _json({"add": ["S2"], "remove": ["S2"]})),
        ("PATCH", "/api/v1/users/1000/segments/", _json({"add": ["S2", "S2"]})),
        ("PATCH", "/api/v1/users/1000/segments/", _json({"add": ["S2", "NOPE"]})),
        ("PATCH", "/api/v1/users/1000/segments/", _json({"add": [{"slug": "S2", "ttl_seconds": 0}]})),
        ("PATCH", "/api/v1/users/1000/segments/", _json({"add": [{"slug": "S2", "ttl_seconds": 10**20}]})),
        (
            "PATCH",
            "/api/v1/users/1000/segments/",
            _json({"add": [{"slug": "S2", "expires_at": "2000-01-01T00:00:00Z"}]}),
        ),
        ("PATCH", "/api/v1/users/1000/segments/", _json({"add": [{"slug": "S2", "expires_at": "soon"}]})),
        (
            "PATCH",
            "/api/v1/users/1000/segments/",
            _json({"add": [{"slug": "S2", "expires_at": "99999-01-01T00:00:00Z"}]}),
        ),
        (
            "PATCH",
            "/api/v1/users/1000/segments/",
            _json({"add": [{"slug": "S2", "ttl_seconds": 60, "expires_at": "2100-01-01T00:00:00Z"}]}),
        ),
        ("PATCH", "/api/v1/users/1000/segments/", _json({"add": [{"slug": "S2", "role": "admin"}]})),
        ("POST", "/api/update_user_segments", _json({"user_id": 1000, "assign_segments": many_slugs})),
        ("POST", "/api/update_user_segments", _json({"user_id": 1000, "assign_segments": ["S2"], "ttl": 0})),
        ("POST", "/api/update_user_segments", _json({"user_id": 1000, "assign_segments": ["S2"], "ttl": 1.5})),
        (
            "POST",
            "/api/update_user_segments",
            _json({"user_id": 1000, "assign_segments": ["S2"], "assign_features": ["S2"]}),
        ),
        ("POST", "/api/auto_assign_segment", _json({"segment_slug": "S2", "feature_slug": "S1", "fraction": 5})),
    ]
    return [(method, path, body, f"{method} {path} {body[:60]!r}") for method, path, body in cases]


def _cases():
    cases = []
    for method, path in V1_BODY_ENDPOINTS + SEED_ENDPOINTS:
        for name, body in MALFORMED_BODIES.items():
            cases.append(pytest.param(method, path, body, "application/json", id=f"{method} {path} {name}"))
    for method, path in V1_BODY_ENDPOINTS:
        for content_type, body in WRONG_CONTENT_TYPES.items():
            cases.append(pytest.param(method, path, body, content_type, id=f"{method} {path} {content_type}"))
    for method, path in SEED_ENDPOINTS:
        cases.append(pytest.param(method, path, b"segment_slug=S9", "application/x-www-form-urlencoded", id=path))
    for method, path, body, case_id in _field_cases():
        cases.append(pytest.param(method, path, body, "application/json", id=case_id))
    for user_id in BAD_PATH_IDS:
        for method in ("GET", "PUT", "DELETE"):
            cases.append(pytest.param(method, f"/api/v1/users/{user_id}/", b"", None, id=f"{method} user {user_id}"))
        for method in ("GET", "PATCH"):
            path = f"/api/v1/users/{user_id}/segments/"
            cases.append(pytest.param(method, path, _json({"add": ["S2"]}), "application/json", id=path))
        path = f"/api/get_user_segments?user_id={user_id}"
        cases.append(pytest.param("GET", path, b"", None, id=path))
    periods = [
        "from=2023-13",
        "from=abc",
        "from=2023-08&to=2023-07",
        "from=%00",
        "from=%EF%BC%99999-01",
        "to=2023-08",
        "",
    ]
    filters = ["from=2023-08&user_id=-1", "from=2023-08&segment=%3Dcmd()", "from=2023-08&header=maybe"]
    for path, queries in [
        ("/api/v1/reports/history.csv", periods + filters),
        ("/api/v1/users/1000/history/", periods),
        ("/api/get_user_history", [query.replace("from=", "start_date=") for query in periods]),
    ]:
        for query in queries:
            cases.append(pytest.param("GET", f"{path}?{query}", b"", None, id=f"{path}?{query}"))
    for slug in BAD_PATH_SLUGS:
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            path = f"/api/v1/segments/{slug}/"
            cases.append(pytest.param(method, path, _json({"description": "d"}), "application/json", id=path))
        path = f"/api/v1/segments/{slug}/rollout/"
        cases.append(pytest.param("POST", path, _json({"percent": 50}), "application/json", id=path))
        path = f"/api/v1/segments/{slug}/members/"
        cases.append(pytest.param("GET", path, b"", None, id=path))
    return cases


def _state() -> tuple:
    return (
        list(Segment.objects.order_by("slug").values_list("slug", "description", "rollout_percent", "updated_at")),
        list(User.objects.order_by("id").values_list("id", flat=True)),
        list(Membership.objects.order_by("id").values_list("user_id", "segment__slug", "source", "expires_at")),
        list(HistoryEvent.objects.order_by("id").values_list("id", flat=True)),
    )


@pytest.fixture
def world(db) -> tuple:
    segment_create(slug="S1", actor="tests")
    segment_create(slug="S2", actor="tests")
    user_register(user_id=1000, actor="tests")
    memberships_update(user_id=1000, add=[AddItem(slug="S1")], remove=[], source="api", actor="tests")
    return _state()


HOSTILE_CASES = _cases()
HOSTILE_CURSORS = ["garbage", "%FF%FE", "A" * 5000] + [
    _cursor(position)
    for position in ("o=-5", "o=x", "p=abc", "p=a\x00b", "p=99999999999999999999", "r=1&p=" + "9" * 500)
]


def _family(case) -> str:
    """Cases of one endpoint family run in one test, so that hundreds of inputs share one setup."""
    method, path = case.values[0], case.values[1]
    return f"{method} {'/'.join(path.split('?')[0].split('/')[:4])}"


FAMILIES: dict[str, list] = {}
for _case in HOSTILE_CASES:
    FAMILIES.setdefault(_family(_case), []).append(_case)


def _refusal_problems(response, changed: bool) -> list[str]:
    """How a response falls short of a clear 4xx problem+json that changed nothing."""
    problems = []
    if not 400 <= response.status_code < 500:
        problems.append(f"status {response.status_code}: {response.content[:200]!r}")
    elif response["Content-Type"] != "application/problem+json":
        problems.append(f"content type {response['Content-Type']}")
    else:
        body = json.loads(response.content)
        if body.get("status") != response.status_code or not {"code", "title", "detail"} <= set(body):
            problems.append(f"problem body {body}")
    if len(response.content) > 20_000:
        problems.append(f"a {len(response.content)}-byte answer")
    if changed:
        problems.append("the database changed")
    return problems


@pytest.mark.parametrize("family", FAMILIES)
def test_endpoint__hostile_input__clear_4xx_problem_and_nothing_changes(api, world, family):
    failures = []
    for case in FAMILIES[family]:
        method, path, body, content_type = case.values
        kwargs = {"content_type": content_type} if content_type else {}
        response = api.generic(method, path, body, **kwargs)
        failures += [f"{case.id}: {problem}" for problem in _refusal_problems(response, _state() != world)]

    assert failures == []


def test_catalogue__size__covers_hundreds_of_inputs():
    assert len(HOSTILE_CASES) + len(HOSTILE_CURSORS) * 3 + len(V1_BODY_ENDPOINTS + SEED_ENDPOINTS) > 700


@pytest.mark.parametrize(
    "path", ["/api/v1/segments/?", "/api/v1/segments/S1/members/?", "/api/v1/users/1000/history/?from=2023-08&"]
)
@pytest.mark.parametrize(
    "query", [f"cursor={cursor}" for cursor in HOSTILE_CURSORS] + ["page_size=-1", "page_size=1e9"]
)
def test_list__hostile_cursor_or_page_size__never_a_server_error(api, world, path, query):
    response = api.get(f"{path}{query}")

    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        assert response["Content-Type"] == "application/problem+json"
    assert _state() == world


@pytest.mark.parametrize(("method", "path"), V1_BODY_ENDPOINTS + SEED_ENDPOINTS)
def test_endpoint__chunked_body_without_length__411_problem_and_nothing_changes(api, world, method, path):
    body = _json({"slug": "S9", "segment_slug": "S9", "user_ids": [5], "add": ["S2"], "from": "2023-08"})
    response = api.generic(method, path, body, content_type="application/json", HTTP_TRANSFER_ENCODING="chunked")

    assert response.status_code == 411
    assert _refusal_problems(response, _state() != world) == []

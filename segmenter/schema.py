"""OpenAPI: the bearer-token scheme (imported by AppConfig.ready) and the tags that group operations."""

import re

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "core.auth.TokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A token from `manage.py create_api_token NAME`."}


# The tag of an operation (SPECTACULAR_SETTINGS["TAGS"]): the first pattern its path matches, else
# drf-spectacular's default, which the schema test refuses, so that a new resource gets its tag here.
TAG_OF_PATH = [
    (re.compile(r"/api/v1/segments/\{slug\}/imports/"), "imports"),
    (re.compile(r"/api/v1/imports/"), "imports"),
    (re.compile(r"/api/v1/segments/"), "segments"),
    (re.compile(r"/api/v1/users/\{user_id\}/history/"), "history and reports"),
    (re.compile(r"/api/v1/users/"), "users"),
    (re.compile(r"/api/v1/reports/"), "history and reports"),
    (re.compile(r"/api/v1/webhooks/"), "webhooks"),
    (re.compile(r"/api/health/"), "health"),
    (re.compile(r"/api/[a-z_]+$"), "older API"),  # the older API's paths have no trailing slash
]


class AutoSchema(openapi.AutoSchema):
    def get_tags(self) -> list[str]:
        for pattern, tag in TAG_OF_PATH:
            if pattern.match(self.path):
                return [tag]
        return super().get_tags()

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from core import views
from events.views import WebhookViewSet
from reports import views as reports_views
from segmenter import seed_api
from segmenter.metrics import MetricsView
from segments.views import ImportViewSet, SegmentViewSet
from users.views import UsersSegmentsView, UserViewSet

router = SimpleRouter()
router.register("segments", SegmentViewSet, basename="segment")
router.register("users", UserViewSet, basename="user")
router.register("webhooks", WebhookViewSet, basename="webhook")
router.register("imports", ImportViewSet, basename="import")

# Swagger UI sets style attributes from its script, so its page alone allows inline styles (its
# script is a file: SpectacularSwaggerSplitView; inline scripts stay refused everywhere).
swagger_ui = csp_update({"style-src": [UNSAFE_INLINE]})(SpectacularSwaggerSplitView.as_view(url_name="schema"))

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health/", views.health, name="health"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", swagger_ui, name="docs"),
    path("api/v1/reports/", reports_views.ReportsView.as_view(), name="reports"),
    path("api/v1/reports/history.csv", reports_views.HistoryCsvView.as_view(), name="history-csv"),
    path("api/v1/users/<str:user_id>/history/", reports_views.UserHistoryView.as_view(), name="user-history"),
    # Before the router, whose users/{user_id}/ would take "segments" for a user id.
    path("api/v1/users/segments/", UsersSegmentsView.as_view(), name="users-segments"),
    path("api/v1/", include(router.urls)),
    path("api/create_segment", seed_api.CreateSegmentView.as_view()),
    path("api/delete_segment", seed_api.DeleteSegmentView.as_view()),
    path("api/update_user_segments", seed_api.UpdateUserSegmentsView.as_view()),
    path("api/get_user_segments", seed_api.GetUserSegmentsView.as_view()),
    path("api/auto_assign_segment", seed_api.AutoAssignSegmentView.as_view()),
    path("api/get_user_history", seed_api.GetUserHistoryView.as_view()),
    # Report files: served by the app itself (no web server needed); the view accepts only report names.
    re_path(r"^media/reports/(?P<name>.*)$", reports_views.report_file, name="report-file"),
]

handler400 = views.bad_request
handler404 = views.not_found
handler500 = views.internal_error

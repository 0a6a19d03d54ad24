"""Business logic of segments: every write to segments, memberships and history is here."""

from segments.services.automatic import (
    AutomaticResult,
    Explanation,
    automatic_apply,
    automatic_verify,
    membership_explain,
    relative_rules_apply,
)
from segments.services.exclusions import exclusion_delete
from segments.services.expiry import memberships_expire
from segments.services.history_partitions import history_partitions, history_partitions_ensure, history_purge
from segments.services.import_queue import attribute_import_create, import_create, import_files_purge
from segments.services.imports import import_run
from segments.services.memberships import (
    AddItem,
    MembershipsChange,
    memberships_add_users,
    memberships_remove_all,
    memberships_update,
)
from segments.services.rollout import RolloutResult, bucket, is_covered, rollout_apply, rollout_join_users
from segments.services.segments import (
    RulePreview,
    rule_preview,
    segment_create,
    segment_delete,
    segment_get,
    segment_update,
    segment_upsert,
)

__all__ = [
    "AddItem",
    "AutomaticResult",
    "Explanation",
    "RulePreview",
    "automatic_apply",
    "automatic_verify",
    "exclusion_delete",
    "rule_preview",
    "MembershipsChange",
    "RolloutResult",
    "attribute_import_create",
    "bucket",
    "history_partitions",
    "history_partitions_ensure",
    "history_purge",
    "import_create",
    "import_files_purge",
    "import_run",
    "is_covered",
    "memberships_add_users",
    "memberships_expire",
    "memberships_remove_all",
    "membership_explain",
    "memberships_update",
    "relative_rules_apply",
    "rollout_apply",
    "rollout_join_users",
    "segment_create",
    "segment_delete",
    "segment_get",
    "segment_update",
    "segment_upsert",
]

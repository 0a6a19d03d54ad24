"""The SQL of the hot paths on PostgreSQL, for the pgbench references: the GET's query
(segments.selectors.user_segment_slugs) and the PATCH's one call (segments.services.memberships)."""

HOT_SQL = (
    "SELECT u.id, s.slug FROM users_user u"
    " LEFT JOIN segments_membership m ON m.user_id = u.id"
    " AND m.user_id = %s AND segments_membership_active(m.expires_at)"
    " LEFT JOIN segments_segment s ON s.id = m.segment_id"
    " WHERE u.id = %s"
)


def pgbench_script(users: int) -> str:
    """The hot-path query with a random user id, as a pgbench custom script."""
    return f"\\set uid random(1, {users})\n" + HOT_SQL.replace("%s", ":uid") + ";\n"


def pgbench_patch_script(users: int, segments: int, actor: str) -> str:
    """The PATCH of patch.lua (add one of seg_1..seg_N, remove another) as the service's one call."""
    quoted = actor.replace("'", "''")
    return (
        f"\\set uid random(1, {users})\n\\set a random(1, {segments})\n\\set r random(1, {segments - 1})\n"
        "SELECT * FROM segments_memberships_update(:uid, ARRAY['seg_' || :a], '{NULL}'::timestamptz[],"
        " '{NULL}'::bigint[], ARRAY['seg_' || (CASE WHEN :r::int >= :a::int THEN :r::int + 1 ELSE :r::int END)],"
        f" 'api', '{quoted}');\n"
    )

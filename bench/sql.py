"""The SQL of the GET hot path (segments.selectors.user_segment_slugs on PostgreSQL), for the references."""

HOT_SQL = (
    "SELECT u.id, s.slug FROM users_user u"
    " LEFT JOIN segments_membership m ON m.user_id = u.id"
    " AND (m.expires_at IS NULL OR m.expires_at > now())"
    " LEFT JOIN segments_segment s ON s.id = m.segment_id"
    " WHERE u.id = %s"
)


def pgbench_script(users: int) -> str:
    """The hot-path query with a random user id, as a pgbench custom script."""
    return f"\\set uid random(1, {users})\n" + HOT_SQL.replace("%s", ":uid") + ";\n"

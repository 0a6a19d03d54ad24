-- The membership journal (installed by migration 0014; a change here needs a new migration and file).
--
-- Every statement that adds or removes memberships writes one history row per membership it added or
-- removed, in the same statement, through the two statement-level triggers below: whatever writes
-- segments_membership (the PATCH's function, rollout, the TTL sweep, imports, segment and user
-- deletion, the admin, a psql session) gets its history by construction. Each history row's event is
-- written by the events app's trigger on segments_historyevent, in the same statement again.
--
-- Who changed it: the transaction-local settings `segments.source` and `segments.actor`
-- (segments/services/journal.py `journal`, or set_config in the PATCH's function), which travel with
-- the transaction, also through a pooler in transaction mode. A membership removed once its expiry
-- had passed leaves by its TTL: source `ttl`, actor `system`, at its `expires_at`, whoever deleted it.
-- An automatic member (source `rollout`) joins with its own source, a manual one with the setting's.
-- Any other change without the settings fails: nothing is written unjournaled.
--
-- `at` is the clock once the statement has changed its rows, after every lock it waited for, so
-- that for each membership, and each user whose writers hold its lock, `at` follows commit order.

CREATE OR REPLACE FUNCTION segments_journal_context(OUT source text, OUT actor text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    source := nullif(current_setting('segments.source', true), '');
    actor := nullif(current_setting('segments.actor', true), '');
    IF source IS NULL OR actor IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'SG500',
            MESSAGE = 'memberships changed without segments.source and segments.actor set in the transaction',
            HINT = 'segments/services/journal.py journal(source=..., actor=...)';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION segments_journal_added() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_at timestamptz := clock_timestamp();
    v_source text;
    v_actor text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM added) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_source, v_actor FROM segments_journal_context();
    INSERT INTO segments_historyevent (user_id, segment_slug, operation, source, actor, at)
    SELECT a.user_id, s.slug, 'added', CASE WHEN a.source = 'manual' THEN v_source ELSE a.source END, v_actor, v_at
    FROM added a JOIN segments_segment s ON s.id = a.segment_id
    ORDER BY a.user_id, s.slug;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION segments_journal_removed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_at timestamptz := clock_timestamp();
    v_source text;
    v_actor text;
BEGIN
    IF EXISTS (SELECT 1 FROM removed WHERE expires_at IS NULL OR expires_at > v_at) THEN
        SELECT * INTO v_source, v_actor FROM segments_journal_context();
    END IF;
    INSERT INTO segments_historyevent (user_id, segment_slug, operation, source, actor, at)
    SELECT r.user_id, s.slug, 'removed', j.source, j.actor, j.at
    FROM removed r JOIN segments_segment s ON s.id = r.segment_id,
         LATERAL (SELECT r.expires_at <= v_at AS expired) e,
         LATERAL (
             SELECT CASE WHEN e.expired THEN 'ttl' ELSE v_source END AS source,
                    CASE WHEN e.expired THEN 'system' ELSE v_actor END AS actor,
                    CASE WHEN e.expired THEN r.expires_at ELSE v_at END AS at
         ) j
    ORDER BY j.at, r.user_id, s.slug;
    RETURN NULL;
END
$$;

-- A membership is added and removed, never moved: its history would not say so.
CREATE OR REPLACE FUNCTION segments_membership_not_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.user_id <> OLD.user_id OR NEW.segment_id <> OLD.segment_id THEN
        RAISE EXCEPTION USING ERRCODE = 'SG501',
            MESSAGE = 'a membership cannot change its user or segment: remove it and add another';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER segments_journal_added AFTER INSERT ON segments_membership
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION segments_journal_added();
CREATE TRIGGER segments_journal_removed AFTER DELETE ON segments_membership
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION segments_journal_removed();
CREATE TRIGGER segments_membership_not_moved BEFORE UPDATE OF user_id, segment_id ON segments_membership
    FOR EACH ROW EXECUTE FUNCTION segments_membership_not_moved();

-- Segments defined by rules (installed by migration 0015; a change here needs a new migration and file).
--
-- The foreign keys of a segment's compiled rule and of exclusions are ON DELETE CASCADE in the database
-- (their fields declare no constraint of their own), so deleting a segment or a user by SQL takes them along.
-- And a new version of the PATCH's function (0014's, with exclusions).

ALTER TABLE segments_segmentrule ADD CONSTRAINT segments_segmentrule_segment_id_fk
    FOREIGN KEY (segment_id) REFERENCES segments_segment (id) ON DELETE CASCADE;
ALTER TABLE segments_exclusion ADD CONSTRAINT segments_exclusion_segment_id_fk
    FOREIGN KEY (segment_id) REFERENCES segments_segment (id) ON DELETE CASCADE;
ALTER TABLE segments_exclusion ADD CONSTRAINT segments_exclusion_user_id_fk
    FOREIGN KEY (user_id) REFERENCES users_user (id) ON DELETE CASCADE;
-- Listing a user's exclusions, and the cascade from a deleted user.
CREATE INDEX segments_exclusion_user_id ON segments_exclusion (user_id);


-- segments_memberships_update: a user's PATCH in one call (segments/services/memberships.py).
--
-- One round trip and its own transaction: lock the user, read the clock, lock the segments, compute
-- and check the expiries, sweep the user's due memberships and remove (one statement), add, set the
-- expiry of existing members, read the user's segments. Each statement sees what committed before it
-- started (READ COMMITTED). Errors are raised with SQLSTATEs of class SG, which the service turns into
-- its errors. History and events are written by the membership journal's triggers
-- (0014_membership_journal.sql), with the source and actor set here for the transaction.
-- Exclusions (0015): removing an automatic member (source `rule` or `rollout`) excludes the user from the
-- segment's automatic assignment; adding the user by hand ends its exclusion.
CREATE OR REPLACE FUNCTION segments_memberships_update(
    p_user_id bigint, p_add text[], p_expires timestamptz[], p_ttl bigint[], p_remove text[],
    p_source text, p_actor text,
    OUT added text[], OUT updated text[], OUT removed text[], OUT segments text[]
) LANGUAGE plpgsql VOLATILE
-- Every statement below finds a few rows by key. Generic plans, kept for the session, save
-- planning each statement on every call (half the call's time, measured); without sequential
-- scans and hash joins they stay index lookups whatever the parameters.
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_hashjoin = off
AS $$
DECLARE
    v_ids bigint[];  -- the segments of p_add and p_remove, and their slugs
    v_slugs text[];
    v_expires timestamptz[] := '{}';  -- per item of p_add
    v_at timestamptz;
    v_due bigint;  -- the user's memberships past their expiry
    v_slug text;
    v_problem text[] := '{}';
    v_now timestamptz;  -- the clock, read once the user is locked
BEGIN
    PERFORM set_config('segments.source', p_source, true), set_config('segments.actor', p_actor, true);

    -- Updates of one user queue here.
    PERFORM 1 FROM users_user WHERE id = p_user_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'SG404', MESSAGE = 'user_not_found';
    END IF;

    -- The clock once the user is locked: a change of this user that committed before is earlier.
    -- (Each event's own time is read later still, when its row changes.)
    v_now := clock_timestamp();

    -- The segments asked for, locked so that a concurrent delete waits for us (or we see them
    -- gone), and the user's memberships now: the active ones and how many are due.
    WITH locked AS (
        SELECT id, slug FROM segments_segment WHERE slug = ANY(p_add || p_remove) ORDER BY id FOR KEY SHARE
    ), mine AS (
        SELECT s.slug, m.expires_at FROM segments_membership m JOIN segments_segment s ON s.id = m.segment_id
        WHERE m.user_id = p_user_id
    )
    SELECT coalesce(asked.ids, '{}'), coalesce(asked.slugs, '{}'), coalesce(now_in.active, '{}'), now_in.due
    INTO v_ids, v_slugs, segments, v_due
    FROM (SELECT array_agg(id) AS ids, array_agg(slug) AS slugs FROM locked) asked,
         (SELECT array_agg(slug) FILTER (WHERE segments_membership_active(expires_at, v_now)) AS active,
                 count(*) FILTER (WHERE NOT segments_membership_active(expires_at, v_now)) AS due FROM mine) now_in;
    IF cardinality(v_ids) < cardinality(p_add || p_remove) THEN
        SELECT array_agg(slug ORDER BY n) INTO v_problem
        FROM unnest(p_add || p_remove) WITH ORDINALITY AS w(slug, n) WHERE slug <> ALL(v_slugs);
        IF v_problem IS NOT NULL THEN  -- else a slug was given twice
            RAISE EXCEPTION USING ERRCODE = 'SG405', MESSAGE = array_to_json(v_problem)::text;
        END IF;
        v_problem := '{}';
    END IF;

    FOR i IN 1 .. cardinality(p_add) LOOP
        v_at := CASE WHEN p_ttl[i] IS NULL THEN p_expires[i] ELSE v_now + make_interval(secs => p_ttl[i]) END;
        IF v_at <= v_now THEN
            v_problem := v_problem || p_add[i];
        END IF;
        v_expires := v_expires || v_at;
    END LOOP;
    IF cardinality(v_problem) > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'SG400', MESSAGE = array_to_json(v_problem)::text;
    END IF;

    -- The user's due memberships leave (the journal writes them as `ttl` at their expiry), the removed ones now.
    removed := '{}';
    IF v_due > 0 OR cardinality(p_remove) > 0 THEN
        WITH changed AS (
            DELETE FROM segments_membership
            WHERE user_id = p_user_id
              AND (NOT segments_membership_active(expires_at, v_now)
                   OR segment_id IN (SELECT id FROM segments_segment WHERE slug = ANY(p_remove)))
            RETURNING segment_id, source, NOT segments_membership_active(expires_at, v_now) AS expired
        ), excluded AS (
            INSERT INTO segments_exclusion (user_id, segment_id, at, actor)
            SELECT p_user_id, segment_id, v_now, p_actor FROM changed
            WHERE NOT expired AND source <> 'manual' ORDER BY segment_id
            ON CONFLICT (segment_id, user_id) DO NOTHING
        )
        SELECT coalesce(array_agg(s.slug) FILTER (WHERE NOT c.expired), '{}') INTO removed
        FROM changed c JOIN segments_segment s ON s.id = c.segment_id;
    END IF;

    -- A row that exists is locked, not changed nor returned (DO UPDATE ... WHERE false): a rollout
    -- lowering at the same time cannot delete it before it is made manual below, losing this add.
    added := '{}';
    IF cardinality(p_add) > 0 THEN
        DELETE FROM segments_exclusion WHERE user_id = p_user_id AND segment_id = ANY(v_ids);
        WITH wanted AS (
            SELECT s.id, slug, w.at
            FROM unnest(p_add, v_expires) AS w(slug, at) JOIN unnest(v_ids, v_slugs) AS s(id, slug) USING (slug)
        ), inserted AS (
            INSERT INTO segments_membership (user_id, segment_id, source, added_at, expires_at)
            SELECT p_user_id, id, 'manual', v_now, at FROM wanted ORDER BY id
            ON CONFLICT (user_id, segment_id) DO UPDATE SET expires_at = segments_membership.expires_at WHERE false
            RETURNING segment_id
        )
        SELECT coalesce(array_agg(w.slug), '{}') INTO added FROM inserted i JOIN wanted w ON w.id = i.segment_id;
    END IF;

    -- Members already: the expiry asked for, and a manual add makes a rollout member manual, so
    -- that a later, lower rollout keeps it. `updated` lists those whose expiry changed.
    updated := '{}';
    IF cardinality(added) < cardinality(p_add) THEN
        WITH old AS (
            SELECT m.id, slug, w.at, m.expires_at IS DISTINCT FROM w.at AS expiry_changed
            FROM unnest(p_add, v_expires) AS w(slug, at) JOIN unnest(v_ids, v_slugs) AS s(id, slug) USING (slug)
            JOIN segments_membership m ON m.user_id = p_user_id AND m.segment_id = s.id
            WHERE m.expires_at IS DISTINCT FROM w.at OR m.source <> 'manual'
        ), changed AS (
            UPDATE segments_membership m SET expires_at = old.at, source = 'manual' FROM old WHERE m.id = old.id
        )
        SELECT coalesce(array_agg(slug) FILTER (WHERE expiry_changed), '{}') INTO updated FROM old;
    END IF;

    -- The user's segments now: those read above, less the removed ones, and every one added
    -- (each is a member now, new or not).
    FOREACH v_slug IN ARRAY removed || p_add LOOP
        segments := array_remove(segments, v_slug);
    END LOOP;
    segments := segments || p_add;
END
$$;

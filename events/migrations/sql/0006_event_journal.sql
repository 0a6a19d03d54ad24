-- The event log's writers (installed by migration 0006; a change here needs a new migration and file).
--
-- Events are written by the database in the statement that makes their change, so nothing committed is
-- missing from the event stream and nothing rolled back is in it:
-- - every history row (segments' membership journal writes one per membership added or removed) becomes
--   its `membership.added|removed` event, with the same user, segment, `at`, source and actor;
-- - every segment created, changed or deleted becomes its `segment.created|updated|deleted` event, with
--   the actor of the transaction (segments.actor, as the journal's) and the fields that changed.
-- Event types are those of events/models.py Event.Type, which the table's check constraint holds to.

CREATE OR REPLACE FUNCTION events_from_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events_event (type, user_id, segment, at, source, actor)
    SELECT 'membership.' || h.operation, h.user_id, h.segment_slug, h.at, h.source, h.actor
    FROM logged h ORDER BY h.id;
    RETURN NULL;
END
$$;

-- Changes: {"field": [old, new]} of every column but the key, the slug (the event's `segment`) and the
-- times; a write that changes none of them is no event.
CREATE OR REPLACE FUNCTION events_from_segment() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_old jsonb := CASE WHEN TG_OP = 'INSERT' THEN '{}' ELSE to_jsonb(OLD) - '{id,slug,created_at,updated_at}'::text[] END;
    v_new jsonb := CASE WHEN TG_OP = 'DELETE' THEN '{}' ELSE to_jsonb(NEW) - '{id,slug,created_at,updated_at}'::text[] END;
    v_changes jsonb;
    v_actor text := nullif(current_setting('segments.actor', true), '');
BEGIN
    SELECT jsonb_object_agg(key, jsonb_build_array(v_old -> key, v_new -> key)) INTO v_changes
    FROM jsonb_object_keys(v_old || v_new) AS key
    WHERE (v_old -> key) IS DISTINCT FROM (v_new -> key);
    IF TG_OP = 'UPDATE' AND v_changes IS NULL THEN
        RETURN NULL;
    END IF;
    IF v_actor IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'SG500',
            MESSAGE = 'segment changed without segments.actor set in the transaction',
            HINT = 'segments/services/journal.py journal(source=..., actor=...)';
    END IF;
    INSERT INTO events_event (type, segment, at, actor, changes)
    VALUES (
        'segment.' || CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END,
        coalesce(NEW.slug, OLD.slug), clock_timestamp(), v_actor,
        CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE v_changes END
    );
    RETURN NULL;
END
$$;

CREATE TRIGGER events_from_history AFTER INSERT ON segments_historyevent
    REFERENCING NEW TABLE AS logged FOR EACH STATEMENT EXECUTE FUNCTION events_from_history();
CREATE TRIGGER events_from_segment AFTER INSERT OR UPDATE OR DELETE ON segments_segment
    FOR EACH ROW EXECUTE FUNCTION events_from_segment();

-- Monthly partitions of segments_historyevent (range-partitioned by `at`, months in UTC), named
-- segments_historyevent_YYYY_MM. Installed by migrations reading this file (CREATE OR REPLACE; a
-- change to it comes with a new migration); called by migration 0006 and by the worker's job
-- `history_partitions` (segments/services/history_partitions.py).
--
-- segments_history_partition_create(any instant of the month) creates that month's partition
-- unless it exists (then false). Rows of that month that landed in the DEFAULT partition (no
-- month partition existed when they were written) move into it first, the DEFAULT partition
-- locked meanwhile. The new table is attached (ATTACH takes SHARE UPDATE EXCLUSIVE on the parent,
-- so writers of other months do not wait); its CHECK constraint lets ATTACH skip a scan of it.
CREATE OR REPLACE FUNCTION segments_history_partition_create(month_instant timestamptz)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    first_day timestamp := date_trunc('month', month_instant AT TIME ZONE 'UTC');
    next_day timestamp := first_day + interval '1 month';
    low text := to_char(first_day, 'YYYY-MM-DD') || ' 00:00:00+00';
    high text := to_char(next_day, 'YYYY-MM-DD') || ' 00:00:00+00';
    name text := 'segments_historyevent_' || to_char(first_day, 'YYYY_MM');
BEGIN
    -- One creator at a time (two workers, or a worker and a migration).
    PERFORM pg_advisory_xact_lock(hashtext('segments_history_partition_create'));
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE segments_historyevent INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (at >= %L AND at < %L)', name, name || '_month', low, high);
    -- No row of the month may reach the DEFAULT partition between the move and the ATTACH.
    LOCK TABLE segments_historyevent_default IN ACCESS EXCLUSIVE MODE;
    EXECUTE format(
        'WITH moved AS (DELETE FROM segments_historyevent_default WHERE at >= %L AND at < %L RETURNING *)'
        ' INSERT INTO %I SELECT * FROM moved',
        low, high, name
    );
    EXECUTE format(
        'ALTER TABLE segments_historyevent ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, low, high
    );
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', name, name || '_month');
    RETURN true;
END;
$$;

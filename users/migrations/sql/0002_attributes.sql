-- The document segment rules are evaluated against (segments/rules.py), derived from a user's attributes.
-- Each attribute stays under its key as an object naming its type, so that a jsonpath compares like with like:
--   a string  {"s": "6.2"}, with "v" when it is a version and "t" when it is an RFC 3339 timestamp;
--   a number  {"n": 30};  a boolean {"b": true};  a list {"l": ["vip", "beta"]}.
-- IMMUTABLE and free of errors on any object, as a stored generated column needs.

-- A version's sortable key, or NULL when the string is no version (dot-separated integers).
-- Trailing zero parts are dropped (6.2.0 = 6.2), then each part becomes its digit count (4 digits) and its
-- digits without leading zeros, so that comparing keys as strings compares versions numerically.
-- PL/pgSQL, whose plans are kept: an SQL function with a FROM is planned again on each call from another.
CREATE FUNCTION users_version_key(version text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    part text;
    key text := '';
BEGIN
    IF version !~ '^[0-9]+(\.[0-9]+)*$' THEN
        RETURN NULL;
    END IF;
    FOREACH part IN ARRAY string_to_array(regexp_replace(version, '(\.0+)+$', ''), '.') LOOP
        part := ltrim(part, '0');
        key := key || lpad(length(part)::text, 4, '0') || part;
    END LOOP;
    RETURN key;
END
$$;

-- An RFC 3339 timestamp's instant in seconds since 1970-01-01T00:00:00Z, or NULL when the string is none
-- (an impossible date such as February 30 included: each field is checked before any is used). Its fields
-- are at fixed places once the pattern matched (a pattern with captures costs ten times as much).
CREATE FUNCTION users_timestamp_epoch(value text) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    year int;
    month int;
    zone int;  -- length of the offset: 1 for Z, 6 for +03:00
    offset_hours int := 0;
    offset_minutes int := 0;
BEGIN
    IF value !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN
        RETURN NULL;
    END IF;
    year := substr(value, 1, 4)::int;
    month := substr(value, 6, 2)::int;
    zone := CASE WHEN right(value, 1) IN ('Z', 'z') THEN 1 ELSE 6 END;
    IF zone = 6 THEN
        offset_hours := substr(value, length(value) - 4, 2)::int;
        offset_minutes := right(value, 2)::int;
    END IF;
    IF year < 1 OR month NOT BETWEEN 1 AND 12 OR substr(value, 12, 2)::int > 23 OR substr(value, 15, 2)::int > 59
        OR substr(value, 18, 2)::int > 60 OR offset_hours > 23 OR offset_minutes > 59
        OR substr(value, 9, 2)::int NOT BETWEEN 1 AND
            extract(day FROM make_date(year, month, 1) + interval '1 month' - interval '1 day') THEN
        RETURN NULL;
    END IF;
    RETURN trim_scale(
        extract(epoch FROM make_timestamp(year, month, substr(value, 9, 2)::int, substr(value, 12, 2)::int,
            substr(value, 15, 2)::int, 0))
        + substr(value, 18, length(value) - 17 - zone)::numeric
        - (CASE substr(value, length(value) - 5, 1) WHEN '-' THEN -1 ELSE 1 END)
            * (offset_hours * 3600 + offset_minutes * 60));
END
$$;

CREATE FUNCTION users_attributes_document(attributes jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(key, CASE jsonb_typeof(value)
        WHEN 'string' THEN jsonb_strip_nulls(jsonb_build_object(
            's', value, 'v', users_version_key(value #>> '{}'), 't', users_timestamp_epoch(value #>> '{}')))
        WHEN 'number' THEN jsonb_build_object('n', value)
        WHEN 'boolean' THEN jsonb_build_object('b', value)
        WHEN 'array' THEN jsonb_build_object('l', value)
        ELSE '{}'
    END), '{}')
    FROM jsonb_each(attributes)
$$;

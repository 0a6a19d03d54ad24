-- The document segment rules are evaluated against (segments/rules.py), derived from a user's attributes.
-- Each attribute stays under its key as an object naming its type, so that a jsonpath compares like with like:
--   a string  {"s": "6.2"}, with "v" when it is a version and "t" when it is an RFC 3339 timestamp;
--   a number  {"n": 30};  a boolean {"b": true};  a list {"l": ["vip", "beta"]}.
-- IMMUTABLE and free of errors on any object, as a stored generated column needs.

-- A version's sortable key, or NULL when the string is no version (dot-separated integers).
-- Trailing zero parts are dropped (6.2.0 = 6.2), then each part becomes its digit count (4 digits) and its
-- digits without leading zeros, so that comparing keys as strings compares versions numerically.
CREATE FUNCTION users_version_key(version text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN version ~ '^[0-9]+(\.[0-9]+)*$' THEN (
        SELECT string_agg(lpad(length(ltrim(part, '0'))::text, 4, '0') || ltrim(part, '0'), '' ORDER BY n)
        FROM regexp_split_to_table(regexp_replace(version, '(\.0+)+$', ''), '\.') WITH ORDINALITY AS p (part, n)
    ) END
$$;

-- An RFC 3339 timestamp's instant in seconds since 1970-01-01T00:00:00Z, or NULL when the string is none
-- (including impossible dates such as February 30: each field is checked before any is used).
CREATE FUNCTION users_timestamp_epoch(value text) RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN f IS NULL THEN NULL
        WHEN f[1]::int < 1 OR f[2]::int NOT BETWEEN 1 AND 12 OR f[4]::int > 23 OR f[5]::int > 59
            OR f[6]::numeric >= 61 OR coalesce(f[8]::int, 0) > 23 OR coalesce(f[9]::int, 0) > 59 THEN NULL
        WHEN f[3]::int NOT BETWEEN 1 AND extract(day FROM make_date(f[1]::int, f[2]::int, 1)
            + interval '1 month' - interval '1 day') THEN NULL
        ELSE trim_scale(extract(epoch FROM make_timestamp(f[1]::int, f[2]::int, f[3]::int, f[4]::int, f[5]::int, 0))
            + f[6]::numeric - (CASE f[7] WHEN '-' THEN -1 ELSE 1 END) * (coalesce(f[8]::int, 0) * 3600 + coalesce(f[9]::int, 0) * 60))
    END
    FROM regexp_match(value,
        '^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2}(?:\.[0-9]+)?)(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))$'
    ) AS f
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

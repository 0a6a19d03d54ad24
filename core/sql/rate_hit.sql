-- One request of a client (`key`) against a rate of `limit` requests per `window` seconds, counted in
-- one statement: the row is locked while it changes, so concurrent requests count one after another.
-- A window starts at the first request after the last one ended. Requests refused are counted too
-- (up to limit + 1). Returns the count including this request, and the seconds left in the window.
INSERT INTO segmenter_ratecount AS rate (key, window_end, count)
VALUES (%(key)s, statement_timestamp() + make_interval(secs => %(window)s), 1)
ON CONFLICT (key) DO UPDATE SET
    window_end = CASE WHEN rate.window_end <= statement_timestamp() THEN excluded.window_end ELSE rate.window_end END,
    count = CASE WHEN rate.window_end <= statement_timestamp() THEN 1 ELSE least(rate.count, %(limit)s) + 1 END
RETURNING count, extract(epoch FROM window_end - statement_timestamp())::float8

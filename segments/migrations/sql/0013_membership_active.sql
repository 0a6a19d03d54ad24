-- segments_membership_active(expires_at, at): whether a membership with this expiry counts at `at`
-- (by default the transaction's clock, now()): it never expires, or expires later. The one
-- definition of "active"; every query asks it by name (segments/models.py, selectors.py, admin), and
-- one that wants the due memberships asks NOT segments_membership_active(...). A single SQL
-- expression without SET or STRICT, so the planner inlines it: a query plans exactly as if it had
-- written the expression, and NOT of it is `expires_at IS NOT NULL AND expires_at <= at`, which the
-- partial index membership_expires_at serves.
CREATE OR REPLACE FUNCTION segments_membership_active(expires_at timestamptz, at timestamptz DEFAULT now())
RETURNS boolean
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$ SELECT expires_at IS NULL OR expires_at > at $$;

"""SQL shared by every app's services: the clock of every write."""

# The clock of every write: read when the row changes, after the locks the change waited for, so
# that for each membership (and each user, for writers holding its lock) `at` follows commit order.
CLOCK = "clock_timestamp()"

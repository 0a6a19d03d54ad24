# docker compose's optional pooler (`--profile pooler`): Debian's PgBouncer, configured by deploy/pgbouncer.ini.
# A file of its own rather than compose's `dockerfile_inline`, which Compose v1 (Debian's docker-compose 1.29)
# rejects, whole file and all.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends pgbouncer \
    && rm -rf /var/lib/apt/lists/*
USER postgres

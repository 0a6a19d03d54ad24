# The service image: the same install and start steps as `make run` (make install / migrate / serve); no demo
# users (`make seed` registers users 1000-1999, an explicit step: docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SERVE_BIND=0.0.0.0:8000 \
    MEDIA_ROOT=/app/media

RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 app \
    && mkdir -p /app/media \
    && chown -R app /app

WORKDIR /app
USER app

COPY --chown=app requirements.txt Makefile ./
RUN make install

COPY --chown=app . .
RUN DJANGO_SECRET_KEY=collectstatic-only make static

EXPOSE 8000
CMD ["make", "migrate", "serve"]

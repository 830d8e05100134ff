# recordings-service: SQLite catalog and encrypted blobs under /var/lib/recordings.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    RECORDINGS_HOST=0.0.0.0 RECORDINGS_PORT=8080 \
    RECORDINGS_DATA_DIR=/var/lib/recordings

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY recordings_service ./recordings_service
COPY storage ./storage
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /var/lib/recordings recordings \
    && install -d -o recordings -g recordings -m 0700 /var/lib/recordings

USER recordings
VOLUME ["/var/lib/recordings"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)" || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["recordings-service"]
CMD ["serve"]

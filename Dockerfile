# Slim, non-root image: `switchboard serve` on 0.0.0.0:8000. Data (SQLite, master key) lives in /data;
# in production set SWITCHBOARD_DATABASE_URL to PostgreSQL and SWITCHBOARD_MASTER_KEYS from a secret store.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY connectors ./connectors
COPY scopes ./scopes
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --create-home switchboard
COPY --from=build /install /usr/local
ENV SWITCHBOARD_DATA_DIR=/data \
    SWITCHBOARD_DATABASE_URL=sqlite:////data/switchboard.db \
    PYTHONUNBUFFERED=1
USER switchboard
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
ENTRYPOINT ["switchboard"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

# The circuitmap image: the `circuitmap` CLI, the dashboard and the ingest worker
# (see docker-compose.yml). Neo4j runs in its own official container, so no Java here.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CIRCUITMAP_HOME=/data

# To keep the image small on CPU-only hosts, name an index that serves CPU-only torch wheels:
#   docker compose build --build-arg EXTRA_INDEX_URL=<index>
ARG EXTRA_INDEX_URL

WORKDIR /app
COPY . .
RUN pip install ${EXTRA_INDEX_URL:+--extra-index-url "$EXTRA_INDEX_URL"} . \
    && useradd --create-home --uid 1000 circuitmap \
    && mkdir -p /data && chown circuitmap /data

USER circuitmap
VOLUME ["/data"]
EXPOSE 8501
CMD ["circuitmap", "--help"]

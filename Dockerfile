# The circuitmap image: the `circuitmap` CLI, the dashboard and the ingest worker
# (see docker-compose.yml). Neo4j runs in its own official container, so no Java here.

# The dashboard's graph view is JavaScript from npm, bundled here (see the Makefile's `component`).
FROM node:20-slim AS component
WORKDIR /component
COPY app/component/frontend/package.json app/component/frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY app/component/frontend/src ./src
RUN npm run build

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
COPY --from=component /component/dist app/component/frontend/dist
RUN pip install ${EXTRA_INDEX_URL:+--extra-index-url "$EXTRA_INDEX_URL"} . \
    && useradd --create-home --uid 1000 circuitmap \
    && mkdir -p /data && chown circuitmap /data

USER circuitmap
VOLUME ["/data"]
EXPOSE 8501
CMD ["circuitmap", "--help"]

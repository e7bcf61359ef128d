# The LMIS image for the production stack (docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
RUN pip install --no-cache-dir uv && uv pip install --system --no-cache -r requirements.lock
COPY schemas ./schemas
COPY simulator ./simulator
COPY streams ./streams
COPY sinks ./sinks
COPY dashboards ./dashboards
COPY alerts ./alerts
COPY lmis ./lmis
RUN uv pip install --system --no-cache --no-deps .
USER nobody
ENTRYPOINT []

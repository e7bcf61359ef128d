# The LMIS image for the production stack (docker-compose.yml).

# The trend pipeline's compiled reader (native/: Rust, pyo3), built as an abi3 wheel in maturin's image.
FROM ghcr.io/pyo3/maturin:v1.9.6 AS native
COPY native /io/native
RUN maturin build --release --locked --manifest-path /io/native/Cargo.toml --out /wheels

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
RUN pip install --no-cache-dir uv && uv pip install --system --no-cache -r requirements.lock
COPY --from=native /wheels /wheels
RUN uv pip install --system --no-cache /wheels/*.whl && rm -rf /wheels
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

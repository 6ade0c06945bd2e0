# Slim, non-root image running the gateway. Build: docker build -t esim-gateway .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    ESIM_GATEWAY_HOST=0.0.0.0 ESIM_GATEWAY_DATABASE_URL=sqlite+aiosqlite:////data/esim_gateway.db
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home /data --create-home gateway
USER gateway
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["esim-gateway", "serve", "--host", "0.0.0.0"]

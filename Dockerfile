# Slim, non-root image running the gateway in live mode. Build: docker build -t esim-gateway .
# It needs API keys (or JWT settings) and provider credentials; see the README's "Docker".
# To run the sandbox on purpose: docker run -e ESIM_GATEWAY_MODE=sandbox -p 8000:8000 esim-gateway

# GraphiQL's browser assets from the npm registry (integrity-checked), so the IDE, when
# enabled, works offline and under a same-origin CSP instead of falling back to a CDN
FROM node:20-slim AS graphiql
COPY scripts/fetch-graphiql /src/scripts/fetch-graphiql
RUN /src/scripts/fetch-graphiql /graphiql

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
# the versions `make` installs and the tests ran with (constraints.txt, `make lock`)
RUN pip install --no-cache-dir --prefix=/install -c constraints.txt .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    ESIM_GATEWAY_MODE=live ESIM_GATEWAY_HOST=0.0.0.0 ESIM_GATEWAY_PORT=8000 \
    ESIM_GATEWAY_DATABASE_URL=sqlite+aiosqlite:////data/esim_gateway.db
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home /data --create-home gateway
# the gateway looks for var/graphiql in its working directory (not /data: a volume there
# would hide it)
COPY --from=graphiql /graphiql /app/var/graphiql
WORKDIR /app
USER gateway
EXPOSE 8000
# follows ESIM_GATEWAY_PORT: change the port with that variable, not with --port
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s CMD ["esim-gateway", "healthcheck"]
CMD ["esim-gateway", "serve"]

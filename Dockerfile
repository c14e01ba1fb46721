# One image for both programs of inflow: `--target api` (the default) and `--target worker`.
# Stages follow cache order: base → prune → install (manifests and lockfile only) → build
# (sources) → runtime (non-root, production dependencies and build output only).
# NODE_IMAGE lets an air-gapped host use a locally built Node 24 image (deploy/offline/).
ARG NODE_IMAGE=node:24-bookworm-slim

# base: Node 24 and npm, nothing else.
FROM ${NODE_IMAGE} AS base
WORKDIR /app

# prune: only the workspaces the two programs need, split into manifests (json/) and sources (full/).
FROM base AS prune
ARG TURBO_VERSION=2.11.11
COPY . .
RUN npx --yes "turbo@${TURBO_VERSION}" prune @inflow/api @inflow/worker --docker

# install: dependencies from the lockfile; this layer changes only when a manifest does.
FROM base AS install
COPY --from=prune /app/out/json/ .
RUN npm ci --ignore-scripts --no-audit --no-fund

# build: compile TypeScript, then drop the development dependencies.
FROM install AS build
COPY --from=prune /app/out/full/ .
# turbo prune copies workspaces, not the root files they extend.
COPY tsconfig.base.json ./
RUN npx turbo run build --filter=@inflow/api --filter=@inflow/worker \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# runtime: what runs in production, owned by root and run as the unprivileged `node` user.
FROM base AS runtime
ARG VERSION=1.0.0
LABEL org.opencontainers.image.title="inflow" \
      org.opencontainers.image.description="Balanced API replicas, a BullMQ queue and a worker persisting into PostgreSQL" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/shared/package.json ./shared/
COPY --from=build /app/shared/dist ./shared/dist
COPY --from=build /app/apps/api/package.json ./apps/api/
# apps/api/dist holds the page too (dist/public: apps/api/page bundled by esbuild in the api build).
COPY --from=build /app/apps/api/dist ./apps/api/dist
COPY --from=build /app/apps/worker/package.json ./apps/worker/
COPY --from=build /app/apps/worker/dist ./apps/worker/dist
COPY deploy/node/healthcheck.sh ./
USER node
# No curl in the image: the probe is bash alone (see the script). Compose probes /readyz the same way.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["bash", "healthcheck.sh"]

# worker: consumes the queue; health, readiness and metrics on HEALTH_PORT.
FROM runtime AS worker
ENV HEALTH_PORT=8081
EXPOSE 8081
# Exec form: SIGTERM goes straight to node (no shell in between), so the graceful shutdown runs.
# The heap flags: see the api stage (the worker's live heap is its jobs in flight, smaller still).
CMD ["node", "--max-semi-space-size=8", "--max-old-space-size=128", "apps/worker/dist/main.js"]

# api: the HTTP API on PORT. Last stage, so it is what a plain `docker build` produces.
FROM runtime AS api
ENV PORT=8080
EXPOSE 8080
# V8 sizes its heap from the memory it sees: on a large host with no container limit it allows
# large young semi-spaces and an old generation of gigabytes, and the process keeps hundreds of
# MiB of garbage. The API's live heap is a few tens of MiB: small semi-spaces and a 128 MiB old
# generation (a full collection comes sooner, nothing live is near it) keep the container small
# at the same throughput. https://nodejs.org/api/cli.html#--max-semi-space-sizesize-in-mib
CMD ["node", "--max-semi-space-size=8", "--max-old-space-size=128", "apps/api/dist/main.js"]

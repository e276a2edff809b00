# keyhive node image. Build: docker compose build (or docker build -t keyhive .)
#
# Stage 1 compiles the production dependencies (better-sqlite3 12 builds from
# source when no prebuilt binary is reachable); stage 2 is the same base image,
# so the native module's ABI matches, without the compiler toolchain.

FROM node:22-bookworm-slim AS build
WORKDIR /app
RUN apt-get update \
	&& apt-get install -y --no-install-recommends python3 make g++ \
	&& rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# tsx is a runtime dependency: moleculer-runner loads moleculer.config.ts and the services through it.
RUN npm ci --omit=dev && npm cache clean --force

FROM node:22-bookworm-slim
ENV NODE_ENV=production \
	KEYHIVE_DATA_DIR=/data \
	KEYHIVE_METRICS_PORT=3030
WORKDIR /app
# The application stays owned by root: the node user can read it, not change it.
COPY --from=build /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json moleculer.config.ts ./
COPY lib ./lib
COPY services ./services
COPY types ./types
COPY bin ./bin
# The SQLite store, the only place the node writes: a working copy when the node
# has a transporter (its durable state is its journal in NATS JetStream), the
# durable copy when it runs alone. Created and chowned before VOLUME, so a fresh
# anonymous volume starts owned by node.
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node
# Prometheus metrics (KEYHIVE_METRICS_PORT).
EXPOSE 3030
# SIGTERM is a graceful leave: the node hands its keys, rows and actor state to
# the others before it exits (KEYHIVE_LEAVE_TIMEOUT_MS, 30 s by default).
STOPSIGNAL SIGTERM
# The `node` npm script without npm: npm does not forward signals, so node must be
# PID 1 itself to receive SIGTERM. moleculer-runner expands the glob itself.
# No NODEID: it defaults to the hostname, which differs per replica and stays the
# same across `docker compose restart` / `stop` + `start` of one container.
CMD ["node", "--import", "tsx", "node_modules/moleculer/bin/moleculer-runner.js", "--config", "moleculer.config.ts", "services/*.service.ts"]

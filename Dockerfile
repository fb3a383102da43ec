FROM node:20-bookworm-slim
WORKDIR /app
# The workspaces' manifests and sources: npm ci's prepare step compiles the CLI from them.
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY protocol/ protocol/
COPY core/ core/
COPY db/ db/
COPY server/ server/
COPY device-sim/ device-sim/
# A broker's OpenSSL settings (node --openssl-config=deploy/openssl-broker.cnf … broker; docker-compose.yml).
COPY deploy/openssl-broker.cnf deploy/
RUN npm ci --no-audit --no-fund && npm cache clean --force
# enrolld runs as the image's unprivileged `node` user. ENROLLD_HOME (CA, server TLS key, admin token) is a volume it owns.
RUN mkdir -p /data && chown node:node /data
USER node
ENV ENROLLD_HOME=/data PATH=/app/node_modules/.bin:$PATH
VOLUME /data
# 9883: `enrolld broker`'s health and metrics port (BROKER_HTTP_PORT)
EXPOSE 8443 8883 9883
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["node", "server/scripts/healthcheck.mjs"]
# The entry point of `npm start`, without npm in between (signals reach enrolld directly; Ctrl-C/`docker stop` stop it cleanly).
CMD ["node", "--import", "tsx", "server/src/cli.ts", "up"]

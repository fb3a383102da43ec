FROM node:20-bookworm-slim
WORKDIR /app
# npm ci's prepare step compiles the CLI from the sources, so they are copied first.
COPY . .
RUN npm ci --no-audit --no-fund
EXPOSE 8443 8883
CMD ["npx", "tsx", "server/src/cli.ts", "up"]

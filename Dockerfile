FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY protocol/package.json protocol/
COPY core/package.json core/
COPY db/package.json db/
COPY server/package.json server/
COPY device-sim/package.json device-sim/
RUN npm ci --no-audit --no-fund
COPY . .
EXPOSE 8443 8883
CMD ["npx", "tsx", "server/src/cli.ts", "up"]

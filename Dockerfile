# The GraphQL server, compiled. Build: docker build -t graphql-field-cache .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/graphql-lease-cache/package.json ./packages/graphql-lease-cache/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json codegen.yml ./
COPY schema ./schema
COPY packages ./packages
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/graphql-lease-cache/package.json ./packages/graphql-lease-cache/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY schema ./schema
COPY --from=build /app/packages/graphql-lease-cache/dist ./packages/graphql-lease-cache/dist
COPY --from=build /app/dist ./dist
USER node
# 4000: GraphQL, /healthz, /readyz (status only). 9464: /metrics and a detailed /readyz
# (METRICS_PORT, production's default): publish it only where Prometheus scrapes.
EXPOSE 4000 9464
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# A young generation of 64 MB semi-spaces: see docs/embedded-services.md, Docker Compose.
CMD ["node", "--max-semi-space-size=64", "dist/index.js"]

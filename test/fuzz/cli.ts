// `npm run fuzz -- <target> --runs N [--seconds T] [--seed S]`: one fuzz target (csr, der, mqtt), N executions (or as
// many as fit in T seconds). Prints progress to
// stderr and one JSON line with the counts to stdout; exits 1 on a crash or a hang, with the input written under
// test/fuzz/findings/.
import { fuzz } from './engine.js';
import { targets } from './targets/index.js';

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run fuzz -- <${Object.keys(targets).join('|')}> --runs N [--seconds T] [--seed S]\n`);
  process.exit(2);
}

const [name, ...rest] = process.argv.slice(2);
const target = name ? targets[name] : undefined;
if (!target) usage(name ? `unknown fuzz target "${name}"` : 'which target?');
const options: { runs: number; seconds?: number; seed?: number } = { runs: 10_000 };
for (let i = 0; i < rest.length; i += 2) {
  const value = Number(rest[i + 1]);
  if (!Number.isSafeInteger(value) || value < 0) usage(`${rest[i]} needs a whole number`);
  if (rest[i] === '--runs') options.runs = value;
  else if (rest[i] === '--seed') options.seed = value;
  else if (rest[i] === '--seconds') options.seconds = value;
  else usage(`unknown option ${rest[i]}`);
}
const started = Date.now();
const result = await fuzz(target, {
  ...options,
  progress: (runs) => {
    if (runs % 10_000 === 0) process.stderr.write(`${target.name}: ${runs} runs in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  },
});
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(result.crashes + result.hangs > 0 ? 1 : 0);

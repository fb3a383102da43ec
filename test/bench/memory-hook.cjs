// Preloaded into broker processes by `npm run bench:cluster` (NODE_OPTIONS=--require …): on SIGUSR2 it runs a full GC
// and writes process.memoryUsage() to BENCH_MEMORY_DIR/<pid>-<n>.json, n counting from 1; with BENCH_HEAP_SNAPSHOT=1 it
// also writes a V8 heap snapshot beside it (<pid>-<n>.heapsnapshot), for the per-object breakdown. Nothing else changes
// in the process: the broker runs as shipped.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const v8 = require('node:v8');
const vm = require('node:vm');

const dir = process.env.BENCH_MEMORY_DIR;
if (dir) {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  let n = 0;
  process.on('SIGUSR2', () => {
    n++;
    gc();
    gc();
    const base = path.join(dir, `${process.pid}-${n}`);
    const m = process.memoryUsage(); // before the snapshot, which allocates
    if (process.env.BENCH_HEAP_SNAPSHOT === '1') v8.writeHeapSnapshot(`${base}.heapsnapshot`);
    const tmp = `${base}.json.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }));
    fs.renameSync(tmp, `${base}.json`);
  });
}

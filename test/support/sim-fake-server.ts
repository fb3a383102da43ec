// Runs the fake stack as its own process, for trying the simulator CLI without the real server:
//   npx tsx test/support/sim-fake-server.ts [lifetimeSeconds]   → prints {apiUrl, brokerUrl, home} on stdout
// SIGUSR2 restarts the broker (a --broker-restart-cmd target); SIGTERM/SIGINT stop it.
import { FakeStack } from './sim-fake-stack.js';

const stack = new FakeStack({ certLifetimeSeconds: Number(process.argv[2] ?? 3600) });
await stack.start();
process.stdout.write(`${JSON.stringify({ apiUrl: stack.apiUrl, brokerUrl: stack.brokerUrl, home: stack.home, pid: process.pid })}\n`);
process.on('SIGUSR2', () => void stack.restartBroker(1_000));
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => void stack.stop().then(() => process.exit(0)));
}

// The routes an express app declares, read from its router (nested routers included): what the route sweeps of the
// tests are checked against, so a new route cannot be missed.
import type { Express } from 'express';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createHttpApp, type HttpUseCases } from '../../server/src/http/app.js';

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** `METHOD path` of every route in an express app, sorted. */
export function declaredRoutes(app: Express): string[] {
  const found: string[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods).filter((m) => m !== '_all')) found.push(`${method.toUpperCase()} ${layer.route.path}`);
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return found.sort();
}

/** The app with no use cases behind it: enough to read its routes. */
export function routesOnlyApp(chainPem: string): Express {
  return createHttpApp({
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
    useCases: {} as HttpUseCases,
    chainPem,
    popLinking: 'if-present',
    checkReadiness: async () => ({}),
    consoleSessionTtlMs: 60_000,
  });
}

import { pino, type Logger } from 'pino';

/** pino JSON logs with fixed field names (requestId, deviceId, serial). Secrets are redacted by path as a backstop. */
export function createLogger(level: string, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino(
    {
      level,
      base: { service: 'enrolld' },
      redact: {
        paths: ['token', '*.token', 'password', '*.password', 'privateKey', '*.privateKey', 'req.headers.authorization', 'authorization'],
        censor: '[redacted]',
      },
    },
    destination as pino.DestinationStream,
  );
}

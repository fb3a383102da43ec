// Concurrency + rate limit for the costly steps (enrollment requests, mTLS handshakes at ~3 ms CPU each on both
// ends). Waiters are served in arrival order so no device starves; a `first` waiter (a measurement, such as the
// old-certificate probe, at most one per rotation) goes before them, still within the limits.

export interface Limiter {
  acquire(first?: boolean): Promise<() => void>;
  readonly inFlight: number;
  readonly waiting: number;
  close(): void;
}

export interface LimiterOptions {
  concurrency: number;
  /** starts per second; 0 = no rate limit */
  ratePerSecond: number;
}

export function createLimiter(opts: LimiterOptions): Limiter {
  const queue: Array<() => void> = [];
  let inFlight = 0;
  let closed = false;
  // token bucket, refilled by elapsed time; burst of one second's worth
  const burst = Math.max(1, opts.ratePerSecond);
  let tokens = burst;
  let last = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;

  const refill = (): void => {
    if (opts.ratePerSecond <= 0) return;
    const now = performance.now();
    tokens = Math.min(burst, tokens + ((now - last) / 1000) * opts.ratePerSecond);
    last = now;
  };

  const pump = (): void => {
    refill();
    while (queue.length > 0 && inFlight < opts.concurrency && (opts.ratePerSecond <= 0 || tokens >= 1)) {
      if (opts.ratePerSecond > 0) tokens -= 1;
      inFlight++;
      queue.shift()?.();
    }
    if (queue.length > 0 && inFlight < opts.concurrency && opts.ratePerSecond > 0 && !timer && !closed) {
      const wait = ((1 - tokens) / opts.ratePerSecond) * 1000;
      timer = setTimeout(() => {
        timer = undefined;
        pump();
      }, Math.max(1, wait));
    }
  };

  return {
    acquire(first = false) {
      return new Promise((resolve) => {
        let released = false;
        queue[first ? 'unshift' : 'push'](() =>
          resolve(() => {
            if (released) return;
            released = true;
            inFlight--;
            pump();
          }),
        );
        pump();
      });
    },
    get inFlight() {
      return inFlight;
    },
    get waiting() {
      return queue.length;
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      // let everyone through so pending device loops can see they are stopped and exit
      while (queue.length > 0) {
        inFlight++;
        queue.shift()?.();
      }
    },
  };
}

// Jobs the use cases ask for (a bulk revocation) on their way to the job queue. The job runtime consumes the relay while
// it runs, so use cases are built before it and hold no reference to it (as the outbound relay does for the broker).
import { EnrollError } from '../errors.js';

export interface JobRequest {
  name: 'bulk-revoke';
  /** The business id, also the queue's job id: asking twice queues once. */
  id: string;
}

export interface JobRequestRelay {
  /** Rejects with `unavailable` when no job queue is consuming (Redis unreachable, or none in this process). */
  request(job: JobRequest): Promise<void>;
  /** Attaches the one sink; returns the function that detaches it. */
  consume(sink: (job: JobRequest) => Promise<void>): () => void;
}

export function createJobRequestRelay(): JobRequestRelay {
  let current: ((job: JobRequest) => Promise<void>) | undefined;
  return {
    request(job) {
      if (!current) return Promise.reject(new EnrollError('unavailable', 'the job queue is not reachable; try again shortly', { retryAfterSeconds: 5 }));
      return current(job);
    },
    consume(sink) {
      if (current) throw new Error('job request relay already has a consumer');
      current = sink;
      return () => {
        if (current === sink) current = undefined;
      };
    },
  };
}

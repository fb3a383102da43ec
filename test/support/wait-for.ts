// The one polling wait of the test suite: for a state that has no event of its own to await (a database row, a
// metric, a flag set by a callback). Tests await events directly where the code under test emits one.

/** Resolves when `predicate` holds, checking every `intervalMs`; rejects after `timeoutMs` naming `what`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition', intervalMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Resolves with the first value `produce` returns that is not undefined; rejects like waitFor. */
export async function waitForValue<T>(produce: () => T | undefined | Promise<T | undefined>, timeoutMs = 5000, what = 'value', intervalMs = 10): Promise<T> {
  let value: T | undefined;
  await waitFor(async () => (value = await produce()) !== undefined, timeoutMs, what, intervalMs);
  return value as T;
}

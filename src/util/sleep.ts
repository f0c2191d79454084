// The one sleep helper: waits `ms`, or less when `signal` aborts first. It never rejects, so a
// loop that sleeps between tries checks its own stop condition after it, in one place.

/** Resolves after `ms`, or as soon as `signal` aborts (a signal aborted before the call is not seen). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

// The commands that go on until Ctrl-C, or until whoever reads their output goes away (`| head`):
// `baton status --watch` and `baton logs -f`. Both end with exit 0 then.

/**
 * Runs `round` now and then every `intervalMs` until SIGINT or an error on stdout (EPIPE).
 * `stopped()` tells a round that is waiting on the daemon that it should print nothing more.
 */
export async function repeatUntilStopped(
  intervalMs: number,
  round: (first: boolean, stopped: () => boolean) => Promise<void>,
): Promise<void> {
  let stopped = false;
  let wake = (): void => {};
  const stop = (): void => {
    stopped = true;
    wake();
  };
  process.once('SIGINT', stop);
  process.stdout.on('error', stop);
  try {
    for (let first = true; !stopped; first = false) {
      await round(first, () => stopped);
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    process.off('SIGINT', stop);
    process.stdout.off('error', stop);
  }
}

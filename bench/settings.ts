// Settings every benchmark reads the same way: whole numbers from BENCH_* variables.

/** BENCH_* as a whole number within [min, max], or `fallback` when unset. */
export function envNumber(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name}=${text}: expected a whole number from ${min} to ${max}`);
  }
  return n;
}

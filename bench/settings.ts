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

/** `--json` (or `--help`, which prints `usage` and exits); anything else is an error. */
export function readJsonFlag(argv: readonly string[], usage: string): boolean {
  let json = false;
  for (const arg of argv) {
    if (arg === '--json') json = true;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(usage);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (try --json or --help)`);
  }
  return json;
}

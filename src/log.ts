// Logging: pino, JSON lines to stdout (systemd and CI read them as they are).
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: options.name ?? 'baton',
    level: options.level ?? process.env.BATON_LOG_LEVEL ?? 'info',
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** The access log: JSON lines to stdout or a file, written asynchronously. */
export function createAccessLog(dest: string): (entry: object) => void {
  const stream = pino.destination({ dest: dest === 'stdout' ? 1 : dest, sync: false, mkdir: true });
  const logger = pino({ base: undefined, timestamp: false }, stream);
  return (entry) => logger.info(entry);
}

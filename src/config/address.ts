// "host:port" and unix-socket addresses, as written in `listen`, `admin` and target lists.

export interface TcpAddress {
  readonly kind: 'tcp';
  readonly host: string;
  readonly port: number;
}
export interface UnixAddress {
  readonly kind: 'unix';
  readonly path: string;
}
export type ListenAddress = TcpAddress | UnixAddress;

/** Parses "127.0.0.1:8080", "[::1]:8080", ":8080" (all interfaces) or "unix:/run/baton.sock". */
export function parseListen(text: string): ListenAddress | undefined {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    return path ? { kind: 'unix', path } : undefined;
  }
  if (text.startsWith('/')) return { kind: 'unix', path: text };
  return parseHostPort(text, true);
}

/** Parses "host:port"; the port may be 0 only where `allowZero` (listeners, for tests). */
export function parseHostPort(text: string, allowZero = false): TcpAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:/[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535 || (port === 0 && !allowZero)) return undefined;
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]!);
  return { kind: 'tcp', host, port };
}

export function formatAddress(a: ListenAddress): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Loopback or a unix socket: the admin API may run without a token there. */
export function isLocalOnly(a: ListenAddress): boolean {
  if (a.kind === 'unix') return true;
  return a.host === 'localhost' || a.host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(a.host);
}

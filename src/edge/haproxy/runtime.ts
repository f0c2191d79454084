// A client of HAProxy's runtime API (the `stats socket`), one command per connection: HAProxy
// reads one line, answers and closes (its non-interactive mode), so a reload or a dead worker
// never leaves a half-read session behind.
//
// Every command is sent as `set severity-output string; <command>`: HAProxy then prefixes what
// its commands report with `[err]:`, `[warning]:` or `[info]:`, which tells a refusal ("No such
// server.", "Permission denied", "Absolute weight can only be between 0 and 256 inclusive.")
// from an answer without a list of every error text. Dumps (show stat, show servers state) are
// not prefixed. "Unknown command" is reported at [info], so it is matched by its text.
import net from 'node:net';
import path from 'node:path';
import { EdgeError } from '../edge.js';

export type SocketAddress =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/** `unix:/path`, a plain path (relative to `baseDir`), or `host:port` / `[v6]:port`. */
export function parseSocketAddress(spec: string, baseDir: string): SocketAddress {
  if (spec.startsWith('unix:'))
    return { kind: 'unix', path: path.resolve(baseDir, spec.slice('unix:'.length)) };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^/:[\]]+)):(\d{1,5})$/.exec(spec);
  const port = Number(m?.[3]);
  if (m && port >= 1 && port <= 65535) return { kind: 'tcp', host: m[1] ?? m[2]!, port };
  return { kind: 'unix', path: path.resolve(baseDir, spec) };
}

export function describeSocket(a: SocketAddress): string {
  if (a.kind === 'unix') return a.path;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** One server of `show servers state <backend>`. */
export interface ServerState {
  readonly name: string;
  readonly addr: string;
  readonly port: number;
  /** srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping. */
  readonly opState: number;
  /** srv_admin_state flags (SRV_ADMF_*): maintenance 0x23, drain 0x18. */
  readonly adminState: number;
  /** The weight set by the user (srv_uweight), 0..256. */
  readonly weight: number;
  /** srv_check_state flags (CHK_ST_*): configured 0x2, enabled 0x4. */
  readonly checkState: number;
}

/** One server row of `show stat`. */
export interface ServerStat {
  readonly name: string;
  readonly status: string;
  /** Requests being served (scur) and waiting in this server's queue (qcur). */
  readonly scur: number;
  readonly qcur: number;
  /** Sessions since HAProxy (re)started, whatever target the slot had meanwhile. */
  readonly stot: number;
  /** Responses received by class: hrsp_1xx .. hrsp_5xx. */
  readonly hrsp: readonly number[];
  /** Responses with a status outside 1xx..5xx. */
  readonly hrspOther: number;
  /** Failed connections, and failed or aborted responses (HAProxy answered 502/504 itself). */
  readonly econ: number;
  readonly eresp: number;
  /** Transfers the client aborted (cli_abrt). */
  readonly cliAbrt: number;
  readonly backup: boolean;
  readonly checkStatus: string;
  readonly checkCode: string;
  readonly checkDesc: string;
}

export class HaproxyRuntime {
  readonly describe: string;

  constructor(
    readonly address: SocketAddress,
    private readonly timeoutMs: number,
  ) {
    this.describe = describeSocket(address);
  }

  /** Runs one command; throws an EdgeError when HAProxy refuses it or cannot be reached. */
  async command(cmd: string): Promise<string> {
    if (/[\n;]/.test(cmd)) throw new EdgeError(`not one HAProxy command: ${JSON.stringify(cmd)}`);
    const raw = await this.exchange(`set severity-output string; ${cmd}\n`, cmd);
    // Each command's answer ends with an empty line: the first one is the (empty) answer of
    // `set severity-output`.
    const reply = raw.replace(/^\n/, '').trimEnd();
    const text = reply.replace(/^\[(?:info|notice|warning|err)\]: /, '');
    if (reply.startsWith('[err]: ') || text.startsWith('Unknown command')) {
      throw new EdgeError(`HAProxy refused \`${cmd}\` on ${this.describe}: ${firstLine(text)}`, {
        details: { command: cmd, reply: text },
      });
    }
    return text;
  }

  /** `show servers state <backend>`: the parsed servers, and the text (a server-state file). */
  async serversState(backend: string): Promise<{ text: string; servers: ServerState[] }> {
    const text = await this.command(`show servers state ${backend}`);
    return { text: `${text}\n`, servers: parseServersState(text) };
  }

  /** `show stat` for the servers of one backend. */
  async serverStats(backend: string): Promise<ServerStat[]> {
    return parseServerStats(await this.command(`show stat ${backend} 4 -1`));
  }

  private exchange(line: string, cmd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const a = this.address;
      const socket = a.kind === 'unix' ? net.connect(a.path) : net.connect(a.port, a.host);
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new EdgeError(
            `HAProxy runtime socket ${this.describe} did not answer \`${cmd}\` within ${this.timeoutMs}ms`,
          ),
        );
      }, this.timeoutMs);
      socket.on('connect', () => socket.write(line));
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(this.connectError(err, cmd));
      });
      socket.on('close', (hadError) => {
        clearTimeout(timer);
        if (!hadError) resolve(Buffer.concat(chunks).toString());
      });
    });
  }

  private connectError(err: NodeJS.ErrnoException, cmd: string): EdgeError {
    const s = this.describe;
    const level = `\`stats socket ${s} level admin\``;
    switch (err.code) {
      case 'ENOENT':
        return new EdgeError(`HAProxy runtime socket ${s} not found: is HAProxy running with ${level}?`, {
          cause: err,
        });
      case 'EACCES':
        return new EdgeError(
          `HAProxy runtime socket ${s}: permission denied: run Baton as a user allowed to write to it (e.g. \`stats socket ${s} mode 660 group haproxy level admin\` and Baton's user in that group)`,
          { cause: err },
        );
      case 'ECONNREFUSED':
        return new EdgeError(
          `HAProxy runtime socket ${s} refused the connection: is HAProxy running with ${level}? (a socket file left by a stopped HAProxy refuses connections)`,
          { cause: err },
        );
      default:
        return new EdgeError(`HAProxy runtime socket ${s} failed during \`${cmd}\`: ${err.message}`, {
          cause: err,
        });
    }
  }
}

/**
 * `show servers state`: a version line ("1"), then `# be_id be_name srv_id srv_name ...`, then
 * one line per server, space-separated. Columns are read by the header's names.
 */
export function parseServersState(text: string): ServerState[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const version = lines[0]?.trim();
  if (version !== '1') {
    throw new EdgeError(
      `unexpected \`show servers state\` answer (version ${version ?? 'missing'}, expected 1)`,
      {
        details: { reply: text },
      },
    );
  }
  const header = lines[1];
  if (!header?.startsWith('# ')) throw new EdgeError('`show servers state` answered without its header line');
  const col = columns(header.slice(2).trim().split(/\s+/), 'show servers state');
  return lines.slice(2).map((line) => {
    const f = line.trim().split(/\s+/);
    return {
      name: col.str(f, 'srv_name'),
      addr: col.str(f, 'srv_addr'),
      port: col.num(f, 'srv_port'),
      opState: col.num(f, 'srv_op_state'),
      adminState: col.num(f, 'srv_admin_state'),
      weight: col.num(f, 'srv_uweight'),
      checkState: col.num(f, 'srv_check_state'),
    };
  });
}

/** `show stat` CSV: `# pxname,svname,...` then one row per proxy or server. Servers only. */
export function parseServerStats(text: string): ServerStat[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0];
  if (!header?.startsWith('# ')) throw new EdgeError('`show stat` answered without its header line');
  const col = columns(parseCsvLine(header.slice(2)), 'show stat');
  return lines
    .slice(1)
    .map(parseCsvLine)
    .filter((f) => !['FRONTEND', 'BACKEND'].includes(col.str(f, 'svname')))
    .map((f) => ({
      name: col.str(f, 'svname'),
      status: col.str(f, 'status'),
      scur: col.num(f, 'scur'),
      qcur: col.num(f, 'qcur'),
      stot: col.num(f, 'stot'),
      hrsp: ['hrsp_1xx', 'hrsp_2xx', 'hrsp_3xx', 'hrsp_4xx', 'hrsp_5xx'].map((n) => col.num(f, n)),
      hrspOther: col.num(f, 'hrsp_other'),
      econ: col.num(f, 'econ'),
      eresp: col.num(f, 'eresp'),
      cliAbrt: col.num(f, 'cli_abrt'),
      backup: col.num(f, 'bck') === 1,
      checkStatus: col.str(f, 'check_status'),
      checkCode: col.str(f, 'check_code'),
      checkDesc: col.str(f, 'check_desc'),
    }));
}

/** Field access by column name; a missing column is an error, an empty field a 0 or ''. */
function columns(names: readonly string[], what: string) {
  const index = new Map(names.map((n, i) => [n, i]));
  const at = (name: string): number => {
    const i = index.get(name);
    if (i === undefined) throw new EdgeError(`\`${what}\` has no column ${name}: is this HAProxy 2.x?`);
    return i;
  };
  return {
    str: (f: readonly string[], name: string): string => f[at(name)] ?? '',
    num: (f: readonly string[], name: string): number => Number(f[at(name)] || 0),
  };
}

/** One CSV line as HAProxy writes it: fields with a comma or quote are quoted, quotes doubled. */
function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      for (i++; i < line.length; i++) {
        if (line[i] !== '"') field += line[i];
        else if (line[i + 1] === '"') field += line[i++];
        else break;
      }
      i++; // the closing quote
    } else {
      const end = line.indexOf(',', i);
      field = line.slice(i, end === -1 ? undefined : end);
      i = end === -1 ? line.length : end;
    }
    fields.push(field);
    if (line[i] !== ',') return fields;
    i++;
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? '';
}

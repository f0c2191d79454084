// The POSIX sh scripts the SSH driver runs on hosts, and the parsers of what they print. Every
// value from Baton (paths, words of the command, env values, pids) enters a script as a quoted
// word (quote.ts); nothing else is spliced in. Output lines carry a one-letter tag, and log
// lines are prefixed, so a log can never be mistaken for a status line.
import type { InstanceRecord } from '../driver.js';
import { shJoin, shQuote } from './quote.js';

/**
 * `al PID`: the process exists and is not a zombie. A zombie is gone for us (its parent, often
 * an init that does not reap, keeps it listed); a process of another user (kill -0 fails with
 * EPERM) still counts as there, as in the local driver.
 */
const ALIVE = `al() {
  [ -d "/proc/$1" ] || kill -0 "$1" 2>/dev/null || return 1
  case $(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) in Z*|X*) return 1 ;; esac
  return 0
}`;

/** `stt PID`: its start time, field 22 of /proc/PID/stat (comm, field 2, may hold spaces). */
const STARTTIME = `stt() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d ' ' -f 20; }`;

/** `bootid`: this boot's random id, new at every boot. */
const BOOTID = `bootid() { cat /proc/sys/kernel/random/boot_id 2>/dev/null; }`;

/**
 * `ours PID START BOOT IID [VAR=VALUE...]`: PID is the instance Baton started, by the rule of
 * src/drivers/local/proc.ts identify() ('-' for what the record lacks): a recorded start time
 * and boot must match; a BATON_INSTANCE_ID in its environment must be IID; without a start
 * time, its environment must hold BATON_INSTANCE_ID=IID, or (no IID either: a record of an
 * older Baton) every VAR=VALUE. Else returns 1 with $why set: "gone", or why it is not ours. Its
 * variables start with _o so that they never clobber the caller's (sh has no locals).
 */
const OURS = `${STARTTIME}
${BOOTID}
ours() {
  _op=$1; _os=$2; _ob=$3; _oi=$4; shift 4
  al "$_op" || { why=gone; return 1; }
  if [ "$_os" != - ]; then
    if [ "$_ob" != - ] && _ot=$(bootid) && [ -n "$_ot" ] && [ "$_ot" != "$_ob" ]; then why="pid $_op belongs to another process now (the host rebooted since the instance started)"; return 1; fi
    _ot=$(stt "$_op"); [ -n "$_ot" ] || { why=gone; return 1; }
    [ "$_ot" = "$_os" ] || { why="pid $_op belongs to another process now (started at tick $_ot since boot, the instance at $_os)"; return 1; }
  fi
  _oe=$(tr '\\000' '\\n' 2>/dev/null < "/proc/$_op/environ") || _oe=
  _oid=$(printf '%s\\n' "$_oe" | sed -n 's/^BATON_INSTANCE_ID=//p' | head -n 1)
  if [ "$_oi" != - ] && [ -n "$_oid" ] && [ "$_oid" != "$_oi" ]; then why="pid $_op belongs to another process now (BATON_INSTANCE_ID=$_oid in its environment, not $_oi)"; return 1; fi
  [ "$_os" != - ] && return 0
  if [ "$_oi" != - ]; then [ "$_oid" = "$_oi" ] && return 0; why="pid $_op belongs to another process now (no BATON_INSTANCE_ID=$_oi in its environment)"; return 1; fi
  [ -n "$_oe" ] || { why="pid $_op is a process whose environment cannot be read: not provably ours"; return 1; }
  for _ol in "$@"; do printf '%s\\n' "$_oe" | grep -qxF -- "$_ol" || { why="pid $_op belongs to another process now (no $_ol in its environment)"; return 1; }; done
  return 0
}`;

/** The words after PID for `ours`: what the record says of who its process is. */
export function identityWords(r: InstanceRecord): string {
  const legacy = r.instanceId === undefined ? [`PORT=${r.port}`, `BATON_VERSION=${r.version}`] : [];
  return shJoin([String(r.startTime ?? '-'), r.bootId ?? '-', r.instanceId ?? '-', ...legacy]);
}

/** `killgrp SIG PID`: the whole process group, or the process alone when it has no group of its own. */
const KILLGRP = `killgrp() { kill -s "$1" -- "-$2" 2>/dev/null || kill -s "$1" "$2" 2>/dev/null; return 0; }`;

/** `rmpid PID FILE`: removes the pid file when it still names PID. */
const RMPID = `rmpid() {
  if [ -s "$2" ]; then q=; read -r q _r < "$2" || true; [ "$q" = "$1" ] && rm -f "$2"; fi
  return 0
}`;

/** `tl TAG LOG`: its last lines (50 at most, from the last 16 KiB), each prefixed with TAG. */
const TAIL = `tl() { tail -c 16384 "$2" 2>/dev/null | tail -n 50 | sed "s/^/$1/"; }`;

export interface RemotePaths {
  /** A sh word for the remote folder (may expand "$HOME"). */
  readonly dir: string;
  readonly id: string;
}

export interface StartParams extends RemotePaths {
  /** Identifies this start attempt in the pid file (a late or timed-out start can be told apart). */
  readonly token: string;
  /** Remote working directory; none: the login directory (the user's home). */
  readonly cwd: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly words: readonly string[];
}

/**
 * Starts the command detached, in a session and process group of its own (setsid), output
 * appended to its log, stdin from /dev/null. A small sh wrapper writes "$$ token" to the pid
 * file and execs the command, so the pid read back is the command's own, which is also its
 * process group id (whether setsid had to fork or not). A process still recorded under the
 * same id is killed first: ids are unique among live instances (the port is part of them, and
 * a port in use is never allocated), so it can only be the leftover of a start that failed;
 * killed only when it has that start's token as its BATON_INSTANCE_ID (else its pid is another
 * process's now).
 *
 * Prints "pid N", "log PATH", and "start TICKS" and "boot ID" (who the process is: see `ours`).
 */
export function startScript(p: StartParams): string {
  const [file] = p.words;
  if (file === undefined) throw new Error('empty command');
  const env = Object.entries(p.env).map(([k, v]) => `${k}=${v}`);
  const fail = (msg: string, extra = ''): string => `{ printf '%s\\n' ${shQuote(msg)}${extra} >&2; exit 3; }`;
  return [
    'set -u',
    ALIVE,
    KILLGRP,
    OURS,
    `d=${p.dir}`,
    `mkdir -p "$d/logs" "$d/run" || ${fail('cannot create the remote folder for logs and pid files')}`,
    // Absolute, so the paths stay right after the cd below (and the record has a full path).
    'd=$(cd "$d" && pwd)',
    `log="$d/logs/"${shQuote(`${p.id}.log`)}`,
    `pidf="$d/run/"${shQuote(`${p.id}.pid`)}`,
    'if [ -s "$pidf" ]; then op=; _t=; read -r op _t < "$pidf" || true; [ -n "$op" ] && [ -n "$_t" ] && ours "$op" - - "$_t" && killgrp KILL "$op"; fi',
    'rm -f "$pidf"',
    p.cwd !== undefined
      ? `cd ${shQuote(p.cwd)} 2>/dev/null || ${fail(`app.cwd ${p.cwd} does not exist on this host (a relative one starts from the login folder)`)}`
      : '',
    `command -v setsid >/dev/null 2>&1 || ${fail('setsid is not installed on this host (util-linux): Baton needs it to start each instance in its own process group')}`,
    `command -v ${shQuote(file)} >/dev/null 2>&1 || ${fail(
      `command not found on this host: ${file} (app.command). Check the path (relative paths start from the working directory) or PATH`,
      ` "(PATH=$PATH, in $(pwd))"`,
    )}`,
    `env ${shJoin(env)} setsid sh -c 'echo "$$ $1" > "$0"; shift; exec "$@"' "$pidf" ${shQuote(p.token)} ${shJoin(p.words)} >> "$log" 2>&1 < /dev/null &`,
    'i=0',
    'while [ "$i" -lt 60 ]; do',
    `  if [ -s "$pidf" ]; then p=; t=; read -r p t < "$pidf" || true; if [ "$t" = ${shQuote(p.token)} ]; then echo "pid $p"; echo "log $log"; echo "start $(stt "$p")"; echo "boot $(bootid)"; exit 0; fi; fi`,
    '  sleep 0.05; i=$((i+1))',
    'done',
    `printf '%s\\n' "the process did not start within 3s (no pid file $pidf). Last lines of $log:" >&2`,
    'tail -n 20 "$log" >&2',
    'exit 4',
  ]
    .filter((l) => l !== '')
    .join('\n');
}

export function parseStart(
  stdout: string,
): { pid: number; logFile: string; startTime?: number; bootId?: string } | null {
  const pid = Number(/^pid (\d+)$/m.exec(stdout)?.[1]);
  const logFile = /^log (.+)$/m.exec(stdout)?.[1];
  if (!(pid > 0 && logFile)) return null;
  // Absent when the process was gone before its start time could be read (it failed at once).
  const startTime = /^start (\d+)$/m.exec(stdout)?.[1];
  const bootId = /^boot ([0-9a-f-]+)$/m.exec(stdout)?.[1];
  return {
    pid,
    logFile,
    ...(startTime !== undefined ? { startTime: Number(startTime) } : {}),
    ...(bootId !== undefined ? { bootId } : {}),
  };
}

export interface PollEntry {
  readonly pid: number;
  readonly logFile: string;
  readonly pidFile: string;
  /** Also send its log tail while it runs (during its readiness window). */
  readonly tail: boolean;
  /** Who its process is (identityWords of its record). */
  readonly identity: string;
}

export interface Cleanup {
  /** The pid file as a sh word (it may start with "$HOME"). */
  readonly pidFileWord: string;
  readonly token: string;
}

/**
 * One call per host for all its instances: "A pid" (alive, then "S pid bytes": its log's size)
 * or "D pid" (gone, with its log tail
 * and its pid file removed; before it "W pid why" when the pid is another process's now),
 * "L pid line" log lines, and "C token" for each finished cleanup of a start that may have run
 * after Baton gave up on it (killed only when it has that token as its BATON_INSTANCE_ID).
 */
export function pollScript(entries: readonly PollEntry[], cleanups: readonly Cleanup[]): string {
  return [
    ALIVE,
    OURS,
    KILLGRP,
    RMPID,
    TAIL,
    'chk() { _cp=$1; _cl=$2; _cf=$3; _ct=$4; shift 4; if ours "$_cp" "$@"; then echo "A $_cp"; echo "S $_cp $(wc -c < "$_cl" 2>/dev/null | tr -d " ")"; [ "$_ct" = 1 ] && tl "L $_cp " "$_cl"; else [ "$why" = gone ] || echo "W $_cp $why"; echo "D $_cp"; tl "L $_cp " "$_cl"; rmpid "$_cp" "$_cf"; fi; return 0; }',
    'cl() { if [ -s "$1" ]; then q=; r=; read -r q r < "$1" || true; if [ "$r" = "$2" ]; then [ -n "$q" ] && ours "$q" - - "$2" && killgrp KILL "$q"; rm -f "$1"; fi; fi; echo "C $2"; }',
    ...entries.map(
      (e) => `chk ${e.pid} ${shQuote(e.logFile)} ${shQuote(e.pidFile)} ${e.tail ? 1 : 0} ${e.identity}`,
    ),
    ...cleanups.map((c) => `cl ${c.pidFileWord} ${shQuote(c.token)}`),
    'exit 0',
  ].join('\n');
}

export interface PollResult {
  readonly alive: Set<number>;
  readonly gone: Set<number>;
  readonly tails: Map<number, string>;
  /** The size of each live instance's log, in bytes. */
  readonly logBytes: Map<number, number>;
  readonly cleaned: Set<string>;
  /** Among `gone`: those whose pid is another process's now, and why. */
  readonly lost: Map<number, string>;
}

export function parsePoll(stdout: string): PollResult {
  const r: PollResult = {
    alive: new Set(),
    gone: new Set(),
    tails: new Map(),
    logBytes: new Map(),
    cleaned: new Set(),
    lost: new Map(),
  };
  const lines = new Map<number, string[]>();
  for (const line of stdout.split('\n')) {
    const m = /^([ADLCWS]) (\S+)(?: (.*))?$/.exec(line);
    if (!m) continue;
    const [, tag, word, rest] = m;
    if (tag === 'C') r.cleaned.add(word!);
    else if (tag === 'W') r.lost.set(Number(word), rest ?? '');
    else if (tag === 'A') r.alive.add(Number(word));
    else if (tag === 'D') r.gone.add(Number(word));
    else if (tag === 'S') {
      if (/^\d+$/.test(rest ?? '')) r.logBytes.set(Number(word), Number(rest));
    } else {
      const pid = Number(word);
      const list = lines.get(pid) ?? [];
      list.push(rest ?? '');
      lines.set(pid, list);
    }
  }
  for (const [pid, l] of lines) r.tails.set(pid, l.join('\n'));
  return r;
}

export interface StopParams {
  readonly pid: number;
  /** Without the SIG prefix: TERM, INT... */
  readonly signal: string;
  readonly timeoutMs: number;
  readonly logFile: string;
  readonly pidFile: string;
  /** Who its process is (identityWords of its record). */
  readonly identity: string;
}

/**
 * The stop signal to the process group, `kill -0` every 100ms until the leader is gone or the
 * timeout passed, then SIGKILL to the group (whatever is left of it) and up to 5s more. A pid
 * that is another process's now is never signalled: "gone", with "W why" before it.
 * Prints "R stopped|forced|gone|stuck" and the log tail as "L line".
 */
export function stopScript(p: StopParams): string {
  const ticks = Math.max(1, Math.ceil(p.timeoutMs / 100));
  return [
    ALIVE,
    OURS,
    KILLGRP,
    RMPID,
    TAIL,
    `p=${p.pid}`,
    `mine() { ours "$p" ${p.identity}; }`,
    'if ! mine; then r=gone; [ "$why" = gone ] || echo "W $why"; else',
    `  killgrp ${shQuote(p.signal)} "$p"`,
    `  i=0; while [ "$i" -lt ${ticks} ] && al "$p"; do sleep 0.1; i=$((i+1)); done`,
    '  if al "$p"; then r=forced; else r=stopped; fi',
    // The leader may be gone while others of its group still run: the group goes too. Unless
    // its pid is another process's already (that one would lead a group of its own).
    '  if ! al "$p" || mine; then killgrp KILL "$p"; fi',
    '  j=0; while [ "$j" -lt 50 ] && al "$p" && mine; do sleep 0.1; j=$((j+1)); done',
    '  al "$p" && mine && r=stuck',
    'fi',
    'echo "R $r"',
    `rmpid "$p" ${shQuote(p.pidFile)}`,
    `tl 'L ' ${shQuote(p.logFile)}`,
    'exit 0',
  ].join('\n');
}

export function parseStop(stdout: string): { result: string | null; tail: string; lost: string | null } {
  const result = /^R (\w+)$/m.exec(stdout)?.[1] ?? null;
  const lost = /^W (.+)$/m.exec(stdout)?.[1] ?? null;
  const tail = stdout
    .split('\n')
    .filter((l) => l.startsWith('L '))
    .map((l) => l.slice(2))
    .join('\n');
  return { result, tail, lost };
}

/**
 * What listens on the host: `ss -ltn` when it is there; else bash's /dev/tcp tried on each
 * candidate port of 127.0.0.1; else nothing (all candidates taken as free).
 */
export function portsScript(candidates: readonly number[]): string {
  return [
    'if command -v ss >/dev/null 2>&1; then echo "#ss"; ss -ltn',
    'elif command -v bash >/dev/null 2>&1; then echo "#probe"',
    `  for p in ${candidates.join(' ')}; do bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null && echo "used $p"; done`,
    'else echo "#none"; fi',
    'exit 0',
  ].join('\n');
}

/** The ports in use, or null when the host has neither ss nor bash to tell. */
export function parsePorts(stdout: string): Set<number> | null {
  const lines = stdout.split('\n');
  const mode = lines.find((l) => l.startsWith('#'));
  if (mode === '#none' || mode === undefined) return null;
  const used = new Set<number>();
  for (const line of lines) {
    if (mode === '#probe') {
      const m = /^used (\d+)$/.exec(line);
      if (m) used.add(Number(m[1]));
      continue;
    }
    // State Recv-Q Send-Q Local-Address:Port Peer-Address:Port: 0.0.0.0:22, [::]:22, *:22, 127.0.0.53%lo:53
    const local = line.trim().split(/\s+/)[3];
    const m = local ? /:(\d+)$/.exec(local) : null;
    if (m) used.add(Number(m[1]));
  }
  return used;
}

/**
 * The last `lines` lines of the log; with `from` (a byte offset), of its part from the byte
 * before `from` on (one line more: the first may be the end of a line begun before, see
 * lastLinesOf).
 */
export function tailScript(logFile: string, lines: number, from?: number): string {
  const n = Math.max(1, Math.floor(lines));
  if (from === undefined) return `tail -n ${n} -- ${shQuote(logFile)}`;
  if (from <= 0) return `tail -n ${n + 1} -- ${shQuote(logFile)}`;
  return `tail -c +${Math.floor(from)} -- ${shQuote(logFile)} | tail -n ${n + 1}`;
}

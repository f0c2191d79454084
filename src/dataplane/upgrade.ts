// The data plane's hitless upgrade, as nginx's binary upgrade: the running data plane starts
// the Baton installed now (`baton dataplane`, same config) and hands it, over an IPC channel,
// its listening socket (the kernel socket is shared, never closed: no connection is refused)
// and the route table it serves. The new one listens on it and routes the same table, then
// takes the admin socket's path and the lock; the old one stops accepting, finishes its
// requests, closes its keep-alive connections and WebSockets gracefully and exits.
//
//   old → new   { type: 'handover', table } + the listening server
//   new → old   { type: 'listening', pid, version }
//   old → new   { type: 'take-over' }
//   new → old   { type: 'serving' }            (then the new one closes the channel)
//
// Any step failing or late: the new process is killed and the old one serves on as before.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import type { EdgeRoutesBody } from '../api/edge.js';
import { ADMIN_TOKEN_ENV, secretEnvNames, withoutSecrets } from '../config/secrets.js';
import { tail } from '../drivers/local/local.js';
import { BatonError, messageOf } from '../errors.js';
import { indent, thenSentence } from '../util/text.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import { batonCommand, dataPlaneArgs } from './command.js';
import { listeningFd, LISTEN_FD_ENV, REDIRECT_FD_ENV } from './paths.js';
import type { DataPlane } from './process.js';

/** How long the new data plane has for each step. */
const STEP_TIMEOUT_MS = 15_000;

/** The environment variable that tells `baton dataplane` to wait for a handover. */
export const HANDOVER_ENV = 'BATON_DATAPLANE_HANDOVER';

export interface HandoverResult {
  readonly from: { readonly pid: number; readonly version: string };
  readonly to: { readonly pid: number; readonly version: string };
  readonly routes: number;
}

type Message =
  | { readonly type: 'handover'; readonly table: EdgeRoutesBody }
  | { readonly type: 'listening'; readonly pid: number; readonly version: string }
  | { readonly type: 'take-over' }
  | { readonly type: 'serving' };

/**
 * The environment of a data plane: the caller's, without Baton's secrets (the admin token, and
 * every variable the config names for one: it faces the internet, and needs none) and
 * systemd's fds.
 */
export function dataPlaneEnv(
  config: Parameters<typeof secretEnvNames>[0],
  env: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const clean = withoutSecrets(env, [ADMIN_TOKEN_ENV, ...secretEnvNames(config)]);
  delete clean.LISTEN_FDS;
  delete clean.LISTEN_PID;
  delete clean.LISTEN_FDNAMES;
  delete clean[HANDOVER_ENV];
  return clean;
}

function nextMessage<T extends Message['type']>(
  child: ChildProcess,
  type: T,
  what: string,
): Promise<Extract<Message, { type: T }>> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, m?: Extract<Message, { type: T }>): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    };
    const onMessage = (m: Message): void => {
      if (m?.type === type) done(null, m as Extract<Message, { type: T }>);
    };
    const onExit = (code: number | null, signal: string | null): void =>
      done(new Error(`it exited (${code ?? signal}) before it ${what}`));
    const timer = setTimeout(
      () => done(new Error(`it did not ${what} within ${STEP_TIMEOUT_MS / 1000}s`)),
      STEP_TIMEOUT_MS,
    );
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** The old side: start the new data plane and hand over (see the top of this file). */
export async function handOver(dp: DataPlane, table: EdgeRoutesBody, log: Logger): Promise<HandoverResult> {
  const { file, args } = batonCommand(dataPlaneArgs(dp.config));
  mkdirSync(path.dirname(dp.paths.log), { recursive: true });
  const out = openSync(dp.paths.log, 'a');
  // The listening socket as the new process's fd 4 (it listens on it when it is ready; meanwhile
  // connections wait in the kernel's backlog, or are accepted here). Over IPC only if its fd is
  // not known: Node's wrapper of a received handle accepts at once, before anyone serves.
  const fd = listeningFd(dp.proxy.listeningServer()) ?? -1;
  const inherit = fd >= 0;
  // redirectHttp's listener, as fd 5 (bound twice it would be EADDRINUSE).
  const rfd = inherit ? (listeningFd(dp.proxy.front.redirect?.server) ?? -1) : -1;
  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      cwd: process.cwd(),
      detached: true,
      stdio: inherit
        ? ['ignore', out, out, 'ipc', fd, ...(rfd >= 0 ? [rfd] : [])]
        : ['ignore', out, out, 'ipc'],
      env: {
        ...dataPlaneEnv(dp.config),
        [HANDOVER_ENV]: '1',
        ...(inherit ? { [LISTEN_FD_ENV]: '4' } : {}),
        ...(rfd >= 0 ? { [REDIRECT_FD_ENV]: '5' } : {}),
      },
    });
  } finally {
    closeSync(out);
  }
  log.info({ pid: child.pid, command: [file, ...args].join(' ') }, 'upgrade: new data plane started');
  try {
    const listening = nextMessage(child, 'listening', 'listened on the handed-over socket');
    if (inherit) child.send({ type: 'handover', table } satisfies Message);
    else child.send({ type: 'handover', table } satisfies Message, dp.proxy.listeningServer());
    const to = await listening;
    const serving = nextMessage(child, 'serving', 'took over the admin socket');
    child.send({ type: 'take-over' } satisfies Message);
    await serving;
    child.unref();
    child.channel?.unref();
    const result: HandoverResult = {
      from: { pid: process.pid, version: VERSION },
      to: { pid: to.pid, version: to.version },
      routes: table.routes.length,
    };
    log.info(result, 'upgrade: the new data plane serves; this one retires');
    return result;
  } catch (err) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone already
    }
    // It may have written the lock before it failed; the admin socket is renamed last, so the
    // path is still this one's.
    try {
      dp.retakeLock();
    } catch (lockErr) {
      log.error({ error: messageOf(lockErr) }, 'could not take dataplane.pid back after the failed upgrade');
    }
    const logTail = tail(dp.paths.log, 15);
    throw new BatonError(
      'BATON_E_EDGE',
      `${thenSentence(`upgrade failed: the new data plane (${[file, ...args].join(' ')}) did not take over: ${messageOf(err)}`, 'This one keeps serving as before.')} The data plane log ${dp.paths.log} ends with:\n${indent(logTail)}`,
      { cause: err },
    );
  }
}

/** The new side: waits for the old data plane's table (and its socket, when not an inherited fd). */
export function receiveHandover(): Promise<{ server: net.Server | null; table: EdgeRoutesBody }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no handover from the old data plane within ${STEP_TIMEOUT_MS / 1000}s`)),
      STEP_TIMEOUT_MS,
    );
    process.on('message', function onMessage(m: Message, handle: unknown) {
      if (m?.type !== 'handover') return;
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve({ server: (handle as net.Server | undefined) ?? null, table: m.table });
    });
  });
}

/** The new side, once listening: reports it, takes over when told, then lets the old one go. */
export async function completeHandover(dp: DataPlane, log: Logger): Promise<void> {
  const send = (m: Message): void => void process.send?.(m);
  await new Promise<void>((resolve) => {
    const onMessage = (m: Message): void => {
      if (m?.type !== 'take-over') return;
      cleanup();
      try {
        dp.takeOver();
      } catch (err) {
        // Nothing renamed: the old one keeps the admin socket and serves on; this one goes.
        log.error({ error: messageOf(err) }, 'could not take over; exiting');
        process.exit(1);
      }
      send({ type: 'serving' });
      resolve();
    };
    // The old one gone before it said so: this one is the only data plane left.
    const onDisconnect = (): void => {
      cleanup();
      log.warn('the old data plane went away during the handover: taking over');
      dp.takeOver();
      resolve();
    };
    const cleanup = (): void => {
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
    };
    process.on('message', onMessage);
    process.once('disconnect', onDisconnect);
    send({ type: 'listening', pid: process.pid, version: VERSION });
  });
  if (process.connected) process.disconnect();
}

// The controller's side of the data plane: `baton up` adopts the data plane already running
// for its stateDir (identity-checked through dataplane.pid, then asked on its socket), or
// starts one, detached in a session of its own so that neither a Ctrl-C in the terminal nor a
// systemd stop of the controller (KillMode=process) reaches it. It then drives it as a remote
// built-in edge over the unix socket.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { DATAPLANE_PATHS } from '../api/paths.js';
import { adminEndpoint } from '../admin/endpoint.js';
import { formatAddress, parseListen } from '../config/address.js';
import type { BatonConfig } from '../config/schema.js';
import { DATAPLANE_LOCK, lockHolder } from '../state/lock.js';
import { tail } from '../drivers/local/local.js';
import { edgeOptions } from '../edge/create.js';
import { EdgeError } from '../edge/edge.js';
import { RemoteBuiltinEdge } from '../edge/remote.js';
import { messageOf } from '../errors.js';
import { indent } from '../util/text.js';
import type { Logger } from '../log.js';
import { batonCommand, dataPlaneArgs } from './command.js';
import {
  dataPlanePaths,
  ensureSocketDir,
  LISTEN_ADDRESS_ENV,
  LISTEN_FD_ENV,
  type DataPlanePaths,
} from './paths.js';
import type { DataPlaneHealth } from './process.js';
import { dataPlaneEnv } from './upgrade.js';

/** How long a starting data plane has to answer on its socket. */
const START_TIMEOUT_MS = 15_000;
const ASK_TIMEOUT_MS = 3000;

export interface ConnectedDataPlane {
  readonly edge: RemoteBuiltinEdge;
  readonly health: DataPlaneHealth;
  /** True when it was running already (a controller restart), false when started now. */
  readonly adopted: boolean;
  readonly paths: DataPlanePaths;
}

/** GET /v1/health on the data plane's socket; null when nothing answers there. */
export async function askDataPlane(paths: DataPlanePaths): Promise<DataPlaneHealth | null> {
  const { origin, dispatcher } = adminEndpoint(
    { kind: 'unix', path: paths.socket },
    { connectTimeoutMs: ASK_TIMEOUT_MS },
  );
  try {
    const res = await request(origin + DATAPLANE_PATHS.health, {
      dispatcher,
      headersTimeout: ASK_TIMEOUT_MS,
      bodyTimeout: ASK_TIMEOUT_MS,
    });
    const body = (await res.body.json()) as DataPlaneHealth;
    return res.statusCode === 200 ? body : null;
  } catch {
    return null;
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}

/** The data plane's edge over its socket, with errors that say where its log is. */
export function dataPlaneEdge(config: BatonConfig, log: Logger, paths: DataPlanePaths): RemoteBuiltinEdge {
  return new RemoteBuiltinEdge(
    {
      type: 'builtin',
      admin: { kind: 'unix', path: paths.socket },
      timeout: config.edge.type === 'builtin' ? config.edge.timeout : 5000,
      tokenEnv: 'BATON_ADMIN_TOKEN',
    },
    edgeOptions(config, log),
    {},
    {
      describe: "the built-in proxy's data plane",
      hint: `Is \`baton dataplane\` running (its pid is in ${paths.pidFile}, its log in ${paths.log})? Restarting \`baton up\` starts it again.`,
    },
  );
}

/**
 * The data plane for this config: the running one, or a new one. `listenFd` is a listening
 * socket systemd gave the controller (socket activation), passed on as the new one's fd 3.
 * Fails (EdgeError, exit 14) when one holds the lock but does not answer, or a new one does not
 * come up, with the end of its log.
 */
export async function connectDataPlane(
  config: BatonConfig,
  log: Logger,
  { listenFd, listen }: { listenFd?: number; listen?: string } = {},
): Promise<ConnectedDataPlane> {
  const paths = dataPlanePaths(config.stateDirPath);
  const holder = lockHolder(config.stateDirPath, DATAPLANE_LOCK);
  if (holder !== null) {
    ensureSocketDir(paths);
    const health = await askDataPlane(paths);
    if (!health || health.pid !== holder) {
      throw new EdgeError(
        `the data plane (pid ${holder}, in ${paths.pidFile}) runs but does not answer on ${paths.socket}${health ? ` (pid ${health.pid} answers there instead)` : ''}. ` +
          `Its log is ${paths.log}. If it is stuck, stop it (kill ${holder}; clients are refused until a new one listens) and run baton up again.`,
      );
    }
    warnIfListenDiffers(config, health, log);
    log.info({ pid: health.pid, version: health.version, listen: health.listen }, 'data plane adopted');
    return { edge: dataPlaneEdge(config, log, paths), health, adopted: true, paths };
  }
  const { file, args } = batonCommand(dataPlaneArgs(config));
  mkdirSync(path.dirname(paths.log), { recursive: true });
  const out = openSync(paths.log, 'a');
  const inherit = listenFd !== undefined;
  let exited: string | null = null;
  try {
    const child = spawn(file, args, {
      cwd: process.cwd(),
      detached: true,
      stdio: inherit ? ['ignore', out, out, listenFd] : ['ignore', out, out],
      env: {
        ...dataPlaneEnv(config),
        ...(inherit ? { [LISTEN_FD_ENV]: '3' } : {}),
        ...(listen !== undefined ? { [LISTEN_ADDRESS_ENV]: listen } : {}),
      },
    });
    child.once('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));
    child.once('error', (err) => (exited = `could not start: ${messageOf(err)}`));
    child.unref();
  } finally {
    closeSync(out);
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const health = await askDataPlane(paths);
    if (health) {
      log.info({ pid: health.pid, listen: health.listen }, 'data plane started');
      return { edge: dataPlaneEdge(config, log, paths), health, adopted: false, paths };
    }
    if (exited !== null || Date.now() > deadline) {
      throw new EdgeError(
        `the data plane (${[file, ...args].join(' ')}) ${exited ?? `did not answer on ${paths.socket} within ${START_TIMEOUT_MS / 1000}s`}. Its log ${paths.log} ends with:\n${indent(tail(paths.log, 15))}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function warnIfListenDiffers(config: BatonConfig, health: DataPlaneHealth, log: Logger): void {
  const want = config.listen!;
  if (want.kind !== 'tcp' || health.listen === null) return;
  const have = parseListen(health.listen);
  if (have?.kind === 'tcp' && (want.port === 0 || (have.port === want.port && have.host === want.host)))
    return;
  log.warn(
    { running: health.listen, config: formatAddress(want) },
    `the running data plane listens on ${health.listen}, not on ${formatAddress(want)} as the config says; it keeps its listener (a handover keeps it too). To move it: baton down, then baton up (clients are refused in between)`,
  );
}

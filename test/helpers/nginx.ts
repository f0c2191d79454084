// A real nginx (Debian's /usr/sbin/nginx) as the test's own child process: its own prefix in a
// temp folder, its own nginx.conf including the upstream file Baton owns, a loopback port. The
// master runs in the foreground (daemon off), so it is the child we spawned; teardown quits it
// (SIGQUIT, then SIGKILL for it and its workers) and checks that no nginx process is left.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { isAlive, workersOf, type NginxWorker } from '../../src/edge/nginx/nginx.js';
import { selectorVariable } from '../../src/edge/nginx/render.js';
import { freePort, tempDir } from './cli.js';
import { connects, waitFor } from './index.js';

export const NGINX = '/usr/sbin/nginx';
const QUIT_DEADLINE_MS = 3000;

/** The `edge:` section (as written in baton.yaml) that drives this nginx. */
export interface NginxEdgeInput {
  readonly type: 'nginx';
  readonly upstreamFile: string;
  readonly test: string;
  readonly reload: string;
  readonly pidFile: string;
  readonly reloadTimeout: string;
}

export interface NginxProcess {
  /** nginx's client port on 127.0.0.1. */
  readonly port: number;
  readonly prefix: string;
  readonly confFile: string;
  readonly upstreamFile: string;
  readonly pidFile: string;
  readonly errorLog: string;
  readonly edgeConfig: NginxEdgeInput;
  /** The master's pid (the spawned process). */
  readonly pid: number;
  /** The master's worker processes right now. */
  workers(): NginxWorker[];
  /** Quits nginx and waits until none of its processes is left (also run at teardown). */
  stop(): Promise<void>;
}

export interface NginxOptions {
  /** `service:` of the Baton config: names the upstream and `$baton_<service>`. */
  readonly service?: string;
  /** worker_processes. */
  readonly workers?: 1 | 2;
  /** edge.reloadTimeout. */
  readonly reloadTimeout?: string;
  /** More directives in the proxying `location /` (e.g. proxy_read_timeout). */
  readonly locationDirectives?: readonly string[];
  /** Run it in this network namespace (a test host of netns.ts), listening on `address`. */
  readonly netns?: { readonly name: string; readonly address: string };
}

export async function startNginx(t: TestContext, opts: NginxOptions = {}): Promise<NginxProcess> {
  const { service = 'web', workers = 2, reloadTimeout = '5s', locationDirectives = [], netns } = opts;
  const address = netns?.address ?? '127.0.0.1';
  if (!existsSync(NGINX)) throw new Error(`these tests run a real nginx: install it (apt-get install nginx)`);
  const prefix = tempDir(t);
  const tmp = path.join(prefix, 'tmp');
  mkdirSync(tmp);
  const port = await freePort();
  const files = {
    confFile: path.join(prefix, 'nginx.conf'),
    upstreamFile: path.join(prefix, `${service}.upstream.conf`),
    pidFile: path.join(prefix, 'nginx.pid'),
    errorLog: path.join(prefix, 'error.log'),
  };
  writeFileSync(files.upstreamFile, initialUpstream(service));
  writeFileSync(
    files.confFile,
    nginxConf({ ...files, tmp, address, port, service, workers, locationDirectives }),
  );

  const base = `${NGINX} -p ${prefix}/ -c ${files.confFile} -e ${files.errorLog}`;
  const args = ['-p', `${prefix}/`, '-c', files.confFile, '-e', files.errorLog];
  // `ip netns exec` execs nginx in place: the child's pid is the master's.
  const child = netns
    ? spawn('ip', ['netns', 'exec', netns.name, NGINX, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(NGINX, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const master = child.pid!;

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => (stopping ??= quit(master, child, exited));
  t.after(stop);

  const why = (): string => {
    let log = '';
    try {
      log = readFileSync(files.errorLog, 'utf8');
    } catch {
      // not written yet
    }
    return `${stderr}${log}`;
  };
  const ready = waitFor(async () => workersOf(master).length === workers && (await connects(port, address)), {
    timeout: 10_000,
    what: `nginx to listen on ${address}:${port}`,
  });
  const early = exited.then(() => {
    throw new Error(`nginx exited at start:\n${why()}`);
  });
  early.catch(() => undefined); // it also settles at teardown, long after the race
  await Promise.race([ready, early]).catch(async (err: unknown) => {
    await stop();
    throw new Error(`${String(err)}\n${why()}`);
  });
  return {
    port,
    prefix,
    ...files,
    edgeConfig: {
      type: 'nginx',
      upstreamFile: files.upstreamFile,
      test: `${base} -t`,
      reload: `${base} -s reload`,
      pidFile: files.pidFile,
      reloadTimeout,
    },
    pid: master,
    workers: () => workersOf(master),
    stop,
  };
}

/** What the user's nginx includes before Baton's first apply: a valid upstream with nothing up. */
function initialUpstream(service: string): string {
  return [
    `upstream ${service} {`,
    '    server 127.0.0.1:1 down;',
    '}',
    `map "" $${selectorVariable(service)} {`,
    `    default ${service};`,
    '}',
    '',
  ].join('\n');
}

function nginxConf(c: {
  upstreamFile: string;
  pidFile: string;
  errorLog: string;
  tmp: string;
  address: string;
  port: number;
  service: string;
  workers: number;
  locationDirectives: readonly string[];
}): string {
  // As root, nginx would run its workers as `nobody`, who cannot enter the 0700 temp folder;
  // as anyone else the `user` directive only earns a warning.
  const user = process.getuid?.() === 0 ? 'user root;' : '';
  return `# nginx for one Baton test; everything it writes is in ${path.dirname(c.pidFile)}
daemon off;
master_process on;
worker_processes ${c.workers};
${user}
pid ${c.pidFile};
error_log ${c.errorLog} notice;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path ${c.tmp}/client_body;
    proxy_temp_path ${c.tmp}/proxy;
    fastcgi_temp_path ${c.tmp}/fastcgi;
    uwsgi_temp_path ${c.tmp}/uwsgi;
    scgi_temp_path ${c.tmp}/scgi;

    map $http_upgrade $baton_test_connection {
        default upgrade;
        '' '';
    }

    # The file Baton owns.
    include ${c.upstreamFile};

    server {
        listen ${c.address}:${c.port};
        location / {
            # $baton_<service>: the upstream, or its _canary twin for A/B rules.
            proxy_pass http://$${selectorVariable(c.service)};
            proxy_http_version 1.1;
            # WebSockets pass (Upgrade); every other request keeps the upstream keepalive.
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $baton_test_connection;
            proxy_set_header Host $host;
${c.locationDirectives.map((d) => `            ${d}\n`).join('')}        }
    }
}
`;
}

/** SIGQUIT (graceful), then SIGKILL to the master and every worker; resolves once all are gone. */
async function quit(master: number, child: ReturnType<typeof spawn>, exited: Promise<void>): Promise<void> {
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  // Workers outlive a SIGKILLed master (re-parented), so they are listed while it still runs.
  let workers = running() ? workersOf(master) : [];
  if (running()) child.kill('SIGQUIT');
  const quitInTime = await waitFor(() => !running(), { timeout: QUIT_DEADLINE_MS }).then(
    () => true,
    () => false,
  );
  if (!quitInTime) {
    workers = [...workers, ...workersOf(master)];
    child.kill('SIGKILL');
    for (const w of workers) killQuietly(w.pid);
  }
  await exited;
  await waitFor(() => !workers.some(isAlive), {
    timeout: QUIT_DEADLINE_MS,
    what: `nginx workers of master ${master} to exit`,
  });
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

// One more proxy process of a data plane with `proxy.workers` above 1, as nginx's worker
// processes: it accepts on the data plane's listening socket (inherited as fd 4: the kernel
// hands each new connection to one of the processes waiting on it) and routes the table the
// data plane gives it over the IPC channel, answering every call once it is in effect. It has
// no admin socket of its own; the data plane (src/dataplane/workers.ts) is its only caller.
// Its channel closing (the data plane gone) retires it: it stops accepting, finishes what it
// has, and exits.
import type { TargetOp } from '../admin/proxy-routes.js';
import type { EdgeRoutesBody } from '../api/edge.js';
import type { BatonConfig } from '../config/schema.js';
import { BuiltinEdge } from '../edge/builtin/edge.js';
import { proxyFromConfig } from '../edge/builtin/from-config.js';
import { targetRows } from '../edge/builtin/metrics.js';
import type { BuiltinProxy } from '../edge/builtin/proxy.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log.js';

/** The environment variable that makes `baton dataplane` a worker (its number, from 2). */
export const WORKER_ENV = 'BATON_DATAPLANE_WORKER';

/** A call from the data plane. */
export type WorkerCall =
  | { readonly id: number; readonly op: 'routes'; readonly table: EdgeRoutesBody }
  | { readonly id: number; readonly op: 'drain'; readonly ids: readonly string[]; readonly timeoutMs: number }
  | { readonly id: number; readonly op: 'stats'; readonly ids: readonly string[] }
  | { readonly id: number; readonly op: 'traffic' | 'rows' | 'view' | 'certificates' }
  | { readonly id: number; readonly op: 'retire'; readonly timeoutMs: number }
  | { readonly id: number; readonly op: 'target'; readonly target: TargetOp };

/** What a worker says: an answer per call (the first, a table, once it listens). */
export type WorkerMessage =
  | { readonly type: 'answer'; readonly id: number; readonly result: unknown }
  | { readonly type: 'failed'; readonly id: number; readonly error: string };

/** Runs a worker until its channel closes (or `retire` is called): the process may exit then. */
export async function runWorker(config: BatonConfig, fd: number, log: Logger): Promise<void> {
  if (!process.send) throw new Error('a data plane worker needs the IPC channel of its data plane');
  // After the channel closed (the data plane gone) an answer is dropped, not an 'error' event.
  const send = (m: WorkerMessage): void => {
    if (process.connected) process.send!(m, undefined, undefined, () => undefined);
  };
  // redirectHttp is the data plane's alone (its listener is not shared).
  const proxy = proxyFromConfig({ ...config, redirectHttp: undefined }, log, undefined, false);
  const edge = new BuiltinEdge(proxy);
  // It listens once it routes its first table: never a request it could not route.
  let listening: Promise<unknown> | null = null;
  const listen = (): Promise<unknown> =>
    (listening ??= proxy
      .listen({ fd })
      .then(() => log.info({ pid: process.pid }, 'data plane worker listening')));
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  let ending: Promise<void> | null = null;
  const end = (how: 'retire' | 'close', timeoutMs: number): Promise<void> => {
    ending ??= (
      how === 'retire' ? proxy.retire(timeoutMs).then(() => undefined) : proxy.close(timeoutMs)
    ).then(done);
    return ending;
  };
  process.on('message', (call: WorkerCall) => {
    answer(proxy, edge, call, end, listen).then(
      (result) => send({ type: 'answer', id: call.id, result } satisfies WorkerMessage),
      (err: unknown) => send({ type: 'failed', id: call.id, error: messageOf(err) } satisfies WorkerMessage),
    );
  });
  // The data plane is gone (exited, killed): finish what this one has, as a retired one does.
  process.on('disconnect', () => {
    log.info('data plane gone: this worker finishes its requests and exits');
    void end('retire', config.proxy.drainTimeout);
  });
  process.on('SIGTERM', () => void end('close', config.proxy.drainTimeout));
  // As the data plane: the certificate files of tls: are read again.
  process.on('SIGHUP', () => proxy.front.certificates?.reload('SIGHUP'));
  await finished;
}

async function answer(
  proxy: BuiltinProxy,
  edge: BuiltinEdge,
  call: WorkerCall,
  end: (how: 'retire', timeoutMs: number) => Promise<void>,
  listen: () => Promise<unknown>,
): Promise<unknown> {
  switch (call.op) {
    case 'routes':
      await edge.apply(call.table.routes, call.table.split);
      await listen();
      return proxy.generation;
    case 'drain':
      return edge.drain(call.ids, call.timeoutMs);
    case 'stats':
      return edge.stats(call.ids);
    case 'traffic':
      return edge.traffic();
    case 'rows':
      return targetRows(proxy);
    case 'view':
      return edge.view();
    case 'certificates':
      return proxy.front.certificates?.reload('the data plane was told to') ?? true;
    case 'retire':
      // Answered at once; the worker exits once retired.
      void end('retire', call.timeoutMs);
      return true;
    case 'target':
      return targetOp(proxy, call.target);
  }
}

async function targetOp(proxy: BuiltinProxy, op: TargetOp): Promise<unknown> {
  switch (op.kind) {
    case 'add':
      proxy.addTarget(op.spec);
      return true;
    case 'weight':
      proxy.setWeight(op.targetId, op.weight);
      return true;
    case 'undrain':
      proxy.undrain(op.targetId);
      return true;
    case 'drain':
      return proxy.drain(op.targetId, op.timeoutMs);
    case 'remove':
      return proxy.remove(op.targetId, op.timeoutMs);
  }
}

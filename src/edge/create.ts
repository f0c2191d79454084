// One edge per `edge.type`: the built-in proxy is built by the daemon itself (it also serves the
// admin API's proxy routes); nginx, HAProxy and another Baton's proxy (a built-in edge with an
// admin address) are driven from here, their code loaded only when configured.
import type { BatonConfig, EdgeConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Edge, EdgeOptions } from './edge.js';

export function edgeOptions(config: BatonConfig, log: Logger): EdgeOptions {
  return {
    service: config.service,
    balance: config.balance,
    health: config.app?.health ?? config.healthCheck ?? null,
    baseDir: config.baseDir,
    log,
    stateDir: config.stateDirPath,
    ssh: { options: config.ssh.options, connectTimeoutMs: config.ssh.connectTimeout },
  };
}

export async function createEdge(edge: EdgeConfig, config: BatonConfig, log: Logger): Promise<Edge> {
  const opts = edgeOptions(config, log);
  switch (edge.type) {
    case 'nginx': {
      const { NginxEdge } = await import('./nginx/nginx.js');
      if (!edge.host) return new NginxEdge(edge, opts);
      const { RemoteNginxHost } = await import('./nginx/host.js');
      const host = new RemoteNginxHost({
        host: edge.host,
        stateDir: opts.stateDir,
        sshOptions: opts.ssh.options,
        connectTimeoutMs: opts.ssh.connectTimeoutMs,
      });
      return new NginxEdge(edge, opts, host);
    }
    case 'haproxy': {
      const { HaproxyEdge } = await import('./haproxy/haproxy.js');
      return new HaproxyEdge(edge, opts);
    }
    case 'builtin': {
      if (!edge.admin) throw new Error('the built-in edge is built by the daemon');
      const { RemoteBuiltinEdge } = await import('./remote.js');
      return new RemoteBuiltinEdge({ ...edge, admin: edge.admin }, opts);
    }
  }
}

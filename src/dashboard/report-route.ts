// GET /v1/history/:id/report: a past deploy's proof as the page `baton report <id>` writes
// (src/load/proof-report.ts), one click from the dashboard's history. That page's scripts are
// inline (Chart.js and its own, so that the file works alone): its policy allows exactly
// those, by their hashes, and nothing else.
import { createHash } from 'node:crypto';
import { PATHS } from '../api/paths.js';
import type { AdminServer } from '../admin/server.js';
import type { Controller } from '../controller/controller.js';
import { BatonError } from '../errors.js';
import { renderProofReport } from '../load/proof-report.js';
import { SECURITY_HEADERS } from './page.js';

/** How far back the report looks for the id (as `baton report`). */
const LOOKBACK = 200;

/** The policy of `html`: its inline scripts by hash, inline style, nothing fetched. */
export function reportPolicy(html: string): string {
  const hashes: string[] = [];
  for (const m of html.matchAll(/<script>([\s\S]*?)<\/script>/g)) {
    hashes.push(`'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`);
  }
  return (
    `default-src 'none'; script-src ${hashes.join(' ') || "'none'"}; style-src 'unsafe-inline'; ` +
    "img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
  );
}

export function registerReportRoute(admin: AdminServer, controller: Controller, service: () => string): void {
  admin.route('GET', PATHS.historyReport, (r) => {
    const id = r.params.id!;
    const entry = controller.history(LOOKBACK).find((h) => h.id === id);
    if (!entry) {
      throw new BatonError(
        'BATON_E_NOT_FOUND',
        `no deploy "${id}" in the last ${LOOKBACK} of history; \`baton history\` lists them`,
      );
    }
    const html = renderProofReport(entry, service());
    return {
      text: html,
      contentType: 'text/html; charset=utf-8',
      headers: { ...SECURITY_HEADERS, 'content-security-policy': reportPolicy(html) },
    };
  });
}

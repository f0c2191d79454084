// The README's "Set up" block is what a new user runs, in its order: `.ci/run` must run exactly
// it, and nothing the block's commands write may break the checks that `npm test` runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import * as prettier from 'prettier';
import { DEFAULT_DEMO_REPORT } from '../src/cli/commands/demo.js';
import { ROOT } from './helpers/index.js';

const MARKER = '# --- README set-up block ---';

/** The commands of the README's first sh block under "## Set up", comments stripped. */
function readmeSetUp(): string[] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /^## Set up\n[\s\S]*?```sh\n([\s\S]*?)```/m.exec(readme)?.[1];
  assert.ok(block, 'the README has a "## Set up" section with an sh block');
  return block
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** The commands `.ci/run` runs after its marker line. */
function ciCommands(): string[] {
  const script = readFileSync(path.join(ROOT, '.ci/run'), 'utf8');
  const at = script.indexOf(`${MARKER}\n`);
  assert.ok(at >= 0, `.ci/run has the line "${MARKER}"`);
  return script
    .slice(at + MARKER.length + 1)
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

it('.ci/run runs the README set-up block, line by line, in its order', () => {
  const block = readmeSetUp();
  assert.deepEqual(block, ['npm ci', 'npx baton demo', 'npm test']);
  assert.deepEqual(ciCommands(), block);
});

it("the demo's default report is ignored by git and the format check, and the README says where it goes", async () => {
  const report = path.join(ROOT, DEFAULT_DEMO_REPORT);
  const git = spawnSync('git', ['check-ignore', '-q', report], { cwd: ROOT });
  assert.equal(git.status, 0, `git ignores ${DEFAULT_DEMO_REPORT}`);
  const info = await prettier.getFileInfo(report, { ignorePath: path.join(ROOT, '.prettierignore') });
  assert.equal(info.ignored, true, `prettier ignores ${DEFAULT_DEMO_REPORT}`);
  assert.ok(
    readFileSync(path.join(ROOT, 'README.md'), 'utf8').includes(`\`${DEFAULT_DEMO_REPORT}\``),
    'the README names the report path',
  );
});

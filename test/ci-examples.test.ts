// The CI examples (issue 15.13): examples/ci/github-actions/deploy.yml and
// examples/ci/jenkins/Jenkinsfile call examples/ci/deploy.sh, which runs `baton deploy` over SSH
// and exits with Baton's code after a line saying what it means. Linted by real tools: actionlint
// (the workflow), shellcheck (the script and the workflow's run: steps), Groovy 2.4 with a check
// of the declarative structure (the Jenkinsfile); each catches a broken copy. Then run for real
// against a test host (a network namespace with its own sshd, `baton up` running inside it): the
// script, the workflow's steps and the Jenkinsfile's stage deploy, fail (health check: exit 10
// and the history), are refused (a freeze: 13; a deploy running: 11), find no daemon (9) or an
// unknown host key (255).
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { Service } from './helpers/app-daemon.js';
import {
  actionlint,
  checkJenkinsfiles,
  exec,
  groovyEnv,
  runJenkinsfile,
  runs,
  runWorkflowJob,
  shellcheck,
  workflowSteps,
} from './helpers/ci.js';
import { ensureBuilt, freePort, startDaemon, tempDir, writeFile } from './helpers/cli.js';
import { BATON, ROOT, waitFor } from './helpers/index.js';
import { createHosts, sshHostsUnavailable, type TestHosts } from './helpers/netns.js';

const SCRIPT = path.join(ROOT, 'examples/ci/deploy.sh');
const WORKFLOW = path.join(ROOT, 'examples/ci/github-actions/deploy.yml');
const JENKINSFILE = path.join(ROOT, 'examples/ci/jenkins/Jenkinsfile');

// In CI shellcheck and groovy are installed (.ci/run): missing there is a failure, not a skip.
const noShellcheck =
  runs('shellcheck') || process.env.CI
    ? false
    : 'shellcheck missing: apt-get install shellcheck (.ci/run does)';
const noGroovy =
  runs('groovy', groovyEnv()) || process.env.CI
    ? false
    : 'groovy missing: apt-get install groovy (.ci/run does)';

/** The environment of a CI machine: ours without any CI's own variables. */
function ciEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (/^(GITHUB_|RUNNER_|JENKINS_|BUILD_|BATON_)/.test(k)) delete env[k];
  }
  return { ...env, ...extra };
}

describe('CI examples, linted', () => {
  it('the workflow passes actionlint; actionlint finds what is wrong in a broken copy', async () => {
    const text = readFileSync(WORKFLOW, 'utf8');
    assert.deepEqual(await actionlint(text, 'deploy.yml'), []);
    const broken = text
      .replace('${{ inputs.version }}', '${{ inputs.verison }}')
      .replace('timeout-minutes:', 'timeout-minute:');
    assert.notEqual(broken, text);
    const found = (await actionlint(broken, 'deploy.yml')).map((f) => `${f.line}: ${f.message}`);
    assert.ok(
      found.some((f) => /property "verison" is not defined/.test(f)),
      found.join('\n'),
    );
    assert.ok(
      found.some((f) => /unexpected key "timeout-minute"/.test(f)),
      found.join('\n'),
    );
    // Secrets and inputs reach the scripts through env: only, never their text (script injection).
    for (const step of workflowSteps(WORKFLOW, 'deploy')) {
      if (step.run !== undefined) assert.doesNotMatch(step.run, /\$\{\{/, step.name);
    }
  });

  it(
    'deploy.sh and the workflow run: steps pass shellcheck; a broken copy does not',
    { skip: noShellcheck },
    () => {
      const script = readFileSync(SCRIPT, 'utf8');
      const clean = shellcheck(script);
      assert.equal(clean.code, 0, clean.out);
      for (const step of workflowSteps(WORKFLOW, 'deploy')) {
        if (step.run === undefined) continue;
        const r = shellcheck(step.run);
        assert.equal(r.code, 0, `${step.name}: ${r.out}`);
      }
      const broken = script.replace('ssh -n "${ssh_opts[@]}" "$host"', 'ssh -n "${ssh_opts[@]}" $host');
      assert.notEqual(broken, script);
      const r = shellcheck(broken);
      assert.notEqual(r.code, 0);
      assert.match(r.out, /SC2086/);
    },
  );

  it('no example turns SSH host key checking off', () => {
    for (const f of [SCRIPT, WORKFLOW, JENKINSFILE]) {
      assert.doesNotMatch(readFileSync(f, 'utf8'), /StrictHostKeyChecking\s*=?\s*(no|accept-new)/i, f);
    }
    assert.match(readFileSync(SCRIPT, 'utf8'), /-o StrictHostKeyChecking=yes/);
  });

  it(
    'the Jenkinsfile parses with Groovy 2.4 as a declarative pipeline; broken copies are refused with their line',
    { skip: noGroovy },
    async (t) => {
      const text = readFileSync(JENKINSFILE, 'utf8');
      const dir = tempDir(t);
      const cases: [string, string, RegExp][] = [
        // A brace too many: Groovy's own parser refuses it.
        ['stages {', 'stages {{', /: startup failed:\n.*Ambiguous expression[\s\S]*@ line \d+, column \d+/],
        [
          "sh 'bash ci/deploy.sh'",
          "shh 'bash ci/deploy.sh'",
          /:\d+: shh\(\.\.\.\) is not something steps of stage\('Deploy'\) takes/,
        ],
        ['keyFileVariable:', 'keyFile:', /:\d+: sshUserPrivateKey has no argument keyFile/],
        ["unit: 'MINUTES'", "unit: 'MINUTE'", /:\d+: timeout unit MINUTE is not a TimeUnit/],
        ['    agent any\n', '', /: pipeline has no agent/],
      ];
      const files = cases.map(([from, to], i) => {
        const broken = text.replace(from, to);
        assert.notEqual(broken, text, from);
        return writeFile(dir, `Jenkinsfile-${i}`, broken);
      });
      const [ok, r] = await Promise.all([checkJenkinsfiles([JENKINSFILE]), checkJenkinsfiles(files)]);
      assert.equal(ok.code, 0, ok.output);
      assert.match(ok.output, /Jenkinsfile: a declarative pipeline of 1 stage\(s\): Deploy/);
      assert.equal(r.code, 1, r.output);
      for (const [i, file] of files.entries()) {
        // Each file's own lines: from its name to the next file's.
        const from = r.output.indexOf(file);
        assert.ok(from >= 0, `${file}: ${r.output}`);
        const next = files[i + 1] ? r.output.indexOf(files[i + 1]!) : r.output.length;
        assert.match(r.output.slice(from + file.length, next), cases[i]![2]);
      }
    },
  );

  it('deploy.sh with no host or no version exits 2, saying what to set', async () => {
    const noHost = await exec(SCRIPT, ['1.0.0'], ciEnv({}));
    assert.equal(noHost.code, 2, noHost.output);
    assert.match(noHost.output, /^ERROR: no server to deploy to: set BATON_HOST/m);
    const noVersion = await exec(SCRIPT, [], ciEnv({ BATON_HOST: 'deploy@lb-1' }));
    assert.equal(noVersion.code, 2, noVersion.output);
    assert.match(noVersion.output, /^ERROR: no version to deploy: set BATON_VERSION/m);
  });
});

interface DeployHost {
  readonly th: TestHosts;
  readonly svc: Service;
  readonly token: string;
  /** deploy.sh's settings for this host (no version). */
  readonly env: Record<string, string>;
  /** The SSH key and known_hosts, as files. */
  readonly key: string;
  readonly knownHosts: string;
  /** A workspace with deploy.sh at ci/deploy.sh, as a checkout of the user's repository has it. */
  readonly workspace: string;
  /** A Baton command on the host (the remote side of an ssh call). */
  baton(args: readonly string[]): string;
}

/** One test host running `baton up` (with an admin token) for the app of `svc`. */
async function deployHost(t: TestContext): Promise<DeployHost> {
  ensureBuilt();
  const th = (await createHosts(t, 1))!;
  const svc = await Service.create(t);
  const token = `tk-${path.basename(svc.dir)}`;
  // `baton up` runs on the server: inside the host's namespace, its admin API on its loopback.
  svc.daemons.push(
    await startDaemon(t, svc.file, {
      under: ['ip', 'netns', 'exec', th.namespaces[0]!],
      env: { BATON_ADMIN_TOKEN: token },
    }),
  );
  const address = th.hosts[0]!.address;
  // The host's key, as `ssh-keyscan` prints it (checked against the host's own public key).
  const knownHosts = path.join(svc.dir, 'known_hosts');
  const hostKey = readFileSync(path.join(th.dir, 'host-0.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
  writeFileSync(knownHosts, `${address} ${hostKey}\n`);
  const workspace = path.join(svc.dir, 'workspace');
  mkdirSync(path.join(workspace, 'ci'), { recursive: true });
  copyFileSync(SCRIPT, path.join(workspace, 'ci/deploy.sh'));
  const key = path.join(th.dir, 'client');
  return {
    th,
    svc,
    token,
    key,
    knownHosts,
    workspace,
    env: {
      BATON_HOST: `root@${address}`,
      BATON_CONFIG: svc.file,
      BATON_SSH_KEY: key,
      BATON_KNOWN_HOSTS: knownHosts,
      BATON_ADMIN_TOKEN: token,
      // This machine's ~/.ssh/config and agent stay out of it.
      BATON_SSH_OPTIONS: '-F /dev/null -o IdentityAgent=none',
      // The checkout's Baton, at the same path on the host (the file system is shared).
      BATON_BIN: `${process.execPath} ${BATON}`,
    },
    baton: (args) =>
      th.exec(0, ['env', `BATON_ADMIN_TOKEN=${token}`, process.execPath, BATON, ...args, '-c', svc.file]),
  };
}

/**
 * The deploy workflow's job as a runner runs it, for `version`: the test host's key, known_hosts
 * and token as the secrets, its address and baton.yaml as the variables.
 */
function runDeployWorkflow(
  h: DeployHost,
  runnerTemp: string,
  version: string,
): ReturnType<typeof runWorkflowJob> {
  return runWorkflowJob(WORKFLOW, 'deploy', {
    cwd: h.workspace,
    env: ciEnv({
      GITHUB_ACTIONS: 'true',
      GITHUB_ACTOR: 'octocat',
      GITHUB_RUN_ID: '4242',
      RUNNER_TEMP: runnerTemp,
      BATON_SSH_OPTIONS: h.env.BATON_SSH_OPTIONS,
      BATON_BIN: h.env.BATON_BIN,
    }),
    context: {
      inputs: { version },
      secrets: {
        BATON_SSH_KEY: readFileSync(h.key, 'utf8').trim(),
        BATON_KNOWN_HOSTS: readFileSync(h.knownHosts, 'utf8').trim(),
        BATON_ADMIN_TOKEN: h.token,
      },
      vars: { BATON_HOST: h.env.BATON_HOST!, BATON_CONFIG: h.svc.file },
      runner: { temp: runnerTemp },
    },
  });
}

/** The last deploy in the daemon's history (`baton history` on the host). */
function lastDeploy(h: DeployHost): { version: string; result: string; actor: string } {
  const out = h.baton(['history', '--json', '--limit', '1']);
  const entry = (JSON.parse(out) as { history: { version: string; result: string; actor: string }[] })
    .history[0];
  assert.ok(entry, out);
  return entry;
}

describe('CI examples, deploying over SSH to a test host', { skip: sshHostsUnavailable() ?? false }, () => {
  it(
    'deploy.sh, the workflow job and the Jenkinsfile deploy, fail and are refused with Baton exit codes (0, 10, 255, 9, 13, 11)',
    { skip: noGroovy },
    async (t) => {
      const h = await deployHost(t);

      // 1. The script alone: a good deploy exits 0 and prints the final JSON line.
      const first = await exec(SCRIPT, ['1.0.0'], ciEnv(h.env));
      assert.equal(first.code, 0, first.output);
      assert.match(first.output, /^result: \{.*"kind":"done".*"result":"succeeded"/m);
      assert.match(first.output, /^1\.0\.0 is live on root@10\.231\./m);
      assert.equal(h.svc.state().live?.version, '1.0.0');

      // 2. The workflow's steps as a runner runs them: secrets to files, deploy, key removed.
      const runnerTemp = path.join(h.svc.dir, 'runner-temp');
      mkdirSync(runnerTemp);
      const gha = await runDeployWorkflow(h, runnerTemp, '1.0.1');
      assert.equal(gha.code, 0, gha.output);
      assert.deepEqual(gha.ran, [
        'SSH key and known hosts from the secrets',
        'baton deploy',
        'Remove the SSH key',
      ]);
      assert.match(gha.output, /^1\.0\.1 is live on root@/m);
      assert.equal(h.svc.state().live?.version, '1.0.1');
      const viaGitHub = lastDeploy(h);
      assert.deepEqual(
        [viaGitHub.version, viaGitHub.result, viaGitHub.actor],
        ['1.0.1', 'succeeded', 'octocat (GitHub Actions run 4242)'],
      );
      assert.equal(existsSync(path.join(runnerTemp, 'baton_ssh_key')), false, 'the key is removed');

      // 3. The Jenkinsfile's stage (its host and config edited, as a user does), for a version
      // whose /health is a 404: exit 10, the build fails, the history entry is printed.
      h.svc.setFlags({ '1.0.2': ['--health-404'] });
      const jenkinsfile = path.join(h.workspace, 'Jenkinsfile');
      const text = readFileSync(JENKINSFILE, 'utf8');
      const edited = text
        .replace("BATON_HOST = 'deploy@lb-1'", `BATON_HOST = '${h.env.BATON_HOST}'`)
        .replace("BATON_CONFIG = '/etc/baton/baton.yaml'", `BATON_CONFIG = '${h.svc.file}'`);
      assert.notEqual(edited, text);
      writeFileSync(jenkinsfile, edited);
      const jenkins = await runJenkinsfile(jenkinsfile, {
        env: ciEnv({ BATON_SSH_OPTIONS: h.env.BATON_SSH_OPTIONS, BATON_BIN: h.env.BATON_BIN }),
        settings: {
          workspace: h.workspace,
          params: { VERSION: '1.0.2' },
          env: { JENKINS_URL: 'http://jenkins.invalid/', BUILD_TAG: 'jenkins-deploy-7' },
          credentials: {
            'baton-ssh-key': { file: h.key, username: 'root' },
            'baton-known-hosts': { file: h.knownHosts },
            'baton-admin-token': { text: h.token },
          },
        },
      });
      assert.equal(jenkins.code, 1, jenkins.output);
      assert.match(
        jenkins.output,
        /^ERROR: the deploy of 1\.0\.2 failed \(exit 10\), the previous version serves: .*1\.0\.1/m,
      );
      assert.match(jenkins.output, /^result: \{.*"kind":"done".*"result":"(rolled-back|failed)"/m);
      assert.match(jenkins.output, /^--- baton history --limit 1 --logs on root@/m);
      assert.match(jenkins.output, /^ERROR: script returned exit code 10$/m);
      assert.match(jenkins.output, /^Finished: FAILURE$/m);
      assert.doesNotMatch(jenkins.output, new RegExp(h.token), 'the token is never printed');
      assert.equal(h.svc.state().live?.version, '1.0.1');
      const failed = lastDeploy(h);
      assert.equal(failed.version, '1.0.2');
      assert.notEqual(failed.result, 'succeeded');
      assert.equal(failed.actor, 'jenkins (Jenkins jenkins-deploy-7)');

      // 4. A host key that known_hosts does not have: ssh refuses (255), nothing deployed.
      const strangers = path.join(h.svc.dir, 'empty_known_hosts');
      writeFileSync(strangers, '');
      const unknown = await exec(SCRIPT, ['1.0.3'], ciEnv({ ...h.env, BATON_KNOWN_HOSTS: strangers }));
      assert.equal(unknown.code, 255, unknown.output);
      assert.match(unknown.output, /Host key verification failed/);
      assert.match(unknown.output, /^ERROR: ssh to root@\S+ failed \(exit 255/m);

      // 5. A config whose admin address no daemon answers on: exit 9.
      const elsewhere = path.join(h.svc.dir, 'elsewhere.yaml');
      const config = readFileSync(h.svc.file, 'utf8');
      writeFileSync(
        elsewhere,
        config.replace(`admin: 127.0.0.1:${h.svc.adminPort}`, `admin: 127.0.0.1:${await freePort()}`),
      );
      const nobody = await exec(SCRIPT, ['1.0.3'], ciEnv({ ...h.env, BATON_CONFIG: elsewhere }));
      assert.equal(nobody.code, 9, nobody.output);
      assert.match(nobody.output, /^ERROR: no baton daemon answers on root@\S+ \(exit 9\)/m);
      assert.match(nobody.output, /^result: \{"error":\{"code":"BATON_E_DAEMON_UNREACHABLE"/m);

      // 6. Frozen, through the workflow: refused with 13, the freeze's reason in the job's error
      // annotation, the status printed; the key is removed all the same.
      h.baton(['freeze', '--reason', 'release party']);
      const frozen = await runDeployWorkflow(h, runnerTemp, '1.0.3');
      assert.equal(frozen.code, 13, frozen.output);
      assert.deepEqual(frozen.ran, [
        'SSH key and known hosts from the secrets',
        'baton deploy',
        'Remove the SSH key',
      ]);
      assert.match(
        frozen.output,
        /^::error title=baton deploy::deploy refused on root@\S+ \(exit 13: .*release party/m,
      );
      assert.match(frozen.output, /^--- baton status on root@/m);
      assert.equal(existsSync(path.join(runnerTemp, 'baton_ssh_key')), false, 'the key is removed');
      assert.equal(h.svc.state().live?.version, '1.0.1');
      assert.equal(lastDeploy(h).version, '1.0.2', 'no deploy of 1.0.3 was started');

      // 7. Unfrozen, a slow deploy runs: a second one meanwhile is refused with 11, the status
      // printed; the first goes live.
      h.baton(['unfreeze']);
      h.svc.setFlags({ '1.0.4': ['--start-delay', '1500'] });
      const slow = exec(SCRIPT, ['1.0.4'], ciEnv(h.env));
      await waitFor(() => h.svc.state().deployment?.version === '1.0.4', {
        what: 'the deploy of 1.0.4 to start',
        timeout: 15_000,
      });
      const locked = await exec(SCRIPT, ['1.0.5'], ciEnv(h.env));
      assert.equal(locked.code, 11, locked.output);
      assert.match(locked.output, /^ERROR: another deploy holds the lock on root@\S+ \(exit 11\)/m);
      assert.match(locked.output, /^--- baton status on root@/m);
      const done = await slow;
      assert.equal(done.code, 0, done.output);
      assert.equal(h.svc.state().live?.version, '1.0.4');
    },
  );
});

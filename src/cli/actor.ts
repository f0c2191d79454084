// Who runs a CLI command, as the daemon records it (history, freezes, notifications).

/** Who is deploying: BATON_ACTOR, else the CI's user, else the login name; and from where. */
export function actorFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const who =
    env.BATON_ACTOR ||
    env.GITHUB_ACTOR ||
    env.GITLAB_USER_LOGIN ||
    env.BUILD_USER_ID ||
    env.USER ||
    env.LOGNAME ||
    'unknown';
  const via = env.GITHUB_ACTIONS
    ? `GitHub Actions${env.GITHUB_RUN_ID ? ` run ${env.GITHUB_RUN_ID}` : ''}`
    : env.GITLAB_CI
      ? `GitLab CI${env.CI_PIPELINE_ID ? ` pipeline ${env.CI_PIPELINE_ID}` : ''}`
      : env.JENKINS_URL
        ? `Jenkins${env.BUILD_TAG ? ` ${env.BUILD_TAG}` : ''}`
        : env.CI
          ? 'CI'
          : '';
  return via ? `${who} (${via})` : who;
}

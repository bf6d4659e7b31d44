/**
 * `regctl ci`: ready-to-use pipelines that build an image, tag it with the build number and `latest`, push
 * both and log out, as the hand-made Jenkins pipeline regctl grew from did. The pipelines read the registry
 * credentials from the CI system's secret store (never from the file); `regctl ci` creates a push-only user
 * for them, scoped to the repositories they push.
 */
import { stringify } from 'yaml';

export type CiSystem = 'jenkins' | 'github' | 'gitlab';
export const CI_SYSTEMS: readonly CiSystem[] = ['jenkins', 'github', 'gitlab'];

export interface PipelineOptions {
  /** Registry address as clients write it in image names, e.g. `registry.example.com` or `localhost:5000`. */
  registry: string;
  /** Repository pushed, e.g. `minio` or `apps/api`. */
  image: string;
  /** Build context directory in the project's checkout. */
  context: string;
  /** Jenkins credentials id / secret name prefix holding the push user. */
  credentialsId: string;
  /** The user created for the pipeline (documented in the header comment). */
  user: string;
  /** Add a deploy stage that runs the pushed image on the agent (as the original pipeline did). */
  deploy: boolean;
}

export const DEFAULT_CREDENTIALS_ID = 'docker-registry-creds';

/** Quote for a single-quoted Groovy string. */
function groovyString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * A declarative Jenkinsfile. Every `sh` step is a single-quoted Groovy string, so the credentials are
 * expanded by the shell from the environment and never interpolated into the script by Groovy (which would
 * print them in the build log and the process list).
 */
export function jenkinsPipeline(o: PipelineOptions): string {
  const deploy = o.deploy
    ? `
        stage('Deploy') {
            steps {
                sh 'docker pull "$REGISTRY/$IMAGE_NAME:$IMAGE_TAG"'
                sh 'docker stop "$CONTAINER_NAME" || true'
                sh 'docker rm "$CONTAINER_NAME" || true'
                sh 'docker run -d --name "$CONTAINER_NAME" "$REGISTRY/$IMAGE_NAME:$IMAGE_TAG"'
            }
        }
`
    : '';
  const containerName = o.image.split('/').pop() ?? o.image;
  return `// Builds ${o.image}, tags it with the build number and latest, and pushes both to ${o.registry}.
// Jenkins credentials needed: "Username with password", id ${groovyString(o.credentialsId)},
// holding the push-only user "${o.user}" created by \`regctl ci jenkins\`.
pipeline {
    agent any

    environment {
        REGISTRY = ${groovyString(o.registry)}
        IMAGE_NAME = ${groovyString(o.image)}
        IMAGE_TAG = "\${BUILD_NUMBER}"
        CONTAINER_NAME = ${groovyString(containerName)}
        BUILD_CONTEXT = ${groovyString(o.context)}
    }

    stages {
        stage('Build') {
            steps {
                sh 'docker build -t "$REGISTRY/$IMAGE_NAME:$IMAGE_TAG" "$BUILD_CONTEXT"'
                sh 'docker tag "$REGISTRY/$IMAGE_NAME:$IMAGE_TAG" "$REGISTRY/$IMAGE_NAME:latest"'
            }
        }

        stage('Push to Registry') {
            steps {
                withCredentials([usernamePassword(
                    credentialsId: ${groovyString(o.credentialsId)},
                    usernameVariable: 'REGISTRY_USER',
                    passwordVariable: 'REGISTRY_PASS'
                )]) {
                    sh 'printf "%s" "$REGISTRY_PASS" | docker login "$REGISTRY" -u "$REGISTRY_USER" --password-stdin'
                    sh 'docker push "$REGISTRY/$IMAGE_NAME:$IMAGE_TAG"'
                    sh 'docker push "$REGISTRY/$IMAGE_NAME:latest"'
                }
            }
        }
${deploy}    }

    post {
        always {
            sh 'docker logout "$REGISTRY"'
        }
    }
}
`;
}

/** The secret names a GitHub or GitLab pipeline reads, derived from the credentials id. */
export function secretNames(credentialsId: string): { user: string; password: string } {
  const base =
    credentialsId
      .toUpperCase()
      .replace(/[^A-Z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '') || 'REGISTRY';
  return { user: `${base}_USER`, password: `${base}_PASSWORD` };
}

/** A GitHub Actions workflow: on pushes to the default branch and by hand. */
export function githubWorkflow(o: PipelineOptions): string {
  const s = secretNames(o.credentialsId);
  const ref = '$REGISTRY/$IMAGE_NAME';
  const workflow = {
    name: `Build and push ${o.image}`,
    on: { push: { branches: ['main'] }, workflow_dispatch: {} },
    permissions: { contents: 'read' },
    env: {
      REGISTRY: o.registry,
      IMAGE_NAME: o.image,
      IMAGE_TAG: '${{ github.run_number }}',
      BUILD_CONTEXT: o.context,
    },
    jobs: {
      build: {
        'runs-on': 'ubuntu-latest',
        steps: [
          { uses: 'actions/checkout@v4' },
          {
            name: 'Build',
            run: `docker build -t "${ref}:$IMAGE_TAG" "$BUILD_CONTEXT"\ndocker tag "${ref}:$IMAGE_TAG" "${ref}:latest"\n`,
          },
          {
            name: 'Log in to the registry',
            env: { REGISTRY_USER: `\${{ secrets.${s.user} }}`, REGISTRY_PASS: `\${{ secrets.${s.password} }}` },
            run: 'printf "%s" "$REGISTRY_PASS" | docker login "$REGISTRY" -u "$REGISTRY_USER" --password-stdin\n',
          },
          { name: 'Push', run: `docker push "${ref}:$IMAGE_TAG"\ndocker push "${ref}:latest"\n` },
          { name: 'Log out', if: 'always()', run: 'docker logout "$REGISTRY"\n' },
        ],
      },
    },
  };
  return (
    `# Builds ${o.image}, tags it with the run number and latest, and pushes both to ${o.registry}.\n` +
    `# Repository secrets needed: ${s.user} and ${s.password} (the push-only user "${o.user}" created by \`regctl ci github\`).\n` +
    stringify(workflow, { lineWidth: 0 })
  );
}

/** A GitLab CI pipeline with one job in a `publish` stage. */
export function gitlabPipeline(o: PipelineOptions): string {
  const s = secretNames(o.credentialsId);
  const ref = '$REGISTRY/$IMAGE_NAME';
  const pipeline = {
    stages: ['publish'],
    variables: { REGISTRY: o.registry, IMAGE_NAME: o.image, IMAGE_TAG: '$CI_PIPELINE_IID', BUILD_CONTEXT: o.context },
    publish: {
      stage: 'publish',
      image: 'docker:27',
      services: ['docker:27-dind'],
      script: [
        `printf "%s" "$${s.password}" | docker login "$REGISTRY" -u "$${s.user}" --password-stdin`,
        `docker build -t "${ref}:$IMAGE_TAG" "$BUILD_CONTEXT"`,
        `docker tag "${ref}:$IMAGE_TAG" "${ref}:latest"`,
        `docker push "${ref}:$IMAGE_TAG"`,
        `docker push "${ref}:latest"`,
      ],
      after_script: ['docker logout "$REGISTRY"'],
      rules: [{ if: '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH' }],
    },
  };
  return (
    `# Builds ${o.image}, tags it with the pipeline number and latest, and pushes both to ${o.registry}.\n` +
    `# Masked CI/CD variables needed: ${s.user} and ${s.password} (the push-only user "${o.user}" created by \`regctl ci gitlab\`).\n` +
    stringify(pipeline, { lineWidth: 0 })
  );
}

export function renderPipeline(system: CiSystem, o: PipelineOptions): string {
  switch (system) {
    case 'jenkins':
      return jenkinsPipeline(o);
    case 'github':
      return githubWorkflow(o);
    case 'gitlab':
      return gitlabPipeline(o);
  }
}

/** Where each system expects its pipeline file in a project's checkout. */
export const PIPELINE_FILE: Record<CiSystem, string> = {
  jenkins: 'Jenkinsfile',
  github: '.github/workflows/regctl-push.yml',
  gitlab: '.gitlab-ci.yml',
};

/** Repository pattern a pipeline's user may push to: the image's repository and nothing else by default. */
export function defaultRepoPattern(image: string): string {
  return image;
}

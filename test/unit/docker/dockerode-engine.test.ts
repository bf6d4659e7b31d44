import { describe, expect, it } from 'vitest';
import { RegctlError } from '../../../src/common/errors.js';
import { createDockerEngine, engineTarget } from '../../../src/docker/dockerode-engine.js';

describe('dockerode engine', () => {
  it('maps a socket that does not exist to DOCKER_UNREACHABLE with a hint', async () => {
    const engine = createDockerEngine({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    const err = await engine.ping().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RegctlError);
    expect((err as RegctlError).code).toBe('DOCKER_UNREACHABLE');
    expect((err as RegctlError).message).toBe('no Docker engine reachable at unix:///nonexistent/docker.sock (ENOENT)');
    expect((err as RegctlError).hint).toContain('DOCKER_HOST');
  });

  it('maps a TCP endpoint nobody listens on to DOCKER_UNREACHABLE', async () => {
    const engine = createDockerEngine({ DOCKER_HOST: 'tcp://127.0.0.1:1' });
    await expect(engine.listContainers({})).rejects.toMatchObject({ code: 'DOCKER_UNREACHABLE' });
  });

  it('reads DOCKER_HOST forms, and refuses one it cannot use', () => {
    expect(engineTarget({}).describe).toBe('unix:///var/run/docker.sock');
    expect(engineTarget({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' }).options.socketPath).toBe(
      '/run/user/1000/docker.sock',
    );
    expect(engineTarget({ DOCKER_HOST: 'tcp://10.0.0.2:2376' }).options).toMatchObject({
      host: '10.0.0.2',
      port: 2376,
    });
    expect(() => engineTarget({ DOCKER_HOST: 'ssh://me@host' })).toThrow(RegctlError);
  });
});

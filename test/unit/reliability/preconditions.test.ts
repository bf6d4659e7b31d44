/** Under CI=true a missing precondition (root, the build, a peer such as htpasswd) fails instead of skipping. */
import { afterEach, describe, expect, it, vi } from 'vitest';

async function freshPeers(ci: string | undefined): Promise<typeof import('../../helpers/peers.js')> {
  vi.resetModules();
  vi.stubEnv('CI', ci);
  vi.stubEnv('REGCTL_PEERS_DIR', '/nonexistent/regctl-peers');
  return import('../../helpers/peers.js');
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('test preconditions', () => {
  it('under CI=true a missing precondition throws with what is missing and how to fix it', async () => {
    const peers = await freshPeers('true');
    expect(() => peers.preconditionMet('root with mount(8)', false, 'run as root')).toThrow(
      'missing test precondition, root with mount(8): run as root',
    );
    expect(() => peers.peerAvailable('crane')).toThrow(/test peer 'crane' is missing/);
    expect(peers.preconditionMet('root with mount(8)', true, 'run as root')).toBe(true);
  });

  it('elsewhere it reports the skip and answers false', async () => {
    const peers = await freshPeers(undefined);
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(peers.preconditionMet('the built CLI', false, 'run npm run build')).toBe(false);
      expect(write).toHaveBeenCalledWith('skipping tests that need the built CLI: the built CLI: run npm run build\n');
    } finally {
      write.mockRestore();
    }
  });
});

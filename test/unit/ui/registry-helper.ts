/** Our registry in-process, on a loopback port, with an htpasswd user and tiny images pushed through the API. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { createRegistryServer } from '../../../src/registry/server.js';
import { basicAuth } from '../../helpers/auth.js';

export interface TestRegistry {
  url: string;
  user: string;
  password: string;
  auth: string;
  /** Pushes a one-layer image (via the API) and tags it. Returns the manifest digest. */
  pushImage(repo: string, tag: string, created?: string, rawConfig?: Buffer): Promise<string>;
  close(): Promise<void>;
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export async function startTestRegistry(): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'regctl-ui-unit-'));
  const user = 'admin';
  const password = randomBytes(9).toString('base64url');
  await writeFile(join(dir, 'htpasswd'), `${user}:${bcrypt.hashSync(password, 4)}\n`, { mode: 0o600 });
  const server = createRegistryServer({
    port: 0,
    dataDir: join(dir, 'data'),
    htpasswd: join(dir, 'htpasswd'),
    logLevel: 'silent',
  });
  const { url } = await server.listen();
  const auth = basicAuth(user, password);
  const putBlob = async (repo: string, data: Buffer) => {
    const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${sha(data)}`, {
      method: 'POST',
      headers: { Authorization: auth },
      body: new Uint8Array(data),
    });
    if (res.status !== 201) throw new Error(`blob upload answered ${res.status}`);
    return { digest: sha(data), size: data.length };
  };
  return {
    url,
    user,
    password,
    auth,
    async pushImage(repo, tag, created = '2026-11-01T00:00:00Z', rawConfig?: Buffer) {
      const layer = await putBlob(repo, randomBytes(64));
      const config = await putBlob(
        repo,
        rawConfig ??
          Buffer.from(
            JSON.stringify({
              created,
              os: 'linux',
              architecture: 'amd64',
              config: {},
              rootfs: { type: 'layers', diff_ids: [layer.digest] },
            }),
          ),
      );
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
        }),
      );
      const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
        method: 'PUT',
        headers: { Authorization: auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
        body: new Uint8Array(manifest),
      });
      if (res.status !== 201) throw new Error(`manifest put answered ${res.status}`);
      return sha(manifest);
    },
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

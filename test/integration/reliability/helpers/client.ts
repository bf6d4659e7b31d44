import { createHash } from 'node:crypto';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

export const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

export class HttpStatusError extends Error {
  readonly status: number;
  readonly body: string;
  constructor(what: string, status: number, body: string) {
    super(`${what}: HTTP ${status} ${body.slice(0, 300)}`);
    this.status = status;
    this.body = body;
  }
}

/** A small OCI registry client over fetch, enough to drive pushes, pulls, deletes and the admin API. */
export class RegistryClient {
  readonly base: string;
  readonly authorization: string | undefined;
  readonly timeoutMs: number;

  constructor(base: string, authorization?: string, opts: { timeoutMs?: number } = {}) {
    this.base = base.replace(/\/$/, '');
    this.authorization = authorization;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  async request(
    method: string,
    path: string,
    init: { body?: Buffer | string; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.authorization) headers.Authorization = this.authorization;
    const url = path.startsWith('http') ? path : `${this.base}${path}`;
    return fetch(url, {
      method,
      headers,
      body: init.body === undefined ? undefined : new Uint8Array(Buffer.from(init.body)),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
  }

  private async expect(res: Response, status: number[], what: string): Promise<Response> {
    if (!status.includes(res.status)) throw new HttpStatusError(what, res.status, await res.text());
    return res;
  }

  /** `POST ?digest=` with the whole body. */
  async pushBlobMonolithic(repo: string, data: Buffer): Promise<string> {
    const digest = sha256(data);
    const res = await this.request('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      body: data,
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    await this.expect(res, [201], `monolithic push ${repo}@${digest}`);
    await res.arrayBuffer();
    return digest;
  }

  /** `POST` then `PATCH` chunks with Content-Range, then `PUT ?digest=`. */
  async pushBlobChunked(repo: string, data: Buffer, chunkSize: number): Promise<string> {
    const digest = sha256(data);
    let res = await this.expect(
      await this.request('POST', `/v2/${repo}/blobs/uploads/`),
      [202],
      `start upload ${repo}`,
    );
    await res.arrayBuffer();
    let location = res.headers.get('location') as string;
    for (let start = 0; start < data.length; start += chunkSize) {
      const chunk = data.subarray(start, Math.min(data.length, start + chunkSize));
      res = await this.request('PATCH', location, {
        body: chunk,
        headers: {
          'Content-Type': 'application/octet-stream',
          'Content-Range': `${start}-${start + chunk.length - 1}`,
        },
      });
      await this.expect(res, [202], `patch ${repo} ${start}`);
      await res.arrayBuffer();
      location = res.headers.get('location') as string;
    }
    const sep = location.includes('?') ? '&' : '?';
    res = await this.request('PUT', `${location}${sep}digest=${digest}`);
    await this.expect(res, [201], `finish upload ${repo}@${digest}`);
    await res.arrayBuffer();
    return digest;
  }

  /** Cross-repository mount; true on 201, false when the registry fell back to an upload session (202). */
  async mountBlob(repo: string, from: string, digest: string): Promise<boolean> {
    const res = await this.request('POST', `/v2/${repo}/blobs/uploads/?mount=${digest}&from=${from}`);
    await this.expect(res, [201, 202], `mount ${digest} from ${from} into ${repo}`);
    await res.arrayBuffer();
    if (res.status === 202) {
      const loc = res.headers.get('location');
      if (loc) await (await this.request('DELETE', loc)).arrayBuffer();
    }
    return res.status === 201;
  }

  async putManifest(repo: string, reference: string, body: Buffer, mediaType = OCI_MANIFEST): Promise<string> {
    const res = await this.request('PUT', `/v2/${repo}/manifests/${reference}`, {
      body,
      headers: { 'Content-Type': mediaType },
    });
    await this.expect(res, [201], `put manifest ${repo}:${reference}`);
    await res.arrayBuffer();
    return res.headers.get('docker-content-digest') as string;
  }

  async getBlob(repo: string, digest: string): Promise<{ status: number; body: Buffer }> {
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`);
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  }

  async getManifest(repo: string, reference: string): Promise<{ status: number; body: Buffer; digest: string | null }> {
    const res = await this.request('GET', `/v2/${repo}/manifests/${reference}`, {
      headers: { Accept: `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json` },
    });
    return {
      status: res.status,
      body: Buffer.from(await res.arrayBuffer()),
      digest: res.headers.get('docker-content-digest'),
    };
  }

  async deleteManifest(repo: string, reference: string): Promise<number> {
    const res = await this.request('DELETE', `/v2/${repo}/manifests/${reference}`);
    await res.arrayBuffer();
    return res.status;
  }

  async deleteBlob(repo: string, digest: string): Promise<number> {
    const res = await this.request('DELETE', `/v2/${repo}/blobs/${digest}`);
    await res.arrayBuffer();
    return res.status;
  }

  async catalog(): Promise<string[]> {
    return (await this.json<{ repositories: string[] }>('GET', '/v2/_catalog?n=10000')).repositories;
  }

  /** The repository's tags; undefined when it answers 404. */
  async tags(repo: string): Promise<string[] | undefined> {
    const res = await this.request('GET', `/v2/${repo}/tags/list`);
    if (res.status === 404) {
      await res.arrayBuffer();
      return undefined;
    }
    await this.expect(res, [200], `tags of ${repo}`);
    return ((await res.json()) as { tags: string[] | null }).tags ?? [];
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(
      method,
      path,
      body === undefined ? {} : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } },
    );
    await this.expect(res, [200], `${method} ${path}`);
    return (await res.json()) as T;
  }
}

/** An OCI image manifest over a config and layers already pushed. */
export function imageManifest(config: Buffer, layers: Buffer[], annotations?: Record<string, string>): Buffer {
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: sha256(l), size: l.length })),
  };
  if (annotations) doc.annotations = annotations;
  return Buffer.from(JSON.stringify(doc));
}

import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A registry that stores nothing: the client's ceiling for `docker push`. It answers the requests a push makes
 * (a blob is absent until its upload finished, uploads are accepted and their bytes dropped after counting, a
 * manifest is accepted under the digest of its body) and keeps nothing, so a push to it takes what the client itself takes:
 * dockerd reading and gzipping each layer and sending it. No registry can take a push faster than that.
 */
export class NullRegistry {
  /** Bytes of blob uploads received since start. */
  received = 0;
  manifests = 0;
  private readonly server: Server;
  /** Bytes received so far by each upload in progress (for the Range a PATCH answers). */
  private readonly uploads = new Map<string, number>();
  /** Blobs whose upload finished, with their sizes: the client checks each after its upload. */
  private readonly blobs = new Map<string, number>();

  private constructor() {
    this.server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => this.handle(req, res));
  }

  static async start(): Promise<NullRegistry & { port: number }> {
    const r = new NullRegistry();
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
    return Object.assign(r, { port: (r.server.address() as AddressInfo).port });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://null');
    const path = url.pathname;
    const send = (status: number, headers: Record<string, string> = {}, body = ''): void => {
      res.writeHead(status, { 'docker-distribution-api-version': 'registry/2.0', ...headers });
      res.end(body);
    };
    let bytes = 0;
    const hash = createHash('sha256');
    const isManifest = /^\/v2\/.+\/manifests\/[^/]+$/.test(path);
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (isManifest) hash.update(chunk);
    });
    req.on('end', () => {
      if (path === '/v2/' || path === '/v2') return send(200, { 'content-type': 'application/json' }, '{}');
      const upload = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(path);
      const blob = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path);
      if (blob && req.method === 'HEAD') {
        const size = this.blobs.get(blob[2] as string);
        if (size === undefined) return send(404);
        return send(200, { 'content-length': String(size), 'docker-content-digest': blob[2] as string });
      }
      if (blob) return send(404);
      if (upload && req.method === 'POST') {
        const id = randomUUID();
        this.uploads.set(id, 0);
        return send(202, { location: `/v2/${upload[1]}/blobs/uploads/${id}`, range: '0-0', 'docker-upload-uuid': id });
      }
      if (upload && req.method === 'PATCH') {
        this.received += bytes;
        const total = (this.uploads.get(upload[2] as string) ?? 0) + bytes;
        this.uploads.set(upload[2] as string, total);
        return send(202, { location: path, range: `0-${Math.max(0, total - 1)}` });
      }
      if (upload && req.method === 'PUT') {
        this.received += bytes;
        const digest = url.searchParams.get('digest') ?? '';
        this.blobs.set(digest, (this.uploads.get(upload[2] as string) ?? 0) + bytes);
        this.uploads.delete(upload[2] as string);
        return send(201, { location: `/v2/${upload[1]}/blobs/${digest}`, 'docker-content-digest': digest });
      }
      if (isManifest && req.method === 'PUT') {
        this.manifests++;
        return send(201, { 'docker-content-digest': `sha256:${hash.digest('hex')}` });
      }
      if (isManifest) return send(404);
      send(404);
    });
  }
}

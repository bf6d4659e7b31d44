import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { NullRegistry } from '../../../bench/lib/null-registry.js';

let sink: (NullRegistry & { port: number }) | undefined;
afterEach(async () => {
  await sink?.close();
  sink = undefined;
});

describe('the null registry (the docker push ceiling)', () => {
  it('answers a push as a registry would while keeping nothing but counts', async () => {
    sink = await NullRegistry.start();
    const base = `http://127.0.0.1:${sink.port}`;
    expect((await fetch(`${base}/v2/`)).status).toBe(200);
    const layer = Buffer.alloc(300_000, 7);
    const digest = `sha256:${createHash('sha256').update(layer).digest('hex')}`;
    expect((await fetch(`${base}/v2/b/p/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    const started = await fetch(`${base}/v2/b/p/blobs/uploads/`, { method: 'POST' });
    expect(started.status).toBe(202);
    const location = started.headers.get('location') as string;
    const first = await fetch(base + location, { method: 'PATCH', body: new Uint8Array(layer.subarray(0, 100_000)) });
    expect(first.headers.get('range')).toBe('0-99999');
    const second = await fetch(base + location, { method: 'PATCH', body: new Uint8Array(layer.subarray(100_000)) });
    expect(second.headers.get('range')).toBe('0-299999');
    const done = await fetch(`${base}${location}?digest=${digest}`, { method: 'PUT' });
    expect(done.status).toBe(201);
    // The client checks the blob after its upload: it must be there, with its size.
    const head = await fetch(`${base}/v2/b/p/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('300000');
    const manifest = Buffer.from('{"schemaVersion":2}');
    const put = await fetch(`${base}/v2/b/p/manifests/1`, { method: 'PUT', body: new Uint8Array(manifest) });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(
      `sha256:${createHash('sha256').update(manifest).digest('hex')}`,
    );
    expect(sink.received).toBe(300_000);
    expect(sink.manifests).toBe(1);
  });
});

/**
 * The growing factor raised during large uploads: which requests count, when the factor goes up and back. V8's
 * flag setter is replaced by a recorder here (what the factor does to collections is measured by `npm run bench`,
 * the chunked push against the store ceiling).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EventEmitter } from 'node:events';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  isLargeUpload,
  RESTORE_AFTER_MS,
  SCAVENGE_CHECK_MS,
  SCAVENGE_EVERY_BYTES,
  startGrowingPercent,
  trackingUploads,
  UploadHeapGrowth,
} from '../../../src/registry/upload-heap.js';

function request(method: string, url: string, headers: Record<string, string> = {}): IncomingMessage {
  return { method, url, headers } as unknown as IncomingMessage;
}

describe('upload heap growth', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reads the start factor from the command line, 0 without one', () => {
    expect(startGrowingPercent(['--max-semi-space-size=1', '--heap-growing-percent=30'])).toBe(30);
    expect(startGrowingPercent(['--heap_growing_percent=300'])).toBe(300);
    expect(startGrowingPercent(['--max-semi-space-size=1'])).toBe(0);
  });

  it('counts blob uploads of 1 MiB or more, or of unknown length, and nothing else', () => {
    const big = { 'content-length': String(16 * 1024 * 1024) };
    expect(isLargeUpload(request('PATCH', '/v2/a/blobs/uploads/u1', big))).toBe(true);
    expect(isLargeUpload(request('POST', '/v2/a/blobs/uploads/?digest=sha256:00', big))).toBe(true);
    expect(isLargeUpload(request('PATCH', '/v2/a/blobs/uploads/u1', { 'transfer-encoding': 'chunked' }))).toBe(true);
    expect(isLargeUpload(request('PATCH', '/v2/a/blobs/uploads/u1', { 'content-length': '1000' }))).toBe(false);
    expect(isLargeUpload(request('PUT', '/v2/a/manifests/latest', big))).toBe(false);
    expect(isLargeUpload(request('GET', '/v2/a/blobs/uploads/u1', big))).toBe(false);
  });

  it('raises the factor at the first upload and puts it back a moment after the last one, collecting then', () => {
    const calls: string[] = [];
    const growth = new UploadHeapGrowth(
      30,
      (f) => calls.push(f),
      () => calls.push('full collection'),
    );
    growth.begin();
    growth.begin();
    growth.end();
    vi.advanceTimersByTime(RESTORE_AFTER_MS * 2);
    expect(calls).toEqual(['--heap-growing-percent=300']);
    growth.end();
    vi.advanceTimersByTime(RESTORE_AFTER_MS - 1);
    // The next chunk of a chunked push, within the moment: still raised, no flag change.
    growth.begin();
    growth.end();
    vi.advanceTimersByTime(RESTORE_AFTER_MS - 1);
    expect(calls).toEqual(['--heap-growing-percent=300']);
    vi.advanceTimersByTime(1);
    expect(calls).toEqual(['--heap-growing-percent=300', '--heap-growing-percent=30', 'full collection']);
    growth.begin();
    growth.close();
    expect(calls.slice(3)).toEqual(['--heap-growing-percent=300', '--heap-growing-percent=30']);
  });

  it('changes nothing for a process that runs with the upload factor already, and survives a refusing V8', () => {
    const calls: string[] = [];
    const s3 = new UploadHeapGrowth(
      300,
      (f) => calls.push(f),
      () => calls.push('full collection'),
    );
    s3.begin();
    s3.end();
    vi.advanceTimersByTime(RESTORE_AFTER_MS);
    expect(calls).toEqual([]);
    const refusing = new UploadHeapGrowth(
      30,
      () => {
        throw new Error('flags are frozen');
      },
      () => {
        throw new Error('no collector');
      },
    );
    expect(() => refusing.begin()).not.toThrow();
    refusing.end();
    expect(() => vi.advanceTimersByTime(RESTORE_AFTER_MS)).not.toThrow();
  });

  it("finds V8's full collection when none is passed", () => {
    // The real one: a new context made after `--expose-gc` was set hands it over.
    const growth = new UploadHeapGrowth(30, () => undefined);
    growth.begin();
    growth.end();
    expect(() => vi.advanceTimersByTime(RESTORE_AFTER_MS)).not.toThrow();
    expect(typeof runInNewContext('gc')).toBe('function');
  });

  it('tracks an upload from its request until its response closes', () => {
    const calls: string[] = [];
    const growth = new UploadHeapGrowth(
      30,
      (f) => calls.push(f),
      () => undefined,
    );
    const handled: string[] = [];
    const listener = trackingUploads((req) => handled.push(req.url ?? ''), growth);
    const res = new EventEmitter() as unknown as ServerResponse;
    listener(request('PATCH', '/v2/a/blobs/uploads/u1', { 'content-length': String(4 * 1024 * 1024) }), res);
    listener(request('GET', '/v2/a/manifests/x'), new EventEmitter() as unknown as ServerResponse);
    expect(handled).toEqual(['/v2/a/blobs/uploads/u1', '/v2/a/manifests/x']);
    expect(calls).toEqual(['--heap-growing-percent=300']);
    res.emit('close');
    vi.advanceTimersByTime(RESTORE_AFTER_MS);
    expect(calls).toEqual(['--heap-growing-percent=300', '--heap-growing-percent=30']);
  });

  it('asks for a young-generation collection per 8 MiB received by the uploads in flight, and stops after them', () => {
    let scavenges = 0;
    const growth = new UploadHeapGrowth(
      30,
      () => undefined,
      () => undefined,
      () => scavenges++,
    );
    // A keep-alive socket has read bytes before the upload: they are not the upload's.
    const a = { bytesRead: 50 * 1024 * 1024 };
    const b = { bytesRead: 0 };
    growth.begin(a);
    growth.begin(b);
    const step = 1024 * 1024;
    // 3 MiB a tick (2 on one socket, 1 on the other) for 8 ticks: 24 MiB, three collections.
    for (let i = 0; i < 8; i++) {
      a.bytesRead += 2 * step;
      b.bytesRead += step;
      vi.advanceTimersByTime(SCAVENGE_CHECK_MS);
    }
    expect(scavenges).toBe(Math.floor((24 * step) / SCAVENGE_EVERY_BYTES));
    // What arrives just before an upload ends is counted at its end.
    b.bytesRead += 8 * step;
    growth.end(b);
    expect(scavenges).toBe(4);
    growth.end(a);
    a.bytesRead += 64 * step;
    vi.advanceTimersByTime(SCAVENGE_CHECK_MS * 10);
    expect(scavenges).toBe(4);
    expect(vi.getTimerCount()).toBe(1); // only the restore of the factor is left
    // A process running with the upload factor already (S3) is left to V8.
    const s3 = new UploadHeapGrowth(
      300,
      () => undefined,
      () => undefined,
      () => scavenges++,
    );
    const c = { bytesRead: 0 };
    s3.begin(c);
    c.bytesRead += 64 * step;
    vi.advanceTimersByTime(SCAVENGE_CHECK_MS * 2);
    s3.end(c);
    expect(scavenges).toBe(4);
  });

  it("finds V8's young-generation collection when none is passed", () => {
    const growth = new UploadHeapGrowth(
      30,
      () => undefined,
      () => undefined,
    );
    const socket = { bytesRead: 0 };
    growth.begin(socket);
    socket.bytesRead += SCAVENGE_EVERY_BYTES;
    expect(() => vi.advanceTimersByTime(SCAVENGE_CHECK_MS)).not.toThrow();
    growth.end(socket);
    growth.close();
  });
});

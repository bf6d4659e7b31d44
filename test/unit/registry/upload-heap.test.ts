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
});

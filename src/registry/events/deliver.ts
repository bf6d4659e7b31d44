/**
 * One delivery attempt: POST of an envelope `{ events: [event] }` to an endpoint, signed with its secret. The
 * target's host is resolved here and every address it resolves to is checked (`forbiddenAddress`) unless the
 * endpoint has `allowPrivate: true`; the connection goes to the address checked, so a name that resolves
 * differently a moment later (DNS rebinding) cannot slip past the check.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import {
  EVENT_ID_HEADER,
  EVENTS_MEDIA_TYPE,
  forbiddenAddress,
  forbiddenHost,
  signBody,
  SIGNATURE_HEADER,
  type EventEndpoint,
} from '../../common/events.js';
import { VERSION } from '../../common/version.js';
import type { RegistryEvent } from './outbox.js';

/** Thrown (and logged as the attempt's error) when the target is refused before any connection. */
export class TargetRefusedError extends Error {
  override name = 'TargetRefusedError';
}

/** The resolver `deliver` uses: the system's (tests pass their own, having no DNS of their own to point). */
export type Resolver = typeof dnsLookup;

function guardedLookup(allowPrivate: boolean, resolver: Resolver): LookupFunction {
  return (host, options, callback) => {
    resolver(host, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const refused = allowPrivate ? undefined : addresses.map((a) => forbiddenAddress(a.address)).find(Boolean);
      if (refused) return callback(new TargetRefusedError(`${host} resolves to ${refused}`), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };
}

/** Resolves with the HTTP status (2xx is delivered); rejects on refusal, network error or timeout. */
export async function deliver(
  endpoint: EventEndpoint,
  secret: Buffer | undefined,
  event: RegistryEvent,
  resolver: Resolver = dnsLookup,
): Promise<number> {
  const url = endpoint.url;
  const refused = endpoint.allowPrivate ? undefined : forbiddenHost(url.hostname);
  if (refused) throw new TargetRefusedError(refused);
  const body = Buffer.from(JSON.stringify({ events: [event] }));
  const headers: Record<string, string> = {
    'Content-Type': EVENTS_MEDIA_TYPE,
    'Content-Length': String(body.length),
    'User-Agent': `regctl/${VERSION}`,
    [EVENT_ID_HEADER]: event.id,
  };
  if (secret) headers[SIGNATURE_HEADER] = signBody(body, secret);
  const options: RequestOptions = {
    method: 'POST',
    headers,
    timeout: endpoint.timeoutMs,
    lookup: guardedLookup(endpoint.allowPrivate, resolver),
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<number>((resolve, reject) => {
    const req = send(url, options, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${endpoint.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

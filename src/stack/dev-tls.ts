/**
 * HTTPS in dev: where the stack's local CA and its leaf certificate live, and the Traefik dynamic file that serves
 * the leaf. The certificates themselves are made by `src/ops/dev-ca.ts` at `regctl init`.
 *
 * ```
 * certs/ca.crt                    the local CA (what `regctl login --trust` copies to the engine's certs.d)
 * certs/ca.key           0600     its key: never mounted into a container
 * certs/traefik/<host>.crt        the leaf for every dev host name, signed by the CA
 * certs/traefik/<host>.key 0600   its key; certs/traefik/ is the only directory Traefik mounts
 * traefik/tls.yml                 Traefik's dynamic file: the leaf as the default certificate
 * ```
 */
import { toYamlText } from './compose.js';

export const CERTS_DIR = 'certs';
export const CA_CERT_FILE = 'certs/ca.crt';
export const CA_KEY_FILE = 'certs/ca.key';
/** The leaf's directory, relative to the stack directory: Traefik mounts it (and not the CA key beside it). */
export const LEAF_DIR = 'certs/traefik';
export const TLS_DYNAMIC_FILE = 'traefik/tls.yml';
/** Where Traefik sees the leaf directory and the dynamic file. */
export const TRAEFIK_CERTS_PATH = '/etc/traefik/certs';
export const TRAEFIK_TLS_PATH = '/etc/traefik/tls.yml';

/** The leaf's files for a stack's `host` (relative to the stack directory). */
export function leafFiles(host: string): { cert: string; key: string } {
  return { cert: `${LEAF_DIR}/${host}.crt`, key: `${LEAF_DIR}/${host}.key` };
}

/**
 * Traefik's dynamic TLS config: the leaf as the default store's certificate, so every TLS router of the dev stack
 * (on `websecure` and the TLS copies on `web`) answers with it whatever name a client sends.
 */
export function tlsDynamicConfigText(host: string): string {
  const name = `${host}.crt`;
  const certFile = `${TRAEFIK_CERTS_PATH}/${name}`;
  const keyFile = `${TRAEFIK_CERTS_PATH}/${host}.key`;
  return toYamlText(
    {
      tls: {
        certificates: [{ certFile, keyFile }],
        stores: { default: { defaultCertificate: { certFile, keyFile } } },
      },
    },
    [
      ' Traefik dynamic configuration (dev), rendered by regctl: the certificate of the dev host names, made by',
      " `regctl init` and signed by the stack's local CA (certs/ca.crt; `regctl login --trust` installs it).",
    ].join('\n'),
  );
}

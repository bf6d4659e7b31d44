/**
 * What the image page shows for a tag or digest: the manifest, an image's config, an index's platforms, the total
 * size and the referrers, each read through RegistryData's cache. A missing config or referrers API degrades the
 * page instead of failing it.
 */
import pMap from 'p-map';
import { referrerAttachments, tagAttachments, type Attachment } from './attachments.js';
import {
  FAN_OUT,
  isImageConfig,
  platformChildren,
  platformName,
  type PlatformInfo,
  type RegistryData,
} from './data.js';
import {
  isIndex,
  RegistryHttpError,
  RegistryNotFoundError,
  type Descriptor,
  type FetchedManifest,
  type ImageConfig,
  type ImageManifest,
} from './registry-client.js';

export interface ImageDetails {
  name: string;
  reference: string;
  fetched: FetchedManifest;
  kind: 'image' | 'index' | 'artifact';
  config: ImageConfig | undefined;
  configRaw: string | undefined;
  size: number;
  platforms: PlatformInfo[];
  referrers: Descriptor[] | undefined;
  referrersError: string | undefined;
  /** Signatures, attestations, SBOMs and other artifacts: the referrers, then cosign's tag-scheme attachments. */
  attachments: Attachment[];
}

export async function imageDetails(data: RegistryData, name: string, reference: string): Promise<ImageDetails> {
  const fetched = await data.manifest(name, reference);
  const m = fetched.manifest;
  let config: ImageConfig | undefined;
  let configRaw: string | undefined;
  let kind: ImageDetails['kind'];
  let platforms: PlatformInfo[] = [];
  if (isIndex(m)) {
    kind = 'index';
    platforms = await pMap(
      platformChildren(m.manifests),
      async (d) => {
        const child = await data.manifest(name, d.digest);
        const im = child.manifest as ImageManifest;
        const size = (im.config?.size ?? 0) + (im.layers ?? []).reduce((n, l) => n + l.size, 0);
        const created = isImageConfig(im)
          ? (await optionalConfig(data, name, im.config.digest))?.config.created
          : undefined;
        return { platform: platformName(d), digest: d.digest, size, created };
      },
      { concurrency: FAN_OUT },
    );
  } else if (isImageConfig(m)) {
    kind = 'image';
    const c = await optionalConfig(data, name, m.config.digest);
    config = c?.config;
    configRaw = c?.raw;
  } else {
    kind = 'artifact';
  }
  const size = [...(await data.blobSet(name, fetched)).values()].reduce((a, b) => a + b, 0);
  let referrers: Descriptor[] | undefined;
  let referrersError: string | undefined;
  try {
    referrers = await data.referrers(name, fetched.digest);
  } catch (err) {
    if (err instanceof RegistryNotFoundError || err instanceof RegistryHttpError)
      referrersError = 'this registry does not serve the referrers API';
    else throw err;
  }
  const attachments = [...referrerAttachments(referrers ?? []), ...(await tagAttachments(data, name, fetched.digest))];
  return { name, reference, fetched, kind, config, configRaw, size, platforms, referrers, referrersError, attachments };
}

/** A config blob, or undefined when it is missing or not JSON (the page then shows the manifest alone). */
async function optionalConfig(
  data: RegistryData,
  name: string,
  digest: string,
): Promise<{ config: ImageConfig; raw: string } | undefined> {
  try {
    return await data.config(name, digest);
  } catch (err) {
    if (err instanceof RegistryNotFoundError || err instanceof RegistryHttpError) return undefined;
    throw err;
  }
}

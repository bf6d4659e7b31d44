/** The images step of `regctl up`: build ours when its context changed, use or pull the others, drop stale ones. */
import { RegctlError } from '../common/errors.js';
import type { Output } from '../common/io.js';
import {
  CONTEXT_HASH_LABEL,
  DOCKERFILE_PATH,
  collectContextFiles,
  contextHash,
  contextTar,
  packageRoot,
} from '../docker/build-context.js';
import type { DockerEngine, ImageInfo } from '../docker/engine.js';
import type { LoadedStack } from './stack.js';

export interface ImageOptions {
  out: Output;
  engine: DockerEngine;
  /** Package directory used as the build context (default: this package). */
  packageDir?: string;
}

/** Where the step records what it did (the `up` result). */
export interface ImageRecord {
  imagesBuilt: string[];
  imagesPulled: string[];
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Image references resolved to image IDs, building and pulling as needed. */
export async function prepareImages(
  stack: LoadedStack,
  opts: ImageOptions,
  result: ImageRecord,
  stale: string[],
): Promise<Map<string, ImageInfo>> {
  const { model } = stack;
  const { out, engine } = opts;
  const images = new Map<string, ImageInfo>();
  for (const build of model.builds) {
    out.step(`Image ${build.tag}`);
    const ctx = await collectContextFiles(opts.packageDir ?? packageRoot());
    if (!ctx.files.some((f) => f.startsWith('dist/'))) {
      throw new RegctlError('BUILD_FAILED', `${ctx.root}/dist is missing: the package is not built`, {
        hint: 'run `npm run build` in the regctl package',
      });
    }
    if (!ctx.files.includes(DOCKERFILE_PATH)) {
      throw new RegctlError('BUILD_FAILED', `${ctx.root}/${DOCKERFILE_PATH} is missing`, { hint: 'reinstall regctl' });
    }
    const hash = await contextHash(ctx, { ...build.args, '#dockerfile': build.dockerfile });
    const existing = await engine.inspectImage(build.tag);
    if (existing && existing.labels[CONTEXT_HASH_LABEL] === hash) {
      out.ok(`Image ${build.tag} is up to date`);
      images.set(build.tag, existing);
      continue;
    }
    const base = build.args.BASE_IMAGE;
    if (base && !(await engine.inspectImage(base))) {
      out.step(`Pulling base image ${base}`);
      try {
        await engine.pullImage(base, (line) => out.progress(line));
        result.imagesPulled.push(base);
      } catch (err) {
        throw new RegctlError(
          'BUILD_FAILED',
          `base image ${base} is not present and could not be pulled: ${errorText(err)}`,
          {
            hint: 'load the image (docker load / docker import) or set images.base in regctl.yaml to an image this engine has',
            cause: err,
          },
        );
      }
    }
    const tail: string[] = [];
    const started = Date.now();
    const tar = contextTar(ctx);
    let tarError: Error | undefined;
    tar.on('error', (err: Error) => {
      tarError = err;
    });
    try {
      const info = await engine.buildImage(
        {
          context: tar,
          dockerfile: build.dockerfile,
          tag: build.tag,
          buildArgs: build.args,
          labels: { ...build.labels, [CONTEXT_HASH_LABEL]: hash },
        },
        (line) => {
          tail.push(line);
          if (tail.length > 20) tail.shift();
          out.progress(line);
        },
      );
      images.set(build.tag, info);
      result.imagesBuilt.push(build.tag);
      if (existing && existing.id !== info.id) stale.push(existing.id);
      out.ok(`Built ${build.tag} (${ctx.files.length} files, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (err) {
      tar.destroy();
      throw new RegctlError('BUILD_FAILED', `building ${build.tag} failed: ${errorText(tarError ?? err)}`, {
        hint: 'check that images.base in regctl.yaml names an image with node >= 20 that this engine has',
        details: tail.slice(-10),
        cause: err,
      });
    }
  }
  for (const svc of model.services) {
    if (svc.build !== undefined || images.has(svc.image)) continue;
    images.set(svc.image, await presentImage(svc.image, svc.name, opts, result));
  }
  return images;
}

/** An image that is not built here (Traefik's, a trial service's): used when present, pulled otherwise. */
export async function presentImage(
  image: string,
  key: string,
  opts: ImageOptions,
  result: ImageRecord,
): Promise<ImageInfo> {
  const { out, engine } = opts;
  let info = await engine.inspectImage(image);
  if (info) {
    out.ok(`Image ${image} is present`);
    return info;
  }
  out.step(`Pulling ${image}`);
  try {
    await engine.pullImage(image, (line) => out.progress(line));
  } catch (err) {
    throw new RegctlError('NOT_FOUND', `image ${image} is not present and could not be pulled: ${errorText(err)}`, {
      hint: `load it (docker load / docker import), or set images.${key} in regctl.yaml to an image this engine has`,
      cause: err,
    });
  }
  result.imagesPulled.push(image);
  info = await engine.inspectImage(image);
  if (!info) throw new RegctlError('NOT_FOUND', `image ${image} is still missing after the pull`);
  out.ok(`Pulled ${image}`);
  return info;
}

/** A rebuild leaves the previous image untagged; it goes once no container (of any stack) uses it. */
export async function removeStaleImages(
  stale: string[],
  engine: DockerEngine,
  out: Output,
  result: { imagesRemoved: string[] },
): Promise<void> {
  for (const id of stale) {
    try {
      if (await engine.removeImageIfUnused(id)) {
        result.imagesRemoved.push(id);
        out.ok(`Removed the previous image ${id.replace(/^sha256:/, '').slice(0, 12)}`);
      }
    } catch (err) {
      out.warn(`could not remove the previous image ${id}: ${errorText(err)}`);
    }
  }
}

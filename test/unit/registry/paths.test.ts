import { describe, expect, it } from 'vitest';
import { parseDigest } from '../../../src/registry/reference.js';
import { pathFor, type PathSpec } from '../../../src/registry/storage/paths.js';

const hex = 'ab'.repeat(32);
const d = parseDigest(`sha256:${hex}`);
const s512 = parseDigest(`sha512:${'cd'.repeat(64)}`);
const R = 'docker/registry/v2';

describe('pathFor maps to distribution layout', () => {
  const table: [PathSpec, string][] = [
    [{ kind: 'blobsRoot' }, `${R}/blobs`],
    [{ kind: 'blobData', digest: d }, `${R}/blobs/sha256/ab/${hex}/data`],
    [{ kind: 'blobDir', digest: d }, `${R}/blobs/sha256/ab/${hex}`],
    [{ kind: 'blobData', digest: s512 }, `${R}/blobs/sha512/cd/${'cd'.repeat(64)}/data`],
    [{ kind: 'repositoriesRoot' }, `${R}/repositories`],
    [{ kind: 'repository', name: 'a/b' }, `${R}/repositories/a/b`],
    [{ kind: 'layersRoot', name: 'a/b' }, `${R}/repositories/a/b/_layers`],
    [{ kind: 'layerLink', name: 'a/b', digest: d }, `${R}/repositories/a/b/_layers/sha256/${hex}/link`],
    [{ kind: 'revisionsRoot', name: 'x' }, `${R}/repositories/x/_manifests/revisions`],
    [{ kind: 'revisionLink', name: 'x', digest: d }, `${R}/repositories/x/_manifests/revisions/sha256/${hex}/link`],
    [{ kind: 'revisionDir', name: 'x', digest: d }, `${R}/repositories/x/_manifests/revisions/sha256/${hex}`],
    [{ kind: 'tagsRoot', name: 'x' }, `${R}/repositories/x/_manifests/tags`],
    [{ kind: 'tagDir', name: 'x', tag: 'v1' }, `${R}/repositories/x/_manifests/tags/v1`],
    [{ kind: 'tagCurrentLink', name: 'x', tag: 'v1' }, `${R}/repositories/x/_manifests/tags/v1/current/link`],
    [
      { kind: 'tagIndexLink', name: 'x', tag: 'v1', digest: d },
      `${R}/repositories/x/_manifests/tags/v1/index/sha256/${hex}/link`,
    ],
    [{ kind: 'referrersRoot', name: 'x' }, `${R}/repositories/x/_manifests/referrers`],
    [{ kind: 'referrersDir', name: 'x', subject: d }, `${R}/repositories/x/_manifests/referrers/sha256/${hex}`],
    [
      { kind: 'referrerLink', name: 'x', subject: d, digest: s512 },
      `${R}/repositories/x/_manifests/referrers/sha256/${hex}/sha512/${'cd'.repeat(64)}/link`,
    ],
    [{ kind: 'uploadsRoot', name: 'x' }, `${R}/repositories/x/_uploads`],
    [{ kind: 'uploadDir', name: 'x', id: 'u1' }, `${R}/repositories/x/_uploads/u1`],
    [{ kind: 'uploadData', name: 'x', id: 'u1' }, `${R}/repositories/x/_uploads/u1/data`],
    [{ kind: 'uploadStartedAt', name: 'x', id: 'u1' }, `${R}/repositories/x/_uploads/u1/startedat`],
  ];
  it.each(table)('%o', (spec, expected) => {
    expect(pathFor(spec)).toBe(expected);
  });
});

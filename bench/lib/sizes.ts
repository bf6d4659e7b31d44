const MiB = 1024 * 1024;

/** Every size and duration the workload uses; `--quick` shrinks them so a whole run takes well under 2 minutes. */
export interface Sizes {
  largeBlobBytes: number;
  chunkBytes: number;
  manifestSeconds: number;
  concurrencies: number[];
  smallBlobCount: number;
  smallBlobMin: number;
  smallBlobMax: number;
  smallBlobConcurrency: number;
  catalogCounts: number[];
  tagCount: number;
  pageSize: number;
  skopeoLayers: number;
  skopeoBytes: number;
  repeatRounds: number;
  repeatBlobCount: number;
  repeatSeconds: number;
  helpRuns: number;
  /** bcrypt costs of the htpasswd both registries read: the first is the headline (targets), the rest repeat the auth-bound phases. */
  bcryptCosts: number[];
  dockerLayers: number;
  dockerLayerBytes: number;
  /** The start-up-at-scale phase: repositories in the metadata store, tags of each, how many also in storage. */
  scaleRepositories: number;
  scaleTagsPerRepository: number;
  scaleStorageSample: number;
  /** Timed tries of each page in that phase. */
  scaleTries: number;
  /** The swarm phase: the blob pulled through Traefik, and how long each timed load runs. */
  swarmBlobBytes: number;
  swarmSeconds: number;
}

export const FULL: Sizes = {
  largeBlobBytes: 1024 * MiB,
  chunkBytes: 16 * MiB,
  manifestSeconds: 6,
  concurrencies: [1, 16, 64],
  smallBlobCount: 200,
  smallBlobMin: 4 * 1024,
  smallBlobMax: MiB,
  smallBlobConcurrency: 8,
  catalogCounts: [2000, 10000],
  tagCount: 1000,
  pageSize: 100,
  skopeoLayers: 10,
  skopeoBytes: 300 * MiB,
  repeatRounds: 3,
  repeatBlobCount: 40,
  repeatSeconds: 3,
  helpRuns: 20,
  bcryptCosts: [5, 10],
  dockerLayers: 8,
  dockerLayerBytes: 128 * MiB,
  scaleRepositories: 100_000,
  scaleTagsPerRepository: 10,
  scaleStorageSample: 100,
  scaleTries: 7,
  swarmBlobBytes: 256 * MiB,
  swarmSeconds: 10,
};

export const QUICK: Sizes = {
  ...FULL,
  largeBlobBytes: 128 * MiB,
  manifestSeconds: 1,
  concurrencies: [1, 16],
  smallBlobCount: 16,
  catalogCounts: [200, 1000],
  tagCount: 300,
  skopeoBytes: 20 * MiB,
  repeatRounds: 2,
  repeatBlobCount: 8,
  repeatSeconds: 1,
  helpRuns: 5,
  dockerLayers: 4,
  dockerLayerBytes: 16 * MiB,
  scaleRepositories: 2000,
  scaleStorageSample: 20,
  scaleTries: 3,
  swarmBlobBytes: 32 * MiB,
  swarmSeconds: 2,
};

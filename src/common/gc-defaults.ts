/**
 * The one set of GC defaults: what `regctl gc` with no flag does, what `POST /admin/v1/gc` does with a field left
 * out, what the registry's GC does with an option left out, and what the UI's previews ("a GC would free") assume.
 * Untagged manifests are kept by default: deleting a tag alone frees nothing until a GC with `deleteUntagged`.
 */
export const GC_DEFAULTS = {
  /** Remove manifests no tag reaches (`regctl gc --delete-untagged`). */
  deleteUntagged: false,
  /** Never sweep a blob younger than this, or used within it (`regctl gc --grace`). */
  graceSeconds: 3600,
  /** Uploads left idle longer than this are purged. */
  uploadPurgeAgeMs: 24 * 3600 * 1000,
} as const;

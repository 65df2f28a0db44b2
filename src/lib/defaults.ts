/**
 * Defaults and limits that more than one command or module applies, in one
 * place (go-containerregistry's remote/options.go habit). Imports nothing.
 */

/** `--concurrency` wherever it applies (contract: "defaults to 8 wherever it applies"). */
export const DEFAULT_CONCURRENCY = 8

/** Manifests and indexes larger than this are refused or not read as JSON (containerd uses the same bound). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

/**
 * Defaults and limits that more than one command or module applies, in one
 * place (go-containerregistry's remote/options.go habit). Imports nothing.
 */

/** `--concurrency` wherever it applies (contract: "defaults to 8 wherever it applies"). */
export const DEFAULT_CONCURRENCY = 8

/** Manifests and indexes larger than this are refused or not read as JSON (containerd uses the same bound). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

/**
 * Images (or files) a run keeps in flight per `--concurrency` slot: enough
 * that small ones keep every slot busy (each image spends most of its time
 * on manifest round trips), few enough that memory does not grow with the
 * number of images: only these hold manifests and progress rows.
 */
export const IN_FLIGHT_PER_SLOT = 4

/** How many images or files a run of `concurrency` slots works on at once. */
export function inFlight(concurrency: number): number {
  return Math.max(16, IN_FLIGHT_PER_SLOT * concurrency)
}

/**
 * Chunk size in which a bundle's archives, bundle.json and a file hashed
 * whole are read from start to end, and in which a tar being written is
 * handed on (TAR_BLOCK): under glibc's first mmap threshold,
 * 128 KiB. A freed buffer above it raises that threshold to its size for the
 * rest of the process, and from then on smaller buffers come from the heap,
 * whose freed middle is never given back: an import of 4,000 images kept
 * 20 MB more that way.
 */
export const SEQUENTIAL_READ_BYTES = 120 << 10

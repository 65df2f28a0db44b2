import type {BundleLock, LockBase} from '../../bundle-json.js'

/** Counts and bytes of one side of a delta. */
export interface DeltaPart {
  blobs: number
  files: number
  bytes: number
}

/** What a delta carries and what it expects from its bases, from its lock alone. */
export interface DeltaSummary {
  base: LockBase[]
  carried: DeltaPart
  fromBase: DeltaPart
}

/** The delta split of a lock; undefined for a whole bundle. */
export function deltaSummary(lock: BundleLock): DeltaSummary | undefined {
  if (!lock.base || lock.base.length === 0) return undefined
  const carried: DeltaPart = {blobs: 0, files: 0, bytes: 0}
  const fromBase: DeltaPart = {blobs: 0, files: 0, bytes: 0}
  for (const b of lock.blobs ?? []) {
    const side = b.fromBase ? fromBase : carried
    side.blobs++
    side.bytes += b.size
  }
  for (const f of lock.files) {
    const side = f.fromBase ? fromBase : carried
    side.files++
    side.bytes += f.size
  }
  return {base: lock.base, carried, fromBase}
}

/** A delta leaves content to its bases. */
export function isDelta(lock: BundleLock): boolean {
  return (lock.base?.length ?? 0) > 0
}

/** The bases by name and version, each once: two inventories of one bundle are one base to a reader (`lab-offline 2.0.0`). */
export function baseNames(bases: LockBase[]): string {
  return [...new Set(bases.map((b) => `${b.name}${b.version ? ` ${b.version}` : ''}`))].join(', ')
}

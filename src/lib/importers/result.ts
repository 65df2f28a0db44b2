import type {BundleLock} from '../bundle-json.js'
import {formatBytes} from '../ui/format.js'
import {plural} from '../ui/table.js'

/** What an import did with one file of the bundle; the `--json` rows of both imports. */
export interface ImportedFile {
  /** Path under the root, or the object key. */
  path: string
  size: number
  sha256: string
  action: 'written' | 'skipped'
}

export interface ImportTotals {
  files: ImportedFile[]
  written: number
  skipped: number
  bytesWritten: number
  /** A delta: the files it leaves to its base, all found on the target before anything was written. */
  baseChecked?: BaseChecked
}

/** What a delta import checked on the target before it wrote: the base's files it leaves out, all there. */
export interface BaseChecked {
  /** The bases, as summaries name them: `lab-offline 2.0.0`. */
  bases: string
  files: number
  bytes: number
}

/** The `--json` fields both file imports give, after their target's own. */
export interface FileImportResult {
  clusterConfig: string | null
  counts: {files: number; written: number; skipped: number; bytesWritten: number}
  /** Every file of the bundle, in bundle.json order, with what was done with it. */
  items: ImportedFile[]
  /** A delta: the base's files it leaves out, checked on the target first (all there, or nothing was written); null for a full bundle. */
  baseChecked: BaseChecked | null
}

export function fileImportResult(t: ImportTotals, clusterConfig: string | undefined): FileImportResult {
  return {
    clusterConfig: clusterConfig ?? null,
    counts: {files: t.files.length, written: t.written, skipped: t.skipped, bytesWritten: t.bytesWritten},
    items: t.files,
    baseChecked: t.baseChecked ?? null,
  }
}

/** The stdout line of a delta import's check of its base on the target (`where`: `under /srv/www`, `in bucket/prefix`). */
export function baseCheckedLine(b: BaseChecked, where: string): string {
  return `checked ${plural(b.files, 'file')} (${formatBytes(b.bytes)}) of base ${b.bases} ${where}: all there`
}

export function totals(files: ImportedFile[]): ImportTotals {
  let written = 0
  let bytesWritten = 0
  for (const f of files) {
    if (f.action === 'written') {
      written++
      bytesWritten += f.size
    }
  }
  return {files, written, skipped: files.length - written, bytesWritten}
}

/** `rows` in bundle.json order, each path once (a binary and a package may share one); `keyOf` maps a lock path to a row's path. */
export function inLockOrder(
  lock: BundleLock,
  rows: ImportedFile[],
  keyOf: (path: string) => string = (p) => p,
): ImportedFile[] {
  const byPath = new Map(rows.map((r) => [r.path, r]))
  const out: ImportedFile[] = []
  for (const f of lock.files) {
    const key = keyOf(f.path)
    const row = byPath.get(key)
    if (row === undefined) continue
    out.push(row)
    byPath.delete(key)
  }
  return out
}

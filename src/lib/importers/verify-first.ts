import {type ArchiveScope, verifyBundle} from '../bundle/verify.js'
import type {BundleLock} from '../lock.js'
import {BundleError} from '../errors.js'
import type {Progress} from '../ui/index.js'

/**
 * Every import starts here: what it imports is verified before a single
 * byte is written (bundle.json, the archives it reads with their SHA256SUMS
 * lines), and a bundle with any problem is refused (exit 2). An archive the
 * import does not read is left to `airlock verify`, the full check.
 */
export async function verifyBeforeImport(dir: string, scope: ArchiveScope[], progress?: Progress): Promise<BundleLock> {
  const report = await verifyBundle(dir, {progress, only: scope})
  if (!report.ok) throw refusedBundle(dir, report.problems)
  return report.lock
}

/** The error of an import refused because its bundle has problems (exit 2), each listed. */
export function refusedBundle(dir: string, problems: string[]): BundleError {
  const n = problems.length
  return new BundleError(`${dir}: the bundle failed verification (${n} problem${n === 1 ? '' : 's'}); nothing was imported`, {details: problems})
}

import {verifyBundle} from '../bundle/verify.js'
import type {BundleLock} from '../bundle/lock.js'
import {BundleError} from '../errors.js'
import type {Progress} from '../ui/index.js'

/**
 * Every import starts here: the whole bundle is verified before a single
 * byte is written, and a bundle with any problem is refused (exit 2).
 */
export async function verifyBeforeImport(dir: string, progress?: Progress): Promise<BundleLock> {
  const report = await verifyBundle(dir, {progress})
  if (!report.ok) {
    const n = report.problems.length
    throw new BundleError(`${dir}: the bundle failed verification (${n} problem${n === 1 ? '' : 's'}); nothing was imported`, {
      details: report.problems,
    })
  }
  return report.lock
}

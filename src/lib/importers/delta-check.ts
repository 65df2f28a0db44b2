import {baseNames, isDelta} from '../bundle/format/delta.js'
import type {BundleLock} from '../bundle-json.js'
import {FailureError} from '../errors.js'
import type {MissingFromTarget} from '../targets/holds.js'
import {formatBytes} from '../ui/format.js'
import {plural} from '../ui/table.js'

/**
 * The refusal of a delta import: nothing was written, and the message says
 * how many items and bytes the target lacks, each named in the details.
 */
export function refuseIncompleteTarget(target: string, lock: BundleLock, missing: MissingFromTarget[]): void {
  if (missing.length === 0) return
  const bytes = missing.reduce((n, m) => n + m.size, 0)
  const bases = baseNames(lock.base ?? [])
  throw new FailureError(
    `${target} lacks ${plural(missing.length, 'item')}, ${formatBytes(bytes)} (${bytes} bytes), that this delta leaves to its base (${bases}); nothing was written`,
    {
      details: missing.map((m) => `${m.what}: ${formatBytes(m.size)} (${m.size} bytes)`),
      suggestions: [
        'import the base bundle first (each, when there are several), or build a delta against an `airlock inventory` of this target',
      ],
    },
  )
}

export {isDelta}

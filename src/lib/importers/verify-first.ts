import type {Bundle} from '../bundle/format/open-bundle.js'
import type {ArchiveScope} from '../bundle/format/verify.js'
import {BundleError} from '../errors.js'
import {type Progress, silentProgress} from '../ui/index.js'

/** What a refused command did not do, in its own words: `nothing was imported`, `nothing was served`. */
export type RefusedAction = 'imported' | 'served'

/**
 * Every import starts here: what it imports is verified before a single
 * byte is written (bundle.json, the archives it reads with their SHA256SUMS
 * lines), and a bundle with any problem is refused (exit 2). An archive the
 * import does not read is left to `airlock verify`, the full check, unless
 * the bundle is refused: then the refusal lists what `airlock verify` lists.
 */
export async function verifyBeforeImport(
  bundle: Bundle,
  scope: ArchiveScope[],
  progress?: Progress,
  action: RefusedAction = 'imported',
): Promise<void> {
  const report = await bundle.verify({progress, only: scope})
  if (!report.ok) throw await refusal(bundle, action, report.problems)
}

const refusals = new WeakSet<Error>()

/**
 * The error of a command refused because its bundle has problems (exit 2):
 * every problem `airlock verify` finds, so a refusal never names fewer than
 * verify does (`known`, the problems the command met itself, when the full
 * check finds none of them).
 */
export async function refusal(bundle: Bundle, action: RefusedAction, known: string[] = []): Promise<BundleError> {
  const full = await bundle.verify({progress: silentProgress}).catch(() => undefined)
  return refusedBundle(bundle.dir, full && !full.ok ? full.problems : known, action)
}

/** The error of a command refused because its bundle has these problems (exit 2), each listed. */
export function refusedBundle(dir: string, problems: string[], action: RefusedAction = 'imported'): BundleError {
  const n = problems.length
  const err = new BundleError(
    `${dir}: the bundle failed verification (${n} problem${n === 1 ? '' : 's'}); nothing was ${action}`,
    {details: problems},
  )
  refusals.add(err)
  return err
}

/** Whether an error is a bundle refused by verification (refusedBundle), as opposed to a failure on the way. */
export function isRefusedBundle(err: unknown): boolean {
  return err instanceof Error && refusals.has(err)
}

import {isDelta} from '../bundle/format/delta.js'
import {type Bundle, openBundle} from '../bundle/format/open-bundle.js'
import {AirlockError, BundleError, UsageError} from '../errors.js'

/**
 * The bundle to serve and the bases a delta leaves content to (`--base`),
 * checked against each other: every base a delta (the bundle, or a base
 * that is itself a delta, in a chain) names by its `lockSha256` must be
 * given, and every `--base` must be one of those.
 */

export interface BundleSet {
  /** Where content is looked up: the bundle first, then the bases as given. */
  lookup: Bundle[]
  /** The order to unpack and verify in: every base before the deltas that lean on it. */
  unpack: Bundle[]
}

function label(b: {name?: string; version?: string}): string {
  return `${b.name ?? '?'}${b.version ? ` ${b.version}` : ''}`
}

export async function openBundleSet(dir: string, baseDirs: string[]): Promise<BundleSet> {
  const main = await openBundle(dir)
  if (isDelta(main.lock) && baseDirs.length === 0) {
    throw new AirlockError(
      'bundle',
      `${dir} is a delta bundle: it leaves out what its base ${main.lock.base!.length === 1 ? 'bundle holds' : 'bundles hold'} (${main.lock.base!.map(label).join(', ')}), so it cannot be served alone`,
      {
        suggestions: ['name each base bundle folder with --base DIR; their content is served too'],
      },
    )
  }
  const bases = await Promise.all(baseDirs.map(openBundle))
  const all = [main, ...bases]
  const bySha = new Map(all.map((b) => [b.lockSha256, b]))
  const named = new Set<string>()
  for (const b of all) {
    for (const want of b.lock.base ?? []) {
      named.add(want.lockSha256)
      if (!bySha.has(want.lockSha256)) {
        throw new AirlockError(
          'bundle',
          `${b.dir} is a delta of ${label(want)} (bundle.json sha256 ${want.lockSha256}), which no --base names`,
          {
            suggestions: [
              "give that bundle's folder with --base DIR (a delta of a delta needs every bundle of the chain)",
            ],
          },
        )
      }
    }
  }
  for (const b of bases) {
    if (!named.has(b.lockSha256))
      throw new UsageError(
        `--base ${b.dir} (${label(b.lock)}) is not a base of ${dir}: no bundle.json's base names its sha256 ${b.lockSha256}`,
      )
  }
  const unpack: Bundle[] = []
  const done = new Set<string>()
  while (unpack.length < all.length) {
    const ready = all.filter((b) => !done.has(b.lockSha256) && (b.lock.base ?? []).every((x) => done.has(x.lockSha256)))
    if (ready.length === 0) throw new BundleError(`the bases of ${dir} name each other in a circle`)
    for (const b of ready) {
      unpack.push(b)
      done.add(b.lockSha256)
    }
  }
  return {lookup: all, unpack}
}

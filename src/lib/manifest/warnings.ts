import type {ManifestProblem} from '../errors.js'
import type {Manifest} from './types.js'

/**
 * What is valid but most likely a mistake: an image named without tag or digest (it takes `latest`, as docker and
 * skopeo do, and fails at pull where the repository has no such tag); different URLs that declare the
 * same sha256 (a checksum copied from the line above). Each URL is still
 * fetched and checked on its own, so such a slip fails the pull; this names
 * it before anything is downloaded.
 */
export function manifestWarnings(m: Manifest): ManifestProblem[] {
  const warnings: ManifestProblem[] = []
  for (const i of m.images) {
    if (i.latestAssumed === undefined) continue
    warnings.push({file: m.file, ...i.pos, path: i.latestAssumed, message: `no tag or digest: latest is assumed (${i.name}); name the tag, or pin it with airlock lock`})
  }
  const seen = new Map<string, {url: string; path: string}>()
  const entries = [
    ...m.binaries.map((e, i) => ({e, path: `spec.binaries[${i}]`})),
    ...m.packages.map((e, i) => ({e, path: `spec.packages[${i}]`})),
  ]
  for (const {e, path} of entries) {
    if (e.kind === 'chart' || e.sha256 === undefined) continue
    const first = seen.get(e.sha256)
    if (!first) {
      seen.set(e.sha256, {url: e.url, path})
    } else if (first.url !== e.url) {
      warnings.push({
        file: m.file,
        ...e.pos,
        path: `${path}.sha256`,
        message: `the same sha256 as ${first.path} (${first.url}) for another URL: was it copied from there? Both URLs are fetched and checked on their own`,
      })
    }
  }
  return warnings
}

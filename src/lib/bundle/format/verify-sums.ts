import type {BundleLock} from '../../bundle-json.js'
import {BUNDLE_FILES} from './bundle-files.js'
import type {ArchiveScope, VerificationRun} from './verification-run.js'

/** SHA256SUMS must list every file of the bundle (each part of a split archive) with the sha256 it has. */
export async function checkSums(run: VerificationRun, ignored: (name: string) => boolean = () => false): Promise<void> {
  const problems = run.problems('sums')
  const sums = await run.bundle.sums()
  if (!sums) return void problems.push(`${BUNDLE_FILES.sums}: missing`)
  const {lines, bad} = sums
  for (const n of bad) problems.push(`${BUNDLE_FILES.sums}:${n}: not a "<sha256>  <file>" line`)
  const listed = new Set<string>()
  for (const l of lines) {
    if (listed.has(l.name) || ignored(l.name)) continue
    listed.add(l.name)
    const have = run.actual.get(l.name)
    if (have === undefined) problems.push(`${BUNDLE_FILES.sums}: lists ${l.name}, which is not in the bundle`)
    else if (have !== l.sha256) problems.push(`${l.name}: sha256 ${have} does not match SHA256SUMS (${l.sha256})`)
  }
  for (const name of run.actual.keys())
    if (!listed.has(name)) problems.push(`${name}: not listed in ${BUNDLE_FILES.sums}`)
}

/** SHA256SUMS lines a check limited to `only` leaves alone: an archive it does not read (and its parts), and the tools. */
export function notRead(lock: BundleLock, only: ArchiveScope[] | undefined): (name: string) => boolean {
  if (only === undefined) return () => false
  // An archive left out (an import that does not use it) is neither read nor held to its SHA256SUMS lines; nor are the tools then.
  const skipped = (['files', 'packages', 'images'] as const)
    .filter((k) => !only.includes(k))
    .map((k) => BUNDLE_FILES[k])
  const tools = new Set((lock.tools ?? []).map((t) => t.path))
  return (name) => tools.has(name) || skipped.some((a) => name === a || partOf(name, a))
}

/** `offline-images.tar.003` is a part of `offline-images.tar`. */
function partOf(name: string, archive: string): boolean {
  return name.startsWith(`${archive}.`) && /^\d+$/.test(name.slice(archive.length + 1))
}

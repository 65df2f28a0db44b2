import type {KeyObject} from 'node:crypto'

import type {BundleLock} from '../../bundle-json.js'
import {formatBytes} from '../../ui/format.js'
import {type Progress, silentProgress} from '../../ui/progress.js'
import {BUNDLE_FILES} from './bundle-files.js'
import {type BundleFolder, openBundleFolder} from './bundle-folder.js'
import {checkImageSignatures, type ImageSignature} from './signatures.js'
import {type ArchiveScope, VerificationRun} from './verification-run.js'
import {verifyFilesArchive} from './verify-files-archive.js'
import {verifyImagesArchive} from './verify-images-archive.js'
import {checkSums, notRead} from './verify-sums.js'
import {verifyTools} from './verify-tools.js'

export type {ArchiveScope} from './verification-run.js'

export interface VerifyReport {
  ok: boolean
  problems: string[]
  lock: BundleLock
  /** Every file of the folder that was read (split parts one by one), with the sha256 it has. */
  files: {name: string; sha256: string}[]
  /** What the archives were found to hold, intact: blob digests, and files as `path\0sha256` (for checking a chain of deltas). */
  carried: {digests: Set<string>; files: Set<string>}
  /** With `key`: each image's cosign signature status. */
  signatures?: ImageSignature[]
  /** With `key`: why signatures fail (a bad one; an unsigned image with requireSignatures). Not in `problems`: the bundle itself is sound. */
  signatureProblems?: string[]
}

export interface VerifyOptions {
  progress?: Progress
  /** A cosign public key: check each image's signatures with it (offline). */
  key?: KeyObject
  /** With `key`: an unsigned image fails too. */
  requireSignatures?: boolean
  /** Only these archives (an import checks what it imports); default all three. */
  only?: ArchiveScope[]
}

/**
 * Check a bundle folder: SHA256SUMS against every file (split parts
 * included); each `.tar.gz` entry against bundle.json (path, size, sha256,
 * nothing extra, nothing missing); in `offline-images.tar` every blob's size
 * and digest, every reference of every manifest and index, and index.json
 * against bundle.json; each of bundle.json's tools (size, sha256). Each archive is read once, as a stream, and every
 * problem is collected. Given a folder, a missing or malformed bundle.json throws a
 * BundleError instead: there is nothing to check against.
 */
export async function verifyBundle(at: BundleFolder | string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const bundle = typeof at === 'string' ? await openBundleFolder(at) : at
  const want = new Set<ArchiveScope>(opts.only ?? ['files', 'packages', 'images'])
  const {lock} = bundle
  const run = new VerificationRun(bundle, opts.progress ?? silentProgress, opts.key !== undefined)
  run.actual.set(BUNDLE_FILES.lock, bundle.lockSha256)
  // The archives are read at once; each check writes its own list of the run.
  const archives = await Promise.all([
    want.has('files') ? verifyFilesArchive(run, 'files') : undefined,
    want.has('packages') ? verifyFilesArchive(run, 'packages') : undefined,
    want.has('images') ? verifyImagesArchive(run) : undefined,
    // The importer is checked by a full verify; an import runs it and has no use for it.
    opts.only === undefined ? verifyTools(run) : undefined,
  ])
  await checkSums(run, notRead(lock, opts.only))
  let signatures: ImageSignature[] | undefined
  const signatureProblems: string[] = []
  if (opts.key) {
    const report = checkImageSignatures(lock, (d) => run.json.get(d), opts.key)
    signatures = report.signatures
    signatureProblems.push(...report.problems)
    if (opts.requireSignatures)
      for (const s of signatures)
        if (s.status === 'unsigned')
          signatureProblems.push(`${s.ref}: unsigned (no cosign signature names ${s.digest})`)
  }
  const problems = run.allProblems()
  // An archive is ok only once SHA256SUMS agrees too: a flipped byte the content check cannot see shows there.
  for (const a of archives) {
    if (!a) continue
    const own = problems.filter((p) => p.startsWith(`${a.name}:`) || p.startsWith(`${a.name}.`)).length
    if (own === 0) a.task.done(formatBytes(a.total))
    else a.task.fail(`${own} problem${own === 1 ? '' : 's'}`)
  }
  const files = [...run.actual].map(([name, sha256]) => ({name, sha256})).sort((a, b) => a.name.localeCompare(b.name))
  return {
    ok: problems.length === 0,
    problems,
    lock,
    files,
    carried: run.carried,
    ...(signatures ? {signatures, signatureProblems} : {}),
  }
}

/**
 * A delta and its bases checked together (`verify DELTA --base DIR...`):
 * each is verified on its own, then every blob and file the delta leaves
 * out must be carried, intact, by one of the bases. Bases may be deltas
 * themselves (a chain), so only what each one carries counts.
 */
export async function verifyWithBases(
  bundle: BundleFolder,
  bases: string[],
  opts: VerifyOptions = {},
): Promise<VerifyReport & {bases: VerifyReport[]}> {
  const report = await verifyBundle(bundle, opts)
  const reports: VerifyReport[] = []
  const problems = [...report.problems]
  const digests = new Set<string>()
  const files = new Set<string>()
  for (const b of bases) {
    const r = await verifyBundle(b, opts)
    reports.push(r)
    for (const p of r.problems) problems.push(`${b}: ${p}`)
    for (const d of r.carried.digests) digests.add(d)
    for (const f of r.carried.files) files.add(f)
  }
  const lock = report.lock
  for (const blob of lock.blobs ?? []) {
    if (blob.fromBase && !digests.has(blob.digest))
      problems.push(
        `${blob.digest} (${blob.mediaType || 'blob'}, ${formatBytes(blob.size)}): left to the bases, and no base carries it`,
      )
  }
  for (const f of lock.files) {
    if (f.fromBase && !files.has(`${f.path}\0${f.sha256}`))
      problems.push(`${f.path} (sha256 ${f.sha256}, ${formatBytes(f.size)}): left to the bases, and no base carries it`)
  }
  return {...report, ok: problems.length === 0, problems, bases: reports}
}

/**
 * The check of SHA256SUMS that verify makes with `only`, for an import that
 * read the archives itself: `read` holds the sha256 of each file (each part)
 * of those archives as the import read it; bundle.json's is the one it was
 * read with. An empty list means SHA256SUMS agrees with everything the
 * import used.
 */
export async function importedSumsProblems(
  bundle: BundleFolder,
  only: ArchiveScope[],
  read: Map<string, string>,
): Promise<string[]> {
  const run = new VerificationRun(bundle, silentProgress)
  run.readAll(read)
  run.actual.set(BUNDLE_FILES.lock, bundle.lockSha256)
  await checkSums(run, notRead(bundle.lock, only))
  return run.allProblems()
}

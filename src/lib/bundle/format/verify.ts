import {createHash, type KeyObject} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {lstat, stat} from 'node:fs/promises'
import {pipeline, Readable} from 'node:stream'
import {createGunzip} from 'node:zlib'

import {AirlockError} from '../../errors.js'
import {ByteCap, checkEntryPath, entryTypeProblem, lockFilesOf, maxTarBytes} from './archive-entries.js'
import {readTar} from '../../tar/reader.js'
import {isDigest} from '../../content/digest.js'
import {parseCosignTag} from '../../oci/cosign.js'
import {layoutEntryMediaType, REF_NAME_ANNOTATION, REFERRER_SUBJECT_ANNOTATION} from '../../oci/layout.js'
import type {Descriptor, ImageIndex} from '../../content/descriptor.js'
import {MAX_MANIFEST_BYTES} from '../../defaults.js'
import {manifestGaps, type ParsedManifest, parseLayoutIndex, parseManifestJson} from '../../graph/parse.js'
import {type GraphVisitor, walkGraph} from '../../graph/walk.js'
import {silentProgress, type Progress, type TaskHandle} from '../../ui/progress.js'
import {formatBytes} from '../../ui/format.js'
import type {BundleLock} from '../../bundle-json.js'
import {BUNDLE_FILES, TOP_FOLDERS} from './bundle-files.js'
import {type BundleFolder, openBundleFolder} from './bundle-folder.js'
import {PartsReader} from './parts.js'
import {checkImageSignatures, type ImageSignature} from './signatures.js'

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

/** An archive read, whose progress task ends when the whole bundle has been checked. */
interface OpenedArchive {
  name: string
  total: number
  task: TaskHandle
}

/** Manifests and configs are small JSON (up to MAX_MANIFEST_BYTES); anything bigger is a layer and is only hashed. */
const READ_CHUNK = 1 << 20

/**
 * Check a bundle folder: SHA256SUMS against every file (split parts
 * included); each `.tar.gz` entry against bundle.json (path, size, sha256,
 * nothing extra, nothing missing); in `offline-images.tar` every blob's size
 * and digest, every reference of every manifest and index, and index.json
 * against bundle.json; each of bundle.json's tools (size, sha256). Each archive is read once, as a stream, and every
 * problem is collected. A missing or malformed bundle.json throws a
 * BundleError instead: there is nothing to check against.
 */
/** The archives of a bundle, by what they carry. */
export type ArchiveScope = 'files' | 'packages' | 'images'

export async function verifyBundle(at: BundleFolder | string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const bundle = typeof at === 'string' ? await openBundleFolder(at) : at
  const progress = opts.progress ?? silentProgress
  const want = new Set<ArchiveScope>(opts.only ?? ['files', 'packages', 'images'])
  const {lock} = bundle
  /** sha256 hex of every file in the folder, by name, as computed while reading. */
  const actual = new Map<string, string>()

  actual.set(BUNDLE_FILES.lock, bundle.lockSha256)
  // The archives are read at once; each keeps its own list so the report's order does not depend on timing.
  const found: [string[], string[], string[], string[], string[]] = [[], [], [], [], []]
  /** The manifests and indexes of the oci-archive (with a key, every JSON blob: signature payloads too), each checked against its digest. */
  const json = new Map<string, Buffer>()
  const carried = {digests: new Set<string>(), files: new Set<string>()}
  const archives = await Promise.all([
    want.has('files') ? verifyFilesArchive(bundle, 'files', found[0], actual, progress, carried.files) : undefined,
    want.has('packages') ? verifyFilesArchive(bundle, 'packages', found[1], actual, progress, carried.files) : undefined,
    want.has('images') ? verifyImagesArchive(bundle, found[2], actual, progress, json, carried.digests, opts.key !== undefined) : undefined,
    // The importer is checked by a full verify; an import runs it and has no use for it.
    opts.only === undefined ? verifyTools(bundle, found[3], actual, progress) : undefined,
  ])
  await checkSums(bundle, actual, found[4], notRead(lock, opts.only))
  let signatures: ImageSignature[] | undefined
  const signatureProblems: string[] = []
  if (opts.key) {
    const report = checkImageSignatures(lock, (d) => json.get(d), opts.key)
    signatures = report.signatures
    signatureProblems.push(...report.problems)
    if (opts.requireSignatures) for (const s of signatures) if (s.status === 'unsigned') signatureProblems.push(`${s.ref}: unsigned (no cosign signature names ${s.digest})`)
  }
  const problems = found.flat()
  // An archive is ok only once SHA256SUMS agrees too: a flipped byte the content check cannot see shows there.
  for (const a of archives) {
    if (!a) continue
    const own = problems.filter((p) => p.startsWith(`${a.name}:`) || p.startsWith(`${a.name}.`)).length
    if (own === 0) a.task.done(formatBytes(a.total))
    else a.task.fail(`${own} problem${own === 1 ? '' : 's'}`)
  }
  const files = [...actual].map(([name, sha256]) => ({name, sha256})).sort((a, b) => a.name.localeCompare(b.name))
  return {ok: problems.length === 0, problems, lock, files, carried, ...(signatures ? {signatures, signatureProblems} : {})}
}

/**
 * A delta and its bases checked together (`verify DELTA --base DIR...`):
 * each is verified on its own, then every blob and file the delta leaves
 * out must be carried, intact, by one of the bases. Bases may be deltas
 * themselves (a chain), so only what each one carries counts.
 */
export async function verifyWithBases(bundle: BundleFolder, bases: string[], opts: VerifyOptions = {}): Promise<VerifyReport & {bases: VerifyReport[]}> {
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
    if (blob.fromBase && !digests.has(blob.digest)) problems.push(`${blob.digest} (${blob.mediaType || 'blob'}, ${formatBytes(blob.size)}): left to the bases, and no base carries it`)
  }
  for (const f of lock.files) {
    if (f.fromBase && !files.has(`${f.path}\0${f.sha256}`)) problems.push(`${f.path} (sha256 ${f.sha256}, ${formatBytes(f.size)}): left to the bases, and no base carries it`)
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
export async function importedSumsProblems(bundle: BundleFolder, only: ArchiveScope[], read: Map<string, string>): Promise<string[]> {
  const actual = new Map(read)
  const problems: string[] = []
  actual.set(BUNDLE_FILES.lock, bundle.lockSha256)
  await checkSums(bundle, actual, problems, notRead(bundle.lock, only))
  return problems
}

/** SHA256SUMS lines a check limited to `only` leaves alone: an archive it does not read (and its parts), and the tools. */
function notRead(lock: BundleLock, only: ArchiveScope[] | undefined): (name: string) => boolean {
  if (only === undefined) return () => false
  // An archive left out (an import that does not use it) is neither read nor held to its SHA256SUMS lines; nor are the tools then.
  const skipped = (['files', 'packages', 'images'] as const).filter((k) => !only.includes(k)).map((k) => BUNDLE_FILES[k])
  const tools = new Set((lock.tools ?? []).map((t) => t.path))
  return (name) => tools.has(name) || skipped.some((a) => name === a || partOf(name, a))
}

/** SHA256SUMS must list every file of the bundle (each part of a split archive) with the sha256 it has. */
async function checkSums(bundle: BundleFolder, actual: Map<string, string>, problems: string[], ignored: (name: string) => boolean = () => false): Promise<void> {
  const sums = await bundle.sums()
  if (!sums) return void problems.push(`${BUNDLE_FILES.sums}: missing`)
  const {lines, bad} = sums
  for (const n of bad) problems.push(`${BUNDLE_FILES.sums}:${n}: not a "<sha256>  <file>" line`)
  const listed = new Set<string>()
  for (const l of lines) {
    if (listed.has(l.name) || ignored(l.name)) continue
    listed.add(l.name)
    const have = actual.get(l.name)
    if (have === undefined) problems.push(`${BUNDLE_FILES.sums}: lists ${l.name}, which is not in the bundle`)
    else if (have !== l.sha256) problems.push(`${l.name}: sha256 ${have} does not match SHA256SUMS (${l.sha256})`)
  }
  for (const name of actual.keys()) if (!listed.has(name)) problems.push(`${name}: not listed in ${BUNDLE_FILES.sums}`)
}

/** `offline-images.tar.003` is a part of `offline-images.tar`. */
function partOf(name: string, archive: string): boolean {
  return name.startsWith(`${archive}.`) && /^\d+$/.test(name.slice(archive.length + 1))
}

/** Each file of bundle.json `tools` (the standalone executables, import.sh): there, a regular file, with its size and sha256. */
async function verifyTools(bundle: BundleFolder, problems: string[], actual: Map<string, string>, progress: Progress): Promise<void> {
  // An executable a delta leaves to its base is not in this folder: import.sh finds it there by its sha256.
  const tools = (bundle.lock.tools ?? []).filter((t) => !t.fromBase)
  if (tools.length === 0) return
  const task = progress.task('verify tools', tools.reduce((n, t) => n + t.size, 0))
  for (const t of tools) {
    const file = bundle.path(t.path)
    const st = await lstat(file).catch(() => undefined)
    if (!st) {
      problems.push(`${t.path}: missing (bundle.json lists it under tools)`)
      continue
    }
    if (!st.isFile()) {
      problems.push(`${t.path}: not a regular file`)
      continue
    }
    const hash = createHash('sha256')
    let n = 0
    try {
      for await (const chunk of createReadStream(file, {highWaterMark: READ_CHUNK}) as AsyncIterable<Buffer>) {
        hash.update(chunk)
        n += chunk.length
        task.advance(chunk.length)
      }
    } catch (err) {
      problems.push(`${t.path}: ${(err as Error).message}`)
      continue
    }
    const hex = hash.digest('hex')
    actual.set(t.path, hex)
    if (n !== t.size) problems.push(`${t.path}: ${n} bytes, bundle.json says ${t.size}`)
    if (hex !== t.sha256) problems.push(`${t.path}: sha256 ${hex}, bundle.json says ${t.sha256}`)
  }
  task.done(`${tools.length} file(s)`)
}

async function openParts(bundle: BundleFolder, name: string, problems: string[], progress: Progress): Promise<{reader: PartsReader; archive: OpenedArchive} | undefined> {
  let paths: string[]
  try {
    paths = await bundle.parts(name)
  } catch (err) {
    problems.push(`${name}: ${err instanceof AirlockError ? err.message : String(err)}`)
    return undefined
  }
  let total = 0
  for (const p of paths) total += (await stat(p)).size
  const task = progress.task(`verify ${name}`, total)
  return {reader: new PartsReader(paths, (n) => task.advance(n)), archive: {name, total, task}}
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  if (typeof e?.code === 'string' && e.code.startsWith('Z_')) return `corrupt or truncated gzip (${e.message})`
  return e instanceof Error ? e.message : String(e)
}

async function verifyFilesArchive(
  bundle: BundleFolder,
  kind: 'files' | 'packages',
  problems: string[],
  actual: Map<string, string>,
  progress: Progress,
  carried: Set<string>,
): Promise<OpenedArchive | undefined> {
  const name = BUNDLE_FILES[kind]
  const top = TOP_FOLDERS[kind]
  const expected = lockFilesOf(bundle.lock, kind)
  const byPath = new Map(expected.map((f) => [f.path, f]))
  const seen = new Set<string>()
  const opened = await openParts(bundle, name, problems, progress)
  if (!opened) {
    if (expected.length > 0) problems.push(`${name}: the ${expected.length} file(s) bundle.json lists for it cannot be checked`)
    return undefined
  }
  const {reader} = opened
  const gunzip = createGunzip({chunkSize: 256 * 1024})
  // The same decompression cap as an import: a gzip bomb is a problem line, not a full disk or memory.
  const capped = new ByteCap(maxTarBytes(expected, top), name)
  const stream = pipeline(Readable.from(reader.chunks(), {objectMode: false}), gunzip, capped, () => {})
  let complete = false
  try {
    for await (const {header, body} of readTar(stream, name)) {
      const label = `${name}: ${header.path}`
      let rel: string
      try {
        rel = checkEntryPath(header.path, top)
      } catch (err) {
        problems.push(`${name}: ${(err as Error).message}`)
        continue
      }
      if (header.type === 'directory') continue
      const why = entryTypeProblem(header)
      if (why) {
        problems.push(`${label}: ${why} (only files and folders belong in a bundle)`)
        continue
      }
      const f = byPath.get(rel)
      if (!f) {
        problems.push(`${label}: extra file, not listed in bundle.json`)
        continue
      }
      if (seen.has(rel)) {
        problems.push(`${label}: appears twice`)
        continue
      }
      seen.add(rel)
      const hash = createHash('sha256')
      let n = 0
      for await (const c of body) {
        hash.update(c)
        n += c.length
      }
      if (n !== f.size) problems.push(`${label}: ${n} bytes, bundle.json says ${f.size}`)
      const hex = hash.digest('hex')
      if (hex !== f.sha256) problems.push(`${label}: sha256 ${hex}, bundle.json says ${f.sha256}`)
      else if (n === f.size) carried.add(`${f.path}\0${hex}`)
    }
    complete = true
  } catch (err) {
    // The cap's message already names the archive.
    const why = describe(err)
    problems.push(why.startsWith(`${name}: `) ? why : `${name}: ${why}`)
  } finally {
    stream.destroy()
  }
  const missing = expected.filter((f) => !seen.has(f.path))
  if (complete) for (const f of missing) problems.push(`${name}: ${top}/${f.path} is listed in bundle.json but not in the archive`)
  else if (missing.length > 0) problems.push(`${name}: ${missing.length} file(s) listed in bundle.json were not reached`)
  await reader.finish().catch((err: Error) => problems.push(`${name}: ${err.message}`))
  for (const [part, hex] of reader.digests) actual.set(part, hex)
  return opened.archive
}

/**
 * Checks the oci-archive; `json` receives the manifests and indexes it read,
 * each verified against its digest, and with `everyJson` every other JSON
 * blob too (configs, signature payloads): a bundle of thousands of images
 * holds only what the graph walk reads.
 */
async function verifyImagesArchive(
  bundle: BundleFolder,
  problems: string[],
  actual: Map<string, string>,
  progress: Progress,
  json: Map<string, Buffer>,
  carried: Set<string>,
  everyJson: boolean,
): Promise<OpenedArchive | undefined> {
  const name = BUNDLE_FILES.images
  const opened = await openParts(bundle, name, problems, progress)
  if (!opened) return undefined
  const {reader} = opened
  const blobs = new Map<string, number>()
  /** Blobs whose bytes do not hash to their name: digest -> the digest they have. */
  const corrupt = new Map<string, string>()
  /** JSON blobs not kept, being neither manifest nor index (configs): named, should an index point at one. */
  const otherJson = new Set<string>()
  let indexBytes: Buffer | undefined
  let layoutOk = false
  let layoutSeen = false
  let complete = false
  const source = Readable.from(reader.chunks(), {objectMode: false})
  try {
    for await (const {header, body} of readTar(source, name)) {
      const path = header.path.replace(/^\.\//, '')
      const label = `${name}: ${header.path}`
      if (header.type === 'directory') {
        if (!['', '.', 'blobs', 'blobs/', 'blobs/sha256', 'blobs/sha256/'].includes(path)) problems.push(`${label}: unexpected folder`)
        continue
      }
      if (header.type !== 'file') {
        problems.push(`${label}: a ${header.type} entry (an OCI layout holds only files)`)
        continue
      }
      if (path === 'oci-layout' || path === 'index.json') {
        const chunks: Buffer[] = []
        for await (const c of body) chunks.push(c)
        const bytes = Buffer.concat(chunks)
        if (path === 'index.json') indexBytes = bytes
        else {
          try {
            layoutOk = (JSON.parse(bytes.toString('utf8')) as {imageLayoutVersion?: string}).imageLayoutVersion === '1.0.0'
          } catch {
            // not JSON: layoutOk stays false and the line below says so
          }
          if (!layoutOk) problems.push(`${label}: not {"imageLayoutVersion":"1.0.0"}`)
          layoutSeen = true
        }
        continue
      }
      const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(path)
      if (!m) {
        problems.push(`${label}: extra file, not part of an OCI layout`)
        continue
      }
      const digest = `sha256:${m[1]}`
      const hash = createHash('sha256')
      const keep: Buffer[] | undefined = header.size <= MAX_MANIFEST_BYTES ? [] : undefined
      let n = 0
      for await (const c of body) {
        hash.update(c)
        n += c.length
        keep?.push(c)
      }
      const hex = hash.digest('hex')
      if (hex !== m[1]) {
        // Reported where an image references it (or below, when none does), with both digests.
        corrupt.set(digest, `sha256:${hex}`)
        continue
      }
      if (blobs.has(digest)) problems.push(`${label}: appears twice`)
      blobs.set(digest, n)
      if (keep && keep.length > 0 && keep[0][0] === 0x7b) {
        const bytes = Buffer.concat(keep)
        if (everyJson || isManifestOrIndex(bytes)) json.set(digest, bytes)
        else otherJson.add(digest)
      }
    }
    complete = true
  } catch (err) {
    problems.push(`${name}: ${describe(err)}`)
  } finally {
    source.destroy()
  }
  await reader.finish().catch((err: Error) => problems.push(`${name}: ${err.message}`))
  for (const [part, hex] of reader.digests) actual.set(part, hex)
  if (!complete) {
    for (const [digest, got] of corrupt) problems.push(`${name}: blobs/sha256/${digest.slice(7)}: corrupt: expected ${digest}, got ${got}`)
    problems.push(`${name}: the image layout was not checked past the damage`)
    return opened.archive
  }
  if (!layoutSeen) problems.push(`${name}: oci-layout is missing`)
  await checkLayout(name, bundle.lock, indexBytes, blobs, corrupt, json, otherJson, problems)
  for (const d of blobs.keys()) carried.add(d)
  return opened.archive
}

/** index.json against bundle.json, then every reference reachable from it; blobs nothing references are extra. */
async function checkLayout(
  name: string,
  lock: BundleLock,
  indexBytes: Buffer | undefined,
  blobs: Map<string, number>,
  corrupt: Map<string, string>,
  json: Map<string, Buffer>,
  otherJson: Set<string>,
  problems: string[],
): Promise<void> {
  const named = new Set<string>()
  const reportCorrupt = (digest: string, where: string): void => {
    if (named.has(digest)) return
    named.add(digest)
    problems.push(`${name}: ${where}: blob ${digest} is corrupt: expected ${digest}, got ${corrupt.get(digest)}`)
  }
  if (!indexBytes) return void problems.push(`${name}: index.json is missing`)
  let index: ImageIndex
  try {
    index = parseLayoutIndex(indexBytes)
  } catch (err) {
    return void problems.push(`${name}: index.json is not a valid OCI index: ${(err as Error).message}`)
  }
  const byRef = new Map<string, Descriptor[]>()
  const referrerEntries = new Map<string, Descriptor>()
  const listedReferrers = new Set(lock.images.flatMap((i) => (i.referrers ?? []).map((r) => r.digest)))
  for (const d of index.manifests) {
    const ref = d.annotations?.[REF_NAME_ANNOTATION]
    if (ref) byRef.set(ref, [...(byRef.get(ref) ?? []), d])
    else if (listedReferrers.has(d.digest) && d.annotations?.[REFERRER_SUBJECT_ANNOTATION]) referrerEntries.set(d.digest, d)
    else problems.push(`${name}: index.json entry ${d.digest} has no ${REF_NAME_ANNOTATION} annotation and is not a referrer bundle.json lists`)
  }
  const lockRefs = new Set(lock.images.map((i) => i.ref))
  for (const [ref, ds] of byRef) {
    if (!lockRefs.has(ref)) problems.push(`${name}: index.json names ${ref}, which bundle.json does not list`)
    else if (ds.length > 1) problems.push(`${name}: index.json names ${ref} ${ds.length} times`)
  }
  const reached = new Set<string>()
  const fromBase = new Set((lock.blobs ?? []).filter((b) => b.fromBase).map((b) => b.digest))
  const referenced = new Set<string>()
  const visitor: GraphVisitor<string> = {
    visit: (d, of, edge) => {
      if (typeof d?.digest !== 'string' || !isDigest(d.digest)) {
        problems.push(`${name}: ${of}: a reference without a sha256 digest`)
        return false
      }
      referenced.add(d.digest)
      const size = blobs.get(d.digest)
      if (size === undefined && corrupt.has(d.digest)) {
        reportCorrupt(d.digest, of)
        return false
      }
      if (size === undefined) {
        // A delta's lock names what it leaves to its bases: absent here by design, counted, not a problem.
        if (!edge?.optional && !fromBase.has(d.digest)) problems.push(`${name}: ${of}: blob ${d.digest} is missing`)
        return false
      }
      if (fromBase.has(d.digest)) problems.push(`${name}: ${of}: blob ${d.digest} is carried, but bundle.json says it is left to the bases`)
      if (size !== d.size) problems.push(`${name}: ${of}: blob ${d.digest} has ${size} bytes, the reference says ${d.size}`)
      if (reached.has(d.digest)) return false
      reached.add(d.digest)
      return true
    },
    bytes: (d, of) => {
      const bytes = json.get(d.digest)
      if (bytes) return bytes
      if (otherJson.has(d.digest)) problems.push(`${name}: ${of}: ${d.digest} is not an image manifest or index`)
      else problems.push(`${name}: ${of}: manifest ${d.digest} is not valid JSON`)
      return undefined
    },
    invalid: (d, of, err) => {
      problems.push(err.reason === 'json' ? `${name}: ${of}: manifest ${d.digest} is not valid JSON` : `${name}: ${of}: ${d.digest} is not an image manifest or index`)
    },
    node: (d, {parsed}, of) => {
      for (const gap of manifestGaps(parsed)) problems.push(`${name}: ${of}: ${parsed.kind === 'index' ? 'index' : 'manifest'} ${d.digest} has no ${gap}`)
    },
    label: (of, edge) => {
      if (edge.role === 'manifest') {
        const p = edge.desc.platform
        return `${of} > ${p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') : 'manifest'} ${edge.desc.digest}`
      }
      if (edge.role === 'layer') return `${of} layer ${edge.index}`
      return `${of} ${edge.role}`
    },
  }
  const walk = (d: Descriptor, of: string): Promise<void> => walkGraph(d, of, visitor)
  for (const img of lock.images) {
    const ds = byRef.get(img.ref)
    if (!ds) {
      problems.push(`${name}: ${img.ref} (listed in bundle.json) is not in index.json`)
      continue
    }
    const d = ds[0]
    if (d.digest !== img.digest) problems.push(`${name}: ${img.ref}: index.json has ${d.digest}, bundle.json says ${img.digest}`)
    // Docker content is listed under its OCI twin in index.json (see layoutEntryMediaType).
    if (d.mediaType !== img.mediaType && d.mediaType !== layoutEntryMediaType(img.mediaType)) problems.push(`${name}: ${img.ref}: index.json has media type ${d.mediaType}, bundle.json says ${img.mediaType}`)
    await walk(d, img.ref)
  }
  for (const img of lock.images) await checkReferrers(name, img, referrerEntries, json, walk, problems)
  for (const b of lock.blobs ?? []) {
    // Under a manifest left to the bases nothing is visited here; what is carried must be reached.
    if (!b.fromBase && !referenced.has(b.digest)) problems.push(`${name}: blob ${b.digest} is listed in bundle.json's blobs but no image refers to it`)
  }
  for (const digest of [...blobs.keys()].sort()) if (!reached.has(digest)) problems.push(`${name}: blobs/sha256/${digest.slice(7)}: extra blob, no image references it`)
  for (const digest of [...corrupt.keys()].sort()) reportCorrupt(digest, `blobs/sha256/${digest.slice(7)}`)
}

/**
 * The referrers bundle.json lists under an image: each has its index.json
 * entry with the same subject, is walked like an image (every blob there and
 * of the right size), and points at something of this image: the image (or
 * the index it was filtered from), one of its platform manifests, or another
 * of its referrers; the manifest's own `subject` field, or else its cosign
 * tag, must name that digest.
 */
async function checkReferrers(
  name: string,
  img: BundleLock['images'][number],
  entries: Map<string, Descriptor>,
  json: Map<string, Buffer>,
  walk: (d: Descriptor, of: string) => Promise<void>,
  problems: string[],
): Promise<void> {
  const referrers = img.referrers ?? []
  if (referrers.length === 0) return
  const targets = new Set([img.digest, ...(img.sourceDigest ? [img.sourceDigest] : []), ...referrers.map((r) => r.digest)])
  // An unreadable root: the image walk already reported it.
  const root = parsedOrUndefined(json.get(img.digest))
  if (root?.kind === 'index' && Array.isArray(root.index.manifests)) for (const m of root.index.manifests) targets.add(m.digest)
  for (const r of referrers) {
    const of = `${img.ref}: referrer ${r.digest}`
    const entry = entries.get(r.digest)
    if (!entry) problems.push(`${name}: ${of} has no index.json entry`)
    else if (entry.annotations?.[REFERRER_SUBJECT_ANNOTATION] !== r.subject) {
      problems.push(`${name}: ${of}: index.json says its subject is ${entry.annotations?.[REFERRER_SUBJECT_ANNOTATION]}, bundle.json says ${r.subject}`)
    }
    if (!targets.has(r.subject)) problems.push(`${name}: ${of}: its subject ${r.subject} is not this image, one of its manifests or referrers`)
    await walk({mediaType: r.mediaType, digest: r.digest, size: r.size}, of)
    const parsed = parsedOrUndefined(json.get(r.digest), r.mediaType)
    if (!parsed) continue
    const doc = parsed.kind === 'index' ? parsed.index : parsed.manifest
    const artifactType = doc.artifactType ?? (parsed.kind === 'manifest' ? parsed.manifest.config?.mediaType : undefined)
    if (artifactType !== r.artifactType) problems.push(`${name}: ${of}: its artifact type is ${artifactType}, bundle.json says ${r.artifactType}`)
    const points = doc.subject?.digest ?? (r.tag ? parseCosignTag(r.tag)?.digest : undefined)
    if (points === undefined) problems.push(`${name}: ${of}: has no subject field and no cosign tag that names what it refers to`)
    else if (points !== r.subject) problems.push(`${name}: ${of}: refers to ${points}, bundle.json says ${r.subject}`)
  }
}

/**
 * Whether JSON bytes may be a manifest or an index (what the graph walk
 * reads): an object with any field of one. Image configs have none of them
 * (their `config` is the container's), nor do signature payloads.
 */
function isManifestOrIndex(bytes: Buffer): boolean {
  let doc: unknown
  try {
    doc = JSON.parse(bytes.toString('utf8'))
  } catch {
    return true // the walk reports it as not valid JSON, should anything point at it
  }
  return typeof doc !== 'object' || doc === null || Array.isArray(doc) || ['schemaVersion', 'mediaType', 'manifests', 'layers'].some((k) => k in doc)
}

/** Manifest bytes parsed, or undefined when they are not a manifest (reported by the walk). */
function parsedOrUndefined(bytes: Buffer | undefined, mediaType?: string): ParsedManifest | undefined {
  if (!bytes) return undefined
  try {
    return parseManifestJson(bytes, mediaType)
  } catch {
    return undefined
  }
}

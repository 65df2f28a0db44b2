import {stat} from 'node:fs/promises'
import path from 'node:path'

import pLimit from 'p-limit'

import {DEFAULT_CONCURRENCY} from '../defaults.js'
import {FailureError, ManifestError} from '../errors.js'
import {ChecksumFiles} from '../fetch/checksum.js'
import {createHttp, redactUrl} from '../fetch/http.js'
import type {ConnectionOptions} from '../fetch/tls.js'
import {parseManifest, readManifestFile} from '../manifest/load.js'
import {writeLocked} from '../manifest/lock-writer.js'
import type {ImageEntry, Manifest, UrlFileEntry} from '../manifest/types.js'
import {formatReference} from '../oci/reference.js'
import type {RegistryClient} from '../registry/client.js'
import {writeFileAtomic} from '../store/atomic.js'
import type {Progress} from '../ui/progress.js'
import {sourceClients} from './clients.js'
import {type RepositoriesReport, resolveSelections, type SelectionReport} from './resolve.js'

export interface LockOptions extends Pick<ConnectionOptions, 'caFiles'> {
  /** Where the locked manifest goes; default: the manifest itself. */
  out?: string
  username?: string
  password?: string
  /** Tag lists and digests read at once (default 8). */
  concurrency?: number
  progress: Progress
}

/** One image of the locked manifest: pinned now, or pinned in the file already; `from` names the selection it came from. */
export interface LockedImage {
  ref: string
  digest: string
  action: 'pinned' | 'unchanged'
  /** The selection or `spec.repositories` entry that expanded to it, e.g. `spec.images[1]`. */
  from?: string
}

/** One binary or package named by checksumUrl: pinned now to the sha256 its checksum file gave, or pinned in the file already. */
export interface LockedFile {
  url: string
  sha256: string
  checksumUrl: string
  action: 'pinned' | 'unchanged'
}

export interface LockResult {
  file: string
  out: string
  /** False when the manifest was locked already: nothing was rewritten. */
  changed: boolean
  /** Every image of the locked manifest with the digest it is pinned to. */
  images: LockedImage[]
  /** Every binary and package with a checksumUrl, with the sha256 it is pinned to. */
  files: LockedFile[]
  selections: SelectionReport[]
  repositories: RepositoriesReport[]
}

/**
 * `airlock lock`: resolve every tag selection and every tag of a manifest to
 * a digest and write the manifest back pinned (see manifest/lock-writer.ts),
 * comments and key order kept, so the next pull is exact and the change is
 * reviewable. The result is parsed again before it is written, and written
 * atomically.
 */
export async function lockManifest(file: string, opts: LockOptions): Promise<LockResult> {
  const out = opts.out ?? file
  const bytes = await readManifestFile(file)
  const manifest = parseManifest(bytes, file)
  const sources = sourceClients(manifest, {...opts, onWarning: (m) => opts.progress.warn(m)})
  const resolution = await resolveSelections(manifest, {registry: sources.lister, concurrency: opts.concurrency})
  const limit = pLimit(opts.concurrency ?? DEFAULT_CONCURRENCY)

  // Each image named by tag, once: its digest is what the registry serves for the tag now.
  const byName = new Map<string, ImageEntry>()
  for (const e of resolution.images) if (!e.ref.digest) byName.set(formatReference(e.ref), e)
  const digests = new Map<string, string>()
  await Promise.all(
    [...byName].map(([name, e]) =>
      limit(async () => {
        const task = opts.progress.task(`resolve ${name}`)
        try {
          const digest = await tagDigest(sources.client(e.ref.registry), e.ref.repository, e.ref.tag!)
          digests.set(name, digest)
          task.done(digest)
        } catch (error) {
          task.fail((error as Error).message)
          throw error
        }
      }),
    ),
  )
  const expansions = new Map<string, string[]>()
  for (const [field, entries] of resolution.expansions) {
    expansions.set(
      field,
      entries.map((e) => `${formatReference(e.ref)}@${digests.get(formatReference(e.ref))!}`),
    )
  }
  const files = await checksumPins(manifest, opts)
  const checksums = new Map(files.filter((f) => f.action === 'pinned').map((f) => [f.url, f.sha256]))
  const text = bytes.toString('utf8')
  const locked = writeLocked(text, {digests, expansions, checksums})
  if (locked.changed) {
    // What is written must be a valid manifest with nothing left to resolve; anything else is our bug.
    let check
    try {
      check = parseManifest(Buffer.from(locked.text), out)
    } catch (error) {
      const detail = error instanceof ManifestError ? error.details : [(error as Error).message]
      throw new FailureError(`${file}: the locked manifest would not be valid; nothing was written`, {details: detail})
    }
    const loose = [...check.binaries, ...check.packages].some((e) => e.kind !== 'chart' && !e.sha256)
    if ((check.selections?.length ?? 0) > 0 || (check.repositories?.length ?? 0) > 0 || loose) {
      throw new FailureError(`${file}: the locked manifest still has selections; nothing was written`)
    }
  }
  if (locked.changed || path.resolve(out) !== path.resolve(file)) {
    const mode = (await stat(file)).mode & 0o777
    await writeFileAtomic(out, locked.changed ? locked.text : bytes, mode)
  }
  const fromField = new Map<ImageEntry, string>()
  for (const [field, entries] of resolution.expansions) for (const e of entries) fromField.set(e, field)
  const images = resolution.images.map((e): LockedImage => {
    const digest = e.ref.digest ?? digests.get(formatReference(e.ref))!
    const from = fromField.get(e)
    return {
      ref: formatReference({...e.ref, digest}),
      digest,
      action: e.ref.digest ? 'unchanged' : 'pinned',
      ...(from ? {from} : {}),
    }
  })
  return {
    file,
    out,
    changed: locked.changed,
    images,
    files,
    selections: resolution.selections,
    repositories: resolution.repositories,
  }
}

/** The sha256 each binary and package named by checksumUrl has: its checksum file read now (each file once), or its sha256 already written. */
async function checksumPins(manifest: Manifest, opts: LockOptions): Promise<LockedFile[]> {
  const entries = [...manifest.binaries, ...manifest.packages].filter(
    (e): e is UrlFileEntry => e.kind !== 'chart' && e.checksumUrl !== undefined,
  )
  if (entries.length === 0) return []
  const checksums = new ChecksumFiles({http: await createHttp({caFiles: opts.caFiles})})
  const limit = pLimit(opts.concurrency ?? DEFAULT_CONCURRENCY)
  return Promise.all(
    entries.map((e) =>
      limit(async (): Promise<LockedFile> => {
        if (e.sha256) return {url: e.url, sha256: e.sha256, checksumUrl: e.checksumUrl!, action: 'unchanged'}
        const task = opts.progress.task(`checksum ${redactUrl(e.url)}`)
        try {
          const sha256 = await checksums.sha256For(e.checksumUrl!, e.url)
          task.done(sha256)
          return {url: e.url, sha256, checksumUrl: e.checksumUrl!, action: 'pinned'}
        } catch (error) {
          task.fail((error as Error).message)
          throw error
        }
      }),
    ),
  )
}

/** The digest a registry serves for a tag: from HEAD's Docker-Content-Digest, else by hashing what GET returns. */
async function tagDigest(client: RegistryClient, repository: string, tag: string): Promise<string> {
  const head = await client.headManifest(repository, tag)
  if (head?.digest?.startsWith('sha256:')) return head.digest
  return (await client.getManifest(repository, tag)).digest
}

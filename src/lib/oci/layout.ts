import {readFileSync} from 'node:fs'
import {type FileHandle, open, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable} from 'node:stream'

import type {Descriptor, ImageIndex} from '../content/descriptor.js'
import {digestHex, sha256Digest} from '../content/digest.js'
import {manifestMediaType, MediaType} from '../content/media-types.js'
import type {Opener} from '../content/opener.js'
import type {BlobPutOptions, BlobPutResult, ImageSink, ImageSource, Resolver} from '../content/roles.js'
import {FailureError, IntegrityError} from '../errors.js'
import {downloadVerified} from '../fetch/download.js'
import type {LowSpeed} from '../fetch/low-speed.js'
import type {RetryPolicy} from '../fetch/retry.js'
import {parseLayoutIndex} from '../graph/parse.js'
import {Once} from '../once.js'
import {writeFileAtomic} from '../store/atomic.js'
import {readSmall, readSmallOrUndefined, sizeOnDisk, SMALL_FILE, writeSmall} from '../store/small-files.js'
import {StagedFiles} from '../store/staged.js'
import type {Store} from '../store/store.js'

/** index.json annotations every entry carries (contract: "The store"). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name'
export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name'

/**
 * Referrers (signatures, SBOMs) have their own index.json entries, without a
 * ref name (so skopeo and ctr never take one for an image), carrying the
 * digest they refer to and the tag they were found under: a cosign `.sig`
 * manifest has no `subject` field, only its tag ties it to the image. A
 * reader of the layout finds every referrer of a digest by these entries.
 */
export const REFERRER_SUBJECT_ANNOTATION = 'io.airlock.referrer.subject'
export const REFERRER_TAG_ANNOTATION = 'io.airlock.referrer.tag'

/** The index.json entry of a referrer. */
export function referrerEntry(r: {
  digest: string
  mediaType: string
  size: number
  artifactType: string
  subject: string
  tag?: string
}): Descriptor {
  return {
    mediaType: r.mediaType,
    digest: r.digest,
    size: r.size,
    artifactType: r.artifactType,
    annotations: {[REFERRER_SUBJECT_ANNOTATION]: r.subject, ...(r.tag ? {[REFERRER_TAG_ANNOTATION]: r.tag} : {})},
  }
}

/** Reads of blobs go in chunks of up to 1 MiB: fewer syscalls on the hot path. */
const READ_CHUNK = 1 << 20

/**
 * The media type an index.json entry carries. Docker manifest lists and
 * manifests are listed under their OCI equivalents (same shape): skopeo and
 * the rest of containers/image only resolve a name on entries typed as OCI
 * index or manifest, and the contract wants skopeo to read every image we
 * store. The bytes and digest stay the registry's; the real type is the
 * document's own `mediaType` field (and `mediaType` in bundle.json), which is
 * what readers of the layout must use; OciLayoutSource.resolve does.
 */
export function layoutEntryMediaType(mediaType: string): string {
  if (mediaType === MediaType.dockerList) return MediaType.ociIndex
  if (mediaType === MediaType.dockerManifest) return MediaType.ociManifest
  return mediaType
}

/** The index.json entry naming an image `ref`, as every layout and oci-archive airlock writes has it. */
export function layoutEntry(ref: string, desc: Descriptor): Descriptor {
  return {
    mediaType: layoutEntryMediaType(desc.mediaType),
    digest: desc.digest,
    size: desc.size,
    annotations: {[REF_NAME_ANNOTATION]: ref, [CONTAINERD_NAME_ANNOTATION]: ref},
  }
}

export function layoutBlobPath(root: string, digest: string): string {
  return join(root, 'blobs', 'sha256', digestHex(digest))
}

export async function readLayoutIndex(root: string): Promise<ImageIndex> {
  const path = join(root, 'index.json')
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return {schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: []}
    throw err
  }
  try {
    return parseLayoutIndex(Buffer.from(text))
  } catch (err) {
    throw new FailureError(`${path} is not a valid OCI index: ${(err as Error).message}`)
  }
}

/**
 * The store's `images/` as a copy sink: blobs arrive through the one
 * download routine (partial file in the store's tmp, verified, renamed in);
 * manifests are verified and written atomically; `tag` replaces index.json
 * atomically, one writer at a time.
 */
export class OciLayoutSink implements ImageSink {
  readonly root: string
  private index?: Promise<{head: ImageIndex; entries: Map<string, Descriptor>}>
  private lastWrite: Promise<void> = Promise.resolve()
  private nextWrite?: Promise<void>
  /** A tag or referrer entry is in memory and not yet in index.json. */
  private dirty = false
  private timer?: NodeJS.Timeout
  /** Downloads under way, by digest (gone once settled: the blob is then in the layout). */
  private readonly writes = new Once<string, BlobPutResult>({keep: false})
  /** With `deferCommit`: blobs and manifests verified, not yet under their final names. */
  private readonly staged?: StagedFiles
  /** With `deferCommit`: manifests being staged, by digest (one writer per staged file). */
  private readonly manifestWrites = new Once<string, void>({keep: false})

  constructor(
    private readonly store: Store,
    private readonly opts: {
      policy?: RetryPolicy
      lowSpeed?: LowSpeed
      signal?: AbortSignal
      /**
       * Keep tags in memory, written every few seconds and on `flush()`
       * (pull: a few index.json writes for the whole run instead of one per
       * image, each the whole file). What a killed run tagged but did not
       * write is tagged again by the next run, which finds the blobs and
       * manifests already there.
       */
      deferIndex?: boolean
      /**
       * Stage verified blobs and manifests (StagedFiles) and give them their
       * final names in batches, after one flush of the filesystem, before
       * each index.json write (pull: one syncfs where an fsync per blob and
       * per folder was). They are in the layout for this sink's readers at
       * once; `flush()` must run at the end.
       */
      deferCommit?: boolean
    } = {},
  ) {
    this.root = store.images
    if (opts.deferCommit) this.staged = new StagedFiles(store.root)
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    const dest = this.store.blobPath(desc.digest)
    // Staged: verified, size included.
    return this.staged?.has(dest) === true || sizeOnDisk(dest) === desc.size
  }

  /**
   * One writer per digest: the partial file is named by digest, and besides
   * the copier (which already asks once) a pull reads single-platform configs
   * through here, so two images sharing a config must not both append to it.
   */
  async putBlob(desc: Descriptor, open: Opener, opts: BlobPutOptions): Promise<BlobPutResult> {
    return this.writes.run(desc.digest, () => this.download(desc, open, opts))
  }

  private async download(desc: Descriptor, open: Opener, opts: BlobPutOptions): Promise<BlobPutResult> {
    const r = await downloadVerified({
      open,
      digest: desc.digest,
      size: desc.size,
      dest: this.store.blobPath(desc.digest),
      partial: this.store.partialPath(desc.digest, 'blob'),
      label: opts.label,
      onBytes: opts.onBytes,
      ...(this.staged ? {commit: async (partial: string, dest: string) => this.staged!.stage(partial, dest)} : {}),
      policy: this.opts.policy,
      lowSpeed: this.opts.lowSpeed,
      signal: this.opts.signal,
    })
    return {bytesFetched: r.bytesFetched, bytesResumed: r.bytesResumed}
  }

  async putManifest(desc: Descriptor, bytes: Buffer): Promise<void> {
    const actual = sha256Digest(bytes)
    if (actual !== desc.digest) throw new IntegrityError(`manifest ${desc.digest}`, desc.digest, actual)
    if (await this.hasBlob({...desc, size: bytes.length})) return
    const dest = this.store.blobPath(desc.digest)
    const staged = this.staged
    if (!staged) return writeFileAtomic(dest, bytes)
    // Staged in the store's tmp (a killed run's is written over by the next), one writer per digest.
    await this.manifestWrites.run(desc.digest, async () => {
      if (staged.has(dest)) return
      const tmp = this.store.partialPath(desc.digest, 'manifest')
      try {
        if (bytes.length <= SMALL_FILE) writeSmall(tmp, [bytes])
        else await writeFile(tmp, bytes)
      } catch (err) {
        await rm(tmp, {force: true})
        throw err
      }
      staged.stage(tmp, dest)
    })
  }

  /** Verified bytes of a blob already in the layout (staged or under its final name), or undefined. */
  async readBlob(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<Buffer | undefined> {
    const dest = this.store.blobPath(desc.digest)
    let bytes: Buffer | undefined
    // A staged blob may get its final name between the lookup and the read: then it is there.
    for (const path of new Set([this.staged?.pathOf(dest) ?? dest, dest])) {
      // Most manifests a pull asks for are new: a stat says so without a rejected read.
      const size = sizeOnDisk(path)
      if (size === undefined) continue
      bytes = size <= SMALL_FILE ? readSmallOrUndefined(path, size) : await readFile(path).catch(() => undefined)
      if (bytes) break
    }
    if (!bytes) return undefined
    if (bytes.length !== desc.size && desc.size >= 0) return undefined
    return sha256Digest(bytes) === desc.digest ? bytes : undefined
  }

  /** One index.json entry per ref, replacing an earlier one with the same name. */
  tag(ref: string, desc: Descriptor): Promise<void> {
    const entry = layoutEntry(ref, desc)
    return this.updateIndex(indexKey(entry), entry)
  }

  /** A referrer's index.json entry (see referrerEntry), replacing an earlier one of the same digest. */
  addReferrer(r: Parameters<typeof referrerEntry>[0]): Promise<void> {
    const entry = referrerEntry(r)
    return this.updateIndex(indexKey(entry), entry)
  }

  /**
   * `entry` replaces the entry of the same key in index.json, which is
   * rewritten atomically, one writer at a time, images by name, then
   * referrers by digest. The index is read once and kept as a map; tags that
   * arrive while a write runs go out together in the next one.
   */
  private async updateIndex(key: string, entry: Descriptor): Promise<void> {
    const index = await this.loadIndex()
    index.entries.set(key, entry)
    this.dirty = true
    if (!this.opts.deferIndex) return this.scheduleWrite()
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined
        // A failure here leaves the index dirty: flush() writes it again and reports.
        this.scheduleWrite().catch(() => {})
      }, DEFERRED_INDEX_MS)
      this.timer.unref()
    }
  }

  /** Give every staged blob its final name, and write index.json if a tag since the last write is not in it. */
  async flush(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    await this.lastWrite
    if (this.dirty) await this.scheduleWrite()
    else await this.staged?.commit()
  }

  private loadIndex(): Promise<{head: ImageIndex; entries: Map<string, Descriptor>}> {
    this.index ??= readLayoutIndex(this.root).then((head) => ({
      head,
      entries: new Map(head.manifests.map((m) => [indexKey(m), m])),
    }))
    // A failed read is tried again by the next caller.
    this.index.catch(() => (this.index = undefined))
    return this.index
  }

  private scheduleWrite(): Promise<void> {
    if (!this.nextWrite) {
      const next = this.lastWrite.then(() => {
        // From here on, tags wait for the write after this one.
        this.nextWrite = undefined
        this.dirty = false
        return this.writeIndex().catch((err: unknown) => {
          this.dirty = true
          throw err
        })
      })
      this.nextWrite = next
      this.lastWrite = next.catch(() => {})
    }
    return this.nextWrite
  }

  private async writeIndex(): Promise<void> {
    const {head, entries} = await this.loadIndex()
    const listed = [...entries.values()]
    // What index.json names must be in the layout, durably, before it does: each entry was added
    // once its blobs were staged, so the commit after taking the entries covers them all.
    await this.staged?.commit()
    const sortKey = (m: Descriptor) => m.annotations?.[REF_NAME_ANNOTATION] ?? `\uffff${m.digest}`
    const manifests = listed.map((m) => [sortKey(m), m] as const)
    manifests.sort((a, b) => collator.compare(a[0], b[0]))
    const out = {...head, schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: manifests.map(([, m]) => m)}
    await writeFileAtomic(join(this.root, 'index.json'), `${JSON.stringify(out, null, 2)}\n`)
  }
}

/** With `deferIndex`, how long a tag waits in memory at most before index.json is written. */
const DEFERRED_INDEX_MS = 3000

/** The order of index.json's entries: localeCompare's, by a collator made once (the same order, many times faster). */
const collator = new Intl.Collator()

/** What an index.json entry replaces: the entry of the same name, or (for one without a name, a referrer) of the same digest. */
function indexKey(m: Descriptor): string {
  const ref = m.annotations?.[REF_NAME_ANNOTATION]
  return ref === undefined ? `digest ${m.digest}` : `ref ${ref}`
}

/** An OCI image layout folder as a copy source (blobs read from disk, resumable by offset). */
export class OciLayoutSource implements ImageSource, Resolver {
  readonly name: string

  constructor(readonly root: string) {
    this.name = `oci:${root}`
  }

  /** The index.json entry named `ref`, with the media type its bytes declare (see layoutEntryMediaType). */
  async resolve(ref: string): Promise<Descriptor | undefined> {
    const index = await readLayoutIndex(this.root)
    const entry = index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === ref)
    if (!entry) return undefined
    const bytes = await this.fetchManifest(entry)
    return {...entry, mediaType: manifestMediaType(bytes)}
  }

  /** Read synchronously: a manifest is small, and a bundle reads thousands of them. */
  async fetchManifest(desc: Descriptor): Promise<Buffer> {
    const bytes = readFileSync(layoutBlobPath(this.root, desc.digest))
    const actual = sha256Digest(bytes)
    if (actual !== desc.digest) throw new IntegrityError(`manifest ${desc.digest} in ${this.root}`, desc.digest, actual)
    return bytes
  }

  /**
   * The hot path of a bundle: one open and one fstat per blob, reads of up
   * to 1 MiB bounded by the size (a small blob is one read, no read at EOF).
   * A small blob read from its start is read at once, synchronously: for a
   * layout of thousands of tiny blobs the round trips through the thread
   * pool would cost ten times the reads themselves.
   */
  blobOpener(desc: Descriptor): Opener {
    const path = layoutBlobPath(this.root, desc.digest)
    return async (offset) => {
      if (offset <= 0 && desc.size <= SMALL_FILE) {
        const bytes = readSmall(path, desc.size, () => `blob ${desc.digest} is missing from ${this.root}`)
        let stream: Readable | undefined
        return {
          bytes,
          get stream() {
            stream ??= Readable.from([bytes], {objectMode: false})
            return stream
          },
          start: 0,
          total: bytes.length,
          url: `file://${path}`,
        }
      }
      let fh: FileHandle
      try {
        fh = await open(path, 'r')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT')
          throw new FailureError(`blob ${desc.digest} is missing from ${this.root}`)
        throw err
      }
      let size: number
      try {
        size = (await fh.stat()).size
      } catch (err) {
        await fh.close()
        throw err
      }
      const start = offset > 0 && offset < size ? offset : 0
      const stream = fh.createReadStream({
        start,
        end: Math.max(start, size - 1),
        highWaterMark: Math.max(1, Math.min(READ_CHUNK, size - start)),
      })
      return {stream, start, total: size, url: `file://${path}`}
    }
  }
}

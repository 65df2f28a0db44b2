import type {LimitFunction} from 'p-limit'
import pLimit from 'p-limit'

import {FailureError, IntegrityError} from './errors.js'
import type {Opener} from './fetch/download.js'
import {sha256Digest} from './oci/digest.js'
import {type Descriptor, type ImageIndex, type ImageManifest, isForeignLayer} from './oci/media-types.js'
import {Once} from './once.js'

/**
 * Where images are read from: a registry, an OCI layout, an archive.
 * Everything is addressed by descriptor; a source never decides what to copy.
 */
export interface ImageSource {
  /** For messages, e.g. `127.0.0.1:5000/library/nginx`. */
  readonly name: string
  /** The bytes of a manifest or index; they must hash to `desc.digest` (the copier checks again). */
  fetchManifest(desc: Descriptor): Promise<Buffer>
  /** An Opener (see fetch/download.ts) for a blob: resumable from an offset where the source can. */
  blobOpener(desc: Descriptor): Opener
}

export interface BlobPutResult {
  /** Bytes read from the source for this blob. */
  bytesFetched: number
  /** Bytes an earlier, interrupted attempt had kept and that were not read again. */
  bytesResumed: number
}

/** Where images are written: an OCI layout, a registry. */
export interface ImageSink {
  /** True when the blob is already there with this size (and so is not copied). */
  hasBlob(desc: Descriptor): Promise<boolean>
  /** Copy a blob from `open`; size and digest are verified before it becomes visible. */
  putBlob(desc: Descriptor, open: Opener, opts: {subject: string; onBytes?: (n: number) => void}): Promise<BlobPutResult>
  /** Store manifest or index bytes (verified against `desc.digest`) once all they point to is there. */
  putManifest(desc: Descriptor, bytes: Buffer): Promise<void>
  /** Name a copied root: an index.json entry in a layout, a tag in a registry. */
  tag(ref: string, desc: Descriptor, bytes: Buffer): Promise<void>
}

/** The manifest or index to copy, bytes in hand (it may be a platform-filtered index that no source has). */
export interface CopyRoot {
  bytes: Buffer
  mediaType: string
  digest: string
}

export interface CopyImageRequest {
  source: ImageSource
  root: CopyRoot
  /** Names the root gets in the sink once everything under it is there. */
  refs: string[]
  /** Names the image in errors, e.g. `docker.io/library/nginx:1.25.3`. */
  subject: string
  /** Called once the tree is known: the unique blobs to copy and their total size. */
  onPlan?: (plan: {blobs: Descriptor[]; totalBytes: number}) => void
  /** Blob bytes as they flow, plus the size of each blob found already there. */
  onBytes?: (n: number) => void
}

export interface CopyImageResult {
  digest: string
  mediaType: string
  /** Manifests and indexes under the root (root last), with their bytes. */
  manifests: {desc: Descriptor; bytes: Buffer}[]
  /** Unique configs and layers. */
  blobs: Descriptor[]
  /** Sum of the sizes of the unique manifests, configs and layers. */
  size: number
  /** Blob bytes this copy read from the source. */
  bytesFetched: number
  /** Blob bytes not read: already in the sink, copied by another image, or kept from an interrupted run. */
  bytesReused: number
}

export interface CopierOptions {
  sink: ImageSink
  /** The shared download pool (`--concurrency` wide). */
  pool: LimitFunction
  /** The pool's width, for sharing it between large and small blobs. */
  concurrency: number
  /** How many manifests are fetched at once (default: concurrency). */
  manifestConcurrency?: number
}

interface BlobJob {
  desc: Descriptor
  source: ImageSource
  subject: string
  onBytes?: (n: number) => void
  resolve: (r: BlobPutResult) => void
  reject: (err: unknown) => void
}

/**
 * The copy routine: source -> sink, used by `pull` (registry -> layout) and
 * `import registry` (archive -> registry). One Copier per run: blobs of all
 * images share its pool and are copied once per digest; an image manifest is
 * written after its blobs, an index after its manifests, the tag last.
 */
export class Copier {
  private readonly sink: ImageSink
  private readonly pool: LimitFunction
  private readonly concurrency: number
  private readonly manifestLimit: LimitFunction
  private readonly blobOnce = new Once<string, BlobPutResult & {reused: boolean}>()
  private readonly manifestFetchOnce = new Once<string, Buffer>()
  private readonly manifestPutOnce = new Once<string, void>()
  private readonly pending: BlobJob[] = []
  private runningBig = 0

  constructor(opts: CopierOptions) {
    this.sink = opts.sink
    this.pool = opts.pool
    this.concurrency = Math.max(1, opts.concurrency)
    this.manifestLimit = pLimit(opts.manifestConcurrency ?? this.concurrency)
  }

  async copyImage(req: CopyImageRequest): Promise<CopyImageResult> {
    const rootDesc: Descriptor = {mediaType: req.root.mediaType, digest: req.root.digest, size: req.root.bytes.length}
    if (sha256Digest(req.root.bytes) !== req.root.digest) {
      throw new IntegrityError(`manifest of ${req.subject}`, req.root.digest, sha256Digest(req.root.bytes))
    }
    // Plan: walk the tree, fetching child manifests, to know every blob (and the total) first.
    const manifests: {desc: Descriptor; bytes: Buffer}[] = []
    const blobs = new Map<string, Descriptor>()
    const children = new Map<string, Descriptor[]>()
    const walk = async (desc: Descriptor, bytes: Buffer): Promise<void> => {
      const doc = parseManifest(bytes, `${desc.digest} of ${req.subject}`)
      if (Array.isArray((doc as ImageIndex).manifests)) {
        const kids = (doc as ImageIndex).manifests
        children.set(desc.digest, kids)
        await Promise.all(kids.map(async (k) => walk(k, await this.fetchManifest(req.source, k, req.subject))))
      } else if ((doc as ImageManifest).config) {
        const m = doc as ImageManifest
        const own = [m.config, ...(m.layers ?? [])].filter((d) => !isForeignLayer(d))
        children.set(desc.digest, own)
        for (const d of own) blobs.set(d.digest, d)
      } else {
        throw new FailureError(`${req.subject}: ${desc.digest} is neither an image manifest nor an index`)
      }
      if (!manifests.some((x) => x.desc.digest === desc.digest)) manifests.push({desc, bytes})
    }
    await walk(rootDesc, req.root.bytes)
    const blobList = [...blobs.values()]
    req.onPlan?.({blobs: blobList, totalBytes: blobList.reduce((n, b) => n + b.size, 0)})

    let bytesFetched = 0
    let bytesReused = 0
    const blobDone = new Map<string, Promise<void>>()
    for (const d of blobList) {
      blobDone.set(
        d.digest,
        this.copyBlob(req, d).then((r) => {
          bytesFetched += r.bytesFetched
          bytesReused += r.bytesReused
        }),
      )
    }
    // Each manifest is written once what it points to is there; a failure anywhere stops the image.
    const written = new Map<string, Promise<void>>()
    const put = (desc: Descriptor, bytes: Buffer): Promise<void> => {
      let p = written.get(desc.digest)
      if (!p) {
        const deps = (children.get(desc.digest) ?? []).map((c) => {
          const child = manifests.find((m) => m.desc.digest === c.digest)
          return child ? put(child.desc, child.bytes) : (blobDone.get(c.digest) ?? Promise.resolve())
        })
        p = Promise.all(deps).then(() => this.manifestPutOnce.run(desc.digest, () => this.sink.putManifest(desc, bytes)))
        written.set(desc.digest, p)
      }
      return p
    }
    const all = [...blobDone.values(), put(rootDesc, req.root.bytes)]
    const settled = await Promise.allSettled(all)
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
    if (failed) throw failed.reason
    for (const ref of req.refs) await this.sink.tag(ref, rootDesc, req.root.bytes)
    const size = manifests.reduce((n, m) => n + m.bytes.length, 0) + blobList.reduce((n, b) => n + b.size, 0)
    // Root last, as written.
    manifests.sort((a, b) => (a.desc.digest === rootDesc.digest ? 1 : b.desc.digest === rootDesc.digest ? -1 : 0))
    return {digest: req.root.digest, mediaType: req.root.mediaType, manifests, blobs: blobList, size, bytesFetched, bytesReused}
  }

  private fetchManifest(source: ImageSource, desc: Descriptor, subject: string): Promise<Buffer> {
    return this.manifestFetchOnce.run(desc.digest, () =>
      this.manifestLimit(async () => {
        const bytes = await source.fetchManifest(desc)
        const actual = sha256Digest(bytes)
        if (actual !== desc.digest) throw new IntegrityError(`manifest ${desc.digest} of ${subject}`, desc.digest, actual)
        return bytes
      }),
    )
  }

  /** One blob for one image: fetched by whichever image asks first, reused by the others. */
  private async copyBlob(req: CopyImageRequest, desc: Descriptor): Promise<{bytesFetched: number; bytesReused: number}> {
    let mine = false
    let advanced = 0
    const onBytes = (n: number) => {
      advanced += n
      req.onBytes?.(n)
    }
    const r = await this.blobOnce.run(desc.digest, async () => {
      mine = true
      if (await this.sink.hasBlob(desc)) return {bytesFetched: 0, bytesResumed: 0, reused: true}
      const put = await new Promise<BlobPutResult>((resolve, reject) => {
        this.pending.push({desc, source: req.source, subject: `blob ${desc.digest} of ${req.subject}`, onBytes, resolve, reject})
        void this.pool(() => this.dispatch())
      })
      return {...put, reused: false}
    })
    // Bring the image's progress to the blob's size, whoever fetched it.
    if (advanced < desc.size) req.onBytes?.(desc.size - advanced)
    if (!mine || r.reused) return {bytesFetched: 0, bytesReused: desc.size}
    return {bytesFetched: r.bytesFetched, bytesReused: r.bytesResumed}
  }

  /**
   * Runs in a pool slot and picks its job only now, so the order reflects
   * everything queued by then. Most slots take the largest blob waiting
   * (large blobs bound the total time, so they start first); a quarter of
   * the slots take the smallest, so small blobs never wait behind large ones
   * and small images finish early.
   */
  private async dispatch(): Promise<void> {
    if (this.pending.length === 0) return
    const reserve = this.concurrency >= 4 ? Math.floor(this.concurrency / 4) : this.concurrency >= 2 ? 1 : 0
    const bigLane = this.runningBig < this.concurrency - reserve
    let at = 0
    for (let i = 1; i < this.pending.length; i++) {
      const s = this.pending[i].desc.size
      if (bigLane ? s > this.pending[at].desc.size : s < this.pending[at].desc.size) at = i
    }
    const job = this.pending.splice(at, 1)[0]
    if (bigLane) this.runningBig++
    try {
      job.resolve(await this.sink.putBlob(job.desc, job.source.blobOpener(job.desc), {subject: job.subject, onBytes: job.onBytes}))
    } catch (err) {
      job.reject(err)
    } finally {
      if (bigLane) this.runningBig--
    }
  }
}

/** Manifest or index bytes as JSON; `what` names the manifest in the error when they are not JSON. */
export function parseManifest(bytes: Buffer, what: string): ImageIndex | ImageManifest {
  try {
    return JSON.parse(bytes.toString('utf8')) as ImageIndex | ImageManifest
  } catch {
    throw new FailureError(`manifest ${what} is not valid JSON`)
  }
}

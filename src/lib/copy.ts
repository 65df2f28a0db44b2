import type {LimitFunction} from 'p-limit'
import pLimit from 'p-limit'

import type {Descriptor} from './content/descriptor.js'
import {sha256Digest} from './content/digest.js'
import type {BlobPutResult, ImageSink, ImageSource} from './content/roles.js'
import {FailureError, IntegrityError} from './errors.js'
import {isManifestEdge} from './graph/successors.js'
import {walkGraph} from './graph/walk.js'
import {Once} from './once.js'

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
  label: string
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
  /**
   * Whether a foreign layer (one that lives at its `urls`) is copied too;
   * by default never. A bundle carries one its store happens to hold.
   */
  copyForeign?: (desc: Descriptor) => boolean
  /** The queue of blobs waiting for the pool, when several Copiers share one pool (a Copier per target repository). */
  queue?: BlobQueue
}

interface BlobJob {
  size: number
  put: () => Promise<BlobPutResult>
  resolve: (r: BlobPutResult) => void
  reject: (err: unknown) => void
}

/**
 * The blobs waiting for a slot of one pool, in one queue however many
 * Copiers feed it (import registry and mirror have a Copier per target
 * repository), so that the order below holds across all of them: each slot
 * picks its job only when it runs, so the order reflects everything queued
 * by then. Most slots take the largest blob waiting (large blobs bound the
 * total time, so they start first); a quarter of the slots take the
 * smallest, so small blobs never wait behind large ones and small images
 * finish early.
 */
export class BlobQueue {
  private readonly pending: BlobJob[] = []
  private runningBig = 0
  private readonly concurrency: number

  constructor(
    private readonly pool: LimitFunction,
    concurrency: number,
  ) {
    this.concurrency = Math.max(1, concurrency)
  }

  put(size: number, put: () => Promise<BlobPutResult>): Promise<BlobPutResult> {
    return new Promise<BlobPutResult>((resolve, reject) => {
      this.pending.push({size, put, resolve, reject})
      void this.pool(() => this.dispatch())
    })
  }

  private async dispatch(): Promise<void> {
    if (this.pending.length === 0) return
    const reserve = this.concurrency >= 4 ? Math.floor(this.concurrency / 4) : this.concurrency >= 2 ? 1 : 0
    const bigLane = this.runningBig < this.concurrency - reserve
    let at = 0
    for (let i = 1; i < this.pending.length; i++) {
      const s = this.pending[i].size
      if (bigLane ? s > this.pending[at].size : s < this.pending[at].size) at = i
    }
    const job = this.pending.splice(at, 1)[0]
    if (bigLane) this.runningBig++
    try {
      job.resolve(await job.put())
    } catch (err) {
      job.reject(err)
    } finally {
      if (bigLane) this.runningBig--
    }
  }
}

/**
 * The copy routine: source -> sink, used by `pull` (registry -> layout) and
 * `import registry` (archive -> registry). One Copier per run: blobs of all
 * images share its pool and are copied once per digest; an image manifest is
 * written after its blobs, an index after its manifests, the tag last.
 */
export class Copier {
  private readonly sink: ImageSink
  private readonly queue: BlobQueue
  private readonly manifestLimit: LimitFunction
  private readonly copyForeign: (desc: Descriptor) => boolean
  /**
   * Overlapping copies of one blob share a run. None is kept after it
   * settled (a run of thousands of images would hold a promise per digest):
   * a later image asks the sink, which has it by then.
   */
  private readonly blobOnce = new Once<string, BlobPutResult & {reused: boolean}>({keep: false})
  /** Overlapping fetches of one manifest share a request; the bytes are not kept after (thousands of images would pile up). */
  private readonly manifestFetchOnce = new Once<string, Buffer>({keep: false})
  /** As blobs: a manifest written is found by the sink's own check the next time. */
  private readonly manifestPutOnce = new Once<string, void>({keep: false})

  constructor(opts: CopierOptions) {
    this.sink = opts.sink
    this.queue = opts.queue ?? new BlobQueue(opts.pool, opts.concurrency)
    this.manifestLimit = pLimit(opts.manifestConcurrency ?? Math.max(1, opts.concurrency))
    this.copyForeign = opts.copyForeign ?? (() => false)
  }

  async copyImage(req: CopyImageRequest): Promise<CopyImageResult> {
    const rootDesc: Descriptor = {mediaType: req.root.mediaType, digest: req.root.digest, size: req.root.bytes.length}
    if (sha256Digest(req.root.bytes) !== req.root.digest) {
      throw new IntegrityError(`manifest of ${req.label}`, req.root.digest, sha256Digest(req.root.bytes))
    }
    // Plan: walk the graph, fetching child manifests, to know every blob (and the total) first.
    const {manifests, blobs, children} = await planGraph(
      rootDesc,
      req.root.bytes,
      (desc) => this.fetchManifest(req.source, desc, req.label),
      req.label,
      this.copyForeign,
    )
    const blobList = [...blobs.values()]
    req.onPlan?.({blobs: blobList, totalBytes: blobList.reduce((n, b) => n + b.size, 0)})

    let bytesFetched = 0
    let bytesReused = 0
    // Each promise says whether the blob or manifest was new to the sink (written now, not found there).
    const blobDone = new Map<string, Promise<boolean>>()
    for (const d of blobList) {
      blobDone.set(
        d.digest,
        this.copyBlob(req, d).then((r) => {
          bytesFetched += r.bytesFetched
          bytesReused += r.bytesReused
          return r.fresh
        }),
      )
    }
    // Each manifest is written once what it points to is there; a failure anywhere stops the image.
    const written = new Map<string, Promise<boolean>>()
    const put = (desc: Descriptor, bytes: Buffer): Promise<boolean> => {
      let p = written.get(desc.digest)
      if (!p) {
        const deps = (children.get(desc.digest) ?? []).map((c) => {
          const child = manifests.get(c.digest)
          return child ? put(child.desc, child.bytes) : (blobDone.get(c.digest) ?? Promise.resolve(false))
        })
        p = Promise.all(deps).then(async (news) => {
          // A manifest over something new cannot be in the sink yet: the sink may skip its check.
          const fresh = news.some(Boolean)
          await this.manifestPutOnce.run(desc.digest, () => this.sink.putManifest(desc, bytes, {fresh}))
          return fresh
        })
        written.set(desc.digest, p)
      }
      return p
    }
    const rootPut = put(rootDesc, req.root.bytes)
    const all = [...blobDone.values(), rootPut]
    const settled = await Promise.allSettled(all)
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
    if (failed) throw failed.reason
    const fresh = await rootPut
    for (const ref of req.refs) await this.sink.tag(ref, rootDesc, req.root.bytes, {fresh})
    const walked = [...manifests.values()]
    const size = walked.reduce((n, m) => n + m.bytes.length, 0) + blobList.reduce((n, b) => n + b.size, 0)
    // Root last, as written.
    walked.sort((a, b) => (a.desc.digest === rootDesc.digest ? 1 : b.desc.digest === rootDesc.digest ? -1 : 0))
    return {
      digest: req.root.digest,
      mediaType: req.root.mediaType,
      manifests: walked,
      blobs: blobList,
      size,
      bytesFetched,
      bytesReused,
    }
  }

  private fetchManifest(source: ImageSource, desc: Descriptor, label: string): Promise<Buffer> {
    return this.manifestFetchOnce.run(desc.digest, () =>
      this.manifestLimit(() => verifiedManifest(source, desc, label)),
    )
  }

  /** One blob for one image: fetched by whichever image asks first, reused by the others. */
  private async copyBlob(
    req: CopyImageRequest,
    desc: Descriptor,
  ): Promise<{bytesFetched: number; bytesReused: number; fresh: boolean}> {
    let mine = false
    let advanced = 0
    const onBytes = (n: number) => {
      advanced += n
      req.onBytes?.(n)
    }
    const r = await this.blobOnce.run(desc.digest, async () => {
      mine = true
      if (await this.sink.hasBlob(desc)) return {bytesFetched: 0, bytesResumed: 0, reused: true}
      const label = `blob ${desc.digest} of ${req.label}`
      const put = await this.queue.put(desc.size, () =>
        this.sink.putBlob(desc, req.source.blobOpener(desc), {label, onBytes}),
      )
      return {...put, reused: false}
    })
    // Bring the image's progress to the blob's size, whoever fetched it.
    if (advanced < desc.size) req.onBytes?.(desc.size - advanced)
    // Fresh: written into the sink by this copy or an overlapping one, not found there.
    if (!mine || r.reused) return {bytesFetched: 0, bytesReused: desc.size, fresh: !r.reused}
    return {bytesFetched: r.bytesFetched, bytesReused: r.bytesResumed, fresh: true}
  }
}

/** An image's graph as a copy sees it: its manifests (with bytes), its unique blobs, and each manifest's children. */
export interface ImageGraph {
  manifests: Map<string, {desc: Descriptor; bytes: Buffer}>
  blobs: Map<string, Descriptor>
  children: Map<string, Descriptor[]>
}

/**
 * The copy's plan of one image, shared by the copier and `pull --dry-run`:
 * walk from the root (bytes in hand), reading child manifests through
 * `fetchManifest` (which verifies them), to every blob under it. A foreign
 * layer stays at its URLs unless `copyForeign` takes it.
 */
export async function planGraph(
  rootDesc: Descriptor,
  rootBytes: Buffer,
  fetchManifest: (desc: Descriptor) => Promise<Buffer>,
  label: string,
  copyForeign: (desc: Descriptor) => boolean = () => false,
): Promise<ImageGraph> {
  const manifests = new Map<string, {desc: Descriptor; bytes: Buffer}>()
  const blobs = new Map<string, Descriptor>()
  const children = new Map<string, Descriptor[]>()
  const seen = new Set<string>()
  await walkGraph<string>(
    rootDesc,
    label,
    {
      visit: (desc, _at, edge) => {
        if (edge?.optional && !copyForeign(desc)) return false // a foreign layer stays at its URLs
        if (edge && !isManifestEdge(edge)) {
          blobs.set(desc.digest, desc)
          return false
        }
        if (seen.has(desc.digest)) return false
        seen.add(desc.digest)
        return true
      },
      bytes: (desc) => (desc.digest === rootDesc.digest ? rootBytes : fetchManifest(desc)),
      invalid: (desc, _at, err) => {
        if (err.reason === 'json') throw new FailureError(`manifest ${desc.digest} of ${label} is not valid JSON`)
        throw new FailureError(`${label}: ${desc.digest} is neither an image manifest nor an index`)
      },
      node: (desc, {bytes, edges}) => {
        // A foreign layer left out is waited for as a blob never started: not at all.
        children.set(
          desc.digest,
          edges.map((e) => e.desc),
        )
        if (!manifests.has(desc.digest)) manifests.set(desc.digest, {desc, bytes})
      },
      label: (at) => at,
    },
    {parallel: true},
  )
  return {manifests, blobs, children}
}

/** A child manifest or index from a source, checked against its digest. */
export async function verifiedManifest(source: ImageSource, desc: Descriptor, label: string): Promise<Buffer> {
  const bytes = await source.fetchManifest(desc)
  const actual = sha256Digest(bytes)
  if (actual !== desc.digest) throw new IntegrityError(`manifest ${desc.digest} of ${label}`, desc.digest, actual)
  return bytes
}

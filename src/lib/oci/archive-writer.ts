import {Readable} from 'node:stream'

import type {Descriptor} from '../content/descriptor.js'
import {digestHex} from '../content/digest.js'
import {MediaType} from '../content/media-types.js'
import type {Opener} from '../content/opener.js'
import type {ImageSource} from '../content/roles.js'
import {checkedBody, encodeHeader, endOfArchive, inBlocks, padding} from '../tar/writer.js'
import {layoutEntry, referrerEntry} from './layout.js'

/**
 * An oci-archive written from a source that holds every digest (a bundle's
 * store): a plain tar of an OCI image layout, written reproducibly. Its
 * entries have a fixed order (`oci-layout`, `index.json` naming every image,
 * the two folders, then every blob by digest), so the digests are noted
 * first, by descriptor only, and `stream()` then writes the tar in that
 * order, reading each blob from the source as its turn comes (a few ahead),
 * every byte hashed as it flows and checked against the descriptor before
 * the next entry starts. Manifests are read and checked like any blob:
 * thousands of images cost no more than their names.
 *
 * Byte for byte the same for the same content: uid/gid 0, no user names,
 * modes 0644 and 0755, one mtime; `index.json` lists the tagged images by
 * name (code-unit order), then the referrers in the order they were added.
 */

export interface OciArchiveWriterOptions {
  /** Seconds since the epoch for every entry (SOURCE_DATE_EPOCH or 0). */
  mtime: number
  /** Digests the target already holds (a delta's bases): they stay out of the archive, their index.json entries do not. */
  holds?: ReadonlySet<string>
  /** Where every noted digest is read when its turn comes. */
  source: Pick<ImageSource, 'blobOpener'>
}

interface Noted {
  desc: Descriptor
  label: string
}

const OCI_LAYOUT = Buffer.from('{"imageLayoutVersion":"1.0.0"}')
const READ_CHUNK = 1 << 20
/** Blobs opened ahead of the one being written. */
const AHEAD = 16
/** A blob up to this size is read whole when opened ahead (at most AHEAD of them in memory). */
const SMALL = 256 << 10

/** A blob's bytes as its turn comes: read already (small), or a stream not yet read. */
interface Body {
  url: string
  chunks: AsyncIterable<Buffer> | Buffer[]
  close(): void
}

async function openBody(b: Noted, open: Opener): Promise<Body> {
  const opened = await open(0)
  if (opened.bytes) return {url: opened.url, chunks: [opened.bytes], close: () => {}}
  const stream = opened.stream
  const close = (): void => void stream.destroy()
  if (b.desc.size > SMALL) return {url: opened.url, chunks: stream as AsyncIterable<Buffer>, close}
  const chunks: Buffer[] = []
  let n = 0
  // More than the descriptor says is left for the check to refuse; no need to read it all.
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    chunks.push(chunk)
    n += chunk.length
    if (n > b.desc.size) break
  }
  return {url: opened.url, chunks, close}
}

export class OciArchiveWriter {
  private readonly blobs = new Map<string, Noted>()
  private readonly images = new Map<string, Descriptor>()
  private readonly referrers = new Map<string, Descriptor>()

  constructor(private readonly opts: OciArchiveWriterOptions) {}

  /** A digest the archive carries (unless the target holds it), `label` naming it in errors; read when the tar reaches it. */
  note(desc: Descriptor, label: string): void {
    digestHex(desc.digest)
    if (!this.opts.holds?.has(desc.digest)) this.blobs.set(desc.digest, {desc, label})
  }

  /** An index.json entry naming the image, as in the store's layout; a later tag of the same name replaces it. */
  tag(ref: string, desc: Descriptor): void {
    this.images.set(ref, layoutEntry(ref, desc))
  }

  /** A referrer's index.json entry (see referrerEntry), once per digest, after the images. */
  addReferrer(r: Parameters<typeof referrerEntry>[0]): void {
    if (!this.referrers.has(r.digest)) this.referrers.set(r.digest, referrerEntry(r))
  }

  /** The `index.json` the archive carries. */
  index(): Buffer {
    const names = [...this.images.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const manifests = [...names.map((n) => this.images.get(n)!), ...this.referrers.values()]
    return Buffer.from(`${JSON.stringify({schemaVersion: 2, mediaType: MediaType.ociIndex, manifests}, null, 2)}\n`)
  }

  /** Bytes of all entry bodies (`index.json` and `oci-layout` included): a progress total. */
  get size(): number {
    let n = OCI_LAYOUT.length + this.index().length
    for (const b of this.blobs.values()) n += b.desc.size
    return n
  }

  /** The whole tar, in its fixed order; `onBytes` counts body bytes as they go out. */
  stream(onBytes?: (n: number) => void): Readable {
    // In blocks (see TAR_BLOCK): thousands of small blobs are mostly headers, small bodies and padding.
    return Readable.from(inBlocks(this.entries(onBytes)), {objectMode: false, highWaterMark: READ_CHUNK})
  }

  private async *entries(onBytes?: (n: number) => void): AsyncGenerator<Buffer> {
    const mtime = this.opts.mtime
    const small = (path: string, data: Buffer): Buffer[] => {
      onBytes?.(data.length)
      return [encodeHeader({path, type: 'file', size: data.length, mode: 0o644, mtime}), data, padding(data.length)]
    }
    yield* small('oci-layout', OCI_LAYOUT)
    yield* small('index.json', this.index())
    yield encodeHeader({path: 'blobs/', type: 'directory', size: 0, mode: 0o755, mtime})
    yield encodeHeader({path: 'blobs/sha256/', type: 'directory', size: 0, mode: 0o755, mtime})
    // The hot path: one header, the body straight from its source, the padding. Blobs are opened a
    // few ahead of the one being written, and small ones read whole then, so that their opens and
    // reads overlap instead of taking turns (a store of many small images is mostly such blobs).
    const order = [...this.blobs.keys()].sort()
    const ahead: (Promise<Body> | undefined)[] = []
    const source = this.opts.source
    const fetch = (i: number): void => {
      if (i >= order.length) return
      const b = this.blobs.get(order[i])!
      const p = openBody(b, source.blobOpener(b.desc))
      p.catch(() => {}) // awaited in its turn; a failure ahead must not go unhandled meanwhile
      ahead[i] = p
    }
    /** The first blob not yet opened ahead. */
    let next = 0
    try {
      for (let i = 0; i < order.length; i++) {
        for (; next <= i + AHEAD; next++) fetch(next)
        const digest = order[i]
        const b = this.blobs.get(digest)!
        const path = `blobs/sha256/${digestHex(digest)}`
        yield encodeHeader({path, type: 'file', size: b.desc.size, mode: 0o644, mtime})
        const body = await ahead[i]!
        ahead[i] = undefined
        yield* checkedBody(body.chunks, {
          size: b.desc.size,
          sha256: digestHex(digest),
          label: `${b.label} (${body.url})`,
          onBytes,
        })
      }
    } finally {
      // Stopped early (a failure, or the reader went away): close what was opened ahead.
      for (const p of ahead)
        void p?.then(
          (body) => body.close(),
          () => {},
        )
    }
    yield endOfArchive()
  }
}

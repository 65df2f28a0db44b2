import {createHash} from 'node:crypto'
import {Readable} from 'node:stream'

import type {Descriptor} from '../../src/lib/content/descriptor.js'
import {sha256Digest} from '../../src/lib/content/digest.js'
import type {Opener} from '../../src/lib/content/opener.js'
import type {BlobPutOptions, BlobPutResult, ImageSink, ImageSource, Resolver} from '../../src/lib/content/roles.js'
import {IntegrityError} from '../../src/lib/errors.js'

/**
 * An image place held in memory, both a source and a sink (as oras-go's
 * content/memory is): blobs and manifests by digest, tags by name. What it
 * takes in it verifies as every sink must (size and digest, before the
 * content is visible); the role suites in test/contracts/ hold it to that.
 */
export class MemoryImages implements ImageSource, ImageSink, Resolver {
  readonly name = 'memory'
  readonly content = new Map<string, Buffer>()
  readonly tags = new Map<string, Descriptor>()
  /** The digest of each blob opened, in order (a test counts what a copy asked for). */
  readonly blobOpens: string[] = []
  /** A digest whose bytes are served with one byte changed (a source that lies). */
  corrupt?: string

  /** Put content in directly, as a fixture: its descriptor. */
  add(bytes: Buffer, mediaType: string): Descriptor {
    const digest = sha256Digest(bytes)
    this.content.set(digest, bytes)
    return {mediaType, digest, size: bytes.length}
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    return this.content.get(desc.digest)?.length === desc.size
  }

  async putBlob(desc: Descriptor, open: Opener, opts: BlobPutOptions): Promise<BlobPutResult> {
    const {stream} = await open(0)
    const hash = createHash('sha256')
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > desc.size) throw new IntegrityError(opts.label, desc.digest, `more than ${desc.size} bytes`)
      hash.update(chunk)
      chunks.push(chunk)
      opts.onBytes?.(chunk.length)
    }
    const actual = `sha256:${hash.digest('hex')}`
    if (actual !== desc.digest) throw new IntegrityError(opts.label, desc.digest, actual)
    this.content.set(desc.digest, Buffer.concat(chunks))
    return {bytesFetched: size, bytesResumed: 0}
  }

  async putManifest(desc: Descriptor, bytes: Buffer): Promise<void> {
    const actual = sha256Digest(bytes)
    if (actual !== desc.digest) throw new IntegrityError(`manifest ${desc.digest}`, desc.digest, actual)
    this.content.set(desc.digest, bytes)
  }

  async tag(reference: string, desc: Descriptor): Promise<void> {
    this.tags.set(reference, desc)
  }

  async resolve(reference: string): Promise<Descriptor | undefined> {
    return this.tags.get(reference)
  }

  async fetchManifest(desc: Descriptor): Promise<Buffer> {
    const bytes = this.content.get(desc.digest)
    if (!bytes) throw new Error(`manifest ${desc.digest} is not in memory`)
    return bytes
  }

  blobOpener(desc: Descriptor): Opener {
    return async (offset) => {
      this.blobOpens.push(desc.digest)
      let bytes = this.content.get(desc.digest)
      if (!bytes) throw new Error(`blob ${desc.digest} is not in memory`)
      if (this.corrupt === desc.digest) bytes = Buffer.from(bytes).fill(0, 10, 11)
      const start = offset > 0 && offset < bytes.length ? offset : 0
      return {stream: Readable.from([bytes.subarray(start)]), start, total: bytes.length, url: 'memory:'}
    }
  }
}

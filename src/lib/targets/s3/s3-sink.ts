import {Readable} from 'node:stream'

import {
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import {Upload} from '@aws-sdk/lib-storage'

import type {FilePutOptions, FileRef, OpenableFileSink} from '../../content/roles.js'
import {type Progress, silentProgress} from '../../ui/index.js'
import {plural} from '../../ui/table.js'
import {
  DEFAULT_PART_SIZE,
  ensureBucket,
  objectHolds,
  objectKey,
  s3Error,
  type S3TargetOptions,
  statusOf,
} from './s3-client.js'

export interface S3SinkOptions extends Pick<S3TargetOptions, 'bucket' | 'createBucket' | 'region'> {
  /** Normalized: no slash at either end. */
  prefix: string
  /** The endpoint's host:port, for messages. */
  host: string
  concurrency: number
  /** Default 8 MiB. */
  partSize?: number
  /** Every key the bundle writes: multipart uploads a killed import left for them are aborted at open(). */
  keys?: Set<string>
  progress?: Progress
}

/**
 * A bucket as a file sink: each file becomes the object `<prefix>/<path>`,
 * carrying its sha256 as `x-amz-meta-sha256`; an object with the same size
 * and sha256 is skipped. Objects are visible as soon as they are complete,
 * so an import verifies the bundle before it puts anything here.
 *
 * What is there already is listed once, at open() (a page per 1,000 keys):
 * a file with no object of its size is put without a HEAD first, so a first
 * import costs one request per file, not two. Only an object of the same
 * size is asked for its sha256. Where the listing is refused (a key allowed
 * to put but not to list) or would take more requests than a HEAD per file
 * (a prefix holding far more than the bundle), each file is asked with a
 * HEAD, as before.
 *
 * Concurrency, within bounded memory: puts are taken one at a time (the two
 * archives' entries interleave). A file no bigger than one part is read into
 * memory (verified as it is read) and its HEAD + PUT run in the background,
 * at most `concurrency` at a time: memory <= concurrency x partSize. A bigger
 * file waits for those, then goes up as a multipart upload whose parts are
 * sent `concurrency` at a time while the stream keeps being read: memory <=
 * (concurrency + 1) x partSize. A multipart upload is completed only after
 * the last byte hashed right, so a bad entry never becomes a visible object.
 */
export class S3Sink implements OpenableFileSink {
  readonly name: string
  private readonly inflight = new Set<Promise<void>>()
  private failure: unknown
  /** The put before this one; puts run one after another. */
  private turn: Promise<void> = Promise.resolve()
  /** The size of each of the bundle's keys already in the bucket, listed at open(); undefined where it could not be listed. */
  private present: Map<string, number> | undefined

  constructor(
    private readonly client: S3Client,
    private readonly opts: S3SinkOptions,
  ) {
    this.name = `bucket ${opts.bucket} at ${opts.host}`
  }

  where(path: string): string {
    return objectKey(this.opts.prefix, path)
  }

  has(file: FileRef): Promise<boolean> {
    return objectHolds(this.client, this.opts.bucket, this.where(file.path), file, this.opts.host)
  }

  /** The bucket made when asked, and multipart uploads an earlier, killed import left for this bundle's keys aborted. */
  async open(): Promise<void> {
    const {bucket, host, prefix, keys = new Set(), progress = silentProgress} = this.opts
    await ensureBucket(this.client, this.opts, host, progress)
    const aborted = await abortLeftUploads(this.client, bucket, prefix, keys, host)
    if (aborted.length > 0)
      progress.info(
        `aborted ${plural(aborted.length, 'unfinished multipart upload')} an earlier import left in ${bucket}: ${aborted.join(', ')}`,
      )
    this.present = keys.size > 0 ? await listPresent(this.client, bucket, prefix, keys, host) : undefined
  }

  /** The object at `key` is the file already: by the listing where its size rules it out, else by its HEAD (size and sha256). */
  private async holds(key: string, file: FileRef): Promise<boolean> {
    if (this.present && this.present.get(key) !== file.size) return false
    return objectHolds(this.client, this.opts.bucket, key, file, this.opts.host)
  }

  put(file: FileRef, body: AsyncIterable<Buffer>, opts: FilePutOptions): Promise<void> {
    const run = this.turn.then(() => this.putOne(file, body, opts))
    this.turn = run.catch(() => {})
    return run
  }

  private async putOne(file: FileRef, body: AsyncIterable<Buffer>, opts: FilePutOptions): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    const {client} = this
    const {bucket, host, concurrency, partSize = DEFAULT_PART_SIZE} = this.opts
    const key = this.where(file.path)
    const Metadata = {sha256: file.sha256}
    if (file.size <= partSize) {
      const data = await collect(body, file.size, opts.onBytes)
      while (this.inflight.size >= concurrency) await Promise.race(this.inflight)
      const job: Promise<void> = (async () => {
        if (await this.holds(key, file)) {
          opts.onStored('skipped')
          return
        }
        try {
          await client.send(
            new PutObjectCommand({Bucket: bucket, Key: key, Body: data, ContentLength: data.length, Metadata}),
          )
        } catch (err) {
          throw s3Error(err, host, `PUT ${key}`)
        }
        opts.onStored('written')
      })()
        .catch((err: unknown) => {
          this.failure ??= err
        })
        .finally(() => this.inflight.delete(job))
      this.inflight.add(job)
      return
    }
    await this.settle()
    if (await this.holds(key, file)) {
      // The body is left unread: the archive reader skips it.
      opts.onBytes(file.size)
      opts.onStored('skipped')
      return
    }
    const upload = new Upload({
      client,
      params: {
        Bucket: bucket,
        Key: key,
        Body: Readable.from(counted(body, opts.onBytes)),
        ContentLength: file.size,
        Metadata,
      },
      partSize,
      queueSize: concurrency,
      leavePartsOnError: false,
    })
    try {
      await upload.done()
    } catch (err) {
      throw s3Error(err, host, `upload ${key}`)
    }
    opts.onStored('written')
  }

  private async settle(): Promise<void> {
    await Promise.allSettled(this.inflight)
    if (this.failure !== undefined) throw this.failure
  }

  /** Every object is visible once complete: nothing to rename, only the uploads still running to wait for. */
  async commit(): Promise<void> {
    await this.turn
    await this.settle()
  }

  /** Objects already complete stay (each was verified); the uploads still running are waited for. */
  async abort(): Promise<void> {
    await this.turn
    await Promise.allSettled(this.inflight)
  }
}

async function collect(body: AsyncIterable<Buffer>, size: number, onBytes: (n: number) => void): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size)
  let off = 0
  for await (const c of body) {
    c.copy(buf, off)
    off += c.length
    onBytes(c.length)
  }
  return buf
}

async function* counted(body: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const c of body) {
    onBytes(c.length)
    yield c
  }
}

/**
 * The size of every object under the prefix whose key the bundle writes,
 * from a listing of the prefix (1,000 objects a page). Undefined where the
 * key may not list it (403), or once the listing has taken as many requests
 * as a HEAD for each of the bundle's keys would (a prefix holding far more
 * than the bundle): asking each file then costs less.
 */
async function listPresent(
  client: S3Client,
  bucket: string,
  prefix: string,
  keys: Set<string>,
  host: string,
): Promise<Map<string, number> | undefined> {
  const present = new Map<string, number>()
  let pages = 0
  let token: string | undefined
  do {
    if (++pages > keys.size) return undefined
    let page
    try {
      page = await client.send(
        new ListObjectsV2Command({Bucket: bucket, Prefix: prefix ? `${prefix}/` : undefined, ContinuationToken: token}),
      )
    } catch (err) {
      if (statusOf(err) === 403) return undefined
      throw s3Error(err, host, `list ${bucket}${prefix ? `/${prefix}/` : ''}`)
    }
    for (const o of page.Contents ?? []) {
      if (o.Key !== undefined && keys.has(o.Key)) present.set(o.Key, o.Size ?? -1)
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return present
}

/**
 * Multipart uploads an earlier, killed import left open (they hold storage
 * until aborted): those under the prefix for a key this bundle writes,
 * started before this run. Another writer's uploads for other keys are left alone.
 */
async function abortLeftUploads(
  client: S3Client,
  bucket: string,
  prefix: string,
  keys: Set<string>,
  host: string,
): Promise<string[]> {
  const started = Date.now()
  const aborted: string[] = []
  let keyMarker: string | undefined
  let uploadIdMarker: string | undefined
  for (;;) {
    let page
    try {
      page = await client.send(
        new ListMultipartUploadsCommand({
          Bucket: bucket,
          Prefix: prefix ? `${prefix}/` : undefined,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
        }),
      )
    } catch (err) {
      throw s3Error(err, host, `list the multipart uploads of ${bucket}`)
    }
    for (const u of page.Uploads ?? []) {
      if (!u.Key || !u.UploadId || !keys.has(u.Key) || (u.Initiated && u.Initiated.getTime() > started)) continue
      try {
        await client.send(new AbortMultipartUploadCommand({Bucket: bucket, Key: u.Key, UploadId: u.UploadId}))
      } catch (err) {
        if (statusOf(err) !== 404) throw s3Error(err, host, `abort the multipart upload of ${u.Key}`)
      }
      aborted.push(u.Key)
    }
    if (!page.IsTruncated) return aborted
    keyMarker = page.NextKeyMarker
    uploadIdMarker = page.NextUploadIdMarker
  }
}

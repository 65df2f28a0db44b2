import {pipeline, Readable} from 'node:stream'

import {sha256Digest} from '../content/digest.js'
import {IntegrityError, RegistryError} from '../errors.js'
import {countingStream} from '../fetch/counting.js'
import {streamingHeap} from '../heap.js'
import type {RegistryClient, RegistryResponse} from './client.js'

/**
 * Push calls of the OCI distribution spec on top of a RegistryClient: HEAD a
 * blob, mount it from another repository, upload it (one PUT when small,
 * PATCH chunks when large, honouring OCI-Chunk-Min-Length), PUT a manifest.
 * Every body is streamed from a source at an offset, so memory stays at a
 * few read buffers whatever the blob size, and a failed chunk is sent again
 * from where the registry says the upload stands.
 */

/** Opens `length` bytes of a blob from `offset`; called again for each attempt. */
export type BlobReader = (offset: number, length: number) => Readable

/** A blob's bytes: a reader, or the whole (small) blob in memory, sent as is. */
export type BlobBody = BlobReader | Buffer

/** A reader over bytes in memory, for the chunked path. */
function bufferReader(bytes: Buffer): BlobReader {
  return (offset, length) => Readable.from([bytes.subarray(offset, offset + length)], {objectMode: false})
}

export interface PushOptions {
  /** Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size (or the registry's minimum). */
  chunkSize?: number
}

/** Bytes sent, for progress; negative when a failed attempt is taken back. */
export type OnBytes = (n: number) => void

export const DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024

/** What a repository needs for pushing: both actions in one token, so one token serves every call. */
const PUSH = ['pull', 'push']

export type BlobOutcome = 'present' | 'mounted' | 'uploaded'

function header(res: RegistryResponse, name: string): string | undefined {
  const v = res.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** The next request's target: the Location of an upload answer, which must be there. */
function locationOf(res: RegistryResponse, client: RegistryClient, repository: string): string {
  const loc = header(res, 'location')
  if (!loc) {
    throw new RegistryError(`${client.registry}: an upload answer for ${repository} carried no Location`, {
      host: client.host,
      status: res.status,
      repository,
    })
  }
  // Relative locations are resolved against the URL that answered.
  return new URL(loc, res.url).toString()
}

/** Add `digest=` to an upload URL that may already carry a query (`_state=...`). */
function withDigest(location: string, digest: string): string {
  const u = new URL(location)
  u.searchParams.set('digest', digest)
  return u.toString()
}

/**
 * How many bytes the registry holds of an upload, from `Range: 0-N`. The
 * distribution registry answers `0-0` for an empty upload too, so `0-0`
 * counts as nothing: re-sending one byte is harmless (a refusal restarts the
 * session), skipping one is not.
 */
function rangeHeld(res: RegistryResponse): number | undefined {
  const m = /^(?:bytes=)?0-(-?\d+)$/.exec(header(res, 'range') ?? '')
  if (!m) return undefined
  const end = Number(m[1])
  return end <= 0 ? 0 : end + 1
}

export class RegistryPusher {
  readonly chunkSize: number

  constructor(
    readonly client: RegistryClient,
    opts: PushOptions = {},
  ) {
    this.chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE
  }

  /** Whether `repository` holds the blob with this size. */
  async hasBlob(repository: string, digest: string, size?: number): Promise<boolean> {
    const res = await this.client.request({
      method: 'HEAD',
      path: `/v2/${repository}/blobs/${digest}`,
      repository,
      actions: PUSH,
      accept: (s) => (s >= 200 && s < 300) || s === 404,
      what: `blob ${digest} of ${this.client.registry}/${repository}`,
    })
    if (res.status === 404) return false
    const len = header(res, 'content-length')
    // A registry that answers HEAD without a length is trusted; a wrong length is not.
    return size === undefined || len === undefined || Number(len) === size
  }

  /**
   * Put a blob into `repository`: mounted from `mountFrom` when given and the
   * registry agrees, otherwise uploaded from `read` (a reader, or the bytes).
   */
  async pushBlob(
    repository: string,
    blob: {digest: string; size: number},
    read: BlobBody,
    mountFrom?: string,
    onBytes?: OnBytes,
  ): Promise<BlobOutcome> {
    if (mountFrom && mountFrom !== repository) {
      const res = await this.mountBlob(repository, blob.digest, mountFrom)
      if (res?.status === 201) return 'mounted'
      // 202: the registry declined the mount and opened an upload instead; use it.
      await this.upload(repository, blob, read, onBytes, res)
      return 'uploaded'
    }
    await this.upload(repository, blob, read, onBytes)
    return 'uploaded'
  }

  /**
   * POST ?mount=&from=: 201 mounted, 202 declined (with an upload session
   * opened), undefined when the registry will not even consider it.
   */
  async mountBlob(repository: string, digest: string, from: string): Promise<RegistryResponse | undefined> {
    try {
      return await this.client.request({
        method: 'POST',
        path: `/v2/${repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
        repository,
        actions: PUSH,
        scopes: [`repository:${from}:pull`],
        headers: {'content-length': '0'},
        accept: (s) => s === 201 || s === 202,
        what: `mount of blob ${digest} from ${from} into ${this.client.registry}/${repository}`,
      })
    } catch (err) {
      // Not allowed to read the source repository, or no mount support: upload instead.
      if (err instanceof RegistryError && [401, 403, 404, 405].includes(err.status ?? 0)) return undefined
      throw err
    }
  }

  private startUpload(repository: string, digest: string): Promise<RegistryResponse> {
    return this.client.request({
      method: 'POST',
      path: `/v2/${repository}/blobs/uploads/`,
      repository,
      actions: PUSH,
      headers: {'content-length': '0'},
      accept: (s) => s === 202,
      what: `upload of blob ${digest} to ${this.client.registry}/${repository}`,
    })
  }

  /**
   * Upload through sessions: a chunk or the closing PUT is retried where it
   * stands; when the registry lost the session (or it cannot be resumed), a
   * new one starts, up to MAX_SESSIONS times.
   */
  private async upload(
    repository: string,
    blob: {digest: string; size: number},
    read: BlobBody,
    onBytes: OnBytes | undefined,
    opened?: RegistryResponse,
  ): Promise<void> {
    // A large body read from a stream: the collector's limits for streams while it flows (see streamingHeap).
    const streamed = streamingHeap(Buffer.isBuffer(read) ? undefined : blob.size, 'upload')
    try {
      await this.uploadInSessions(repository, blob, read, onBytes, opened)
    } finally {
      streamed()
    }
  }

  private async uploadInSessions(
    repository: string,
    blob: {digest: string; size: number},
    read: BlobBody,
    onBytes: OnBytes | undefined,
    opened?: RegistryResponse,
  ): Promise<void> {
    for (let session = 1; ; session++) {
      const start = opened ?? (await this.startUpload(repository, blob.digest))
      opened = undefined
      try {
        await this.session(repository, blob, read, start, onBytes)
        return
      } catch (err) {
        if (!(err instanceof RestartUpload || isLostSession(err))) throw err
        if (session >= MAX_SESSIONS) {
          throw new RegistryError(
            `${this.client.registry}: the upload of blob ${blob.digest} to ${repository} was lost ${session} times`,
            {
              host: this.client.host,
              repository,
              cause: err,
            },
          )
        }
        // The registry may have completed the blob even though its answer was lost.
        if (await this.hasBlob(repository, blob.digest, blob.size)) return
      }
    }
  }

  private async session(
    repository: string,
    blob: {digest: string; size: number},
    read: BlobBody,
    start: RegistryResponse,
    onBytes: OnBytes | undefined,
  ): Promise<void> {
    const min = Number(header(start, 'oci-chunk-min-length') ?? 0)
    const chunk = Math.max(this.chunkSize, Number.isFinite(min) ? min : 0)
    let location = locationOf(start, this.client, repository)
    if (blob.size > chunk) {
      location = await this.sendChunks(repository, blob, Buffer.isBuffer(read) ? bufferReader(read) : read, location, {
        chunk,
        onBytes,
      })
      await this.client.retry(() => this.finish(repository, blob, location, Buffer.alloc(0), 0))
      return
    }
    // Small blob: the whole body in the closing PUT.
    if (Buffer.isBuffer(read)) {
      // In memory: no stream to meter; its bytes count once the registry took them.
      await this.client.retry(() => this.finish(repository, blob, location, read, blob.size))
      onBytes?.(blob.size)
      return
    }
    await this.client.retry(async () => {
      const meter = byteMeter(onBytes)
      try {
        await this.finish(
          repository,
          blob,
          location,
          blob.size > 0 ? () => meter.wrap(read(0, blob.size)) : Buffer.alloc(0),
          blob.size,
        )
      } catch (err) {
        meter.rollback()
        throw err
      }
    })
  }

  /** The closing PUT; its Docker-Content-Digest, when sent, must be ours. */
  private async finish(
    repository: string,
    blob: {digest: string; size: number},
    location: string,
    body: Buffer | (() => Readable),
    length: number,
  ): Promise<void> {
    const res = await this.client.request({
      method: 'PUT',
      path: withDigest(location, blob.digest),
      repository,
      actions: PUSH,
      headers: {'content-type': 'application/octet-stream', 'content-length': String(length)},
      body,
      accept: (s) => s === 201 || s === 204,
      retry: false,
      what: `upload of blob ${blob.digest} to ${this.client.registry}/${repository}`,
    })
    const dcd = header(res, 'docker-content-digest')
    if (dcd && dcd !== blob.digest)
      throw new IntegrityError(`blob pushed to ${this.client.registry}/${repository}`, blob.digest, dcd)
  }

  /** PATCH the blob in chunks; returns the location for the closing PUT. */
  private async sendChunks(
    repository: string,
    blob: {digest: string; size: number},
    read: BlobReader,
    location: string,
    {chunk, onBytes}: {chunk: number; onBytes?: OnBytes},
  ): Promise<string> {
    let offset = 0
    while (offset < blob.size) {
      await this.client.retry(async (attempt) => {
        if (attempt > 1) {
          // Ask where the upload stands and resume there.
          const st = await this.client
            .request({
              method: 'GET',
              path: location,
              repository,
              actions: PUSH,
              accept: (s) => s === 204 || s === 200,
              // A status query is safe to repeat: a 503 on it must not use up one of the chunk's attempts.
              what: `upload status of blob ${blob.digest} in ${this.client.registry}/${repository}`,
            })
            .catch((err: unknown) => {
              if (isLostSession(err)) throw new RestartUpload()
              throw err
            })
          const held = rangeHeld(st)
          if (held === undefined || held > blob.size) throw new RestartUpload()
          offset = held
          location = locationOf(st, this.client, repository)
          if (offset >= blob.size) return
        }
        const len = Math.min(chunk, blob.size - offset)
        const at = offset
        const meter = byteMeter(onBytes)
        try {
          const res = await this.client.request({
            method: 'PATCH',
            path: location,
            repository,
            actions: PUSH,
            headers: {
              'content-type': 'application/octet-stream',
              'content-length': String(len),
              'content-range': `${at}-${at + len - 1}`,
            },
            body: () => meter.wrap(read(at, len)),
            accept: (s) => s === 202,
            retry: false,
            what: `chunk ${at}-${at + len - 1} of blob ${blob.digest} to ${this.client.registry}/${repository}`,
          })
          location = locationOf(res, this.client, repository)
          offset = at + len
        } catch (err) {
          meter.rollback()
          if (isLostSession(err)) throw new RestartUpload()
          throw err
        }
      })
    }
    return location
  }

  /**
   * PUT a manifest or index by tag or digest, byte for byte. The registry's
   * Docker-Content-Digest must equal the digest of these bytes.
   */
  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const digest = sha256Digest(bytes)
    const res = await this.client.request({
      method: 'PUT',
      path: `/v2/${repository}/manifests/${reference}`,
      repository,
      actions: PUSH,
      headers: {'content-type': mediaType, 'content-length': String(bytes.length)},
      body: bytes,
      accept: (s) => s === 201 || s === 200 || s === 202,
      what: `manifest ${this.client.registry}/${repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`,
    })
    const dcd = header(res, 'docker-content-digest')
    if (dcd && dcd !== digest) {
      throw new IntegrityError(
        `manifest ${this.client.registry}/${repository}:${reference} (Docker-Content-Digest)`,
        digest,
        dcd,
      )
    }
    return digest
  }

  /** The digest a tag or digest points at in `repository`, or undefined. */
  async manifestDigest(repository: string, reference: string): Promise<string | undefined> {
    return (await this.client.headManifest(repository, reference, PUSH))?.digest
  }
}

const MAX_SESSIONS = 3

/** Count bytes sent for progress, and take them back when the attempt fails. */
function byteMeter(onBytes: OnBytes | undefined): {wrap(stream: Readable): Readable; rollback(): void} {
  let sent = 0
  return {
    wrap(stream) {
      if (!onBytes) return stream
      const counter = countingStream((n) => {
        sent += n
        onBytes(n)
      })
      pipeline(stream, counter, () => {})
      return counter
    },
    rollback() {
      if (onBytes && sent > 0) onBytes(-sent)
      sent = 0
    },
  }
}

/** A chunked upload that cannot be resumed where it stands: a new session is needed. */
class RestartUpload extends Error {
  readonly retryable = false
  constructor() {
    super('upload session lost')
  }
}

/** The registry no longer knows the upload or refuses where it stands. */
function isLostSession(err: unknown): boolean {
  if (!(err instanceof RegistryError)) return false
  const codes = err.codes
  if (codes.includes('BLOB_UPLOAD_UNKNOWN') || codes.includes('BLOB_UPLOAD_INVALID') || codes.includes('RANGE_INVALID'))
    return true
  return err.status === 404 || err.status === 416
}

import {
  CreateBucketCommand,
  type CreateBucketCommandInput,
  AbortMultipartUploadCommand,
  GetBucketPolicyCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3'
import {Upload} from '@aws-sdk/lib-storage'
import http from 'node:http'
import https from 'node:https'
import {Readable} from 'node:stream'

import {DEFAULT_CONCURRENCY} from '../defaults.js'
import {AirlockError, FailureError, NetworkError, UsageError} from '../errors.js'
import {proxyAgents, proxyFor} from '../fetch/proxy.js'
import {isCertificateError, trustedCas} from '../fetch/tls.js'
import {isLoopbackRegistry} from '../oci/reference.js'
import {formatBytes} from '../ui/format.js'
import {silentProgress, type Progress, type TaskHandle} from '../ui/index.js'
import {ARCHIVES, bundleEntries, lockFilesOf, writtenByOtherArchive} from '../bundle/archive-entries.js'
import type {LockFile} from '../lock.js'
import {type ImportedFile, type ImportTotals, inLockOrder, totals} from './result.js'
import type {S3Credentials} from './s3-credentials.js'
import {isDelta, refuseIncompleteTarget} from './delta-check.js'
import {filesHeld} from './holds.js'
import {verifyBeforeImport} from './verify-first.js'

export interface S3ImportOptions {
  /** S3 endpoint URL, e.g. `http://127.0.0.1:7480`. */
  endpoint: string
  bucket: string
  /** Key prefix; slashes at either end are ignored. */
  prefix?: string
  region?: string
  createBucket?: boolean
  /** Set a bucket policy letting anyone GET objects under the prefix (an installer fetching over plain HTTP). */
  publicRead?: boolean
  caFile?: string
  insecure?: boolean
  credentials: S3Credentials
  /** Uploads in flight (small objects) or parts in flight (one large object). Default 8. */
  concurrency?: number
  /** Multipart part size, and the largest object sent with one PUT. Default 8 MiB. */
  partSize?: number
  progress?: Progress
}

export interface S3ImportResult extends ImportTotals {
  s3Endpoint: string
  bucket: string
  prefix: string
}

export const DEFAULT_PART_SIZE = 8 * 1024 * 1024
const MIN_PART_SIZE = 5 * 1024 * 1024

/** `prefix/path`, or `path` without a prefix. */
export function objectKey(prefix: string, path: string): string {
  return prefix ? `${prefix}/${path}` : path
}

export function normalizePrefix(prefix = ''): string {
  return prefix.replace(/^\/+|\/+$/g, '')
}

/** Where files are served from once uploaded, path-style: `<endpoint>/<bucket>[/<prefix>]`. */
export function bucketUrl(endpoint: string, bucket: string, prefix = ''): string {
  const p = normalizePrefix(prefix)
  return `${endpoint.replace(/\/+$/, '')}/${bucket}${p ? `/${p}` : ''}`
}

function statusOf(err: unknown): number | undefined {
  return (err as {$metadata?: {httpStatusCode?: number}})?.$metadata?.httpStatusCode
}

/** Map an SDK or socket error to one of ours; never includes credentials (the SDK's messages do not either). */
function s3Error(err: unknown, host: string, what: string): AirlockError {
  if (err instanceof AirlockError) return err
  const status = statusOf(err)
  if (err instanceof S3ServiceException || status !== undefined) {
    const e = err as S3ServiceException
    // A HEAD has no body, so the SDK knows no code for it: 'Unknown', 'UnknownError' or the bare status.
    const named = e.name && !/^(Unknown(Error)?|\d+)$/.test(e.name) ? e.name : undefined
    if (status === 403) {
      return new FailureError(`${what}: access denied by ${host} (HTTP 403${named ? ` ${named}` : ''})`, {
        suggestions: [
          'check the access key and the secret key (--access-key/--secret-key, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else ~/.aws/credentials) and that this user may use the bucket',
        ],
        cause: err,
      })
    }
    const code = named ?? `HTTP ${status}`
    const hint: string[] = []
    return new FailureError(`${what}: ${host} answered ${status ?? ''} ${code}${e.message && e.message !== e.name ? `: ${e.message}` : ''}`.replace(/\s+/g, ' '), {
      suggestions: hint,
      cause: err,
    })
  }
  const e = err as NodeJS.ErrnoException
  const net = new NetworkError(`${what}: ${host}: ${e?.code ?? ''} ${e?.message ?? String(err)}`.trim(), {host, cause: err})
  if (isCertificateError(e)) {
    net.suggestions.push(`trust the CA that signed ${host}'s certificate with --ca-file, or skip the check with --insecure`)
  }
  return net
}

export async function makeClient(opts: S3ImportOptions, concurrency: number): Promise<S3Client> {
  // The SDK warns on Node 20 about its own future releases; airlock supports Node >= 20 with the SDK it ships.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  const url = new URL(opts.endpoint)
  const ca = await trustedCas(opts.caFile ? [opts.caFile] : [])
  const proxy = proxyFor(url)
  const tuning = {keepAlive: true, maxSockets: concurrency * 2 + 2}
  const tls = {ca, rejectUnauthorized: !opts.insecure}
  const viaProxy = proxy ? proxyAgents(proxy, {...tuning, ...tls}) : undefined
  const httpAgent = viaProxy?.http ?? new http.Agent(tuning)
  const httpsAgent = viaProxy?.https ?? new https.Agent({...tuning, ...tls})
  return new S3Client({
    endpoint: opts.endpoint,
    region: opts.region || 'us-east-1',
    forcePathStyle: true,
    credentials: {
      accessKeyId: opts.credentials.accessKeyId,
      secretAccessKey: opts.credentials.secretAccessKey,
      sessionToken: opts.credentials.sessionToken,
    },
    // RGW 16 rejects the aws-chunked trailers newer SDKs send by default (MissingContentLength).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // The SDK's own retries, per request: a multipart part is buffered, so it can be resent; a stream could not.
    maxAttempts: 5,
    requestHandler: {httpAgent, httpsAgent, connectionTimeout: 15_000, requestTimeout: 300_000},
  })
}

/** Check the flags that decide how to reach the endpoint; before anything is read. */
export function checkS3Target(opts: Pick<S3ImportOptions, 'endpoint' | 'bucket' | 'insecure' | 'partSize' | 'concurrency'>): URL {
  let url: URL
  try {
    url = new URL(opts.endpoint)
  } catch {
    throw new UsageError(`--endpoint ${opts.endpoint} is not a URL (e.g. https://s3.example.com or http://127.0.0.1:7480)`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--endpoint ${opts.endpoint}: only http:// and https:// are supported`)
  if (url.username || url.password) throw new UsageError('--endpoint must not carry credentials; use --access-key/--secret-key, the environment or ~/.aws/credentials')
  if (url.protocol === 'http:' && !opts.insecure && !isLoopbackRegistry(url.host)) {
    throw new UsageError(`--endpoint ${opts.endpoint} is plain HTTP; add --insecure to allow it for a host that is not loopback`)
  }
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(opts.bucket)) throw new UsageError(`--bucket ${opts.bucket} is not a valid bucket name`)
  if (opts.partSize !== undefined && opts.partSize < MIN_PART_SIZE) throw new UsageError(`part size must be at least ${formatBytes(MIN_PART_SIZE)}`)
  if (opts.concurrency !== undefined && (!Number.isInteger(opts.concurrency) || opts.concurrency < 1)) throw new UsageError('--concurrency must be at least 1')
  return url
}

/**
 * CreateBucket for `region`: outside us-east-1, AWS refuses a bucket whose
 * CreateBucketConfiguration does not name the region it is created in.
 * us-east-1 is the one region that takes no LocationConstraint (and refuses
 * one naming itself). Said here rather than left to the SDK, which fills it
 * in today from the client's region, so what goes on the wire does not hang
 * on a middleware. Ceph RGW accepts only its zonegroup names (`default` on a
 * single site) and answers InvalidLocationConstraint to anything else,
 * us-east-1 included.
 */
export function createBucketInput(bucket: string, region = 'us-east-1'): CreateBucketCommandInput {
  return region === 'us-east-1' ? {Bucket: bucket} : {Bucket: bucket, CreateBucketConfiguration: {LocationConstraint: region as never}}
}

export async function ensureBucket(client: S3Client, opts: Pick<S3ImportOptions, 'bucket' | 'createBucket' | 'region'>, host: string, progress: Progress): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({Bucket: opts.bucket}))
    return
  } catch (err) {
    if (statusOf(err) !== 404) throw s3Error(err, host, `bucket ${opts.bucket}`)
  }
  if (!opts.createBucket) {
    throw new FailureError(`bucket ${opts.bucket} does not exist on ${host}`, {suggestions: ['add --create-bucket to create it']})
  }
  try {
    await client.send(new CreateBucketCommand(createBucketInput(opts.bucket, opts.region || 'us-east-1')))
    progress.info(`created bucket ${opts.bucket}`)
  } catch (err) {
    // Another importer may have won the race.
    const name = (err as Error).name
    if (name === 'BucketAlreadyOwnedByYou') return
    const failure = s3Error(err, host, `create bucket ${opts.bucket}`)
    if (name === 'InvalidLocationConstraint' || name === 'IllegalLocationConstraintException') {
      failure.suggestions.push(
        `--region ${opts.region || 'us-east-1'} is sent as the new bucket's location; give the region ${host} serves (Ceph RGW: its zonegroup, e.g. default)`,
      )
    }
    throw failure
  }
}

/** Same size and the same sha256 metadata: the object is already what the bundle has. */
export async function objectHolds(client: S3Client, bucket: string, key: string, file: Pick<LockFile, 'size' | 'sha256'>, host: string): Promise<boolean> {
  try {
    const head = await client.send(new HeadObjectCommand({Bucket: bucket, Key: key}))
    return head.ContentLength === file.size && head.Metadata?.sha256 === file.sha256
  } catch (err) {
    // No such object, or (checking a delta against an empty store) no such bucket yet.
    if (statusOf(err) === 404) return false
    throw s3Error(err, host, `HEAD ${key}`)
  }
}

async function collect(body: AsyncIterable<Buffer>, size: number, task: TaskHandle): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size)
  let off = 0
  for await (const c of body) {
    c.copy(buf, off)
    off += c.length
    task.advance(c.length)
  }
  return buf
}

async function* counted(body: AsyncIterable<Buffer>, task: TaskHandle): AsyncGenerator<Buffer> {
  for await (const c of body) {
    task.advance(c.length)
    yield c
  }
}

/**
 * `import s3`: verify the bundle, then turn each file of both `.tar.gz`
 * into the object `<prefix>/<path>`, streamed from the archive (nothing is
 * extracted to disk).
 *
 * Concurrency, within bounded memory: the archive is one stream, so entries
 * are read in order. A file no bigger than one part is read into memory
 * (verified against bundle.json as it is read) and its HEAD + PUT run in
 * the background while the next entries are read, at most `concurrency` at
 * a time: memory <= concurrency x partSize. A bigger file waits for those,
 * then goes up as a multipart upload whose parts are sent `concurrency` at
 * a time while the stream keeps being read: memory <= (concurrency + 1) x
 * partSize. A multipart upload is completed only after the last byte
 * hashed right, so a bad entry never becomes a visible object.
 */
export async function importS3(dir: string, opts: S3ImportOptions): Promise<S3ImportResult> {
  const progress = opts.progress ?? silentProgress
  const url = checkS3Target(opts)
  const host = url.host
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY
  const partSize = opts.partSize ?? DEFAULT_PART_SIZE
  const prefix = normalizePrefix(opts.prefix)
  const lock = await verifyBeforeImport(dir, ['files', 'packages'], progress)
  if (opts.insecure) progress.warn(`--insecure: ${host} may be reached over plain HTTP or unverified TLS`)
  const client = await makeClient(opts, concurrency)
  const results: ImportedFile[] = []
  try {
    // A delta: what it leaves out must be in the bucket already (HEAD only), before the bucket is even created.
    if (isDelta(lock)) {
      const left = lock.files.filter((f) => f.fromBase)
      const held = await filesHeld(left, (f) => objectHolds(client, opts.bucket, objectKey(prefix, f.path), f, host), concurrency)
      refuseIncompleteTarget(`bucket ${opts.bucket} at ${host}`, lock, left.filter((f) => !held.has(f)).map((f) => ({what: objectKey(prefix, f.path) + ` (sha256 ${f.sha256})`, size: f.size})))
    }
    await ensureBucket(client, opts, host, progress)
    const keys = new Set(lock.files.map((f) => objectKey(prefix, f.path)))
    const aborted = await abortLeftUploads(client, opts.bucket, prefix, keys, host)
    if (aborted.length > 0) progress.info(`aborted ${aborted.length} unfinished multipart upload(s) an earlier import left in ${opts.bucket}: ${aborted.join(', ')}`)
    const inflight = new Set<Promise<void>>()
    let failure: unknown
    const settle = async () => {
      await Promise.allSettled(inflight)
      if (failure !== undefined) throw failure
    }
    for (const archive of ARCHIVES) {
      const files = lockFilesOf(lock, archive.kind)
      const total = files.reduce((n, f) => n + f.size, 0)
      const task = progress.task(`${archive.name}: ${files.length} file(s), ${formatBytes(total)}`, total)
      const elsewhere = writtenByOtherArchive(lock, archive.kind)
      try {
        for await (const entry of bundleEntries(dir, lock, archive.kind)) {
          if (failure !== undefined) break
          if (elsewhere.has(entry.path)) {
            task.advance(entry.file.size)
            continue
          }
          const key = objectKey(prefix, entry.path)
          const row = (action: ImportedFile['action']): void => void results.push({path: key, size: entry.file.size, sha256: entry.file.sha256, action})
          const Metadata = {sha256: entry.file.sha256}
          if (entry.file.size <= partSize) {
            const data = await collect(entry.body, entry.file.size, task)
            while (inflight.size >= concurrency) await Promise.race(inflight)
            const job: Promise<void> = (async () => {
              if (await objectHolds(client, opts.bucket, key, entry.file, host)) {
                row('skipped')
                return
              }
              try {
                await client.send(new PutObjectCommand({Bucket: opts.bucket, Key: key, Body: data, ContentLength: data.length, Metadata}))
              } catch (err) {
                throw s3Error(err, host, `PUT ${key}`)
              }
              row('written')
            })()
              .catch((err: unknown) => {
                failure ??= err
              })
              .finally(() => inflight.delete(job))
            inflight.add(job)
            continue
          }
          await settle()
          if (await objectHolds(client, opts.bucket, key, entry.file, host)) {
            task.advance(entry.file.size)
            row('skipped')
            continue
          }
          const upload = new Upload({
            client,
            params: {Bucket: opts.bucket, Key: key, Body: Readable.from(counted(entry.body, task)), ContentLength: entry.file.size, Metadata},
            partSize,
            queueSize: concurrency,
            leavePartsOnError: false,
          })
          try {
            await upload.done()
          } catch (err) {
            throw s3Error(err, host, `upload ${key}`)
          }
          row('written')
        }
        await settle()
        const written = results.filter((r) => r.action === 'written').length
        task.done(`${written} written so far, ${results.length - written} already there`)
      } catch (err) {
        await Promise.allSettled(inflight)
        task.fail((err as Error).message)
        throw err
      }
    }
    if (opts.publicRead) {
      await allowPublicRead(client, opts.bucket, prefix, host)
      progress.info(`bucket policy of ${opts.bucket}: anyone may read ${publicResource(opts.bucket, prefix)}`)
    }
  } finally {
    client.destroy()
  }
  return {s3Endpoint: opts.endpoint, bucket: opts.bucket, prefix, ...totals(inLockOrder(lock, results, (p) => objectKey(prefix, p)))}
}

/** The objects --public-read opens: the prefix's, or the whole bucket's without one. */
export function publicResource(bucket: string, prefix: string): string {
  return `arn:aws:s3:::${bucket}/${prefix ? `${prefix}/` : ''}*`
}

const POLICY_SID = 'AirlockPublicRead'

/**
 * The bucket's policy with one statement (ours, by Sid) letting anyone
 * s3:GetObject under the prefix; every other statement is kept as it was.
 * A second prefix gets its own statement.
 */
export function publicReadPolicy(existing: string | undefined, bucket: string, prefix: string): string {
  const policy = existing ? (JSON.parse(existing) as {Version?: string; Statement?: unknown[]}) : {}
  const sid = prefix ? `${POLICY_SID}${prefix.replace(/[^A-Za-z0-9]/g, '')}` : POLICY_SID
  const statements = (Array.isArray(policy.Statement) ? policy.Statement : []).filter((st) => (st as {Sid?: string}).Sid !== sid)
  statements.push({Sid: sid, Effect: 'Allow', Principal: {AWS: ['*']}, Action: ['s3:GetObject'], Resource: [publicResource(bucket, prefix)]})
  return JSON.stringify({Version: policy.Version ?? '2012-10-17', Statement: statements})
}

async function allowPublicRead(client: S3Client, bucket: string, prefix: string, host: string): Promise<void> {
  let existing: string | undefined
  try {
    existing = (await client.send(new GetBucketPolicyCommand({Bucket: bucket}))).Policy
  } catch (err) {
    // No policy yet is the usual case.
    if (statusOf(err) !== 404) throw s3Error(err, host, `GET the bucket policy of ${bucket}`)
  }
  try {
    await client.send(new PutBucketPolicyCommand({Bucket: bucket, Policy: publicReadPolicy(existing, bucket, prefix)}))
  } catch (err) {
    throw s3Error(err, host, `PUT a public-read bucket policy on ${bucket}`)
  }
}

/**
 * Multipart uploads an earlier, killed import left open (they hold storage
 * until aborted): those under the prefix for a key this bundle writes,
 * started before this run. Another writer's uploads for other keys are left alone.
 */
async function abortLeftUploads(client: S3Client, bucket: string, prefix: string, keys: Set<string>, host: string): Promise<string[]> {
  const started = Date.now()
  const aborted: string[] = []
  let keyMarker: string | undefined
  let uploadIdMarker: string | undefined
  for (;;) {
    let page
    try {
      page = await client.send(new ListMultipartUploadsCommand({Bucket: bucket, Prefix: prefix ? `${prefix}/` : undefined, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker}))
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

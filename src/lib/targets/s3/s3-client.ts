import http from 'node:http'
import https from 'node:https'

import {
  CreateBucketCommand,
  type CreateBucketCommandInput,
  HeadBucketCommand,
  HeadObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3'

import type {FileRef} from '../../content/roles.js'
import {AirlockError, FailureError, NetworkError, UsageError} from '../../errors.js'
import {proxyAgents, proxyFor} from '../../fetch/proxy.js'
import {type ConnectionOptions, suggestTrust, trustedCas} from '../../fetch/tls.js'
import {isLoopbackRegistry} from '../../oci/reference.js'
import {formatBytes} from '../../ui/format.js'
import type {Progress} from '../../ui/index.js'
import type {S3Credentials} from './s3-credentials.js'

/**
 * Reaching an S3 endpoint: the flags checked, the client built (TLS and
 * proxies as every other client, path-style), SDK answers turned into our
 * errors, the bucket made. Shared by import s3 and inventory s3.
 */

/** How to reach a bucket; what import s3 and inventory s3 both take. */
export interface S3TargetOptions extends ConnectionOptions {
  /** S3 endpoint URL, e.g. `http://127.0.0.1:7480`. */
  endpoint: string
  bucket: string
  /** Key prefix; slashes at either end are ignored. */
  prefix?: string
  region?: string
  createBucket?: boolean
  credentials: S3Credentials
  /** Uploads in flight (small objects) or parts in flight (one large object). Default 8. */
  concurrency?: number
  /** Multipart part size, and the largest object sent with one PUT. Default 8 MiB. */
  partSize?: number
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

export function statusOf(err: unknown): number | undefined {
  return (err as {$metadata?: {httpStatusCode?: number}})?.$metadata?.httpStatusCode
}

/** Map an SDK or socket error to one of ours; never includes credentials (the SDK's messages do not either). */
export function s3Error(err: unknown, host: string, what: string): AirlockError {
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
    return new FailureError(
      `${what}: ${host} answered ${status ?? ''} ${code}${e.message && e.message !== e.name ? `: ${e.message}` : ''}`.replace(
        /\s+/g,
        ' ',
      ),
      {
        suggestions: hint,
        cause: err,
      },
    )
  }
  const e = err as NodeJS.ErrnoException
  const net = new NetworkError(`${what}: ${host}: ${e?.code ?? ''} ${e?.message ?? String(err)}`.trim(), {
    host,
    cause: err,
  })
  suggestTrust(net, host, 'with --ca-file, or skip the check with --insecure')
  return net
}

export async function makeClient(opts: S3TargetOptions, concurrency: number): Promise<S3Client> {
  // The SDK warns on Node 20 about its own future releases; airlock supports Node >= 20 with the SDK it ships.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  const url = new URL(opts.endpoint)
  const ca = await trustedCas(opts.caFiles)
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
export function checkS3Target(
  opts: Pick<S3TargetOptions, 'endpoint' | 'bucket' | 'insecure' | 'partSize' | 'concurrency'>,
): URL {
  let url: URL
  try {
    url = new URL(opts.endpoint)
  } catch {
    throw new UsageError(
      `--endpoint ${opts.endpoint} is not a URL (e.g. https://s3.example.com or http://127.0.0.1:7480)`,
    )
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`--endpoint ${opts.endpoint}: only http:// and https:// are supported`)
  if (url.username || url.password)
    throw new UsageError(
      '--endpoint must not carry credentials; use --access-key/--secret-key, the environment or ~/.aws/credentials',
    )
  if (url.protocol === 'http:' && !opts.insecure && !isLoopbackRegistry(url.host)) {
    throw new UsageError(
      `--endpoint ${opts.endpoint} is plain HTTP; add --insecure to allow it for a host that is not loopback`,
    )
  }
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(opts.bucket))
    throw new UsageError(`--bucket ${opts.bucket} is not a valid bucket name`)
  if (opts.partSize !== undefined && opts.partSize < MIN_PART_SIZE)
    throw new UsageError(`part size must be at least ${formatBytes(MIN_PART_SIZE)}`)
  if (opts.concurrency !== undefined && (!Number.isInteger(opts.concurrency) || opts.concurrency < 1))
    throw new UsageError('--concurrency must be at least 1')
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
  return region === 'us-east-1'
    ? {Bucket: bucket}
    : {Bucket: bucket, CreateBucketConfiguration: {LocationConstraint: region as never}}
}

export async function ensureBucket(
  client: S3Client,
  opts: Pick<S3TargetOptions, 'bucket' | 'createBucket' | 'region'>,
  host: string,
  progress: Progress,
): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({Bucket: opts.bucket}))
    return
  } catch (err) {
    if (statusOf(err) !== 404) throw s3Error(err, host, `bucket ${opts.bucket}`)
  }
  if (!opts.createBucket) {
    throw new FailureError(`bucket ${opts.bucket} does not exist on ${host}`, {
      suggestions: ['add --create-bucket to create it'],
    })
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
export async function objectHolds(
  client: S3Client,
  bucket: string,
  key: string,
  file: Pick<FileRef, 'size' | 'sha256'>,
  host: string,
): Promise<boolean> {
  try {
    const head = await client.send(new HeadObjectCommand({Bucket: bucket, Key: key}))
    return head.ContentLength === file.size && head.Metadata?.sha256 === file.sha256
  } catch (err) {
    // No such object, or (checking a delta against an empty store) no such bucket yet.
    if (statusOf(err) === 404) return false
    throw s3Error(err, host, `HEAD ${key}`)
  }
}

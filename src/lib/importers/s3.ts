import {GetBucketPolicyCommand, PutBucketPolicyCommand, type S3Client} from '@aws-sdk/client-s3'

import {openBundle} from '../bundle/format/open-bundle.js'
import {digestHex, sha256Digest} from '../content/digest.js'
import {DEFAULT_CONCURRENCY} from '../defaults.js'
import {
  bucketUrl,
  checkS3Target,
  makeClient,
  normalizePrefix,
  objectKey,
  s3Error,
  type S3TargetOptions,
  statusOf,
} from '../targets/s3/s3-client.js'
import {S3Sink} from '../targets/s3/s3-sink.js'
import {type Progress, silentProgress} from '../ui/index.js'
import {importFiles} from './file-import.js'
import {type OsSourceFile, osSourceFiles} from './os-sources.js'
import type {ImportTotals} from './result.js'
import {verifyBeforeImport} from './verify-first.js'

export interface S3ImportOptions extends S3TargetOptions {
  /** Set a bucket policy letting anyone GET objects under the prefix (an installer fetching over plain HTTP). */
  publicRead?: boolean
  progress?: Progress
  /** The URL the objects are read at (`<endpoint>/<bucket>[/<prefix>]` or --repo-endpoint), for the OS repositories' source files. */
  repoEndpoint?: string
}

export interface S3ImportResult extends ImportTotals {
  s3Endpoint: string
  bucket: string
  prefix: string
  /** A node's source file per OS repository, put beside it as an object. */
  osSources: OsSourceFile[]
}

/**
 * `import s3`: verify the bundle (objects are visible as soon as they are
 * complete, so nothing is put before the whole check passed), then turn each
 * file of both `.tar.gz` into the object `<prefix>/<path>` through an
 * `S3Sink`, streamed from the archive (nothing is extracted to disk).
 */
export async function importS3(dir: string, opts: S3ImportOptions): Promise<S3ImportResult> {
  const progress = opts.progress ?? silentProgress
  const host = checkS3Target(opts).host
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY
  const prefix = normalizePrefix(opts.prefix)
  // Opened after the target's own checks, so a usage mistake is named before a bundle problem.
  const bundle = await openBundle(dir)
  const {lock} = bundle
  await verifyBeforeImport(bundle, ['files', 'packages'], progress)
  if (opts.insecure) progress.warn(`--insecure: ${host} may be reached over plain HTTP or unverified TLS`)
  const client = await makeClient(opts, concurrency)
  try {
    const sinkOf = (paths: string[]) =>
      new S3Sink(client, {
        bucket: opts.bucket,
        createBucket: opts.createBucket,
        region: opts.region,
        prefix,
        host,
        concurrency,
        partSize: opts.partSize,
        keys: new Set(paths.map((p) => objectKey(prefix, p))),
        progress,
      })
    const result = await importFiles(bundle, sinkOf(lock.files.map((f) => f.path)), {progress, concurrency})
    // After the files: a source line only ever names a repository that is there.
    const osSources = osSourceFiles(lock, opts.repoEndpoint ?? bucketUrl(opts.endpoint, opts.bucket, prefix))
    if (osSources.length > 0) await putTexts(sinkOf(osSources.map((s) => s.path)), osSources)
    if (opts.publicRead) {
      await allowPublicRead(client, opts.bucket, prefix, host)
      progress.info(`bucket policy of ${opts.bucket}: anyone may read ${publicResource(opts.bucket, prefix)}`)
    }
    return {s3Endpoint: opts.endpoint, bucket: opts.bucket, prefix, ...result, osSources}
  } finally {
    client.destroy()
  }
}

async function* once(bytes: Buffer): AsyncIterable<Buffer> {
  yield bytes
}

/** Small files made by the import (not from the bundle) put through the same sink: each object with its sha256, one already there skipped. */
async function putTexts(sink: S3Sink, files: {path: string; text: string}[]): Promise<void> {
  try {
    await sink.open()
    for (const f of files) {
      const bytes = Buffer.from(f.text)
      await sink.put({path: f.path, size: bytes.length, sha256: digestHex(sha256Digest(bytes))}, once(bytes), {
        executable: false,
        onBytes: () => {},
        onStored: () => {},
      })
    }
    await sink.commit()
  } catch (err) {
    await sink.abort()
    throw err
  }
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
  const statements = (Array.isArray(policy.Statement) ? policy.Statement : []).filter(
    (st) => (st as {Sid?: string}).Sid !== sid,
  )
  statements.push({
    Sid: sid,
    Effect: 'Allow',
    Principal: {AWS: ['*']},
    Action: ['s3:GetObject'],
    Resource: [publicResource(bucket, prefix)],
  })
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

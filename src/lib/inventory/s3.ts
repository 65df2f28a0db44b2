import {DEFAULT_CONCURRENCY} from '../defaults.js'
import {filesHeld} from '../targets/holds.js'
import {checkS3Target, makeClient, normalizePrefix, type S3TargetOptions} from '../targets/s3/s3-client.js'
import {S3Sink} from '../targets/s3/s3-sink.js'
import {type Progress, silentProgress} from '../ui/progress.js'
import {plural} from '../ui/table.js'
import {inventoryLock, type InventoryResult, readInventoryLock, writeInventory} from './inventory.js'

/**
 * An S3 bucket, with import s3's flags: each file of the lock held as
 * `<prefix>/<path>` with its size and `x-amz-meta-sha256` (HEAD only), by
 * the same `has` the import skips with. Kept apart from inventory.ts so
 * that the AWS SDK loads only for s3.
 */
export async function inventoryS3(
  opts: Pick<
    S3TargetOptions,
    'endpoint' | 'bucket' | 'prefix' | 'region' | 'caFiles' | 'insecure' | 'credentials' | 'concurrency'
  > & {lock: string; out: string; progress?: Progress},
): Promise<InventoryResult> {
  const progress = opts.progress ?? silentProgress
  const host = checkS3Target(opts).host
  const lock = await readInventoryLock(opts.lock)
  if (opts.insecure) progress.warn(`--insecure: ${host} may be reached over plain HTTP or unverified TLS`)
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY
  const client = await makeClient(opts, concurrency)
  try {
    const sink = new S3Sink(client, {bucket: opts.bucket, prefix: normalizePrefix(opts.prefix), host, concurrency})
    const task = progress.task(`inventory of ${opts.bucket} at ${host}`, lock.files.length)
    const held = await filesHeld(
      lock.files,
      async (f) => {
        const ok = await sink.has(f)
        task.advance(1)
        return ok
      },
      concurrency,
    )
    const result = await writeInventory(
      opts.out,
      inventoryLock(lock, new Set(), new Set(), held),
      `${host}/${opts.bucket}`,
      lock,
    )
    task.done(`${result.counts.files}/${plural(result.counts.filesInLock, 'file')} held`)
    return result
  } finally {
    client.destroy()
  }
}

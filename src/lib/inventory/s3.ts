import {DEFAULT_CONCURRENCY} from '../defaults.js'
import {filesHeld} from '../importers/holds.js'
import {checkS3Target, makeClient, normalizePrefix, objectHolds, objectKey, type S3ImportOptions} from '../importers/s3.js'
import {silentProgress} from '../ui/progress.js'
import {type InventoryResult, inventoryLock, readInventoryLock, writeInventory} from './inventory.js'

/**
 * An S3 bucket, with import s3's flags: each file of the lock held as
 * `<prefix>/<path>` with its size and `x-amz-meta-sha256` (HEAD only).
 * Kept apart from inventory.ts so that the AWS SDK loads only for s3.
 */
export async function inventoryS3(
  opts: Pick<S3ImportOptions, 'endpoint' | 'bucket' | 'prefix' | 'region' | 'caFile' | 'insecure' | 'credentials' | 'concurrency' | 'progress'> & {lock: string; out: string},
): Promise<InventoryResult> {
  const progress = opts.progress ?? silentProgress
  const host = checkS3Target(opts).host
  const prefix = normalizePrefix(opts.prefix)
  const lock = await readInventoryLock(opts.lock)
  if (opts.insecure) progress.warn(`--insecure: ${host} may be reached over plain HTTP or unverified TLS`)
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY
  const client = await makeClient(opts as S3ImportOptions, concurrency)
  try {
    const task = progress.task(`inventory of ${opts.bucket} at ${host}`, lock.files.length)
    const held = await filesHeld(
      lock.files,
      async (f) => {
        const ok = await objectHolds(client, opts.bucket, objectKey(prefix, f.path), f, host)
        task.advance(1)
        return ok
      },
      concurrency,
    )
    const result = await writeInventory(opts.out, inventoryLock(lock, new Set(), new Set(), held), `${host}/${opts.bucket}`, lock)
    task.done(`${result.counts.files}/${result.counts.filesInLock} file(s) held`)
    return result
  } finally {
    client.destroy()
  }
}

import {readFile, stat} from 'node:fs/promises'

import {openBundleFolder} from '../bundle/format/bundle-folder.js'
import {parseBundleLock} from '../bundle/format/read-lock.js'
import type {BundleLock, LockBlob, LockFile} from '../bundle-json.js'
import type {Descriptor} from '../content/descriptor.js'
import {DEFAULT_CONCURRENCY} from '../defaults.js'
import {BundleError, UsageError} from '../errors.js'
import {walkGraph} from '../graph/walk.js'
import {writeFileAtomic} from '../store/atomic.js'
import {filesHeld} from '../targets/holds.js'
import {RegistryHolds} from '../targets/registry/registry-holds.js'
import {type RegistryTargetOptions, targetClient} from '../targets/registry/registry-sink.js'
import {checkTargetOptions, planTargets} from '../targets/registry/registry-target.js'
import {RootSink} from '../targets/root/root-sink.js'
import {type Progress, silentProgress} from '../ui/progress.js'
import type {CommandResult} from '../ui/result.js'
import {plural} from '../ui/table.js'

/**
 * `airlock inventory`: which of a lock's images, manifests, blobs and files
 * a target already holds, read only (HEAD requests, files read from disk).
 * The result has bundle.json's shape, lists only what the target holds, and
 * is a base for `bundle --since` on the bastion.
 */

/** What the target holds, counted against the lock, and listed (an image by ref, a blob by digest, a file by path). */
export interface InventoryResult extends CommandResult<
  {kind: 'image' | 'blob' | 'file'; id: string; size: number},
  {images: number; blobs: number; files: number; imagesInLock: number; blobsInLock: number; filesInLock: number}
> {
  out: string
  target: string
}

/** The lock to check: a bundle folder or its bundle.json (an inventory file works too). */
export async function readInventoryLock(path: string): Promise<BundleLock> {
  const st = await stat(path).catch(() => undefined)
  if (!st) throw new UsageError(`--lock ${path}: no such file or bundle folder`)
  if (st.isDirectory()) return (await openBundleFolder(path)).lock
  try {
    return parseBundleLock(await readFile(path, 'utf8'), path)
  } catch (err) {
    if (err instanceof BundleError) throw err
    throw new UsageError(`--lock ${path}: ${(err as Error).message}`)
  }
}

/** What the target holds of `lock`, as a lock: images and files held, every blob and manifest held. */
export function inventoryLock(
  lock: BundleLock,
  images: Set<string>,
  blobs: Set<string>,
  files: Set<LockFile>,
): BundleLock {
  return {
    apiVersion: 'airlock/v1',
    name: lock.name,
    ...(lock.version === undefined ? {} : {version: lock.version}),
    images: lock.images.filter((i) => images.has(i.ref)),
    files: lock.files.filter((f) => files.has(f)).map(({fromBase: _, ...f}) => f),
    blobs: (lock.blobs ?? []).filter((b) => blobs.has(b.digest)).map(({fromBase: _, ...b}) => b),
  }
}

export async function writeInventory(
  out: string,
  lock: BundleLock,
  target: string,
  of: BundleLock,
): Promise<InventoryResult> {
  await writeFileAtomic(out, `${JSON.stringify(lock, null, 2)}\n`)
  return {
    out,
    target,
    counts: {
      images: lock.images.length,
      blobs: lock.blobs?.length ?? 0,
      files: lock.files.length,
      imagesInLock: of.images.length,
      blobsInLock: of.blobs?.length ?? 0,
      filesInLock: of.files.length,
    },
    items: [
      ...lock.images.map((i) => ({kind: 'image' as const, id: i.ref, size: i.size})),
      ...(lock.blobs ?? []).map((b) => ({kind: 'blob' as const, id: b.digest, size: b.size})),
      ...lock.files.map((f) => ({kind: 'file' as const, id: f.path, size: f.size})),
    ],
  }
}

export interface RegistryInventoryOptions extends RegistryTargetOptions {
  lock: string
  out: string
  concurrency?: number
  progress?: Progress
}

/**
 * A registry, with import registry's naming (namespace, keep-registry-host,
 * --map, --max-path-depth):
 * an image is held when its manifest is in its target repository (with all
 * it points to: a registry refuses a manifest without its blobs, so the
 * manifests there are read to list them); any other blob or manifest of the
 * lock is held when some target repository has it (an import mounts it).
 */
export async function inventoryRegistry(opts: RegistryInventoryOptions): Promise<InventoryResult> {
  const progress = opts.progress ?? silentProgress
  const target = checkTargetOptions(opts)
  const lock = await readInventoryLock(opts.lock)
  const client = targetClient(target.registry, opts, progress)
  await client.request({path: '/v2/', what: 'the API version check (GET /v2/)'})
  const holds = new RegistryHolds(client, opts.concurrency ?? DEFAULT_CONCURRENCY)
  const images = new Set<string>()
  const blobs = new Set<string>()
  const task = progress.task(`inventory of ${target.registry}`, lock.images.length + (lock.blobs?.length ?? 0))
  const repositories = planTargets(lock.images, target).map((t) => t.repository)
  // Everything under a manifest the repository has is there too (the registry checked it on PUT): listed from the manifests, no HEAD each.
  const all = (repository: string, root: Descriptor): Promise<void> =>
    walkGraph(
      root,
      repository,
      {
        visit: (d, _at, edge) => {
          if (edge?.optional || edge?.role === 'subject') return false
          blobs.add(d.digest)
          return true
        },
        bytes: async (d) => (await client.getManifest(repository, d.digest)).bytes,
        invalid: () => {},
        label: (at) => at,
      },
      {parallel: true},
    )
  await Promise.all(
    lock.images.map(async (img, n) => {
      const repository = repositories[n]
      if (await holds.holds(repository, {digest: img.digest, size: 0, mediaType: img.mediaType})) {
        images.add(img.ref)
        await all(repository, {digest: img.digest, mediaType: img.mediaType, size: 0})
      }
      task.advance(1)
    }),
  )
  const unique = [...new Set(repositories)]
  await Promise.all(
    (lock.blobs ?? []).map(async (b: LockBlob) => {
      if (!blobs.has(b.digest)) {
        for (const r of unique) {
          if (await holds.holds(r, b)) {
            blobs.add(b.digest)
            break
          }
        }
      }
      task.advance(1)
    }),
  )
  const result = await writeInventory(opts.out, inventoryLock(lock, images, blobs, new Set()), target.registry, lock)
  task.done(
    `${result.counts.images}/${plural(result.counts.imagesInLock, 'image')}, ${result.counts.blobs}/${plural(result.counts.blobsInLock, 'blob')} held`,
  )
  return result
}

/** A web server root: each file of the lock held at its mirrored path with its size and sha256. */
export async function inventoryNginx(opts: {
  root: string
  lock: string
  out: string
  concurrency?: number
  progress?: Progress
}): Promise<InventoryResult> {
  const progress = opts.progress ?? silentProgress
  const lock = await readInventoryLock(opts.lock)
  const task = progress.task(`inventory of ${opts.root}`, lock.files.length)
  // The same `has` import nginx skips with.
  const sink = new RootSink(opts.root)
  const held = await filesHeld(
    lock.files,
    async (f) => {
      const ok = await sink.has(f)
      task.advance(1)
      return ok
    },
    opts.concurrency ?? DEFAULT_CONCURRENCY,
  )
  const result = await writeInventory(opts.out, inventoryLock(lock, new Set(), new Set(), held), opts.root, lock)
  task.done(`${result.counts.files}/${plural(result.counts.filesInLock, 'file')} held`)
  return result
}

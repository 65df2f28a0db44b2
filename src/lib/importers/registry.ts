import {bundlePartPaths} from '../bundle/format/parts.js'
import {BUNDLE_FILES} from '../bundle/format/bundle-files.js'
import {isDelta} from '../bundle/format/delta.js'
import {DEFAULT_CONCURRENCY} from '../defaults.js'
import {UsageError} from '../errors.js'
import {OciArchive} from '../oci/archive.js'
import type {BundleLock, LockImage} from '../bundle-json.js'
import {type Progress, silentProgress} from '../ui/progress.js'
import {checkTargetOptions} from '../targets/registry/registry-target.js'
import {pushArchive, type RegistryImportOptions, type RegistryImportResult} from './push-archive.js'
import {verifyBeforeImport} from './verify-first.js'

export type {ImportedImage, RegistryImportOptions, RegistryImportResult} from './push-archive.js'
export type {PushStats} from '../targets/registry/registry-sink.js'

/**
 * Verify the bundle, map every image to its target, and (unless dry-run)
 * push them all: one `concurrency`-wide pool of blob uploads across every
 * image, manifests after their blobs, an index after its manifests, the tag
 * last.
 */
export async function importRegistry(dir: string, options: RegistryImportOptions): Promise<RegistryImportResult> {
  const progress = options.progress ?? silentProgress
  const target = checkTargetOptions(options)
  const opts = {...options, ...target}
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError(`--concurrency must be a positive whole number, got ${concurrency}`)
  const {images, delta} = await verifiedImages(dir, progress)
  const archive = await OciArchive.open(await bundlePartPaths(dir, BUNDLE_FILES.images))
  try {
    return await pushArchive(archive, images, {...opts, concurrency, progress}, delta)
  } finally {
    await archive.close()
  }
}

/**
 * The verified bundle's images, and its whole lock only when it is a delta
 * (whose check needs `blobs`): a lock of thousands of images lists every
 * blob, which the push has no use for.
 */
async function verifiedImages(dir: string, progress: Progress): Promise<{images: LockImage[]; delta?: BundleLock}> {
  const lock = await verifyBeforeImport(dir, ['images'], progress)
  return isDelta(lock) ? {images: lock.images, delta: lock} : {images: lock.images}
}

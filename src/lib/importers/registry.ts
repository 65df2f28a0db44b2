import {BUNDLE_FILES} from '../bundle/format/bundle-files.js'
import {isDelta} from '../bundle/format/delta.js'
import {type Bundle, openBundle} from '../bundle/format/open-bundle.js'
import type {BundleLock, LockImage} from '../bundle-json.js'
import {DEFAULT_CONCURRENCY} from '../defaults.js'
import {UsageError} from '../errors.js'
import {OciArchive} from '../oci/archive.js'
import {checkTargetOptions} from '../targets/registry/registry-target.js'
import {type Progress, silentProgress} from '../ui/progress.js'
import {pushArchive, type RegistryImportOptions, type RegistryImportResult} from './push-archive.js'
import {verifyBeforeImport} from './verify-first.js'

export type {PushStats} from '../targets/registry/registry-sink.js'
export type {ImportedImage, RegistryImportOptions, RegistryImportResult} from './push-archive.js'

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
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new UsageError(`--concurrency must be a positive whole number, got ${concurrency}`)
  // Opened after the target's own checks, so a usage mistake is named before a bundle problem.
  const {images, delta, parts} = await verifiedImages(await openBundle(dir), progress)
  const archive = await OciArchive.open(parts)
  try {
    return await pushArchive(archive, images, {...opts, concurrency, progress}, delta)
  } finally {
    await archive.close()
  }
}

/**
 * The verified bundle's images and the parts of its oci-archive, and its
 * whole lock only when it is a delta (whose check needs `blobs`): a lock of
 * thousands of images lists every blob, which the push has no use for, so
 * the bundle itself is not kept.
 */
async function verifiedImages(
  bundle: Bundle,
  progress: Progress,
): Promise<{images: LockImage[]; delta?: BundleLock; parts: string[]}> {
  await verifyBeforeImport(bundle, ['images'], progress)
  const {lock} = bundle
  const parts = await bundle.parts(BUNDLE_FILES.images)
  return isDelta(lock) ? {images: lock.images, delta: lock, parts} : {images: lock.images, parts}
}

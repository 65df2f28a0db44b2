import type {BundleLock} from '../../bundle-json.js'
import {OciArchiveWriter} from '../../oci/archive-writer.js'
import {OciLayoutSource} from '../../oci/layout.js'
import type {Store} from '../../store/store.js'
import type {ImagesPlan} from './plan.js'

/**
 * offline-images.tar, written from the plan: every digest of `lock.blobs`
 * (the plan walked each image's graph in the store and checked each blob is
 * there with its size), each planned image tagged with its ref, then the
 * referrers. What a delta's bases hold stays out. No copy runs first: each
 * manifest and blob is read from the store once more, when the tar reaches
 * it, and checked against its digest as it flows, so a store changed since
 * the plan still fails the bundle.
 */
export function imagesArchive(store: Store, plan: ImagesPlan, lock: BundleLock, mtime: number): OciArchiveWriter {
  const archive = new OciArchiveWriter({mtime, holds: plan.fromBase, source: new OciLayoutSource(store.images)})
  for (const b of lock.blobs ?? []) {
    archive.note(
      {mediaType: b.mediaType, digest: b.digest, size: b.size},
      `blob ${b.digest} of ${plan.labels.get(b.digest) ?? 'the bundle'}`,
    )
  }
  for (const i of plan.images) archive.tag(i.ref, i.desc)
  for (const r of plan.referrers) archive.addReferrer(r)
  return archive
}

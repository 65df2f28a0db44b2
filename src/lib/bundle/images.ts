import pLimit from 'p-limit'

import {Copier} from '../copy.js'
import {DEFAULT_CONCURRENCY} from '../defaults.js'
import {ArchiveImageSink} from '../oci/archive-sink.js'
import {OciLayoutSource} from '../oci/layout.js'
import type {Store} from '../store/store.js'
import type {ImagesPlan} from './plan.js'

/**
 * offline-images.tar as a copy: every planned image (tagged with its ref)
 * and referrer copied by the Copier from the store's OCI layout into an
 * oci-archive sink, which then streams the tar in its fixed order. What a
 * delta's bases hold the sink already has, so the copy skips it; a foreign
 * layer goes in where the store holds one, as the plan listed it.
 */
export async function copyImagesToArchive(store: Store, plan: ImagesPlan, mtime: number): Promise<ArchiveImageSink> {
  const source = new OciLayoutSource(store.images)
  // The store serves every digest again when the tar reaches it: the sink keeps descriptors, not bytes.
  const sink = new ArchiveImageSink({mtime, holds: plan.fromBase, source})
  const copier = new Copier({
    sink,
    pool: pLimit(DEFAULT_CONCURRENCY),
    concurrency: DEFAULT_CONCURRENCY,
    copyForeign: (d) => plan.digests.has(d.digest),
  })
  // Roots a few at a time (their manifests are read from disk); the sink orders what it gets.
  const limit = pLimit(DEFAULT_CONCURRENCY)
  const roots = [
    ...plan.images.map((i) => ({desc: i.desc, refs: [i.ref], label: i.ref})),
    ...plan.referrers.map((r) => ({desc: {mediaType: r.mediaType, digest: r.digest, size: r.size}, refs: [], label: `referrer ${r.digest}`})),
  ]
  await Promise.all(
    roots.map((r) =>
      limit(async () => {
        const bytes = await source.fetchManifest(r.desc)
        await copier.copyImage({source, root: {bytes, mediaType: r.desc.mediaType, digest: r.desc.digest}, refs: r.refs, label: r.label})
      }),
    ),
  )
  for (const r of plan.referrers) sink.addReferrer(r)
  return sink
}

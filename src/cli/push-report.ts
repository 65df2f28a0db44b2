import type {PushStats} from '../lib/targets/registry/registry-sink.js'
import {formatBytes} from '../lib/ui/format.js'
import {plural} from '../lib/ui/table.js'

/** What every push to a registry reports (`import registry`, `mirror`): its result's counts. */
export type PushCounts = {
  images: number
  /** Signatures, attestations, SBOMs pushed with the images. */
  referrers: number
  blobsUploaded: number
  blobsMounted: number
  blobsPresent: number
  bytesUploaded: number
  manifestsPushed: number
}

export function pushCounts(images: number, referrers: number, st: PushStats): PushCounts {
  return {
    images,
    referrers,
    blobsUploaded: st.uploaded,
    blobsMounted: st.mounted,
    blobsPresent: st.present,
    bytesUploaded: st.bytesUploaded,
    manifestsPushed: st.manifestsPushed,
  }
}

/** The `total:` line of a push; `verb` is what a dry run would have done (`pushed`, `copied`). */
export function pushTotalLine(registry: string, c: PushCounts, dryRun: boolean, verb: string): string {
  return dryRun
    ? `total: ${plural(c.images, 'image')} would be ${verb} to ${registry} (dry run: nothing was ${verb})`
    : `total: ${plural(c.images, 'image')}${c.referrers > 0 ? ` and ${plural(c.referrers, 'referrer')}` : ''} in ${registry}: ${plural(c.blobsUploaded, 'blob')} uploaded (${formatBytes(c.bytesUploaded)}), ${c.blobsMounted} mounted, ${c.blobsPresent} already there; ${plural(c.manifestsPushed, 'manifest')} pushed`
}

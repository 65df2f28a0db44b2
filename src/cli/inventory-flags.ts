import {Flags} from '@oclif/core'

import type {InventoryResult} from '../lib/inventory/inventory.js'
import {plural} from '../lib/ui/table.js'

/**
 * What the three `inventory` commands share, beside target-flags.ts (which
 * names their targets): the lock they check against, the file they write,
 * and the line they print.
 */
export const inventoryFlags = {
  lock: Flags.string({description: 'The lock to check against: a bundle folder or its bundle.json.', required: true}),
  out: Flags.string({
    description: 'Inventory file to write (bundle.json shape, listing only what the target holds).',
    required: true,
  }),
}

export function printInventory(r: InventoryResult, out: (line: string) => void): void {
  const c = r.counts
  out(
    `total: ${r.target} holds ${c.images}/${plural(c.imagesInLock, 'image')}, ${c.blobs}/${plural(c.blobsInLock, 'blob')} (manifests included), ${c.files}/${plural(c.filesInLock, 'file')} of the lock -> ${r.out}`,
  )
}

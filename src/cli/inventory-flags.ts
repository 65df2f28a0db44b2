import {Flags} from '@oclif/core'

import type {InventoryResult} from '../lib/inventory/inventory.js'

/**
 * What the three `inventory` commands share, beside target-flags.ts (which
 * names their targets): the lock they check against, the file they write,
 * and the line they print.
 */
export const inventoryFlags = {
  lock: Flags.string({description: 'The lock to check against: a bundle folder or its bundle.json.', required: true}),
  out: Flags.string({description: 'Inventory file to write (bundle.json shape, listing only what the target holds).', required: true}),
}

export function printInventory(r: InventoryResult, out: (line: string) => void): void {
  const c = r.counts
  out(`total: ${r.target} holds ${c.images}/${c.imagesInLock} image(s), ${c.blobs}/${c.blobsInLock} blob(s) and manifest(s), ${c.files}/${c.filesInLock} file(s) of the lock -> ${r.out}`)
}

import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {inventoryFlags, printInventory} from '../../cli/inventory-flags.js'
import {registryTargetFlags, registryTargetOptions} from '../../cli/target-flags.js'
import {DEFAULT_CONCURRENCY} from '../../lib/defaults.js'
import {inventoryRegistry, type InventoryResult} from '../../lib/inventory/inventory.js'

export default class InventoryRegistry extends BaseCommand<typeof InventoryRegistry> {
  static override description =
    "Record which of a lock's images, manifests and blobs a registry already holds (HEAD requests; nothing is written to the registry), as a file `bundle --since` takes. Repositories are named as import registry names them."

  static override examples = [
    '<%= config.bin %> inventory registry --registry registry.local:5000 --lock ./bundle-v2/bundle.json --out have-registry.json',
    '<%= config.bin %> inventory registry --registry registry.local --namespace mirror --lock bundle.json --out have.json --ca-file ca.crt',
  ]

  static override flags = {
    ...inventoryFlags,
    ...registryTargetFlags,
    concurrency: Flags.integer({description: 'HEAD requests at once.', default: DEFAULT_CONCURRENCY, min: 1, max: 256}),
  }

  async run(): Promise<InventoryResult> {
    const f = this.flags
    const r = await inventoryRegistry({
      ...(await registryTargetOptions(f)),
      concurrency: f.concurrency,
      lock: f.lock,
      out: f.out,
      progress: this.progress,
    })
    printInventory(r, (l) => this.out(l))
    return r
  }
}

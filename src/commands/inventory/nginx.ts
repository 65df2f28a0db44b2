import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {inventoryFlags, printInventory} from '../../cli/inventory-flags.js'
import {DEFAULT_CONCURRENCY} from '../../lib/defaults.js'
import {inventoryNginx, type InventoryResult} from '../../lib/inventory/inventory.js'

export default class InventoryNginx extends BaseCommand<typeof InventoryNginx> {
  static override description =
    "Record which of a lock's files a web server root already holds (same path, size and sha256; only reads), as a file `bundle --since` takes."

  static override examples = [
    '<%= config.bin %> inventory nginx --root /usr/share/nginx/html --lock ./bundle-v2/bundle.json --out have-nginx.json',
  ]

  static override flags = {
    ...inventoryFlags,
    root: Flags.directory({
      description: 'Web server document root, as given to import nginx.',
      required: true,
      exists: true,
    }),
    concurrency: Flags.integer({description: 'Files read at once.', default: DEFAULT_CONCURRENCY, min: 1, max: 64}),
  }

  async run(): Promise<InventoryResult> {
    const f = this.flags
    const r = await inventoryNginx({
      root: f.root,
      lock: f.lock,
      out: f.out,
      concurrency: f.concurrency,
      progress: this.progress,
    })
    printInventory(r, (l) => this.out(l))
    return r
  }
}

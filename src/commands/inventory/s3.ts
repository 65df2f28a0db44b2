import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {inventoryFlags, printInventory} from '../../cli/inventory-flags.js'
import {s3TargetFlags, s3TargetOptions} from '../../cli/target-flags.js'
import {DEFAULT_CONCURRENCY} from '../../lib/defaults.js'
import type {InventoryResult} from '../../lib/inventory/inventory.js'

export default class InventoryS3 extends BaseCommand<typeof InventoryS3> {
  static override description =
    "Record which of a lock's files an S3 bucket already holds (objects <prefix>/<path> with the same size and x-amz-meta-sha256; HEAD only), as a file `bundle --since` takes."

  static override examples = [
    '<%= config.bin %> inventory s3 --endpoint https://rgw.local:7480 --bucket offline --prefix k8s --lock ./bundle-v2/bundle.json --out have-s3.json',
  ]

  static override flags = {
    ...inventoryFlags,
    ...s3TargetFlags,
    bucket: Flags.string({description: 'Bucket, as given to import s3.', required: true}),
    prefix: Flags.string({description: 'Key prefix, as given to import s3.', default: ''}),
    concurrency: Flags.integer({description: 'HEAD requests at once.', default: DEFAULT_CONCURRENCY, min: 1}),
  }

  async run(): Promise<InventoryResult> {
    const f = this.flags
    // Loaded here: the AWS SDK would slow every other command's start.
    const {inventoryS3} = await import('../../lib/inventory/s3.js')
    const r = await inventoryS3({
      ...(await s3TargetOptions(f)),
      concurrency: f.concurrency,
      lock: f.lock,
      out: f.out,
      progress: this.progress,
    })
    printInventory(r, (l) => this.out(l))
    return r
  }
}

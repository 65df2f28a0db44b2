import {Args} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {verifyBundle} from '../lib/bundle/verify.js'
import {BundleError} from '../lib/errors.js'

export interface VerifyResult {
  ok: true
  bundle: string
  counts: {images: number; files: number; checked: number}
  /** Every file of the bundle folder that was read, with its sha256. */
  items: {name: string; sha256: string}[]
}

export default class Verify extends BaseCommand<typeof Verify> {
  static override description =
    'Check every checksum and digest in a bundle: SHA256SUMS, each archived file against bundle.json, every blob and manifest reference of the images. Lists every problem; exit 2 if there is any.'

  static override args = {
    bundle: Args.string({description: 'Bundle folder.', required: true}),
  }

  static override examples = ['<%= config.bin %> verify ./bundle', '<%= config.bin %> verify ./bundle --json']

  async run(): Promise<VerifyResult> {
    const report = await verifyBundle(this.args.bundle, {progress: this.progress})
    if (!report.ok) {
      // An invalid bundle is exit 2, as for every import that refuses it.
      const n = report.problems.length
      throw new BundleError(`${this.args.bundle}: the bundle failed verification (${n} problem${n === 1 ? '' : 's'})`, {details: report.problems})
    }
    const l = report.lock
    const result: VerifyResult = {
      ok: true,
      bundle: this.args.bundle,
      counts: {images: l.images.length, files: l.files.length, checked: report.files.length},
      items: report.files,
    }
    for (const f of report.files) this.out(`${f.sha256}  ${f.name}`)
    this.out(`${this.args.bundle}: OK (${l.images.length} image(s), ${l.files.length} file(s); ${report.files.length} bundle files checked)`)
    return result
  }
}

import {Args} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {verifyBundle} from '../lib/bundle/verify.js'

export interface VerifyResult {
  ok: boolean
  problems: string[]
}

export default class Verify extends BaseCommand<typeof Verify> {
  static override description =
    'Check every checksum and digest in a bundle: SHA256SUMS, each archived file against bundle.json, every blob and manifest reference of the images. Lists every problem; exit 1 if there is any.'

  static override args = {
    bundle: Args.string({description: 'Bundle folder.', required: true}),
  }

  static override examples = ['<%= config.bin %> verify ./bundle', '<%= config.bin %> verify ./bundle --json']

  async run(): Promise<VerifyResult> {
    const report = await verifyBundle(this.args.bundle, {progress: this.progress})
    const result: VerifyResult = {ok: report.ok, problems: report.problems}
    if (report.ok) {
      const l = report.lock
      this.out(`${this.args.bundle}: OK (${l.images.length} image(s), ${l.files.length} file(s))`)
    } else {
      for (const p of report.problems) this.out(p)
      this.out(`${this.args.bundle}: ${report.problems.length} problem(s)`)
      process.exitCode = 1
    }
    return result
  }
}

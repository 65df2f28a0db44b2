import {Args} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'

export default class Validate extends BaseCommand<typeof Validate> {
  static override description = 'Check a manifest and print a summary, or every problem with file:line:column.'
  static override args = {
    manifest: Args.string({description: 'Path of the manifest (YAML).', required: true}),
  }

  async run(): Promise<{valid: boolean}> {
    this.out(`TODO ${this.args.manifest}`)
    return {valid: true}
  }
}

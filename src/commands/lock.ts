import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {type LockResult, lockManifest} from '../lib/select/lock.js'
import {formatSelections} from '../lib/select/report.js'

export default class Lock extends BaseCommand<typeof Lock> {
  static override description =
    'Resolve every tag selection and every tag of a manifest to a digest and write the manifest back pinned (ref: host/repo:tag@sha256:...), comments and key order kept. Locking a locked manifest changes nothing.'

  static override args = {
    manifest: Args.string({description: 'Path of the manifest (YAML).', required: true}),
  }

  static override flags = {
    out: Flags.string({description: 'Write the locked manifest here instead of over MANIFEST.'}),
    concurrency: Flags.integer({description: 'Tag lists and digests read at once.', default: 8, min: 1, max: 256}),
    'ca-file': Flags.string({description: 'Extra trusted CA (PEM) for every host; repeatable.', multiple: true}),
    username: Flags.string({description: 'Registry username (else the Docker config, else anonymous).', dependsOn: ['password']}),
    password: Flags.string({description: 'Registry password or token.', dependsOn: ['username']}),
  }

  static override examples = ['<%= config.bin %> lock manifest.yaml', '<%= config.bin %> lock manifest.yaml --out manifest.lock.yaml']

  async run(): Promise<LockResult> {
    const f = this.flags
    const result = await lockManifest(this.args.manifest, {
      out: f.out,
      concurrency: f.concurrency,
      caFiles: f['ca-file'],
      username: f.username,
      password: f.password,
      progress: this.progress,
    })
    for (const l of formatSelections(result.selections, result.repositories)) this.out(l)
    for (const i of result.images) this.out(i.ref)
    this.out(result.changed ? `${result.out}: locked, ${result.images.length} image(s) pinned` : `${result.out}: already locked, nothing changed`)
    return result
  }
}

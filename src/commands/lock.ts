import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {DEFAULT_CONCURRENCY} from '../lib/defaults.js'
import {type LockResult, lockManifest} from '../lib/select/lock.js'
import {formatSelections} from '../lib/select/report.js'
import type {CommandResult} from '../lib/ui/result.js'
import {columns} from '../lib/ui/table.js'

/** lock's result: one item per image of the locked manifest (reference and digest), and the selection report. */
export interface LockCommandResult extends CommandResult<LockResult['images'][number], {images: number; selections: number}>, Omit<LockResult, 'images'> {}

export default class Lock extends BaseCommand<typeof Lock> {
  static override description =
    'Resolve every tag selection and every tag of a manifest to a digest and write the manifest back pinned (ref: host/repo:tag@sha256:...), comments and key order kept. Locking a locked manifest changes nothing.'

  static override args = {
    manifest: Args.string({description: 'Path of the manifest (YAML).', required: true}),
  }

  static override flags = {
    out: Flags.string({description: 'Write the locked manifest here instead of over MANIFEST.'}),
    concurrency: Flags.integer({description: 'Tag lists and digests read at once.', default: DEFAULT_CONCURRENCY, min: 1, max: 256}),
    'ca-file': Flags.string({description: 'Extra trusted CA (PEM) for every host; repeatable.', multiple: true}),
    username: Flags.string({description: 'Registry username (else the Docker config, else anonymous).', dependsOn: ['password']}),
    password: Flags.string({description: 'Registry password or token.', dependsOn: ['username']}),
  }

  static override examples = ['<%= config.bin %> lock manifest.yaml', '<%= config.bin %> lock manifest.yaml --out manifest.lock.yaml']

  async run(): Promise<LockCommandResult> {
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
    for (const l of columns(result.images.map((i) => [i.ref.replace(/@sha256:.*$/, ''), i.digest]))) this.out(l)
    this.out(result.changed ? `total: ${result.images.length} image(s) pinned in ${result.out}` : `total: ${result.images.length} image(s); ${result.out} was locked already, nothing changed`)
    const {images, ...rest} = result
    return {...rest, counts: {images: images.length, selections: result.selections.length}, items: images}
  }
}

import {Args} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {writeBundle} from '../lib/bundle/write/bundle.js'
import {parseSize} from '../lib/bundle/write/size.js'
import {loadManifest} from '../lib/manifest/load.js'
import {pull, resolvePullManifest} from '../lib/pull/pull.js'
import {plural} from '../lib/ui/table.js'
import {type BundleCommandResult, bundleFlags, bundleSignKey, bundleTools, printBundle} from './bundle.js'
import Pull, {type PullCommandResult, pullReport} from './pull.js'

/** build's result: the bundle's (counts, items: the files written), with pull's result beside it. */
export interface BuildResult extends BundleCommandResult {
  pull: PullCommandResult
}

function pullFlags() {
  const {'dry-run': _, ...flags} = Pull.flags
  return flags
}

export default class Build extends BaseCommand<typeof Build> {
  static override description =
    'Pull everything a manifest names into the store, then bundle exactly that (never other content the store holds).'

  static override args = {
    manifest: Args.string({description: 'Path of the manifest (YAML).', required: true}),
  }

  // The same flags as pull (one definition) but its --dry-run, plus where the bundle goes.
  static override flags = {
    ...pullFlags(),
    ...bundleFlags,
  }

  static override examples = [
    '<%= config.bin %> build manifest.yaml --out ./bundle',
    '<%= config.bin %> build manifest.yaml --store /data/store --out /media/usb/bundle --split 4G',
  ]

  protected override interruptNote(done: number, of: number): string {
    const store = this.flags.store
    return (
      `${done} of ${plural(of, 'item')} had finished and are kept in the store ${store}; partial downloads stay under ${store}/.tmp/. ` +
      'Nothing in the bundle folder was given its final name. Run the same command again to resume: finished items are not fetched again, partial ones go on where they stopped (HTTP Range).'
    )
  }

  async run(): Promise<BuildResult> {
    const f = this.flags
    const options = await Pull.pullOptions(f, this.progress)
    // Checked before pulling, so a typo does not cost a download.
    const split = f.split === undefined ? undefined : parseSize(f.split)
    const loaded = await loadManifest(this.args.manifest)
    const signKey = await bundleSignKey(f)
    const tools = await bundleTools(f, this.progress)
    // Selections resolved once: the bundle takes exactly the tags this pull took.
    const {manifest, resolution} = await resolvePullManifest(loaded, options)
    const pulled = pullReport({
      ...(await pull(manifest, options)),
      ...(resolution ? {selections: resolution.selections, repositories: resolution.repositories} : {}),
    })
    for (const l of pulled.lines) this.out(l)
    // Only what this manifest names: the store may hold other manifests' content.
    const bundle = await writeBundle({
      store: f.store,
      out: f.out,
      split,
      concurrency: f.concurrency,
      tools,
      progress: this.progress,
      manifest,
      since: f.since,
      signKey,
    })
    this.out('')
    return {...printBundle(bundle, (l) => this.out(l)), pull: pulled.result}
  }
}

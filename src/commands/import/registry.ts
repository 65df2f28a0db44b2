import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {bundleKeyFlags, checkBundleKey} from '../../cli/bundle-key-flags.js'
import {type PushCounts, pushCounts, pushTotalLine} from '../../cli/push-report.js'
import {mirrorConfigFlag, registryTargetFlags, registryTargetOptions} from '../../cli/target-flags.js'
import {DEFAULT_CONCURRENCY} from '../../lib/defaults.js'
import {type ImportedImage, importRegistry} from '../../lib/importers/registry.js'
import type {CommandResult} from '../../lib/ui/result.js'
import {plural} from '../../lib/ui/table.js'

/** import registry's result: one item per image (source -> target, digest) and what the push did. */
export interface ImportRegistryResult extends CommandResult<ImportedImage, PushCounts> {
  registry: string
  dryRun: boolean
  /** The files --mirror-config wrote (null without it). */
  mirrorConfig: string[] | null
}

export default class ImportRegistry extends BaseCommand<typeof ImportRegistry> {
  static override description =
    'Push every image of a bundle into a registry, straight out of offline-images.tar: tags and digests kept byte for byte, multi-arch indexes included.'

  static override examples = [
    '<%= config.bin %> import registry ./bundle --registry registry.local:5000',
    'printf %s "$REGISTRY_PASSWORD" | <%= config.bin %> import registry ./bundle --registry registry.local --namespace mirror --ca-file ca.crt --username admin --password-stdin',
    '<%= config.bin %> import registry ./bundle --registry registry.local --keep-registry-host --dry-run',
  ]

  static override args = {
    bundle: Args.directory({
      description: 'Bundle folder (bundle.json, SHA256SUMS, offline-images.tar).',
      required: true,
    }),
  }

  static override flags = {
    ...bundleKeyFlags,
    ...registryTargetFlags,
    ...mirrorConfigFlag,
    concurrency: Flags.integer({
      description: 'Blob uploads at once, across all images.',
      default: DEFAULT_CONCURRENCY,
      min: 1,
      max: 256,
    }),
    'dry-run': Flags.boolean({description: 'Verify the bundle and print the mapping; push nothing.'}),
  }

  protected override interruptNote(done: number, of: number): string {
    return `${done} of ${plural(of, 'image')} had been pushed; blobs and manifests already in the registry stay there. Run the same command again to resume: what the registry has is skipped.`
  }

  async run(): Promise<ImportRegistryResult> {
    await checkBundleKey(this.args.bundle, this.flags['bundle-key'])
    const f = this.flags
    const r = await importRegistry(this.args.bundle, {
      ...(await registryTargetOptions(f)),
      concurrency: f.concurrency,
      dryRun: f['dry-run'],
      mirrorConfig: f['dry-run'] ? undefined : f['mirror-config'],
      progress: this.progress,
    })
    if (f['dry-run'] && f['mirror-config'] !== undefined)
      this.progress.warn(`dry run: nothing written to --mirror-config ${f['mirror-config']}`)
    for (const file of r.mirrorConfig ?? []) this.progress.info(`wrote ${file}`)
    // One `source -> target` line per image, as the contract words the mapping.
    for (const i of r.images) this.out(`${i.source} -> ${i.target}`)
    const counts = pushCounts(
      r.images.length,
      r.images.reduce((n, i) => n + i.referrers, 0),
      r.stats,
    )
    this.out(pushTotalLine(f.registry, counts, Boolean(f['dry-run']), 'pushed'))
    return {
      registry: f.registry,
      dryRun: Boolean(f['dry-run']),
      mirrorConfig: r.mirrorConfig ?? null,
      counts,
      items: r.images,
    }
  }
}

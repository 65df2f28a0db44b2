import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {type PushCounts, pushCounts, pushTotalLine} from '../cli/push-report.js'
import {loginFlags, mirrorConfigFlag, registryTargetFlags, registryTargetOptions} from '../cli/target-flags.js'
import {DEFAULT_CONCURRENCY} from '../lib/defaults.js'
import {UsageError} from '../lib/errors.js'
import {loadManifest} from '../lib/manifest/load.js'
import {mirror, type MirroredImage} from '../lib/mirror/mirror.js'
import {PLATFORM_HINT, PLATFORM_RE} from '../lib/oci/platform.js'
import {formatSelections} from '../lib/select/report.js'
import type {RepositoriesReport, SelectionReport} from '../lib/select/resolve.js'
import type {CommandResult} from '../lib/ui/result.js'
import {plural} from '../lib/ui/table.js'

/** mirror's result: one item per image (source -> target, digest) and what the copy did, as import registry's. */
export interface MirrorCommandResult extends CommandResult<MirroredImage, PushCounts> {
  registry: string
  dryRun: boolean
  /** The files --mirror-config wrote (null without it). */
  mirrorConfig: string[] | null
  selections?: SelectionReport[]
  repositories?: RepositoriesReport[]
}

export default class Mirror extends BaseCommand<typeof Mirror> {
  static override description =
    "Copy a manifest's images straight from their registries into another registry, with no store: digests byte for byte, blobs streamed, what the target has skipped. Targets are named as import registry names them."

  static override examples = [
    '<%= config.bin %> mirror manifest.yaml --registry registry.dmz:5000',
    'printf %s "$REGISTRY_PASSWORD" | <%= config.bin %> mirror manifest.yaml --registry registry.dmz --namespace mirror --ca-file ca.crt --username admin --password-stdin',
    '<%= config.bin %> mirror manifest.yaml --registry registry.dmz --dry-run',
  ]

  static override args = {
    manifest: Args.string({description: 'Path of the manifest (YAML).', required: true}),
  }

  static override flags = {
    ...registryTargetFlags,
    ...mirrorConfigFlag,
    ...loginFlags({
      username: 'Target registry username (else the Docker config, else anonymous). Sources use the Docker config.',
      password: 'Target registry password or token.',
    }),
    'ca-file': Flags.string({
      description: 'Extra trusted CA (PEM) for the target and every source; repeatable.',
      multiple: true,
    }),
    concurrency: Flags.integer({
      description: 'Blobs copied at once, across all images.',
      default: DEFAULT_CONCURRENCY,
      min: 1,
      max: 256,
    }),
    platform: Flags.string({
      description: 'Platform to keep (os/arch[/variant]); repeat for more. Overrides the manifest.',
      multiple: true,
    }),
    'dry-run': Flags.boolean({
      description: 'Resolve tag selections and print the source -> target mapping; copy nothing.',
    }),
  }

  protected override interruptNote(done: number, of: number): string {
    return `${done} of ${plural(of, 'image')} had been copied; blobs and manifests already in the target stay there. Run the same command again to resume: what the target has is skipped.`
  }

  async run(): Promise<MirrorCommandResult> {
    const f = this.flags
    for (const p of f.platform ?? []) {
      if (!PLATFORM_RE.test(p)) throw new UsageError(`--platform ${p}: ${PLATFORM_HINT}`)
    }
    const manifest = await loadManifest(this.args.manifest)
    const r = await mirror(manifest, {
      ...(await registryTargetOptions(f)),
      concurrency: f.concurrency,
      platforms: f.platform,
      dryRun: f['dry-run'],
      mirrorConfig: f['dry-run'] ? undefined : f['mirror-config'],
      progress: this.progress,
    })
    if (f['dry-run'] && f['mirror-config'] !== undefined)
      this.progress.warn(`dry run: nothing written to --mirror-config ${f['mirror-config']}`)
    for (const file of r.mirrorConfig ?? []) this.progress.info(`wrote ${file}`)
    for (const l of formatSelections(r.selections ?? [], r.repositories ?? [])) this.out(l)
    // One `source -> target` line per image, as import registry prints its mapping.
    for (const i of r.images) this.out(`${i.source} -> ${i.target}`)
    const counts = pushCounts(
      r.images.length,
      r.images.reduce((n, i) => n + (i.referrers?.length ?? 0), 0),
      r.stats,
    )
    this.out(pushTotalLine(f.registry, counts, Boolean(f['dry-run']), 'copied'))
    const selections = r.selections ? {selections: r.selections, repositories: r.repositories ?? []} : {}
    return {
      registry: f.registry,
      dryRun: Boolean(f['dry-run']),
      mirrorConfig: r.mirrorConfig ?? null,
      counts,
      items: r.images,
      ...selections,
    }
  }
}

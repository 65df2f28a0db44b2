import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {bundleKeyFlags, checkBundleKey} from '../../cli/bundle-key-flags.js'
import {baseCheckedLine, type FileImportResult, fileImportResult} from '../../lib/importers/result.js'
import {formatBytes} from '../../lib/ui/format.js'
import {plural} from '../../lib/ui/table.js'

export interface ImportNginxResult extends FileImportResult {
  root: string
  /** The URL the cluster should fetch binaries from, when --endpoint was given. */
  endpoint: string | null
  /** Per OS repository: the source file a node needs, written beside the repository under --root. */
  osSources: {path: string; text: string}[]
}

export default class ImportNginx extends BaseCommand<typeof ImportNginx> {
  static override description =
    "Unpack a bundle's binaries and packages onto a web server's root, verified, atomically and idempotently."

  static override examples = [
    '<%= config.bin %> import nginx ./bundle --root /usr/share/nginx/html',
    '<%= config.bin %> import nginx ./bundle --root /usr/share/nginx/html --cluster-config clusterConfig.yaml --endpoint http://10.0.0.10',
  ]

  static override args = {
    bundle: Args.directory({description: 'Bundle folder (bundle.json, SHA256SUMS, the archives).', required: true}),
  }

  static override flags = {
    ...bundleKeyFlags,
    root: Flags.directory({
      description: 'Web server document root to unpack into (created when missing).',
      required: true,
    }),
    'cluster-config': Flags.file({
      description: 'clusterConfig.yaml whose spec.binaries to point at --endpoint.',
      dependsOn: ['endpoint'],
    }),
    endpoint: Flags.string({description: 'URL the web server serves --root at, written as externalRepoEndpoint.'}),
  }

  protected override interruptNote(): string {
    return `Nothing under ${this.flags.root} was given its final name (files are staged beside their targets and renamed at the end; leftovers are swept by the next run). Run the same command again to import.`
  }

  async run(): Promise<ImportNginxResult> {
    await checkBundleKey(this.args.bundle, this.flags['bundle-key'])
    const {root, endpoint} = this.flags
    const clusterConfig = this.flags['cluster-config']
    // Loaded on use: oclif loads every command module to list them, so each keeps its start cheap.
    // The YAML library too: only with --endpoint or --cluster-config.
    const [{importNginx}, cc] = await Promise.all([
      import('../../lib/importers/nginx.js'),
      endpoint !== undefined || clusterConfig !== undefined
        ? import('../../lib/importers/cluster-config.js')
        : undefined,
    ])
    if (endpoint !== undefined) cc!.checkRepoEndpoint('--endpoint', endpoint)
    // Checked before the import, so an unusable file does not leave a half-done job.
    const config = clusterConfig ? await cc!.openClusterConfig(clusterConfig) : undefined
    const r = await importNginx(this.args.bundle, {root, progress: this.progress, endpoint})
    // A mistyped --root would otherwise become a new folder nobody serves.
    if (r.createdRoot) this.progress.warn(`created --root ${root} (it did not exist)`)
    if (config && endpoint) await config.point({endpoint})
    if (r.baseChecked) this.out(baseCheckedLine(r.baseChecked, `under ${r.root}`))
    this.out(
      `${plural(r.written, 'file')} written (${formatBytes(r.bytesWritten)}), ${r.skipped} already there, under ${r.root}`,
    )
    if (clusterConfig) this.out(`${clusterConfig}: spec.binaries -> external ${endpoint}`)
    for (const s of r.osSources) this.out(`${s.path} (for the node):\n${s.text.trimEnd()}`)
    return {
      root: r.root,
      endpoint: endpoint ?? null,
      osSources: r.osSources,
      ...fileImportResult(r, clusterConfig),
    }
  }
}

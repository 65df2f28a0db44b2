import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {loginCredentials, loginFlags} from '../cli/target-flags.js'
import {DEFAULT_CONCURRENCY} from '../lib/defaults.js'
import {formatProblem} from '../lib/errors.js'
import {FailureError, FailureGroup, ManifestError, RegistryError} from '../lib/errors.js'
import {loadManifest} from '../lib/manifest/load.js'
import {describeSelection} from '../lib/manifest/tag-selection.js'
import type {Manifest} from '../lib/manifest/types.js'
import {manifestWarnings} from '../lib/manifest/warnings.js'
import {type ImagePlan, planImages} from '../lib/pull/images.js'
import {sourceClients} from '../lib/select/clients.js'
import {formatSelections} from '../lib/select/report.js'
import {hasSelections, type RepositoriesReport, resolveManifest, type SelectionReport} from '../lib/select/resolve.js'
import {formatBytes, shortDigest} from '../lib/ui/format.js'
import type {CommandResult} from '../lib/ui/result.js'
import {columns} from '../lib/ui/table.js'

/**
 * Each image planned as pull takes it (platforms chosen by the same code);
 * an image a pull would refuse for its content (a platform it lacks, a tag
 * the registry does not have) is a problem of the manifest at the image's
 * line, all of them in one ManifestError (exit 2). Other failures (network,
 * credentials) stay what they are.
 */
async function planImagesAt(m: Manifest, ctx: Parameters<typeof planImages>[1]): Promise<ImagePlan[]> {
  try {
    return await planImages(m, ctx, (entry, err) =>
      err instanceof FailureError || (err instanceof RegistryError && err.status === 404)
        ? new ManifestError(m.file, [
            {file: m.file, line: entry.pos.line, column: entry.pos.column, path: '', message: err.message},
          ])
        : err,
    )
  } catch (err) {
    const all = err instanceof FailureGroup ? err.failures : [err]
    if (all.every((e) => e instanceof ManifestError))
      throw new ManifestError(
        m.file,
        all.flatMap((e) => (e as ManifestError).problems),
      )
    throw err
  }
}

/** One entry of the manifest: an image's reference, a file's URL, a chart's name and version; and its line. */
export interface ValidateItem {
  kind: 'image' | 'binary' | 'package' | 'chart'
  name: string
  line: number
}

export interface ValidateResult extends CommandResult<
  ValidateItem,
  {images: number; selections: number; binaries: number; packages: number; charts: number}
> {
  valid: true
  name: string
  version?: string
  platforms: string[]
  /** Valid but likely mistakes, `file:line:column: path: message`; also printed on stderr. */
  warnings: string[]
  /** Tag selections and `spec.repositories` entries, when the manifest has any. */
  selections?: {field: string; repository: string; tags: string}[]
  /**
   * With --resolve: what each selection takes now, every image the manifest
   * then names, and per image the platforms a pull takes and its size (as
   * `pull --dry-run` plans them, without a store: no bytes to fetch here).
   */
  resolved?: {
    images: string[]
    selections: SelectionReport[]
    repositories: RepositoriesReport[]
    plans: {ref: string; digest: string; platforms: string[]; size: number}[]
  }
}

export default class Validate extends BaseCommand<typeof Validate> {
  static override description =
    'Check a manifest and print a summary, or every problem with file:line:column. Offline unless --resolve: then tag selections are resolved against their registries and their tags listed, and every image is read as pull reads it (manifests only), so that a platform it lacks or a tag its registry lacks is a problem at its line.'

  static override examples = [
    '<%= config.bin %> validate manifests/kubernetes-1.29-amd64.yaml',
    '<%= config.bin %> validate manifest.yaml --json',
    '<%= config.bin %> validate manifest.yaml --resolve',
  ]

  static override args = {
    manifest: Args.string({description: 'Path of the manifest (YAML).', required: true}),
  }

  static override flags = {
    resolve: Flags.boolean({
      description:
        "Read the tag lists (and catalogs) of the registries the selections name, and print which tags each takes; read each image's manifests and print the platforms a pull takes and its size, refusing one that lacks a platform asked for. Needs the registries; without it validate reads nothing but the file. Bytes to fetch: pull --dry-run.",
    }),
    'ca-file': Flags.string({
      description: 'With --resolve: extra trusted CA (PEM) for every host; repeatable.',
      multiple: true,
    }),
    ...loginFlags({
      username: 'With --resolve: registry username (else the Docker config, else anonymous).',
      password: 'With --resolve: registry password or token.',
    }),
  }

  async run(): Promise<ValidateResult> {
    const f = this.flags
    const m = await loadManifest(this.args.manifest)
    const selections = [
      ...(m.selections ?? []).map((s) => ({
        field: s.field,
        repository: `${s.registry}/${s.repository}`,
        tags: describeSelection(s.tags),
      })),
      ...(m.repositories ?? []).map((r) => ({
        field: r.field,
        repository: `${r.registry}${r.include === undefined ? '' : ` include ${JSON.stringify(r.include)}`}${r.exclude === undefined ? '' : ` exclude ${JSON.stringify(r.exclude)}`}`,
        tags: describeSelection(r.tags),
      })),
    ]
    const result: ValidateResult = {
      valid: true,
      name: m.name,
      ...(m.version === undefined ? {} : {version: m.version}),
      platforms: m.platforms,
      warnings: manifestWarnings(m).map(formatProblem),
      counts: {
        images: m.images.length,
        selections: selections.length,
        binaries: m.binaries.length,
        packages: m.packages.length,
        charts: m.packages.filter((p) => p.kind === 'chart').length,
      },
      items: [
        ...m.images.map((i): ValidateItem => ({kind: 'image', name: i.name, line: i.pos.line})),
        ...[...m.binaries, ...m.packages].map((f): ValidateItem => ({
          kind: f.kind,
          name: f.kind === 'chart' ? `${f.name} ${f.version}` : f.url,
          line: f.pos.line,
        })),
      ],
      ...(selections.length > 0 ? {selections} : {}),
    }
    if (f.resolve) {
      const login = await loginCredentials(f)
      const sources = sourceClients(m, {
        caFiles: f['ca-file'],
        username: login?.username,
        password: login?.password,
        onWarning: (w) => this.progress.warn(w),
      })
      const {manifest: resolvedManifest, resolution} = await resolveManifest(m, {registry: sources.lister})
      const plans = await planImagesAt(resolvedManifest, {
        registry: sources.client,
        concurrency: DEFAULT_CONCURRENCY,
        progress: this.progress,
      })
      result.resolved = {
        images: resolvedManifest.images.map((i) => i.name),
        selections: resolution?.selections ?? [],
        repositories: resolution?.repositories ?? [],
        plans: plans.map((p) => ({ref: p.ref, digest: p.digest, platforms: p.platforms, size: p.size})),
      }
    }
    for (const w of result.warnings) process.stderr.write(`Warning: ${w}\n`)
    const {charts} = result.counts
    this.out(`${m.name}${m.version ? ` ${m.version}` : ''}: valid`)
    this.out(
      `  images:    ${result.counts.images}${selections.length > 0 ? ` named, and ${selections.length} tag selection${selections.length === 1 ? '' : 's'}` : ''}`,
    )
    this.out(`  binaries:  ${result.counts.binaries}`)
    this.out(
      `  packages:  ${result.counts.packages}${charts > 0 ? ` (${charts} chart${charts === 1 ? '' : 's'})` : ''}`,
    )
    if (m.osPackages && m.osPackages.length > 0)
      this.out(
        `  osPackages: ${m.osPackages.length} repositor${m.osPackages.length === 1 ? 'y' : 'ies'} (${m.osPackages.map((o) => o.type).join(', ')})`,
      )
    this.out(`  platforms: ${m.platforms.join(', ')}`)
    if (result.resolved) {
      for (const l of formatSelections(result.resolved.selections, result.resolved.repositories)) this.out(l)
      if (hasSelections(m)) this.out(`images after resolving: ${result.resolved.images.length}`)
      for (const l of columns(
        result.resolved.plans.map((p) => [
          'image',
          p.ref,
          shortDigest(p.digest),
          p.platforms.join(',') || '-',
          formatBytes(p.size),
        ]),
        {indent: '  '},
      ))
        this.out(l)
      if (result.resolved.plans.length > 0)
        this.out('every image has the platforms asked for; pull --dry-run says how much of it the store lacks')
    } else {
      for (const s of selections) this.out(`  ${s.field}: ${s.repository} ${s.tags}`)
      if (selections.length > 0)
        this.out('selections are resolved by pull and lock; --resolve lists the tags each takes now')
    }
    return result
  }
}

import {Args} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {formatProblem} from '../lib/errors.js'
import {loadManifest} from '../lib/manifest/load.js'
import {manifestWarnings} from '../lib/manifest/warnings.js'
import type {CommandResult} from '../lib/ui/result.js'

/** One entry of the manifest: an image's reference, a file's URL, a chart's name and version; and its line. */
export interface ValidateItem {
  kind: 'image' | 'binary' | 'package' | 'chart'
  name: string
  line: number
}

export interface ValidateResult extends CommandResult<ValidateItem, {images: number; binaries: number; packages: number; charts: number}> {
  valid: true
  name: string
  version?: string
  platforms: string[]
  /** Valid but likely mistakes, `file:line:column: path: message`; also printed on stderr. */
  warnings: string[]
}

export default class Validate extends BaseCommand<typeof Validate> {
  static override description = 'Check a manifest and print a summary, or every problem with file:line:column.'
  static override examples = ['<%= config.bin %> validate manifests/kubernetes-1.29-amd64.yaml', '<%= config.bin %> validate manifest.yaml --json']
  static override args = {
    manifest: Args.string({description: 'Path of the manifest (YAML).', required: true}),
  }

  async run(): Promise<ValidateResult> {
    const m = await loadManifest(this.args.manifest)
    const result: ValidateResult = {
      valid: true,
      name: m.name,
      ...(m.version === undefined ? {} : {version: m.version}),
      platforms: m.platforms,
      warnings: manifestWarnings(m).map(formatProblem),
      counts: {
        images: m.images.length,
        binaries: m.binaries.length,
        packages: m.packages.length,
        charts: m.packages.filter((p) => p.kind === 'chart').length,
      },
      items: [
        ...m.images.map((i): ValidateItem => ({kind: 'image', name: i.name, line: i.pos.line})),
        ...[...m.binaries, ...m.packages].map((f): ValidateItem => ({kind: f.kind, name: f.kind === 'chart' ? `${f.name} ${f.version}` : f.url, line: f.pos.line})),
      ],
    }
    for (const w of result.warnings) process.stderr.write(`Warning: ${w}\n`)
    const {charts} = result.counts
    this.out(`${m.name}${m.version ? ` ${m.version}` : ''}: valid`)
    this.out(`  images:    ${result.counts.images}`)
    this.out(`  binaries:  ${result.counts.binaries}`)
    this.out(`  packages:  ${result.counts.packages}${charts > 0 ? ` (${charts} chart${charts === 1 ? '' : 's'})` : ''}`)
    this.out(`  platforms: ${m.platforms.join(', ')}`)
    return result
  }
}

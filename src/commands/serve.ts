// Static: the standalone executable cannot run a dynamic import() of a Node.js built-in (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING).
import {readFile} from 'node:fs/promises'

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {bundleKeyFlags, checkBundleKey} from '../cli/bundle-key-flags.js'
import {mirrorConfigFlag} from '../cli/target-flags.js'
import {UsageError} from '../lib/errors.js'
import {DEFAULT_LISTEN} from '../lib/serve/listen.js'
import type {ServedItem} from '../lib/serve/server.js'
import {columns, plural} from '../lib/ui/table.js'

export interface ServeResult {
  url: string
  /** Where the files of the .tar.gz were unpacked. */
  cache: string
  counts: {images: number; files: number; requests: number}
  items: ServedItem[]
}

export interface MirrorConfigResult {
  kind: string
  url: string
  counts: {registries: number}
  items: {registry: string; path: string; content: string}[]
}

/**
 * `AIRLOCK_SERVE_TIMEOUT_MS`: one value for the idle, header and stall
 * timeouts at once (see SERVE_TIMEOUTS), for a test that must not wait
 * minutes, or a site that wants them shorter.
 */
function timeoutsFromEnv(): {idleMs: number; headersMs: number; stallMs: number} | undefined {
  const raw = process.env.AIRLOCK_SERVE_TIMEOUT_MS
  if (raw === undefined || raw === '') return undefined
  if (!/^\d+$/.test(raw) || Number(raw) < 100)
    throw new UsageError(`AIRLOCK_SERVE_TIMEOUT_MS must be a whole number of milliseconds, 100 or more, got "${raw}"`)
  const ms = Number(raw)
  return {idleMs: ms, headersMs: ms, stallMs: ms}
}

export default class Serve extends BaseCommand<typeof Serve> {
  static override description = [
    'Serve a bundle in place: a read-only registry (the OCI distribution API under /v2/, each image at its source',
    'repository path with and without the registry host) and every file of the bundle at its mirrored path, as an',
    'nginx root would. The bundle is verified first. Images stream straight out of offline-images.tar; the files of',
    'the two .tar.gz are unpacked once, verified, into a cache folder (--cache-dir). Stops on SIGINT or SIGTERM.',
  ].join(' ')

  static override examples = [
    '<%= config.bin %> serve ./bundle --listen 0.0.0.0:5000',
    '<%= config.bin %> serve ./bundle --tls-cert seed.crt --tls-key seed.key',
    '<%= config.bin %> serve ./bundle --print-mirror-config containerd --advertise http://seed.example:5000',
    '<%= config.bin %> serve ./bundle --mirror-config ./node-config --advertise http://seed.example:5000',
  ]

  static override args = {
    bundle: Args.directory({description: 'Bundle folder (bundle.json, SHA256SUMS, the archives).', required: true}),
  }

  static override flags = {
    ...bundleKeyFlags,
    listen: Flags.string({description: 'ADDR:PORT to listen on.', default: DEFAULT_LISTEN}),
    'tls-cert': Flags.file({
      description: 'PEM certificate (chain) to serve HTTPS with.',
      dependsOn: ['tls-key'],
      exists: true,
    }),
    'tls-key': Flags.file({description: 'PEM private key of --tls-cert.', dependsOn: ['tls-cert'], exists: true}),
    base: Flags.directory({
      description: 'A base bundle of a delta bundle (repeatable); its content is served too.',
      multiple: true,
    }),
    'cache-dir': Flags.directory({
      description:
        'Where the files of the .tar.gz are unpacked once, verified. [default: $XDG_CACHE_HOME/airlock/serve or ~/.cache/airlock/serve]',
    }),
    'print-mirror-config': Flags.string({
      description:
        'Print a registry mirror configuration pointing at this server for every source registry of the bundle, and exit without serving.',
      options: ['containerd'],
    }),
    ...mirrorConfigFlag,
    advertise: Flags.string({
      description:
        'URL nodes reach this server at, for --print-mirror-config and --mirror-config. [default: http:// + the --listen address]',
    }),
  }

  async run(): Promise<ServeResult | MirrorConfigResult> {
    // A delta is served with its bases' content: each --base must carry the same signature.
    for (const dir of [this.args.bundle, ...(this.flags.base ?? [])])
      await checkBundleKey(dir, this.flags['bundle-key'])
    const [{parseListen, defaultAdvertiseUrl}, mirror] = await Promise.all([
      import('../lib/serve/listen.js'),
      import('../lib/serve/mirror-config.js'),
    ])
    const listen = parseListen(this.flags.listen)
    const tls = Boolean(this.flags['tls-cert'])
    const kind = this.flags['print-mirror-config']
    const configDir = this.flags['mirror-config']
    if (this.flags.advertise !== undefined && kind === undefined && configDir === undefined) {
      throw new UsageError('--advertise is for --print-mirror-config or --mirror-config')
    }
    const url =
      this.flags.advertise === undefined
        ? defaultAdvertiseUrl(listen, tls)
        : mirror.checkAdvertiseUrl(this.flags.advertise)
    // The same files import registry writes, pointing at this server (each image at its path without the host).
    const writeConfig = async (dir: string): Promise<void> => {
      const [{openBundle}, nodes] = await Promise.all([
        import('../lib/bundle/format/open-bundle.js'),
        import('../lib/mirror-config/mirror-config.js'),
      ])
      const config = nodes.mirrorConfig(
        mirror.servedNames((await openBundle(this.args.bundle)).lock),
        {url, privateCa: tls},
        'airlock serve',
      )
      const warning = nodes.containerdMissWarning(config, dir)
      if (warning) this.progress.warn(warning)
      for (const file of await nodes.writeMirrorConfig(dir, config)) this.progress.info(`wrote ${file}`)
    }
    if (kind !== undefined) {
      const {openBundle} = await import('../lib/bundle/format/open-bundle.js')
      const files = mirror.containerdHostsFiles(mirror.sourceRegistries((await openBundle(this.args.bundle)).lock), url)
      for (const f of files) this.out(`# ${f.path}\n${f.content}`)
      if (configDir !== undefined) await writeConfig(configDir)
      return {kind, url, counts: {registries: files.length}, items: files}
    }

    const [{serveBundle}, {defaultCacheRoot}] = await Promise.all([
      import('../lib/serve/server.js'),
      import('../lib/serve/file-cache.js'),
    ])
    const read = async (flag: string, file: string): Promise<Buffer> =>
      readFile(file).catch((err: Error) => {
        throw new UsageError(`--${flag} ${file}: ${err.message}`)
      })
    const certs = tls
      ? {cert: await read('tls-cert', this.flags['tls-cert']!), key: await read('tls-key', this.flags['tls-key']!)}
      : undefined
    const quiet = Boolean(this.flags.quiet)
    const server = await serveBundle(this.args.bundle, {
      bases: this.flags.base ?? [],
      listen,
      tls: certs,
      cacheRoot: this.flags['cache-dir'] ?? defaultCacheRoot(),
      progress: this.progress,
      onAccess: quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
      timeouts: timeoutsFromEnv(),
    })
    // The work the live view shows (verify, unpack) is done: it ends here, so what follows is written as it happens.
    await this.progress.close()
    // Written once the bundle verified and the server listens.
    if (configDir !== undefined) await writeConfig(configDir)
    // Listening: from here Ctrl-C and SIGTERM stop the server gracefully (taken before anything is printed, so a
    // client that sees the list and signals at once still gets a clean stop), rather than exiting at once.
    this.handleInterruptItself()
    const stopped = new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'))
      process.once('SIGTERM', () => resolve('SIGTERM'))
    })
    const rows = server.items.map((i) =>
      i.kind === 'image'
        ? ['image', `/v2/${i.paths.join(' /v2/')}`, i.digest]
        : ['file', `/${i.path}`, `sha256:${i.sha256}`],
    )
    for (const line of columns(rows, {head: ['KIND', 'SERVED AT', 'DIGEST']})) this.out(line)
    this.out(`total: ${plural(server.images, 'image')}, ${plural(server.files, 'file')} at ${server.url}`)
    if (!quiet)
      process.stderr.write(
        `serving ${this.args.bundle} at ${server.url} (files unpacked in ${server.cache}); Ctrl-C or SIGTERM stops\n`,
      )
    const signal = await stopped
    if (!quiet) process.stderr.write(`${signal}: stopping (responses under way may finish)\n`)
    await server.close()
    if (!quiet) process.stderr.write(`served ${plural(server.requests, 'request')}\n`)
    return {
      url: server.url,
      cache: server.cache,
      counts: {images: server.images, files: server.files, requests: server.requests},
      items: server.items,
    }
  }
}

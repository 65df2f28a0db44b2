/**
 * Entry point of the standalone executable (`npm run build:bin`, see
 * scripts/build-bin.ts): the whole CLI bundled into one file and run by the
 * Node.js binary it is injected into. There is no package.json and no
 * node_modules beside it, so oclif gets both from here: the package's oclif
 * settings and the command manifest, embedded at build time, and each
 * command's module, loaded only when that command runs (`airlock --version`
 * and `--help` load none).
 */
import {getAsset} from 'node:sea'

import {type Command, Config, execute, type Interfaces} from '@oclif/core'

import {COMMAND_MODULES} from './command-modules.js'
import commandNotFound from './hooks/command-not-found.js'
import {setStandaloneRuntime} from './lib/standalone-runtime.js'

/** Written by scripts/build-bin.ts (esbuild `define`): package.json's name, version and oclif section, and oclif's manifest of every command. */
declare const AIRLOCK_EMBEDDED: {pjson: Interfaces.PJSON; manifest: Interfaces.Manifest}

type CommandId = keyof typeof COMMAND_MODULES

/** The one plugin of the executable: what oclif's Plugin reads from disk, given instead. */
class EmbeddedPlugin implements Interfaces.Plugin {
  readonly _base: string
  alias: string
  name: string
  version: string
  pjson: Interfaces.PJSON
  readonly options: Interfaces.PluginOptions
  readonly commandIDs: string[]
  commands: Command.Loadable[]
  readonly commandsDir = undefined
  readonly hasManifest = true
  hooks = {}
  isRoot = true
  moduleType = 'commonjs' as const
  type = 'core'
  valid = true

  constructor(
    public root: string,
    embedded: typeof AIRLOCK_EMBEDDED,
  ) {
    this.pjson = embedded.pjson
    this.name = this.alias = embedded.pjson.name
    this.version = embedded.pjson.version
    this._base = `${this.name}@${this.version}`
    this.options = {root, isRoot: true, pjson: embedded.pjson}
    this.commandIDs = Object.keys(embedded.manifest.commands)
    this.commands = Object.entries(embedded.manifest.commands)
      .map(([id, c]) => ({
        ...c,
        pluginAlias: this.alias,
        pluginType: this.type,
        load: async () => this.findCommand(id, {must: true}),
      }))
      .sort((a, b) => a.id.localeCompare(b.id))
  }

  get topics(): Interfaces.Topic[] {
    return Object.entries(this.pjson.oclif.topics ?? {}).map(([name, t]) => ({name, description: t.description}))
  }

  async load(): Promise<void> {}

  findCommand(id: string, opts: {must: true}): Promise<Command.Class>
  findCommand(id: string, opts?: {must: boolean}): Promise<Command.Class> | undefined
  findCommand(id: string, opts?: {must: boolean}): Promise<Command.Class> | undefined {
    const loader = COMMAND_MODULES[id as CommandId]
    if (!loader) {
      if (opts?.must) return Promise.reject(new Error(`command ${id} not found`))
      return undefined
    }
    return loader().then((m) => {
      const cmd = m.default as Command.Class
      cmd.id = id
      cmd.plugin = this
      return cmd
    })
  }
}

const root = process.execPath
setStandaloneRuntime({executable: process.execPath, asset: (name) => Buffer.from(getAsset(name))})
const plugin = new EmbeddedPlugin(root, AIRLOCK_EMBEDDED)

/**
 * oclif loads a hook from a file named in package.json; the executable has
 * none, so its one hook (`airlock pul`: a usage error naming the command it
 * most likely meant, a JSON error document with --json) is called from here
 * as oclif would call it, and every other event runs as before. On the
 * class, not on a Config: oclif's run() makes a Config of its own from the
 * options it is given. This oclif is the executable's own copy, bundled in.
 */
const runHook = Config.prototype.runHook
Config.prototype.runHook = async function (this: Config, event: string, opts: unknown, ...rest: [number?, boolean?]) {
  if (event !== 'command_not_found') return runHook.call(this, event as 'init', opts as never, ...rest)
  const result = await commandNotFound.call({config: this} as never, {
    ...(opts as Interfaces.Hooks['command_not_found']['options']),
    config: this,
    context: {} as never,
  })
  return {successes: [{plugin, result}], failures: []}
} as Config['runHook']

void execute({loadOptions: {root, pjson: AIRLOCK_EMBEDDED.pjson, plugins: new Map([[plugin.name, plugin]])}})

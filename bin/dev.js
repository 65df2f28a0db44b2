#!/usr/bin/env -S node --import tsx --no-warnings
// Runs the TypeScript sources directly, without a build: the oclif settings of
// package.json with dist/**.js read as src/**.ts (tsx, imported above, loads
// them), and no oclif.manifest.json, which `npm run build` writes for dist/.
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import {execute, Plugin, settings} from '@oclif/core'

const root = fileURLToPath(new URL('..', import.meta.url))
const toSource = (p) => p.replace(/^\.\/dist\//, './src/').replace(/\.js$/, '.ts')
const pjson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
pjson.oclif.commands = toSource(pjson.oclif.commands)
pjson.oclif.hooks = Object.fromEntries(Object.entries(pjson.oclif.hooks ?? {}).map(([k, v]) => [k, toSource(v)]))
// oclif's own mapping of dist/ to src/ would register a TypeScript loader again, and fail to.
settings.enableAutoTranspile = false
const plugin = new Plugin({root, pjson, isRoot: true, ignoreManifest: true})
await plugin.load()
await execute({development: true, loadOptions: {root, plugins: new Map([[plugin.name, plugin]])}})

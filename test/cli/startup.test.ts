import {readFile} from 'node:fs/promises'
import {join, relative} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {describe, expect, it} from 'vitest'

import {COMMAND_MODULES} from '../../src/command-modules.js'
import {repoRoot, runCli} from '../helpers/cli.js'
import {makeTempDir} from '../helpers/tmp.js'

// What a run loads: oclif, the one command it runs (none for --version and
// --help, which oclif answers from oclif.manifest.json), and the heavy
// dependencies only in a command that uses them. Runs the built CLI (npm run
// build first) with a module hook that records every import; no server is needed.

/** Dependencies that cost a command several MB of memory at start, for what only a request or an S3 call needs. */
const HEAVY = ['got', 'hpagent', 'http-proxy-agent', '@aws-sdk/client-s3', '@aws-sdk/lib-storage']

const hook = pathToFileURL(join(repoRoot, 'test', 'helpers', 'record-imports.mjs')).href

/** Runs the CLI; returns the command modules (as paths under dist/commands) and the packages it imported. */
async function loads(
  args: string[],
  env: Record<string, string> = {},
): Promise<{commands: string[]; packages: string[]; stderr: string}> {
  const record = join(await makeTempDir('airlock-imports-'), 'imports')
  const r = await runCli(args, {env: {...env, NODE_OPTIONS: `--import=${hook}`, AIRLOCK_RECORD_IMPORTS: record}})
  const urls = (await readFile(record, 'utf8').catch(() => '')).split('\n').filter((u) => u.startsWith('file:'))
  const files = [...new Set(urls.map((u) => relative(repoRoot, fileURLToPath(u))))]
  const commands = files.filter((f) => f.startsWith('dist/commands/')).sort()
  const packages = [
    ...new Set(
      files
        .map((f) => /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f)?.[1])
        .filter((p): p is string => p !== undefined),
    ),
  ].sort()
  return {commands, packages, stderr: r.stderr}
}

describe('start-up cost', () => {
  it('--version and --help load no command module', async () => {
    for (const args of [
      ['--version'],
      ['--help'],
      ['verify', '--help'],
      ['import', '--help'],
      ['import', 'registry', '--help'],
    ]) {
      const got = await loads(args)
      expect(got.packages, `${args.join(' ')}: ${got.stderr}`).toContain('@oclif/core')
      expect(got.commands, args.join(' ')).toEqual([])
    }
  })

  it.each([
    [['verify', '/nonexistent'], 'dist/commands/verify.js', 'tar'],
    [['inspect', '/nonexistent'], 'dist/commands/inspect.js', undefined],
    [['bundle', '--store', '/nonexistent', '--out', '/nonexistent/out'], 'dist/commands/bundle.js', 'tar'],
    [['import', 'nginx', '/nonexistent', '--root', '/nonexistent/root'], 'dist/commands/import/nginx.js', undefined],
    [['validate', 'manifests/kubernetes-1.29-amd64.yaml'], 'dist/commands/validate.js', 'js-yaml'],
  ])('%j loads its own command module and none of the heavy dependencies', async (args, command, uses) => {
    const got = await loads(args)
    expect(got.commands, got.stderr).toEqual([command])
    // The record sees packages: what the command does need is there.
    if (uses) expect(got.packages).toContain(uses)
    for (const p of HEAVY) expect(got.packages, got.stderr).not.toContain(p)
  })

  it.each(['development', 'test'])(
    'under NODE_ENV=%s the built CLI loads no TypeScript transpiler (oclif would, and double the memory)',
    async (nodeEnv) => {
      const got = await loads(['validate', 'manifests/kubernetes-1.29-amd64.yaml'], {NODE_ENV: nodeEnv})
      expect(got.commands, got.stderr).toEqual(['dist/commands/validate.js'])
      for (const p of ['tsx', 'esbuild', 'ts-node', 'typescript']) expect(got.packages, got.stderr).not.toContain(p)
    },
  )

  it('oclif.manifest.json lists every command, in dist/commands', async () => {
    const manifest = JSON.parse(await readFile(join(repoRoot, 'oclif.manifest.json'), 'utf8')) as {
      version: string
      commands: Record<string, {relativePath: string[]}>
    }
    const pjson = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {version: string}
    expect(manifest.version).toBe(pjson.version)
    expect(Object.keys(manifest.commands).sort()).toEqual(Object.keys(COMMAND_MODULES).sort())
    for (const [id, c] of Object.entries(manifest.commands))
      expect(c.relativePath.join('/'), id).toBe(`dist/commands/${id.replaceAll(':', '/')}.js`)
  })
})

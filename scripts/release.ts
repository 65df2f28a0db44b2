/**
 * `npm run release`: dist/release/, what a release publishes.
 * - airlock-linux-amd64, airlock-linux-arm64: the standalone executables (scripts/build-bin.ts);
 * - airlock-<version>.tgz: the npm package (`npm pack`), which carries both executables under dist/bin/, where
 *   `bundle` takes its default importer from (src/lib/bundle/write/seed-tools.ts), so an `npm install -g` of it builds
 *   bundles with no clone;
 * - SHA256SUMS over the three, in `sha256sum -c` format.
 * Run after `npm run build` (package.json's release script does both). The folder is written beside its final name
 * and renamed, so dist/release/ is either the last whole release or this one.
 */
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {copyFile, mkdir, readdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {ARCHES, buildExecutable, bundleScript} from './build-bin.js'

const repo = resolve(fileURLToPath(new URL('..', import.meta.url)))
const out = join(repo, 'dist', 'release')

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, {cwd: repo, stdio: ['ignore', 'pipe', 'inherit']})
    let text = ''
    child.stdout.on('data', (d: Buffer) => (text += d.toString()))
    child.on('error', rej)
    child.on('exit', (code) => (code === 0 ? res(text) : rej(new Error(`${cmd} ${args.join(' ')} exited ${code}`))))
  })
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer)
  return h.digest('hex')
}

async function release(): Promise<string[]> {
  const {version} = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as {version: string}
  const tmp = `${out}.tmp`
  await rm(tmp, {recursive: true, force: true})
  await mkdir(tmp, {recursive: true})
  const script = join(repo, 'dist', 'bin', '.build', 'airlock.cjs')
  await mkdir(join(repo, 'dist', 'bin', '.build'), {recursive: true})
  await bundleScript(script)
  for (const arch of ARCHES) {
    const exe = await buildExecutable(arch, script)
    await copyFile(exe, join(tmp, `airlock-linux-${arch}`))
  }
  // The package's `files` takes dist/ with dist/bin/airlock-linux-* and leaves the build folder and dist/release out.
  await run('npm', ['pack', '--silent', '--pack-destination', tmp])
  const names = (await readdir(tmp)).sort()
  const want = [...ARCHES.map((a) => `airlock-linux-${a}`), `airlock-${version}.tgz`].sort()
  if (names.join() !== want.join())
    throw new Error(`dist/release would hold ${names.join(', ')}, not ${want.join(', ')}`)
  const lines = await Promise.all(names.map(async (n) => `${await sha256(join(tmp, n))}  ${n}\n`))
  await writeFile(join(tmp, 'SHA256SUMS'), lines.join(''))
  await rm(out, {recursive: true, force: true})
  await rename(tmp, out)
  return lines
}

try {
  const lines = await release()
  process.stdout.write(lines.join('') + `-> ${out}\n`)
} catch (err) {
  process.stderr.write(`release: ${(err as Error).message}\n`)
  process.exit(1)
}

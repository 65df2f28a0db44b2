import {execFile} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {copyFile, mkdir, open, readdir, readFile, stat, symlink, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {promisify} from 'node:util'

import {beforeAll, describe, expect, it} from 'vitest'

import {sha256Hex} from '../helpers/bundle-fixture.js'
import {repoRoot, runProgram} from '../helpers/cli.js'
import {makeTempDir} from '../helpers/tmp.js'

const exec = promisify(execFile)
const {version} = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {version: string}

/** The Node.js major the program says it runs on (`airlock/0.1.0 linux-x64 node-v24.22.3`). */
function nodeMajor(version: string): number {
  return Number(/ node-v(\d+)\./.exec(version)?.[1])
}

/**
 * `npm run release` in a copy of this tree (it empties dist/, which the other e2e files run from), then the
 * release as a user takes it: the executables, SHA256SUMS, and the npm package installed without the sources.
 * Slow (two executables and a 90 MB package): every check of a release is in this one file.
 */
describe('npm run release', () => {
  let clone: string
  let rel: string

  beforeAll(async () => {
    const work = await makeTempDir('e2e-release-')
    clone = join(work, 'airlock')
    // The tree as a fresh clone of it would be (tracked and new files, nothing ignored), node_modules shared.
    const {stdout} = await exec('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: repoRoot,
      maxBuffer: 64 << 20,
    })
    for (const f of stdout.split('\0').filter(Boolean)) {
      if (!(await stat(join(repoRoot, f)).catch(() => undefined))?.isFile()) continue
      await mkdir(dirname(join(clone, f)), {recursive: true})
      await copyFile(join(repoRoot, f), join(clone, f))
    }
    await symlink(join(repoRoot, 'node_modules'), join(clone, 'node_modules'))
    await exec('npm', ['run', 'release'], {cwd: clone, maxBuffer: 64 << 20})
    rel = join(clone, 'dist', 'release')
  }, 60 * 60_000)

  it('writes both executables, the npm package and SHA256SUMS, and sha256sum -c passes', async () => {
    expect((await readdir(rel)).sort()).toEqual([
      'SHA256SUMS',
      `airlock-${version}.tgz`,
      'airlock-linux-amd64',
      'airlock-linux-arm64',
    ])
    const {stdout} = await exec('sha256sum', ['-c', 'SHA256SUMS'], {cwd: rel})
    expect(stdout.trim().split('\n').sort()).toEqual([
      `airlock-${version}.tgz: OK`,
      'airlock-linux-amd64: OK',
      'airlock-linux-arm64: OK',
    ])
  })

  it('both executables run on Node.js 24 or later (the arm64 one, an aarch64 ELF, under qemu)', async () => {
    const amd = await runProgram(join(rel, 'airlock-linux-amd64'), ['--version'])
    expect(amd.code, amd.stderr).toBe(0)
    expect(amd.stdout).toContain(`airlock/${version} linux-x64 `)
    expect(nodeMajor(amd.stdout), amd.stdout).toBeGreaterThanOrEqual(24)
    const header = Buffer.alloc(20)
    const fh = await open(join(rel, 'airlock-linux-arm64'))
    await fh.read(header, 0, 20, 0)
    await fh.close()
    expect(header.subarray(0, 4).toString('latin1')).toBe('\x7fELF')
    expect(header.readUInt16LE(18)).toBe(183) // e_machine EM_AARCH64
    const arm = await runProgram(
      'qemu-aarch64-static',
      ['-L', '/usr/aarch64-linux-gnu', join(rel, 'airlock-linux-arm64'), '--version'],
      {timeoutMs: 300_000},
    )
    expect(arm.code, arm.stderr).toBe(0)
    expect(arm.stdout).toContain(`airlock/${version} linux-arm64 `)
    expect(nodeMajor(arm.stdout), arm.stdout).toBeGreaterThanOrEqual(24)
  }, 400_000)

  it('the npm package, installed with npm install -g (no clone, no dev dependencies), builds a bundle with its importer', async () => {
    const work = await makeTempDir('e2e-release-npm-')
    const prefix = join(work, 'prefix')
    // Packages from npm's cache (npm ci filled it); only the registry's metadata may be asked for.
    await exec(
      'npm',
      [
        'install',
        '-g',
        '--prefix',
        prefix,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        join(rel, `airlock-${version}.tgz`),
      ],
      {cwd: work, maxBuffer: 64 << 20},
    )
    const installed = join(prefix, 'lib', 'node_modules', 'airlock')
    const deps = await readdir(join(installed, 'node_modules'))
    for (const dev of ['esbuild', 'postject', 'tsx', 'typescript', 'vitest']) expect(deps).not.toContain(dev)
    expect(await stat(join(installed, 'scripts')).catch(() => undefined)).toBeUndefined()
    await writeFile(
      join(work, 'manifest.yaml'),
      'apiVersion: airlock/v1\nkind: Manifest\nmetadata: {name: empty, version: "1"}\nspec: {}\n',
    )
    const airlock = join(prefix, 'bin', 'airlock')
    const r = await runProgram(airlock, ['build', 'manifest.yaml', '--out', 'b', '--store', 'store'], {cwd: work})
    expect(r.code, r.stderr).toBe(0)
    const exe = join(work, 'b', 'airlock-linux-amd64')
    expect(sha256Hex(await readFile(exe))).toBe(sha256Hex(await readFile(join(rel, 'airlock-linux-amd64'))))
    const v = await runProgram(airlock, ['verify', 'b'], {cwd: work})
    expect(v.code, v.stderr).toBe(0)
  }, 600_000)
})

import {execFile} from 'node:child_process'
import {chmod, copyFile, lstat, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {promisify} from 'node:util'

import {describe, expect, it} from 'vitest'

import {
  fileData,
  type FixtureFile,
  hostileArchives,
  makeBundle,
  makeRawBundle,
  sha256Hex,
} from '../../helpers/bundle-fixture.js'
import {repoRoot} from '../../helpers/cli.js'
import {ownArch} from '../../helpers/executable.js'
import {makeTempDir} from '../../helpers/tmp.js'

const exec = promisify(execFile)
const SCRIPT = join(repoRoot, 'src', 'lib', 'bundle', 'write', 'import.sh')

/** `sh import.sh ARGS` as the seed node runs it; never throws. */
async function importSh(bundle: string, args: string[]): Promise<{code: number; out: string; err: string}> {
  try {
    const r = await exec('sh', [join(bundle, 'import.sh'), ...args], {env: {PATH: process.env.PATH!}})
    return {code: 0, out: r.stdout, err: r.stderr}
  } catch (e) {
    const err = e as {code: number; stdout: string; stderr: string}
    return {code: err.code, out: err.stdout, err: err.stderr}
  }
}

/** Everything under a folder, hidden entries included, as relative paths. */
async function tree(dir: string): Promise<string[]> {
  return ((await readdir(dir, {recursive: true})) as string[]).sort()
}

const FILES: FixtureFile[] = [
  {path: '127.0.0.1:8081/release/v1.29.0/bin/linux/amd64/kubeadm', data: fileData(70_000), executable: true},
  {path: 'get.helm.sh/helm-v3.14.0-linux-amd64.tar.gz', data: fileData(30_000)},
  {path: 'charts/nginx-15.1.0.tgz', data: fileData(5_000), kind: 'chart'},
  {path: 'example.com/tools/a file with spaces.tar.gz', data: fileData(1_000), kind: 'package'},
]

async function bundleWithScript(files = FILES): Promise<string> {
  const dir = join(await makeTempDir('airlock-import-sh-'), 'bundle')
  await makeBundle(dir, files)
  await copyFile(SCRIPT, join(dir, 'import.sh'))
  return dir
}

/** A stand-in for the executable (it prints its arguments), listed in SHA256SUMS as the bundle lists the real one. */
async function standIn(dir: string, text = '#!/bin/sh\nprintf "%s|" "$@"\n'): Promise<void> {
  await writeFile(join(dir, `airlock-linux-${ownArch}`), text, {mode: 0o755})
  await writeFile(
    join(dir, 'SHA256SUMS'),
    `${await readFile(join(dir, 'SHA256SUMS'), 'utf8')}${sha256Hex(Buffer.from(text))}  airlock-linux-${ownArch}\n`,
  )
}

describe('import.sh', () => {
  it('passes shellcheck as POSIX sh', async () => {
    const r = await exec('shellcheck', ['--shell=sh', '--severity=style', SCRIPT]).catch((e: {stdout: string}) => ({
      stdout: e.stdout,
      failed: true,
    }))
    expect(r.stdout).toBe('')
  })

  it('--help lists every command; no command or an unknown one is a usage error (exit 2)', async () => {
    const dir = await bundleWithScript()
    const help = await importSh(dir, ['--help'])
    expect(help.code).toBe(0)
    for (const t of [
      './import.sh nginx ROOT [--endpoint URL --cluster-config FILE]',
      './import.sh s3',
      './import.sh registry',
      './import.sh serve [--listen ADDR:PORT]',
      './import.sh verify',
      './import.sh inspect',
      '--no-executable',
      '--base DIR',
      'x86_64 -> amd64',
      'aarch64 -> arm64',
    ])
      expect(help.out).toContain(t)
    expect((await importSh(dir, [])).code).toBe(2)
    const bad = await importSh(dir, ['ftp'])
    expect(bad.code).toBe(2)
    expect(bad.err).toContain('unknown command: ftp')
  })

  // A stand-in for the executable that prints its arguments: what is checked here is only how import.sh calls it
  // (the real executable runs in the seed-node e2e test and the demo).
  it('runs ./airlock-linux-<arch> import TARGET (or serve, verify, inspect) on its own folder, ROOT becoming --root', async () => {
    const dir = await bundleWithScript()
    await standIn(dir)
    const elsewhere = await makeTempDir()
    const run = async (args: string[]) => (await exec('sh', [join(dir, 'import.sh'), ...args], {cwd: elsewhere})).stdout
    expect(await run(['nginx', '/srv/www', '--endpoint', 'http://seed:8080', '--cluster-config', 'c.yaml'])).toBe(
      `import|nginx|${dir}|--root|/srv/www|--endpoint|http://seed:8080|--cluster-config|c.yaml|`,
    )
    expect(await run(['s3', '--endpoint', 'http://s3:9000', '--bucket', 'b'])).toBe(
      `import|s3|${dir}|--endpoint|http://s3:9000|--bucket|b|`,
    )
    expect(await run(['registry', '--registry', 'r:5000', '--insecure'])).toBe(
      `import|registry|${dir}|--registry|r:5000|--insecure|`,
    )
    expect(await run(['verify'])).toBe(`verify|${dir}|`)
    expect(await run(['serve', '--listen', '0.0.0.0:5000'])).toBe(`serve|${dir}|--listen|0.0.0.0:5000|`)
    expect(await run(['inspect', '--json'])).toBe(`inspect|${dir}|--json|`)
    // --base is serve's and verify's flag; for an import it only says where a delta's base is, and is not passed on.
    expect(await run(['serve', '--base', '/b1', '--listen', 'x', '--base=/b2'])).toBe(
      `serve|${dir}|--base|/b1|--listen|x|--base|/b2|`,
    )
    expect(await run(['registry', '--base', '/b1', '--registry', 'r'])).toBe(`import|registry|${dir}|--registry|r|`)
    // Not executable any more (copied without its mode): said so, not silently worked around.
    await chmod(join(dir, `airlock-linux-${ownArch}`), 0o644)
    const r = await importSh(dir, ['nginx', '/srv/www'])
    expect(r.code).toBe(1)
    expect(r.err).toContain('is not executable')
  })

  it('refuses an executable that differs from its line of SHA256SUMS, or that SHA256SUMS does not list, and runs nothing; --no-executable takes the tar-only path on purpose', async () => {
    const dir = await bundleWithScript()
    const marker = join(await makeTempDir(), 'ran')
    await standIn(dir, `#!/bin/sh\ntouch '${marker}'\n`)
    const exe = join(dir, `airlock-linux-${ownArch}`)
    const bytes = await readFile(exe)
    bytes[bytes.length - 2] ^= 0x01
    await writeFile(exe, bytes)
    const root = join(await makeTempDir(), 'www')
    for (const args of [['nginx', root], ['serve'], ['verify']]) {
      const r = await importSh(dir, args)
      expect(r.code, args.join(' ')).toBe(1)
      expect(r.err).toContain(`${exe} does not match its line of SHA256SUMS (sha256 ${sha256Hex(bytes)}, expected `)
      expect(r.err).toContain('./import.sh --no-executable nginx ROOT')
    }
    expect(await stat(marker).catch(() => undefined)).toBeUndefined()
    expect(await stat(root).catch(() => undefined)).toBeUndefined()
    // On purpose: sha256sum and tar alone, the executable left alone.
    const fallback = await importSh(dir, ['--no-executable', 'nginx', root])
    expect(fallback.code, fallback.err).toBe(0)
    expect(fallback.out).toBe(`4 files written, 0 already there, under ${root}\n`)
    expect(await stat(marker).catch(() => undefined)).toBeUndefined()
    const s3 = await importSh(dir, ['--no-executable', 's3', '--bucket', 'x'])
    expect(s3.code).toBe(2)
    expect(s3.err).toContain("--no-executable: only 'nginx ROOT' works without the executable (not s3)")
    // Not listed at all: not run unchecked either.
    await writeFile(
      join(dir, 'SHA256SUMS'),
      (await readFile(join(dir, 'SHA256SUMS'), 'utf8')).replace(/^.*airlock-linux-.*\n/m, ''),
    )
    const unlisted = await importSh(dir, ['verify'])
    expect(unlisted.code).toBe(1)
    expect(unlisted.err).toContain(`SHA256SUMS has no line for airlock-linux-${ownArch}: refusing to run it unchecked`)
    expect(await stat(marker).catch(() => undefined)).toBeUndefined()
  })

  it("a delta that leaves the executable to its base runs the base's, found by --base DIR or beside it, by bundle.json's sha256", async () => {
    const work = await makeTempDir()
    const base = join(work, 'v1')
    await makeBundle(base, FILES)
    await standIn(base)
    const delta = join(work, 'v2')
    await makeBundle(delta, FILES)
    await copyFile(SCRIPT, join(delta, 'import.sh'))
    const exeBytes = await readFile(join(base, `airlock-linux-${ownArch}`))
    const lock = JSON.parse(await readFile(join(delta, 'bundle.json'), 'utf8'))
    lock.tools = [
      {
        path: `airlock-linux-${ownArch}`,
        platform: `linux/${ownArch}`,
        size: exeBytes.length,
        sha256: sha256Hex(exeBytes),
        fromBase: true,
      },
    ]
    const lockText = `${JSON.stringify(lock, null, 2)}\n`
    await writeFile(join(delta, 'bundle.json'), lockText)
    await writeFile(
      join(delta, 'SHA256SUMS'),
      (await readFile(join(delta, 'SHA256SUMS'), 'utf8')).replace(
        /^.*  bundle\.json$/m,
        `${sha256Hex(Buffer.from(lockText))}  bundle.json`,
      ),
    )
    const elsewhere = join(await makeTempDir(), 'v1')
    await rename(base, elsewhere)
    // Elsewhere: not found, and said how to point at it; found when named with --base.
    const missing = await importSh(delta, ['verify'])
    expect(missing.code).toBe(1)
    expect(missing.err).toContain(
      `this delta leaves airlock-linux-${ownArch} to its base, and no folder named with --base nor beside ${delta}`,
    )
    expect((await importSh(delta, ['serve', '--base', elsewhere])).out).toBe(`serve|${delta}|--base|${elsewhere}|`)
    expect((await importSh(delta, ['registry', '--base', elsewhere, '--registry', 'r'])).out).toBe(
      `import|registry|${delta}|--registry|r|`,
    )
    await rename(elsewhere, base)
    // Beside it: a folder next to the delta's that holds an executable of that sha256 (another one, with other bytes, is passed over).
    const other = join(work, 'a-other')
    await mkdir(other)
    await writeFile(join(other, `airlock-linux-${ownArch}`), '#!/bin/sh\necho wrong\n', {mode: 0o755})
    expect((await importSh(delta, ['verify'])).out).toBe(`verify|${delta}|`)
    // A changed bundle.json is not trusted for the sha256.
    await writeFile(join(delta, 'bundle.json'), lockText.replace('"fromBase": true', '"fromBase": true '))
    const changed = await importSh(delta, ['verify'])
    expect(changed.code).toBe(1)
    expect(changed.err).toContain('bundle.json does not match SHA256SUMS: nothing was imported')
  })

  it('without an executable: nginx ROOT with sha256sum and tar, every file at its path with its mode; a second run skips them', async () => {
    const dir = await bundleWithScript()
    const root = join(await makeTempDir(), 'www')
    const r = await importSh(dir, ['nginx', root])
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
    expect(r.out).toBe(`4 files written, 0 already there, under ${root}\n`)
    for (const f of FILES) {
      expect(sha256Hex(await readFile(join(root, f.path))), f.path).toBe(sha256Hex(f.data))
      expect((await stat(join(root, f.path))).mode & 0o7777, f.path).toBe(f.executable ? 0o755 : 0o644)
    }
    const again = await importSh(dir, ['nginx', root])
    expect(again.out).toBe(`0 files written, 4 already there, under ${root}\n`)
    expect((await tree(root)).filter((p) => p.startsWith('.'))).toEqual([])
    // s3 and registry need the executable.
    const s3 = await importSh(dir, ['s3', '--bucket', 'x'])
    expect(s3.code).toBe(1)
    expect(s3.err).toContain(`this bundle carries no airlock executable for ${ownArch}`)
    expect((await importSh(dir, ['nginx', root, '--endpoint', 'http://x'])).code).toBe(2)
  })

  it("without an executable, folders are 0755 and files 0644 (0755 executables) whatever the caller's umask; ROOT and its missing parents too", async () => {
    const dir = await bundleWithScript()
    const work = await makeTempDir()
    for (const umask of ['000', '077']) {
      const root = join(work, umask, 'srv', 'www')
      const r = await exec('sh', ['-c', `umask ${umask} && exec sh "$0" "$@"`, join(dir, 'import.sh'), 'nginx', root], {
        env: {PATH: process.env.PATH!},
      })
      expect(r.stderr).toBe('')
      for (const f of FILES)
        expect((await stat(join(root, f.path))).mode & 0o7777, `umask ${umask}: ${f.path}`).toBe(
          f.executable ? 0o755 : 0o644,
        )
      const folders = [join(work, umask), join(work, umask, 'srv'), root]
      for (const f of FILES) for (let d = dirname(f.path); d !== '.'; d = dirname(d)) folders.push(join(root, d))
      for (const d of folders) expect((await stat(d)).mode & 0o7777, `umask ${umask}: ${d}/`).toBe(0o755)
    }
  })

  it('reads an archive split into parts (bundle --split)', async () => {
    const dir = await bundleWithScript()
    const whole = await readFile(join(dir, 'offline-files.tar.gz'))
    const half = Math.floor(whole.length / 2)
    await writeFile(join(dir, 'offline-files.tar.gz.000'), whole.subarray(0, half))
    await writeFile(join(dir, 'offline-files.tar.gz.001'), whole.subarray(half))
    await rm(join(dir, 'offline-files.tar.gz'))
    const sums = (await readFile(join(dir, 'SHA256SUMS'), 'utf8')).replace(
      /^.*  offline-files\.tar\.gz$/m,
      `${sha256Hex(whole.subarray(0, half))}  offline-files.tar.gz.000\n${sha256Hex(whole.subarray(half))}  offline-files.tar.gz.001`,
    )
    await writeFile(join(dir, 'SHA256SUMS'), sums)
    const root = join(await makeTempDir(), 'www')
    const r = await importSh(dir, ['nginx', root])
    expect(r.code, r.err).toBe(0)
    for (const f of FILES) expect(sha256Hex(await readFile(join(root, f.path))), f.path).toBe(sha256Hex(f.data))
  })

  it('an archive that does not match SHA256SUMS is refused before anything is unpacked', async () => {
    const dir = await bundleWithScript()
    const tgz = await readFile(join(dir, 'component-tools.tar.gz'))
    tgz[tgz.length - 20] ^= 0xff
    await writeFile(join(dir, 'component-tools.tar.gz'), tgz)
    const root = join(await makeTempDir(), 'www')
    const r = await importSh(dir, ['nginx', root])
    expect(r.code).toBe(1)
    expect(r.err).toContain('component-tools.tar.gz does not match SHA256SUMS: nothing was imported')
    expect(await tree(root)).toEqual([])
  })

  it('never writes through a symbolic link already in ROOT', async () => {
    const dir = await bundleWithScript()
    const base = await makeTempDir()
    const root = join(base, 'www')
    const outside = join(base, 'outside')
    await mkdir(root)
    await mkdir(outside)
    await symlink(outside, join(root, 'get.helm.sh'))
    const r = await importSh(dir, ['nginx', root])
    expect(r.code).toBe(1)
    expect(r.err).toContain(`${root}/get.helm.sh is a symbolic link; refusing to write through it`)
    expect(await readdir(outside)).toEqual([])
    expect((await lstat(join(root, 'get.helm.sh'))).isSymbolicLink()).toBe(true)
  })

  // What tar's listing shows: links, devices, fifos, absolute paths and '..' are refused before tar unpacks a byte.
  // (Entries that only bundle.json could tell apart, such as a file it does not list, need the executable's verify.)
  const structural = new Set([
    'dot-dot',
    'absolute path',
    'symlink out',
    'hardlink',
    'device',
    'fifo',
    'truncated gzip',
  ])
  for (const h of hostileArchives().filter((x) => structural.has(x.name))) {
    it(`refuses a hostile archive (${h.name}) and writes nothing`, async () => {
      const base = await makeTempDir('airlock-import-sh-hostile-')
      const dir = join(base, 'bundle')
      await makeRawBundle(dir, h.listed, h.tgz())
      await copyFile(SCRIPT, join(dir, 'import.sh'))
      const root = join(base, 'www')
      const r = await importSh(dir, ['nginx', root])
      expect(r.code, r.out).not.toBe(0)
      expect(r.err).toMatch(/import\.sh: offline-files\.tar\.gz: /)
      expect(await tree(root)).toEqual([])
      expect((await tree(base)).filter((p) => p.includes('escaped'))).toEqual([])
    })
  }
})

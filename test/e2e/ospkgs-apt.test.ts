import {execFile} from 'node:child_process'
import {appendFile, cp, mkdir, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {join, relative} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {type AptRepo, makeAptRepo, makeSigningKey} from '../helpers/apt-repo.js'
import {runCli} from '../helpers/cli.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {freePort} from '../helpers/ports.js'
import {inNamespace, seedRootfs} from '../helpers/seed-rootfs.js'
import {makeTempDir} from '../helpers/tmp.js'

const run = promisify(execFile)

/**
 * `spec.osPackages` type apt against a repository made with Debian's tools
 * and served by nginx on loopback; the bundle imported with import nginx;
 * then a seed node with no network installs from the imported root alone,
 * with apt's signature checking on.
 */
let repo: AptRepo
let nginx: NginxServer
let work: string
let arch: string

const PACKAGES = [
  // app needs libfoo >= 1.0 (or libalt), and the virtual name "virt-thing".
  {name: 'app', version: '1.0-1', depends: 'libfoo (>= 1.0) | libalt, virt-thing'},
  {name: 'libfoo', version: '0.9-1'},
  {name: 'libfoo', version: '1.2-1', depends: 'libbase'},
  {name: 'libbase', version: '3:1.0~rc1-2'},
  {name: 'libalt', version: '1.0-1'},
  {name: 'provider-a', version: '2.0-1', provides: 'virt-thing'},
  {name: 'unused', version: '1.0-1'},
  {name: 'broken', version: '1.0-1', depends: 'not-there (>= 2)'},
]

function manifest(dir: string, packages: string[], keyring: string): Promise<string> {
  const file = join(dir, 'node-prep.yaml')
  const text = [
    'apiVersion: airlock/v1',
    'kind: Manifest',
    'metadata:',
    '  name: node-prep',
    'spec:',
    '  osPackages:',
    '    - type: apt',
    `      url: ${nginx.url}/debian`,
    '      suites: [stable]',
    `      architectures: [${arch}]`,
    `      keyring: ${keyring}`,
    `      packages: [${packages.join(', ')}]`,
    '',
  ].join('\n')
  return writeFile(file, text).then(() => file)
}

beforeAll(async () => {
  arch = (await run('dpkg', ['--print-architecture'])).stdout.trim()
  repo = await makeAptRepo(PACKAGES, {arch})
  nginx = await startNginx()
  await cp(repo.root, join(nginx.root, 'debian'), {recursive: true})
  work = await makeTempDir('airlock-e2e-apt-')
}, 300_000)

afterAll(async () => {
  await nginx?.stop()
})

describe('osPackages type apt', () => {
  it('build resolves the closure through alternatives, versions and a virtual package; import nginx writes the source line; apt-get on a seed node without network installs from it, signatures checked', async () => {
    const dir = join(work, 'ok')
    await mkdir(dir)
    await cp(repo.keyring, join(dir, 'repo.gpg'))
    const file = await manifest(dir, ['app'], 'repo.gpg')
    const v = await runCli(['validate', file])
    expect(v.code, v.stderr).toBe(0)
    const b = await runCli(['build', file, '--store', join(dir, 'store'), '--out', join(dir, 'bundle'), '--quiet'])
    expect(b.code, b.stderr).toBe(0)
    const lock = JSON.parse(await readFile(join(dir, 'bundle', 'bundle.json'), 'utf8')) as {
      files: {kind: string; path: string; os?: {name: string; version: string}}[]
      osRepositories: {files: string[]}[]
    }
    const debs = lock.files
      .filter((f) => f.kind === 'os-package')
      .map((f) => `${f.os!.name} ${f.os!.version}`)
      .sort()
    // The newest libfoo that satisfies >= 1.0, its dependency, the provider of the virtual name; not libalt (the first alternative is met), not unused.
    expect(debs).toEqual(['app 1.0-1', 'libbase 3:1.0~rc1-2', 'libfoo 1.2-1', 'provider-a 2.0-1'])
    const host = nginx.host
    expect(
      lock.files
        .filter((f) => f.kind === 'os-metadata')
        .map((f) => f.path)
        .sort(),
    ).toEqual(
      [
        `${host}/debian.gpg`,
        `${host}/debian/dists/stable/InRelease`,
        `${host}/debian/dists/stable/main/binary-${arch}/Packages.xz`,
      ].sort(),
    )
    // A second pull fetches nothing: every package and index is in the store.
    const before = (await nginx.accessLines()).length
    const again = await runCli(['pull', file, '--store', join(dir, 'store'), '--json'])
    expect(again.code, again.stderr).toBe(0)
    const requests = (await nginx.accessLines()).slice(before)
    expect(
      requests.filter((l) => !l.includes('/InRelease ')),
      requests.join('\n'),
    ).toEqual([])

    const v2 = await runCli(['verify', join(dir, 'bundle')])
    expect(v2.code, v2.stderr).toBe(0)
    const inspect = await runCli(['inspect', join(dir, 'bundle'), '--json'])
    expect(inspect.stdout).toContain('"os-package"')

    const port = await freePort()
    const www = join(dir, 'www')
    const imp = await runCli([
      'import',
      'nginx',
      join(dir, 'bundle'),
      '--root',
      www,
      '--endpoint',
      `http://127.0.0.1:${port}`,
    ])
    expect(imp.code, imp.stderr).toBe(0)
    const keyName = `${host.replace(/:/g, '-')}-debian`
    const line = `deb [signed-by=/etc/apt/keyrings/${keyName}.gpg] http://127.0.0.1:${port}/${host}/debian stable main`
    expect(imp.stdout).toContain(line)
    expect(await readFile(join(www, host, 'debian.list'), 'utf8')).toContain(line)

    const r = await installOnSeed(dir, www, port, `${host}/debian`, {
      install: 'app',
      query: 'app libfoo libbase provider-a',
    })
    expect(r.code, r.out).toBe(0)
    expect(r.out).toContain('app 1.0-1')
    expect(r.out).toContain('libfoo 1.2-1')
    expect(r.out).not.toMatch(/NO_PUBKEY|not signed|insecure/i)
  }, 600_000)

  it('a package with a dependency no repository has: the pull fails naming it', async () => {
    const dir = join(work, 'missing')
    await mkdir(dir)
    const file = await manifest(dir, ['broken'], repo.keyring)
    const r = await runCli(['pull', file, '--store', join(dir, 'store')])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('broken 1.0-1 (all) depends on not-there (>= 2), which no repository has')
  }, 120_000)

  it('an unknown package: the pull fails with a did-you-mean', async () => {
    const dir = join(work, 'unknown')
    await mkdir(dir)
    const file = await manifest(dir, ['libfo'], repo.keyring)
    const r = await runCli(['pull', file, '--store', join(dir, 'store')])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/no repository has the package libfo: did you mean "libfoo"\?/)
  }, 120_000)

  it('refuses a Release signed by another key, an index whose hash does not match and a tampered .deb; nothing of them lands', async () => {
    const served = join(nginx.root, 'debian')
    const copy = async (name: string) => {
      const to = join(nginx.root, name)
      await cp(served, to, {recursive: true})
      return to
    }
    const other = await makeSigningKey('someone else')

    // 1. InRelease signed by a key not in the keyring.
    const badSig = await copy('badsig')
    await run('gpg', [
      '--homedir',
      other.home,
      '--batch',
      '--yes',
      '--clearsign',
      '--output',
      join(badSig, 'dists/stable/InRelease'),
      join(badSig, 'dists/stable/Release'),
    ])
    // 2. An index changed after the Release listed its hash.
    const badIndex = await copy('badindex')
    const bin = join(badIndex, `dists/stable/main/binary-${arch}`)
    await appendFile(join(bin, 'Packages'), '\n')
    await run('sh', ['-c', 'rm -f Packages.xz Packages.gz; xz -k Packages'], {cwd: bin})
    // 3. A .deb changed after the index listed its hash (same size).
    const badDeb = await copy('baddeb')
    const deb = join(badDeb, 'pool/main/app_1.0-1_all.deb')
    const bytes = await readFile(deb)
    bytes[bytes.length - 1] ^= 0xff
    await writeFile(deb, bytes)

    for (const [name, expected] of [
      ['badsig', /InRelease.*signature check failed: no signature verifies with the key/],
      ['badindex', /Packages\.xz.*digest mismatch/],
      ['baddeb', /app_1\.0-1_all\.deb.*digest mismatch/],
    ] as const) {
      const dir = join(work, name)
      await mkdir(dir)
      const file = join(dir, 'm.yaml')
      await writeFile(
        file,
        (await readFile(await manifest(dir, ['app'], repo.keyring), 'utf8')).replace(
          `${nginx.url}/debian`,
          `${nginx.url}/${name}`,
        ),
      )
      const r = await runCli(['pull', file, '--store', join(dir, 'store')])
      expect(r.code, `${name}: ${r.stderr}`).toBe(1)
      expect(r.stderr, name).toMatch(expected)
      const landed = join(dir, 'store', 'packages', nginx.host, name)
      if (name === 'badsig')
        expect(await stat(join(landed, 'dists/stable/InRelease')).catch(() => undefined), name).toBeUndefined()
      if (name === 'badindex')
        expect(
          await stat(join(landed, `dists/stable/main/binary-${arch}/Packages.xz`)).catch(() => undefined),
          name,
        ).toBeUndefined()
      if (name === 'baddeb')
        expect(await stat(join(landed, 'pool/main/app_1.0-1_all.deb')).catch(() => undefined), name).toBeUndefined()
    }
  }, 300_000)

  it('a delta after an upstream update carries only the changed index and package; import nginx of base then delta equals the full import and apt-get installs from it', async () => {
    const dir = join(work, 'delta')
    await mkdir(dir)
    // A repository of its own under nginx's root, so the update touches no other test's.
    const upstream = await makeAptRepo(
      PACKAGES.filter((p) => p.name !== 'broken'),
      {arch},
    )
    const served = join(nginx.root, 'evolving')
    const publish = async () => {
      await rm(served, {recursive: true, force: true})
      await cp(upstream.root, served, {recursive: true})
    }
    await publish()
    await cp(upstream.keyring, join(dir, 'repo.gpg'))
    const file = join(dir, 'm.yaml')
    await writeFile(
      file,
      (await readFile(await manifest(dir, ['app'], 'repo.gpg'), 'utf8')).replace(
        `${nginx.url}/debian`,
        `${nginx.url}/evolving`,
      ),
    )
    const store = join(dir, 'store')
    const build = async (out: string, ...more: string[]) => {
      const r = await runCli([
        'build',
        file,
        '--store',
        store,
        '--out',
        join(dir, out),
        '--no-importer',
        '--quiet',
        ...more,
      ])
      expect(r.code, r.stderr).toBe(0)
      return JSON.parse(await readFile(join(dir, out, 'bundle.json'), 'utf8')) as {
        files: {kind: string; path: string; sha256: string; fromBase?: boolean}[]
      }
    }
    await build('base')
    // Upstream publishes libfoo 1.3-1: a new InRelease, a new Packages index, one new package.
    await upstream.add([{name: 'libfoo', version: '1.3-1', depends: 'libbase'}])
    await publish()
    const delta = await build('delta', '--since', join(dir, 'base'))
    const full = await build('full')

    const repoPath = `${nginx.host}/evolving`
    const changed = [
      `${repoPath}/dists/stable/InRelease`,
      `${repoPath}/dists/stable/main/binary-${arch}/Packages.xz`,
      `${repoPath}/pool/main/libfoo_1.3-1_all.deb`,
    ]
    expect(
      delta.files
        .filter((f) => !f.fromBase)
        .map((f) => f.path)
        .sort(),
    ).toEqual(changed.sort())
    expect(delta.files.map((f) => [f.path, f.sha256])).toEqual(full.files.map((f) => [f.path, f.sha256]))
    const {stdout} = await run('tar', ['-tzf', join(dir, 'delta', 'component-tools.tar.gz')])
    expect(
      stdout
        .split('\n')
        .filter((l) => l !== '' && !l.endsWith('/'))
        .sort(),
    ).toEqual(changed.map((p) => `component-tools/${p}`).sort())
    const v = await runCli(['verify', join(dir, 'delta'), '--base', join(dir, 'base')])
    expect(v.code, v.stderr).toBe(0)

    const port = await freePort()
    const endpoint = `http://127.0.0.1:${port}`
    const www = join(dir, 'www')
    const wwwFull = join(dir, 'www-full')
    for (const [bundle, root] of [
      ['base', www],
      ['delta', www],
      ['full', wwwFull],
    ]) {
      const r = await runCli(['import', 'nginx', join(dir, bundle), '--root', root, '--endpoint', endpoint])
      expect(r.code, `${bundle}: ${r.stderr}`).toBe(0)
    }
    // Every file the full bundle's import wrote is there, byte for byte; the only other file is the superseded libfoo, which no index names.
    const listed = async (root: string) =>
      (await readdir(root, {recursive: true, withFileTypes: true}))
        .filter((e) => e.isFile())
        .map((e) => relative(root, join(e.parentPath, e.name)))
        .sort()
    const fullFiles = await listed(wwwFull)
    expect(fullFiles).toContain(`${repoPath}.list`)
    for (const f of fullFiles)
      expect((await readFile(join(www, f))).equals(await readFile(join(wwwFull, f))), f).toBe(true)
    expect((await listed(www)).filter((f) => !fullFiles.includes(f))).toEqual([
      `${repoPath}/pool/main/libfoo_1.2-1_all.deb`,
    ])

    const r = await installOnSeed(dir, www, port, repoPath, {install: 'app', query: 'app libfoo libbase provider-a'})
    expect(r.code, r.out).toBe(0)
    expect(r.out).toContain('app 1.0-1')
    expect(r.out).toContain('libfoo 1.3-1')
    expect(r.out).not.toMatch(/NO_PUBKEY|not signed|insecure/i)
  }, 600_000)
})

/**
 * The seed node: a copy of the minimal Debian root, its own sources removed,
 * only the key and the `.list` that import nginx wrote for the repository at
 * `repoPath` under `www`; inside its own network namespace (loopback only)
 * `www` is served on `port` and apt-get installs `install`, then prints
 * "name version" of each of `query`.
 */
async function installOnSeed(
  dir: string,
  www: string,
  port: number,
  repoPath: string,
  {install, query}: {install: string; query: string},
): Promise<{code: number; out: string}> {
  const keyName = repoPath.replace(/[^A-Za-z0-9._-]+/g, '-')
  const root = join(dir, 'root')
  await run('cp', ['-a', await seedRootfs(), root])
  await rm(join(root, 'etc', 'apt', 'sources.list'), {force: true})
  await rm(join(root, 'etc', 'apt', 'sources.list.d'), {recursive: true, force: true})
  await mkdir(join(root, 'etc', 'apt', 'sources.list.d'), {recursive: true})
  await mkdir(join(root, 'etc', 'apt', 'keyrings'), {recursive: true})
  await cp(join(www, `${repoPath}.gpg`), join(root, 'etc', 'apt', 'keyrings', `${keyName}.gpg`))
  await cp(join(www, `${repoPath}.list`), join(root, 'etc', 'apt', 'sources.list.d', 'airlock.list'))
  const inSeed = (cmd: string) =>
    `chroot '${root}' /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive sh -ec '${cmd}'`
  const script = [
    'set -eu',
    'ip link set lo up',
    `mount -t proc proc '${root}/proc'`,
    `python3 -m http.server --bind 127.0.0.1 --directory '${www}' ${port} >'${dir}/http.log' 2>&1 &`,
    'pid=$!',
    "trap 'kill $pid 2>/dev/null || true' EXIT",
    `i=0; until curl -sf -o /dev/null http://127.0.0.1:${port}/${repoPath}/dists/stable/InRelease; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done`,
    inSeed(
      `apt-get update -o Acquire::Languages=none; apt-get install -y --no-install-recommends ${install}; dpkg-query -W -f "\\\${Package} \\\${Version}\\n" ${query}`,
    ),
  ].join('\n')
  return inNamespace(script)
}

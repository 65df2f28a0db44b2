import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {beforeAll, describe, expect, it} from 'vitest'

import {fileData, makeBundle} from '../helpers/bundle-fixture.js'
import {runCli} from '../helpers/cli.js'
import {ownArch} from '../helpers/executable.js'
import {inNamespace, seedRootfs} from '../helpers/seed-rootfs.js'
import {makeStoreFixture, type StoreFixture} from '../helpers/store-fixture.js'
import {makeTempDir} from '../helpers/tmp.js'

const run = promisify(execFile)
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const exe = `airlock-linux-${ownArch}`

/** A command inside the seed root, with a seed node's bare environment (nothing of this machine's leaks in). */
const inSeed = (root: string, cmd: string) =>
  `chroot '${root}' /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root sh -ec '${cmd}'`

/** The repository an image lands in on `import registry` without --namespace: its source path, registry host dropped. */
const repoOf = (ref: string) => ref.replace(/^[^/]+\//, '').replace(/:[^/:]+$/, '')

let store: StoreFixture
let root: string
let work: string

/** Lines that start the distribution registry on 127.0.0.1:5000 inside the namespace, its data kept across tests. */
async function registryLines(): Promise<string[]> {
  const reg = join(work, 'registry')
  await mkdir(join(reg, 'data'), {recursive: true})
  const config = join(reg, 'config.yml')
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${reg}/data`,
      'http:',
      '  addr: 127.0.0.1:5000',
      '',
    ].join('\n'),
  )
  return [
    'set -eu',
    'ip link set lo up',
    `mount -t proc proc '${root}/proc'`,
    // The registry runs from this machine's file system: the point is what the seed root lacks, not where the registry lives.
    `OTEL_TRACES_EXPORTER=none docker-registry serve '${config}' >>'${reg}/log' 2>&1 &`,
    'pid=$!',
    "trap 'kill $pid 2>/dev/null || true' EXIT",
    'i=0; until curl -sf -o /dev/null http://127.0.0.1:5000/v2/; do i=$((i+1)); [ $i -lt 200 ] || { echo registry did not start; exit 1; }; sleep 0.1; done',
  ]
}

/**
 * Lines that start, inside the seed root, a command that serves on 127.0.0.1:5001 (its pid in $spid, its output in the
 * namespace's log) and wait until /v2/ answers; the client then runs from this machine, in the same network namespace.
 */
async function serveLines(cmd: string): Promise<string[]> {
  return [
    'set -eu',
    'ip link set lo up',
    `mount -t proc proc '${root}/proc'`,
    `${inSeed(root, cmd)} >'${work}/serve.log' 2>&1 &`,
    'spid=$!',
    "trap 'kill $spid 2>/dev/null || true' EXIT",
    `i=0; until curl -sf -o /dev/null http://127.0.0.1:5001/v2/; do i=$((i+1)); if [ $i -ge 600 ] || ! kill -0 $spid 2>/dev/null; then echo serve did not start; cat '${work}/serve.log'; exit 1; fi; sleep 0.1; done`,
  ]
}

beforeAll(async () => {
  const [rootfs, fixture] = await Promise.all([seedRootfs(), makeStoreFixture()])
  store = fixture
  work = await makeTempDir('airlock-e2e-seed-')
  root = join(work, 'root')
  await run('cp', ['-a', rootfs, root])
  const bundle = join(work, 'bundle')
  const b = await runCli(['bundle', '--store', store.root, '--out', bundle, '--quiet'])
  expect(b.code, b.stderr).toBe(0)
  // Copied onto the seed node as a user would: the folder, nothing else.
  await run('cp', ['-a', bundle, join(root, 'bundle')])
}, 600_000)

describe('a seed node with no Node.js and no network', () => {
  it('sha256sum -c, ./import.sh nginx, the executable verifies and pushes every image into a registry on loopback', async () => {
    const lock = JSON.parse(await readFile(join(root, 'bundle', 'bundle.json'), 'utf8')) as {
      images: {ref: string; digest: string}[]
      files: {kind: string; path: string; sha256: string}[]
    }
    const readBack = lock.images.map(
      (i) =>
        `printf '%s ' '${repoOf(i.ref)}@${i.digest}'; skopeo inspect --raw --tls-verify=false docker://127.0.0.1:5000/${repoOf(i.ref)}@${i.digest} | sha256sum | cut -c1-64`,
    )
    const script = [
      ...(await registryLines()),
      'echo "== network"; if curl -s --max-time 3 -o /dev/null http://deb.debian.org/; then echo reachable; else echo unreachable; fi',
      `echo "== node"; ${inSeed(root, 'for c in node nodejs npm; do command -v $c || true; done; ls -d /usr/lib/node_modules /usr/local/lib/node_modules 2>/dev/null || echo none')}`,
      `echo "== seed"; ${inSeed(root, `cd /bundle; sha256sum -c SHA256SUMS; ./import.sh nginx /srv/www; ./${exe} verify .; ./${exe} import registry . --registry 127.0.0.1:5000 --insecure`)}`,
      'echo "== read back"',
      ...readBack,
    ].join('\n')
    const r = await inNamespace(script)
    expect(r.code, r.out).toBe(0)
    const section = (name: string) => r.out.split(`== ${name}\n`)[1]?.split('\n== ')[0] ?? ''
    expect(section('network').trim()).toBe('unreachable')
    expect(section('node').trim()).toBe('none')
    const seed = section('seed')
    for (const name of [
      'offline-files.tar.gz',
      'component-tools.tar.gz',
      'offline-images.tar',
      exe,
      'import.sh',
      'bundle.json',
    ])
      expect(seed).toContain(`${name}: OK`)
    expect(seed).toMatch(/^\.: OK \(3 images, \d+ files; 6 bundle files checked\)$/m)
    // No warning of the executable's own (a SEA notice, an engine check) on stderr.
    expect(seed).not.toMatch(/Warning|ExperimentalWarning|\(node:\d+\)/)
    // Every image, read back by an independent client at the digest bundle.json records.
    const back = section('read back').trim().split('\n')
    expect(back).toHaveLength(lock.images.length)
    for (const line of back) {
      const [at, hex] = line.split(' ')
      expect(`sha256:${hex}`, at).toBe(at.split('@')[1])
    }
    // Every file of the bundle on the web root, with the sha256 bundle.json lists.
    for (const f of lock.files) expect(sha256(await readFile(join(root, 'srv', 'www', f.path))), f.path).toBe(f.sha256)
  })

  it('every command runs from the executable, outside any clone: --version, --help, --json, a mistyped command, validate, build (pull, and bundle copying itself), inspect, verify, serve, import nginx of many small files', async () => {
    // Enough small files that most are written by import nginx's write thread, a worker the executable starts from its own code.
    const many = Array.from({length: 120}, (_, i) => ({
      path: `files.example/d${i % 7}/f${i}`,
      data: fileData(500 + i * 37),
    }))
    await makeBundle(join(root, 'many'), many)
    const lock = JSON.parse(await readFile(join(root, 'bundle', 'bundle.json'), 'utf8')) as {
      images: {ref: string; digest: string}[]
    }
    // The images the first test pushed, pulled again from the registry on loopback.
    const manifest = ['apiVersion: airlock/v1', 'kind: Manifest', 'metadata:', '  name: again', 'spec:', '  images:']
    for (const i of lock.images)
      manifest.push(
        `    - ref: 127.0.0.1:5000/${repoOf(i.ref)}:${i.ref.split(':').at(-1)}@${i.digest}`,
        '      platforms: [all]',
      )
    await mkdir(join(root, 'work3'))
    await writeFile(join(root, 'work3', 'again.yaml'), `${manifest.join('\n')}\n`)
    const a = `/bundle/${exe}`
    const r = await inNamespace(
      [
        ...(await registryLines()),
        inSeed(
          root,
          [
            'cd /work3',
            `${a} --version >version.txt`,
            `${a} --help >help.txt`,
            `${a} import s3 --help >s3-help.txt`,
            `${a} validate again.yaml --json >validate.json`,
            `set +e; ${a} validate missing.yaml --json >missing.json; echo $? >missing.code; set -e`,
            `set +e; ${a} pul --json >pul.json 2>pul.err; echo $? >pul.code; set -e`,
            `${a} build again.yaml --store store --out again --json >build.json`,
            `${a} inspect again --json >inspect.json`,
            `${a} verify again --json >verify.json`,
            `${a} serve again --print-mirror-config containerd --advertise http://seed.example:5000 >mirror.txt`,
            `${a} import nginx /many --root /srv/many --json >many.json`,
          ].join('; '),
        ),
      ].join('\n'),
    )
    expect(r.code, r.out).toBe(0)
    expect(r.out).not.toMatch(/Warning|\(node:\d+\)/)
    const at = (f: string) => readFile(join(root, 'work3', f), 'utf8')
    expect(await at('version.txt')).toMatch(/^airlock\/\d+\.\d+\.\d+ linux-(x64|arm64) node-v(2[4-9]|[3-9][0-9])\./)
    for (const c of ['build', 'bundle', 'import', 'inspect', 'pull', 'serve', 'validate', 'verify'])
      expect(await at('help.txt')).toMatch(new RegExp(`^  ${c}(\\s|$)`, 'm'))
    expect(await at('s3-help.txt')).toContain('--bucket')
    expect(JSON.parse(await at('validate.json'))).toMatchObject({
      valid: true,
      name: 'again',
      counts: {images: lock.images.length},
    })
    expect(await at('missing.code')).toBe('2\n')
    expect(JSON.parse(await at('missing.json')).error).toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('missing.yaml'),
    })
    // A mistyped command: the usage error and the did-you-mean the npm-installed CLI gives, not oclif's own message.
    expect(await at('pul.code')).toBe('2\n')
    expect(JSON.parse(await at('pul.json')).error).toMatchObject({
      kind: 'usage',
      exitCode: 2,
      message: 'airlock pul: no such command',
    })
    expect(await at('pul.err')).toContain('did you mean airlock pull?')
    expect(JSON.parse(await at('build.json'))).toMatchObject({name: 'again', counts: {images: lock.images.length}})
    expect(JSON.parse(await at('verify.json'))).toMatchObject({ok: true})
    // The executable carried itself and import.sh into the new bundle: the same bytes the clone's bundle has.
    const inspected = JSON.parse(await at('inspect.json')) as {
      images: {digest: string}[]
      tools: {path: string; sha256: string}[]
    }
    expect(inspected.images.map((i) => i.digest).sort()).toEqual(lock.images.map((i) => i.digest).sort())
    for (const t of [exe, 'import.sh']) {
      const mine = sha256(await readFile(join(root, 'work3', 'again', t)))
      expect(mine, t).toBe(sha256(await readFile(join(root, 'bundle', t))))
      expect(inspected.tools.find((x) => x.path === t)?.sha256, t).toBe(mine)
    }
    expect(await at('mirror.txt')).toMatch(/^# 127\.0\.0\.1\S*\/hosts\.toml$/m)
    expect(await at('mirror.txt')).toContain('[host."http://seed.example:5000"]')
    expect(JSON.parse(await at('many.json'))).toMatchObject({counts: {files: many.length, written: many.length}})
    for (const f of many) expect(sha256(await readFile(join(root, 'srv', 'many', f.path))), f.path).toBe(sha256(f.data))
  })

  it('the executable serves the bundle in place, and a client outside the seed root pulls every image and a file through it', async () => {
    const lock = JSON.parse(await readFile(join(root, 'bundle', 'bundle.json'), 'utf8')) as {
      images: {ref: string; digest: string}[]
      files: {path: string; sha256: string}[]
    }
    const pulled = join(work, 'pulled')
    const r = await inNamespace(
      [
        ...(await serveLines(`cd /bundle; exec ./${exe} serve . --listen 127.0.0.1:5001 --cache-dir /tmp/serve-cache`)),
        `mkdir -p '${pulled}'`,
        'echo "== images"',
        // dir: keeps every manifest's bytes (oci: would convert a Docker one), and skopeo checks each blob's digest.
        ...lock.images.map(
          (i, n) =>
            `skopeo copy --quiet --all --src-tls-verify=false docker://127.0.0.1:5001/${repoOf(i.ref)}@${i.digest} dir:${pulled}/${n} >&2; printf '%s sha256:%s\\n' '${i.digest}' "$(sha256sum <${pulled}/${n}/manifest.json | cut -c1-64)"`,
        ),
        'echo "== file"',
        `curl -sf http://127.0.0.1:5001/${lock.files[0].path} | sha256sum | cut -c1-64`,
        'echo "== stop"',
        'kill -TERM $spid; wait $spid; echo "served exit $?"',
      ].join('\n'),
    )
    expect(r.code, r.out).toBe(0)
    const section = (name: string) => r.out.split(`== ${name}\n`)[1]?.split('\n== ')[0] ?? ''
    expect(r.out).not.toMatch(/ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING|dynamic import callback/)
    const images = section('images')
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('sha256:'))
    expect(images, r.out).toHaveLength(lock.images.length)
    for (const line of images) {
      const [want, got] = line.split(' ')
      expect(got, r.out).toBe(want)
    }
    expect(section('file').trim(), r.out).toBe(lock.files[0].sha256)
    expect(section('stop'), r.out).toContain('served exit 0')
  })

  it('./import.sh serve serves the bundle in place with the executable; --help lists every command', async () => {
    const lock = JSON.parse(await readFile(join(root, 'bundle', 'bundle.json'), 'utf8')) as {
      images: {ref: string}[]
      files: {path: string; sha256: string}[]
    }
    const r = await inNamespace(
      [
        ...(await serveLines(
          'cd /bundle; exec ./import.sh serve --listen 127.0.0.1:5001 --cache-dir /tmp/serve-cache-sh',
        )),
        'echo "== catalog"',
        'curl -sf http://127.0.0.1:5001/v2/_catalog; echo',
        'echo "== file"',
        `curl -sf http://127.0.0.1:5001/${lock.files[1].path} | sha256sum | cut -c1-64`,
        'echo "== help"',
        inSeed(root, '/bundle/import.sh --help'),
        'echo "== stop"',
        'kill -TERM $spid; wait $spid; echo "served exit $?"',
      ].join('\n'),
    )
    expect(r.code, r.out).toBe(0)
    const section = (name: string) => r.out.split(`== ${name}\n`)[1]?.split('\n== ')[0] ?? ''
    const catalog = JSON.parse(section('catalog')) as {repositories: string[]}
    for (const i of lock.images) expect(catalog.repositories, r.out).toContain(repoOf(i.ref))
    expect(section('file').trim(), r.out).toBe(lock.files[1].sha256)
    for (const c of ['nginx ROOT', 's3 ', 'registry ', 'serve ', 'verify', 'inspect'])
      expect(section('help')).toContain(`./import.sh ${c}`)
    expect(section('stop'), r.out).toContain('served exit 0')
  })

  it('./import.sh refuses an executable with one byte flipped (nothing written, exit 1) and says how to take the tar-only path on purpose', async () => {
    await run('cp', ['-a', join(root, 'bundle'), join(root, 'flip')])
    const file = join(root, 'flip', exe)
    const bytes = await readFile(file)
    bytes[Math.floor(bytes.length / 2)] ^= 0x01
    await writeFile(file, bytes)
    try {
      const r = await inNamespace(
        inSeed(
          root,
          'cd /flip; set +e; ./import.sh nginx /srv/flip; echo "exit $?"; set -e; if [ -e /srv/flip ]; then echo "written"; else echo "nothing written"; fi; ./import.sh --no-executable nginx /srv/flip',
        ),
      )
      expect(r.code, r.out).toBe(0)
      expect(r.out).toContain(
        `import.sh: /flip/${exe} does not match its line of SHA256SUMS (sha256 ${sha256(bytes)}, expected `,
      )
      expect(r.out).toContain('./import.sh --no-executable nginx ROOT')
      expect(r.out).toMatch(/^exit 1$/m)
      expect(r.out).toMatch(/^nothing written$/m)
      expect(r.out).toMatch(/^\d+ files? written, 0 already there, under \/srv\/flip$/m)
    } finally {
      await rm(join(root, 'flip'), {recursive: true, force: true})
    }
  })

  it("a delta leaves out the executable its base carries; its import.sh runs the base's, beside it or named with --base", async () => {
    const delta = join(work, 'delta')
    const b = await runCli(['bundle', '--store', store.root, '--out', delta, '--since', join(work, 'bundle'), '--json'])
    expect(b.code, b.stderr).toBe(0)
    const lock = JSON.parse(await readFile(join(delta, 'bundle.json'), 'utf8')) as {
      tools: {path: string; sha256: string; fromBase?: true}[]
    }
    const base = JSON.parse(await readFile(join(root, 'bundle', 'bundle.json'), 'utf8')) as {
      tools: {path: string; sha256: string}[]
    }
    expect(lock.tools.find((t) => t.path === exe)).toEqual({...base.tools.find((t) => t.path === exe), fromBase: true})
    expect(lock.tools.find((t) => t.path === 'import.sh')?.fromBase).toBeUndefined()
    await expect(readFile(join(delta, exe))).rejects.toThrow(/ENOENT/)
    expect(await readFile(join(delta, 'SHA256SUMS'), 'utf8')).not.toContain(exe)
    // The summary's rate is of the bytes its size counts: what was written.
    const result = JSON.parse(b.stdout) as {counts: {bytesOut: number}; items: {size: number}[]}
    expect(result.counts.bytesOut).toBe(result.items.reduce((n, i) => n + i.size, 0))
    expect(result.counts.bytesOut).toBeLessThan(1 << 20)
    await run('cp', ['-a', delta, join(root, 'delta')])
    await mkdir(join(root, 'elsewhere'))
    await run('cp', ['-a', delta, join(root, 'elsewhere', 'delta')])
    const r = await inNamespace(
      inSeed(
        root,
        '/delta/import.sh inspect --json >/delta-inspect.json; /delta/import.sh verify; /elsewhere/delta/import.sh verify --base /bundle; set +e; /elsewhere/delta/import.sh verify; echo "exit $?"',
      ),
    )
    expect(r.code, r.out).toBe(0)
    expect(r.out.match(/^\.?\/?\S*: OK /gm) ?? [], r.out).toHaveLength(2)
    expect(r.out).toContain(
      `import.sh: this delta leaves ${exe} to its base, and no folder named with --base nor beside /elsewhere/delta holds it`,
    )
    expect(r.out).toMatch(/^exit 1$/m)
    const inspected = JSON.parse(await readFile(join(root, 'delta-inspect.json'), 'utf8')) as {
      tools: {path: string; fromBase: boolean}[]
    }
    expect(inspected.tools.map((t) => [t.path, t.fromBase])).toEqual([
      [exe, true],
      ['import.sh', false],
    ])
  })

  it('./import.sh nginx ROOT --bundle-key imports a signed bundle, and refuses (root untouched) a re-hashed tampered one, one missing its .sig, and --bundle-key on the tar-only path', async () => {
    const key = join(work, 'sign.pem')
    await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key])
    await run('openssl', ['ec', '-in', key, '-pubout', '-out', join(root, 'pub.pem')])
    const b = await runCli([
      'bundle',
      '--store',
      store.root,
      '--out',
      join(root, 'signed'),
      '--sign-key',
      key,
      '--quiet',
    ])
    expect(b.code, b.stderr).toBe(0)
    // Copies sharing the big files' inodes: a changed file is written anew, never through the link.
    const rewrite = async (file: string, data: Buffer | string) => {
      await rm(file)
      await writeFile(file, data)
    }
    await run('cp', ['-al', join(root, 'signed'), join(root, 'tampered')])
    const archive = join(root, 'tampered', 'offline-files.tar.gz')
    const bytes = Buffer.concat([await readFile(archive), Buffer.alloc(512)])
    await rewrite(archive, bytes)
    const sums = await readFile(join(root, 'tampered', 'SHA256SUMS'), 'utf8')
    const resummed = sums.replace(/^[0-9a-f]{64}(  offline-files\.tar\.gz)$/m, `${sha256(bytes)}$1`)
    expect(resummed).not.toBe(sums)
    await rewrite(join(root, 'tampered', 'SHA256SUMS'), resummed)
    await run('cp', ['-al', join(root, 'signed'), join(root, 'nosig')])
    await rm(join(root, 'nosig', 'SHA256SUMS.sig'))
    try {
      const r = await inNamespace(
        inSeed(
          root,
          [
            './signed/import.sh nginx /srv/signed --bundle-key /pub.pem',
            'set +e',
            './tampered/import.sh nginx /srv/tampered --bundle-key /pub.pem; echo "tampered exit $?"',
            './nosig/import.sh nginx /srv/nosig --bundle-key /pub.pem; echo "nosig exit $?"',
            './signed/import.sh --no-executable nginx /srv/noexe --bundle-key /pub.pem; echo "noexe exit $?"',
            'for d in tampered nosig noexe; do if [ -e /srv/$d ]; then echo "$d written"; else echo "$d untouched"; fi; done',
          ].join('; '),
        ),
      )
      expect(r.code, r.out).toBe(0)
      const lock = JSON.parse(await readFile(join(root, 'signed', 'bundle.json'), 'utf8')) as {
        files: {path: string; sha256: string}[]
      }
      expect(lock.files.length).toBeGreaterThan(0)
      for (const f of lock.files)
        expect(sha256(await readFile(join(root, 'srv', 'signed', f.path))), f.path).toBe(f.sha256)
      for (const d of ['tampered', 'nosig']) expect(r.out).toMatch(new RegExp(`^${d} exit 2$`, 'm'))
      expect(r.out).toContain('SHA256SUMS.sig does not verify SHA256SUMS with /pub.pem')
      expect(r.out).toContain('SHA256SUMS.sig is missing')
      expect(r.out).toMatch(/^noexe exit 2$/m)
      expect(r.out).toContain(
        'import.sh: --bundle-key: without the airlock executable import.sh cannot check SHA256SUMS.sig',
      )
      for (const d of ['tampered', 'nosig', 'noexe']) expect(r.out).toMatch(new RegExp(`^${d} untouched$`, 'm'))
    } finally {
      for (const d of ['signed', 'tampered', 'nosig', 'pub.pem', 'srv/signed'])
        await rm(join(root, d), {recursive: true, force: true})
    }
  })

  it('./import.sh nginx works with sha256sum and tar alone once the executable is gone', async () => {
    await rm(join(root, 'bundle', exe))
    const r = await inNamespace(
      inSeed(root, './bundle/import.sh nginx /srv/www2 && ./bundle/import.sh nginx /srv/www2'),
    )
    expect(r.code, r.out).toBe(0)
    expect(r.out).toMatch(/^(\d+) files? written, 0 already there, under \/srv\/www2$/m)
    expect(r.out).toMatch(/^0 files written, \d+ already there, under \/srv\/www2$/m)
    const lock = JSON.parse(await readFile(join(root, 'bundle', 'bundle.json'), 'utf8')) as {
      files: {path: string; sha256: string}[]
    }
    for (const f of lock.files) expect(sha256(await readFile(join(root, 'srv', 'www2', f.path))), f.path).toBe(f.sha256)
    // The registry and S3 need the executable: a clear refusal, not a half-done job.
    const s3 = await inNamespace(inSeed(root, './bundle/import.sh registry --registry 127.0.0.1:5000'))
    expect(s3.code).toBe(1)
    expect(s3.out).toContain(`this bundle carries no airlock executable for ${ownArch}`)
  })
})

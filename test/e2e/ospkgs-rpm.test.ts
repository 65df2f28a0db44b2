import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {cp, readdir, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {GetObjectCommand, HeadObjectCommand} from '@aws-sdk/client-s3'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {BundleLock} from '../../src/lib/bundle-json.js'
import {runCli} from '../helpers/cli.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {startRgw} from '../helpers/rgw.js'
import {buildRpms, createRepo, makeRpmKey, type RpmKey, signRpms} from '../helpers/rpm-repo.js'
import {makeTempDir} from '../helpers/tmp.js'

// An rpm repository made in the test (rpmbuild, rpmsign, createrepo_c) served
// by nginx; `pull` and `bundle` mirror the closure, `import nginx` unpacks it, and dnf
// installs from the imported root alone, over HTTP inside `unshare -n`, with
// gpgcheck=1.
const run = promisify(execFile)

let web: NginxServer
let key: RpmKey
let work: string
/** The bundle the first test builds (and the S3 test imports). */
let out: string

beforeAll(async () => {
  work = await makeTempDir('airlock-e2e-rpm-')
  out = join(work, 'bundle')
  key = await makeRpmKey()
  const signed = await buildRpms([
    // By name (newest wins), by a file only filelists.xml lists, and a rich dependency.
    {
      name: 'app',
      requires: ['libfoo >= 2', '/usr/share/data/file', '(backend-a or backend-b)'],
      files: ['/usr/bin/app'],
    },
    {name: 'libfoo', version: '1.0'},
    {name: 'libfoo', version: '2.0'},
    {name: 'datapkg', files: ['/usr/share/data/file']},
    {name: 'backend-b'},
    {name: 'unrelated'},
  ])
  await signRpms(signed, key)
  const root = await makeTempDir('airlock-e2e-rpm-web-')
  await createRepo(join(root, 'el', 'os'), signed)
  // A second repository whose package is not signed.
  await createRepo(join(root, 'unsigned', 'os'), await buildRpms([{name: 'nosig'}]))
  await writeFile(join(work, 'RPM-GPG-KEY-test'), key.armored)
  web = await startNginx({root})
}, 180_000)

afterAll(async () => {
  await web?.stop()
})

async function manifest(name: string, url: string, packages: string[]): Promise<string> {
  const file = join(work, `${name}.yaml`)
  await writeFile(
    file,
    [
      'apiVersion: airlock/v1',
      'kind: Manifest',
      `metadata: {name: ${name}, version: "1"}`,
      'spec:',
      '  platforms: [linux/amd64]',
      '  osPackages:',
      '    - type: rpm',
      `      url: ${url}`,
      '      gpgKey: RPM-GPG-KEY-test',
      `      packages: [${packages.join(', ')}]`,
      '',
    ].join('\n'),
  )
  return file
}

describe('rpm repositories', () => {
  it('builds, imports into nginx, and dnf installs the closure from it with gpgcheck=1', async () => {
    const m = await manifest('node-prep', `${web.url}/el/os`, ['app'])
    const store = join(work, 'store')
    const pulled = await runCli(['pull', m, '--store', store])
    expect(pulled.stderr).not.toMatch(/Error/)
    expect(pulled.code).toBe(0)
    const bundled = await runCli(['bundle', '--store', store, '--out', out, '--no-importer'])
    expect(bundled.stderr).not.toMatch(/Error/)
    expect(bundled.code).toBe(0)
    const lock = JSON.parse(await readFile(join(out, 'bundle.json'), 'utf8')) as BundleLock
    const pkgs = lock.files
      .filter((f) => f.kind === 'os-package')
      .map((f) => `${f.os!.name}-${f.os!.version}`)
      .sort()
    expect(pkgs).toEqual(['app-1.0-1', 'backend-b-1.0-1', 'datapkg-1.0-1', 'libfoo-2.0-1'])
    expect(lock.osRepositories?.[0].type).toBe('rpm')

    const root = join(work, 'root')
    // The node's own network namespace: the port is free there whatever the host runs.
    const port = 18080
    const endpoint = `http://127.0.0.1:${port}`
    const imported = await runCli(['import', 'nginx', out, '--root', root, '--endpoint', endpoint])
    expect(imported.stderr).not.toMatch(/Error/)
    expect(imported.code).toBe(0)
    const repo = lock.osRepositories![0]
    const base = join(root, repo.path)
    expect((await stat(join(base, 'repodata', 'repomd.xml'))).isFile()).toBe(true)
    expect(await readFile(join(base, 'repodata', 'repomd.xml'), 'utf8')).toBe(
      await (await fetch(`${web.url}/el/os/repodata/repomd.xml`)).text(),
    )

    // The node: an empty root (nginx's workers run as root to read the private temp folders), dnf against the imported root served by nginx inside its own network namespace.
    const node = join(work, 'node')
    const reposd = join(work, 'yum.repos.d')
    const cache = join(work, 'dnf-cache')
    await run('mkdir', ['-p', node, reposd, cache])
    // The .repo stanza import nginx wrote beside the repository (and printed), used as it is.
    const stanza = await readFile(`${base}.repo`, 'utf8')
    expect(stanza).toMatch(/^gpgcheck=1$/m)
    expect(stanza).toContain(`baseurl=${endpoint}/${repo.path}\n`)
    expect(stanza).toContain(`gpgkey=${endpoint}/${repo.key}\n`)
    expect(imported.stdout).toContain(`${repo.path}.repo (for the node):`)
    expect(imported.stdout).toContain(stanza.trimEnd())
    await cp(`${base}.repo`, join(reposd, 'mirror.repo'))
    const conf = join(work, 'nginx.conf')
    await writeFile(
      conf,
      `daemon on; user root; pid ${work}/nginx.pid; error_log ${work}/nginx-error.log; events {}
http { access_log off; server { listen 127.0.0.1:${port}; root ${root}; } }\n`,
    )
    const script = [
      'set -e',
      'ip link set lo up',
      `nginx -c ${conf}`,
      `dnf -y -q --installroot=${node} --releasever=1 --setopt=reposdir=${reposd} --setopt=cachedir=${cache} --setopt=install_weak_deps=0 install app > ${work}/dnf.log 2>&1 || { cat ${work}/dnf.log; exit 1; }`,
      `rpm --root ${node} -qa --qf '%{NAME}-%{VERSION}\\n' | sort`,
      `kill $(cat ${work}/nginx.pid)`,
    ].join('\n')
    // dnf's own words in the failure, when it fails.
    const {stdout} = await run('unshare', ['-n', 'sh', '-c', script], {maxBuffer: 16 * 1024 * 1024}).catch(
      (e: {stdout: string; stderr: string}) => {
        throw new Error(`dnf in unshare -n failed:\n${e.stdout}\n${e.stderr}`)
      },
    )
    const installed = stdout.trim().split('\n')
    expect(installed.filter((l) => !l.startsWith('gpg-pubkey-'))).toEqual([
      'app-1.0',
      'backend-b-1.0',
      'datapkg-1.0',
      'libfoo-2.0',
    ])
    // gpgcheck=1 made dnf import the key from gpgkey= before it installed anything.
    expect(installed.filter((l) => l.startsWith('gpg-pubkey-'))).toHaveLength(1)
  })

  it('import s3 puts the .repo stanza beside the repository, naming the bucket URL, with its sha256', async () => {
    const s3 = await startRgw()
    try {
      const creds = ['--access-key', s3.accessKey, '--secret-key', s3.secretKey, '--region', s3.region]
      const lock = JSON.parse(await readFile(join(out, 'bundle.json'), 'utf8')) as BundleLock
      const repo = lock.osRepositories![0]
      const r = await runCli([
        'import',
        's3',
        out,
        '--endpoint',
        s3.endpoint,
        '--bucket',
        'nodes',
        '--prefix',
        'el',
        '--create-bucket',
        ...creds,
      ])
      expect(r.code, r.stderr).toBe(0)
      const got = await s3.client().send(new GetObjectCommand({Bucket: 'nodes', Key: `el/${repo.path}.repo`}))
      const body = Buffer.from(await got.Body!.transformToByteArray())
      const base = `${s3.endpoint}/nodes/el`
      // The same stanza import nginx writes for a root served at the bucket's URL.
      expect(body.toString()).toBe(
        await readFile(join(work, 'root', `${repo.path}.repo`), 'utf8').then((t) =>
          t.replaceAll('http://127.0.0.1:18080', base),
        ),
      )
      expect(body.toString()).toContain(`baseurl=${base}/${repo.path}\n`)
      expect(got.Metadata?.sha256).toBe(createHash('sha256').update(body).digest('hex'))
      expect(r.stdout).toContain(`${repo.path}.repo (for the node):`)
      // The objects it names are there.
      await s3.client().send(new HeadObjectCommand({Bucket: 'nodes', Key: `el/${repo.path}/repodata/repomd.xml`}))
      await s3.client().send(new HeadObjectCommand({Bucket: 'nodes', Key: `el/${repo.key}`}))
    } finally {
      await s3.stop()
    }
  }, 300_000)

  it('refuses an unsigned package at pull, and nothing of it lands', async () => {
    const m = await manifest('unsigned', `${web.url}/unsigned/os`, ['nosig'])
    const store = join(work, 'store-unsigned')
    const r = await runCli(['pull', m, '--store', store])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/nosig-1\.0-1\.noarch\): signature check failed: the package is not signed/)
    const list = await readdir(join(store, 'packages'), {recursive: true})
    expect(list.filter((p) => String(p).endsWith('.rpm'))).toEqual([])
  })
})

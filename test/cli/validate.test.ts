import {spawnSync} from 'node:child_process'
import {existsSync, statSync} from 'node:fs'
import {mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'

const root = path.join(import.meta.dirname, '../..')
const k8s = path.join(root, 'manifests/kubernetes-1.29-amd64.yaml')

/** bin/run.js runs dist/: build when it is missing or older than the sources this file tests. */
async function ensureBuilt(): Promise<void> {
  const built = path.join(root, 'dist/commands/validate.js')
  const sources = [path.join(root, 'src/commands/validate.ts'), path.join(root, 'src/cli/base-command.ts')]
  for (const f of await readdir(path.join(root, 'src/lib/manifest')))
    sources.push(path.join(root, 'src/lib/manifest', f))
  const stale = !existsSync(built) || sources.some((s) => statSync(s).mtimeMs > statSync(built).mtimeMs)
  if (!stale) return
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], {cwd: root, encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`the build for this test failed:\n${r.stdout}${r.stderr}`)
}

const STACK_LINE = /^\s+at .+(:\d+:\d+\)?|\(native\))$/m

describe('airlock validate', () => {
  let dir: string
  beforeAll(async () => {
    await ensureBuilt()
    dir = await mkdtemp(path.join(tmpdir(), 'airlock-validate-'))
  }, 180_000)
  afterAll(async () => {
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  it('accepts the Kubernetes 1.29 manifest and prints a summary', async () => {
    const r = await runCli(['validate', k8s])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('kubernetes-1.29-amd64 1.29.5: valid')
    expect(r.stdout).toMatch(/images:\s+10\n/)
    expect(r.stdout).toMatch(/binaries:\s+10\n/)
    expect(r.stdout).toMatch(/packages:\s+2\n/)
    expect(r.stdout).toMatch(/platforms:\s+linux\/amd64\n/)
  })

  it('--json prints one document with the counts', async () => {
    const r = await runCli(['validate', k8s, '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      valid: true,
      name: 'kubernetes-1.29-amd64',
      version: '1.29.5',
      platforms: ['linux/amd64'],
      warnings: [],
      counts: {images: 10, selections: 0, binaries: 10, packages: 2, charts: 0},
      items: expect.any(Array),
    })
    const items = JSON.parse(r.stdout).items as {kind: string; name: string; line: number}[]
    expect(items).toHaveLength(22)
    expect(items[0]).toEqual({
      kind: 'image',
      name: expect.stringMatching(/^registry\.k8s\.io\//),
      line: expect.any(Number),
    })
    expect(r.stderr).not.toContain('Warning')
  })

  it('warns, and still exits 0, when different URLs declare the same sha256', async () => {
    const file = path.join(dir, 'same-sha.yaml')
    const hex = 'a'.repeat(64)
    await writeFile(
      file,
      [
        'apiVersion: airlock/v1',
        'kind: Manifest',
        'metadata: {name: same-sha}',
        'spec:',
        '  binaries:',
        `    - url: https://dl.example.com/kubeadm`,
        `      sha256: ${hex}`,
        `    - url: https://dl.example.com/kubelet`,
        `      sha256: ${hex}`,
        '',
      ].join('\n'),
    )
    const r = await runCli(['validate', file, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const expected = `${file}:8:7: spec.binaries[1].sha256: the same sha256 as spec.binaries[0] (https://dl.example.com/kubeadm) for another URL`
    expect((JSON.parse(r.stdout) as {warnings: string[]}).warnings).toEqual([expect.stringContaining(expected)])
    expect(r.stderr).toContain(`Warning: ${expected}`)
  })

  it('warns (file:line:col) that latest is assumed for an image named without tag or digest, and only for it', async () => {
    const file = path.join(dir, 'no-tag.yaml')
    const hex = 'b'.repeat(64)
    await writeFile(
      file,
      [
        'apiVersion: airlock/v1',
        'kind: Manifest',
        'metadata: {name: no-tag}',
        'spec:',
        '  images:',
        '    - nginx',
        '    - 127.0.0.1:5001/lab/legacy',
        '    - ref: quay.io/calico/node',
        '    - docker.io/library/busybox:1.36',
        `    - 127.0.0.1:5001/lab/pinned@sha256:${hex}`,
        '    - 127.0.0.1:5001/lab/tagged:v2',
        '',
      ].join('\n'),
    )
    const r = await runCli(['validate', file, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const warnings = (JSON.parse(r.stdout) as {warnings: string[]}).warnings
    expect(warnings).toEqual([
      `${file}:6:7: spec.images[0]: no tag or digest: latest is assumed (docker.io/library/nginx:latest); name the tag, or pin it with airlock lock`,
      `${file}:7:7: spec.images[1]: no tag or digest: latest is assumed (127.0.0.1:5001/lab/legacy:latest); name the tag, or pin it with airlock lock`,
      `${file}:8:12: spec.images[2].ref: no tag or digest: latest is assumed (quay.io/calico/node:latest); name the tag, or pin it with airlock lock`,
    ])
    for (const w of warnings) expect(r.stderr).toContain(`Warning: ${w}`)
  })

  it('prints every problem with file:line:column on stderr and exits 2', async () => {
    const file = path.join(dir, 'broken.yaml')
    await writeFile(
      file,
      `apiVersion: airlock/v1
kind: Manifest
metadata:
  name: broken
spec:
  images:
    - registry.k8s.io/pause:3.9@sha256:abc
  binaries:
    - url: https://user:pw@example.com/a
      sha256: e424dcdbe661314b6ca1fcc94726eb554bc3f4392b060b9626f9df8d7d44d42c
    - url: https://example.com/b
  colour: blue
`,
    )
    const r = await runCli(['validate', file])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain(`Error: ${file}: 4 problems found`)
    expect(r.stderr).toContain(`${file}:7:7: spec.images[0]: bad image reference`)
    expect(r.stderr).toContain(`${file}:9:12: spec.binaries[0].url: credentials inside a URL are refused`)
    expect(r.stderr).toContain(`${file}:11:7: spec.binaries[1].sha256: missing checksum`)
    expect(r.stderr).toContain(`${file}:12:3: spec.colour: unknown field "colour"`)
    expect(r.stderr).not.toMatch(STACK_LINE)
    expect(r.stderr).not.toContain(':pw@')

    const j = await runCli(['validate', file, '--json'])
    expect(j.code).toBe(2)
    const doc = JSON.parse(j.stdout)
    expect(doc.error).toMatchObject({kind: 'manifest', exitCode: 2})
    expect(doc.error.problems).toHaveLength(4)
    expect(doc.error.problems[0]).toEqual({
      file,
      line: 7,
      column: 7,
      path: 'spec.images[0]',
      message: expect.stringContaining('bad digest'),
    })
  })

  it('reports YAML syntax errors, an empty file and invalid UTF-8 with exit 2', async () => {
    const cases: [string, string | Buffer, RegExp][] = [
      ['syntax.yaml', 'apiVersion: airlock/v1\nspec: [a, b\n', /syntax\.yaml:\d+:\d+: YAML syntax error/],
      ['empty.yaml', '', /empty\.yaml:1:1: the manifest is empty/],
      ['latin1.yaml', Buffer.from([0x61, 0x3a, 0x20, 0xe9, 0x0a]), /latin1\.yaml:1:4: invalid UTF-8/],
    ]
    for (const [name, content, pattern] of cases) {
      const file = path.join(dir, name)
      await writeFile(file, content)
      const r = await runCli(['validate', file])
      expect(r.code, name).toBe(2)
      expect(r.stderr).toMatch(pattern)
      expect(r.stderr).not.toMatch(STACK_LINE)
    }
  })

  it('says so when the file is missing, without a stack trace', async () => {
    const file = path.join(dir, 'missing.yaml')
    const r = await runCli(['validate', file])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`manifest not found: ${file}`)
    expect(r.stderr).not.toMatch(STACK_LINE)
    const j = await runCli(['validate', file, '--json'])
    expect(j.code).toBe(2)
    expect(JSON.parse(j.stdout).error).toMatchObject({kind: 'usage', exitCode: 2})
  })
})

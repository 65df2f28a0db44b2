import {chmod, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import {type BinariesEndpoint, openClusterConfig} from '../../src/lib/importers/cluster-config.js'

/** What an import does: open the file (checking it), then point spec.binaries at the target. */
async function pointClusterConfig(file: string, target: BinariesEndpoint): Promise<void> {
  await (await openClusterConfig(file)).point(target)
}
import {makeTempDir} from '../helpers/tmp.js'

const ORIGINAL = [
  '# Cluster settings for the installer',
  'apiVersion: v1',
  'kind: ClusterConfig',
  'metadata:',
  '  name: seed   # the first node',
  'spec:',
  '  # Where the installer downloads binaries from',
  '  binaries:',
  '    type: internet # default',
  '    internetMirror: https://example.com',
  '  kubernetesVersion: v1.29.0 # pinned',
  '  nodes:',
  '  - name: a',
  '    role: [control-plane, worker]',
  '  - name: b',
  '    labels: {zone: \'z1\', rack: "r 2"}',
  '  registry:',
  '    url: 127.0.0.1:5000',
  '',
].join('\n')

async function withFile(text: string): Promise<string> {
  const dir = await makeTempDir('cluster-config-')
  const file = join(dir, 'clusterConfig.yaml')
  await writeFile(file, text)
  return file
}

describe('pointClusterConfig', () => {
  it('sets spec.binaries and keeps every other line, comment and key order', async () => {
    const file = await withFile(ORIGINAL)
    await chmod(file, 0o640)
    await pointClusterConfig(file, {endpoint: 'http://10.0.0.1:8080'})
    const out = await readFile(file, 'utf8')
    const before = ORIGINAL.split('\n')
    const after = out.split('\n')
    // Lines outside the binaries block are byte-identical and in order.
    const outside = (lines: string[]) => {
      const i = lines.indexOf('  binaries:')
      let j = i + 1
      while (lines[j].startsWith('    ')) j++
      return [...lines.slice(0, i + 1), ...lines.slice(j)]
    }
    expect(outside(after)).toEqual(outside(before))
    // The note beside the replaced type: line stays with it.
    expect(out).toContain(
      '  binaries:\n    type: external # default\n    externalRepoEndpoint: http://10.0.0.1:8080\n  kubernetesVersion',
    )
    expect(out).not.toContain('internetMirror')
    expect(parse(out).spec.binaries).toEqual({type: 'external', externalRepoEndpoint: 'http://10.0.0.1:8080'})
    expect((await stat(file)).mode & 0o777).toBe(0o640)
  })

  it('keeps the inline comment of each replaced line, with its spacing', async () => {
    const file = await withFile(
      "spec:\n  binaries:\n    type: builtin   # the installer's own copy\n    externalRepoEndpoint: http://old # was\n    other: x # dropped with its line\n  x: 1 # kept\n",
    )
    await pointClusterConfig(file, {endpoint: 'http://new'})
    expect(await readFile(file, 'utf8')).toBe(
      "spec:\n  binaries:\n    type: external   # the installer's own copy\n    externalRepoEndpoint: http://new # was\n  x: 1 # kept\n",
    )
  })

  it('adds binaries when missing, with credentials only when given', async () => {
    const file = await withFile('spec:\n    # four-space file\n    kubernetesVersion: v1.29.0\n')
    await pointClusterConfig(file, {endpoint: 'http://s3:7480/b/p', username: 'AK', password: 'SK'})
    const out = await readFile(file, 'utf8')
    expect(out).toBe(
      'spec:\n    # four-space file\n    kubernetesVersion: v1.29.0\n    binaries:\n        type: external\n' +
        '        externalRepoEndpoint: http://s3:7480/b/p\n        externalRepoUsername: AK\n        externalRepoPassword: SK\n',
    )
  })

  it('replaces a scalar binaries value and works on the document that has a spec', async () => {
    const file = await withFile(
      '# first\nkind: Other\n---\n# second\nkind: ClusterConfig\nspec:\n  binaries: internet\n  x: 1\n',
    )
    await pointClusterConfig(file, {endpoint: 'http://h'})
    const out = await readFile(file, 'utf8')
    expect(out).toBe(
      '# first\nkind: Other\n---\n# second\nkind: ClusterConfig\nspec:\n  binaries:\n    type: external\n    externalRepoEndpoint: http://h\n  x: 1\n',
    )
  })

  it('refuses a missing file, a file without spec and broken YAML with a usage error', async () => {
    const dir = await makeTempDir('cluster-config-')
    await expect(pointClusterConfig(join(dir, 'nope.yaml'), {endpoint: 'http://h'})).rejects.toMatchObject({
      kind: 'usage',
      exitCode: 2,
    })
    const noSpec = await withFile('apiVersion: v1\nkind: ClusterConfig\n')
    await expect(pointClusterConfig(noSpec, {endpoint: 'http://h'})).rejects.toThrow(/no spec/)
    const broken = await withFile('spec: [\n')
    await expect(pointClusterConfig(broken, {endpoint: 'http://h'})).rejects.toThrow(/not valid YAML/)
    expect(await readFile(noSpec, 'utf8')).toBe('apiVersion: v1\nkind: ClusterConfig\n')
  })
})

/**
 * The demo's upstream content: files with fixed bytes (so manifests/demo.yaml
 * can carry their real sha256) and a tiny Helm chart repository.
 */
import {createHash} from 'node:crypto'
import {mkdir, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {gzipSync} from 'node:zlib'

import {encodeHeader, endOfArchive, padding} from '../../src/lib/tar/writer.js'

/** `size` bytes that depend only on `name`: a sha256 counter stream. */
export function fixedBytes(name: string, size: number): Buffer {
  const out = Buffer.alloc(size)
  let off = 0
  for (let i = 0; off < size; i++) {
    const block = createHash('sha256').update(`${name}/${i}`).digest()
    off += block.copy(out, off)
  }
  return out
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Files served by the demo's "upstream" web server, by path under its root. */
export const DEMO_FILES: Record<string, number> = {
  'release/v1.29.0/bin/linux/amd64/kubeadm': 3 * 1024 * 1024,
  'release/v1.29.0/bin/linux/amd64/kubelet': 5 * 1024 * 1024,
  'release/v1.29.0/bin/linux/amd64/kubectl': 2 * 1024 * 1024,
  'etcd-io/etcd/releases/download/v3.5.10/etcd-v3.5.10-linux-amd64.tar.gz': 4 * 1024 * 1024,
  'containerd/nerdctl/releases/download/v1.7.0/nerdctl-1.7.0-linux-amd64.tar.gz': 1024 * 1024,
}

/** One tar entry: header, body, padding. */
function tarEntry(name: string, body: Buffer): Buffer {
  return Buffer.concat([
    encodeHeader({path: name, type: 'file', size: body.length, mode: 0o644, mtime: 0}),
    body,
    padding(body.length),
  ])
}

export function demoChart(name: string, version: string): Buffer {
  const chartYaml = `apiVersion: v2\nname: ${name}\nversion: ${version}\ndescription: A chart for the airlock demo\n`
  const values = 'replicaCount: 1\n'
  const tar = Buffer.concat([
    tarEntry(`${name}/Chart.yaml`, Buffer.from(chartYaml)),
    tarEntry(`${name}/values.yaml`, Buffer.from(values)),
    endOfArchive(),
  ])
  return gzipSync(tar)
}

/** Write the upstream files, their .sha256sum files and the chart repo under `root`. */
export async function writeUpstream(root: string): Promise<Record<string, string>> {
  const sums: Record<string, string> = {}
  for (const [path, size] of Object.entries(DEMO_FILES)) {
    const data = fixedBytes(path, size)
    await mkdir(dirname(join(root, path)), {recursive: true})
    await writeFile(join(root, path), data)
    sums[path] = sha256(data)
    const base = path.split('/').pop()!
    await writeFile(join(root, `${path}.sha256sum`), `${sums[path]}  ${base}\n`)
  }
  const chart = demoChart('demo-app', '0.1.0')
  await mkdir(join(root, 'charts'), {recursive: true})
  await writeFile(join(root, 'charts', 'demo-app-0.1.0.tgz'), chart)
  await writeFile(
    join(root, 'charts', 'index.yaml'),
    [
      'apiVersion: v1',
      'entries:',
      '  demo-app:',
      '    - apiVersion: v2',
      '      name: demo-app',
      '      version: 0.1.0',
      `      digest: ${sha256(chart)}`,
      '      created: "2024-01-01T00:00:00Z"',
      '      urls:',
      '        - demo-app-0.1.0.tgz',
      'generated: "2024-01-01T00:00:00Z"',
      '',
    ].join('\n'),
  )
  return sums
}

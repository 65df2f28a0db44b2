/**
 * `npm run demo`: the whole airlock job on one machine, no internet. Starts a
 * local registry and web server as the "internet", builds a bundle from
 * manifests/demo.yaml, then imports it the way a seed node would: onto an
 * nginx root, into an S3 bucket (Ceph RGW) and into a registry with TLS and
 * htpasswd. Everything lives under .demo/ and every server is stopped at the end.
 */
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

import {startNginx} from '../test/helpers/nginx.js'
import {pushImage, randomLayer} from '../test/helpers/images.js'
import {startRegistry} from '../test/helpers/registry.js'
import {startRgw} from '../test/helpers/rgw.js'
import {writeUpstream} from './demo/content.js'

const repo = dirname(dirname(fileURLToPath(import.meta.url)))
const work = join(repo, '.demo')
const stops: (() => Promise<void>)[] = []

function say(line: string): void {
  process.stdout.write(`\n\x1b[1m${line}\x1b[0m\n`)
}

async function airlock(...args: string[]): Promise<void> {
  const shown = args.map((a) => (a.startsWith(repo) ? relative(repo, a) || '.' : a))
  process.stdout.write(`$ airlock ${shown.join(' ')}\n`)
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, [join(repo, 'bin', 'run.js'), ...args], {cwd: repo, stdio: 'inherit'})
    child.on('exit', (c) => resolve(c ?? 1))
  })
  if (code !== 0) throw new Error(`airlock ${args[0]} exited ${code}`)
}

async function main(): Promise<void> {
  await rm(work, {recursive: true, force: true})
  await mkdir(work, {recursive: true})

  say('1. The "internet": a registry with images and a web server with binaries, packages and a chart')
  const source = await startRegistry()
  stops.push(source.stop)
  const base = [randomLayer(2 * 1024 * 1024), randomLayer(1024 * 1024)]
  await pushImage(source, {repository: 'demo/nginx', tag: '1.25.3', platforms: ['linux/amd64', 'linux/arm64'], baseLayers: base, layers: 2, layerSize: 3 * 1024 * 1024})
  await pushImage(source, {repository: 'demo/pause', tag: '3.9', format: 'docker', platforms: ['linux/amd64', 'linux/arm64'], layers: 1, layerSize: 256 * 1024})
  await pushImage(source, {repository: 'demo/app', tag: '1.0', baseLayers: base, layers: 1, layerSize: 2 * 1024 * 1024})
  const upstreamRoot = join(work, 'upstream')
  await writeUpstream(upstreamRoot)
  const upstream = await startNginx({root: upstreamRoot})
  stops.push(upstream.stop)
  process.stdout.write(`registry ${source.host}, files ${upstream.url}\n`)

  const manifest = join(work, 'demo.yaml')
  const template = await readFile(join(repo, 'manifests', 'demo.yaml'), 'utf8')
  await writeFile(manifest, template.replaceAll('127.0.0.1:5001', source.host).replaceAll('127.0.0.1:8081', upstream.host))

  say('2. On the bastion: check the manifest, pull everything, write the bundle')
  const store = join(work, 'store')
  const bundle = join(work, 'bundle')
  await airlock('validate', manifest)
  await airlock('build', manifest, '--store', store, '--out', bundle)
  await airlock('verify', bundle)
  await airlock('inspect', bundle)

  say('3. On the seed node: import onto an nginx root and point clusterConfig.yaml at it')
  const www = join(work, 'www')
  await mkdir(www, {recursive: true})
  const web = await startNginx({root: www})
  stops.push(web.stop)
  const clusterConfig = join(work, 'clusterConfig.yaml')
  await writeFile(
    clusterConfig,
    [
      '# Cluster settings for the installer',
      'apiVersion: v1',
      'kind: ClusterConfig',
      'spec:',
      '  # Where the installer downloads binaries from',
      '  binaries:',
      '    type: internet',
      '  kubernetesVersion: v1.29.0 # pinned',
      '',
    ].join('\n'),
  )
  await airlock('import', 'nginx', bundle, '--root', www, '--cluster-config', clusterConfig, '--endpoint', web.url)
  const path = '127.0.0.1:8081/release/v1.29.0/bin/linux/amd64/kubeadm'.replace('127.0.0.1:8081', upstream.host)
  const res = await fetch(`${web.url}/${path}`)
  const body = Buffer.from(await res.arrayBuffer())
  process.stdout.write(`GET ${web.url}/${path} -> ${res.status}, sha256 ${createHash('sha256').update(body).digest('hex')}\n`)
  process.stdout.write(`${await readFile(clusterConfig, 'utf8')}`)

  say('4. On the seed node: upload the same files to an S3 bucket (Ceph RGW)')
  const s3 = await startRgw()
  stops.push(s3.stop)
  await airlock('import', 's3', bundle, '--endpoint', s3.endpoint, '--bucket', 'offline', '--prefix', 'k8s', '--create-bucket', '--region', s3.region, '--access-key', s3.accessKey, '--secret-key', s3.secretKey)

  say('5. On the seed node: push every image to a private registry with TLS and htpasswd')
  const target = await startRegistry({tls: true, auth: 'htpasswd', username: 'seed', password: 'seed-password'})
  stops.push(target.stop)
  await airlock('import', 'registry', bundle, '--registry', target.host, '--namespace', 'mirror', '--ca-file', target.caFile!, '--username', 'seed', '--password', 'seed-password')

  say('Done. Everything the demo made is under .demo/')
}

try {
  await main()
} catch (err) {
  process.stderr.write(`\ndemo stopped: ${(err as Error).message}\n`)
  process.exitCode = 1
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {})
}

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
import {startRegistry} from '../test/helpers/registry.js'
import {startRgw} from '../test/helpers/rgw.js'
import {startInternet} from './demo/internet.js'

const repo = dirname(dirname(fileURLToPath(import.meta.url)))
const work = join(repo, '.demo')
const stops: (() => Promise<void>)[] = []

function say(line: string): void {
  process.stdout.write(`\n\x1b[1m${line}\x1b[0m\n`)
}

async function airlock(...args: string[]): Promise<void> {
  const line = `$ airlock ${args.map((a) => (a.startsWith(repo) ? relative(repo, a) || '.' : a)).join(' ')}`
  await exec(line, process.execPath, [join(repo, 'bin', 'run.js'), ...args], repo)
}

/** A command on the seed node, run in the bundle folder with a bare PATH: what the bundle carries and the base system, nothing else. */
async function seed(cmd: string, ...args: string[]): Promise<void> {
  const dir = join(work, 'bundle')
  const line = `(${relative(repo, dir)}) $ ${cmd} ${args.map((a) => (a.startsWith(`${work}/`) ? relative(dir, a) : a)).join(' ')}`
  await exec(line, cmd, args, dir, {PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: process.env.HOME ?? '/root'})
}

async function exec(line: string, cmd: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<void> {
  process.stdout.write(`${line}\n`)
  const code = await new Promise<number>((resolve) => {
    const child = spawn(cmd, args, {cwd, stdio: 'inherit', ...(env ? {env} : {})})
    child.on('exit', (c) => resolve(c ?? 1))
  })
  if (code !== 0) throw new Error(`${line.replace(/^.*\$ /, '')} exited ${code}`)
}

async function main(): Promise<void> {
  await rm(work, {recursive: true, force: true})
  await mkdir(work, {recursive: true})

  say('1. The "internet": a registry with images and a web server with binaries, packages and a chart')
  const internet = await startInternet(repo, work)
  stops.push(internet.stop)
  process.stdout.write(`registry ${internet.registry}, files ${internet.files}\n`)
  const manifest = internet.manifest
  const upstreamHost = new URL(internet.files).host

  say('2. On the bastion: check the manifest, pull everything, write the bundle')
  const store = join(work, 'store')
  const bundle = join(work, 'bundle')
  await airlock('validate', manifest)
  await airlock('build', manifest, '--store', store, '--out', bundle)
  await airlock('verify', bundle)
  await airlock('inspect', bundle)

  say(
    '3. On the seed node (nothing installed: the bundle carries its importer): check it, import onto an nginx root, point clusterConfig.yaml at it',
  )
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
  await seed('sha256sum', '-c', 'SHA256SUMS')
  await seed('./import.sh', 'nginx', www, '--cluster-config', clusterConfig, '--endpoint', web.url)
  const path = `${upstreamHost}/release/v1.29.0/bin/linux/amd64/kubeadm`
  const res = await fetch(`${web.url}/${path}`)
  const body = Buffer.from(await res.arrayBuffer())
  process.stdout.write(
    `GET ${web.url}/${path} -> ${res.status}, sha256 ${createHash('sha256').update(body).digest('hex')}\n`,
  )
  process.stdout.write(`${await readFile(clusterConfig, 'utf8')}`)

  say('4. On the seed node: upload the same files to an S3 bucket (Ceph RGW)')
  const s3 = await startRgw()
  stops.push(s3.stop)
  await seed(
    './import.sh',
    's3',
    '--endpoint',
    s3.endpoint,
    '--bucket',
    'offline',
    '--prefix',
    'k8s',
    '--create-bucket',
    '--region',
    s3.region,
    '--access-key',
    s3.accessKey,
    '--secret-key',
    s3.secretKey,
  )

  say('5. On the seed node: push every image to a private registry with TLS and htpasswd')
  const target = await startRegistry({tls: true, auth: 'htpasswd', username: 'seed', password: 'seed-password'})
  stops.push(target.stop)
  await seed(
    './import.sh',
    'registry',
    '--registry',
    target.host,
    '--namespace',
    'mirror',
    '--ca-file',
    target.caFile!,
    '--username',
    'seed',
    '--password',
    'seed-password',
  )

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

import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {closeSync, openSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, writeFile} from 'node:fs/promises'
import https from 'node:https'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {ListBucketsCommand, S3Client} from '@aws-sdk/client-s3'

import {makeCerts} from './certs.js'
import {stopChild, trackChild, trackDir} from './cleanup.js'
import {waitFor} from './http.js'
import {freePort} from './ports.js'

const run = promisify(execFile)

export interface S3Server {
  /** http://127.0.0.1:PORT, or https://127.0.0.1:PORT with `tls` (path-style) */
  endpoint: string
  /** With `tls`: the PEM of the CA that signed the gateway's certificate (valid for 127.0.0.1 and localhost). */
  caFile?: string
  accessKey: string
  secretKey: string
  region: string
  /** The cluster's directory (config, keyring, logs). */
  dir: string
  /** A client set up the way RGW 16 needs (path style, checksums only when required), trusting `caFile`. */
  client(): S3Client
  stop(): Promise<void>
}

const ACCESS_KEY = 'AIRLOCKTESTACCESSKEY'
const SECRET_KEY = 'airlock-test-secret-key-0123456789abcdef'
const REGION = 'us-east-1'
const RGW_POOLS = [
  '.rgw.root',
  'default.rgw.log',
  'default.rgw.control',
  'default.rgw.meta',
  'default.rgw.buckets.index',
  'default.rgw.buckets.data',
  'default.rgw.buckets.non-ec',
]

export function s3Client(
  endpoint: string,
  accessKey = ACCESS_KEY,
  secretKey = SECRET_KEY,
  region = REGION,
  ca?: string,
): S3Client {
  return new S3Client({
    ...(ca ? {requestHandler: {httpsAgent: new https.Agent({ca, keepAlive: true})}} : {}),
    endpoint,
    region,
    forcePathStyle: true,
    credentials: {accessKeyId: accessKey, secretAccessKey: secretKey},
    // RGW 16 rejects the aws-chunked trailers newer SDKs send by default.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
}

export interface RgwOptions {
  /** Serve HTTPS only (beast's ssl_endpoint) with a certificate from a throwaway CA (`caFile`). */
  tls?: boolean
}

/**
 * A one-node Ceph cluster (monitor, memstore OSD, RADOS Gateway) on loopback,
 * every file under one short temp dir, every daemon a foreground child.
 * Resolves when a signed S3 request succeeds.
 */
export async function startRgw(opts: RgwOptions = {}): Promise<S3Server> {
  // Admin sockets are unix sockets: keep the path short, whatever TMPDIR says.
  const dir = await mkdtemp('/tmp/rgw-')
  trackDir(dir)
  const conf = join(dir, 'ceph.conf')
  const keyring = join(dir, 'keyring')
  for (const d of ['mon', 'osd', 'rgw', 'run', 'log']) await mkdir(join(dir, d))
  const [monPort, rgwPort] = [await freePort(), await freePort()]
  const fsid = randomUUID()
  const endpoint = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${rgwPort}`
  // Beast (Ceph 16) takes the certificate and its key as two PEM files; no plain endpoint beside it,
  // so nothing can reach this gateway without TLS.
  const certs = opts.tls ? await makeCerts(join(dir, 'tls')) : undefined
  const frontend = certs
    ? `beast ssl_endpoint=127.0.0.1:${rgwPort} ssl_certificate=${certs.certFile} ssl_private_key=${certs.keyFile}`
    : `beast endpoint=127.0.0.1:${rgwPort}`
  const ca = certs ? await readFile(certs.caFile, 'utf8') : undefined
  await writeFile(
    conf,
    [
      '[global]',
      `fsid = ${fsid}`,
      `mon host = [v2:127.0.0.1:${monPort}]`,
      'mon initial members = a',
      'public addr = 127.0.0.1',
      'ms bind msgr1 = false',
      'ms bind msgr2 = true',
      'auth cluster required = cephx',
      'auth service required = cephx',
      'auth client required = cephx',
      `keyring = ${keyring}`,
      `run dir = ${dir}/run`,
      `admin socket = ${dir}/run/$name.asok`,
      `pid file = ${dir}/run/$name.pid`,
      `log file = ${dir}/log/$name.log`,
      'log to stderr = false',
      'err to stderr = true',
      'osd pool default size = 1',
      'osd pool default min size = 1',
      'osd pool default pg num = 8',
      'osd pool default pgp num = 8',
      'osd pool default pg autoscale mode = off',
      'osd crush chooseleaf type = 0',
      'mon allow pool size one = true',
      'mon allow pool delete = true',
      'mon data avail crit = 0',
      'mon warn on pool no redundancy = false',
      // The default batches map changes once a second; the gateway then takes 10 s to start.
      'paxos propose interval = 0.05',
      '',
      '[mon.a]',
      `mon data = ${dir}/mon`,
      '',
      '[osd]',
      `osd data = ${dir}/osd`,
      'osd objectstore = memstore',
      'memstore device bytes = 4294967296',
      '',
      '[client.rgw.a]',
      `rgw frontends = ${frontend}`,
      `rgw data = ${dir}/rgw`,
      'rgw dynamic resharding = false',
      'rgw gc obj min wait = 5',
      'rgw gc processor period = 5',
      '',
    ].join('\n'),
  )

  const children: ChildProcess[] = []
  const daemon = (name: string, cmd: string, args: string[]) => {
    const fd = openSync(join(dir, 'log', `${name}.out`), 'a')
    const child = spawn(cmd, ['-c', conf, '-f', ...args], {stdio: ['ignore', fd, fd], detached: true})
    closeSync(fd)
    trackChild(child)
    children.push(child)
    return child
  }
  const stop = async () => {
    // Gateway, OSD, then monitor: an OSD without its monitor waits ~6 s before it gives up.
    for (const c of [...children].reverse()) await stopChild(c, 5000)
  }
  const logs = async () => {
    const parts: string[] = []
    for (const f of ['mon.a', 'osd.0', 'client.rgw.a']) {
      const out = await readFile(join(dir, 'log', `${f}.out`), 'utf8').catch(() => '')
      const log = await readFile(join(dir, 'log', `${f}.log`), 'utf8').catch(() => '')
      parts.push(`--- ${f}\n${out}${log.split('\n').slice(-15).join('\n')}`)
    }
    return parts.join('\n')
  }
  const ceph = (args: string[], input?: string) => {
    const p = run('ceph', ['-c', conf, '--connect-timeout', '30', ...args], {timeout: 60_000})
    if (input !== undefined) {
      p.child.stdin?.end(input)
    }
    return p
  }

  try {
    const authtool = (args: string[]) => run('ceph-authtool', args)
    await authtool(['--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'])
    await authtool([
      keyring,
      '--gen-key',
      '-n',
      'client.admin',
      '--cap',
      'mon',
      'allow *',
      '--cap',
      'osd',
      'allow *',
      '--cap',
      'mds',
      'allow *',
      '--cap',
      'mgr',
      'allow *',
    ])
    await authtool([
      keyring,
      '--gen-key',
      '-n',
      'client.rgw.a',
      '--cap',
      'mon',
      'allow rw',
      '--cap',
      'osd',
      'allow rwx',
      '--cap',
      'mgr',
      'allow rw',
    ])
    const osdSecret = (await authtool(['--gen-print-key'])).stdout.trim()
    await run('monmaptool', [
      '--create',
      '--addv',
      'a',
      `[v2:127.0.0.1:${monPort}]`,
      '--fsid',
      fsid,
      join(dir, 'monmap'),
    ])
    await run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--keyring', keyring])
    daemon('mon.a', 'ceph-mon', ['-i', 'a'])

    const osdUuid = randomUUID()
    await writeFile(join(dir, 'osd', 'keyring'), `[osd.0]\n\tkey = ${osdSecret}\n`)
    await Promise.all([
      ceph(['osd', 'new', osdUuid, '-i', '-'], JSON.stringify({cephx_secret: osdSecret})),
      run('ceph-osd', [
        '-c',
        conf,
        '-i',
        '0',
        '--mkfs',
        '--osd-uuid',
        osdUuid,
        '--no-mon-config',
        '--keyring',
        join(dir, 'osd', 'keyring'),
      ]),
    ])
    daemon('osd.0', 'ceph-osd', ['-i', '0', '--keyring', join(dir, 'osd', 'keyring')])
    // Pools up front, so the gateway does not create them one map epoch at a time.
    const script = RGW_POOLS.flatMap((p) => [`osd pool create ${p} 8 8`, `osd pool application enable ${p} rgw`]).join(
      '\n',
    )
    await ceph([], `${script}\n`)
    await run(
      'radosgw-admin',
      [
        '-c',
        conf,
        'user',
        'create',
        '--uid=airlock',
        '--display-name=airlock test',
        `--access-key=${ACCESS_KEY}`,
        `--secret-key=${SECRET_KEY}`,
      ],
      {timeout: 60_000},
    )
    daemon('client.rgw.a', 'radosgw', ['-n', 'client.rgw.a'])
    const client = s3Client(endpoint, ACCESS_KEY, SECRET_KEY, REGION, ca)
    try {
      await waitFor(
        'Ceph RGW',
        async () => {
          await client.send(new ListBucketsCommand({}))
          return true
        },
        60_000,
      )
    } finally {
      client.destroy()
    }
  } catch (err) {
    await stop()
    throw new Error(`${(err as Error).message}\n${await logs()}`, {cause: err})
  }

  return {
    endpoint,
    caFile: certs?.caFile,
    accessKey: ACCESS_KEY,
    secretKey: SECRET_KEY,
    region: REGION,
    dir,
    client: () => s3Client(endpoint, ACCESS_KEY, SECRET_KEY, REGION, ca),
    stop,
  }
}

import {spawn} from 'node:child_process'
import {closeSync, openSync} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {makeCerts} from './certs.js'
import {stopChild, trackChild} from './cleanup.js'
import {harnessRequest, waitFor} from './http.js'
import {freePort} from './ports.js'
import {makeTempDir} from './tmp.js'

export interface NginxServer {
  /** http://127.0.0.1:PORT, or https:// with `tls` */
  url: string
  /** 127.0.0.1:PORT */
  host: string
  port: number
  /** The document root (a fresh temp dir unless given). */
  root: string
  /**
   * One line per request: `ADDR "METHOD URI PROTO" STATUS BODY_BYTES REQUEST_LENGTH "RANGE" REQUEST_TIME CONNECTION`,
   * with RANGE `-` when the request had no Range header and CONNECTION nginx's serial number of
   * the client connection it came on (see `connectionsOf`).
   */
  accessLog: string
  errorLog: string
  /** The CA that signed the server's certificate (`tls` only). */
  caFile?: string
  stop(): Promise<void>
  accessLines(): Promise<string[]>
}

export interface NginxOpts {
  root?: string
  /** Per-connection rate (nginx limit_rate, e.g. '2m' = 2 MB/s), with a small send buffer so it bites on loopback. */
  rateLimit?: string
  /**
   * Reverse proxy everything to this upstream URL (e.g. a registry), passing Host and Range through.
   * Combined with rateLimit, proxied responses are throttled too.
   */
  proxyTo?: string
  /** Extra directives inside the server block. */
  extraServerConfig?: string
  /** Serve HTTPS with a certificate for 127.0.0.1 signed by a fresh CA (`caFile` on the server). */
  tls?: boolean
}

/**
 * Debian nginx(-light) in the foreground on a free loopback port, with every
 * path (pid, logs, temp dirs) inside its own temp dir.
 */
export async function startNginx(opts: NginxOpts = {}): Promise<NginxServer> {
  const dir = await makeTempDir('airlock-nginx-')
  const root = opts.root ?? join(dir, 'www')
  await mkdir(root, {recursive: true})
  await mkdir(join(dir, 'tmp'))
  const port = await freePort()
  const host = `127.0.0.1:${port}`
  const accessLog = join(dir, 'access.log')
  const errorLog = join(dir, 'error.log')
  const certs = opts.tls ? await makeCerts(join(dir, 'certs')) : undefined
  const url = `${certs ? 'https' : 'http'}://${host}`
  const limit = opts.rateLimit ? [`limit_rate ${opts.rateLimit};`] : []
  const location = opts.proxyTo
    ? [
        `proxy_pass ${opts.proxyTo.replace(/\/+$/, '')};`,
        // The upstream sees the client's Host, so a registry's upload Locations point back here.
        'proxy_set_header Host $http_host;',
        'proxy_set_header X-Forwarded-For $remote_addr;',
        'proxy_set_header X-Forwarded-Proto $scheme;',
        'proxy_http_version 1.1;',
        'proxy_set_header Connection "";',
        // limit_rate is not applied to unbuffered proxied responses, so a rate-limited front buffers;
        // with no temp file nginx reads the upstream only as fast as the client drains its buffers,
        // so blobs of any size stream through a bounded amount of memory.
        ...(opts.rateLimit
          ? ['proxy_buffering on;', 'proxy_buffers 16 64k;', 'proxy_max_temp_file_size 0;']
          : ['proxy_buffering off;']),
        'proxy_request_buffering off;',
        'proxy_ssl_verify off;',
        'proxy_read_timeout 300s;',
        'proxy_send_timeout 300s;',
      ]
    : ['autoindex off;']
  const conf = [
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    // As root, workers would otherwise run as nobody and could not read 0700 temp dirs. Ignored (a warning) when not root.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${errorLog} warn;`,
    'events { worker_connections 1024; }',
    'http {',
    '  default_type application/octet-stream;',
    '  types { text/html html; text/plain txt; application/json json; application/yaml yaml yml; application/gzip gz tgz; }',
    `  log_format airlock '$remote_addr "$request" $status $body_bytes_sent $request_length "$http_range" $request_time $connection';`,
    `  access_log ${accessLog} airlock;`,
    `  client_body_temp_path ${join(dir, 'tmp', 'body')};`,
    `  proxy_temp_path ${join(dir, 'tmp', 'proxy')};`,
    `  fastcgi_temp_path ${join(dir, 'tmp', 'fastcgi')};`,
    `  uwsgi_temp_path ${join(dir, 'tmp', 'uwsgi')};`,
    `  scgi_temp_path ${join(dir, 'tmp', 'scgi')};`,
    '  sendfile on;',
    '  keepalive_timeout 30s;',
    '  client_max_body_size 0;',
    '  server {',
    // A small send buffer: otherwise loopback socket buffers swallow megabytes before limit_rate has a say.
    `    listen ${host}${certs ? ' ssl' : ''}${opts.rateLimit ? ' sndbuf=32k' : ''};`,
    '    server_name _;',
    ...(certs ? [`    ssl_certificate ${certs.certFile};`, `    ssl_certificate_key ${certs.keyFile};`] : []),
    `    root ${root};`,
    '    location / {',
    ...[...limit, ...location].map((l) => `      ${l}`),
    '    }',
    ...(opts.extraServerConfig ? opts.extraServerConfig.split('\n').map((l) => `    ${l}`) : []),
    '  }',
    '}',
    '',
  ].join('\n')
  const confFile = join(dir, 'nginx.conf')
  await writeFile(confFile, conf)

  const outFd = openSync(join(dir, 'nginx.out'), 'a')
  const child = spawn('nginx', ['-p', dir, '-c', confFile, '-e', errorLog], {
    stdio: ['ignore', outFd, outFd],
    detached: true,
  })
  closeSync(outFd)
  trackChild(child)
  const exited = new Promise<never>((_, reject) => {
    child.once('error', reject)
    child.once('exit', (code, sig) => reject(new Error(`nginx exited early (${code ?? sig})`)))
  })
  exited.catch(() => undefined)
  const stop = () => stopChild(child)
  try {
    await Promise.race([
      exited,
      waitFor(
        `nginx at ${host}`,
        async () =>
          (await harnessRequest(`${url}/`, {timeoutMs: 2000, ca: certs ? await readFile(certs.caFile) : undefined}))
            .status > 0,
        15_000,
      ),
    ])
  } catch (err) {
    await stop()
    const log =
      (await readFile(errorLog, 'utf8').catch(() => '')) +
      (await readFile(join(dir, 'nginx.out'), 'utf8').catch(() => ''))
    throw new Error(`${(err as Error).message}\n${log}`, {cause: err})
  }
  return {
    url,
    host,
    port,
    root,
    accessLog,
    errorLog,
    caFile: certs?.caFile,
    stop,
    async accessLines() {
      const text = await readFile(accessLog, 'utf8').catch(() => '')
      return text.split('\n').filter((l) => l.length > 0)
    },
  }
}

/** The client connections that carried these access log lines: each line's last field, nginx's connection serial number. */
export function connectionsOf(lines: string[]): Set<string> {
  return new Set(lines.map((l) => l.slice(l.lastIndexOf(' ') + 1)))
}

import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdir, rm, writeFile} from 'node:fs/promises'
import {isIP} from 'node:net'
import {join} from 'node:path'
import {promisify} from 'node:util'

const run = promisify(execFile)

export interface Certs {
  caFile: string
  caKeyFile: string
  certFile: string
  keyFile: string
}

/**
 * A throwaway CA and a server certificate it signs, valid for `hosts`
 * (IP SANs for addresses, DNS SANs for names), made with openssl. `dir`
 * works as a containers --cert-dir (skopeo) and a Docker certs.d directory.
 */
export async function makeCerts(dir: string, hosts: string[] = ['127.0.0.1', 'localhost']): Promise<Certs> {
  await mkdir(dir, {recursive: true})
  const caFile = join(dir, 'ca.crt')
  // Keys end in .pem, not .key: skopeo/containers' --cert-dir reads *.crt as CAs
  // and wants a client *.cert beside every *.key, so the directory stays usable as one.
  const caKeyFile = join(dir, 'ca-key.pem')
  const certFile = join(dir, 'server.crt')
  const keyFile = join(dir, 'server-key.pem')
  const csr = join(dir, 'server.csr')
  const ext = join(dir, 'server.ext')
  const san = hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',')
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-sha256',
    '-days',
    '2',
    '-subj',
    '/CN=airlock test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    caKeyFile,
    '-out',
    caFile,
  ])
  await run('openssl', [
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-sha256',
    '-subj',
    `/CN=${hosts[0] ?? 'localhost'}`,
    '-keyout',
    keyFile,
    '-out',
    csr,
  ])
  await writeFile(
    ext,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      `subjectAltName=${san}`,
      '',
    ].join('\n'),
  )
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    caFile,
    '-CAkey',
    caKeyFile,
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '2',
    '-sha256',
    '-extfile',
    ext,
    '-out',
    certFile,
  ])
  await Promise.all([rm(csr), rm(ext)])
  return {caFile, caKeyFile, certFile, keyFile}
}

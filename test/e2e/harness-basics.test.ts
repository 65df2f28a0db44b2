import {execFile} from 'node:child_process'
import {readFile, stat} from 'node:fs/promises'
import {createServer} from 'node:net'
import {promisify} from 'node:util'

import {describe, expect, it} from 'vitest'

import {makeCerts} from '../helpers/certs.js'
import {runCli} from '../helpers/cli.js'
import {freePort} from '../helpers/ports.js'
import {makeTempDir} from '../helpers/tmp.js'

const run = promisify(execFile)

describe('harness basics', () => {
  it('freePort gives distinct ports that can be bound on 127.0.0.1', async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort()])
    expect(new Set(ports).size).toBe(3)
    const srv = createServer()
    await new Promise<void>((resolve) => srv.listen(ports[0], '127.0.0.1', resolve))
    await new Promise<void>((resolve) => srv.close(() => resolve()))
  })

  it('makeTempDir makes a fresh directory under the temp root', async () => {
    const a = await makeTempDir('harness-')
    const b = await makeTempDir('harness-')
    expect(a).not.toBe(b)
    expect((await stat(a)).isDirectory()).toBe(true)
  })

  it('makeCerts gives a CA and a server certificate for 127.0.0.1 and localhost that verifies', async () => {
    const dir = await makeTempDir('harness-certs-')
    const c = await makeCerts(dir)
    const v = await run('openssl', ['verify', '-CAfile', c.caFile, c.certFile])
    expect(v.stdout).toContain(': OK')
    const text = (await run('openssl', ['x509', '-in', c.certFile, '-noout', '-ext', 'subjectAltName'])).stdout
    expect(text).toContain('IP Address:127.0.0.1')
    expect(text).toContain('DNS:localhost')
    expect(await readFile(c.keyFile, 'utf8')).toContain('PRIVATE KEY')
  })

  it('runCli returns the exit code and both streams without throwing', async () => {
    const ok = await runCli(['--help'])
    expect(ok.code).toBe(0)
    expect(ok.stdout).toContain('validate')
    const bad = await runCli(['no-such-command-here'])
    expect(bad.code).not.toBe(0)
    expect(bad.stderr.length).toBeGreaterThan(0)
  })
})

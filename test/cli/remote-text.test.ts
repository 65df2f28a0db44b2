import {mkdir, writeFile} from 'node:fs/promises'
import {createServer, type IncomingMessage} from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {terminalSafe} from '../../src/lib/errors.js'
import {runCli} from '../helpers/cli.js'
import {makeTempDir} from '../helpers/tmp.js'

// A registry's error text reaches the terminal only cleaned: no escape sequence, no control character, no
// credential that airlock sent. A stand-in registry (a few lines of node:http on loopback) answers here, as
// no real registry can be made to put escape sequences in its errors or echo the Authorization header it got.

const HOSTILE = '\u001b]0;owned\u0007\u001b[2J\u001b[31mred\u001b[0m \u001b]52;c;ZXZpbA==\u0007bell\u0007 c1\u009b31m'

describe('text from a registry', () => {
  it('is printed without escape sequences or control characters, and never with the credentials sent', async () => {
    const seen: string[] = []
    const server = createServer((req: IncomingMessage, res) => {
      const auth = req.headers.authorization
      if (!auth) {
        res.writeHead(401, {'WWW-Authenticate': 'Basic realm="stand-in"', 'Content-Type': 'application/json'})
        return res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
      }
      seen.push(auth)
      res.writeHead(403, {'Content-Type': 'application/json'})
      res.end(JSON.stringify({errors: [{code: 'DENIED', message: `${HOSTILE} you sent: ${auth}`}]}))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const dir = await makeTempDir('airlock-remote-text-')
      const password = 's3cret-Passw0rd'
      await mkdir(join(dir, 'docker'))
      await writeFile(
        join(dir, 'docker', 'config.json'),
        JSON.stringify({auths: {[host]: {auth: Buffer.from(`me:${password}`).toString('base64')}}}),
      )
      const manifest = join(dir, 'm.yaml')
      await writeFile(
        manifest,
        [
          'apiVersion: airlock/v1',
          'kind: Manifest',
          'metadata: {name: hostile}',
          'spec:',
          '  images:',
          `    - ${host}/team/app:1`,
          '',
        ].join('\n'),
      )
      for (const json of [false, true]) {
        const r = await runCli(['pull', manifest, '--store', join(dir, 'store'), ...(json ? ['--json'] : [])], {
          env: {DOCKER_CONFIG: join(dir, 'docker')},
        })
        expect(r.code).toBe(1)
        expect(seen.length).toBeGreaterThan(0)
        const out = r.stdout + r.stderr
        expect(out).toContain('you sent: Basic [redacted]')
        expect(out).not.toContain(Buffer.from(`me:${password}`).toString('base64'))
        expect(out).not.toContain(password)
        expect(out).toContain('red bell c1')

        expect(r.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/)
        if (json) expect(JSON.parse(r.stdout).error.message).not.toMatch(/\u001b|\u0007/)
      }
    } finally {
      server.close()
    }
  })

  it('terminalSafe keeps newlines and tabs, drops every escape sequence and control character', () => {
    expect(terminalSafe(`a\tb\nc${HOSTILE}`)).toBe('a\tb\ncred bell c1')
    expect(terminalSafe('\u001bPq#0;2;0;0;0\u001b\\done')).toBe('done')
  })
})

import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {pushImage} from '../helpers/images.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {makeTempDir} from '../helpers/tmp.js'

// Each failure line of a pull names its ref or URL once (issue 29, item 10): a missing tag, a 404
// file, an unreachable host, a checksum file that is 404; and a dry run names them as the pull does.
let reg: RegistryServer
let web: NginxServer
let dir: string
const sha = 'a'.repeat(64)
const count = (text: string, what: string): number => text.split(what).length - 1

beforeAll(async () => {
  reg = await startRegistry()
  await pushImage(reg, {repository: 'lib/a', tag: '1.0'})
  web = await startNginx({})
  dir = await makeTempDir('airlock-fail-lines-')
})

afterAll(async () => {
  await web?.stop()
  await reg?.stop()
})

async function manifest(name: string, spec: string): Promise<string> {
  const file = join(dir, `${name}.yaml`)
  await writeFile(file, `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: t\nspec:\n${spec}`)
  return file
}

/** The FAIL line of a plain-progress pull that names `what`, and the Error details line. */
function lines(stderr: string, what: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.includes(what) && (l.startsWith('FAIL ') || l.startsWith('  ') || l.startsWith('Error: ')))
}

describe('pull failure lines', () => {
  it('a missing tag: the ref once in the FAIL line and in the error', async () => {
    const ref = `${reg.host}/lib/a:nope`
    const r = await runCli(['pull', await manifest('tag', `  images:\n    - ${ref}\n`), '--store', join(dir, 's1')])
    expect(r.code, r.stderr).toBe(1)
    const found = lines(r.stderr, ref)
    expect(found, r.stderr).toHaveLength(2)
    for (const l of found) {
      expect(count(l, `${reg.host}/lib/a`), l).toBe(1)
      expect(l).toContain(`${ref}: no such tag (HTTP 404 MANIFEST_UNKNOWN)`)
    }
  })

  it('a 404 file: the host once, after the manifest line and the URL, with the status', async () => {
    const url = `${web.url}/missing.bin`
    const file = await manifest('404', `  binaries:\n    - url: ${url}\n      sha256: ${sha}\n`)
    const r = await runCli(['pull', file, '--store', join(dir, 's2')])
    expect(r.code, r.stderr).toBe(1)
    const found = lines(r.stderr, url)
    expect(found, r.stderr).toHaveLength(2)
    for (const l of found) {
      expect(count(l, web.host), l).toBe(1)
      expect(l).toContain(`${file}:7:7: binary ${url}: HTTP 404 Not Found`)
    }
  })

  it('an unreachable host: the address once and ECONNREFUSED once, with the attempts; a dry run says the same', async () => {
    const url = 'http://127.0.0.1:1/x.bin'
    const file = await manifest('down', `  binaries:\n    - url: ${url}\n      sha256: ${sha}\n`)
    for (const extra of [[], ['--dry-run']]) {
      const r = await runCli(['pull', file, '--store', join(dir, 's3'), ...extra])
      expect(r.code, r.stderr).toBe(1)
      const found = lines(r.stderr, url)
      expect(found.length, r.stderr).toBeGreaterThan(0)
      for (const l of found) {
        expect(count(l, '127.0.0.1:1'), l).toBe(1)
        expect(count(l, 'ECONNREFUSED'), l).toBe(1)
        // The dry run's HEAD is retried as the pull's GET is, and named by the same file:line label.
        expect(l, extra.join(' ')).toContain(
          `${file}:7:7: binary ${url}: connect ECONNREFUSED; gave up after 5 attempts`,
        )
      }
    }
  })

  it('a checksum file that is 404 or lacks the file: the entry named by its manifest line, as a sha256 mismatch is', async () => {
    await writeFile(join(web.root, 'other.sha256'), `${sha}  other.bin\n${'b'.repeat(64)}  third.bin\n`)
    const url = `${web.url}/y.bin`
    for (const [name, sums] of [
      ['missing.sha256', 'HTTP 404 Not Found'],
      ['other.sha256', 'y.bin'],
    ] as const) {
      const file = await manifest(
        `sums-${name}`,
        `  binaries:\n    - url: ${url}\n      checksumUrl: ${web.url}/${name}\n`,
      )
      for (const extra of [[], ['--dry-run']]) {
        const r = await runCli(['pull', file, '--store', join(dir, 's4'), ...extra])
        expect(r.code, r.stderr).toBe(1)
        const found = lines(r.stderr, `${web.url}/${name}`)
        expect(found.length, r.stderr).toBeGreaterThan(0)
        for (const l of found) {
          expect(l).toContain(`${file}:7:7: binary ${url}: `)
          expect(l).toContain(sums)
          expect(count(l, `${web.url}/${name}`), l).toBe(1)
        }
      }
    }
  })
})

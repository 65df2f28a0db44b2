import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {combineFailures, FailureGroup, IntegrityError, NetworkError} from '../../src/lib/errors.js'
import {runCli} from '../helpers/cli.js'
import {freePort} from '../helpers/ports.js'
import {makeTempDir} from '../helpers/tmp.js'

// Every failure of a run reaches the final Error and the --json details: one
// image and two files that all fail (a loopback port nothing listens on, so
// no server is needed) give three FAIL lines and three details.

describe('failures of a run', () => {
  it('pull reports every failing entry in the final error and in --json', async () => {
    const dir = await makeTempDir('airlock-failures-')
    const port = await freePort()
    const manifest = join(dir, 'm.yaml')
    await writeFile(
      manifest,
      [
        'apiVersion: airlock/v1',
        'kind: Manifest',
        'metadata: {name: failing}',
        'spec:',
        '  images:',
        `    - 127.0.0.1:${port}/library/x:1`,
        '  binaries:',
        `    - url: http://127.0.0.1:${port}/a/one`,
        `      sha256: ${'a'.repeat(64)}`,
        `    - url: http://127.0.0.1:${port}/a/two`,
        `      sha256: ${'b'.repeat(64)}`,
        '',
      ].join('\n'),
    )
    const r = await runCli(['pull', manifest, '--store', join(dir, 'store'), '--json'])
    expect(r.code, r.stderr).toBe(1)
    const fails = r.stderr.split('\n').filter((l) => l.startsWith('FAIL '))
    expect(fails).toHaveLength(3)
    const error = JSON.parse(r.stdout).error as {message: string; details: string[]; exitCode: number}
    expect(error.message).toBe('3 entries failed')
    expect(error.details).toHaveLength(3)
    // The human Error lists the same three under it.
    const tail = r.stderr.slice(r.stderr.indexOf('Error: '))
    expect(tail.split('\n').filter((l) => l.startsWith('  ') && l.includes(`127.0.0.1:${port}`))).toHaveLength(3)
  }, 60_000)

  it('combineFailures flattens groups and keeps each failure with its details', () => {
    const a = new NetworkError('host a: refused', {host: 'a'})
    const b = new IntegrityError('blob x', 'sha256:1', 'sha256:2', {details: ['image y']})
    const c = new Error('plain')
    const inner = combineFailures([a, b])
    expect(inner).toBeInstanceOf(FailureGroup)
    const all = combineFailures([inner, c]) as FailureGroup
    expect(all.failures).toEqual([a, b, c])
    expect(all.message).toBe('3 entries failed')
    expect(all.details).toEqual([a.message, b.message, '  image y', 'plain'])
    expect(all.exitCode).toBe(1)
    expect(combineFailures([a])).toBe(a)
  })
})

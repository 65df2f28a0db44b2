import {describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'

// Usage mistakes, as a script with --json and a person at a terminal meet them.
// Runs the built CLI (npm run build first); no server is needed.

const STACK_LINE = /^\s+at .+:\d+:\d+\)?$/m

/** stdout must be the contract's error document and nothing else. */
function errorDoc(stdout: string): {kind: string; message: string; exitCode: number; details?: string[]} {
  const doc = JSON.parse(stdout) as {error: Record<string, unknown>}
  expect(Object.keys(doc)).toEqual(['error'])
  for (const k of Object.keys(doc.error)) expect(['kind', 'message', 'exitCode', 'details']).toContain(k)
  return doc.error as {kind: string; message: string; exitCode: number; details?: string[]}
}

describe('usage errors', () => {
  it.each([
    [['pull', '--json'], /missing argument MANIFEST/],
    [['pull', 'm.yaml', '--json', '--bogus'], /--bogus/],
    [
      ['pull', 'm.yaml', '--json', '--concurrency', '0'],
      /^--concurrency: expected an integer greater than or equal to 1/,
    ],
    [['bundle', '--json'], /--out/],
    [['verify', 'a', 'b', '--json'], /Unexpected argument: b/],
  ])('%j prints only the error document and exits 2', async (args, message) => {
    const r = await runCli(args)
    expect(r.code, r.stderr).toBe(2)
    expect(r.stdout.length).toBeLessThan(2000)
    const e = errorDoc(r.stdout)
    expect(e.kind).toBe('usage')
    expect(e.exitCode).toBe(2)
    expect(e.message).toMatch(message)
    expect(r.stderr).toMatch(/^Error: /)
    expect(r.stderr).not.toMatch(STACK_LINE)
  })

  it('a missing argument is named without the unrelated note on multi-value flags', async () => {
    const r = await runCli(['pull'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('Error: missing argument MANIFEST: Path of the manifest (YAML)')
    expect(r.stderr).toContain('airlock pull --help')
    expect(r.stderr).not.toMatch(/multiple values/)
    expect(r.stdout).toBe('')
  })

  it('a mistyped command gets a did-you-mean and exit 2, as JSON too', async () => {
    const r = await runCli(['pul'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('airlock pul: no such command')
    expect(r.stderr).toContain('did you mean airlock pull?')
    const sub = await runCli(['import', 'ngnix', 'b', '--root', 'r'])
    expect(sub.code).toBe(2)
    expect(sub.stderr).toContain('did you mean airlock import nginx?')
    const j = await runCli(['verfy', '--json'])
    expect(j.code).toBe(2)
    expect(errorDoc(j.stdout)).toMatchObject({kind: 'usage', exitCode: 2})
  })

  it('bundle --help describes --concurrency as what it is', async () => {
    const r = await runCli(['bundle', '--help'])
    expect(r.code).toBe(0)
    const line = r.stdout.split('\n').find((l) => l.includes('--concurrency='))!
    expect(line).toContain('1 to 3')
    expect(line).not.toContain('default: 8')
  })
})

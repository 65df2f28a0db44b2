import {execFile} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {mkdir, readdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {repoRoot} from '../helpers/cli.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {freePort} from '../helpers/ports.js'
import {makeTempDir} from '../helpers/tmp.js'

// The live view as a person sees it: the CLI runs in a pseudo-terminal and a
// terminal emulator (pyte, test/helpers/pty_screen.py) reads every byte it
// writes; the assertions are on the final screen. Files come from a real
// nginx, rate-limited so a pull takes a few seconds and draws many frames.

const run = promisify(execFile)
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

interface Screen {
  code: number
  timedOut: boolean
  ctrlC: boolean
  screen: string[]
  cursorHidden: boolean
  raw: string
}

async function inTerminal(
  args: string[],
  opts: {noSize?: boolean; ctrlCAfter?: string; rows?: number; cols?: number; timeout?: number} = {},
): Promise<Screen> {
  const flags = [
    '--rows',
    String(opts.rows ?? 200),
    '--cols',
    String(opts.cols ?? 100),
    '--timeout',
    String(opts.timeout ?? 120),
  ]
  if (opts.noSize) flags.push('--no-size')
  if (opts.ctrlCAfter) flags.push('--ctrl-c-after', opts.ctrlCAfter)
  const {stdout} = await run(
    '/usr/bin/python3',
    [
      join(repoRoot, 'test/helpers/pty_screen.py'),
      ...flags,
      '--',
      process.execPath,
      join(repoRoot, 'bin/run.js'),
      ...args,
    ],
    {
      maxBuffer: 64 * 1024 * 1024,
      env: {...process.env, NO_COLOR: '1'},
    },
  )
  return JSON.parse(stdout) as Screen
}

const used = (s: Screen) => s.screen.filter((l) => l.trim() !== '')

let web: NginxServer
let dir: string
let manifest: string
const files = Array.from({length: 9}, (_, i) => randomBytes(300_000 + i * 20_000))

beforeAll(async () => {
  dir = await makeTempDir('airlock-terminal-')
  const root = join(dir, 'www')
  await mkdir(join(root, 'dl'), {recursive: true})
  for (const [i, b] of files.entries())
    await writeFile(
      join(root, 'dl', `tool-${i}-with-a-rather-long-name-so-lines-would-wrap-on-a-narrow-terminal.bin`),
      b,
    )
  // ~4 s for the lot at 8 connections: many frames.
  web = await startNginx({root, rateLimit: '80k'})
  manifest = join(dir, 'm.yaml')
  await writeFile(
    manifest,
    [
      'apiVersion: airlock/v1',
      'kind: Manifest',
      'metadata: {name: terminal}',
      'spec:',
      '  binaries:',
      ...files.flatMap((b, i) => [
        `    - url: ${web.url}/dl/tool-${i}-with-a-rather-long-name-so-lines-would-wrap-on-a-narrow-terminal.bin`,
        `      sha256: ${sha(b)}`,
      ]),
      '',
    ].join('\n'),
  )
}, 120_000)

afterAll(async () => {
  await web?.stop()
})

describe('the live view in a terminal', () => {
  it('redraws frames in place, cuts long lines instead of wrapping, and keeps the result lines', async () => {
    const s = await inTerminal(['pull', manifest, '--store', join(dir, 'store-a')], {cols: 60})
    expect(s.code, s.raw).toBe(0)
    expect(s.raw).toMatch(/\u001b\[\d+A/) // it did redraw (cursor up), many times
    expect(s.raw.split('pull: ').length).toBeGreaterThan(5)
    const screen = used(s)
    // One summary line at the end, no frame left over from the refreshes.
    expect(screen.filter((l) => /pull: \d+\/\d+ done/.test(l))).toEqual([expect.stringMatching(/^✔ pull: 9\/9 done/)])
    expect(screen.filter((l) => l.includes('…'))).toEqual([])
    // The nine result lines (stdout) survived the redraws.
    for (let i = 0; i < 9; i++)
      expect(
        screen.some((l) => l.includes(`tool-${i}-with`)),
        screen.join('\n'),
      ).toBe(true)
    expect(s.cursorHidden).toBe(false)
  })

  it('shows progress on a terminal that reports no size', async () => {
    const s = await inTerminal(['pull', manifest, '--store', join(dir, 'store-b')], {noSize: true})
    expect(s.code, s.raw).toBe(0)
    expect(s.raw).toMatch(/… \S*tool-\d/) // rows in flight were drawn
    expect(used(s).filter((l) => /pull: \d+\/\d+ done/.test(l))).toEqual([expect.stringMatching(/^✔ pull: 9\/9 done/)])
  })

  it('import nginx: the summary line on stdout stays on screen', async () => {
    const bundle = join(dir, 'bundle')
    const b = await inTerminal(['build', manifest, '--store', join(dir, 'store-c'), '--out', bundle])
    expect(b.code, b.raw).toBe(0)
    const s = await inTerminal(['import', 'nginx', bundle, '--root', join(dir, 'root')])
    expect(s.code, s.raw).toBe(0)
    expect(
      used(s).some((l) => /9 files written/.test(l)),
      used(s).join('\n'),
    ).toBe(true)
  })

  it('serve: the live view ends once the server listens, so the list and the serving line show; Ctrl-C stops it gracefully', async () => {
    const bundle = join(dir, 'bundle-serve')
    const b = await inTerminal(['build', manifest, '--store', join(dir, 'store-e'), '--out', bundle])
    expect(b.code, b.raw).toBe(0)
    const port = await freePort()
    // Ctrl-C once the serving line is on screen: held below a live frame, it would never come and the run time out.
    const s = await inTerminal(
      ['serve', bundle, '--listen', `127.0.0.1:${port}`, '--cache-dir', join(dir, 'serve-cache')],
      {ctrlCAfter: 'Ctrl-C or SIGTERM stops', timeout: 60},
    )
    expect(s.timedOut, s.raw).toBe(false)
    expect(s.ctrlC).toBe(true)
    // A graceful stop (exit 0), not a process killed by the signal.
    expect(s.code, s.raw).toBe(0)
    const screen = used(s)
    expect(
      screen.some((l) => l.startsWith(`total: 0 images, 9 files at http://127.0.0.1:${port}`)),
      screen.join('\n'),
    ).toBe(true)
    const text = screen.join('')
    expect(text).toMatch(/SIGINT: stopping/)
    expect(text).toMatch(/served \d+ request/)
    expect(s.cursorHidden).toBe(false)
  })

  it('Ctrl-C shows the cursor again, says what was kept and that a new run resumes, and exits 130', async () => {
    const store = join(dir, 'store-d')
    const s = await inTerminal(['pull', manifest, '--store', store], {ctrlCAfter: 'KiB/s'})
    expect(s.ctrlC).toBe(true)
    expect(s.code, s.raw).toBe(130)
    expect(s.cursorHidden).toBe(false)
    const text = used(s).join('') // the note wraps at the screen's width
    expect(text).toMatch(/Interrupted\. \d+ of \d+ items? had finished and are kept in the store/)
    expect(text).toMatch(/Run the same command again to resume/)
    // What it said is true: partial downloads are there to be resumed.
    expect((await readdir(join(store, '.tmp'))).length).toBeGreaterThan(0)
    const again = await inTerminal(['pull', manifest, '--store', store])
    expect(again.code, again.raw).toBe(0)
  })
})

import {execFile} from 'node:child_process'
import {mkdir, readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {describe, expect, it} from 'vitest'

import {syncFilesystem} from '../../../src/lib/store/atomic.js'
import {fileData, type FixtureFile, makeBundle, sha256Hex} from '../../helpers/bundle-fixture.js'
import {repoRoot} from '../../helpers/cli.js'
import {makeTempDir} from '../../helpers/tmp.js'

const run = promisify(execFile)

// More than the few written on the main thread: the rest are written by the write thread, flushed all the same.
const FILES: FixtureFile[] = Array.from({length: 48}, (_, i) => ({
  path: `127.0.0.1:8081/release/v1.${i % 3}.0/bin/tool-${i}`,
  data: fileData(1000 + i * 700),
  kind: i % 4 === 3 ? ('package' as const) : ('binary' as const),
}))

interface Call {
  name: string
  args: string
}

/**
 * `airlock import nginx` (the built CLI) under strace: every flush and
 * rename, in the order they returned, with file descriptors shown as paths
 * (-y), the `sync` child's calls included (-f); `env` is set for the CLI only.
 */
async function tracedImport(env: Record<string, string> = {}): Promise<{calls: Call[]; root: string}> {
  const work = await makeTempDir('root-flush-')
  const b = await makeBundle(join(work, 'bundle'), FILES)
  const root = join(work, 'www')
  const log = join(work, 'strace.log')
  const setEnv = Object.entries(env).flatMap(([k, v]) => ['-E', `${k}=${v}`])
  await run(
    'strace',
    [
      '-f',
      '-qq',
      '-y',
      '-o',
      log,
      ...setEnv,
      '-e',
      'trace=syncfs,fsync,fdatasync,rename,renameat,renameat2',
      process.execPath,
      join(repoRoot, 'bin', 'run.js'),
      'import',
      'nginx',
      b.dir,
      '--root',
      root,
      '--quiet',
    ],
    {
      env: {...process.env, CI: '1'},
    },
  )
  // In the order the calls returned: a call another thread interrupts is logged as `<unfinished ...>` and later `<... resumed>`.
  const calls: Call[] = []
  const pending = new Map<string, Call>()
  for (const line of (await readFile(log, 'utf8')).split('\n')) {
    const whole = /^(\d+)\s+(\w+)\((.*)\)\s+=\s+0$/.exec(line)
    const started = /^(\d+)\s+(\w+)\((.*) <unfinished \.\.\.>$/.exec(line)
    const resumed = /^(\d+)\s+<\.\.\. (\w+) resumed>.*\)\s+=\s+0$/.exec(line)
    if (whole) calls.push({name: whole[2], args: whole[3]})
    else if (started) pending.set(started[1], {name: started[2], args: started[3]})
    else if (resumed && pending.has(resumed[1])) calls.push(pending.get(resumed[1])!)
  }
  for (const f of FILES) expect(sha256Hex(await readFile(join(root, f.path)))).toBe(sha256Hex(f.data))
  return {calls, root}
}

const staged = (c: Call) => /\.airlock-\d+-[0-9a-f]{8}\.tmp/.test(c.args)
const isRename = (c: Call) => c.name.startsWith('rename') && staged(c)
const isFlush = (c: Call) => c.name === 'fsync' || c.name === 'fdatasync'

describe('import nginx flushes the staged files before any gets its final name', () => {
  it('in one flush of the filesystem (syncfs), not one per file', async () => {
    const {calls} = await tracedImport()
    const renames = calls.flatMap((c, i) => (isRename(c) ? [i] : []))
    expect(renames).toHaveLength(FILES.length)
    const firstSyncfs = calls.findIndex((c) => c.name === 'syncfs')
    expect(firstSyncfs).toBeGreaterThanOrEqual(0)
    expect(firstSyncfs).toBeLessThan(Math.min(...renames))
    expect(calls.filter((c) => isFlush(c) && staged(c))).toEqual([])
  })

  it('file by file where no `sync -f` is to be had', async () => {
    const empty = await makeTempDir('no-sync-')
    await mkdir(join(empty, 'bin'))
    const {calls} = await tracedImport({PATH: join(empty, 'bin')})
    expect(calls.some((c) => c.name === 'syncfs')).toBe(false)
    const renames = calls.filter(isRename)
    expect(renames).toHaveLength(FILES.length)
    const firstRename = calls.findIndex(isRename)
    for (const r of renames) {
      const tmp = /"([^"]+\.tmp)"/.exec(r.args)![1]
      const flushed = calls.findIndex((c) => isFlush(c) && c.args.includes(tmp))
      expect(flushed, `${tmp} flushed before the first rename`).toBeGreaterThanOrEqual(0)
      expect(flushed).toBeLessThan(firstRename)
    }
  })
})

describe('import nginx modes', () => {
  it('gives files 0644, executables and folders 0755 under a umask that takes bits from them (an fchmod where open() could not)', async () => {
    const work = await makeTempDir('root-umask-')
    // Enough files that the later ones are written by the write thread, not the main one.
    const files: FixtureFile[] = Array.from({length: 48}, (_, i) =>
      i % 2 === 0
        ? {path: `example.com/bin/tool-${i}`, data: fileData(3000 + i), executable: true}
        : {path: `example.com/doc/readme-${i}`, data: fileData(100 + i)},
    )
    const b = await makeBundle(join(work, 'bundle'), files)
    for (const [umask, name] of [
      ['077', 'strict'],
      ['022', 'usual'],
      ['000', 'open'],
    ]) {
      // --root missing, with two missing parents: all three are made 0755 too, whatever the umask.
      const root = join(work, name, 'srv', 'www')
      await run(
        'sh',
        [
          '-c',
          `umask ${umask} && exec "$0" "$@"`,
          process.execPath,
          join(repoRoot, 'bin', 'run.js'),
          'import',
          'nginx',
          b.dir,
          '--root',
          root,
          '--quiet',
        ],
        {
          env: {...process.env, CI: '1'},
        },
      )
      for (const f of files)
        expect((await stat(join(root, f.path))).mode & 0o777, `${name}: ${f.path}`).toBe(f.executable ? 0o755 : 0o644)
      for (const d of ['example.com', 'example.com/bin', 'example.com/doc'])
        expect((await stat(join(root, d))).mode & 0o777, `${name}: ${d}/`).toBe(0o755)
      for (const d of [join(work, name), join(work, name, 'srv'), root])
        expect((await stat(d)).mode & 0o777, `${name}: ${d}/`).toBe(0o755)
    }
  })
})

describe('syncFilesystem', () => {
  it('flushes a real folder, and says so; says it could not for a missing one or without `sync`', async () => {
    const dir = await makeTempDir('syncfs-')
    expect(await syncFilesystem(dir)).toBe(true)
    expect(await syncFilesystem(join(dir, 'missing'))).toBe(false)
    const path = process.env.PATH
    process.env.PATH = join(dir, 'nothing-here')
    try {
      expect(await syncFilesystem(dir)).toBe(false)
    } finally {
      process.env.PATH = path
    }
  })
})

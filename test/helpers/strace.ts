import {spawn} from 'node:child_process'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {repoRoot} from './cli.js'

/** One system call of a traced run, at the line where it returned (an interrupted call at its `resumed` line). */
export interface TracedCall {
  /** Its place among the calls: returns in the order strace saw them. */
  at: number
  pid: number
  name: string
  /** The file a descriptor argument names (strace -y), if any. */
  fdPath?: string
  /** The quoted path arguments (rename's source and target). */
  paths: string[]
}

/**
 * Runs `airlock ARGS` (bin/run.js) under strace, following every thread and
 * child (`sync -f` included), and returns the writes, flushes and renames
 * it made, each with the file it acted on.
 */
export async function straceCli(
  args: string[],
  dir: string,
): Promise<{code: number | null; stderr: string; calls: TracedCall[]}> {
  const log = join(dir, 'strace.log')
  const child = spawn(
    'strace',
    [
      '-f',
      '-y',
      '-qq',
      '-s',
      '0',
      '-o',
      log,
      '-e',
      'trace=write,writev,pwrite64,pwritev,fsync,fdatasync,syncfs,/^rename',
      process.execPath,
      join(repoRoot, 'bin', 'run.js'),
      ...args,
    ],
    {cwd: repoRoot, env: {...process.env, CI: '1', NO_COLOR: '1'}, stdio: ['ignore', 'ignore', 'pipe']},
  )
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  return {code, stderr, calls: parseStrace(await readFile(log, 'utf8'))}
}

/** strace -f -y lines (`PID name(args) = ret`, split calls as `<unfinished ...>` and `<... name resumed>`) as calls. */
export function parseStrace(text: string): TracedCall[] {
  const calls: TracedCall[] = []
  const pending = new Map<number, Omit<TracedCall, 'at'>>()
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line)
    if (!m) continue
    const pid = Number(m[1])
    const rest = m[2]
    const resumed = /^<\.\.\. (\w+) resumed>/.exec(rest)
    if (resumed) {
      const call = pending.get(pid)
      pending.delete(pid)
      if (call) calls.push({...call, at: calls.length})
      continue
    }
    const start = /^(\w+)\((.*)$/.exec(rest)
    if (!start) continue
    const [, name, argText] = start
    const call = {
      pid,
      name,
      fdPath: /^\d+<([^>]*)>/.exec(argText)?.[1],
      paths: [...argText.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((p) => p[1]),
    }
    if (rest.includes('<unfinished ...>')) pending.set(pid, call)
    else calls.push({...call, at: calls.length})
  }
  return calls
}

/**
 * The renames into `under` that came before their source's bytes were made
 * durable: no syncfs, and no fsync of the source, between the source's last
 * write and the rename.
 */
export function renamedBeforeFlush(calls: TracedCall[], under: string): string[] {
  const lastWrite = new Map<string, number>()
  const bad: string[] = []
  for (const c of calls) {
    if (/^(p?writev?|pwrite64)$/.test(c.name) && c.fdPath) lastWrite.set(c.fdPath, c.at)
    if (!c.name.startsWith('rename') || c.paths.length < 2) continue
    const [src, dst] = [c.paths[0], c.paths[c.paths.length - 1]]
    if (!dst.includes(under)) continue
    const since = lastWrite.get(src) ?? -1
    const flushed = calls.some(
      (f) =>
        f.at > since && f.at < c.at && (f.name === 'syncfs' || (/^f(data)?sync$/.test(f.name) && f.fdPath === src)),
    )
    if (!flushed) bad.push(`${src} -> ${dst}`)
  }
  return bad
}

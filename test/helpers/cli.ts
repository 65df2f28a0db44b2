import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The repository root (test/helpers/../..). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/**
 * Runs the built CLI (`node bin/run.js ARGS`; needs `npm run build` first: it
 * throws when dist/ is missing, so a test fails rather than skips) and
 * never throws on a non-zero exit. CI=1 makes progress plain lines; colours are
 * off so tests can match text. A timeout kills it and reports code 137.
 */
export async function runCli(args: string[], opts: RunOptions = {}): Promise<CliResult> {
  if (!existsSync(join(repoRoot, 'dist', 'commands')))
    throw new Error(`${join(repoRoot, 'dist')} has no commands: run \`npm run build\` first`)
  return runProgram(process.execPath, [join(repoRoot, 'bin', 'run.js'), ...args], opts)
}

export interface RunOptions {
  cwd?: string
  env?: Record<string, string>
  timeoutMs?: number
  /** Written to the program's standard input, which is then closed (without it, stdin is /dev/null). */
  input?: string
}

/** Runs any program (the standalone executable, an installed airlock) as runCli runs bin/run.js. */
export async function runProgram(file: string, args: string[], opts: RunOptions = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = {...process.env, CI: '1', NO_COLOR: '1', ...opts.env}
  delete env.FORCE_COLOR
  const child = spawn(file, args, {
    cwd: opts.cwd ?? repoRoot,
    env,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  })
  if (opts.input !== undefined) {
    // A program that exits without reading its input (a usage error) closes the pipe: not the test's failure.
    child.stdin!.on('error', () => {})
    child.stdin!.end(opts.input)
  }
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout!.on('data', (b: Buffer) => out.push(b))
  child.stderr!.on('data', (b: Buffer) => err.push(b))
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, opts.timeoutMs ?? 170_000)
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (c, signal) => resolve(c ?? (signal === 'SIGKILL' ? 137 : 128 + 15)))
  })
  clearTimeout(timer)
  const stderr =
    Buffer.concat(err).toString('utf8') + (timedOut ? `\n[runCli: killed after ${opts.timeoutMs ?? 170_000} ms]\n` : '')
  return {code, stdout: Buffer.concat(out).toString('utf8'), stderr}
}

/**
 * `npm run bench`: runs every benchmark under scripts/bench/ in turn. Each one
 * starts its own local servers, measures airlock and the reference tool in
 * the same run and prints times, ratios and airlock's peak RSS.
 * `npm run bench -- pull-images` runs only the named ones.
 *
 * `npm run bench -- --baseline REV [NAME ...]` builds commit REV in a
 * temporary git worktree (its node_modules linked to this checkout's when
 * the two package-lock.json files are the same, else `npm ci` there) and
 * hands it to the benchmarks (AIRLOCK_BENCH_BASELINE): those that compare
 * builds (`goals`) run each case with this build and REV's in turn, in one
 * run, and print new/old beside the ratios to the reference tools. Without
 * names it runs `goals`. The worktree is removed at the end.
 */
import {execFile, spawn} from 'node:child_process'
import {readdir, readFile, rm, symlink} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

const run = promisify(execFile)
const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')

/** Benchmarks that run both builds when given a baseline. */
const COMPARING = ['goals']

function usage(msg: string): never {
  process.stderr.write(`${msg}\nusage: npm run bench -- [--baseline REV] [NAME ...]\n`)
  process.exit(2)
}

const argv = process.argv.slice(2)
let baselineRev: string | undefined
const only: string[] = []
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--baseline') {
    baselineRev = argv[++i]
    if (!baselineRev) usage('--baseline needs a commit (a hash, tag or branch)')
  } else if (argv[i].startsWith('--baseline=')) baselineRev = argv[i].slice('--baseline='.length)
  else if (argv[i].startsWith('-')) usage(`unknown option ${argv[i]}`)
  else only.push(argv[i])
}

const all = (await readdir(join(here, 'bench'))).filter((f) => f.endsWith('.ts')).sort()
const wanted = only.length > 0 ? only : baselineRev ? COMPARING : []
const chosen = wanted.length > 0 ? all.filter((f) => wanted.includes(f.replace(/\.ts$/, ''))) : all
if (chosen.length === 0)
  usage(`no benchmark matches ${only.join(', ')}; have: ${all.map((f) => f.replace(/\.ts$/, '')).join(', ')}`)

/** Short name of this checkout's commit, `-dirty` when it has changes. */
async function thisRev(): Promise<string> {
  const {stdout} = await run('git', ['rev-parse', '--short', 'HEAD'], {cwd: root})
  const {stdout: status} = await run('git', ['status', '--porcelain', '--untracked-files=no'], {cwd: root})
  return stdout.trim() + (status.trim() ? '-dirty' : '')
}

/** Check out and build `rev` in a temporary worktree; its folder and short name. */
async function buildBaseline(rev: string): Promise<{dir: string; short: string}> {
  let full: string
  try {
    full = (await run('git', ['rev-parse', '--verify', `${rev}^{commit}`], {cwd: root})).stdout.trim()
  } catch {
    usage(`--baseline ${rev}: no such commit here`)
  }
  const short = full.slice(0, 7)
  const dir = join(tmpdir(), `airlock-baseline-${short}-${process.pid}`)
  process.stderr.write(`baseline ${short}: worktree at ${dir}\n`)
  await run('git', ['worktree', 'add', '--detach', dir, full], {cwd: root})
  const step = (cmd: string, args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(cmd, args, {cwd: dir, stdio: ['ignore', 'inherit', 'inherit']})
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} in ${dir} exited ${code}`)),
      )
    })
  const sameLock =
    (await readFile(join(root, 'package-lock.json'), 'utf8').catch(() => 'a')) ===
    (await readFile(join(dir, 'package-lock.json'), 'utf8').catch(() => 'b'))
  if (sameLock) await symlink(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir')
  else {
    process.stderr.write(`baseline ${short}: its package-lock.json differs, npm ci there\n`)
    await step('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline'])
  }
  process.stderr.write(`baseline ${short}: npm run build\n`)
  await step('npm', ['run', 'build', '--silent'])
  return {dir, short}
}

async function removeBaseline(dir: string): Promise<void> {
  await run('git', ['worktree', 'remove', '--force', dir], {cwd: root}).catch(() => undefined)
  await rm(dir, {recursive: true, force: true})
  await run('git', ['worktree', 'prune'], {cwd: root}).catch(() => undefined)
}

const env: NodeJS.ProcessEnv = {...process.env, AIRLOCK_BENCH_REV: await thisRev()}
let baseline: {dir: string; short: string} | undefined
let failed = 0
const cleanup = async () => {
  if (baseline) await removeBaseline(baseline.dir)
}
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)))
try {
  if (baselineRev) {
    baseline = await buildBaseline(baselineRev)
    env.AIRLOCK_BENCH_BASELINE = baseline.dir
    env.AIRLOCK_BENCH_BASELINE_REV = baseline.short
  }
  for (const file of chosen) {
    process.stdout.write(`\n== ${file.replace(/\.ts$/, '')} ==\n`)
    const code = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'bench', file)], {stdio: 'inherit', env})
      child.on('exit', (c) => resolve(c ?? 1))
    })
    if (code !== 0) {
      failed++
      process.stdout.write(`${file}: exited ${code}\n`)
    }
  }
} finally {
  await cleanup()
}
process.exit(failed > 0 ? 1 : 0)

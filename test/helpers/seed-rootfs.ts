import {execFile, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdir, rename, rm, stat} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

const run = promisify(execFile)

/** What the seed node's root file system is made of: Debian's minimal base, nothing added (no Node.js). */
const SEED = {suite: 'bookworm', variant: 'minbase', include: [] as string[]}

/**
 * A minimal Debian root file system, as a seed node has one: made once with
 * `mmdebstrap --variant=minbase` (about a minute, from the Debian mirror) and
 * kept under ~/.cache/airlock-test (AIRLOCK_TEST_CACHE), keyed by what it is
 * made of. Callers copy it before changing anything in it.
 */
export async function seedRootfs(): Promise<string> {
  const cache = process.env.AIRLOCK_TEST_CACHE ?? join(homedir(), '.cache', 'airlock-test')
  const key = createHash('sha256').update(JSON.stringify(SEED)).digest('hex').slice(0, 16)
  const dir = join(cache, `seed-rootfs-${SEED.suite}-${SEED.variant}-${key}`)
  if ((await stat(join(dir, 'usr', 'bin', 'sha256sum')).catch(() => undefined))?.isFile()) return dir
  const tmp = `${dir}.tmp-${process.pid}`
  await rm(tmp, {recursive: true, force: true})
  // mmdebstrap resolves its target's absolute path, which fails while the cache folder itself does not exist (a fresh machine).
  await mkdir(cache, {recursive: true})
  try {
    const include = SEED.include.length > 0 ? [`--include=${SEED.include.join(',')}`] : []
    await run('mmdebstrap', [`--variant=${SEED.variant}`, '--quiet', ...include, SEED.suite, tmp], {
      maxBuffer: 16 << 20,
    })
    await rm(dir, {recursive: true, force: true})
    await rename(tmp, dir)
  } catch (err) {
    await rm(tmp, {recursive: true, force: true})
    throw new Error(
      `mmdebstrap could not make the seed root file system: ${(err as {stderr?: string}).stderr ?? (err as Error).message}`,
      {cause: err},
    )
  }
  return dir
}

/** A shell script run as root in a new network namespace (loopback only) and mount namespace; never throws. */
export function inNamespace(script: string): Promise<{code: number; out: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['--net', '--mount', 'sh', '-c', script], {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    child.on('error', reject)
    child.on('exit', (code) => resolve({code: code ?? 1, out}))
  })
}

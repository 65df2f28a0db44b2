import {spawn} from 'node:child_process'
import {mkdir, readFile, stat} from 'node:fs/promises'
import {arch} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {FailureError, isAirlockError, UsageError} from '../../errors.js'
import {standaloneRuntime} from '../../standalone-runtime.js'
import {acquirePidLock} from '../../store/pid-lock.js'
import {type Progress, silentProgress} from '../../ui/progress.js'
import {executableName, IMPORT_SCRIPT} from '../format/bundle-files.js'
import type {BundleTool} from './bundle.js'

/**
 * The importer a bundle carries for the seed node: the standalone executable
 * for each asked platform and import.sh. Where the executable comes from:
 * - airlock running as the standalone executable copies itself for its own
 *   arch, and takes another arch's from beside itself (`airlock-linux-arm64`
 *   in the same folder);
 * - airlock running from a clone takes dist/bin/airlock-linux-<arch>, and
 *   builds it first when it is not there (`npm run build:bin`, which
 *   `npm run build` clears, so it never lags behind dist/);
 * - airlock installed from the release's npm package takes the same file:
 *   the package carries both executables there (scripts/release.ts).
 */

/** Platforms a standalone executable is built for. */
export const SEED_TOOL_PLATFORMS = ['linux/amd64', 'linux/arm64'] as const

/** This machine's arch as the executables name it, when one is built for it. */
function ownArch(): string | undefined {
  return {x64: 'amd64', arm64: 'arm64'}[arch() as string]
}

/** The bastion's own platform, the default importer. */
export function defaultSeedToolPlatform(): string {
  const own = ownArch()
  if (own) return `linux/${own}`
  throw new UsageError(
    `there is no standalone executable for this machine's arch (${arch()}) to carry as the importer`,
    {
      suggestions: [`name one with --importer (${SEED_TOOL_PLATFORMS.join(', ')}), or bundle with --no-importer`],
    },
  )
}

/** `--importer` values checked and deduplicated, in a stable order. */
export function seedToolPlatforms(asked: string[] | undefined): string[] {
  const list = asked && asked.length > 0 ? asked : [defaultSeedToolPlatform()]
  for (const p of list) {
    if (!(SEED_TOOL_PLATFORMS as readonly string[]).includes(p)) {
      throw new UsageError(
        `--importer ${p}: the standalone executable is built for ${SEED_TOOL_PLATFORMS.join(' and ')} only`,
      )
    }
  }
  return [...new Set(list)].sort()
}

/** The files writeBundle puts beside the archives: one executable per platform, then import.sh. */
export async function seedTools(platforms: string[], progress: Progress = silentProgress): Promise<BundleTool[]> {
  const standalone = standaloneRuntime()
  const tools: BundleTool[] = []
  for (const platform of platforms) {
    const a = platform.split('/')[1]
    const source = standalone ? await besideSelf(standalone.executable, a) : await fromClone(a, progress)
    tools.push({path: executableName(a), platform, source, mode: 0o755})
  }
  const script = standalone
    ? standalone.asset(IMPORT_SCRIPT)
    : await readFile(new URL(`./${IMPORT_SCRIPT}`, import.meta.url))
  tools.push({path: IMPORT_SCRIPT, source: script, mode: 0o755})
  return tools
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false
}

async function besideSelf(self: string, a: string): Promise<string> {
  const own = ownArch()
  if (a === own) return self
  const other = join(dirname(self), executableName(a))
  if (await isFile(other)) return other
  throw new FailureError(
    `the importer for linux/${a} is not here: the standalone executable carries only itself (linux/${own}), and ${other} does not exist`,
    {
      suggestions: [
        `put ${executableName(a)} (from \`npm run build:bin -- --arch ${a}\`) beside ${self}, or bundle with --no-importer`,
      ],
    },
  )
}

/** The package root: this file is dist/lib/bundle/write/seed-tools.js (or src/lib/bundle/write/seed-tools.ts under bin/dev.js). */
function packageRoot(): string {
  return fileURLToPath(new URL('../../../../', import.meta.url))
}

async function fromClone(a: string, progress: Progress): Promise<string> {
  const root = packageRoot()
  const target = join(root, 'dist', 'bin', executableName(a))
  if (await isFile(target)) return target
  const script = join(root, 'scripts', 'build-bin.ts')
  const cannot = (why: string) =>
    new FailureError(`no standalone executable for linux/${a} at ${target}, and it cannot be built here: ${why}`, {
      suggestions: [
        `run \`npm run build:bin -- --arch ${a}\` in a clone of airlock (after npm ci), or bundle with --no-importer`,
      ],
    })
  if (!(await isFile(script))) throw cannot(`${script} is not there (airlock was installed without its sources)`)
  const release = await waitForLock(join(root, 'dist', 'bin', '.build.lock'))
  try {
    // Another airlock may have built it while this one waited.
    if (await isFile(target)) return target
    const task = progress.task(`build ${executableName(a)} (npm run build:bin)`)
    try {
      await run(process.execPath, ['--import', 'tsx', script, '--arch', a], root)
    } catch (err) {
      task.fail((err as Error).message.split('\n')[0])
      throw cannot((err as Error).message)
    }
    if (!(await isFile(target))) throw cannot(`the build did not write ${target}`)
    task.done()
    return target
  } finally {
    await release()
  }
}

/** The build lock, waited for: two bundles started at once build the executable once. */
async function waitForLock(path: string): Promise<() => Promise<void>> {
  await mkdir(dirname(path), {recursive: true})
  const deadline = Date.now() + 10 * 60_000
  for (;;) {
    try {
      return await acquirePidLock(path, 'the standalone executable build')
    } catch (err) {
      if (!isAirlockError(err) || Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 500))
    }
  }
}

function run(cmd: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {cwd, stdio: ['ignore', 'ignore', 'pipe']})
    let err = ''
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000)
    })
    child.on('error', reject)
    child.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(
            new Error(
              `the build exited ${code}: ${err.replace(/^warning: Can't find string offset.*\n/gm, '').trim()}`,
            ),
          ),
    )
  })
}

import {spawn} from 'node:child_process'
import {stat} from 'node:fs/promises'
import {arch} from 'node:os'
import {join} from 'node:path'

import {repoRoot} from './cli.js'

/** This machine's arch as the standalone executables name it. */
export const ownArch = arch() === 'arm64' ? 'arm64' : 'amd64'

/** dist/bin/airlock-linux-<arch>, as `npm run build:bin` writes it. */
export const executablePath = join(repoRoot, 'dist', 'bin', `airlock-linux-${ownArch}`)

/**
 * The standalone executable for this machine, built once when dist/bin lacks
 * it (`npm run build` empties dist/, so every test run after a build makes
 * it once). A failed build fails the tests that need it: nothing is skipped.
 */
export async function ensureExecutable(): Promise<string> {
  if ((await stat(executablePath).catch(() => undefined))?.isFile()) return executablePath
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'scripts', 'build-bin.ts'), '--arch', ownArch],
      {cwd: repoRoot, stdio: ['ignore', 'inherit', 'pipe']},
    )
    let err = ''
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-8000)))
    child.on('error', reject)
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`npm run build:bin failed (exit ${code}):\n${err}`)),
    )
  })
  return executablePath
}

import {readFile, rm, writeFile} from 'node:fs/promises'
import {hostname} from 'node:os'

import {FailureError} from '../errors.js'

/** Whether a process with this pid runs on this host (EPERM: it does, as another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Take an exclusive lock file holding our pid and host, for a store, a
 * bundle folder or a build (not the bundle's lock, `bundle.json`: see
 * ../bundle-json.ts). A lock left by a process that is gone (same host, pid not
 * running) is taken over; a live one is a clear error. Returns the release
 * function.
 */
export async function acquirePidLock(path: string, what: string): Promise<() => Promise<void>> {
  const me = `${process.pid} ${hostname()}\n`
  for (let tries = 0; tries < 3; tries++) {
    try {
      await writeFile(path, me, {flag: 'wx'})
      let released = false
      return async () => {
        if (released) return
        released = true
        await rm(path, {force: true})
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const [pidText, host] = (await readFile(path, 'utf8').catch(() => '')).trim().split(' ')
      const pid = Number(pidText)
      if (Number.isInteger(pid) && pid > 0 && (host !== hostname() || alive(pid))) {
        throw new FailureError(`${what} is in use by another airlock process (pid ${pid} on ${host})`, {
          suggestions: [`wait for it to finish; if it is gone, remove ${path}`],
        })
      }
      await rm(path, {force: true})
    }
  }
  throw new FailureError(`could not take the lock ${path}`)
}

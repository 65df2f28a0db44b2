import {type ChildProcess} from 'node:child_process'
import {rmSync} from 'node:fs'
import {rm} from 'node:fs/promises'

// One registry of what the harness leaves behind (server processes, temp dirs),
// torn down synchronously when the test process exits for any reason, so a
// failing or killed test never leaves a registry or a Ceph daemon running.
const children = new Set<ChildProcess>()
const dirs = new Set<string>()
let installed = false

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    // Children are spawned detached (their own process group) so workers die with them.
    process.kill(-child.pid, signal)
  } catch {
    try {
      child.kill(signal)
    } catch {
      // already gone
    }
  }
}

function cleanupNow(): void {
  for (const c of children) killGroup(c, 'SIGKILL')
  children.clear()
  for (const d of dirs) {
    try {
      rmSync(d, {recursive: true, force: true})
    } catch {
      // best effort at exit
    }
  }
  dirs.clear()
}

function install(): void {
  if (installed) return
  installed = true
  process.on('exit', cleanupNow)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      cleanupNow()
      process.removeListener(sig, onSignal)
      // Die of the same signal, as without this handler.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
    }
    process.on(sig, onSignal)
  }
}

/** Kill this child's process group when the test process exits. */
export function trackChild(child: ChildProcess): void {
  install()
  children.add(child)
  child.once('exit', () => children.delete(child))
}

/** Remove this directory when the test process exits. */
export function trackDir(dir: string): void {
  install()
  dirs.add(dir)
}

/**
 * Kill what a test file left running and remove its temp folders, awaited:
 * run after each file (test/helpers/after-file.ts), as a worker may be ended
 * without an exit event.
 */
export async function cleanupAfterFile(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c, 2000)))
  await Promise.all([...dirs].map((d) => rm(d, {recursive: true, force: true, maxRetries: 3})))
  dirs.clear()
}

/** TERM the child's group, KILL it after timeoutMs, resolve once it is gone. */
export async function stopChild(child: ChildProcess, timeoutMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    children.delete(child)
    return
  }
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  killGroup(child, 'SIGTERM')
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs)
  await gone
  clearTimeout(timer)
  // Workers of the group (nginx) may outlive the leader by a moment.
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    // the whole group is gone
  }
  children.delete(child)
}

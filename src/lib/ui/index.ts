import {PlainProgress} from './plain-renderer.js'
import {type Progress, silentProgress} from './progress.js'
import {TtyProgress} from './tty-renderer.js'

export type {Progress, TaskHandle} from './progress.js'
export {CountingProgress, RecordingProgress, silentProgress} from './progress.js'

/** Picks the renderer: nothing with --quiet, a live list on a TTY, plain lines in CI and pipes. */
export function createProgress(opts: {quiet: boolean; heading: string}): Progress {
  if (opts.quiet) return silentProgress
  const ci = Boolean(process.env.CI) && process.env.CI !== 'false'
  if (process.stderr.isTTY && !ci) return new TtyProgress(opts.heading)
  return new PlainProgress()
}

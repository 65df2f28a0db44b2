import {failureLine, formatBytes, formatDuration} from './format.js'
import type {Progress, TaskHandle} from './progress.js'

/**
 * Line-per-event progress for CI logs and pipes: a line when a task ends,
 * never a line per chunk.
 */
export class PlainProgress implements Progress {
  constructor(private readonly write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)) {}

  task(title: string, total?: number): TaskHandle {
    const started = Date.now()
    let bytes = 0
    let size = total
    let finished = false
    return {
      advance: (n) => {
        bytes += n
      },
      setTotal: (t) => {
        size = t
      },
      done: (summary) => {
        if (finished) return
        finished = true
        const parts = [
          summary ?? (size === undefined ? '' : formatBytes(bytes || size)),
          formatDuration(Date.now() - started),
        ]
        this.write(`ok   ${title} (${parts.filter(Boolean).join(', ')})`)
      },
      fail: (message) => {
        if (finished) return
        finished = true
        this.write(`FAIL ${failureLine(title, message)}`)
      },
    }
  }

  info(message: string): void {
    this.write(message)
  }

  warn(message: string): void {
    this.write(`warning: ${message}`)
  }

  async close(): Promise<void> {}
}

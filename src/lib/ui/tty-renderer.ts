import {Listr, ListrLogger, ProcessOutput, type ListrTaskWrapper} from 'listr2'

import {formatBytes, formatRate} from './format.js'
import type {Progress, TaskHandle} from './progress.js'

interface Item {
  title: string
  total?: number
  bytes: number
  started: number
  state: 'running' | 'done' | 'failed'
  note?: string
}

const MAX_ACTIVE_LINES = 12
const MAX_FINISHED_LINES = 6

/**
 * A live task list on stderr: one listr2 task whose title is the overall
 * line (bytes done of total, rate) and whose output is one line per task in
 * flight, redrawn a few times a second.
 */
export class TtyProgress implements Progress {
  private readonly items: Item[] = []
  private wrapper?: ListrTaskWrapper<unknown, any, any>
  private finishRoot?: () => void
  private readonly running: Promise<unknown>
  private readonly timer: NodeJS.Timeout
  private readonly started = Date.now()
  private readonly messages: string[] = []

  constructor(private readonly heading: string) {
    const processOutput = new ProcessOutput(process.stderr, process.stderr)
    const list = new Listr(
      [
        {
          title: heading,
          task: (_ctx, task) =>
            new Promise<void>((resolve) => {
              this.wrapper = task
              this.finishRoot = resolve
            }),
          // Keep the last frame (finished tasks, warnings) on screen at the end.
          rendererOptions: {persistentOutput: true, outputBar: Infinity},
        },
      ],
      {
        renderer: 'default',
        exitOnError: false,
        registerSignalListeners: false,
        rendererOptions: {
          logger: new ListrLogger({processOutput}),
          collapseSubtasks: false,
          formatOutput: 'truncate',
          removeEmptyLines: true,
        },
      },
    )
    this.running = list.run().catch(() => {})
    this.timer = setInterval(() => this.render(), 150)
    this.timer.unref()
  }

  task(title: string, total?: number): TaskHandle {
    const item: Item = {title, total, bytes: 0, started: Date.now(), state: 'running'}
    this.items.push(item)
    return {
      advance: (n) => {
        item.bytes += n
      },
      setTotal: (t) => {
        item.total = t
      },
      done: (summary) => {
        item.state = 'done'
        item.note = summary
      },
      fail: (message) => {
        item.state = 'failed'
        item.note = message
      },
    }
  }

  info(message: string): void {
    this.messages.push(message)
  }

  warn(message: string): void {
    this.messages.push(`warning: ${message}`)
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    this.render()
    this.finishRoot?.()
    await this.running
  }

  private render(): void {
    if (!this.wrapper) return
    let done = 0
    let total = 0
    let finished = 0
    for (const it of this.items) {
      done += it.bytes
      total += it.total ?? it.bytes
      if (it.state !== 'running') finished++
    }
    const elapsed = Date.now() - this.started
    this.wrapper.title =
      `${this.heading}: ${finished}/${this.items.length} done, ` +
      `${formatBytes(done)}${total > done ? ` of ${formatBytes(total)}` : ''}, ${formatRate(done, elapsed)}`
    const lines: string[] = [...this.messages.slice(-4)]
    const ended = this.items.filter((i) => i.state !== 'running').slice(-MAX_FINISHED_LINES)
    for (const it of ended) lines.push(`${it.state === 'done' ? '✔' : '✖'} ${it.title}${it.note ? `  ${it.note}` : ''}`)
    const active = this.items.filter((i) => i.state === 'running')
    for (const it of active.slice(0, MAX_ACTIVE_LINES)) {
      const size = it.total ? `${formatBytes(it.bytes)}/${formatBytes(it.total)}` : formatBytes(it.bytes)
      lines.push(`… ${it.title}  ${size}  ${formatRate(it.bytes, Date.now() - it.started)}`)
    }
    if (active.length > MAX_ACTIVE_LINES) lines.push(`  and ${active.length - MAX_ACTIVE_LINES} more`)
    this.wrapper.output = lines.join('\n')
  }
}

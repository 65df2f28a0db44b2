import {
  DefaultRenderer,
  Listr,
  ListrDefaultRendererLogLevels,
  ListrLogger,
  ProcessOutput,
  ProcessOutputStream,
} from 'listr2'

import {failureLine, formatBytes, formatDuration, formatRate} from './format.js'
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
/** Warnings, notes and failures shown in the live frame (all of them are kept below it at the end). */
const MAX_MESSAGE_LINES = 4
/** listr2's indentation per level, which the renderer below cuts lines against. */
const INDENT = 2

const SHOW_CURSOR = '\u001B[?25h'

/** What the renderer writes to: a terminal, or a stand-in in tests. */
export interface TerminalStream {
  write(s: string): boolean
  columns?: number
  rows?: number
}

interface Size {
  columns: number
  rows: number
}

/**
 * listr2's default renderer, with three differences:
 * - it runs whatever stdout is: createProgress chose the live view because
 *   stderr, where it draws, is a terminal (listr2 would look at stdout and
 *   fall back to its line renderer when stdout is piped);
 * - before each frame (its spinner's tick, 10 a second) it asks for the
 *   task's title and output (`refresh`): one frame per tick, however many
 *   bytes moved, instead of one per change;
 * - it cuts lines to the width of the terminal it draws on. listr2 cuts to
 *   `process.stdout.columns`, which is 0 on a terminal that reports no size
 *   (every line would be cut to nothing and the frame left empty) and not
 *   this terminal's width when stdout is piped.
 */
function liveRenderer(size: () => Size, refresh: () => void): typeof DefaultRenderer {
  return class LiveRenderer extends DefaultRenderer {
    static override nonTTY = true
    private refreshing = false

    override update(): void {
      // Setting the title and output asks for a frame each: this one draws them.
      if (this.refreshing) return
      this.refreshing = true
      try {
        refresh()
      } finally {
        this.refreshing = false
      }
      super.update()
    }

    protected override format(message: string, icon: string, level: number): string[] {
      const max = size().columns - level * INDENT - 2
      return message
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line, i) => {
          const head = i === 0 && icon ? `${icon} ` : ''
          // Lines after an icon's line line up with its text.
          const hang = i > 0 && icon ? INDENT : 0
          return `${' '.repeat(level * INDENT + hang)}${head}${fit(line.trimEnd(), max - hang - (head ? 2 : 0))}`
        })
    }
  }
}

/**
 * listr2's process output (it holds what else is written to the terminal
 * while the frame is live, and writes it below the last frame), drawing on
 * a terminal that reports no size as if it were 80x24: log-update, which
 * draws listr2's frames, would cut a frame to 0 rows.
 */
class SizedOutput extends ProcessOutput {
  constructor(
    private readonly size: () => Size,
    stream: NodeJS.WriteStream,
  ) {
    super(stream, stream)
  }

  override get stdout(): NodeJS.WriteStream {
    return Object.assign(super.stdout, this.size())
  }
}

/** Cut a line to `max` characters, so it never wraps. */
function fit(line: string, max: number): string {
  const chars = [...line]
  return chars.length <= max ? line : `${chars.slice(0, Math.max(0, max - 1)).join('')}…`
}

type Outcome = 'done' | 'failed' | 'stopped'

/**
 * A live task list on a terminal (stderr), drawn by listr2's default
 * renderer: one listr2 task whose title is the overall line (tasks done,
 * bytes, rate) and whose output is the last few messages, the last few
 * finished tasks and one line per task in flight, redrawn in place at each
 * tick of listr2's spinner (which also tells a long step without bytes, such
 * as building the executable, from a stuck one). Every line is cut to the
 * width and the frame to the height; a terminal that reports no size is
 * taken as 80x24.
 *
 * Lines that must stay are held while the frame is live and written below
 * the last frame when it closes, byte for byte: warnings, notes and failures
 * (which the frame also shows as they happen), whatever else writes to
 * stderr (listr2's process-output buffering), and result lines written to
 * stdout when stdout is the same terminal (listr2's ProcessOutputStream,
 * released here: listr2's own release trims lines). The cursor is hidden
 * while the frame is live and shown again on close and on any exit.
 *
 * A run may have thousands of tasks (one per image or file): the view keeps
 * only the running ones and the last few finished, and sums the rest into
 * counters, so its memory and each frame's cost stay flat in the count.
 * Nothing is drawn until the first task starts.
 */
export class TtyProgress implements Progress {
  /** Running tasks, in the order they started. */
  private readonly running = new Set<Item>()
  /** The last few finished, oldest first (at most MAX_FINISHED_LINES). */
  private readonly recent: Item[] = []
  /** The last few messages, for the frame. */
  private readonly messages: string[] = []
  /** Tasks started, ended and failed; bytes done and expected of the ended ones. */
  private count = 0
  private finished = 0
  private failed = 0
  private endedBytes = 0
  private endedTotal = 0
  private readonly started = Date.now()
  private live?: {run: Promise<void>; end: (outcome: Outcome) => void; stdout?: ProcessOutputStream}
  /** The listr2 task, once it runs: its title and output are the frame. */
  private wrapper?: {title: string; output: string}
  private closing?: Promise<void>
  private readonly onExit = (): void => {
    this.stream.write(SHOW_CURSOR)
  }

  constructor(
    private readonly heading: string,
    private readonly stream: TerminalStream = process.stderr,
    private readonly stdout: NodeJS.WriteStream | undefined = process.stdout,
  ) {}

  task(title: string, total?: number): TaskHandle {
    const item: Item = {title, total, bytes: 0, started: Date.now(), state: 'running'}
    this.running.add(item)
    this.count++
    if (!this.live && !this.closing) this.start()
    return {
      advance: (n) => {
        item.bytes += n
        if (item.state !== 'running') this.endedBytes += n
      },
      setTotal: (t) => {
        if (item.state !== 'running') this.endedTotal += t - (item.total ?? item.bytes)
        item.total = t
      },
      done: (summary) => {
        if (item.state !== 'running') return
        item.state = 'done'
        item.note = summary
        this.end(item)
        this.recent.push(item)
        if (this.recent.length > MAX_FINISHED_LINES) this.recent.shift()
      },
      fail: (message) => {
        if (item.state !== 'running') return
        item.state = 'failed'
        item.note = message
        this.end(item)
        this.failed++
        this.keep(`✖ ${failureLine(item.title, message)}`)
      },
    }
  }

  /** Tasks the view holds (running ones and the last few finished): bounded, however many ran. */
  get retained(): number {
    return this.running.size + this.recent.length
  }

  info(message: string): void {
    this.keep(message)
  }

  warn(message: string): void {
    this.keep(`warning: ${message}`)
  }

  close(): Promise<void> {
    this.closing ??= this.stop()
    return this.closing
  }

  private async stop(): Promise<void> {
    const live = this.live
    if (!live) return
    live.end(this.failed > 0 ? 'failed' : this.finished < this.count ? 'stopped' : 'done')
    await live.run
    for (const e of live.stdout?.release() ?? []) this.stdout?.write(e.entry)
    process.removeListener('exit', this.onExit)
  }

  private size(): Size {
    // 0 or undefined: a terminal that reports no size (some serial consoles, a bare pty).
    return {
      columns: this.stream.columns || Number(process.env.COLUMNS) || 80,
      rows: this.stream.rows || Number(process.env.LINES) || 24,
    }
  }

  private start(): void {
    const size = (): Size => this.size()
    let end!: (outcome: Outcome) => void
    const ended = new Promise<Outcome>((resolve) => (end = resolve))
    const list = new Listr(
      {
        title: this.heading,
        task: async (_ctx, task) => {
          this.wrapper = task
          const outcome = await ended
          // The last frame: the summary line alone.
          task.output = ''
          const line = this.summary()
          if (outcome === 'failed') throw new Error(line)
          if (outcome === 'stopped') task.skip(line)
          else task.title = line
        },
      },
      {
        renderer: liveRenderer(size, () => this.render()),
        exitOnError: false,
        registerSignalListeners: false,
        rendererOptions: {
          logger: new ListrLogger({processOutput: new SizedOutput(size, this.stream as NodeJS.WriteStream)}),
          formatOutput: 'truncate',
          clearOutput: false,
          icon: {
            // Output lines carry their own marks; a run stopped early (Ctrl-C, an error) ends on ◼.
            [ListrDefaultRendererLogLevels.OUTPUT]: '',
            [ListrDefaultRendererLogLevels.SKIPPED_WITH_COLLAPSE]: '◼',
          },
        },
      },
    )
    // Result lines on stdout wait below the frame when both are the same terminal.
    const stdout = this.stdout?.isTTY ? new ProcessOutputStream(this.stdout) : undefined
    stdout?.hijack()
    process.once('exit', this.onExit)
    // A drawing failure must not fail the command: the work goes on without the frame.
    const run = list.run().then(
      () => undefined,
      () => undefined,
    )
    this.live = {run, end, stdout}
  }

  private end(item: Item): void {
    this.running.delete(item)
    this.finished++
    this.endedBytes += item.bytes
    this.endedTotal += item.total ?? item.bytes
  }

  /** A line that stays: shown in the frame now, written below it at the end (or at once when nothing is live). */
  private keep(line: string): void {
    if (this.live && !this.closing) {
      this.messages.push(line)
      if (this.messages.length > MAX_MESSAGE_LINES) this.messages.shift()
    }
    // While the frame is live, listr2 holds what is written to the terminal and writes it below the last frame.
    this.stream.write(`${line}\n`)
  }

  private render(): void {
    const task = this.wrapper
    if (!task || this.closing) return
    // The title line, a blank margin and the line the cursor waits on: the rest is for the output.
    task.output = this.frame()
      .slice(0, Math.max(0, this.size().rows - 3))
      .join('\n')
    task.title = this.summary(true)
  }

  private summary(live = false): string {
    let done = this.endedBytes
    let total = this.endedTotal
    for (const it of this.running) {
      done += it.bytes
      total += it.total ?? it.bytes
    }
    const {finished, failed} = this
    const elapsed = Date.now() - this.started
    const bytes =
      done > 0 || total > 0 ? `, ${formatBytes(done)}${live && total > done ? ` of ${formatBytes(total)}` : ''}` : ''
    const rate = done > 0 ? `, ${formatRate(done, elapsed)}` : ''
    return `${this.heading}: ${finished}/${this.count} done${failed > 0 ? `, ${failed} failed` : ''}${bytes}${rate}${live ? '' : ` in ${formatDuration(elapsed)}`}`
  }

  private frame(): string[] {
    const lines = [...this.messages]
    for (const it of this.recent) lines.push(`✔ ${it.title}${it.note ? `  ${it.note}` : ''}`)
    let shown = 0
    for (const it of this.running) {
      if (shown++ === MAX_ACTIVE_LINES) break
      const size = it.total ? `${formatBytes(it.bytes)}/${formatBytes(it.total)}` : formatBytes(it.bytes)
      lines.push(`… ${it.title}  ${size}  ${formatRate(it.bytes, Date.now() - it.started)}`)
    }
    if (this.running.size > MAX_ACTIVE_LINES) lines.push(`  and ${this.running.size - MAX_ACTIVE_LINES} more`)
    return lines
  }
}

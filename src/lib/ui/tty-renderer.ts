import {formatBytes, formatDuration, formatRate} from './format.js'
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
const FRAME_MS = 120
const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']

const ESC = '\u001B['
const HIDE_CURSOR = `${ESC}?25l`
const SHOW_CURSOR = `${ESC}?25h`

/** What the renderer writes to: a terminal, or a stand-in in tests. */
export interface TerminalStream {
  write(s: string): boolean
  columns?: number
  rows?: number
}

/**
 * A live task list on a terminal (stderr): one region at the bottom,
 * redrawn in place a few times a second (cursor up over the last frame,
 * clear to the end of the screen, draw). Every line is cut to the width
 * so that none wraps, and the frame is cut to the height: a wrapped or
 * scrolled-off line would make the cursor-up miss and frames pile up. A
 * terminal that reports no size is taken as 80x24.
 *
 * Lines that must stay (warnings, failures, result lines written to stdout
 * on the same terminal) are written above the region: the region is
 * erased, the line written, and the region drawn again below it. The
 * cursor is hidden while the region is live and shown again on close and
 * on any exit, Ctrl-C included.
 *
 * A run may have thousands of tasks (one per image or file): the view keeps
 * only the running ones and the last few finished, and sums the rest into
 * counters, so its memory and each frame's cost stay flat in the count.
 */
export class TtyProgress implements Progress {
  /** Running tasks, in the order they started. */
  private readonly running = new Set<Item>()
  /** The last few finished, oldest first (at most MAX_FINISHED_LINES). */
  private readonly recent: Item[] = []
  /** Tasks started, ended and failed; bytes done and expected of the ended ones. */
  private count = 0
  private finished = 0
  private failed = 0
  private endedBytes = 0
  private endedTotal = 0
  private readonly started = Date.now()
  private readonly timer: NodeJS.Timeout
  /** Lines of the frame now on screen (0: none drawn). */
  private drawn = 0
  private tick = 0
  private closed = false
  private readonly restoreStdout?: () => void
  private readonly onExit = (): void => {
    this.stream.write(SHOW_CURSOR)
  }

  constructor(
    private readonly heading: string,
    private readonly stream: TerminalStream = process.stderr,
    stdout: NodeJS.WriteStream | undefined = process.stdout,
  ) {
    this.stream.write(HIDE_CURSOR)
    process.once('exit', this.onExit)
    // Result lines on stdout go above the region when both are the same terminal.
    if (stdout?.isTTY) this.restoreStdout = this.interceptWrites(stdout)
    this.timer = setInterval(() => this.render(), FRAME_MS)
    this.timer.unref()
  }

  task(title: string, total?: number): TaskHandle {
    const item: Item = {title, total, bytes: 0, started: Date.now(), state: 'running'}
    this.running.add(item)
    this.count++
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
        // A failure stays on screen, above the live region.
        this.above(`✖ ${item.title}: ${message}`)
      },
    }
  }

  /** Tasks the view holds (running ones and the last few finished): bounded, however many ran. */
  get retained(): number {
    return this.running.size + this.recent.length
  }

  private end(item: Item): void {
    this.running.delete(item)
    this.finished++
    this.endedBytes += item.bytes
    this.endedTotal += item.total ?? item.bytes
  }

  info(message: string): void {
    this.above(message)
  }

  warn(message: string): void {
    this.above(`warning: ${message}`)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    this.erase()
    // The last word: one summary line, when there was anything to count.
    if (this.count > 0) this.stream.write(`${this.fit(this.summary(false))}\n`)
    this.stream.write(SHOW_CURSOR)
    process.removeListener('exit', this.onExit)
    this.restoreStdout?.()
  }

  /** Write a line that stays, above the live region. */
  private above(line: string): void {
    if (this.closed) return void this.stream.write(`${line}\n`)
    this.erase()
    this.stream.write(`${line}\n`)
    this.render()
  }

  private size(): {columns: number; rows: number} {
    // 0 or undefined: a terminal that reports no size (some serial consoles, a bare pty).
    const columns = this.stream.columns || Number(process.env.COLUMNS) || 80
    const rows = this.stream.rows || Number(process.env.LINES) || 24
    return {columns, rows}
  }

  /** Cut a line to the terminal's width, so it never wraps. */
  private fit(line: string): string {
    const max = this.size().columns - 1
    const chars = [...line]
    return chars.length <= max ? line : `${chars.slice(0, Math.max(0, max - 1)).join('')}…`
  }

  private erase(): void {
    if (this.drawn === 0) return
    this.stream.write(`\r${ESC}${this.drawn}A${ESC}J`)
    this.drawn = 0
  }

  private render(): void {
    if (this.closed || this.count === 0) return
    const rows = this.size().rows
    const lines = this.frame().slice(0, Math.max(1, rows - 2)).map((l) => this.fit(l))
    this.erase()
    this.stream.write(`${lines.join('\n')}\n`)
    this.drawn = lines.length
  }

  private summary(live: boolean): string {
    let done = this.endedBytes
    let total = this.endedTotal
    for (const it of this.running) {
      done += it.bytes
      total += it.total ?? it.bytes
    }
    const {finished, failed} = this
    const elapsed = Date.now() - this.started
    const mark = live ? SPINNER[this.tick++ % SPINNER.length] : failed > 0 ? '✖' : finished < this.count ? '◼' : '✔'
    const bytes = done > 0 || total > 0 ? `, ${formatBytes(done)}${live && total > done ? ` of ${formatBytes(total)}` : ''}` : ''
    const rate = done > 0 ? `, ${formatRate(done, elapsed)}` : ''
    return `${mark} ${this.heading}: ${finished}/${this.count} done${failed > 0 ? `, ${failed} failed` : ''}${bytes}${rate}${live ? '' : ` in ${formatDuration(elapsed)}`}`
  }

  private frame(): string[] {
    const lines = [this.summary(true)]
    for (const it of this.recent) lines.push(`  ✔ ${it.title}${it.note ? `  ${it.note}` : ''}`)
    let shown = 0
    for (const it of this.running) {
      if (shown++ === MAX_ACTIVE_LINES) break
      const size = it.total ? `${formatBytes(it.bytes)}/${formatBytes(it.total)}` : formatBytes(it.bytes)
      lines.push(`  … ${it.title}  ${size}  ${formatRate(it.bytes, Date.now() - it.started)}`)
    }
    if (this.running.size > MAX_ACTIVE_LINES) lines.push(`    and ${this.running.size - MAX_ACTIVE_LINES} more`)
    return lines
  }

  /** Route writes to `out` through the region: erase it, write, draw again at the next frame. */
  private interceptWrites(out: NodeJS.WriteStream): () => void {
    const original = out.write
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the replacement write keeps the stream's own `this`
    const self = this
    out.write = function (this: NodeJS.WriteStream, ...args: Parameters<NodeJS.WriteStream['write']>) {
      self.erase()
      return original.apply(this, args)
    } as NodeJS.WriteStream['write']
    return () => {
      out.write = original
    }
  }
}

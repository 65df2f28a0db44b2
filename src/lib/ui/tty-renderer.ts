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
 */
export class TtyProgress implements Progress {
  private readonly items: Item[] = []
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
    this.items.push(item)
    return {
      advance: (n) => {
        item.bytes += n
      },
      setTotal: (t) => {
        item.total = t
      },
      done: (summary) => {
        if (item.state !== 'running') return
        item.state = 'done'
        item.note = summary
      },
      fail: (message) => {
        if (item.state !== 'running') return
        item.state = 'failed'
        item.note = message
        // A failure stays on screen, above the live region.
        this.above(`✖ ${item.title}: ${message}`)
      },
    }
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
    if (this.items.length > 0) this.stream.write(`${this.fit(this.summary(false))}\n`)
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
    if (this.closed || this.items.length === 0) return
    const rows = this.size().rows
    const lines = this.frame().slice(0, Math.max(1, rows - 2)).map((l) => this.fit(l))
    this.erase()
    this.stream.write(`${lines.join('\n')}\n`)
    this.drawn = lines.length
  }

  private summary(live: boolean): string {
    let done = 0
    let total = 0
    let finished = 0
    let failed = 0
    for (const it of this.items) {
      done += it.bytes
      total += it.total ?? it.bytes
      if (it.state !== 'running') finished++
      if (it.state === 'failed') failed++
    }
    const elapsed = Date.now() - this.started
    const mark = live ? SPINNER[this.tick++ % SPINNER.length] : failed > 0 ? '✖' : finished < this.items.length ? '◼' : '✔'
    const bytes = done > 0 || total > 0 ? `, ${formatBytes(done)}${live && total > done ? ` of ${formatBytes(total)}` : ''}` : ''
    const rate = done > 0 ? `, ${formatRate(done, elapsed)}` : ''
    return `${mark} ${this.heading}: ${finished}/${this.items.length} done${failed > 0 ? `, ${failed} failed` : ''}${bytes}${rate}${live ? '' : ` in ${formatDuration(elapsed)}`}`
  }

  private frame(): string[] {
    const lines = [this.summary(true)]
    const ended = this.items.filter((i) => i.state === 'done').slice(-MAX_FINISHED_LINES)
    for (const it of ended) lines.push(`  ✔ ${it.title}${it.note ? `  ${it.note}` : ''}`)
    const active = this.items.filter((i) => i.state === 'running')
    for (const it of active.slice(0, MAX_ACTIVE_LINES)) {
      const size = it.total ? `${formatBytes(it.bytes)}/${formatBytes(it.total)}` : formatBytes(it.bytes)
      lines.push(`  … ${it.title}  ${size}  ${formatRate(it.bytes, Date.now() - it.started)}`)
    }
    if (active.length > MAX_ACTIVE_LINES) lines.push(`    and ${active.length - MAX_ACTIVE_LINES} more`)
    return lines
  }

  /** Route writes to `out` through the region: erase it, write, draw again at the next frame. */
  private interceptWrites(out: NodeJS.WriteStream): () => void {
    const original = out.write
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

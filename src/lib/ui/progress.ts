/**
 * What library code knows about progress: tasks with optional byte counts,
 * and messages. How they look (a live list, plain lines, nothing) is the
 * renderer's business; library code never prints.
 */
export interface TaskHandle {
  /** Count bytes done for this task. */
  advance(bytes: number): void
  /** Set or correct the byte total once known. */
  setTotal(total: number): void
  /** The task finished; `summary` is shown beside its title. */
  done(summary?: string): void
  /** The task failed; the error itself is reported by the command. */
  fail(message: string): void
}

export interface Progress {
  /** Start a unit of work that a user would want to see, e.g. one image. */
  task(title: string, total?: number): TaskHandle
  info(message: string): void
  warn(message: string): void
  /** Stop rendering; pending tasks are left as they are. */
  close(): Promise<void>
}

const noopTask: TaskHandle = {
  advance() {},
  setTotal() {},
  done() {},
  fail() {},
}

/** For --quiet and for tests. */
export const silentProgress: Progress = {
  task: () => noopTask,
  info() {},
  warn() {},
  async close() {},
}

/** Records everything, for tests that check what a user would be told. */
export class RecordingProgress implements Progress {
  readonly events: string[] = []

  task(title: string, total?: number): TaskHandle {
    this.events.push(`start ${title}${total === undefined ? '' : ` ${total}`}`)
    return {
      advance: () => {},
      setTotal: () => {},
      done: (summary) => this.events.push(`done ${title}${summary ? ` ${summary}` : ''}`),
      fail: (message) => this.events.push(`fail ${title} ${message}`),
    }
  }

  info(message: string): void {
    this.events.push(`info ${message}`)
  }

  warn(message: string): void {
    this.events.push(`warn ${message}`)
  }

  async close(): Promise<void> {}
}

/** Passes everything on to `inner` and counts tasks, so a command can say how far it got (on Ctrl-C). */
export class CountingProgress implements Progress {
  started = 0
  finished = 0
  failed = 0

  constructor(private readonly inner: Progress) {}

  task(title: string, total?: number): TaskHandle {
    this.started++
    const t = this.inner.task(title, total)
    let ended = false
    return {
      advance: (n) => t.advance(n),
      setTotal: (n) => t.setTotal(n),
      done: (summary) => {
        if (!ended) this.finished++
        ended = true
        t.done(summary)
      },
      fail: (message) => {
        if (!ended) this.failed++
        ended = true
        t.fail(message)
      },
    }
  }

  info(message: string): void {
    this.inner.info(message)
  }

  warn(message: string): void {
    this.inner.warn(message)
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}

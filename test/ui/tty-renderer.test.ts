import {describe, expect, it} from 'vitest'

import {formatBytes} from '../../src/lib/ui/format.js'
import {type TerminalStream, TtyProgress} from '../../src/lib/ui/tty-renderer.js'

/** A terminal stand-in that keeps what was written. */
function terminal(): TerminalStream & {text: () => string} {
  const out: string[] = []
  return {columns: 120, rows: 40, write: (s: string) => out.push(s) > 0, text: () => out.join('')}
}

describe('TtyProgress with thousands of tasks', () => {
  it('holds only the running tasks and the last few finished, and still counts every one', async () => {
    const term = terminal()
    const progress = new TtyProgress('pull', term, undefined)
    const n = 10_000
    for (let i = 0; i < n; i++) {
      const t = progress.task(`registry.example/app-${i}:1.0`, 100)
      t.advance(100)
      if (i % 1000 === 999) t.fail('boom')
      else t.done()
    }
    const running = [progress.task('still running', 50), progress.task('also running')]
    running[0].advance(20)
    // Ten thousand ended tasks are counters now, not rows: the view holds the two running and at most a screen's worth of finished ones.
    expect(progress.retained).toBeLessThanOrEqual(2 + 12)
    running[0].done()
    running[1].done()
    await progress.close()
    const last = term.text().trimEnd().split('\n').filter((l) => l.includes(' done')).at(-1)!
    expect(last).toContain(`${n + 2}/${n + 2} done, 10 failed`)
    // Every byte is in the total, the ended tasks' too.
    expect(last).toContain(`done, 10 failed, ${formatBytes(n * 100 + 20)}`)
  })
})

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
    const last = term
      .text()
      .trimEnd()
      .split('\n')
      .filter((l) => l.includes(' done'))
      .at(-1)!
    expect(last).toContain(`${n + 2}/${n + 2} done, 10 failed`)
    // Every byte is in the total, the ended tasks' too.
    expect(last).toContain(`done, 10 failed, ${formatBytes(n * 100 + 20)}`)
  })
})

/** Wait until `ok()` holds, checking every 20 ms, for at most 5 s. */
async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !ok(); i++) await new Promise((r) => setTimeout(r, 20))
  expect(ok()).toBe(true)
}

describe('TtyProgress on listr2', () => {
  it('shows a warning in the frame when it happens, and keeps it below the last frame', async () => {
    const term = terminal()
    const progress = new TtyProgress('pull', term, undefined)
    const t = progress.task('registry.example/app:1.0', 10)
    await until(() => term.text().includes('pull: 0/1 done'))
    progress.warn('the mirror is slow')
    // Drawn in a live frame, under the overall line, before anything ended.
    await until(() => /pull: 0\/1 done[^\n]*\n\s+warning: the mirror is slow/.test(term.text()))
    const live = term.text().length
    t.done()
    await progress.close()
    const end = term.text().slice(live)
    expect(end).toMatch(/✔ pull: 1\/1 done/)
    // After the last frame, the warning once more, to stay.
    expect(end.slice(end.indexOf('✔ pull: 1/1 done'))).toMatch(/\nwarning: the mirror is slow\n/)
  })

  it('holds result lines written to stdout on the same terminal and writes them unchanged after the last frame', async () => {
    const term = terminal()
    const out: string[] = []
    const stdout = {isTTY: true, write: (s: string) => out.push(s) > 0} as unknown as NodeJS.WriteStream
    const progress = new TtyProgress('pull', term, stdout)
    const t = progress.task('a')
    stdout.write('  an indented result line\n')
    stdout.write('\n')
    stdout.write('the last line\n')
    // Held while the frame is live: written then, a redraw would erase them.
    expect(out).toEqual([])
    t.done()
    await progress.close()
    // Byte for byte: indentation and blank lines kept (listr2's own release trims each line and drops blank ones).
    expect(out.join('')).toBe('  an indented result line\n\nthe last line\n')
    expect(term.text()).toMatch(/✔ pull: 1\/1 done/)
  })
})

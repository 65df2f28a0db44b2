import {describe, expect, it} from 'vitest'

import {Once} from '../src/lib/once.js'

describe('Once', () => {
  it('runs one function per key while it is in flight; later callers get its result', async () => {
    const once = new Once<string, number>()
    let runs = 0
    let release!: (n: number) => void
    const first = once.run('k', () => {
      runs++
      return new Promise<number>((r) => (release = r))
    })
    const second = once.run('k', async () => {
      runs++
      return 2
    })
    release(1)
    expect(await Promise.all([first, second])).toEqual([1, 1])
    expect(runs).toBe(1)
  })

  it('forgets a failure, so that the next call runs again', async () => {
    const once = new Once<string, number>()
    await expect(once.run('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom')
    expect(await once.run('k', async () => 7)).toBe(7)
  })

  it('with keep: false, shares only overlapping calls and holds no result after', async () => {
    const once = new Once<string, number>({keep: false})
    let runs = 0
    const run = () => once.run('k', async () => ++runs)
    expect(await Promise.all([run(), run()])).toEqual([1, 1])
    expect(await run()).toBe(2)
  })
})

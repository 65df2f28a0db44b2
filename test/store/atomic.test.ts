import {basename} from 'node:path'

import {describe, expect, it} from 'vitest'

import {parseTempName, tempNameBeside, tempStem} from '../../src/lib/store/atomic.js'

describe('temporary names', () => {
  it('reads back the target and pid of what tempNameBeside makes, and nothing else', () => {
    expect(parseTempName(basename(tempNameBeside('/x/y/kubeadm.sha256')))).toEqual({
      target: 'kubeadm.sha256',
      pid: process.pid,
    })
    expect(parseTempName('.kubeadm.airlock-12-0123abcd.tmp')).toEqual({target: 'kubeadm', pid: 12})
    for (const other of [
      'kubeadm',
      '.kubeadm.tmp',
      '.kubeadm.airlock-x-0123abcd.tmp',
      '.kubeadm.airlock-12-0123abc.tmp',
      'kubeadm.airlock-12-0123abcd.tmp',
    ]) {
      expect(parseTempName(other)).toBeUndefined()
    }
  })

  it('keeps a temporary name within NAME_MAX for any name that is one, shortened to whole characters and told apart by a hash', () => {
    expect(tempStem('kubeadm')).toBe('kubeadm')
    for (const name of ['n'.repeat(255), 'é'.repeat(127), `${'n'.repeat(200)}${'€'.repeat(18)}`]) {
      const tmp = basename(tempNameBeside(`/x/${name}`))
      expect(Buffer.byteLength(tmp), name.slice(0, 10)).toBeLessThanOrEqual(255)
      expect(parseTempName(tmp)).toEqual({target: tempStem(name), pid: process.pid})
      expect(tempStem(name)).not.toContain('\ufffd')
      expect(name.startsWith(tempStem(name).replace(/~[0-9a-f]{16}$/, ''))).toBe(true)
    }
    expect(tempStem('n'.repeat(255))).not.toBe(tempStem('n'.repeat(254)))
    // The longest name kept whole: a temporary name of exactly NAME_MAX with a pid of 10 digits.
    const kept = 'k'.repeat(222)
    expect(tempStem(kept)).toBe(kept)
    expect(tempStem(`${kept}k`)).not.toBe(`${kept}k`)
  })
})

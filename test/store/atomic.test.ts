import {basename} from 'node:path'
import {describe, expect, it} from 'vitest'

import {parseTempName, tempNameBeside} from '../../src/lib/store/atomic.js'

describe('temporary names', () => {
  it('reads back the target and pid of what tempNameBeside makes, and nothing else', () => {
    expect(parseTempName(basename(tempNameBeside('/x/y/kubeadm.sha256')))).toEqual({target: 'kubeadm.sha256', pid: process.pid})
    expect(parseTempName('.kubeadm.airlock-12-0123abcd.tmp')).toEqual({target: 'kubeadm', pid: 12})
    for (const other of ['kubeadm', '.kubeadm.tmp', '.kubeadm.airlock-x-0123abcd.tmp', '.kubeadm.airlock-12-0123abc.tmp', 'kubeadm.airlock-12-0123abcd.tmp']) {
      expect(parseTempName(other)).toBeUndefined()
    }
  })
})

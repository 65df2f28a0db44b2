import {Header} from 'tar/header'
import {Pax} from 'tar/pax'
import {describe, expect, it} from 'vitest'

import {encodeHeader, type TarEntryMeta} from '../../src/lib/tar/writer.js'

/** What node-tar encodes for the entry with a Header of its own: encodeHeader's one shared Header must give the same. */
function fresh(meta: TarEntryMeta): Buffer {
  const mtime = new Date(meta.mtime * 1000)
  const size = meta.type === 'file' ? meta.size : 0
  const block = Buffer.alloc(512)
  const needPax = new Header({
    path: meta.path,
    mode: meta.mode,
    uid: 0,
    gid: 0,
    size,
    mtime,
    type: meta.type === 'file' ? 'File' : 'Directory',
    uname: '',
    gname: '',
  }).encode(block, 0)
  return needPax ? Buffer.concat([new Pax({path: meta.path, size, mtime, uid: 0, gid: 0}).encode(), block]) : block
}

describe('encodeHeader', () => {
  it('encodes each entry as a Header of its own would, whatever came before it', () => {
    const long = `release/${'very-long-folder-name/'.repeat(12)}kubeadm`
    const entries: TarEntryMeta[] = [
      {path: long, type: 'file', size: 12345, mode: 0o755, mtime: 1700000000},
      {path: 'blobs/sha256/' + 'a'.repeat(64), type: 'file', size: 7, mode: 0o644, mtime: 1700000000},
      {path: 'blobs/', type: 'directory', size: 0, mode: 0o755, mtime: 0},
      {path: 'offline-files/dl.k8s.io/kubelet', type: 'file', size: 9 * 1024 ** 3, mode: 0o644, mtime: 0},
      {path: 'offline-files/dl.k8s.io/kubectl', type: 'file', size: 1, mode: 0o755, mtime: 1},
      {path: `${long}/`, type: 'directory', size: 0, mode: 0o755, mtime: 1},
      {path: 'x', type: 'file', size: 0, mode: 0o644, mtime: 1},
    ]
    for (const e of [...entries, ...entries.reverse()]) expect(encodeHeader(e).equals(fresh(e)), e.path).toBe(true)
  })
})

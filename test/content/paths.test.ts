import {describe, expect, it} from 'vitest'

import {checkEntryPath} from '../../src/lib/bundle/format/archive-entries.js'
import {parseBundleLock} from '../../src/lib/bundle/format/read-lock.js'
import {folderClashes, relativePathProblem} from '../../src/lib/content/paths.js'
import {checkRelativePath, MirrorPathError} from '../../src/lib/manifest/mirror-path.js'

const REFUSED: [string, RegExp][] = [
  ['', /empty/],
  ['/etc/passwd', /absolute/],
  ['a/../../etc/passwd', /goes up/],
  ['..', /goes up/],
  ['a//b', /empty or \. segment/],
  ['a/./b', /empty or \. segment/],
  ['a/', /empty or \. segment/],
  ['a/b\0c', /NUL/],
  ['a\\..\\b', /backslash/],
  [`a/${'x'.repeat(256)}`, /segment of 256 bytes/],
]

describe('relativePathProblem', () => {
  it('accepts a mirrored path', () => {
    expect(relativePathProblem('dl.k8s.io/release/v1.29.0/bin/linux/amd64/kubeadm')).toBeUndefined()
    expect(relativePathProblem('127.0.0.1:8081/a b/c..d/.hidden')).toBeUndefined()
    expect(relativePathProblem(`a/${'é'.repeat(127)}`)).toBeUndefined()
  })

  it.each(REFUSED)('refuses %j', (p, why) => {
    expect(relativePathProblem(p)).toMatch(why)
  })

  it('is the check a manifest path, a tar entry and a bundle.json path all get', () => {
    for (const [p] of REFUSED) {
      expect(() => checkRelativePath(p), p).toThrow(MirrorPathError)
      if (p !== '' && !p.endsWith('/'))
        expect(() => checkEntryPath(p.startsWith('/') ? p : `offline-files/${p}`, 'offline-files'), p).toThrow(
          /refused entry/,
        )
      const lock = {
        apiVersion: 'airlock/v1',
        name: 'x',
        images: [],
        files: [{kind: 'binary', url: 'https://h/x', path: p, size: 1, sha256: 'a'.repeat(64)}],
      }
      const err = (() => {
        try {
          parseBundleLock(JSON.stringify(lock), 'bundle.json')
        } catch (e) {
          return e as {details?: string[]}
        }
      })()
      expect(err?.details?.join('\n'), p).toMatch(/files\[0\]\.path/)
    }
  })
})

describe('folderClashes', () => {
  it('pairs each path with the nearest path above it, in any order; equal paths and shared name prefixes do not clash', () => {
    expect(folderClashes(['x/a/b/c', 'x/yz', 'x/a', 'x/y', 'x/a/b', 'x/y'])).toEqual([
      [2, 4],
      [4, 0],
    ])
    expect(folderClashes(['a', 'a.b/c', 'a-b', 'b'])).toEqual([])
    // A name that sorts between a folder and its files (`-` before `/`) does not hide them.
    expect(folderClashes(['a/b', 'a-b', 'a'])).toEqual([[2, 0]])
    expect(folderClashes([])).toEqual([])
  })
})

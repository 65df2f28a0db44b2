import {describe, expect, it} from 'vitest'

import {FailureError} from '../../src/lib/errors.js'
import {checksumFor, parseChecksumLines, urlFileName} from '../../src/lib/fetch/checksum.js'

const A = 'a'.repeat(64)
const B = 'b'.repeat(64)
const C = 'C'.repeat(64)

describe('parseChecksumLines', () => {
  it('reads text and binary mode markers, names with spaces, BSD tags and bare hashes', () => {
    const text = [
      `${A}  helm.tar.gz`,
      `${B} *bin/kubeadm`,
      `${C}  name with spaces.txt`,
      `SHA256 (x.iso) = ${A}`,
      '',
      '# comment',
      B,
    ].join('\n')
    expect(parseChecksumLines(text)).toEqual({
      lines: [
        {sha256: A, name: 'helm.tar.gz'},
        {sha256: B, name: 'bin/kubeadm'},
        {sha256: C.toLowerCase(), name: 'name with spaces.txt'},
        {sha256: A, name: 'x.iso'},
        {sha256: B},
      ],
      bad: [],
    })
  })

  it('handles CRLF and reports lines that are not checksums', () => {
    const r = parseChecksumLines(`${A}  a.bin\r\nnot a checksum\r\n`)
    expect(r.lines).toEqual([{sha256: A, name: 'a.bin'}])
    expect(r.bad).toEqual(['not a checksum'])
  })
})

describe('checksumFor', () => {
  it('uses the only line, named or not', () => {
    expect(checksumFor(`${A}\n`, 'kubeadm', 'k.sha256')).toBe(A)
    expect(checksumFor(`${A}  helm-v3.14.0-linux-amd64.tar.gz\n`, 'helm-v3.14.0-linux-amd64.tar.gz', 's')).toBe(A)
  })

  it('picks the line naming the file among many, exactly or by its last path part', () => {
    const text = `${A}  other.tar.gz\n${B} *tool.tar.gz\n${C}  tool.tar.gz.sig\n`
    expect(checksumFor(text, 'tool.tar.gz', 'SHA256SUMS')).toBe(B)
    expect(checksumFor(`${A}  ./dist/a.zip\n${B}  ./dist/b.zip\n`, 'b.zip', 'sums')).toBe(B)
  })

  it('prefers an exact name over a last-part match', () => {
    expect(checksumFor(`${A}  x/tool\n${B}  tool\n`, 'tool', 'sums')).toBe(B)
  })

  it('refuses a file with no line for the name, and says what it names', () => {
    const err = catchErr(() => checksumFor(`${A}  a.tgz\n${B}  b.tgz\n`, 'c.tgz', 'http://h/SHA256SUMS'))
    expect(err).toBeInstanceOf(FailureError)
    expect(err.message).toContain('http://h/SHA256SUMS')
    expect(err.message).toContain('c.tgz')
    expect((err as FailureError).details.join()).toContain('a.tgz, b.tgz')
  })

  it('refuses an empty file, an HTML page and conflicting lines, naming the checksum file', () => {
    expect(() => checksumFor('', 'a', 'http://h/empty.sha256')).toThrow(
      /http:\/\/h\/empty.sha256 has no sha256 line: it is empty/,
    )
    expect(() => checksumFor('<html><body>Not Found</body></html>', 'a', 'http://h/x.sha256')).toThrow(
      /x.sha256 has no sha256 line: its first line is "<html>/,
    )
    expect(() => checksumFor(`${A}  a\n${B}  a\n`, 'a', 'sums')).toThrow(/sums gives 2 different sha256 values for a/)
    expect(() => checksumFor('abc123  a\n', 'a', 'short')).toThrow(/short has no sha256 line/)
  })
})

describe('urlFileName', () => {
  it('is the last path segment, percent-decoded, without the query', () => {
    expect(urlFileName('https://get.helm.sh/helm-v3.14.0-linux-amd64.tar.gz?x=1')).toBe(
      'helm-v3.14.0-linux-amd64.tar.gz',
    )
    expect(urlFileName('https://h/a/my%20file.bin')).toBe('my file.bin')
  })
})

function catchErr(fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected an error')
}

import {describe, expect, it} from 'vitest'

import {parseManifest} from '../../src/lib/manifest/load.js'
import {isMetadataHost, manifestWarnings} from '../../src/lib/manifest/warnings.js'

const SHA = 'a'.repeat(64)

describe('manifestWarnings: link-local and cloud metadata hosts', () => {
  it('names each entry that points at one, with its line and field, and only those', () => {
    const m = parseManifest(
      Buffer.from(
        [
          'apiVersion: airlock/v1',
          'kind: Manifest',
          'metadata: {name: meta}',
          'spec:',
          '  images:',
          '    - 169.254.169.254:5000/team/app:1.0',
          '    - registry.k8s.io/pause:3.9',
          '  binaries:',
          `    - url: http://[fe80::1]/dl/tool`,
          `      sha256: ${SHA}`,
          `    - url: http://metadata.google.internal/computeMetadata/v1/token`,
          `      sha256: ${'b'.repeat(64)}`,
          `    - url: https://dl.example/tool`,
          `      sha256: ${'c'.repeat(64)}`,
          '',
        ].join('\n'),
      ),
      'm.yaml',
    )
    const w = manifestWarnings(m).filter((p) => /metadata address/.test(p.message))
    expect(w.map((p) => [p.line, p.path])).toEqual([
      [6, 'spec.images[0]'],
      [9, 'spec.binaries[0].url'],
      [11, 'spec.binaries[1].url'],
    ])
  })

  it('knows the address in its other spellings, and leaves ordinary hosts alone', () => {
    for (const h of [
      '169.254.169.254',
      'http://0xa9fea9fe/x',
      'http://169.254.43518/x',
      '169.254.1.1:80',
      'http://[fe80::abcd]:8080/',
      'METADATA.google.internal.',
    ])
      expect(isMetadataHost(h), h).toBe(true)
    for (const h of [
      '10.0.0.1',
      'http://169.255.0.1/',
      'registry.k8s.io',
      '127.0.0.1:5000',
      'http://[::1]:5000/',
      'http://[fec0::1]/',
    ])
      expect(isMetadataHost(h), h).toBe(false)
  })
})

import {describe, expect, it} from 'vitest'

import {isForeignLayer} from '../../src/lib/content/media-types.js'

const digest = `sha256:${'a'.repeat(64)}`

describe('isForeignLayer', () => {
  it('is a foreign or non-distributable layer that lives at its urls', () => {
    const urls = ['https://mcr.example/layer']
    expect(isForeignLayer({mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', urls})).toBe(true)
    expect(isForeignLayer({mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', urls})).toBe(true)
  })

  it('treats a foreign-typed layer without urls as an ordinary blob', () => {
    expect(isForeignLayer({mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'})).toBe(false)
    expect(isForeignLayer({mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', urls: []})).toBe(
      false,
    )
  })

  it('never holds for ordinary layers, urls or not, nor for a descriptor without a media type', () => {
    expect(
      isForeignLayer({mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', urls: ['https://x.example/l']}),
    ).toBe(false)
    expect(isForeignLayer({digest, size: 1, urls: ['https://x.example/l']} as never)).toBe(false)
  })
})

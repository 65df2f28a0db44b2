import {describe, expect, it} from 'vitest'

import {dynamicImports} from '../../scripts/build-bin.js'

describe('build:bin: dynamic import() in the bundled script', () => {
  it('finds each module a dynamic import() of a string literal loads, minified or not, and nothing that only looks like one', () => {
    const code = [
      'async function a(){let{readFile:r}=await import("node:fs/promises");return r}',
      "const b=()=>import( 'node:http' ), c=() => import(`kerberos`)",
      'x.import("not-one");const s="import";ximport("nor-this");',
      'await import("node:fs/promises")',
    ].join('\n')
    expect(dynamicImports(code)).toEqual(['node:fs/promises', 'node:http', 'kerberos'])
    expect(dynamicImports('var o=require("node:http");Promise.resolve().then(()=>require("node:fs"))')).toEqual([])
  })
})

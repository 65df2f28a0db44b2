import {describe, expect, it} from 'vitest'

import {UsageError} from '../../../src/lib/errors.js'
import {
  checkTargetOptions,
  parseMapRule,
  planTargets,
  targetFor,
  type TargetOptions,
} from '../../../src/lib/targets/registry/registry-target.js'

const D = `sha256:${'a'.repeat(64)}`

describe('targetFor', () => {
  it('drops the source registry host and keeps the tag', () => {
    const t = targetFor('docker.io/library/nginx:1.25.3', D, {registry: 'reg.local:5000'})
    expect(t.repository).toBe('library/nginx')
    expect(t.ref).toBe('reg.local:5000/library/nginx:1.25.3')
    expect(t.reference).toBe('1.25.3')
  })

  it('puts the namespace first', () => {
    const t = targetFor('registry.k8s.io/kube-apiserver:v1.29.0', D, {registry: 'reg.local', namespace: 'mirror/k8s'})
    expect(t.ref).toBe('reg.local/mirror/k8s/kube-apiserver:v1.29.0')
  })

  it('keeps the source host as a path component when asked, a port made valid', () => {
    expect(targetFor('docker.io/library/nginx:1', D, {registry: 'r', keepRegistryHost: true}).ref).toBe(
      'r/docker.io/library/nginx:1',
    )
    expect(
      targetFor('127.0.0.1:5001/app/web:2', D, {registry: 'r', namespace: 'ns', keepRegistryHost: true}).repository,
    ).toBe('ns/127.0.0.1_5001/app/web')
  })

  it('pushes by digest when the source names none but a digest, by tag when it names both', () => {
    const pinned = targetFor(`registry.k8s.io/pause@${D}`, D, {registry: 'r'})
    expect(pinned.reference).toBe(D)
    expect(pinned.ref).toBe(`r/pause@${D}`)
    expect(targetFor(`registry.k8s.io/pause:3.9@${D}`, D, {registry: 'r'}).reference).toBe('3.9')
  })
})

describe('checkTargetOptions', () => {
  it('accepts host[:port], strips a scheme and slashes', () => {
    expect(checkTargetOptions({registry: 'https://reg.local:5000/', namespace: '/ns/'})).toEqual({
      registry: 'reg.local:5000',
      namespace: 'ns',
      keepRegistryHost: false,
      map: [],
      maxPathDepth: undefined,
    })
  })

  it('refuses a path in --registry and a bad namespace', () => {
    expect(() => checkTargetOptions({registry: 'reg.local/ns'})).toThrow(UsageError)
    expect(() => checkTargetOptions({registry: 'reg.local', namespace: 'Bad'})).toThrow(/bad component/)
  })
})

describe('--map and --max-path-depth', () => {
  const repo = (ref: string, opts: Omit<TargetOptions, 'registry'>) =>
    targetFor(ref, D, {registry: 'r', ...opts}).repository
  const map = (...rules: string[]) => rules.map((r) => parseMapRule(r))

  it('matches a prefix on whole path components, host included, and puts TO under the namespace', () => {
    const opts = {namespace: 'ns', map: map('quay.io/calico=tools/calico')}
    expect(repo('quay.io/calico/node:v3', opts)).toBe('ns/tools/calico/node')
    expect(repo('quay.io/calico:v3', opts)).toBe('ns/tools/calico')
    // calicoctl is another component: no match, today's name.
    expect(repo('quay.io/calicoctl/ctl:v3', opts)).toBe('ns/calicoctl/ctl')
    // Another registry with the same path: no match.
    expect(repo('docker.io/calico/node:v3', opts)).toBe('ns/calico/node')
    // The rule replaces the host too, --keep-registry-host or not.
    expect(repo('quay.io/calico/node:v3', {...opts, keepRegistryHost: true})).toBe('ns/tools/calico/node')
    expect(repo('quay.io/other/x:1', {...opts, keepRegistryHost: true})).toBe('ns/quay.io/other/x')
  })

  it('the first matching rule wins; a whole registry and an empty TO work; Docker Hub by any of its names', () => {
    const rules = map('quay.io/calico/node=special', 'quay.io=q', 'docker.io/library=', 'index.docker.io/bitnami=bn')
    expect(repo('quay.io/calico/node:1', {map: rules})).toBe('special')
    expect(repo('quay.io/calico/cni:1', {map: rules})).toBe('q/calico/cni')
    expect(repo('nginx:1', {map: rules})).toBe('nginx')
    expect(repo('bitnami/redis:7', {map: rules})).toBe('bn/redis')
    expect(repo('quay.io/calico/node:1', {map: map('quay.io=q', 'quay.io/calico/node=special')})).toBe('q/calico/node')
  })

  it('--max-path-depth joins the leading components into the first, under the namespace', () => {
    expect(repo('r.io/tools/team/app:1', {maxPathDepth: 2})).toBe('tools-team/app')
    expect(repo('r.io/a/b/c/d:1', {namespace: 'x/y', maxPathDepth: 2})).toBe('x/y/a-b-c/d')
    expect(repo('r.io/a/b/c/d:1', {maxPathDepth: 3})).toBe('a-b/c/d')
    expect(repo('r.io/a/b/c/d:1', {maxPathDepth: 1})).toBe('a-b-c-d')
    expect(repo('r.io/a/b:1', {maxPathDepth: 2})).toBe('a/b')
    // After --map and --keep-registry-host.
    expect(repo('quay.io/calico/node:1', {map: map('quay.io/calico=tools/k8s/calico'), maxPathDepth: 2})).toBe(
      'tools-k8s-calico/node',
    )
    expect(repo('127.0.0.1:5001/app/web:1', {keepRegistryHost: true, maxPathDepth: 2})).toBe('127.0.0.1_5001-app/web')
  })

  it('refuses two source repositories in one target repository, naming both; tags of one source are fine', () => {
    const opts = {registry: 'r', map: map('quay.io/a=x')}
    expect(
      planTargets(
        [
          {ref: 'quay.io/a/app:1', digest: D},
          {ref: 'quay.io/a/app:2', digest: D},
        ],
        opts,
      ).map((t) => t.ref),
    ).toEqual(['r/x/app:1', 'r/x/app:2'])
    expect(() =>
      planTargets(
        [
          {ref: 'quay.io/a/app:1', digest: D},
          {ref: 'docker.io/x/app:1', digest: D},
        ],
        opts,
      ),
    ).toThrow('quay.io/a/app and docker.io/x/app would both land in r/x/app')
    // Different tags still collide: one repository, two sources.
    expect(() =>
      planTargets(
        [
          {ref: 'docker.io/x/app:1', digest: D},
          {ref: 'quay.io/x/app:2', digest: D},
        ],
        {registry: 'r'},
      ),
    ).toThrow(UsageError)
    // Depth joining can make one name of two.
    expect(() =>
      planTargets(
        [
          {ref: 'r.io/a/b/c:1', digest: D},
          {ref: 'r.io/a-b/c:1', digest: D},
        ],
        {registry: 'r', maxPathDepth: 2},
      ),
    ).toThrow('r.io/a/b/c and r.io/a-b/c would both land in r/a-b/c')
  })

  it('refuses a FROM without its host, a bad rule, a bad depth, and a mapping that leaves no name', () => {
    expect(() => parseMapRule('calico=tools')).toThrow(/FROM must start with the source registry host/)
    expect(() => parseMapRule('quay.io/calico')).toThrow(/expected FROM=TO/)
    expect(() => parseMapRule('quay.io/calico=Tools')).toThrow(/bad component "Tools" in TO/)
    expect(() => checkTargetOptions({registry: 'r', maxPathDepth: 0})).toThrow(/--max-path-depth/)
    expect(() => targetFor('quay.io/calico/node:1', D, {registry: 'r', map: map('quay.io/calico/node=')})).toThrow(
      /leaves no repository name/,
    )
    expect(
      targetFor('quay.io/calico/node:1', D, {registry: 'r', namespace: 'ns', map: map('quay.io/calico/node=')})
        .repository,
    ).toBe('ns')
  })
})

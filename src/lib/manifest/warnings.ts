import {BlockList} from 'node:net'

import type {ManifestProblem} from '../errors.js'
import type {Manifest, SourcePos} from './types.js'

/**
 * What is valid but most likely a mistake: an image named without tag or digest (it takes `latest`, as docker and
 * skopeo do, and fails at pull where the repository has no such tag); different URLs that declare the
 * same sha256 (a checksum copied from the line above). Each URL is still
 * fetched and checked on its own, so such a slip fails the pull; this names
 * it before anything is downloaded.
 */
export function manifestWarnings(m: Manifest): ManifestProblem[] {
  const warnings: ManifestProblem[] = []
  for (const i of m.images) {
    if (i.latestAssumed === undefined) continue
    warnings.push({
      file: m.file,
      ...i.pos,
      path: i.latestAssumed,
      message: `no tag or digest: latest is assumed (${i.name}); name the tag, or pin it with airlock lock`,
    })
  }
  const seen = new Map<string, {url: string; path: string}>()
  const entries = [
    ...m.binaries.map((e, i) => ({e, path: `spec.binaries[${i}]`})),
    ...m.packages.map((e, i) => ({e, path: `spec.packages[${i}]`})),
  ]
  for (const {e, path} of entries) {
    if (e.kind === 'chart' || e.sha256 === undefined) continue
    const first = seen.get(e.sha256)
    if (!first) {
      seen.set(e.sha256, {url: e.url, path})
    } else if (first.url !== e.url) {
      warnings.push({
        file: m.file,
        ...e.pos,
        path: `${path}.sha256`,
        message: `the same sha256 as ${first.path} (${first.url}) for another URL: was it copied from there? Both URLs are fetched and checked on their own`,
      })
    }
  }
  warnings.push(...metadataHostWarnings(m))
  return warnings
}

/** Link-local addresses, where clouds answer with instance metadata and credentials (169.254.169.254, fe80::/10). */
const LINK_LOCAL = new BlockList()
LINK_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4')
LINK_LOCAL.addSubnet('fe80::', 10, 'ipv6')
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata'])

/** Whether a URL or `host[:port]` names a link-local or cloud-metadata host (numeric spellings included, as URL parsing normalizes them). */
export function isMetadataHost(urlOrHost: string): boolean {
  let hostname: string
  try {
    hostname = new URL(urlOrHost.includes('://') ? urlOrHost : `http://${urlOrHost}`).hostname
      .toLowerCase()
      .replace(/\.$/, '')
  } catch {
    return false
  }
  if (METADATA_NAMES.has(hostname)) return true
  if (hostname.startsWith('[')) return LINK_LOCAL.check(hostname.slice(1, -1), 'ipv6')
  return /^[0-9.]+$/.test(hostname) && LINK_LOCAL.check(hostname, 'ipv4')
}

/**
 * A host on a link-local or metadata address: valid, but on a bastion in a
 * cloud it reaches the instance's metadata service (and its credentials), not
 * a mirror. Named so a pasted or templated address is not fetched unseen.
 */
function metadataHostWarnings(m: Manifest): ManifestProblem[] {
  const named: {what: string; path: string; pos: SourcePos}[] = [
    ...m.images.map((e, i) => ({what: e.ref.registry, path: `spec.images[${i}]`, pos: e.pos})),
    ...(m.selections ?? []).map((e) => ({what: e.registry, path: e.field, pos: e.pos})),
    ...(m.repositories ?? []).map((e) => ({what: e.registry, path: e.field, pos: e.pos})),
    ...m.binaries.flatMap((e, i) => [
      {what: e.url, path: `spec.binaries[${i}].url`, pos: e.pos},
      ...(e.checksumUrl ? [{what: e.checksumUrl, path: `spec.binaries[${i}].checksumUrl`, pos: e.pos}] : []),
    ]),
    ...m.packages.flatMap((e, i) =>
      e.kind === 'chart'
        ? [{what: e.repo ?? e.ociRef?.replace(/^oci:\/\//, '') ?? '', path: `spec.packages[${i}].chart`, pos: e.pos}]
        : [
            {what: e.url, path: `spec.packages[${i}].url`, pos: e.pos},
            ...(e.checksumUrl ? [{what: e.checksumUrl, path: `spec.packages[${i}].checksumUrl`, pos: e.pos}] : []),
          ],
    ),
    ...(m.osPackages ?? []).map((e) => ({what: e.url, path: `${e.field}.url`, pos: e.pos})),
  ]
  return named
    .filter((n) => n.what !== '' && isMetadataHost(n.what))
    .map((n) => ({
      file: m.file,
      ...n.pos,
      path: n.path,
      message: `${n.what} is a link-local or cloud metadata address: on a cloud bastion it reaches the instance's metadata service, not a mirror`,
    }))
}

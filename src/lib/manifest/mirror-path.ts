import {relativePathProblem} from '../content/paths.js'

/**
 * Where a downloaded file lives inside the store and the bundle: the URL's
 * host (with `:port` only when the URL names a non-default one) followed by
 * its path, query and fragment dropped, each segment percent-decoded. This is
 * the layout kubespray's offline files use, so `externalRepoEndpoint` + the
 * original path finds every file again.
 */

export class MirrorPathError extends Error {}

// Separators a path segment must never smuggle in once decoded.
const FORBIDDEN_IN_SEGMENT = /[/\\\0-\x1f\x7f]/

/** `https://dl.k8s.io/release/v1.29.5/bin/linux/amd64/kubeadm` -> `dl.k8s.io/release/v1.29.5/bin/linux/amd64/kubeadm`. */
export function mirroredPath(url: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new MirrorPathError(`not a valid URL: "${url}"`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new MirrorPathError(`expected an http:// or https:// URL, got ${parsed.protocol}//`)
  }
  if (!parsed.hostname) throw new MirrorPathError('the URL names no host')
  // WHATWG URL parsing quietly resolves `.` and `..`; look at the path as written first.
  const raw = /^[A-Za-z][A-Za-z0-9+.-]*:[/\\]{2}[^/\\?#]*([^?#]*)/.exec(url)?.[1] ?? parsed.pathname
  checkSegments(raw.split(/[/\\]/).slice(1), 'URL path')
  const segments = parsed.pathname.split('/').slice(1)
  const decoded = checkSegments(segments, 'URL path')
  return [parsed.host, ...decoded].join('/')
}

/**
 * Where a repository given by its base URL is mirrored: as mirroredPath,
 * trailing slashes dropped; a URL naming only a host gives the host alone.
 * `http://deb.debian.org/debian/` -> `deb.debian.org/debian`.
 */
export function mirroredBase(url: string): string {
  const trimmed = url.replace(/[?#].*$/, '').replace(/\/+$/, '')
  const withFile = mirroredPath(`${trimmed}/x`)
  return withFile.slice(0, -2)
}

/**
 * Checks a user-given `path:` override: relative, `/`-separated, no empty,
 * `.` or `..` segment. Returns it unchanged.
 */
export function checkRelativePath(p: string): string {
  const why = relativePathProblem(p)
  if (why) throw new MirrorPathError(`${why}: the path must be relative, /-separated, without empty, . or .. segments`)
  if (p.split('/').some((s) => FORBIDDEN_IN_SEGMENT.test(s)))
    throw new MirrorPathError('the path contains a control character')
  return p
}

/** Where a chart is stored: `charts/<name>-<version>.tgz`. */
export function chartPath(name: string, version: string): string {
  return `charts/${name}-${version}.tgz`
}

function checkSegments(segments: string[], what: string): string[] {
  if (segments.length === 0 || (segments.length === 1 && segments[0] === '')) {
    throw new MirrorPathError(`the ${what} names no file`)
  }
  return segments.map((seg, i) => {
    let s: string
    try {
      s = decodeURIComponent(seg)
    } catch {
      throw new MirrorPathError(`bad percent-encoding in ${what} segment "${seg}"`)
    }
    if (s === '') {
      throw new MirrorPathError(
        i === segments.length - 1
          ? `the ${what} ends with / and names no file`
          : `the ${what} has an empty segment (//)`,
      )
    }
    if (s === '.' || s === '..') throw new MirrorPathError(`the ${what} must not contain "${s}" segments`)
    if (FORBIDDEN_IN_SEGMENT.test(s))
      throw new MirrorPathError(`the ${what} segment "${seg}" decodes to a separator or control character`)
    return s
  })
}

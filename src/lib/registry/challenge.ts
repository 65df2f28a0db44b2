/** One `WWW-Authenticate` challenge: `Bearer realm="...",service="...",scope="..."`. */
export interface Challenge {
  scheme: string
  params: Record<string, string>
}

/**
 * Parse a `WWW-Authenticate` value (RFC 7235): one or more challenges, each a
 * scheme and comma-separated `key=value` or `key="quoted, value"` params.
 * Scheme names and keys are lowercased.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header]
  const out: Challenge[] = []
  for (const value of values) {
    let i = 0
    let current: Challenge | undefined
    const s = value
    const skipWs = () => {
      while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++
    }
    while (i < s.length) {
      skipWs()
      const m = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(s.slice(i))
      if (!m) break
      const token = m[0]
      i += token.length
      // `key=` continues the current challenge; a bare token starts a new one.
      let j = i
      while (j < s.length && (s[j] === ' ' || s[j] === '\t')) j++
      if (s[j] === '=' && current && s[j + 1] !== '=') {
        i = j + 1
        while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++
        let val = ''
        if (s[i] === '"') {
          i++
          while (i < s.length && s[i] !== '"') {
            if (s[i] === '\\' && i + 1 < s.length) i++
            val += s[i++]
          }
          i++
        } else {
          const v = /^[^,\s]*/.exec(s.slice(i))![0]
          val = v
          i += v.length
        }
        current.params[token.toLowerCase()] = val
      } else {
        current = {scheme: token.toLowerCase(), params: {}}
        out.push(current)
      }
    }
  }
  return out
}

/** `repository:library/nginx:pull` */
export function repositoryScope(repository: string, actions: string[]): string {
  return `repository:${repository}:${actions.join(',')}`
}

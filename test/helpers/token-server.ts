import {createPrivateKey, randomBytes, sign, X509Certificate} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import {type AddressInfo} from 'node:net'

// The registry's token auth (distribution "token" scheme): the registry sends
// clients here with a Bearer challenge; this endpoint checks Basic credentials
// and answers a JWT (RS256, x5c chain) the registry verifies against its
// rootcertbundle. Every action asked for in `scope` is granted to a valid user.

export interface TokenServer {
  realm: string
  service: string
  issuer: string
  /** Every request seen: scopes asked for and the user who asked ('' when anonymous). */
  requests: {account: string; scopes: string[]; ok: boolean}[]
  stop(): Promise<void>
}

export interface TokenServerOpts {
  username: string
  password: string
  service: string
  issuer: string
  /** PEM certificate and key that sign the tokens; the certificate goes in x5c. */
  signCertFile: string
  signKeyFile: string
  /** Serve over HTTPS with this pair (same CA as the registry) when set. */
  tls?: {certFile: string; keyFile: string}
  expiresIn?: number
}

interface Access {
  type: string
  name: string
  actions: string[]
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url')
}

/** `repository:team/app:pull,push` -> access entry; the name may not hold ':' but the actions follow the last one. */
export function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':')
  const last = scope.lastIndexOf(':')
  if (first < 0 || last === first) return undefined
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  }
}

function basicCredentials(req: IncomingMessage): {user: string; pass: string} | undefined {
  const h = req.headers.authorization
  if (!h || !/^basic /i.test(h)) return undefined
  const raw = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8')
  const i = raw.indexOf(':')
  return i < 0 ? undefined : {user: raw.slice(0, i), pass: raw.slice(i + 1)}
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

export async function startTokenServer(opts: TokenServerOpts): Promise<TokenServer> {
  const keyPem = await readFile(opts.signKeyFile)
  const certPem = await readFile(opts.signCertFile, 'utf8')
  const key = createPrivateKey(keyPem)
  const x5c = [new X509Certificate(certPem).raw.toString('base64')]
  const expiresIn = opts.expiresIn ?? 300
  const requests: TokenServer['requests'] = []

  function mint(account: string, scopes: string[]): string {
    const now = Math.floor(Date.now() / 1000)
    const header = {typ: 'JWT', alg: 'RS256', x5c}
    const access = scopes.map(parseScope).filter((a): a is Access => a !== undefined)
    const claims = {
      iss: opts.issuer,
      sub: account,
      aud: opts.service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now - 10,
      jti: randomBytes(12).toString('hex'),
      access,
    }
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
    return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`
  }

  function deny(res: ServerResponse, status: number, message: string): void {
    res.writeHead(status, {'content-type': 'application/json', 'www-authenticate': 'Basic realm="airlock-test-token"'})
    res.end(JSON.stringify({errors: [{code: 'UNAUTHORIZED', message}]}))
  }

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const url = new URL(req.url ?? '/', 'http://token.invalid')
      if (url.pathname !== '/token') {
        res.writeHead(404).end()
        return
      }
      let user: string | undefined
      let pass: string | undefined
      let scopes = url.searchParams.getAll('scope')
      let service = url.searchParams.get('service')
      if (req.method === 'POST') {
        // OAuth2 password grant (containerd, newer Docker clients).
        const form = new URLSearchParams(await readBody(req))
        if (form.get('grant_type') === 'password') {
          user = form.get('username') ?? undefined
          pass = form.get('password') ?? undefined
        } else if (form.get('grant_type') === 'refresh_token') {
          const [u, p] = Buffer.from(form.get('refresh_token') ?? '', 'base64url')
            .toString('utf8')
            .split('\0')
          user = u
          pass = p
        }
        scopes = form
          .getAll('scope')
          .flatMap((s) => s.split(' '))
          .filter(Boolean)
        service = form.get('service') ?? service
      } else {
        const basic = basicCredentials(req)
        user = basic?.user
        pass = basic?.pass
      }
      // A space-separated scope list is allowed too.
      scopes = scopes.flatMap((s) => s.split(' ')).filter(Boolean)
      const ok = user === opts.username && pass === opts.password
      requests.push({account: user ?? '', scopes, ok})
      if (service && service !== opts.service) {
        deny(res, 400, `unknown service ${service}`)
        return
      }
      if (user === undefined) {
        deny(res, 401, 'authentication required')
        return
      }
      if (!ok) {
        deny(res, 401, 'invalid username or password')
        return
      }
      const token = mint(user, scopes)
      const body: Record<string, unknown> = {
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: new Date().toISOString(),
      }
      if (req.method === 'POST') body.refresh_token = Buffer.from(`${user}\0${pass}`).toString('base64url')
      res.writeHead(200, {'content-type': 'application/json'})
      res.end(JSON.stringify(body))
    } catch (err) {
      res.writeHead(500).end(String(err))
    }
  }

  const server: Server = opts.tls
    ? createHttpsServer(
        {cert: await readFile(opts.tls.certFile), key: await readFile(opts.tls.keyFile)},
        (q, s) => void handler(q, s),
      )
    : createHttpServer((q, s) => void handler(q, s))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  server.unref()
  const {port} = server.address() as AddressInfo
  return {
    realm: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}/token`,
    service: opts.service,
    issuer: opts.issuer,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

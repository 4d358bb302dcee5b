// The Node reference relay for `make bench-signaling`: a minimal socket.io server.
//
// A client connects (WebSocket transport only) with `?user=<id>`; a "signal" event whose payload
// is {"to": "<id>", ...} is emitted, as is, to that user's socket. No authentication, no
// database: the kind of relay the socket.io figures were measured with.
//
// With `--redis-url`, it is socket.io scaled out the way its users do it: several processes share
// `@socket.io/redis-adapter`, each socket joins a room named after its user, and a signal is
// emitted to that room, so the adapter publishes it through Redis to whichever process holds the
// peer (and delivers it locally if the peer is here). `--redis-key` names the run's channels:
// Redis pub/sub ignores the database number, so runs sharing a Redis must not share channels.
//
// Run: node bench/signaling/node/relay.js --port 8766   (binds 127.0.0.1 only)
//      node bench/signaling/node/relay.js --port 8767 --redis-url redis://127.0.0.1:6379/10
"use strict";

const http = require("http");
const { Server } = require("socket.io");

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

const host = option("host", "127.0.0.1");
const port = Number(option("port", "8766"));
const redisUrl = option("redis-url", "");
const redisKey = option("redis-key", "socket.io");
const sockets = new Map();
let dropped = 0;

const httpServer = http.createServer();
const io = new Server(httpServer, {
  serveClient: false,
  transports: ["websocket"],
  perMessageDeflate: false,
  maxHttpBufferSize: 1 << 20,
});

io.on("connection", (socket) => {
  const user = String(socket.handshake.query.user || "");
  if (!user) {
    socket.disconnect(true);
    return;
  }
  sockets.set(user, socket);
  if (redisUrl) {
    socket.join(`user:${user}`);
    socket.on("signal", (message) => {
      if (message && message.to !== undefined) io.to(`user:${message.to}`).emit("signal", message);
    });
    socket.on("disconnect", () => sockets.delete(user));
    return;
  }
  socket.on("signal", (message) => {
    const peer = message && sockets.get(String(message.to));
    if (peer === undefined) {
      dropped += 1;
      return;
    }
    peer.emit("signal", message);
  });
  socket.on("disconnect", () => {
    if (sockets.get(user) === socket) sockets.delete(user);
  });
});

async function listen() {
  if (redisUrl) {
    // Required only here, so the single-process relay runs without the adapter installed.
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    const pubClient = createClient({ url: redisUrl });
    const subClient = pubClient.duplicate();
    await Promise.all([pubClient.connect(), subClient.connect()]);
    io.adapter(createAdapter(pubClient, subClient, { key: redisKey }));
  }
  httpServer.listen({ host, port, backlog: 4096 }, () => {
    console.log(`socket.io relay listening on ${host}:${port}${redisUrl ? " (redis adapter)" : ""}`);
  });
}
listen().catch((error) => {
  console.error(error);
  process.exit(1);
});

function stop() {
  io.close(() => {
    console.log(`socket.io relay stopped; ${dropped} events dropped`);
    process.exit(0);
  });
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
